package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/vaxgate/vaxgate/admin"
)

func TestPatientLookupHonoursSharing(t *testing.T) {
	e := newEnv(t)
	e.user("ro.hs", e.siteHS, admin.RoleReadOnly)
	e.user("tu.other", e.siteOther, admin.RoleTypicalUser)
	e.user("hsu.hank", e.siteChild, admin.RoleHealthSystemUser)
	e.user("reg.rita", nil, "")
	ro, other, hsu, reg := e.login("ro.hs"), e.login("tu.other"), e.login("hsu.hank"), e.login("reg.rita")

	yes := e.patient("Müller", "Jürgen", "2020-01-02", admin.SharingYes, e.siteHS, e.siteOther)
	no := e.patient("O&Brien", "Siobhan", "2019-06-30", admin.SharingNo, e.siteHS, e.siteOther)
	noElsewhere := e.patient("Hidden", "Hanna", "2018-02-03", admin.SharingNo, e.siteOther)
	unknown := e.patient("Backload", "Bea", "2017-07-07", admin.SharingUnknown, e.siteHS)

	// Yes: everyone with a role sees everything.
	var p admin.Patient
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", yes), ro, nil, &p)
	if p.FamilyName != "Müller" || len(p.Vaccinations) != 2 || len(p.Reports) != 2 {
		t.Fatalf("patient = %+v", p)
	}

	// No: the reporting organizations see their own records only; others do not see the patient.
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", no), ro, nil, &p)
	if len(p.Vaccinations) != 1 || p.Vaccinations[0].SiteCode != "S-HS" || len(p.Reports) != 1 || p.Reports[0].OrganizationCode != "HS" {
		t.Fatalf("HS view of a No patient = %+v", p)
	}
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", no), other, nil, &p)
	if len(p.Vaccinations) != 1 || p.Vaccinations[0].SiteCode != "S-OTHER" {
		t.Fatalf("OTHER view of a No patient = %+v", p)
	}
	e.fail(http.StatusNotFound, "not_found", "GET", fmt.Sprintf("/api/v1/patients/%d", noElsewhere), ro, nil)
	// A health system user sees what the whole health system reported (S-HS is in it).
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", no), hsu, nil, &p)
	if len(p.Vaccinations) != 1 || p.Vaccinations[0].SiteCode != "S-HS" {
		t.Fatalf("HSU view of a No patient = %+v", p)
	}
	e.fail(http.StatusNotFound, "not_found", "GET", fmt.Sprintf("/api/v1/patients/%d", noElsewhere), hsu, nil)
	// Registry staff see everything.
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", noElsewhere), reg, nil, &p)

	// Unknown: nobody sees the records until it is resolved.
	for _, tok := range []string{ro, other, reg} {
		e.fail(http.StatusConflict, "sharing_unresolved", "GET", fmt.Sprintf("/api/v1/patients/%d", unknown), tok, nil)
	}

	// Search.
	var res struct{ Items []admin.PatientSummary }
	e.must(http.StatusOK, "GET", "/api/v1/patients?family_name=m%C3%BCller&birth_date=2020-01-02", ro, nil, &res)
	if len(res.Items) != 1 || res.Items[0].ID != yes || res.Items[0].GivenName != "Jürgen" {
		t.Fatalf("search = %+v", res.Items)
	}
	e.must(http.StatusOK, "GET", "/api/v1/patients?family_name=Hidden&birth_date=2018-02-03", ro, nil, &res)
	if len(res.Items) != 0 {
		t.Fatalf("No patient of another organization found: %+v", res.Items)
	}
	e.must(http.StatusOK, "GET", "/api/v1/patients?family_name=Hidden&birth_date=2018-02-03", other, nil, &res)
	if len(res.Items) != 1 {
		t.Fatalf("reporting organization does not find its No patient: %+v", res.Items)
	}
	res.Items = nil
	e.must(http.StatusOK, "GET", "/api/v1/patients?family_name=backload&given_name=B&birth_date=2017-07-07", ro, nil, &res)
	if len(res.Items) != 1 || !res.Items[0].ResolutionRequired || res.Items[0].FamilyName != "" {
		t.Fatalf("Unknown patient in search = %+v", res.Items)
	}
	e.fail(http.StatusBadRequest, "invalid", "GET", "/api/v1/patients?family_name=x", ro, nil)
	e.fail(http.StatusBadRequest, "invalid", "GET", "/api/v1/patients?family_name=x&birth_date=2020-13-01", ro, nil)
	e.fail(http.StatusBadRequest, "invalid", "GET", "/api/v1/patients?family_name=x&birth_date=2020-01-01&env=X", ro, nil)

	// A user without any site role cannot look up patients... registry staff excepted: a user
	// whose only membership was removed.
	e.user("nobody.nora", e.siteHS, admin.RoleReadOnly)
	nora := e.userByName("nobody.nora")
	if _, err := e.svc.RemoveMembership(context.Background(), e.sys, nora.ID, e.siteHS.ID); err != nil {
		t.Fatal(err)
	}
	e.fail(http.StatusForbidden, "forbidden", "GET", fmt.Sprintf("/api/v1/patients/%d", yes), e.login("nobody.nora"), nil)
}

func TestSharingChanges(t *testing.T) {
	e := newEnv(t)
	e.user("ro.hs", e.siteHS, admin.RoleReadOnly)
	e.user("roa.hs", e.siteHS, admin.RoleReadOnlyAdministrator)
	tu := e.user("tu.hs", e.siteHS, admin.RoleTypicalUser)
	e.user("aa.other", e.siteOther, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	ro, roa, tuTok, otherTok := e.login("ro.hs"), e.login("roa.hs"), e.login("tu.hs"), e.login("aa.other")

	p := e.patient("Objector", "Olive", "2015-05-05", admin.SharingYes, e.siteHS)
	u := e.patient("Unknown", "Uma", "2016-06-06", admin.SharingUnknown, e.siteHS)
	path := func(id int64) string { return fmt.Sprintf("/api/v1/patients/%d/sharing", id) }

	// Read-only roles read only.
	e.fail(http.StatusForbidden, "forbidden", "POST", path(p), ro, map[string]string{"status": "N", "form_ref": "OBJ-1"})
	e.fail(http.StatusForbidden, "forbidden", "POST", path(p), roa, map[string]string{"status": "N", "form_ref": "OBJ-1"})
	// Bad input.
	e.fail(http.StatusBadRequest, "invalid", "POST", path(p), tuTok, map[string]string{"status": "U"})
	e.fail(http.StatusBadRequest, "form_or_attestation_required", "POST", path(p), tuTok, map[string]string{"status": "N"}) // every change needs the form or an attestation
	e.fail(http.StatusNotFound, "not_found", "POST", path(999999), tuTok, map[string]string{"status": "N", "form_ref": "OBJ-1"})
	e.fail(http.StatusConflict, "sharing_unchanged", "POST", path(p), tuTok, map[string]string{"status": "Y"})

	// Objection.
	var c admin.SharingChange
	e.must(http.StatusOK, "POST", path(p), tuTok, map[string]string{"status": "N", "form_ref": "OBJ-2025-001", "reason": "patient objects"}, &c)
	if c.OldStatus != "Y" || c.NewStatus != "N" || c.Source != "admin" || c.UserID == nil || *c.UserID != tu.ID || c.FormRef != "OBJ-2025-001" {
		t.Fatalf("change = %+v", c)
	}
	if e.sharingOf(p) != "N" {
		t.Fatal("status not changed")
	}
	// Now another organization cannot see the patient, nor change it.
	e.fail(http.StatusNotFound, "not_found", "GET", fmt.Sprintf("/api/v1/patients/%d", p), otherTok, nil)
	e.fail(http.StatusNotFound, "not_found", "POST", path(p), otherTok, map[string]string{"status": "Y", "form_ref": "W-1"})
	e.fail(http.StatusConflict, "sharing_unchanged", "POST", path(p), tuTok, map[string]string{"status": "N", "form_ref": "OBJ-2"})

	// Withdrawal needs the form (or an attestation) too.
	e.fail(http.StatusBadRequest, "form_or_attestation_required", "POST", path(p), tuTok, map[string]string{"status": "Y"})
	e.must(http.StatusOK, "POST", path(p), tuTok, map[string]string{"status": "Y", "form_ref": "WD-2025-001"}, &c)
	if c.OldStatus != "N" || c.NewStatus != "Y" || c.Reason != "withdrawal of objection" {
		t.Fatalf("withdrawal = %+v", c)
	}
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", p), otherTok, nil, nil)

	// Resolving Unknown: only an organization that reported the patient (or registry staff), and
	// with the form or an attestation.
	msg := e.fail(http.StatusForbidden, "forbidden", "POST", path(u), otherTok, map[string]string{"status": "Y", "attestation": "mother confirmed by phone"})
	if !containsAll(msg, "reported") {
		t.Errorf("refusal %q does not say why", msg)
	}
	if e.sharingOf(u) != "U" {
		t.Fatal("a refused change changed the status")
	}
	e.fail(http.StatusBadRequest, "form_or_attestation_required", "POST", path(u), tuTok, map[string]string{"status": "Y"})
	e.must(http.StatusOK, "POST", path(u), tuTok, map[string]string{"status": "Y", "attestation": "mother confirmed by phone"}, &c)
	if c.OldStatus != "U" || c.Reason != "resolve unknown" || c.Attestation != "mother confirmed by phone" {
		t.Fatalf("resolution = %+v", c)
	}
	var got admin.Patient
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", u), ro, nil, &got)
	if got.Sharing != "Y" || len(got.History) != 1 {
		t.Fatalf("resolved patient = %+v", got)
	}

	// Every change is in sharing_changes (source admin, user, form) and in the audit log.
	rows, err := e.db.Pool.Query(context.Background(), `SELECT old_status, new_status, source, user_id, form_ref FROM sharing_changes
		WHERE registry_patient_id = $1 ORDER BY id`, p)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for rows.Next() {
		var oldS, newS, source, form string
		var user *int64
		if err := rows.Scan(&oldS, &newS, &source, &user, &form); err != nil {
			t.Fatal(err)
		}
		if source != "admin" || user == nil || *user != tu.ID || form == "" {
			t.Errorf("sharing_changes row: %s→%s %s %v %q", oldS, newS, source, user, form)
		}
		n++
	}
	if n != 2 {
		t.Fatalf("%d sharing_changes rows, want 2", n)
	}
	es := e.audit("patient.set_sharing")
	if len(es) != 3 {
		t.Fatalf("%d audit entries, want 3", len(es))
	}
	last := es[len(es)-1] // the objection (newest first)
	var before, after map[string]any
	if err := json.Unmarshal(last.Before, &before); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(last.After, &after); err != nil {
		t.Fatal(err)
	}
	if last.Actor != "tu.hs" || last.TargetID != fmt.Sprint(p) || before["sharing"] != "Y" || after["sharing"] != "N" || after["form_ref"] != "OBJ-2025-001" {
		t.Fatalf("objection audit = %+v (%s → %s)", last, last.Before, last.After)
	}
	// Audit entries hold no patient names.
	for _, x := range es {
		if containsAll(string(x.Before)+string(x.After), "Objector") {
			t.Errorf("patient name in the audit log: %s", x.After)
		}
	}

	// The CLI's system actor may change it too (user_id NULL).
	if _, err := e.svc.SetSharing(context.Background(), e.sys, p, admin.SharingInput{Status: admin.SharingNo, FormRef: "OBJ-PAPER-7"}); err != nil {
		t.Fatal(err)
	}
}
