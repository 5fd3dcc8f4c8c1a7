package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
)

func (e *env) site(id int64, token string) admin.Site {
	e.t.Helper()
	var s admin.Site
	e.must(http.StatusOK, "GET", fmt.Sprintf("/api/v1/sites/%d", id), token, nil, &s)
	return s
}

// TestSiteNeedsAAFlag: a site in testing or production without an active Access Administrator
// is flagged (visible in the API) from the moment it is found until one is active again, and
// registry staff are e-mailed; the 90-day expiry is what usually causes it.
func TestSiteNeedsAAFlag(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("reg.rita", nil, "")
	rita := e.login("reg.rita")
	// The seeded sites were created in testing by an operator tool, without users: flagged.
	if s := e.site(e.siteOther.ID, rita); !s.NeedsAA || s.NeedsAASince == nil {
		t.Fatalf("site created in testing without an AA: %+v", s)
	}
	// An active AA clears the flag.
	aa := e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	if s := e.site(e.siteHS.ID, rita); s.NeedsAA {
		t.Fatalf("site with an active AA still flagged: %+v", s)
	}
	before := len(e.smtp.messages())

	// 91 days later the AA's account expires (rita stays active).
	e.clock.Advance(91 * 24 * time.Hour)
	if _, err := e.db.Pool.Exec(ctx, `UPDATE users SET last_active_at = $1 WHERE username = 'reg.rita'`, e.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if n, err := e.svc.ExpireInactive(ctx); err != nil || n != 1 {
		t.Fatalf("ExpireInactive = %d, %v", n, err)
	}
	rita = e.login("reg.rita") // the old session has ended
	s := e.site(e.siteHS.ID, rita)
	if !s.NeedsAA || s.NeedsAASince == nil || !s.NeedsAASince.Equal(e.clock.Now()) {
		t.Fatalf("after the last AA expired: %+v", s)
	}
	var flagged struct{ Items []admin.Site }
	e.must(http.StatusOK, "GET", "/api/v1/sites?needs_access_administrator=true", rita, nil, &flagged)
	codes := []string{}
	for _, f := range flagged.Items {
		codes = append(codes, f.Code)
	}
	if strings.Join(codes, ",") != "S-CHILD,S-HS,S-OTHER" {
		t.Fatalf("flagged sites = %v", codes)
	}
	msgs := e.smtp.messages()[before:]
	if len(msgs) != 1 || msgs[0].To != "reg.rita@clinic.test" || !strings.Contains(msgs[0].Data, "S-HS") {
		t.Fatalf("mail to registry staff = %+v", msgs)
	}
	if es := e.audit("site.needs_aa"); len(es) == 0 || es[0].TargetID != fmt.Sprint(e.siteHS.ID) {
		t.Fatalf("needs_aa audit = %+v", es)
	}
	// It stays flagged (and is not mailed again) until an AA is active again.
	if _, err := e.svc.ExpireInactive(ctx); err != nil {
		t.Fatal(err)
	}
	if len(e.smtp.messages()) != before+1 {
		t.Fatal("registry staff mailed again for a site already flagged")
	}
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/reactivate", aa.ID), rita, nil, nil)
	if s := e.site(e.siteHS.ID, rita); s.NeedsAA {
		t.Fatalf("after reactivation: %+v", s)
	}
	if es := e.audit("site.has_aa"); len(es) == 0 || es[0].TargetID != fmt.Sprint(e.siteHS.ID) {
		t.Fatalf("has_aa audit = %+v", es)
	}
	// A flagged site cannot go to production.
	e.fail(http.StatusConflict, "site_needs_access_administrator", "POST", fmt.Sprintf("/api/v1/sites/%d/status", e.siteOther.ID), rita,
		map[string]string{"status": "production"})
}

// TestSiteNeedsAAWithoutMail: without a mail server the flag is raised all the same, and the log
// says (without patient data) that registry staff could not be e-mailed.
func TestSiteNeedsAAWithoutMail(t *testing.T) {
	e := newEnv(t, func(o *admin.Options, _ *smtpServer) { o.SMTP = admin.SMTPConfig{} })
	ctx := context.Background()
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.clock.Advance(91 * 24 * time.Hour)
	if _, err := e.svc.ExpireInactive(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := e.svc.Site(ctx, e.sys, e.siteHS.ID)
	if err != nil || !s.NeedsAA {
		t.Fatalf("site = %+v, %v", s, err)
	}
	found := false
	for _, l := range e.logs.All() {
		if strings.Contains(l.Message, "could not be e-mailed") && strings.Contains(fmt.Sprint(l.Context), "S-HS") {
			found = true
		}
	}
	if !found {
		t.Fatal("no log line saying registry staff could not be e-mailed about S-HS")
	}
}
