package registry

import (
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// Unit tests of the deterministic identity rules; their effect end to end is tested through MLLP
// in ingest/registry_test.go.

func TestMatchName(t *testing.T) {
	for in, want := range map[string]string{
		"Müller":        "muller",
		"MULLER":        "muller",
		"O'Brien":       "obrien",
		"Smith-Jones":   "smithjones",
		"de la Cruz":    "delacruz",
		"Strauß":        "strauss",
		"José María":    "josemaria",
		"Nguyễn":        "nguyen",
		"  Ava  ":       "ava",
		"Family12":      "family",
		"":              "",
		"Ørsted Ågård ": "ørstedagard", // ø is a letter of its own, not a with a mark
	} {
		if got := MatchName(in); got != want {
			t.Errorf("MatchName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMatchStreet(t *testing.T) {
	same := [][]string{
		{"12 Elm Street", "12 ELM ST.", "12 elm st"},
		{"7 Harbor Avenue Apt 3", "7 Harbor Ave, Apartment 3"},
		{"1 North Main Road", "1 N. Main Rd"},
	}
	for _, group := range same {
		for _, s := range group[1:] {
			if MatchStreet(s) != MatchStreet(group[0]) {
				t.Errorf("MatchStreet(%q) = %q, MatchStreet(%q) = %q: want equal", s, MatchStreet(s), group[0], MatchStreet(group[0]))
			}
		}
	}
	if MatchStreet("12 Elm Street") == MatchStreet("14 Elm Street") {
		t.Error("different house numbers compare equal")
	}
}

func TestCompareDemographics(t *testing.T) {
	base := Demographics{Sex: "M", MatchMother: "obrien", MatchStreet: "12 elm st", Zip: "01101-2345"}
	cases := []struct {
		name     string
		c        Demographics
		match    string
		agree    string
		conflict string
	}{
		{"all agree", Demographics{Sex: "M", MatchMother: "obrien", MatchStreet: "12 elm st", Zip: "01101"}, "strong", "mother_maiden_name,address", ""},
		{"mother only", Demographics{Sex: "M", MatchMother: "obrien"}, "strong", "mother_maiden_name", ""},
		{"address only, unknown sex", Demographics{Sex: "U", MatchStreet: "12 elm st"}, "strong", "address", ""},
		{"address, other ZIP", Demographics{MatchStreet: "12 elm st", Zip: "02139"}, "weak", "", ""},
		{"nothing to compare", Demographics{Sex: "M"}, "weak", "", ""},
		{"sex conflicts", Demographics{Sex: "F", MatchMother: "obrien"}, "weak", "mother_maiden_name", "sex"},
		{"mother conflicts", Demographics{Sex: "M", MatchMother: "kowalski", MatchStreet: "12 elm st"}, "weak", "address", "mother_maiden_name"},
	}
	for _, c := range cases {
		e := compareDemographics(&base, &c.c)
		if e.Match != c.match || strings.Join(e.Agree, ",") != c.agree || strings.Join(e.Conflict, ",") != c.conflict {
			t.Errorf("%s: %+v, want %s agree %q conflict %q", c.name, e, c.match, c.agree, c.conflict)
		}
	}
}

func TestOrderIdentity(t *testing.T) {
	r := New(codes.Default())
	for _, c := range []struct {
		o       ingest.Order
		number  string
		kind    string
		store   bool
		doseKey string
	}{
		{ingest.Order{FillerOrder: "ORD-1^EHR", CVX: "08", CompletionStatus: "CP"}, "ORD-1^EHR", "dose", true, "group:HepB"},
		{ingest.Order{FillerOrder: "9999^EHR", CVX: "107", CompletionStatus: "RE"}, "", "refusal", true, "group:DTAP"},
		{ingest.Order{FillerOrder: "9999", CVX: "998", CompletionStatus: "NA"}, "", "immunity", false, "cvx:998"},
		{ingest.Order{CVX: "998", Observations: []ingest.Observation{{Identifier: ingest.Coded{Code: "59784-9"}}}}, "", "immunity", true, "cvx:998"},
		{ingest.Order{CVX: "20", CompletionStatus: "NA"}, "", "not_administered", true, "group:DTAP"},
		{ingest.Order{CVX: "45"}, "", "dose", true, "group:HepB"},
		{ingest.Order{CVX: "110"}, "", "dose", true, "group:DTAP+HepB+POLIO"},
	} {
		if got := OrderNumber(&c.o); got != c.number {
			t.Errorf("OrderNumber(%q) = %q, want %q", c.o.FillerOrder, got, c.number)
		}
		kind, ok := OrderKind(&c.o)
		if kind != c.kind || ok != c.store {
			t.Errorf("OrderKind(%+v) = %s %v, want %s %v", c.o, kind, ok, c.kind, c.store)
		}
		if got := r.doseKey(&c.o); got != c.doseKey {
			t.Errorf("doseKey(CVX %s) = %q, want %q", c.o.CVX, got, c.doseKey)
		}
	}
}

func TestLinkKeyBlocks(t *testing.T) {
	rec := func(env, family, dob string) *ingest.Record {
		return &ingest.Record{Env: env, Sender: &ingest.Sender{},
			VXU: &ingest.VXU{Patient: ingest.Patient{Names: []ingest.Name{{Family: family, Type: "L"}}, BirthDate: dob}}}
	}
	k1, ok1 := LinkKey(rec("P", "Müller", "20190402"))
	k2, ok2 := LinkKey(rec("P", "MULLER", "20190402120000"))
	if !ok1 || !ok2 || k1 != k2 {
		t.Errorf("one linking block, two keys: %d %v, %d %v", k1, ok1, k2, ok2)
	}
	if k3, _ := LinkKey(rec("T", "Müller", "20190402")); k3 == k1 {
		t.Error("test and production share a linking block")
	}
	if _, ok := LinkKey(rec("P", "Müller", "")); ok {
		t.Error("a patient without birth date has a linking block")
	}
}

// TestBlockOfBirthDay: BlockOf keys the birth date as YYYY-MM-DD whether the demographics come
// from DemographicsOf (the day made once) or elsewhere (read from the database: formatted), and
// follows Birth when it is replaced after DemographicsOf made the day.
func TestBlockOfBirthDay(t *testing.T) {
	pt := &ingest.Patient{BirthDate: "20240229", Names: []ingest.Name{{Family: "Doe", Given: "Jane", Type: "L"}}}
	d := DemographicsOf(pt)
	other := time.Date(2023, 3, 1, 0, 0, 0, 0, time.UTC)
	far := time.Date(12024, 2, 29, 0, 0, 0, 0, time.UTC)
	read := Demographics{Birth: &other, MatchFamily: "doe", MatchGiven: "jane"}
	replaced := d
	replaced.Birth = &other
	for _, tc := range []struct {
		name string
		d    Demographics
		want string
	}{
		{"from the report", d, "2024-02-29"},
		{"read from the database", read, "2023-03-01"},
		{"birth replaced", replaced, "2023-03-01"},
		{"a year of five digits", Demographics{Birth: &far, MatchFamily: "doe", MatchGiven: "jane"}, far.Format(time.DateOnly)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ok := BlockOf("P", &tc.d)
			if !ok || b.Birth != tc.want || b.Family != "doe" || b.Given != "jane" || b.Env != "P" {
				t.Errorf("BlockOf = %+v, %v; want birth %q, doe, jane", b, ok, tc.want)
			}
		})
	}
	if _, ok := BlockOf("P", &Demographics{MatchFamily: "doe", MatchGiven: "jane"}); ok {
		t.Error("BlockOf without a birth date: ok")
	}
}

// TestParseDateValue: parseDate agrees with ParseDate on dates valid and not.
func TestParseDateValue(t *testing.T) {
	for _, s := range []string{"20240229", " 20240229120000-0500 ", "20230229", "2024022", "", "00010101", "00000101",
		"abcdefgh", "2024-02-29", "19991231", "20241301", "20240100"} {
		got, ok := parseDate(s)
		want := ParseDate(s)
		if ok != (want != nil) || ok && !got.Equal(*want) {
			t.Errorf("parseDate(%q) = %v, %v; ParseDate = %v", s, got, ok, want)
		}
	}
}
