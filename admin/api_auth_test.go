package admin_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
)

func TestLoginSessionLogout(t *testing.T) {
	e := newEnv(t)
	e.user("jsmith", e.siteHS, admin.RoleTypicalUser)

	var res admin.LoginResult
	e.must(http.StatusOK, "POST", "/api/v1/login", "", map[string]string{"username": "JSmith", "password": goodPassword}, &res)
	if res.PasswordChangeRequired || res.User.Username != "jsmith" || !res.ExpiresAt.Equal(e.clock.Now().Add(8*time.Hour)) {
		t.Fatalf("login result %+v", res)
	}
	var me admin.User
	e.must(http.StatusOK, "GET", "/api/v1/me", res.Token, nil, &me)
	if me.Username != "jsmith" || me.LastLoginAt == nil || len(me.Memberships) != 1 {
		t.Fatalf("me = %+v", me)
	}

	// Refusals.
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "jsmith", "password": "Wrong-Password-1"})
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "nobody", "password": goodPassword})
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "", "password": ""})
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", "", nil)
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", "not-a-token", nil)
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", strings.Repeat("A", 43), nil)
	_, _, hdr := e.do("GET", "/api/v1/me", "", nil)
	if !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without WWW-Authenticate: %v", hdr)
	}

	// Logout ends the session.
	e.must(http.StatusNoContent, "POST", "/api/v1/logout", res.Token, nil, nil)
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", res.Token, nil)

	// Sessions expire.
	tok := e.login("jsmith")
	e.must(http.StatusOK, "GET", "/api/v1/me", tok, nil, nil)
	e.clock.Advance(8*time.Hour + time.Second)
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", tok, nil)

	// Tokens are stored hashed.
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE token_hash = $1::bytea`, []byte(tok)).Scan(&n); err != nil || n != 0 {
		t.Errorf("raw token found in sessions: %d %v", n, err)
	}
}

func TestBootstrapRegistryAdmin(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := admin.NewUserInput{Username: "rstaff", FirstName: "Regina", LastName: "Staff", Email: "regina@registry.test"}
	tests := []struct {
		name  string
		actor admin.Actor
		in    admin.NewUserInput
		pw    string
		want  error
	}{
		{"not the system", admin.Actor{UserID: 99, Name: "x", RegistryAdmin: true}, in, goodPassword, admin.ErrForbidden},
		{"weak password", e.sys, in, "short", admin.ErrWeakPassword},
		{"admin in username", e.sys, admin.NewUserInput{Username: "regadmin", FirstName: "A", LastName: "B", Email: "a@b.test"}, goodPassword, admin.ErrInvalidUsername},
		{"first", e.sys, in, goodPassword, nil},
		{"second", e.sys, admin.NewUserInput{Username: "other.staff", FirstName: "O", LastName: "S", Email: "o@registry.test"}, goodPassword, admin.ErrAlreadyBootstrap},
	}
	for _, tc := range tests {
		_, err := e.svc.BootstrapRegistryAdmin(ctx, tc.actor, tc.in, tc.pw)
		if (tc.want == nil) != (err == nil) || (tc.want != nil && !errors.Is(err, tc.want)) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.want)
		}
	}
	tok := e.login("rstaff")
	var me admin.User
	e.must(http.StatusOK, "GET", "/api/v1/me", tok, nil, &me)
	if !me.RegistryAdmin || me.Status != admin.UserActive {
		t.Fatalf("bootstrapped admin = %+v", me)
	}
	if es := e.audit("user.bootstrap"); len(es) != 1 || es[0].Actor != "system:test" {
		t.Errorf("audit = %+v", es)
	}
}

// TestFirstRegistryAdminRace: engines starting together on a new database each try to create the
// first registry administrator; one does (and shows its password), the others find it there —
// none fails to start.
func TestFirstRegistryAdminRace(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	in := admin.NewUserInput{Username: "registrar", FirstName: "Registry", LastName: "Administrator", Email: "registrar@registry.test"}
	const engines = 6
	type result struct {
		created  bool
		password string
		err      error
	}
	results := make(chan result, engines)
	start := make(chan struct{})
	for i := 0; i < engines; i++ {
		go func() {
			<-start
			u, pw, err := e.svc.EnsureFirstRegistryAdmin(ctx, e.sys, in)
			results <- result{u != nil, pw, err}
		}()
	}
	close(start)
	created := 0
	for i := 0; i < engines; i++ {
		r := <-results
		if r.err != nil {
			t.Errorf("engine %d: %v", i, r.err)
		}
		if r.created {
			created++
			if r.password == "" {
				t.Error("the engine that created the administrator has no password to show")
			}
		} else if r.password != "" {
			t.Error("an engine that created nothing shows a password")
		}
	}
	if created != 1 {
		t.Errorf("%d engines created the first registry administrator, want 1", created)
	}
}

func TestInviteRegister(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	tok := e.login("aa.hs")

	// Search first: nobody yet.
	var found struct{ Items []admin.UserMatch }
	e.must(http.StatusOK, "GET", "/api/v1/users/search?first_name=Nina&last_name=Nurse", tok, nil, &found)
	if len(found.Items) != 0 {
		t.Fatalf("search found %+v", found.Items)
	}
	e.fail(http.StatusBadRequest, "invalid", "GET", "/api/v1/users/search?first_name=Nina", tok, nil)

	body := map[string]any{"site_id": e.siteHS.ID, "username": "nnurse", "first_name": "Nina", "last_name": "Nurse",
		"email": "nina@clinic.test", "phone": "+1 555 0100", "role": "typical_user", "designations": []string{"clinical_champion"}}
	var inv admin.Invitation
	e.must(http.StatusCreated, "POST", "/api/v1/invitations", tok, body, &inv)
	if !inv.Emailed || inv.User.Status != admin.UserInvited || !inv.ExpiresAt.Equal(e.clock.Now().Add(72*time.Hour)) {
		t.Fatalf("invitation = %+v", inv)
	}

	msgs := e.smtp.messages()
	if len(msgs) != 1 || msgs[0].To != "nina@clinic.test" || msgs[0].From != "registry@vaxgate.test" {
		t.Fatalf("mail = %+v", msgs)
	}
	mail := msgs[0].Data
	for _, want := range []string{"To: nina@clinic.test", "Subject: Your account in the immunization registry", "Username: nnurse",
		"for site " + e.siteHS.Name + " (PIN " + e.siteHS.Code, e.srv.URL + "/api/v1/register?token="} {
		if !strings.Contains(mail, want) {
			t.Errorf("mail lacks %q:\n%s", want, mail)
		}
	}
	regTok := tokenOf(t, mail)

	// The link's page is the web portal's (portal.TestRegisterLinkRedirect): the API itself serves
	// only the JSON POST, and answers the link's GET with a JSON error naming the allowed method.
	resp, err := http.Get(e.srv.URL + "/api/v1/register?token=" + url.QueryEscape(regTok))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET /api/v1/register from the API: %d %s Allow %q, want 405 JSON, Allow POST", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Allow"))
	}

	// Refusals do not consume the link.
	e.fail(http.StatusBadRequest, "agreement_required", "POST", "/api/v1/register", "", map[string]any{"token": regTok, "password": goodPassword, "accept_agreement": false})
	e.fail(http.StatusBadRequest, "weak_password", "POST", "/api/v1/register", "", map[string]any{"token": regTok, "password": "password", "accept_agreement": true})
	e.fail(http.StatusBadRequest, "weak_password", "POST", "/api/v1/register", "", map[string]any{"token": regTok, "password": "Nnurse-2025-xyz", "accept_agreement": true})
	// Not registered yet: cannot log in.
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "nnurse", "password": goodPassword})

	var u admin.User
	e.must(http.StatusOK, "POST", "/api/v1/register", "", map[string]any{"token": regTok, "password": goodPassword, "accept_agreement": true}, &u)
	if u.Status != admin.UserActive || u.AgreementAcceptedAt == nil || u.AgreementVersion != "1" || u.MustChangePassword {
		t.Fatalf("registered user = %+v", u)
	}
	// Single use.
	e.fail(http.StatusNotFound, "invite_invalid", "POST", "/api/v1/register", "", map[string]any{"token": regTok, "password": goodPassword, "accept_agreement": true})
	e.login("nnurse")

	// Now the search finds her, by name or email, case-insensitively.
	e.must(http.StatusOK, "GET", "/api/v1/users/search?email=NINA@clinic.test", tok, nil, &found)
	if len(found.Items) != 1 || found.Items[0].Username != "nnurse" || found.Items[0].SiteCodes[0] != "S-HS" {
		t.Fatalf("search = %+v", found.Items)
	}

	// Audit: the invitation and the registration.
	if es := e.audit("user.invite"); len(es) < 2 || es[0].Actor != "aa.hs" {
		t.Errorf("invite audit = %+v", es)
	}
	if es := e.audit("user.register"); len(es) < 2 || es[0].Actor != "nnurse" {
		t.Errorf("register audit = %+v", es)
	}
}

func TestRegistrationLinkExpiresAndResend(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	tok := e.login("aa.hs")
	var inv admin.Invitation
	e.must(http.StatusCreated, "POST", "/api/v1/invitations", tok, map[string]any{"site_id": e.siteHS.ID, "username": "late.larry",
		"first_name": "Larry", "last_name": "Late", "email": "larry@clinic.test", "role": "read_only"}, &inv)
	first := tokenOf(t, e.smtp.messages()[0].Data)
	e.clock.Advance(72*time.Hour + time.Minute)
	e.fail(http.StatusNotFound, "invite_invalid", "POST", "/api/v1/register", "", map[string]any{"token": first, "password": goodPassword, "accept_agreement": true})

	// A new link; a second one ends the first before its expiry.
	tok = e.login("aa.hs")
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/invitation", inv.User.ID), tok, nil, nil)
	second := tokenOf(t, e.smtp.messages()[1].Data)
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/users/%d/invitation", inv.User.ID), tok, nil, nil)
	third := tokenOf(t, e.smtp.messages()[2].Data)
	e.fail(http.StatusNotFound, "invite_invalid", "POST", "/api/v1/register", "", map[string]any{"token": second, "password": goodPassword, "accept_agreement": true})
	e.must(http.StatusOK, "POST", "/api/v1/register", "", map[string]any{"token": third, "password": goodPassword, "accept_agreement": true}, nil)
	e.fail(http.StatusConflict, "invalid_transition", "POST", fmt.Sprintf("/api/v1/users/%d/invitation", inv.User.ID), tok, nil)
}

// TestRegisterFormPostRefused: the HTML registration form moved to the web portal (/register);
// a form-encoded POST to the API is refused as a JSON error and does not use up the invitation.
func TestRegisterFormPostRefused(t *testing.T) {
	e := newEnv(t)
	inv, err := e.svc.Invite(context.Background(), e.sys, admin.InviteInput{SkipEmail: true, SiteID: e.siteHS.ID, Role: admin.RoleReadOnly,
		NewUserInput: admin.NewUserInput{Username: "form.fiona", FirstName: "Fiona", LastName: "Form", Email: "fiona@clinic.test"}})
	if err != nil {
		t.Fatal(err)
	}
	tok := tokenOf(t, inv.Link)
	resp, err := http.PostForm(e.srv.URL+"/api/v1/register", url.Values{"token": {tok}, "password": {goodPassword}, "accept_agreement": {"true"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"unsupported_media_type"`) {
		t.Fatalf("form POST to the API: %d %s, want 400 unsupported_media_type", resp.StatusCode, b)
	}
	e.must(http.StatusOK, "POST", "/api/v1/register", "", map[string]any{"token": tok, "password": goodPassword, "accept_agreement": true}, nil)
	e.login("form.fiona")
}

func TestInviteRefusals(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.user("pat.existing", e.siteOther, admin.RoleTypicalUser)
	tok := e.login("aa.hs")
	base := func(mod func(map[string]any)) map[string]any {
		m := map[string]any{"site_id": e.siteHS.ID, "username": "new.person", "first_name": "New", "last_name": "Person",
			"email": "new.person@clinic.test", "role": "typical_user"}
		if mod != nil {
			mod(m)
		}
		return m
	}
	tests := []struct {
		name   string
		body   map[string]any
		status int
		code   string
	}{
		{"duplicate email", base(func(m map[string]any) { m["email"] = "PAT.EXISTING@clinic.test" }), 409, "duplicate_user"},
		{"same name", base(func(m map[string]any) { m["first_name"], m["last_name"] = "Fpat.existing", "lpat.existing" }), 409, "possible_duplicate"},
		{"username taken", base(func(m map[string]any) { m["username"] = "Pat.Existing" }), 409, "username_taken"},
		{"admin in username", base(func(m map[string]any) { m["username"] = "clinicadmin" }), 400, "invalid_username"},
		{"generic username", base(func(m map[string]any) { m["username"] = "frontdesk2" }), 400, "invalid_username"},
		{"bad email", base(func(m map[string]any) { m["email"] = "Nina <nina@x.test>" }), 400, "invalid"},
		{"unknown role", base(func(m map[string]any) { m["role"] = "superuser" }), 400, "invalid"},
		{"unknown designation", base(func(m map[string]any) { m["designations"] = []string{"chief"} }), 400, "invalid"},
		{"health system role by site AA", base(func(m map[string]any) { m["role"] = "health_system_user" }), 403, "forbidden"},
		{"registry admin by site AA", base(func(m map[string]any) { m["registry_admin"] = true }), 403, "forbidden"},
		{"other site", base(func(m map[string]any) { m["site_id"] = e.siteOther.ID }), 403, "forbidden"},
		{"sibling site of the health system", base(func(m map[string]any) { m["site_id"] = e.siteChild.ID }), 403, "forbidden"},
		{"unknown field", base(func(m map[string]any) { m["is_superuser"] = true }), 400, "invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.t = t
			e.fail(tc.status, tc.code, "POST", "/api/v1/invitations", tok, tc.body)
		})
	}
	e.t = t
	// Confirmed as someone else with the same name: accepted.
	e.must(http.StatusCreated, "POST", "/api/v1/invitations", tok,
		base(func(m map[string]any) {
			m["first_name"], m["last_name"], m["not_duplicate"] = "Fpat.existing", "lpat.existing", true
		}), nil)
	// Instead of inviting a duplicate, the AA invites the existing user to the site: not a silent
	// membership, an invitation the user accepts.
	existing := e.userByName("pat.existing")
	mpath := fmt.Sprintf("/api/v1/users/%d/memberships/%d", existing.ID, e.siteHS.ID)
	body, _ := json.Marshal(map[string]any{"role": "read_only"})
	if _, b, _ := e.do("PUT", mpath, tok, body); !strings.Contains(string(b), `"rule":"consent-required"`) {
		t.Fatalf("silent add: %s", b)
	}
	var inv admin.SiteInvitation
	e.must(http.StatusCreated, "POST", "/api/v1/site-invitations", tok, map[string]any{"user_id": existing.ID, "site_id": e.siteHS.ID, "role": "read_only"}, &inv)
	if u := e.userByName("pat.existing"); len(u.Memberships) != 1 {
		t.Fatalf("invited user became a member before accepting: %+v", u.Memberships)
	}
	if msgs := e.smtp.messages(); len(msgs) == 0 || msgs[len(msgs)-1].To != existing.Email || !strings.Contains(msgs[len(msgs)-1].Data, "S-HS") {
		t.Fatalf("no invitation e-mail to the user: %+v", msgs)
	}
	// Nobody but the invitee answers it.
	e.fail(http.StatusNotFound, "not_found", "POST", fmt.Sprintf("/api/v1/me/site-invitations/%d/accept", inv.ID), tok, nil)
	pat := e.login("pat.existing")
	var mine struct{ Items []admin.SiteInvitation }
	e.must(http.StatusOK, "GET", "/api/v1/me/site-invitations", pat, nil, &mine)
	if len(mine.Items) != 1 || mine.Items[0].ID != inv.ID || mine.Items[0].SiteCode != "S-HS" || mine.Items[0].InvitedBy != "aa.hs" {
		t.Fatalf("my invitations = %+v", mine.Items)
	}
	e.must(http.StatusOK, "POST", fmt.Sprintf("/api/v1/me/site-invitations/%d/accept", inv.ID), pat, nil, &inv)
	if u := e.userByName("pat.existing"); len(u.Memberships) != 2 || u.Membership(e.siteHS.ID).Role != admin.RoleReadOnly {
		t.Fatalf("memberships after accepting = %+v", u.Memberships)
	}
	e.fail(http.StatusConflict, "invalid_transition", "POST", fmt.Sprintf("/api/v1/me/site-invitations/%d/accept", inv.ID), pat, nil)
	if es := e.audit("membership.accept_invitation"); len(es) != 1 || es[0].Actor != "pat.existing" {
		t.Fatalf("acceptance audit = %+v", es)
	}
}

func TestInviteMailFailureCreatesNothing(t *testing.T) {
	e := newEnv(t, func(o *admin.Options, s *smtpServer) { s.rejectTo = "bounce@clinic.test" })
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	tok := e.login("aa.hs")
	e.fail(http.StatusServiceUnavailable, "mail_unavailable", "POST", "/api/v1/invitations", tok, map[string]any{"site_id": e.siteHS.ID,
		"username": "bounce.bob", "first_name": "Bob", "last_name": "Bounce", "email": "bounce@clinic.test", "role": "read_only"})
	var found struct{ Items []admin.UserMatch }
	e.must(http.StatusOK, "GET", "/api/v1/users/search?email=bounce@clinic.test", tok, nil, &found)
	if len(found.Items) != 0 {
		t.Fatalf("user created despite the failed email: %+v", found.Items)
	}

	// Without a mail server configured at all.
	e2 := newEnv(t, func(o *admin.Options, _ *smtpServer) { o.SMTP = admin.SMTPConfig{} })
	e2.user("aa.hs", e2.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e2.fail(http.StatusServiceUnavailable, "mail_unavailable", "POST", "/api/v1/invitations", e2.login("aa.hs"), map[string]any{"site_id": e2.siteHS.ID,
		"username": "bob.b", "first_name": "Bob", "last_name": "B", "email": "bob@clinic.test", "role": "read_only"})
}

func TestInviteOverSTARTTLSWithAuth(t *testing.T) {
	srvTLS, pool := selfSigned(t)
	e := newEnv(t, func(o *admin.Options, s *smtpServer) {
		s.tls, s.auth = srvTLS, true
		o.SMTP.Username, o.SMTP.Password, o.SMTP.RequireTLS = "mailer", "mail-secret", true
		o.SMTP.TLSConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	})
	_, err := e.svc.Invite(context.Background(), e.sys, admin.InviteInput{SiteID: e.siteHS.ID, Role: admin.RoleReadOnly,
		NewUserInput: admin.NewUserInput{Username: "tls.tina", FirstName: "Tina", LastName: "Tls", Email: "tina@clinic.test"}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := e.smtp.messages()
	if len(msgs) != 1 || !msgs[0].TLS || msgs[0].Auth != "\x00mailer\x00mail-secret" {
		t.Fatalf("mail = %+v", msgs)
	}
	tokenOf(t, msgs[0].Data)

	// RequireTLS refuses a server without STARTTLS.
	e2 := newEnv(t, func(o *admin.Options, _ *smtpServer) { o.SMTP.RequireTLS = true })
	_, err = e2.svc.Invite(context.Background(), e2.sys, admin.InviteInput{SiteID: e2.siteHS.ID, Role: admin.RoleReadOnly,
		NewUserInput: admin.NewUserInput{Username: "tls.tina", FirstName: "Tina", LastName: "Tls", Email: "tina@clinic.test"}})
	if !errors.Is(err, admin.ErrMailUnavailable) || len(e2.smtp.messages()) != 0 {
		t.Fatalf("RequireTLS without STARTTLS: %v", err)
	}
}

func TestPasswordPolicyAndChange(t *testing.T) {
	e := newEnv(t)
	e.user("pchange", e.siteHS, admin.RoleTypicalUser)
	tok := e.login("pchange")
	weak := []string{"Short-1a", "alllowercase-12", "ALLUPPERCASE-12", "NoDigitsHere-!", "NoSpecial12345a", "Way-Too-Long-Password-1234567890", "Pchange-is-me-1"}
	for _, pw := range weak {
		e.fail(http.StatusBadRequest, "weak_password", "POST", "/api/v1/me/password", tok, map[string]string{"current_password": goodPassword, "new_password": pw})
	}
	e.fail(http.StatusForbidden, "wrong_password", "POST", "/api/v1/me/password", tok, map[string]string{"current_password": "Not-The-One-1", "new_password": "Another-Good-1"})
	e.fail(http.StatusBadRequest, "weak_password", "POST", "/api/v1/me/password", tok, map[string]string{"current_password": goodPassword, "new_password": goodPassword})

	other := e.login("pchange") // a second session
	e.must(http.StatusNoContent, "POST", "/api/v1/me/password", tok, map[string]string{"current_password": goodPassword, "new_password": "Another-Good-1"}, nil)
	e.must(http.StatusOK, "GET", "/api/v1/me", tok, nil, nil)                           // this session stays
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", other, nil) // the other one ended
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "pchange", "password": goodPassword})
	e.loginWith("pchange", "Another-Good-1")

	// Case sensitive.
	e.fail(http.StatusUnauthorized, "invalid_credentials", "POST", "/api/v1/login", "", map[string]string{"username": "pchange", "password": "another-good-1"})
}

func TestAdminResetForcesChange(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	u := e.user("forgetful", e.siteHS, admin.RoleTypicalUser)
	e.user("aa.other", e.siteOther, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	aa := e.login("aa.hs")
	old := e.login("forgetful")

	path := fmt.Sprintf("/api/v1/users/%d/reset-password", u.ID)
	e.fail(http.StatusForbidden, "forbidden", "POST", path, e.login("aa.other"), nil)
	e.fail(http.StatusBadRequest, "weak_password", "POST", path, aa, map[string]string{"password": "weak"})
	var res struct {
		User              admin.User `json:"user"`
		TemporaryPassword string     `json:"temporary_password"`
	}
	e.must(http.StatusOK, "POST", path, aa, nil, &res)
	if res.TemporaryPassword == "" || !res.User.MustChangePassword {
		t.Fatalf("reset = %+v", res)
	}
	e.fail(http.StatusUnauthorized, "unauthenticated", "GET", "/api/v1/me", old, nil) // sessions ended

	var lr admin.LoginResult
	e.must(http.StatusOK, "POST", "/api/v1/login", "", map[string]string{"username": "forgetful", "password": res.TemporaryPassword}, &lr)
	if !lr.PasswordChangeRequired {
		t.Fatal("login after reset does not require a password change")
	}
	e.fail(http.StatusForbidden, "password_change_required", "GET", "/api/v1/sites", lr.Token, nil)
	e.fail(http.StatusForbidden, "password_change_required", "GET", "/api/v1/patients?family_name=x&birth_date=2020-01-01", lr.Token, nil)
	e.must(http.StatusOK, "GET", "/api/v1/me", lr.Token, nil, nil)
	e.must(http.StatusNoContent, "POST", "/api/v1/me/password", lr.Token, map[string]string{"current_password": res.TemporaryPassword, "new_password": "Fresh-Start-77"}, nil)
	e.must(http.StatusOK, "GET", "/api/v1/sites", lr.Token, nil, nil)

	// A chosen temporary password works the same way.
	res.TemporaryPassword = ""
	e.must(http.StatusOK, "POST", path, aa, map[string]string{"password": "Temp-Pass-2025"}, &res)
	if res.TemporaryPassword != "" {
		t.Error("a chosen password was echoed back")
	}
	e.must(http.StatusOK, "POST", "/api/v1/login", "", map[string]string{"username": "forgetful", "password": "Temp-Pass-2025"}, &lr)
	if !lr.PasswordChangeRequired {
		t.Fatal("no forced change")
	}
}

// TestLockoutAndUnlock: failed logins set the Locked flag administrators see, lock the address
// that failed out of the account for a while (answered exactly like a wrong password), and never
// lock the owner out from elsewhere; an access administrator unlocks.
func TestLockoutAndUnlock(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	e.user("aa.other", e.siteOther, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	u := e.user("fumbler", e.siteHS, admin.RoleTypicalUser)
	live := e.login("fumbler")
	bad := map[string]string{"username": "fumbler", "password": "Wrong-Guess-99"}
	good := map[string]string{"username": "fumbler", "password": goodPassword}
	login := func(body map[string]string) (int, string, http.Header) {
		code, b, h := e.do("POST", "/api/v1/login", "", body)
		return code, string(b), h
	}
	_, wrongBody, _ := login(bad)
	for i := 2; i <= 5; i++ {
		e.clock.Advance(time.Minute) // past the growing delay of the username throttle
		if code, b, _ := login(bad); code != http.StatusUnauthorized || b != wrongBody {
			t.Fatalf("failure %d: %d %s", i, code, b)
		}
	}
	// Locked: from this address even the right password is answered exactly like a wrong one.
	e.clock.Advance(time.Minute)
	if code, b, _ := login(good); code != http.StatusUnauthorized || b != wrongBody {
		t.Fatalf("locked account, right password: %d %s, want exactly the wrong-password answer %s", code, b, wrongBody)
	}
	// The lock does not end the owner's sessions, and administrators see it.
	e.must(http.StatusOK, "GET", "/api/v1/me", live, nil, nil)
	if got := e.userByName("fumbler"); !got.Locked() || got.FailedLogins != 5 {
		t.Fatalf("user = %+v", got)
	}
	if es := e.audit("user.lock"); len(es) != 1 || es[0].TargetID != fmt.Sprint(u.ID) {
		t.Fatalf("lock audit = %+v", es)
	}
	// From another address the owner logs in: an attacker cannot lock them out.
	ctx := context.Background()
	if _, err := e.svc.LoginFrom(ctx, "fumbler", goodPassword, "192.0.2.10"); err != nil {
		t.Fatalf("login from another address: %v", err)
	}
	if got := e.userByName("fumbler"); got.Locked() || got.FailedLogins != 0 {
		t.Fatalf("after a successful login: %+v", got)
	}
	// The locked address waits out the lock (15 minutes), not forever.
	e.clock.Advance(16 * time.Minute)
	e.must(http.StatusOK, "POST", "/api/v1/login", "", good, nil)

	// Locked again; an access administrator of the user's site unlocks, not one of another
	// organization.
	for i := 1; i <= 5; i++ {
		e.clock.Advance(time.Minute)
		login(bad)
	}
	path := fmt.Sprintf("/api/v1/users/%d/unlock", u.ID)
	e.fail(http.StatusForbidden, "forbidden", "POST", path, e.login("aa.other"), nil)
	aa := e.login("aa.hs")
	var got admin.User
	e.must(http.StatusOK, "POST", path, aa, nil, &got)
	if got.Locked() || got.FailedLogins != 0 {
		t.Fatalf("after unlock: %+v", got)
	}
	e.fail(http.StatusConflict, "invalid_transition", "POST", path, aa, nil) // not locked any more
	e.login("fumbler")
	if es := e.audit("user.unlock"); len(es) != 1 || es[0].Actor != "aa.hs" {
		t.Fatalf("unlock audit = %+v", es)
	}
	// Logins are audited, success and failure, never the password.
	ok, failed := e.audit("auth.login"), e.audit("auth.login_failed")
	if len(ok) < 4 || len(failed) < 11 {
		t.Fatalf("%d login and %d failed-login audit entries", len(ok), len(failed))
	}
	for _, x := range append(ok, failed...) {
		if strings.Contains(string(x.Before)+string(x.After), "Wrong-Guess") || strings.Contains(string(x.Before)+string(x.After), goodPassword) {
			t.Fatalf("password in the audit log: %+v", x)
		}
	}
	if failed[0].TargetID != fmt.Sprint(u.ID) || !strings.Contains(string(failed[0].After), "127.0.0.1") {
		t.Fatalf("failed login audit = %+v %s", failed[0], failed[0].After)
	}
}

// TestLoginThrottleRevealsNothing: the throttle answers the same for an account that exists and
// for one that does not, grows its delays, and limits one address across usernames.
func TestLoginThrottleRevealsNothing(t *testing.T) {
	e := newEnv(t)
	e.user("real.person", e.siteHS, admin.RoleTypicalUser)
	seq := func(username string) []string {
		var out []string
		for range 6 {
			code, b, h := e.do("POST", "/api/v1/login", "", map[string]string{"username": username, "password": "Wrong-Guess-99"})
			out = append(out, fmt.Sprintf("%d %s retry=%s", code, b, h.Get("Retry-After")))
		}
		return out
	}
	real, ghost := seq("real.person"), seq("no.such.person")
	for i := range real {
		if real[i] != ghost[i] {
			t.Fatalf("attempt %d: existing account %q, unknown account %q", i+1, real[i], ghost[i])
		}
	}
	// 3 free failures, then 1 s to wait: the 5th attempt, made at once, is throttled.
	if !strings.HasPrefix(real[3], "401") || !strings.HasPrefix(real[4], "429") || !strings.Contains(real[4], "retry=1") {
		t.Fatalf("sequence = %q", real)
	}
	// Growing delays: 1 s, 2 s, 4 s.
	ctx := context.Background()
	var waits []time.Duration
	for fails := 0; fails < 7; {
		_, err := e.svc.LoginFrom(ctx, "grow.test", "Wrong-Guess-99", "198.51.100.1")
		var ae *admin.Error
		if errors.As(err, &ae) && ae.Code == "too_many_attempts" {
			waits = append(waits, ae.RetryAfter)
			e.clock.Advance(ae.RetryAfter)
			continue
		}
		fails++
	}
	if fmt.Sprint(waits) != "[1s 2s 4s]" {
		t.Fatalf("delays = %v, want [1s 2s 4s]", waits)
	}
	// One address trying many usernames is slowed down too; another address is not.
	e.clock.Advance(2 * time.Hour)
	var throttled bool
	for i := range 12 {
		_, err := e.svc.LoginFrom(ctx, fmt.Sprintf("spray%d", i), "Wrong-Guess-99", "203.0.113.5")
		if errors.Is(err, admin.ErrTooManyAttempts) {
			throttled = true
		}
	}
	if !throttled {
		t.Fatal("12 usernames from one address were never throttled")
	}
	if _, err := e.svc.LoginFrom(ctx, "real.person", goodPassword, "203.0.113.99"); err != nil {
		t.Fatalf("another address: %v", err)
	}
}

func TestResetPasswordBodyChecked(t *testing.T) {
	e := newEnv(t)
	e.user("aa.hs", e.siteHS, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	u := e.user("resetme", e.siteHS, admin.RoleTypicalUser)
	tok := e.login("aa.hs")
	path := fmt.Sprintf("/api/v1/users/%d/reset-password", u.ID)
	e.fail(http.StatusBadRequest, "invalid", "POST", path, tok, `{"pasword":"Typo-In-Field-1"}`)
	e.fail(http.StatusBadRequest, "invalid", "POST", path, tok, `{"password":`)
	e.must(http.StatusOK, "POST", path, tok, "", nil) // no body: generated
}
