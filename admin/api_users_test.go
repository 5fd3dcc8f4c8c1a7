package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
)

// TestAuthorization checks server-side role enforcement for user management, table-driven over
// actors and operations. The world: health system HS (site S-HS) with child CHILD (site
// S-CHILD), and OTHER (site S-OTHER).
func TestAuthorization(t *testing.T) {
	e := newEnv(t)
	e.user("reg.rita", nil, "")
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.user("hsu.hank", e.siteHS, admin.RoleHealthSystemUser)
	e.user("roa.hs", e.siteHS, admin.RoleReadOnlyAdministrator)
	e.user("ro.hs", e.siteHS, admin.RoleReadOnly)
	e.user("tu.hs", e.siteHS, admin.RoleTypicalUserOrdering)
	e.user("aa.other", e.siteOther, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	childUser := e.user("child.carl", e.siteChild, admin.RoleTypicalUser)
	hsUser := e.user("hs.hilda", e.siteHS, admin.RoleTypicalUser)
	otherUser := e.user("other.olga", e.siteOther, admin.RoleTypicalUser)
	rita := e.userByName("reg.rita")

	tokens := map[string]string{}
	for _, u := range []string{"reg.rita", "aa.hs", "hsu.hank", "roa.hs", "ro.hs", "tu.hs", "aa.other"} {
		tokens[u] = e.login(u)
	}
	n := 0
	invite := func(site *admin.Site, role string) map[string]any {
		n++
		return map[string]any{"site_id": site.ID, "username": fmt.Sprintf("inv.user%d", n), "first_name": "Inv", "last_name": fmt.Sprintf("User%d", n),
			"email": fmt.Sprintf("inv%d@clinic.test", n), "role": role}
	}
	sitePath := func(f string, s *admin.Site) string { return fmt.Sprintf(f, s.ID) }
	userPath := func(f string, u *admin.User) string { return fmt.Sprintf(f, u.ID) }
	tests := []struct {
		actor, method string
		path          string
		body          func() any
		status        int
	}{
		// Listing users: administrators of the site (and of the health system) only.
		{"aa.hs", "GET", sitePath("/api/v1/users?site_id=%d", e.siteHS), nil, 200},
		{"aa.hs", "GET", sitePath("/api/v1/users?site_id=%d", e.siteChild), nil, 403},
		{"aa.hs", "GET", sitePath("/api/v1/users?site_id=%d", e.siteOther), nil, 403},
		{"hsu.hank", "GET", sitePath("/api/v1/users?site_id=%d", e.siteChild), nil, 200},
		{"hsu.hank", "GET", sitePath("/api/v1/users?site_id=%d", e.siteOther), nil, 403},
		{"roa.hs", "GET", sitePath("/api/v1/users?site_id=%d", e.siteHS), nil, 200},
		{"ro.hs", "GET", sitePath("/api/v1/users?site_id=%d", e.siteHS), nil, 403},
		{"tu.hs", "GET", "/api/v1/users", nil, 403},
		{"reg.rita", "GET", sitePath("/api/v1/users?site_id=%d", e.siteOther), nil, 200},
		// Viewing one user.
		{"roa.hs", "GET", userPath("/api/v1/users/%d", hsUser), nil, 200},
		{"roa.hs", "GET", userPath("/api/v1/users/%d", otherUser), nil, 403},
		{"ro.hs", "GET", userPath("/api/v1/users/%d", hsUser), nil, 403},
		{"aa.hs", "GET", userPath("/api/v1/users/%d", rita), nil, 403},
		// Inviting.
		{"aa.hs", "POST", "/api/v1/invitations", func() any { return invite(e.siteHS, "typical_user") }, 201},
		{"aa.hs", "POST", "/api/v1/invitations", func() any { return invite(e.siteChild, "typical_user") }, 403},
		{"aa.other", "POST", "/api/v1/invitations", func() any { return invite(e.siteHS, "typical_user") }, 403},
		{"hsu.hank", "POST", "/api/v1/invitations", func() any { return invite(e.siteChild, "health_system_user") }, 201},
		{"hsu.hank", "POST", "/api/v1/invitations", func() any { return invite(e.siteOther, "typical_user") }, 403},
		{"roa.hs", "POST", "/api/v1/invitations", func() any { return invite(e.siteHS, "read_only") }, 201}, // manages users, reads patients only
		{"tu.hs", "POST", "/api/v1/invitations", func() any { return invite(e.siteHS, "read_only") }, 403},
		{"reg.rita", "POST", "/api/v1/invitations", func() any { return invite(e.siteOther, "administrator") }, 201},
		// Searching (only who may invite).
		{"aa.hs", "GET", "/api/v1/users/search?email=x@y.test", nil, 200},
		{"roa.hs", "GET", "/api/v1/users/search?email=x@y.test", nil, 200},
		{"ro.hs", "GET", "/api/v1/users/search?email=x@y.test", nil, 403},
		// Managing users.
		{"aa.hs", "POST", userPath("/api/v1/users/%d/deactivate", childUser), nil, 403},
		{"aa.other", "POST", userPath("/api/v1/users/%d/deactivate", hsUser), nil, 403},
		{"roa.hs", "POST", userPath("/api/v1/users/%d/deactivate", otherUser), nil, 403},
		{"ro.hs", "POST", userPath("/api/v1/users/%d/reset-password", hsUser), nil, 403},
		{"hsu.hank", "POST", userPath("/api/v1/users/%d/deactivate", childUser), nil, 200},
		{"hsu.hank", "POST", userPath("/api/v1/users/%d/reactivate", childUser), nil, 200},
		{"aa.hs", "POST", userPath("/api/v1/users/%d/deactivate", hsUser), nil, 200},
		{"aa.hs", "POST", userPath("/api/v1/users/%d/reactivate", hsUser), nil, 200},
		{"aa.hs", "PATCH", userPath("/api/v1/users/%d", hsUser), func() any { return map[string]string{"phone": "555-0199"} }, 200},
		{"aa.other", "PATCH", userPath("/api/v1/users/%d", hsUser), func() any { return map[string]string{"phone": "555-0199"} }, 403},
		{"aa.hs", "POST", userPath("/api/v1/users/%d/deactivate", rita), nil, 403},
		// Roles: an AA may not hand out Health System User; a Health System User may.
		{"aa.hs", "PUT", fmt.Sprintf("/api/v1/users/%d/memberships/%d", hsUser.ID, e.siteHS.ID), func() any { return map[string]any{"role": "health_system_user"} }, 403},
		{"aa.hs", "PUT", fmt.Sprintf("/api/v1/users/%d/memberships/%d", hsUser.ID, e.siteHS.ID), func() any { return map[string]any{"role": "administrator_ordering"} }, 200},
		{"aa.hs", "PUT", fmt.Sprintf("/api/v1/users/%d/memberships/%d", hsUser.ID, e.siteChild.ID), func() any { return map[string]any{"role": "read_only"} }, 403},
		{"hsu.hank", "PUT", fmt.Sprintf("/api/v1/users/%d/memberships/%d", childUser.ID, e.siteChild.ID), func() any { return map[string]any{"role": "health_system_user_ordering"} }, 200},
		{"roa.hs", "PUT", fmt.Sprintf("/api/v1/users/%d/memberships/%d", hsUser.ID, e.siteHS.ID), func() any { return map[string]any{"role": "read_only"} }, 200},
		// Organizations, sites and credentials: registry administrators only.
		{"aa.hs", "POST", "/api/v1/organizations", func() any { return map[string]string{"code": "NEW1", "name": "New"} }, 403},
		{"reg.rita", "POST", "/api/v1/organizations", func() any { return map[string]string{"code": "NEW1", "name": "New"} }, 201},
		{"hsu.hank", "POST", "/api/v1/sites", func() any { return map[string]any{"organization_code": "HS", "code": "S-NEW", "name": "New"} }, 403},
		{"aa.hs", "POST", sitePath("/api/v1/sites/%d/status", e.siteHS), func() any { return map[string]string{"status": "production"} }, 403},
		{"aa.hs", "POST", sitePath("/api/v1/sites/%d/credentials", e.siteHS), func() any {
			return map[string]string{"transport": "soap", "username": "hs-ehr", "password": "Long-Enough-Secret", "facility_id": "S-HS-FAC"}
		}, 403},
		{"aa.hs", "GET", sitePath("/api/v1/sites/%d/credentials", e.siteHS), nil, 200},
		{"aa.hs", "GET", sitePath("/api/v1/sites/%d/credentials", e.siteOther), nil, 403},
		{"ro.hs", "GET", sitePath("/api/v1/sites/%d/credentials", e.siteHS), nil, 403},
		{"ro.hs", "GET", sitePath("/api/v1/sites/%d", e.siteHS), nil, 200},
		{"ro.hs", "GET", sitePath("/api/v1/sites/%d", e.siteOther), nil, 403},
		{"hsu.hank", "GET", sitePath("/api/v1/sites/%d", e.siteChild), nil, 200},
		{"aa.hs", "GET", fmt.Sprintf("/api/v1/organizations/%d", e.orgOther.ID), nil, 403},
		// Audit log.
		{"roa.hs", "GET", "/api/v1/audit", nil, 200},
		{"ro.hs", "GET", "/api/v1/audit", nil, 403},
		{"aa.hs", "GET", sitePath("/api/v1/audit?site_id=%d", e.siteOther), nil, 403},
	}
	for _, tc := range tests {
		var body any
		if tc.body != nil {
			body = tc.body()
		}
		got, b, _ := e.do(tc.method, tc.path, tokens[tc.actor], body)
		if got != tc.status {
			t.Errorf("%s: %s %s = %d, want %d: %s", tc.actor, tc.method, tc.path, got, tc.status, b)
		}
	}

	// Lists are scoped: the AA of S-HS sees S-HS users only; the health system user sees both
	// of the health system's sites.
	var list struct{ Items []admin.User }
	e.must(http.StatusOK, "GET", "/api/v1/users", tokens["aa.hs"], nil, &list)
	for _, u := range list.Items {
		if u.Membership(e.siteHS.ID) == nil {
			t.Errorf("aa.hs sees %s, not of S-HS", u.Username)
		}
	}
	e.must(http.StatusOK, "GET", "/api/v1/users", tokens["hsu.hank"], nil, &list)
	seen := map[string]bool{}
	for _, u := range list.Items {
		seen[u.Username] = true
		if u.Membership(e.siteHS.ID) == nil && u.Membership(e.siteChild.ID) == nil {
			t.Errorf("hsu.hank sees %s, outside the health system", u.Username)
		}
	}
	if !seen["child.carl"] || !seen["hs.hilda"] || seen["other.olga"] {
		t.Errorf("hsu.hank sees %v", seen)
	}
	var sites struct{ Items []admin.Site }
	e.must(http.StatusOK, "GET", "/api/v1/sites", tokens["hsu.hank"], nil, &sites)
	if len(sites.Items) != 2 {
		t.Errorf("hsu.hank sees sites %+v", sites.Items)
	}
	var orgs struct{ Items []admin.Organization }
	e.must(http.StatusOK, "GET", "/api/v1/organizations", tokens["aa.hs"], nil, &orgs)
	if len(orgs.Items) != 1 || orgs.Items[0].Code != "HS" {
		t.Errorf("aa.hs sees organizations %+v", orgs.Items)
	}
}

func TestLastAccessAdministrator(t *testing.T) {
	e := newEnv(t)
	reg := e.user("reg.rita", nil, "")
	aa1 := e.user("aa.one", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	tok := e.login("reg.rita")
	_ = reg
	mpath := fmt.Sprintf("/api/v1/users/%d/memberships/%d", aa1.ID, e.siteHS.ID)
	refusals := []struct {
		name, method, path string
		body               any
	}{
		{"deactivate", "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", aa1.ID), nil},
		{"demote to typical user", "PUT", mpath, map[string]any{"role": "typical_user", "designations": []string{}}},
		{"drop the designation", "PUT", mpath, map[string]any{"role": "administrator", "designations": []string{}}},
		{"remove from site", "DELETE", mpath, nil},
	}
	for _, tc := range refusals {
		msg := e.fail(http.StatusConflict, "last_access_administrator", tc.method, tc.path, tok, tc.body)
		if !containsAll(msg, "S-HS") {
			t.Errorf("%s: message %q does not name the site", tc.name, msg)
		}
	}
	// The AA themselves cannot step down either.
	self := e.login("aa.one")
	e.fail(http.StatusConflict, "last_access_administrator", "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", aa1.ID), self, nil)
	if u := e.userByName("aa.one"); u.Status != admin.UserActive || !u.Membership(e.siteHS.ID).AccessAdministrator() {
		t.Fatalf("aa.one changed: %+v", u)
	}
	// Keeping the designation while changing other things is fine.
	e.must(http.StatusOK, "PUT", mpath, tok, map[string]any{"role": "administrator_ordering", "designations": []string{"access_administrator", "technical_contact"}}, nil)

	// With a second AA, the first may go; then the second is the last.
	aa2 := e.user("aa.two", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	var u admin.User
	e.must(http.StatusOK, "PUT", mpath, tok, map[string]any{"role": "typical_user", "designations": []string{}}, &u) // demotion drops AA
	if u.Membership(e.siteHS.ID).AccessAdministrator() || u.Membership(e.siteHS.ID).Role != admin.RoleTypicalUser {
		t.Fatalf("demoted membership = %+v", u.Membership(e.siteHS.ID))
	}
	e.fail(http.StatusConflict, "last_access_administrator", "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", aa2.ID), tok, nil)

	// An invited (not yet registered) AA does not count.
	_, err := e.svc.Invite(context.Background(), e.sys, admin.InviteInput{SkipEmail: true, SiteID: e.siteHS.ID, Role: admin.RoleAdministrator,
		Designations: []admin.Designation{admin.DesignationAccessAdministrator},
		NewUserInput: admin.NewUserInput{Username: "aa.pending", FirstName: "P", LastName: "Ending", Email: "pending@clinic.test"}})
	if err != nil {
		t.Fatal(err)
	}
	e.fail(http.StatusConflict, "last_access_administrator", "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", aa2.ID), tok, nil)
	if len(e.audit("user.deactivate")) != 0 {
		t.Error("a refused deactivation was audited")
	}
}

// TestLastAccessAdministratorConcurrent deactivates the two AAs of a site at the same time, over
// HTTP, several rounds: exactly one of each pair may succeed.
func TestLastAccessAdministratorConcurrent(t *testing.T) {
	e := newEnv(t)
	e.user("reg.rita", nil, "")
	tok := e.login("reg.rita")
	for round := range 4 {
		a := e.user(fmt.Sprintf("aa.left%d", round), e.siteChild, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
		b := e.user(fmt.Sprintf("aa.right%d", round), e.siteChild, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
		// Only a and b are active AAs of S-CHILD: the previous round's survivor steps down first
		// (allowed, since a and b exist).
		if round > 0 {
			for _, u := range []string{fmt.Sprintf("aa.left%d", round-1), fmt.Sprintf("aa.right%d", round-1)} {
				if x := e.userByName(u); x.Status == admin.UserActive {
					e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", x.ID), tok, nil, nil)
				}
			}
		}
		var wg sync.WaitGroup
		codes := make([]int, 2)
		start := make(chan struct{})
		for i, u := range []*admin.User{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				codes[i], _, _ = e.do("POST", fmt.Sprintf("/api/v1/users/%d/deactivate", u.ID), tok, nil)
			}()
		}
		close(start)
		wg.Wait()
		ok, refused := 0, 0
		for _, c := range codes {
			switch c {
			case http.StatusOK:
				ok++
			case http.StatusConflict:
				refused++
			}
		}
		if ok != 1 || refused != 1 {
			t.Fatalf("round %d: statuses %v, want one 200 and one 409", round, codes)
		}
		var active int
		if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM user_sites us JOIN users u ON u.id = us.user_id
			WHERE us.site_id = $1 AND u.status = 'active' AND 'access_administrator' = ANY (us.designations)`, e.siteChild.ID).Scan(&active); err != nil {
			t.Fatal(err)
		}
		if active != 1 {
			t.Fatalf("round %d: %d active AAs left", round, active)
		}
	}
}

func TestDeactivateReactivate(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	u := e.user("leaver", e.siteHS, admin.RoleTypicalUser)
	aa := e.login("aa.hs")
	live := e.login("leaver")

	var got admin.User
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", u.ID), aa, nil, &got)
	if got.Status != admin.UserInactiveManual {
		t.Fatalf("status = %s", got.Status)
	}
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", live, nil)
	e.fail(http.StatusForbidden, "account_inactive", "POST", "/api/v1/login", "", map[string]string{"username": "leaver", "password": goodPassword})
	e.fail(http.StatusConflict, "invalid_transition", "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", u.ID), aa, nil)

	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/reactivate", u.ID), aa, nil, &got)
	if got.Status != admin.UserActive {
		t.Fatalf("status = %s", got.Status)
	}
	e.login("leaver")
	e.fail(http.StatusConflict, "invalid_transition", "POST", fmt.Sprintf("/api/v1/users/%d/reactivate", u.ID), aa, nil)

	es := e.audit("user.")
	actions := map[string]bool{}
	for _, x := range es {
		actions[x.Action] = true
		if x.Action == "user.deactivate" && (string(x.Before) == "" || string(x.After) == "" || x.Actor != "aa.hs") {
			t.Errorf("deactivate audit = %+v", x)
		}
	}
	if !actions["user.deactivate"] || !actions["user.reactivate"] {
		t.Errorf("audit actions = %v", actions)
	}
}

func TestInactiveExpired(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.user("aa.other", e.siteOther, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	sleeper := e.user("sleeper", e.siteHS, admin.RoleTypicalUser)
	napper := e.user("napper", e.siteHS, admin.RoleTypicalUser)
	e.login("sleeper")

	// 89 days: still fine.
	e.clock.Advance(89 * 24 * time.Hour)
	e.login("aa.hs")
	e.login("aa.other")
	e.login("napper")

	// Evaluated on login: 91 days after the last use.
	e.clock.Advance(2*24*time.Hour + time.Minute)
	e.fail(http.StatusForbidden, "account_expired", "POST", "/api/v1/login", "", map[string]string{"username": "sleeper", "password": goodPassword})
	e.fail(http.StatusForbidden, "account_expired", "POST", "/api/v1/login", "", map[string]string{"username": "sleeper", "password": goodPassword})
	if u := e.userByName("sleeper"); u.Status != admin.UserInactiveExpired {
		t.Fatalf("sleeper status = %s", u.Status)
	}

	// Evaluated by the periodic job.
	e.clock.Advance(89 * 24 * time.Hour) // napper: 91 days; the AAs too
	n, err := e.svc.ExpireInactive(context.Background())
	if err != nil || n != 3 {
		t.Fatalf("ExpireInactive = %d, %v; want 3 (napper, aa.hs, aa.other)", n, err)
	}
	if u := e.userByName("napper"); u.Status != admin.UserInactiveExpired {
		t.Fatalf("napper status = %s", u.Status)
	}
	if es := e.audit("user.expire"); len(es) != 4 {
		t.Errorf("expire audit entries = %d, want 4", len(es))
	}

	// Reactivation by an AA (here the registry's system actor brings the AA back first).
	aaHS := e.userByName("aa.hs")
	if _, err := e.svc.Reactivate(context.Background(), e.sys, aaHS.ID); err != nil {
		t.Fatal(err)
	}
	aaOther := e.userByName("aa.other")
	if _, err := e.svc.Reactivate(context.Background(), e.sys, aaOther.ID); err != nil {
		t.Fatal(err)
	}
	tok := e.login("aa.hs")
	e.fail(http.StatusForbidden, "forbidden", "POST", fmt.Sprintf("/api/v1/users/%d/reactivate", sleeper.ID), e.login("aa.other"), nil)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/reactivate", sleeper.ID), tok, nil, nil)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/reactivate", napper.ID), tok, nil, nil)
	e.login("sleeper")
	e.login("napper")
}

func containsAll(s string, subs ...string) bool {
	for _, x := range subs {
		if !strings.Contains(s, x) {
			return false
		}
	}
	return true
}

// TestLastRegistryAdministrator: the last active registry administrator cannot be deactivated —
// not by themselves (one click in the portal), not by an operator — since nobody could then manage
// registry staff or sites from the portal; with another one active, either may go. Two concurrent
// deactivations of the last two never both succeed.
func TestLastRegistryAdministrator(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	one := e.user("reg.one", nil, "")
	tok := e.login("reg.one")
	deactivate := func(u *admin.User) string { return fmt.Sprintf("/api/v1/users/%d/deactivate", u.ID) }

	e.fail(http.StatusConflict, "last_registry_administrator", "POST", deactivate(one), tok, nil)
	if _, err := e.svc.Deactivate(ctx, e.sys, one.ID); !errors.Is(err, admin.ErrLastRegistryAdmin) {
		t.Fatalf("operator deactivating the last registry administrator: %v; want ErrLastRegistryAdmin", err)
	}
	if u := e.userByName("reg.one"); u.Status != admin.UserActive {
		t.Fatalf("reg.one is %s", u.Status)
	}

	two := e.user("reg.two", nil, "")
	e.must(http.StatusOK, "POST", deactivate(one), tok, nil, nil) // another is active: may step down
	e.fail(http.StatusConflict, "last_registry_administrator", "POST", deactivate(two), e.login("reg.two"), nil)

	// The last two, deactivated at once: one of them stays, every round.
	if _, err := e.svc.Reactivate(ctx, e.sys, one.ID); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 8; round++ {
		errs := make(chan error, 2)
		for _, u := range []*admin.User{one, two} {
			go func() { _, err := e.svc.Deactivate(ctx, e.sys, u.ID); errs <- err }()
		}
		var refused, gone *admin.User
		for range 2 {
			if err := <-errs; errors.Is(err, admin.ErrLastRegistryAdmin) {
				refused = one
			} else if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if refused == nil {
			t.Fatalf("round %d: both registry administrators were deactivated", round)
		}
		for _, u := range []*admin.User{one, two} {
			if e.userByName(u.Username).Status != admin.UserActive {
				gone = u
			}
		}
		if gone == nil {
			t.Fatalf("round %d: neither was deactivated", round)
		}
		if _, err := e.svc.Reactivate(ctx, e.sys, gone.ID); err != nil {
			t.Fatal(err)
		}
	}
}
