package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/ingest"
)

func TestOrganizationsAndSites(t *testing.T) {
	e := newEnv(t)
	e.user("reg.rita", nil, "")
	tok := e.login("reg.rita")

	var org admin.Organization
	e.must(http.StatusCreated, "POST", "/api/v1/organizations", tok, map[string]any{"code": "NEWHS", "name": "New Health System"}, &org)
	var child admin.Organization
	e.must(http.StatusCreated, "POST", "/api/v1/organizations", tok, map[string]any{"code": "NEWKID", "name": "Kid", "parent_id": org.ID}, &child)
	if child.ParentID == nil || *child.ParentID != org.ID {
		t.Fatalf("child = %+v", child)
	}
	e.fail(http.StatusConflict, "already_exists", "POST", "/api/v1/organizations", tok, map[string]any{"code": "NEWHS", "name": "Again"})
	e.fail(http.StatusBadRequest, "invalid", "POST", "/api/v1/organizations", tok, map[string]any{"code": "GRANDKID", "name": "Too deep", "parent_code": "NEWKID"})
	e.fail(http.StatusBadRequest, "invalid", "POST", "/api/v1/organizations", tok, map[string]any{"code": "bad code", "name": "x"})

	var site admin.Site
	e.must(http.StatusCreated, "POST", "/api/v1/sites", tok, map[string]any{"organization_code": "NEWKID", "code": "KID01", "name": "Kid Clinic",
		"facilities": []string{"KID01", "2.16.840.1.113883.3.72.5.1"}}, &site)
	if site.Status != admin.SiteRegistered || site.HealthSystemID != org.ID || len(site.Facilities) != 2 || !site.GoLive.IsZero() {
		t.Fatalf("site = %+v", site)
	}
	e.fail(http.StatusConflict, "facility_taken", "POST", "/api/v1/sites", tok, map[string]any{"organization_code": "NEWKID", "code": "KID02", "name": "Clash", "facilities": []string{"KID01"}})
	e.fail(http.StatusConflict, "already_exists", "POST", "/api/v1/sites", tok, map[string]any{"organization_code": "NEWKID", "code": "KID01", "name": "Again"})
	e.fail(http.StatusBadRequest, "invalid", "POST", "/api/v1/sites", tok, map[string]any{"organization_code": "NOPE", "code": "X1", "name": "x"})
	e.fail(http.StatusBadRequest, "invalid", "POST", "/api/v1/sites", tok, map[string]any{"organization_code": "NEWKID", "code": "X1", "name": "x", "facilities": []string{"A|B"}})

	// Onboarding: registered → testing → production; no skipping; go-live date set.
	status := func(s string, goLive any) string { return fmt.Sprintf(`{"status":%q,"go_live_date":%s}`, s, goLive) }
	path := fmt.Sprintf("/api/v1/sites/%d/status", site.ID)
	e.fail(http.StatusConflict, "invalid_transition", "POST", path, tok, status("production", "null"))
	e.fail(http.StatusBadRequest, "invalid", "POST", path, tok, status("live", "null"))
	// No site moves to testing without an active Access Administrator.
	e.fail(http.StatusConflict, "site_needs_access_administrator", "POST", path, tok, status("testing", "null"))
	e.user("aa.kid", &site, admin.RoleReadOnly, admin.DesignationAccessAdministrator)
	e.must(http.StatusOK, "POST", path, tok, status("testing", "null"), &site)
	// The same status without a date changes nothing; the answer says why.
	if msg := e.fail(http.StatusConflict, "invalid_transition", "POST", path, tok, status("testing", "null")); !strings.Contains(msg,
		"nothing to change: site KID01 is already in onboarding status testing and has no go-live date") {
		t.Errorf("same status, no date: %q", msg)
	}
	e.must(http.StatusOK, "POST", path, tok, status("testing", `"2025-04-01"`), &site) // planned date only
	if site.GoLive.String() != "2025-04-01" || site.Status != admin.SiteTesting {
		t.Fatalf("site = %+v", site)
	}
	// An empty date keeps the current one: clearing it is what is refused, and the answer says so.
	if msg := e.fail(http.StatusConflict, "invalid_transition", "POST", path, tok, status("testing", "null")); !strings.Contains(msg,
		"its go-live date can be changed but not cleared (an empty date keeps 2025-04-01)") {
		t.Errorf("clearing the go-live date: %q", msg)
	}
	e.must(http.StatusOK, "POST", path, tok, status("production", "null"), &site)
	if site.Status != admin.SiteProduction || site.GoLive.String() != "2025-04-01" {
		t.Fatalf("site = %+v", site)
	}
	e.must(http.StatusOK, "POST", path, tok, status("testing", "null"), &site) // re-certification

	// Going to production without a date sets today.
	var s2 admin.Site
	e.fail(http.StatusConflict, "site_needs_access_administrator", "POST", "/api/v1/sites", tok,
		map[string]any{"organization_id": org.ID, "code": "HS01", "name": "HS Clinic", "status": "testing"}) // no users yet, so no AA
	e.must(http.StatusCreated, "POST", "/api/v1/sites", tok, map[string]any{"organization_id": org.ID, "code": "HS01", "name": "HS Clinic"}, &s2)
	e.user("aa.hs01", &s2, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/sites/%d/status", s2.ID), tok, status("testing", "null"), &s2)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/sites/%d/status", s2.ID), tok, status("production", "null"), &s2)
	if s2.GoLive.String() != "2025-03-01" {
		t.Fatalf("go-live = %s, want the clock's today", s2.GoLive)
	}

	// Facilities.
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/sites/%d/facilities", s2.ID), tok, map[string]string{"facility_id": "HS01-B"}, &s2)
	e.fail(http.StatusConflict, "facility_taken", "POST", fmt.Sprintf("/api/v1/sites/%d/facilities", s2.ID), tok, map[string]string{"facility_id": "KID01"})
	e.must(http.StatusOK, "DELETE", fmt.Sprintf("/api/v1/sites/%d/facilities/HS01-B", s2.ID), tok, nil, &s2)
	if len(s2.Facilities) != 0 {
		t.Fatalf("facilities = %v", s2.Facilities)
	}
	e.fail(http.StatusNotFound, "not_found", "DELETE", fmt.Sprintf("/api/v1/sites/%d/facilities/HS01-B", s2.ID), tok, nil)

	if es := e.audit("site.set_status"); len(es) != 6 {
		t.Errorf("site.set_status audit entries = %d, want 6", len(es))
	}
}

// TestSenderCredentials checks that credentials made here are the ones the transports
// authenticate against (store's ingest.Senders).
func TestSenderCredentials(t *testing.T) {
	e := newEnv(t)
	e.user("reg.rita", nil, "")
	tok := e.login("reg.rita")
	ctx := context.Background()
	path := fmt.Sprintf("/api/v1/sites/%d/credentials", e.siteHS.ID)

	var soap admin.SenderCredential
	e.must(http.StatusCreated, "POST", path, tok, map[string]string{"transport": "soap", "username": "hs-ehr", "password": "EHR-secret-0001", "facility_id": "HS-MAIN"}, &soap)
	if soap.Transport != admin.TransportSOAP || soap.FacilityID != "HS-MAIN" || !soap.Active {
		t.Fatalf("soap = %+v", soap)
	}
	e.fail(http.StatusConflict, "already_exists", "POST", path, tok, map[string]string{"transport": "soap", "username": "hs-ehr", "password": "EHR-secret-0002", "facility_id": "HS-MAIN"})
	e.fail(http.StatusBadRequest, "weak_password", "POST", path, tok, map[string]string{"transport": "soap", "username": "hs-ehr2", "password": "short", "facility_id": "HS-MAIN"})
	e.fail(http.StatusConflict, "facility_taken", "POST", path, tok, map[string]string{"transport": "soap", "username": "hs-ehr3", "password": "EHR-secret-0003", "facility_id": "S-OTHER-FAC"})
	e.fail(http.StatusBadRequest, "invalid", "POST", path, tok, map[string]string{"transport": "fax"})
	e.fail(http.StatusBadRequest, "invalid", "POST", path, tok, map[string]string{"transport": "mllp"})

	got, err := e.db.SOAPCredential(ctx, "hs-ehr")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := passwd.Verify(got.PasswordHash, "EHR-secret-0001"); !ok || err != nil {
		t.Fatalf("stored hash does not verify: %v %v", ok, err)
	}
	if got.Sender.SiteID != e.siteHS.ID || !got.Sender.MaySendFor("HS-MAIN") || !got.Sender.MaySendFor("S-HS-FAC") {
		t.Fatalf("sender = %+v", got.Sender)
	}

	var mllp admin.SenderCredential
	e.must(http.StatusCreated, "POST", path, tok, map[string]string{"transport": "mllp", "source_cidr": "10.20.0.7/24"}, &mllp)
	if mllp.SourceCIDR != "10.20.0.0/24" {
		t.Fatalf("mllp = %+v", mllp)
	}
	e.fail(http.StatusConflict, "already_exists", "POST", fmt.Sprintf("/api/v1/sites/%d/credentials", e.siteOther.ID), tok, map[string]string{"transport": "mllp", "source_cidr": "10.20.0.0/24"})
	e.must(http.StatusCreated, "POST", path, tok, map[string]string{"transport": "mllp", "cert_subject": "CN=ehr.hs.test,O=HS"}, nil)
	s, err := e.db.MLLPSender(ctx, netip.MustParseAddr("10.20.0.99"), "")
	if err != nil || s.SiteID != e.siteHS.ID {
		t.Fatalf("MLLPSender = %+v, %v", s, err)
	}
	if s, err := e.db.MLLPSender(ctx, netip.MustParseAddr("192.0.2.1"), "CN=ehr.hs.test,O=HS"); err != nil || s.SiteID != e.siteHS.ID {
		t.Fatalf("MLLPSender by certificate = %+v, %v", s, err)
	}

	var list struct{ Items []admin.SenderCredential }
	e.must(http.StatusOK, "GET", path, tok, nil, &list)
	if len(list.Items) != 3 {
		t.Fatalf("credentials = %+v", list.Items)
	}

	// Revoke: the transports stop accepting it.
	e.must(http.StatusOK, "DELETE", fmt.Sprintf("/api/v1/credentials/%d", soap.ID), tok, nil, nil)
	e.fail(http.StatusConflict, "invalid_transition", "DELETE", fmt.Sprintf("/api/v1/credentials/%d", soap.ID), tok, nil)
	if _, err := e.db.SOAPCredential(ctx, "hs-ehr"); !errors.Is(err, ingest.ErrUnknownSender) {
		t.Fatalf("revoked credential still accepted: %v", err)
	}
	e.fail(http.StatusNotFound, "not_found", "DELETE", "/api/v1/credentials/99999", tok, nil)

	// EnsureSOAPCredential (scripts, the demo): idempotent, resets the password.
	c1, err := e.svc.EnsureSOAPCredential(ctx, e.sys, e.siteHS.ID, "hs-ehr", "New-secret-0004", "HS-MAIN")
	if err != nil || !c1.Active || c1.ID != soap.ID {
		t.Fatalf("EnsureSOAPCredential = %+v, %v", c1, err)
	}
	got, err = e.db.SOAPCredential(ctx, "hs-ehr")
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := passwd.Verify(got.PasswordHash, "New-secret-0004"); !ok {
		t.Fatal("ensured password does not verify")
	}
	if _, err := e.svc.EnsureSOAPCredential(ctx, e.sys, e.siteOther.ID, "hs-ehr", "New-secret-0004", "S-OTHER-FAC"); !errors.Is(err, admin.ErrAlreadyExists) {
		t.Fatalf("username of another site: %v", err)
	}
	// No secret in the audit log.
	for _, x := range e.audit("credential.") {
		if containsAll(string(x.After)+string(x.Before), "secret") {
			t.Errorf("audit entry holds a secret: %s %s", x.Before, x.After)
		}
	}
}

func TestEnsureSite(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := admin.SiteInput{OrganizationCode: "HS", Code: "DEMO", Name: "Demo", Status: admin.SiteProduction, Facilities: []string{"DEMO"}}
	a, err := e.svc.EnsureSite(ctx, e.sys, in)
	if err != nil {
		t.Fatal(err)
	}
	in.Facilities = append(in.Facilities, "DEMO-2")
	b, err := e.svc.EnsureSite(ctx, e.sys, in)
	if err != nil || b.ID != a.ID || len(b.Facilities) != 2 || b.Status != admin.SiteProduction || b.GoLive.IsZero() {
		t.Fatalf("EnsureSite again = %+v, %v", b, err)
	}
	if _, err := e.svc.EnsureSite(ctx, e.sys, admin.SiteInput{OrganizationCode: "OTHER", Code: "DEMO", Name: "Demo"}); !errors.Is(err, admin.ErrAlreadyExists) {
		t.Fatalf("EnsureSite in another organization: %v", err)
	}
	o, err := e.svc.EnsureOrganization(ctx, e.sys, admin.OrganizationInput{Code: "HS", Name: "ignored"})
	if err != nil || o.ID != e.orgHS.ID {
		t.Fatalf("EnsureOrganization = %+v, %v", o, err)
	}
	if _, err := e.svc.EnsureSite(ctx, admin.Actor{UserID: 5, Name: "x"}, in); !errors.Is(err, admin.ErrForbidden) {
		t.Fatalf("EnsureSite by a user: %v", err)
	}
}

func TestEnsureMLLPCredential(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a, err := e.svc.EnsureMLLPCredential(ctx, e.sys, e.siteHS.ID, "127.0.0.1", "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.svc.EnsureMLLPCredential(ctx, e.sys, e.siteHS.ID, "127.0.0.1/32", "")
	if err != nil || b.ID != a.ID {
		t.Fatalf("again: %+v %v", b, err)
	}
	if _, err := e.svc.CreateMLLPCredential(ctx, e.sys, e.siteHS.ID, "127.0.0.1", ""); !errors.Is(err, admin.ErrAlreadyExists) {
		t.Fatalf("create again: %v", err)
	}
	if _, err := e.svc.EnsureMLLPCredential(ctx, e.sys, e.siteOther.ID, "127.0.0.1", ""); !errors.Is(err, admin.ErrAlreadyExists) {
		t.Fatalf("another site: %v", err)
	}
}
