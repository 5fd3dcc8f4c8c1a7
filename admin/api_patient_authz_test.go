package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/admin"
)

// TestPatientViewsAudited: every view of a patient record is in the audit log (who, which
// patient, the rule), without the patient's data; a refused view is not.
func TestPatientViewsAudited(t *testing.T) {
	e := newEnv(t)
	e.user("tu.hs", e.siteHS, admin.RoleTypicalUser)
	e.user("tu.other", e.siteOther, admin.RoleTypicalUser)
	tok, other := e.login("tu.hs"), e.login("tu.other")
	p := e.patient("Viewed", "Vera", "2017-07-07", admin.SharingYes, e.siteHS)
	n := e.patient("Private", "Pia", "2017-07-07", admin.SharingNo, e.siteHS)
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", p), tok, nil, nil)
	e.fail(http.StatusNotFound, "not_found", "GET", fmt.Sprintf("/api/v1/patients/%d", n), other, nil)
	es := e.audit("patient.view")
	if len(es) != 1 || es[0].Actor != "tu.hs" || es[0].TargetID != fmt.Sprint(p) || es[0].Rule != admin.RuleReportingOrg {
		t.Fatalf("patient.view audit = %+v", es)
	}
	if strings.Contains(string(es[0].After), "Viewed") || strings.Contains(string(es[0].After), "Vera") {
		t.Fatalf("patient data in the audit log: %s", es[0].After)
	}
}

// TestTestEnvironmentPatients: a test-environment patient is visible only to users of a site that
// reported it (searching the test environment, or by id), and to registry staff.
func TestTestEnvironmentPatients(t *testing.T) {
	e := newEnv(t)
	e.user("tu.hs", e.siteHS, admin.RoleTypicalUser)
	e.user("hsu.hs", e.siteHS, admin.RoleHealthSystemUser)
	e.user("tu.child", e.siteChild, admin.RoleTypicalUser)
	e.user("reg.rita", nil, "")
	p := e.patientIn("T", "Tester", "Tina", "2018-08-08", admin.SharingYes, e.siteHS)
	q := "/api/v1/patients?env=T&family_name=Tester&birth_date=2018-08-08"
	count := func(user string) int {
		var res struct{ Items []admin.PatientSummary }
		e.must(http.StatusOK, "GET", q, e.login(user), nil, &res)
		return len(res.Items)
	}
	if count("tu.hs") != 1 || count("hsu.hs") != 1 || count("reg.rita") != 1 {
		t.Fatal("the reporting site's users (or registry staff) do not find their test patient")
	}
	if n := count("tu.child"); n != 0 {
		t.Fatalf("a user of another site of the health system finds %d test patients", n)
	}
	e.fail(http.StatusNotFound, "not_found", "GET", fmt.Sprintf("/api/v1/patients/%d", p), e.login("tu.child"), nil)
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/patients/%d", p), e.login("tu.hs"), nil, nil)
	// Production searches do not show it at all.
	var res struct{ Items []admin.PatientSummary }
	e.must(http.StatusOK, "GET", "/api/v1/patients?family_name=Tester&birth_date=2018-08-08", e.login("reg.rita"), nil, &res)
	if len(res.Items) != 0 {
		t.Fatalf("production search shows test patients: %+v", res.Items)
	}
}

// TestCanQuery: the decision point's query form, for pages that hide what the actor may not use.
func TestCanQuery(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	mine := e.user("hs.user", e.siteHS, admin.RoleTypicalUser)
	theirs := e.user("other.user", e.siteOther, admin.RoleTypicalUser)
	tok := e.login("aa.hs")
	var d admin.Decision
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/me/can?action=user.deactivate&user_id=%d", mine.ID), tok, nil, &d)
	if !d.Allow || d.Rule != admin.RuleSiteRole {
		t.Fatalf("own user: %+v", d)
	}
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/me/can?action=user.deactivate&user_id=%d", theirs.ID), tok, nil, &d)
	if d.Allow || d.Rule != admin.RuleUserOutsideScope || d.Reason == "" {
		t.Fatalf("other organization's user: %+v", d)
	}
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/me/can?action=user.invite&site_id=%d&role=health_system_user", e.siteHS.ID), tok, nil, &d)
	if d.Allow || d.Rule != admin.RuleGrantAboveOwn {
		t.Fatalf("granting a Health System User role: %+v", d)
	}
	e.fail(http.StatusBadRequest, "invalid", "GET", "/api/v1/me/can?action=user.fly", tok, nil)
	// The Service form, as the portal calls it.
	a, err := e.svc.Authenticate(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if d := e.svc.Can(context.Background(), a, admin.ActionViewSite, admin.Target{SiteID: e.siteOther.ID}); d.Allow {
		t.Fatalf("view another organization's site: %+v", d)
	}
	if d := e.svc.Can(context.Background(), a, admin.ActionViewSite, admin.Target{SiteID: 99999}); d.Allow || d.Rule != admin.RuleTargetMissing {
		t.Fatalf("unknown site: %+v", d)
	}
}
