package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/admin"
)

// TestTakeoverSequenceFailsAtFirstStep replays the defect of issue 12: the Access Administrator
// of one organization (mallory, site S-OTHER) added the only AA of another organization (bob,
// site S-HS) to her own site without his consent, reset his password, logged in as him and
// created a new AA in his organization. The first step now fails, and so does every later one,
// even when bob has accepted an invitation to her site: his account stays his organization's.
func TestTakeoverSequenceFailsAtFirstStep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.user("reg.rita", nil, "")
	bob := e.user("bob.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.user("mallory.other", e.siteOther, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	mallory := e.login("mallory.other")
	bobSession := e.login("bob.hs")
	state := func() string {
		var s string
		if err := e.db.Pool.QueryRow(ctx, `SELECT concat_ws('|', email, status, password_hash, must_change_password,
			(SELECT string_agg(site_id::text || role || array_to_string(designations, ','), ';' ORDER BY site_id) FROM user_sites WHERE user_id = $1))
			FROM users WHERE id = $1`, bob.ID).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	initial := state()
	denied := func(step, method, path string, body any, rule string) {
		t.Helper()
		code, b, _ := e.do(method, path, mallory, body)
		var ae struct {
			Error struct{ Code, Message, Rule string }
		}
		if err := json.Unmarshal(b, &ae); err != nil || code != http.StatusForbidden || ae.Error.Rule != rule {
			t.Fatalf("%s: %d %s, want 403 with rule %s", step, code, b, rule)
		}
		if state() != initial && !strings.HasPrefix(step, "after accepting") {
			t.Fatalf("%s: denied, but bob's account changed: %s → %s", step, initial, state())
		}
	}

	// Step 1: add bob to her site, without his consent. Refused: that is an invitation.
	denied("step 1: add to her site", "PUT", fmt.Sprintf("/api/v1/users/%d/memberships/%d", bob.ID, e.siteOther.ID),
		map[string]any{"role": "administrator"}, admin.RuleConsentRequired)
	// The steps after it fail on their own too.
	denied("step 2: reset his password", "POST", fmt.Sprintf("/api/v1/users/%d/reset-password", bob.ID), map[string]string{"password": "Mallory-Knows-1"}, admin.RuleUserOutsideScope)
	denied("change his e-mail", "PATCH", fmt.Sprintf("/api/v1/users/%d", bob.ID), map[string]string{"email": "mallory@evil.test"}, admin.RuleUserOutsideScope)
	denied("deactivate him", "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", bob.ID), nil, admin.RuleUserOutsideScope)
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "bob.hs", "password": "Mallory-Knows-1"}) // step 3
	denied("step 4: a new AA in his organization", "POST", "/api/v1/invitations", map[string]any{"site_id": e.siteHS.ID, "username": "mallory.two",
		"first_name": "Mal", "last_name": "Two", "email": "mal2@evil.test", "role": "administrator", "designations": []string{"access_administrator"}}, admin.RuleNoSiteRole)
	denied("make herself a member of his site", "POST", "/api/v1/site-invitations", map[string]any{"user_id": bob.ID, "site_id": e.siteHS.ID, "role": "administrator"}, admin.RuleNoSiteRole)

	// Even if bob accepts an invitation to her site, his account is not hers to change: he also
	// belongs to a site she does not administer.
	var inv admin.SiteInvitation
	e.must(http.StatusCreated, "POST", "/api/v1/site-invitations", mallory, map[string]any{"user_id": bob.ID, "site_id": e.siteOther.ID, "role": "read_only"}, &inv)
	if state() != initial {
		t.Fatal("an invitation made bob a member before he accepted")
	}
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/me/site-invitations/%d/accept", inv.ID), bobSession, nil, nil)
	initial = state()
	denied("after accepting: reset his password", "POST", fmt.Sprintf("/api/v1/users/%d/reset-password", bob.ID), nil, admin.RuleUserOutsideScope)
	denied("after accepting: change his e-mail", "PATCH", fmt.Sprintf("/api/v1/users/%d", bob.ID), map[string]string{"email": "mallory@evil.test"}, admin.RuleUserOutsideScope)
	if state() != initial {
		t.Fatal("bob's account changed")
	}
	// She manages his membership of her own site, and nothing else.
	e.must(http.StatusOK, "DELETE", fmt.Sprintf("/api/v1/users/%d/memberships/%d", bob.ID, e.siteOther.ID), mallory, nil, nil)
	e.must(http.StatusOK, "GET", "/api/v1/me", bobSession, nil, nil) // his session survived all of it

	// Registry staff can do what an AA cannot, and it is audited with the rule that allowed it.
	rita := e.login("reg.rita")
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/reset-password", bob.ID), rita, nil, nil)
	es := e.audit("user.reset_password")
	if len(es) != 1 || es[0].Actor != "reg.rita" || es[0].Rule != admin.RuleRegistryStaff {
		t.Fatalf("reset audit = %+v", es)
	}
}
