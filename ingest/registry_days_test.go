package ingest_test

import (
	"slices"
	"testing"
)

// TestRegistryDoseMovedToAnotherDay: the writer reads a registry patient's doses only on the days
// a batch's reports name, and on the day of each vaccination an order number names. An update
// that moves an administered dose to another day must still find the dose group it leaves: the
// historical report it had absorbed there is the current dose of that day again. (Each message
// is its own batch here, so nothing of the old day is in memory from an earlier record.)
func TestRegistryDoseMovedToAnotherDay(t *testing.T) {
	kid := child{family: "Okafor", given: "Ada", mother: "Eze", dob: "20230105", sex: "F"}
	e := newEngine(t, "production")
	a, b := e.siteA, siteB(e, t, "production")
	ka, kb := kid, kid
	ka.mrn, kb.mrn = "A-7", "B-7"
	b.accept(t, b.vxu("MV-1", kb, dose{order: "H-7^CLINIC", date: "20240301", cvx: "45", text: "Hep B, unspecified formulation", historical: true}))
	a.accept(t, a.vxu("MV-2", ka, dose{order: "G-7^CLINIC", date: "20240301", cvx: "08", text: "Hep B, adolescent or pediatric"}))
	if d := a.record(t, "P", "A-7").Doses(); len(d) != 1 || len(d[0].Merged) != 1 {
		t.Fatalf("before the update: %d doses (%+v), want the administered one with the historical merged", len(d), d)
	}
	a.accept(t, a.vxu("MV-3", ka, dose{order: "G-7^CLINIC", date: "20240305", cvx: "08", text: "Hep B, adolescent or pediatric", action: "U"}))
	d := a.record(t, "P", "A-7").Doses()
	var days []string
	for _, x := range d {
		days = append(days, x.AdministeredOn.Format("20060102")+":"+x.CVX)
		if len(x.Merged) != 0 {
			t.Errorf("dose %s %s still has %d merged reports", x.AdministeredOn.Format("20060102"), x.CVX, len(x.Merged))
		}
	}
	slices.Sort(days)
	if want := []string{"20240301:45", "20240305:08"}; !slices.Equal(days, want) {
		t.Fatalf("after moving the administered dose: doses %v, want %v (the historical report current again on its day)", days, want)
	}
}
