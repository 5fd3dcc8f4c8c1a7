// Package vxugen generates realistic, varied, valid synthetic VXU^V04 messages (profile Z22) for
// load tests and benchmarks: distinct patients with plausible demographics (including non-ASCII
// names), administered and historical doses of real CDC products with lots, funding eligibility
// and VIS observations, and a share of repeat reports and updates of earlier doses. Generation is
// deterministic for a seed, so two runs send the same traffic.
package vxugen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// Options shape the generated traffic.
type Options struct {
	Seed         uint64
	Facility     string  // MSH-4 (and RXA-11.4): a facility the receiving site may send for
	ProcessingID string  // MSH-11: "P" or "T"
	ControlIDs   string  // prefix of MSH-10, unique per run so that messages are not resends
	Patients     int     // size of the patient population (default 100,000)
	UpdateShare  float64 // share of messages that update a dose reported before (RXA-21 U), default 0.05
	Historical   float64 // share of doses reported as historical (RXA-9 01), default 0.2
	// NewPatients makes every message the first report of a patient never sent before (by this
	// generator: its MRN is derived from ControlIDs and the message's sequence number), with one
	// dose and no updates: the traffic of a registry filling up. Patients is then ignored.
	NewPatients bool
	Now         time.Time
	Codes       *codes.Set
}

// Generator makes messages; one Generator is not safe for concurrent use: give each goroutine its
// own (with different seeds or control ID prefixes).
type Generator struct {
	o        Options
	rng      *rand.Rand
	seq      int
	products []codes.Product
	b        *hl7.Builder
	recent   []dose // doses sent, for updates
	lastMRN  string // PID-3.1 of the message Next returned last
}

type dose struct {
	patient int
	order   string
	product codes.Product
	date    time.Time
	lot     string
}

// New returns a generator.
func New(o Options) *Generator {
	if o.Patients <= 0 {
		o.Patients = 100000
	}
	if o.UpdateShare == 0 {
		o.UpdateShare = 0.05
	}
	if o.Historical == 0 {
		o.Historical = 0.2
	}
	if o.ProcessingID == "" {
		o.ProcessingID = "P"
	}
	if o.Facility == "" {
		o.Facility = "X68"
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Codes == nil {
		o.Codes = codes.Default()
	}
	g := &Generator{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15)), b: hl7.NewBuilder(hl7.DefaultDelimiters)}
	for _, cvx := range commonCVX {
		for _, p := range o.Codes.Products(cvx) {
			if p.Status == codes.StatusActive && p.MVXStatus == codes.StatusActive && p.MVX != "" {
				g.products = append(g.products, p)
			}
		}
	}
	if len(g.products) == 0 {
		// A code set without these products still gets valid-looking traffic.
		g.products = []codes.Product{{Name: "ENGERIX-B", CVX: "08", MVX: "SKB"}}
	}
	return g
}

// Vaccines commonly given in the US, by CVX.
var commonCVX = []string{"08", "10", "20", "21", "03", "83", "115", "133", "140", "150", "62", "165", "114", "116", "119", "187", "300"}

// ageBands are the ages (in days, 0 = no limit) at which the generator gives each vaccine: inside
// the ACIP ranges the validator checks, with a margin, so that traffic is answered AA rather than
// AE for an implausible age.
var ageBands = map[string][2]int{
	"10": {50, 0}, "20": {50, 6 * 365}, "21": {380, 0}, "03": {200, 0}, "83": {200, 0},
	"115": {7*365 + 30, 0}, "133": {50, 0}, "140": {200, 0}, "150": {200, 0},
	"62": {9*365 + 30, 45 * 365}, "165": {9*365 + 30, 45 * 365}, "114": {2*365 + 30, 0},
	"116": {50, 230}, "119": {50, 230}, "187": {18*365 + 30, 0}, "300": {200, 0},
}

// productFor picks a product suited to a patient of age days.
func (g *Generator) productFor(age int) codes.Product {
	for range 16 {
		p := g.products[g.rng.IntN(len(g.products))]
		if b, ok := ageBands[p.CVX]; !ok || age >= b[0] && (b[1] == 0 || age <= b[1]) {
			return p
		}
	}
	for _, p := range g.products { // HepB (08) has no age limit
		if p.CVX == "08" {
			return p
		}
	}
	return g.products[0]
}

var (
	families = []string{"Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodríguez", "Martínez",
		"Hernández", "López", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee",
		"Pérez", "Thompson", "White", "Harris", "Sánchez", "Clark", "Ramírez", "Lewis", "Robinson", "Nguyen", "Müller",
		"O'Brien", "Kowalski", "Søren", "Dubois", "Çelik", "Novák", "Okafor", "Yamamoto"}
	givenF = []string{"Olivia", "Emma", "Charlotte", "Amelia", "Sophia", "Mia", "Isabella", "Ava", "Evelyn", "Luna", "Zoë",
		"Chloé", "Ana", "Maya", "Aaliyah", "Nora", "Léa", "Hannah", "Ingrid", "Grace"}
	givenM = []string{"Liam", "Noah", "Oliver", "James", "Elijah", "William", "Henry", "Lucas", "Benjamin", "Theodore",
		"José", "Mateo", "Jürgen", "Ethan", "Kai", "Omar", "Luca", "Felix", "André", "Samuel"}
	streets = []string{"Elm Street", "Main Street", "Oak Avenue", "Maple Drive", "Prescott Street", "Washington Blvd",
		"Cedar Lane", "Pine Road", "River Road", "Highland Ave"}
	cities = [][3]string{{"Boston", "MA", "02118"}, {"Worcester", "MA", "01608"}, {"Springfield", "MA", "01103"},
		{"Lowell", "MA", "01852"}, {"Cambridge", "MA", "02139"}, {"Brockton", "MA", "02301"}, {"Quincy", "MA", "02169"},
		{"Lynn", "MA", "01901"}, {"New Bedford", "MA", "02740"}, {"Newton", "MA", "02458"}}
	races = [][2]string{{"2106-3", "White"}, {"2054-5", "Black or African American"}, {"2028-9", "Asian"},
		{"1002-5", "American Indian or Alaska Native"}, {"2076-8", "Native Hawaiian or Other Pacific Islander"}, {"2131-1", "Other Race"}}
	ethnicities = [][2]string{{"2186-5", "Not Hispanic or Latino"}, {"2135-2", "Hispanic or Latino"}}
	routes      = [][3]string{{"C28161", "Intramuscular", "NCIT"}, {"C38299", "Subcutaneous", "NCIT"}}
	bodySites   = [][2]string{{"LA", "Left Arm"}, {"RA", "Right Arm"}, {"LT", "Left Thigh"}, {"RT", "Right Thigh"}, {"LD", "Left Deltoid"}}
	funding     = [][2]string{{"V01", "Not VFC eligible"}, {"V02", "VFC eligible - Medicaid/Medicaid Managed Care"},
		{"V03", "VFC eligible - Uninsured"}, {"V04", "VFC eligible - American Indian/Alaskan Native"}}
)

// person is derived from a patient number, so every report of patient n has the same identity,
// whichever generator sends it: generators with different seeds (a load generator's connections)
// report one population, as a registry's senders do. (New patients are each reported once, under
// an MRN of their own generator: their identity is drawn from the generator's seed too, so that
// the connections' new patients are different people.)
type person struct {
	mrn, family, given, middle, mother, sex, birth, street, city, state, zip, phone, race, raceText, eth, ethText string
}

func (g *Generator) person(n int) person {
	var seed uint64
	if g.o.NewPatients {
		seed = g.o.Seed
	}
	r := rand.New(rand.NewPCG(seed+uint64(n)*7919, uint64(n)))
	p := person{mrn: "MRN" + strconv.Itoa(100000+n)}
	p.family = families[r.IntN(len(families))]
	if r.IntN(2) == 0 {
		p.sex, p.given, p.middle = "F", givenF[r.IntN(len(givenF))], givenF[r.IntN(len(givenF))]
	} else {
		p.sex, p.given, p.middle = "M", givenM[r.IntN(len(givenM))], givenM[r.IntN(len(givenM))]
	}
	p.mother = families[r.IntN(len(families))]
	age := time.Duration(r.IntN(18*365)+30) * 24 * time.Hour
	p.birth = g.o.Now.Add(-age).Format("20060102")
	c := cities[r.IntN(len(cities))]
	p.street = strconv.Itoa(r.IntN(400)+1) + " " + streets[r.IntN(len(streets))]
	p.city, p.state, p.zip = c[0], c[1], c[2]
	p.phone = strconv.Itoa(5550000 + r.IntN(9999))
	rc := races[r.IntN(len(races))]
	p.race, p.raceText = rc[0], rc[1]
	e := ethnicities[r.IntN(len(ethnicities))]
	p.eth, p.ethText = e[0], e[1]
	return p
}

// PatientID returns the patient identifier (PID-3.1, assigning authority BENCH-EHR, type MR) of
// the message Next returned last: two messages with the same one report the same patient. A load
// generator uses it to tell which patients a run reported once, without parsing what it sent.
func (g *Generator) PatientID() string { return g.lastMRN }

// Next returns the next message. The slice is the caller's.
func (g *Generator) Next() []byte {
	g.seq++
	update := !g.o.NewPatients && len(g.recent) > 0 && g.rng.Float64() < g.o.UpdateShare
	var d dose
	if update {
		d = g.recent[g.rng.IntN(len(g.recent))]
	} else {
		d = dose{patient: g.rng.IntN(g.o.Patients)}
		if g.o.NewPatients {
			d.patient = g.seq
		}
		d.order = fmt.Sprintf("%s-O%d", g.o.ControlIDs, g.seq)
		d.lot = fmt.Sprintf("L%c%04d", 'A'+rune(g.rng.IntN(26)), g.rng.IntN(10000))
		d.date = g.o.Now.Add(-time.Duration(g.rng.IntN(20)) * 24 * time.Hour)
		birth, _ := time.Parse("20060102", g.person(d.patient).birth)
		d.product = g.productFor(int(d.date.Sub(birth).Hours() / 24))
		if len(g.recent) < 4096 {
			g.recent = append(g.recent, d)
		} else {
			g.recent[g.rng.IntN(len(g.recent))] = d
		}
	}
	p := g.person(d.patient)
	if g.o.NewPatients {
		p.mrn = g.o.ControlIDs + "-P" + strconv.Itoa(g.seq)
	}
	g.lastMRN = p.mrn
	historical := !update && g.rng.Float64() < g.o.Historical
	b := g.b
	b.Reset()
	now := g.o.Now.Format("20060102150405-0700")
	b.Segment("MSH", hl7.Text("vaxgate-bench"), hl7.Text(g.o.Facility), hl7.Text("vaxgate"), hl7.Text("IIS"),
		hl7.Text(now), hl7.Text(""), hl7.Comps("VXU", "V04", "VXU_V04"),
		hl7.Text(fmt.Sprintf("%s-%d", g.o.ControlIDs, g.seq)), hl7.Text(g.o.ProcessingID), hl7.Text("2.5.1"),
		hl7.Text(""), hl7.Text(""), hl7.Text("ER"), hl7.Text("AL"), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""),
		hl7.Comps("Z22", "CDCPHINVS"))
	b.Segment("PID", hl7.Text("1"), hl7.Text(""), hl7.Comps(p.mrn, "", "", "BENCH-EHR", "MR"), hl7.Text(""),
		hl7.Comps(p.family, p.given, p.middle, "", "", "", "L"), hl7.Comps(p.mother, "", "", "", "", "", "M"),
		hl7.Text(p.birth), hl7.Text(p.sex), hl7.Text(""), hl7.Comps(p.race, p.raceText, "CDCREC"),
		hl7.Comps(p.street, "", p.city, p.state, p.zip, "USA", "L"), hl7.Text(""),
		hl7.Comps("", "PRN", "PH", "", "", "617", p.phone),
		hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""),
		hl7.Comps(p.eth, p.ethText, "CDCREC"))
	b.Segment("PD1", hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""),
		hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Comps("02", "Reminder/Recall - any method", "HL70215"),
		hl7.Text("N"), hl7.Text(d.date.Format("20060102")), hl7.Text(""), hl7.Text(""), hl7.Text("A"),
		hl7.Text(d.date.Format("20060102")), hl7.Text(d.date.Format("20060102")))
	b.Segment("NK1", hl7.Text("1"), hl7.Comps(p.mother, givenF[d.patient%len(givenF)], "", "", "", "", "L"),
		hl7.Comps("MTH", "Mother", "HL70063"), hl7.Comps(p.street, "", p.city, p.state, p.zip, "USA", "L"),
		hl7.Comps("", "PRN", "PH", "", "", "617", p.phone))
	b.Segment("ORC", hl7.Text("RE"), hl7.Text(""), hl7.Comps(d.order, "BENCH-EHR"), hl7.Text(""), hl7.Text(""),
		hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Comps("1001", "Nurse", "Nora", "", "", "", "", "", "BENCH-EHR", "", "", "", "EI"),
		hl7.Text(""), hl7.Comps("2002", "Doctor", "Dana", "", "", "", "", "", "BENCH-EHR", "", "", "", "MD"))
	action := "A"
	if update {
		action = "U"
	}
	date := d.date.Format("20060102")
	if historical {
		b.Segment("RXA", hl7.Text("0"), hl7.Text("1"), hl7.Text(date), hl7.Text(""),
			hl7.Comps(d.product.CVX, d.product.Name, "CVX"), hl7.Text("999"), hl7.Text(""), hl7.Text(""),
			hl7.Comps("01", "Historical information - source unspecified", "NIP001"),
			hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""),
			hl7.Text(""), hl7.Text(""), hl7.Text("CP"), hl7.Text(action))
		return append([]byte(nil), b.Bytes()...)
	}
	exp := d.date.AddDate(1, 0, 0).Format("20060102")
	b.Segment("RXA", hl7.Text("0"), hl7.Text("1"), hl7.Text(date), hl7.Text(""),
		hl7.Comps(d.product.CVX, d.product.Name, "CVX"), hl7.Text("0.5"), hl7.Comps("mL", "milliliter", "UCUM"), hl7.Text(""),
		hl7.Comps("00", "New immunization record", "NIP001"),
		hl7.Comps("1001", "Nurse", "Nora", "", "", "", "", "", "BENCH-EHR", "", "", "", "EI"), hl7.Comps("", "", "", g.o.Facility),
		hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(d.lot), hl7.Text(exp), hl7.Comps(d.product.MVX, "", "MVX"),
		hl7.Text(""), hl7.Text(""), hl7.Text("CP"), hl7.Text(action))
	rt := routes[d.patient%len(routes)]
	bs := bodySites[d.patient%len(bodySites)]
	b.Segment("RXR", hl7.Comps(rt[0], rt[1], rt[2]), hl7.Comps(bs[0], bs[1], "HL70163"))
	f := funding[d.patient%len(funding)]
	b.Segment("OBX", hl7.Text("1"), hl7.Text("CE"), hl7.Comps("64994-7", "Vaccine funding program eligibility category", "LN"),
		hl7.Text("1"), hl7.Comps(f[0], f[1], "HL70064"), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""),
		hl7.Text(""), hl7.Text("F"), hl7.Text(""), hl7.Text(""), hl7.Text(date), hl7.Text(""), hl7.Text(""),
		hl7.Comps("VXC40", "Eligibility captured at the immunization level", "CDCPHINVS"))
	b.Segment("OBX", hl7.Text("2"), hl7.Text("CE"), hl7.Comps("30956-7", "vaccine type", "LN"), hl7.Text("2"),
		hl7.Comps(d.product.CVX, d.product.Name, "CVX"), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""),
		hl7.Text(""), hl7.Text("F"))
	b.Segment("OBX", hl7.Text("3"), hl7.Text("TS"), hl7.Comps("29768-9", "Date vaccine information statement published", "LN"),
		hl7.Text("2"), hl7.Text("20230512"), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text("F"))
	b.Segment("OBX", hl7.Text("4"), hl7.Text("TS"), hl7.Comps("29769-7", "Date vaccine information statement presented", "LN"),
		hl7.Text("2"), hl7.Text(date), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text(""), hl7.Text("F"))
	return append([]byte(nil), b.Bytes()...)
}
