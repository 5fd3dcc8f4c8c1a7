package registry

import (
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/ingest"
)

// TestDemographicsKeysOneString: DemographicsOf builds its match keys into one string
// (matchKeys); each is what MatchName, MatchStreet and dateOnly give on their own, for ASCII and
// other names, empty values, keys longer than the buffer, and birth dates of every kind.
func TestDemographicsKeysOneString(t *testing.T) {
	long := strings.Repeat("O'BRIEN-SMITH ", 30)
	names := []string{"", "DOE", "doe", "O'Brien", "Müller", "Mul-ler", "ŁUKASZ", "José María", "田中", long, "-", "Anne Marie"}
	streets := []string{"", "123 MAIN STREET", "123 Main St.", "Rue de l'Église 4", "PO BOX 12", long, "  ", "1600 Pennsylvania Avenue NW Apt 2"}
	births := []string{"", "20200101", "2020010112", "19991231235959", "2020-01-01", "00010101", "20201332", "x"}
	n := 0
	for i, fam := range names {
		for j, street := range streets {
			given := names[(i+j+1)%len(names)]
			mother := names[(i+2*j+3)%len(names)]
			birth := births[(i+j)%len(births)]
			pt := &ingest.Patient{Names: []ingest.Name{{Family: fam, Given: given, Type: "L"}},
				MotherMaiden: ingest.Name{Family: mother}, BirthDate: birth,
				Addresses: []ingest.Address{{Street: street, Type: "H"}}}
			d := DemographicsOf(pt)
			want := [...]string{MatchName(fam), MatchName(given), MatchName(mother), MatchStreet(street), ""}
			if b := ParseDate(birth); b != nil {
				want[4] = dateOnly(*b)
			}
			got := [...]string{d.MatchFamily, d.MatchGiven, d.MatchMother, d.MatchStreet, d.birthDay}
			if got != want {
				t.Errorf("family %q given %q mother %q street %q birth %q:\n got %q\nwant %q", fam, given, mother, street, birth, got, want)
			}
			if (d.Birth == nil) != (want[4] == "") || d.birthDayOf != d.Birth {
				t.Errorf("birth %q: Birth %v, birthDayOf %p, Birth %p", birth, d.Birth, d.birthDayOf, d.Birth)
			}
			n++
		}
	}
	if n < 50 {
		t.Fatalf("only %d cases", n)
	}
	pt := &ingest.Patient{Names: []ingest.Name{{Family: "DOE", Given: "JANE", Type: "L"}},
		MotherMaiden: ingest.Name{Family: "SMITH"}, BirthDate: "20200101",
		Addresses: []ingest.Address{{Street: "123 MAIN ST", Type: "H"}}}
	if allocs := testing.AllocsPerRun(100, func() { DemographicsOf(pt) }); allocs > 2 { // the birth date (*time.Time) and the one string of the keys
		t.Errorf("DemographicsOf: %v allocations, want at most 2", allocs)
	}
}
