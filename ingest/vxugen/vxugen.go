// Package vxugen generates realistic, varied, valid synthetic VXU^V04 messages (profile Z22) for
// load tests and benchmarks: distinct patients with plausible demographics (including non-ASCII
// names), administered and historical doses of real CDC products with lots, funding eligibility
// and VIS observations, and a share of repeat reports and updates of earlier doses. Generation is
// deterministic for a seed, so two runs send the same traffic.
package vxugen

import (
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
	prodEsc  []productText // products[i]'s codes and name, escaped
	recent   []dose        // doses sent, for updates

	// The message is written into buf with append-style code (w), not through hl7.Builder: the
	// load generator shares the CPUs of the system it measures. Values that are the same for
	// every message are escaped once, here.
	w         []byte     // Next's message, before its copy
	prng      *rand.Rand // person's: its source pcg is seeded again for each patient
	pcg       *rand.PCG
	now       string    // MSH-7
	dates     [20]dateS // dose dates, by days before Now
	facility  string    // escaped
	ctlPrefix string    // ControlIDs, escaped
	lastSeq   int       // of the message Next returned last: its patient, for PatientID
	lastPat   int
}

// productText is a product's CVX code, name and MVX code as written (escaped).
type productText struct{ cvx, name, mvx string }

// dateS is a dose date (days before Now) as written, and a year later (the lot's expiry).
type dateS struct {
	t         time.Time
	date, exp string
}

type dose struct {
	patient int
	seq     int // the order's number: ORC-3 is ControlIDs-O<seq>
	product int // index in products
	days    int // date: days before Now
	lot     [6]byte
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
	g := &Generator{o: o, rng: rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))}
	g.pcg = rand.NewPCG(0, 0)
	g.prng = rand.New(g.pcg)
	g.now = o.Now.Format("20060102150405-0700")
	for k := range g.dates {
		t := o.Now.Add(-time.Duration(k) * 24 * time.Hour)
		g.dates[k] = dateS{t: t, date: t.Format("20060102"), exp: t.AddDate(1, 0, 0).Format("20060102")}
	}
	g.facility = string(escape(nil, o.Facility))
	// Escaped with the "-" that follows it in every use: ControlIDs alone may be the text "",
	// which hl7.Escape writes as an escape sequence, but the control IDs built on it are not.
	pre := escape(nil, o.ControlIDs+"-")
	g.ctlPrefix = string(pre[:len(pre)-1])
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
	for _, p := range g.products {
		g.prodEsc = append(g.prodEsc, productText{cvx: string(escape(nil, p.CVX)), name: string(escape(nil, p.Name)), mvx: string(escape(nil, p.MVX))})
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

// productFor picks a product suited to a patient of age days (its index in products).
func (g *Generator) productFor(age int) int {
	for range 16 {
		i := g.rng.IntN(len(g.products))
		p := g.products[i]
		if b, ok := ageBands[p.CVX]; !ok || age >= b[0] && (b[1] == 0 || age <= b[1]) {
			return i
		}
	}
	for i, p := range g.products { // HepB (08) has no age limit
		if p.CVX == "08" {
			return i
		}
	}
	return 0
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

// The tables hold their values as written in a message: escaped once here (none of them has
// anything to escape today), not for every message.
func init() {
	for _, t := range [][]string{families, givenF, givenM, streets} {
		for i := range t {
			t[i] = string(escape(nil, t[i]))
		}
	}
	for i := range cities {
		for j := range cities[i] {
			cities[i][j] = string(escape(nil, cities[i][j]))
		}
	}
	for _, t := range [][][2]string{races, ethnicities, bodySites, funding} {
		for i := range t {
			for j := range t[i] {
				t[i][j] = string(escape(nil, t[i][j]))
			}
		}
	}
	for i := range routes {
		for j := range routes[i] {
			routes[i][j] = string(escape(nil, routes[i][j]))
		}
	}
}

// person is derived from a patient number, so every report of patient n has the same identity,
// whichever generator sends it: generators with different seeds (a load generator's connections)
// report one population, as a registry's senders do. (New patients are each reported once, under
// an MRN of their own generator: their identity is drawn from the generator's seed too, so that
// the connections' new patients are different people.) Its fields index the tables above.
type person struct {
	family, given, middle, mother int // given and middle in givenF when female, else givenM
	female                        bool
	birth                         time.Time // its date in Now's zone is the birth date
	streetNo, street, city, phone int
	race, eth                     int
}

func (g *Generator) person(n int) person {
	var seed uint64
	if g.o.NewPatients {
		seed = g.o.Seed
	}
	// A source of its own per patient, seeded from n (the generator's own PCG, seeded again:
	// rand.Rand keeps no state besides its source).
	g.pcg.Seed(seed+uint64(n)*7919, uint64(n))
	r := g.prng
	var p person
	p.family = r.IntN(len(families))
	if r.IntN(2) == 0 {
		p.female = true
		p.given = r.IntN(len(givenF))
		p.middle = r.IntN(len(givenF))
	} else {
		p.given = r.IntN(len(givenM))
		p.middle = r.IntN(len(givenM))
	}
	p.mother = r.IntN(len(families))
	p.birth = g.o.Now.Add(-time.Duration(r.IntN(18*365)+30) * 24 * time.Hour)
	p.city = r.IntN(len(cities))
	p.streetNo = r.IntN(400) + 1
	p.street = r.IntN(len(streets))
	p.phone = 5550000 + r.IntN(9999)
	p.race = r.IntN(len(races))
	p.eth = r.IntN(len(ethnicities))
	return p
}

// PatientID returns the patient identifier (PID-3.1, assigning authority BENCH-EHR, type MR) of
// the message Next returned last: two messages with the same one report the same patient. A load
// generator uses it to tell which patients a run reported once, without parsing what it sent.
func (g *Generator) PatientID() string {
	if g.lastSeq == 0 {
		return ""
	}
	if g.o.NewPatients {
		return g.o.ControlIDs + "-P" + strconv.Itoa(g.lastSeq)
	}
	return "MRN" + strconv.Itoa(100000+g.lastPat)
}

// Next returns the next message. The slice is the caller's.
func (g *Generator) Next() []byte {
	g.w = g.AppendNext(g.w[:0])
	return append([]byte(nil), g.w...)
}

// AppendNext appends the next message (the one Next would return) to dst and returns the
// extended slice: a load generator builds it into its write buffer, framed, without a copy.
func (g *Generator) AppendNext(dst []byte) []byte {
	g.seq++
	update := !g.o.NewPatients && len(g.recent) > 0 && g.rng.Float64() < g.o.UpdateShare
	var d dose
	var p person
	if update {
		d = g.recent[g.rng.IntN(len(g.recent))]
		p = g.person(d.patient)
	} else {
		d = dose{patient: g.rng.IntN(g.o.Patients), seq: g.seq}
		if g.o.NewPatients {
			d.patient = g.seq
		}
		letter := g.rng.IntN(26)
		num := g.rng.IntN(10000)
		d.lot = [6]byte{'L', byte('A' + letter), byte('0' + num/1000), byte('0' + num/100%10), byte('0' + num/10%10), byte('0' + num%10)}
		d.days = g.rng.IntN(20)
		p = g.person(d.patient)
		// The age in days on the dose date, from the birth date as written (UTC midnight).
		by, bm, bd := p.birth.Date()
		birth := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)
		d.product = g.productFor(int(g.dates[d.days].t.Sub(birth).Hours() / 24))
		if len(g.recent) < 4096 {
			g.recent = append(g.recent, d)
		} else {
			g.recent[g.rng.IntN(len(g.recent))] = d
		}
	}
	g.lastSeq, g.lastPat = g.seq, d.patient
	historical := !update && g.rng.Float64() < g.o.Historical
	date := g.dates[d.days].date
	prod := &g.prodEsc[d.product]
	fam := families[p.family]
	given, middle := givenM[p.given], givenM[p.middle]
	sex := "M"
	if p.female {
		given, middle, sex = givenF[p.given], givenF[p.middle], "F"
	}
	mother := families[p.mother]
	c := cities[p.city]
	rc, eth := races[p.race], ethnicities[p.eth]

	b := dst
	b = append(b, "MSH|^~\\&|vaxgate-bench|"...)
	b = append(b, g.facility...)
	b = append(b, "|vaxgate|IIS|"...)
	b = append(b, g.now...)
	b = append(b, "||VXU^V04^VXU_V04|"...)
	b = append(b, g.ctlPrefix...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(g.seq), 10)
	b = append(b, '|')
	b = escape(b, g.o.ProcessingID)
	b = append(b, "|2.5.1|||ER|AL|||||Z22^CDCPHINVS\r"...)

	b = append(b, "PID|1||"...)
	if g.o.NewPatients {
		b = append(b, g.ctlPrefix...)
		b = append(b, "-P"...)
		b = strconv.AppendInt(b, int64(g.seq), 10)
	} else {
		b = append(b, "MRN"...)
		b = strconv.AppendInt(b, int64(100000+d.patient), 10)
	}
	b = append(b, "^^^BENCH-EHR^MR||"...)
	b = append(b, fam...)
	b = append(b, '^')
	b = append(b, given...)
	b = append(b, '^')
	b = append(b, middle...)
	b = append(b, "^^^^L|"...)
	b = append(b, mother...)
	b = append(b, "^^^^^^M|"...)
	b = p.birth.AppendFormat(b, "20060102")
	b = append(b, '|')
	b = append(b, sex...)
	b = append(b, "||"...)
	b = append(b, rc[0]...)
	b = append(b, '^')
	b = append(b, rc[1]...)
	b = append(b, "^CDCREC|"...)
	b = g.address(b, &p, c)
	b = append(b, "||"...)
	b = appendPhone(b, &p)
	b = append(b, "|||||||||"...)
	b = append(b, eth[0]...)
	b = append(b, '^')
	b = append(b, eth[1]...)
	b = append(b, "^CDCREC\r"...)

	b = append(b, "PD1|||||||||||02^Reminder/Recall - any method^HL70215|N|"...)
	b = append(b, date...)
	b = append(b, "|||A|"...)
	b = append(b, date...)
	b = append(b, '|')
	b = append(b, date...)
	b = append(b, '\r')

	b = append(b, "NK1|1|"...)
	b = append(b, mother...)
	b = append(b, '^')
	b = append(b, givenF[d.patient%len(givenF)]...)
	b = append(b, "^^^^^L|MTH^Mother^HL70063|"...)
	b = g.address(b, &p, c)
	b = append(b, '|')
	b = appendPhone(b, &p)
	b = append(b, '\r')

	b = append(b, "ORC|RE||"...)
	b = append(b, g.ctlPrefix...)
	b = append(b, "-O"...)
	b = strconv.AppendInt(b, int64(d.seq), 10)
	b = append(b, "^BENCH-EHR|||||||1001^Nurse^Nora^^^^^^BENCH-EHR^^^^EI||2002^Doctor^Dana^^^^^^BENCH-EHR^^^^MD\r"...)

	action := "A"
	if update {
		action = "U"
	}
	b = append(b, "RXA|0|1|"...)
	b = append(b, date...)
	b = append(b, "||"...)
	b = appendProduct(b, prod)
	if historical {
		b = append(b, "|999|||01^Historical information - source unspecified^NIP001|||||||||||CP|"...)
		b = append(b, action...)
		return append(b, '\r')
	}
	b = append(b, "|0.5|mL^milliliter^UCUM||00^New immunization record^NIP001|1001^Nurse^Nora^^^^^^BENCH-EHR^^^^EI|^^^"...)
	b = append(b, g.facility...)
	b = append(b, "||||"...)
	b = append(b, d.lot[:]...)
	b = append(b, '|')
	b = append(b, g.dates[d.days].exp...)
	b = append(b, '|')
	b = append(b, prod.mvx...)
	b = append(b, "^^MVX|||CP|"...)
	b = append(b, action...)
	b = append(b, '\r')

	rt := routes[d.patient%len(routes)]
	bs := bodySites[d.patient%len(bodySites)]
	b = append(b, "RXR|"...)
	b = append(b, rt[0]...)
	b = append(b, '^')
	b = append(b, rt[1]...)
	b = append(b, '^')
	b = append(b, rt[2]...)
	b = append(b, '|')
	b = append(b, bs[0]...)
	b = append(b, '^')
	b = append(b, bs[1]...)
	b = append(b, "^HL70163\r"...)

	f := funding[d.patient%len(funding)]
	b = append(b, "OBX|1|CE|64994-7^Vaccine funding program eligibility category^LN|1|"...)
	b = append(b, f[0]...)
	b = append(b, '^')
	b = append(b, f[1]...)
	b = append(b, "^HL70064||||||F|||"...)
	b = append(b, date...)
	b = append(b, "|||VXC40^Eligibility captured at the immunization level^CDCPHINVS\r"...)
	b = append(b, "OBX|2|CE|30956-7^vaccine type^LN|2|"...)
	b = appendProduct(b, prod)
	b = append(b, "||||||F\r"...)
	b = append(b, "OBX|3|TS|29768-9^Date vaccine information statement published^LN|2|20230512||||||F\r"...)
	b = append(b, "OBX|4|TS|29769-7^Date vaccine information statement presented^LN|2|"...)
	b = append(b, date...)
	return append(b, "||||||F\r"...)
}

// address is an XAD: street^^city^state^zip^USA^L.
func (g *Generator) address(b []byte, p *person, c [3]string) []byte {
	b = strconv.AppendInt(b, int64(p.streetNo), 10)
	b = append(b, ' ')
	b = append(b, streets[p.street]...)
	b = append(b, "^^"...)
	b = append(b, c[0]...)
	b = append(b, '^')
	b = append(b, c[1]...)
	b = append(b, '^')
	b = append(b, c[2]...)
	return append(b, "^USA^L"...)
}

// appendPhone is an XTN: ^PRN^PH^^^617^number.
func appendPhone(b []byte, p *person) []byte {
	b = append(b, "^PRN^PH^^^617^"...)
	return strconv.AppendInt(b, int64(p.phone), 10)
}

// appendProduct is a CE of the CVX code: CVX^name^CVX (trailing empty components are never
// written, as hl7.Comps does not write them; here the last one is never empty).
func appendProduct(b []byte, p *productText) []byte {
	b = append(b, p.cvx...)
	b = append(b, '^')
	b = append(b, p.name...)
	return append(b, "^CVX"...)
}

// needsEscape marks the bytes hl7.Escape changes with the default delimiters: the delimiters,
// newline and the other control characters but tab.
var needsEscape = func() (t [256]bool) {
	d := hl7.DefaultDelimiters
	for _, c := range []byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent, '\n', 0x7f} {
		t[c] = true
	}
	for c := 0; c < ' '; c++ {
		if c != '\t' {
			t[c] = true
		}
	}
	return t
}()

// escape appends s escaped as hl7.Escape does with the default delimiters (which it calls when
// s has anything to escape).
func escape(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if needsEscape[s[i]] {
			return hl7.Escape(dst, s, hl7.DefaultDelimiters)
		}
	}
	if s == `""` {
		return hl7.Escape(dst, s, hl7.DefaultDelimiters)
	}
	return append(dst, s...)
}
