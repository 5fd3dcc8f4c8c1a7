package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/vaxgate/vaxgate/admin"
)

// vaxOf returns the vaccination ids of a registry patient reported by a site, oldest first.
func (e *env) vaxOf(reg int64, site *admin.Site) []int64 {
	e.t.Helper()
	rows, err := e.db.Pool.Query(context.Background(), `SELECT id FROM vaccinations WHERE registry_patient_id = $1 AND site_id = $2 ORDER BY id`, reg, site.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// doseHistory sets up, the way the pipeline stores them, a patient reported by S-HS (an
// administered HepB) and S-OTHER (a historical report of that dose, merged into it), plus a
// second S-HS dose entered in error (RXA-21 D).
func (e *env) doseHistory(family string, sharing admin.Sharing) (reg, administered, historical, deleted int64) {
	e.t.Helper()
	ctx := context.Background()
	reg = e.patient(family, "Anh", "2023-01-05", sharing, e.siteHS, e.siteOther)
	administered, historical = e.vaxOf(reg, e.siteHS)[0], e.vaxOf(reg, e.siteOther)[0]
	if _, err := e.db.Pool.Exec(ctx, `UPDATE vaccinations SET cvx = '45', historical = true, info_source = '01', lot = '', mvx = '',
		merged_into = $2 WHERE id = $1`, historical, administered); err != nil {
		e.t.Fatal(err)
	}
	if err := e.db.Pool.QueryRow(ctx, `INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id, site_id, cvx,
			administered_on, historical, lot, mvx, report_messages, report_groups, deleted, deleted_at)
		SELECT env, patient_id, registry_patient_id, organization_id, site_id, '20', '2024-06-01', false, 'ERR-LOT', 'SKB',
			report_messages, report_groups, true, now() FROM vaccinations WHERE id = $1 RETURNING id`, administered).Scan(&deleted); err != nil {
		e.t.Fatal(err)
	}
	return reg, administered, historical, deleted
}

func TestPatientViewShowsCurrentMergedVaccinations(t *testing.T) {
	e := newEnv(t)
	e.user("ro.hs", e.siteHS, admin.RoleReadOnly)
	e.user("ro.other", e.siteOther, admin.RoleReadOnly)
	e.user("reg.rita", nil, "")
	hs, other, reg := e.login("ro.hs"), e.login("ro.other"), e.login("reg.rita")

	yes, administered, historical, deleted := e.doseHistory("Nguyen", admin.SharingYes)
	for _, tok := range []string{hs, other, reg} {
		var p admin.Patient
		e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", yes), tok, nil, &p)
		if len(p.Vaccinations) != 1 {
			t.Fatalf("%d vaccinations shown, want the one dose (deleted %d not shown, historical %d merged): %+v", len(p.Vaccinations), deleted, historical, p.Vaccinations)
		}
		v := p.Vaccinations[0]
		if v.ID != administered || v.CVX != "08" || v.Historical || v.SiteCode != "S-HS" || v.OrganizationCode != "HS" || v.Lot != "LOT-S-HS" {
			t.Fatalf("dose shown = %+v, want S-HS's administered one", v)
		}
		if len(v.Merged) != 1 || v.Merged[0].VaccinationID != historical || !v.Merged[0].Historical || v.Merged[0].CVX != "45" ||
			v.Merged[0].SiteCode != "S-OTHER" || v.Merged[0].OrganizationCode != "OTHER" {
			t.Fatalf("merged reports = %+v, want S-OTHER's historical report", v.Merged)
		}
		if len(p.Reports) != 2 || p.Reports[0].FamilyName != "Nguyen" || p.Reports[0].BirthDate.String() != "2023-01-05" {
			t.Fatalf("reports = %+v", p.Reports)
		}
	}

	// No: each reporting organization sees only what it reported, merged reports included.
	no, administered, historical, _ := e.doseHistory("Tran", admin.SharingNo)
	var p admin.Patient
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", no), hs, nil, &p)
	if len(p.Vaccinations) != 1 || p.Vaccinations[0].ID != administered || len(p.Vaccinations[0].Merged) != 0 || len(p.Reports) != 1 {
		t.Fatalf("HS view of a No patient = %+v", p)
	}
	p = admin.Patient{} // a fresh value: omitted fields must not come from the previous answer
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", no), other, nil, &p)
	if len(p.Vaccinations) != 1 {
		t.Fatalf("OTHER view of a No patient: %+v, want its own historical report", p.Vaccinations)
	}
	if v := p.Vaccinations[0]; v.ID != historical || !v.Historical || v.CVX != "45" || v.SiteCode != "S-OTHER" || v.Lot != "" ||
		v.MVX != "" || v.AdministeredOn.String() != "2024-05-01" || len(v.Merged) != 0 {
		t.Fatalf("OTHER's own report of a No patient's dose = %+v", v)
	}
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", no), reg, nil, &p)
	if len(p.Vaccinations) != 1 || len(p.Vaccinations[0].Merged) != 1 {
		t.Fatalf("registry view of a No patient = %+v", p.Vaccinations)
	}
	// A No patient only OTHER reported is not found by HS.
	hidden := e.patient("Hidden", "Hanna", "2018-02-03", admin.SharingNo, e.siteOther)
	e.fail(http.StatusNotFound, "not_found", "GET", fmt.Sprintf("/api/v1/patients/%d", hidden), hs, nil)

	// Unknown: resolved first, by everyone, registry staff included.
	unknown, _, _, _ := e.doseHistory("Backload", admin.SharingUnknown)
	for _, tok := range []string{hs, other, reg} {
		e.fail(http.StatusConflict, "sharing_unresolved", "GET", fmt.Sprintf("/api/v1/patients/%d", unknown), tok, nil)
	}

	// Search reads the same record: the No patient shows OTHER its own report's demographics.
	var res struct{ Items []admin.PatientSummary }
	e.must(http.StatusOK, "GET", "/api/v1/patients?family_name=tran&birth_date=2023-01-05", other, nil, &res)
	if len(res.Items) != 1 || res.Items[0].ID != no || res.Items[0].GivenName != "Anh" {
		t.Fatalf("search = %+v", res.Items)
	}
}
