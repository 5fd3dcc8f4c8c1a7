package registry

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
)

// The registry's rules applied to views built in Go, without a database: what Apply and Merge
// decide for each case. (End to end, through MLLP and PostgreSQL: ingest/registry_test.go.)

// seqIDs hands out ids from 1000 up, per table.
type seqIDs map[string]int64

func (s seqIDs) Next(table string) (int64, bool) {
	if s[table] == 0 {
		s[table] = 1000
	}
	s[table]++
	return s[table], true
}

type testPatient struct {
	mrn, family, given, dob, sex, mother, street, zip, protection string
}

type testOrder struct {
	filler, cvx, date, action, completion, source, lot string
	immunity                                           bool
}

func testRecord(org int64, p testPatient, orders ...testOrder) *ingest.Record {
	v := &ingest.VXU{Patient: ingest.Patient{
		Identifiers: []ingest.Identifier{{Value: p.mrn, Authority: "EHR", Type: "MR"}},
		Names:       []ingest.Name{{Family: p.family, Given: p.given, Type: "L"}},
		BirthDate:   p.dob, Sex: p.sex, MotherMaiden: ingest.Name{Family: p.mother}, Protection: p.protection,
	}}
	if p.street != "" || p.zip != "" {
		v.Patient.Addresses = []ingest.Address{{Street: p.street, Zip: p.zip, Type: "L"}}
	}
	for i, o := range orders {
		src := o.source
		if src == "" {
			src = "00"
		}
		x := ingest.Order{Group: i + 1, FillerOrder: o.filler, CVX: o.cvx, AdministeredAt: o.date, ActionCode: o.action,
			CompletionStatus: o.completion, InfoSource: ingest.Coded{Code: src}}
		if o.lot != "" {
			x.Lots = []string{o.lot}
		}
		if o.immunity {
			x.Observations = []ingest.Observation{{Identifier: ingest.Coded{Code: "59784-9"}}}
		}
		v.Orders = append(v.Orders, x)
	}
	return &ingest.Record{Env: "P", ResendKey: true, VXU: v,
		Sender: &ingest.Sender{OrganizationID: org, SiteID: org * 10, SiteCode: fmt.Sprintf("SITE-%d", org)}}
}

// world applies records one after the other to one view, as a batch does.
type world struct {
	t    *testing.T
	r    *Registry
	v    *View
	ids  seqIDs
	msg  int64
	warn [][]string // 204 findings per record
}

func newWorld(t *testing.T) *world {
	return &world{t: t, r: New(nil), v: NewView(), ids: seqIDs{}, msg: 100}
}

func (w *world) apply(rec *ingest.Record) []string {
	w.t.Helper()
	w.msg++
	fs, err := w.r.Apply(w.v, w.ids, rec, w.msg)
	if err != nil {
		w.t.Fatal(err)
	}
	var out []string
	for _, f := range fs {
		out = append(out, fmt.Sprintf("%d:%s", f.Code, f.Rule))
	}
	return out
}

// known adds a sender patient read from the database, with its registry patient.
func (w *world) known(id, regID, org int64, p testPatient, sharing string) *Patient {
	rec := testRecord(org, p)
	d := DemographicsOf(&rec.VXU.Patient)
	k, _ := KeyOf(rec)
	pt := &Patient{ID: id, RegID: regID, Key: k, D: d}
	w.v.AddPatient(pt, &RegistryPatient{ID: regID, Env: "P", Family: p.family, Given: p.given, Birth: d.Birth, Sharing: sharing})
	return pt
}

func (w *world) vaccination(id int64, p *Patient, filler, cvx, date string, historical bool) *Vaccination {
	d := ParseDate(date)
	x := &Vaccination{ID: id, PatientID: p.ID, RegID: p.RegID, Env: "P", Org: p.Key.Org, Filler: filler, Kind: KindDose,
		DoseKey: New(nil).doseKey(&ingest.Order{CVX: cvx}), Code: cvx, CVX: cvx, Date: *d, Historical: historical}
	w.v.AddVaccination(x)
	return x
}

func (w *world) vaccs() []*Vaccination {
	_, _, v, _, _ := w.v.Written()
	return v
}

var ava = testPatient{mrn: "A-1", family: "Smith", given: "Ava", dob: "20200105", sex: "F", mother: "Jones",
	street: "12 Elm Street", zip: "01101"}

func TestLinking(t *testing.T) {
	cases := []struct {
		name     string
		p        testPatient
		linked   bool
		reviewed int // candidates in the possible-duplicate review, 0: none
	}{
		{"strong: mother agrees", testPatient{mrn: "B-1", family: "SMITH", given: "ava", dob: "20200105", mother: "Jones"}, true, 0},
		{"strong: address agrees", testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200105", street: "12 ELM ST", zip: "01101-1234"}, true, 0},
		{"weak: name and birth date only", testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200105"}, false, 1},
		{"conflict: sex", testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200105", sex: "M", mother: "Jones"}, false, 1},
		{"conflict: mother", testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200105", mother: "Brown"}, false, 1},
		{"other block: given name", testPatient{mrn: "B-1", family: "Smith", given: "Eva", dob: "20200105", mother: "Jones"}, false, 0},
		{"other block: birth date", testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200106", mother: "Jones"}, false, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			w.known(1, 10, 1, ava, "Y")
			w.apply(testRecord(2, c.p, testOrder{filler: "O1", cvx: "08", date: "20240301"}))
			regs, patients, _, sharing, reviews := w.v.Written()
			if len(patients) != 1 || !patients[0].New {
				t.Fatalf("patients written %+v", patients)
			}
			if got := patients[0].RegID == 10; got != c.linked {
				t.Errorf("linked to the known registry patient: %v, want %v", got, c.linked)
			}
			if c.linked && (len(regs) != 1 || regs[0].New || len(sharing) != 0) {
				t.Errorf("linked: registry patients written %+v, sharing %+v; want the known one updated, no new status", regs, sharing)
			}
			if !c.linked && (len(regs) != 1 || !regs[0].New || len(sharing) != 1 || sharing[0].Old != "") {
				t.Errorf("not linked: registry patients written %+v, sharing %+v; want a new one with its initial status", regs, sharing)
			}
			n := 0
			for _, r := range reviews {
				if r.Kind == "possible-duplicate" {
					n = len(r.Candidates)
					if r.Candidates[0] != 10 {
						t.Errorf("review candidates %v, want [10]", r.Candidates)
					}
				}
			}
			if n != c.reviewed {
				t.Errorf("possible-duplicate candidates %d, want %d", n, c.reviewed)
			}
		})
	}
	t.Run("two registry patients match", func(t *testing.T) {
		w := newWorld(t)
		w.known(1, 10, 1, ava, "Y")
		w.known(2, 11, 3, testPatient{mrn: "C-1", family: "Smith", given: "Ava", dob: "20200105", mother: "Jones"}, "Y")
		w.apply(testRecord(2, testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200105", mother: "Jones"}))
		_, patients, _, _, reviews := w.v.Written()
		if patients[0].RegID == 10 || patients[0].RegID == 11 || len(reviews) != 1 || !slices.Equal(reviews[0].Candidates, []int64{10, 11}) {
			t.Errorf("ambiguous match: linked to %d, reviews %+v; want a new person and both candidates for review", patients[0].RegID, reviews)
		}
	})
	t.Run("a later batch-mate links to a patient created in the batch", func(t *testing.T) {
		w := newWorld(t)
		w.apply(testRecord(1, ava))
		w.apply(testRecord(2, testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200105", mother: "Jones"}))
		_, patients, _, _, _ := w.v.Written()
		if len(patients) != 2 || patients[0].RegID != patients[1].RegID {
			t.Errorf("patients %+v: want both linked to one registry patient", patients)
		}
	})
}

func TestVaccinationActions(t *testing.T) {
	w := newWorld(t)
	hepB := testOrder{filler: "O1", cvx: "08", date: "20240301", lot: "L1"}
	if f := w.apply(testRecord(1, ava, hepB)); f != nil {
		t.Fatalf("A: findings %v", f)
	}
	// A again and U: the same row, updated, every report referenced with its group.
	w.apply(testRecord(1, ava, testOrder{filler: "O2", cvx: "20", date: "20240301"}, hepB))
	u := hepB
	u.action, u.lot = "U", "L2"
	w.apply(testRecord(1, ava, u))
	vs := w.vaccs()
	if len(vs) != 2 {
		t.Fatalf("%d vaccinations written, want 2", len(vs))
	}
	x := vs[0]
	if x.Lot != "L2" || x.Action != "U" || x.Deleted ||
		!slices.Equal(x.Reports, []Ref{{101, 1}, {102, 2}, {103, 1}}) {
		t.Errorf("after A, A, U: %+v", x)
	}
	// D marks it entered in error, never removes it.
	d := hepB
	d.action = "D"
	w.apply(testRecord(1, ava, d))
	if !x.Deleted || !x.DeletedNow || x.Action != "D" || len(x.Reports) != 4 {
		t.Errorf("after D: %+v", x)
	}
	// Unknown keys change nothing and are answered 204.
	for _, o := range []testOrder{
		{filler: "O404", cvx: "08", date: "20240301", action: "U"},
		{filler: "O405", cvx: "08", date: "20240301", action: "D"},
		{cvx: "20", date: "20230101", action: "D"},
	} {
		before := len(w.vaccs())
		if f := w.apply(testRecord(1, ava, o)); !slices.Equal(f, []string{"204:rxa-21-unknown-key"}) {
			t.Errorf("%+v: findings %v, want one 204", o, f)
		}
		if len(w.vaccs()) != before {
			t.Errorf("%+v: a vaccination was written", o)
		}
	}
	// U without an order number of an event the registry does not hold adds it.
	if f := w.apply(testRecord(1, ava, testOrder{cvx: "10", date: "20240301", action: "U"})); f != nil || len(w.vaccs()) != 3 {
		t.Errorf("U of a new event without order number: findings %v, %d vaccinations", f, len(w.vaccs()))
	}
}

func TestOrderNumberReusedForAnotherPatient(t *testing.T) {
	w := newWorld(t)
	other := w.known(1, 10, 1, testPatient{mrn: "Z-9", family: "Other", given: "Kid", dob: "20190101"}, "Y")
	theirs := w.vaccination(50, other, "O1", "08", "20240301", false)
	w.apply(testRecord(1, ava, testOrder{filler: "O1", cvx: "08", date: "20240301"}))
	_, _, vs, _, reviews := w.v.Written()
	if len(vs) != 1 || vs[0] == theirs || vs[0].Filler != "" {
		t.Fatalf("written %+v: want a new vaccination without the reused order number", vs)
	}
	if len(reviews) != 1 || reviews[0].Kind != "order-number-conflict" || !slices.Equal(reviews[0].Vaccinations, []int64{50, vs[0].ID}) {
		t.Errorf("reviews %+v", reviews)
	}
	// U naming it for this patient is recorded the same way, not a 204.
	if f := w.apply(testRecord(1, ava, testOrder{filler: "O1", cvx: "08", date: "20240302", action: "U"})); f != nil {
		t.Errorf("U of another patient's order number: findings %v", f)
	}
}

func TestAdministeredWinsMerge(t *testing.T) {
	day := "20240301"
	cases := []struct {
		name  string
		setup func(w *world, p *Patient)
		send  []testOrder // by org 2, one message each
		want  map[string]string
	}{
		{"historical merged into administered", func(w *world, p *Patient) { w.vaccination(50, p, "A1", "08", day, false) },
			[]testOrder{{filler: "H1", cvx: "45", date: day, source: "01"}}, map[string]string{"H1": "A1"}},
		{"administered wins over an earlier historical", func(w *world, p *Patient) { w.vaccination(50, p, "H0", "45", day, true) },
			[]testOrder{{filler: "A2", cvx: "08", date: day}}, map[string]string{"H0": "A2", "A2": ""}},
		{"historical into the earliest historical", func(w *world, p *Patient) { w.vaccination(50, p, "H0", "45", day, true) },
			[]testOrder{{filler: "H2", cvx: "08", date: day, source: "01"}}, map[string]string{"H0": "", "H2": "H0"}},
		{"administered reports stay apart", func(w *world, p *Patient) { w.vaccination(50, p, "A1", "08", day, false) },
			[]testOrder{{filler: "A2", cvx: "08", date: day}}, map[string]string{"A1": "", "A2": ""}},
		{"another vaccine group is another dose", func(w *world, p *Patient) { w.vaccination(50, p, "A1", "08", day, false) },
			[]testOrder{{filler: "H3", cvx: "20", date: day, source: "01"}}, map[string]string{"H3": ""}},
		{"deleting the survivor re-merges", func(w *world, p *Patient) { w.vaccination(50, p, "H0", "45", day, true) },
			[]testOrder{{filler: "A2", cvx: "08", date: day}, {filler: "A2", cvx: "08", date: day, action: "D"}},
			map[string]string{"H0": "", "A2": ""}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			p := w.known(1, 10, 1, ava, "Y")
			c.setup(w, p)
			for _, o := range c.send {
				w.apply(testRecord(2, testPatient{mrn: "B-1", family: "Smith", given: "Ava", dob: "20200105", mother: "Jones"}, o))
			}
			w.v.Merge()
			byFiller, fillerOf := map[string]*Vaccination{}, map[int64]string{}
			for _, x := range w.v.byReg[10] {
				byFiller[x.Filler], fillerOf[x.ID] = x, x.Filler
			}
			for f, want := range c.want {
				x := byFiller[f]
				if x == nil {
					t.Fatalf("no vaccination %s", f)
				}
				if got := fillerOf[x.MergedInto]; got != want {
					t.Errorf("%s merged into %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestSharing(t *testing.T) {
	goLive := func(rec *ingest.Record) { rec.Sharing.PreGoLive = true }
	pd1 := func(rec *ingest.Record) { rec.Sharing.HonorPD1 = true }
	historical := testOrder{filler: "H1", cvx: "08", date: "20240301", source: "01"}
	given := testOrder{filler: "A1", cvx: "08", date: "20240301"}
	protect := ava
	protect.protection = "Y"
	cases := []struct {
		name    string
		initial string // "": new patient
		p       testPatient
		o       testOrder
		opts    []func(*ingest.Record)
		want    string
		source  string
	}{
		{"new: default Yes", "", ava, given, nil, "Y", SourcePolicy},
		{"new: before go-live", "", ava, given, []func(*ingest.Record){goLive}, "U", SourcePolicy},
		{"new: historical only", "", ava, historical, nil, "U", SourcePolicy},
		{"new: PD1-12 Y recorded, not honoured (MA)", "", protect, given, nil, "Y", SourcePolicy},
		{"new: PD1-12 Y honoured (pd1 policy)", "", protect, given, []func(*ingest.Record){pd1}, "N", SourceHL7},
		{"update: Unknown resolved by an encounter", "U", ava, given, nil, "Y", SourcePolicy},
		{"update: Unknown stays with historical only", "U", ava, historical, nil, "U", ""},
		{"update: Unknown stays before go-live", "U", ava, given, []func(*ingest.Record){goLive}, "U", ""},
		{"update: No is never changed by the policy", "N", ava, given, nil, "N", ""},
		{"update: PD1-12 Y ignored (MA)", "Y", protect, given, nil, "Y", ""},
		{"update: PD1-12 Y honoured (pd1 policy)", "Y", protect, given, []func(*ingest.Record){pd1}, "N", SourceHL7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			if c.initial != "" {
				w.known(1, 10, 1, ava, c.initial)
			}
			rec := testRecord(1, c.p, c.o)
			for _, f := range c.opts {
				f(rec)
			}
			w.apply(rec)
			regs, _, _, sharing, _ := w.v.Written()
			if len(regs) != 1 || regs[0].Sharing != c.want {
				t.Fatalf("registry patient %+v, want sharing %s", regs, c.want)
			}
			switch {
			case c.source == "" && len(sharing) != 0:
				t.Errorf("sharing changes %+v, want none", sharing)
			case c.source != "" && (len(sharing) != 1 || sharing[0].New != c.want || sharing[0].Source != c.source ||
				sharing[0].Old != c.initial || sharing[0].MessageID != 101):
				t.Errorf("sharing changes %+v, want %s→%s by %s", sharing, c.initial, c.want, c.source)
			}
		})
	}
}

func TestRefusalsAndImmunity(t *testing.T) {
	w := newWorld(t)
	w.apply(testRecord(1, ava,
		testOrder{filler: "9999", cvx: "107", date: "20240301", completion: "RE"},
		testOrder{filler: "9999", cvx: "998", date: "20240301", completion: "NA"},
		testOrder{cvx: "998", date: "20240301", completion: "NA", immunity: true},
		testOrder{cvx: "20", date: "20240301", completion: "NA"}))
	var kinds []string
	for _, x := range w.vaccs() {
		kinds = append(kinds, x.Kind+"/"+x.Filler)
	}
	if want := []string{"refusal/", "immunity/", "not_administered/"}; !slices.Equal(kinds, want) {
		t.Errorf("recorded %v, want %v (998 without evidence of immunity records nothing; ORC-3 9999 identifies nothing)", kinds, want)
	}
}

func TestParseDate(t *testing.T) {
	if d := ParseDate("20240229103000-0500"); d == nil || !d.Equal(time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("ParseDate = %v", d)
	}
	for _, s := range []string{"", "2024", "20240230", "2024-02-01"} {
		if d := ParseDate(s); d != nil {
			t.Errorf("ParseDate(%q) = %v, want nil", s, d)
		}
	}
}

// TestUpdateMovesDoseBetweenGroups: a U that changes the administration date takes the report out
// of its dose group (the group left is merged again: the historical report there survives alone)
// and into another.
func TestUpdateMovesDoseBetweenGroups(t *testing.T) {
	w := newWorld(t)
	p := w.known(1, 10, 1, ava, "Y")
	administered := w.vaccination(50, p, "A1", "08", "20240301", false)
	hist := w.vaccination(51, p, "H1", "45", "20240301", true)
	hist.MergedInto = 50
	w.apply(testRecord(1, ava, testOrder{filler: "A1", cvx: "08", date: "20240315", action: "U"}))
	w.v.Merge()
	if hist.MergedInto != 0 || administered.MergedInto != 0 || !administered.Date.Equal(*ParseDate("20240315")) {
		t.Errorf("after the U: historical merged into %d, administered into %d on %v; want both shown",
			hist.MergedInto, administered.MergedInto, administered.Date)
	}
	if _, _, vs, _, _ := w.v.Written(); len(vs) != 2 {
		t.Errorf("%d vaccinations written, want both (the moved one, and the one whose merge changed)", len(vs))
	}
	// Back to the first date: merged again.
	w.apply(testRecord(1, ava, testOrder{filler: "A1", cvx: "08", date: "20240301", action: "U"}))
	w.v.Merge()
	if hist.MergedInto != 50 {
		t.Errorf("after the second U: historical merged into %d, want 50", hist.MergedInto)
	}
}
