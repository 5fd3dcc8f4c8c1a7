package registry

import "testing"

// TestRegistryPatientWrittenOnlyWhenChanged: a patient reported again as the registry already
// knows them leaves the registry patient unwritten (the sender patient still gets the report
// reference); a report that changes a field, or the data-sharing status, writes it.
func TestRegistryPatientWrittenOnlyWhenChanged(t *testing.T) {
	same := ava
	cases := []struct {
		name    string
		p       testPatient
		sharing string // the registry patient's status before
		written bool
	}{
		{"same demographics", same, "Y", false},
		{"new postal code", func() testPatient { p := same; p.zip = "01102"; return p }(), "Y", true},
		{"new family name", func() testPatient { p := same; p.family = "Smith-Jones"; return p }(), "Y", true},
		{"unknown status resolved by an encounter", same, "U", true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			rec := testRecord(1, ava)
			d := DemographicsOf(&rec.VXU.Patient)
			k, _ := KeyOf(rec)
			pt := &Patient{ID: 7, RegID: 70, Key: k, D: d}
			w.v.AddPatient(pt, &RegistryPatient{ID: 70, Env: "P", Family: d.Name.Family, Given: d.Name.Given,
				Middle: d.Name.Middle, Birth: d.Birth, Sex: d.Sex, Mother: d.Mother, Zip: d.Zip, Sharing: c.sharing})
			w.apply(testRecord(1, c.p, testOrder{filler: "F-1", cvx: "08", date: "20240301"}))
			regs, patients, _, _, _ := w.v.Written()
			if got := len(regs) == 1; got != c.written {
				t.Errorf("registry patient written: %v, want %v", got, c.written)
			}
			if len(patients) != 1 || len(patients[0].Reports) != 1 {
				t.Errorf("sender patient: %d written, want 1 with the report's reference", len(patients))
			}
		})
	}
}
