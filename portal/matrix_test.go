package portal_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/admintest"
	"github.com/vaxgate/vaxgate/admin/passwd"
)

// The portal's permission matrix is the contract of its pages, as admin's TestPermissionMatrix is
// the API's: every page and form action, for every role and designation (admintest.Actors, each a
// member of site ACME-01 only, and registry staff) and for a visitor who is not signed in,
// against a target in the actor's own site (ACME-01), in another site of the same health system
// (ACME-02, of the child organization ACME-KIDS) and in another organization (BETA-01), answers
// the status written here by hand: 200, 303 (done, redirected to its result), "in" (303 to the
// sign-in page), 403 or 404. It runs over real HTTP against a real PostgreSQL. A denial must
// change nothing: no audit entry, the target user's row unchanged.

// Shorthands for a group's three answers (own site, other site of the health system, other
// organization).
const (
	pOwn  = "200 403 403"
	pHS   = "200 200 403"
	pAll  = "200 200 200"
	pNone = "403 403 403"
	dOwn  = "303 403 403" // done (a redirect to the result)
	dHS   = "303 303 403"
	dAll  = "303 303 303"
	hOwn  = "200 404 404" // hidden elsewhere (404, not 403)
	hHS   = "200 200 404"
	mine  = "303 404 404" // the actor's own invitation; others' are not found
)

type pmScope struct {
	name string
	site *admin.Site
}

type pmRow struct {
	route  string // "METHOD /path" exactly as portal.Routes lists it
	label  string // distinguishes variants of one route
	expect [6]string
	// request builds the request of one cell; target is the user whose row a denial must not
	// change (0: none).
	request func(m *pmatrix, a admintest.Actor, sc pmScope) (method, path string, form url.Values, target int64)
}

// pmNotInMatrix are the routes without a row: public pages, and the signed-in actor's own
// session and password, tested by their own tests.
var pmNotInMatrix = map[string]string{
	"GET /static/":         "public files",
	"GET /{$}":             "redirects to the sign-in page or the actor's home: TestCrawl",
	"GET /signin":          "public: TestBrowser/SignIn",
	"POST /signin":         "public: TestBrowser/SignIn, TestSignInThrottled",
	"POST /signout":        "ends the caller's session: TestBrowser/SignIn",
	"POST /password":       "the caller's own password: TestBrowser/ForcedPasswordChange",
	"GET /register":        "public, by invitation token: TestBrowser/Registration",
	"POST /register":       "public, by invitation token: TestBrowser/Registration",
	"GET /api/v1/register": "public: the invitation email's link, redirected to /register: TestBrowser/Registration",
	"/":                    "the not-found page of every other address: TestCrawl",
}

func (m *pmatrix) id(n int64) string { return fmt.Sprint(n) }

var pmRows = []pmRow{
	{route: "GET /dashboard", expect: [6]string{pNone, pNone, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/dashboard?site=" + m.id(sc.site.ID), nil, 0
		}},
	{route: "GET /invite", expect: [6]string{pNone, pNone, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/invite?site=" + m.id(sc.site.ID), nil, 0
		}},
	{route: "POST /invite", expect: [6]string{pNone, pNone, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			n := m.next()
			f := url.Values{"site": {m.id(sc.site.ID)}, "rows": {"1"}, "first_0": {"Nova"}, "last_0": {fmt.Sprintf("Invitee%d", n)},
				"email_0": {fmt.Sprintf("invitee%d@clinic.test", n)}, "username_0": {fmt.Sprintf("invitee%d", n)}, "role_0": {"typical_user"}}
			for _, d := range []string{"access_administrator", "supervising_physician", "technical_contact", "clinical_champion", "incentive_program_contact"} {
				f.Set(d+"_0", "no")
			}
			return "POST", "/invite", f, 0
		}},
	{route: "GET /users", expect: [6]string{pNone, pNone, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/users?show=all&site=" + m.id(sc.site.ID), nil, 0
		}},
	{route: "GET /users/{id}", expect: [6]string{pNone, pNone, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/users/%d?site=%d", m.members[sc.name].ID, sc.site.ID), nil, 0
		}},
	{route: "POST /users/{id}/profile", expect: [6]string{pNone, pNone, dOwn, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.members[sc.name]
			return "POST", fmt.Sprintf("/users/%d/profile", u.ID), url.Values{"site": {m.id(sc.site.ID)}, "first": {fmt.Sprintf("Renamed%d", m.next())},
				"last": {u.LastName}, "email": {u.Email}, "phone": {""}}, u.ID
		}},
	{route: "POST /users/{id}/membership", expect: [6]string{pNone, pNone, dOwn, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.members[sc.name]
			role := []string{"typical_user", "read_only"}[m.next()%2]
			return "POST", fmt.Sprintf("/users/%d/membership", u.ID), url.Values{"site": {m.id(sc.site.ID)}, "role": {role}}, u.ID
		}},
	{route: "POST /users/{id}/membership/remove", expect: [6]string{pNone, pNone, dOwn, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "POST", fmt.Sprintf("/users/%d/membership/remove", u.ID), url.Values{"site": {m.id(sc.site.ID)}}, u.ID
		}},
	{route: "POST /users/{id}/site-invitation", expect: [6]string{pNone, pNone, dOwn, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.elsewhere // a user of another organization, invited to the scope's site
			return "POST", fmt.Sprintf("/users/%d/site-invitation", u.ID), url.Values{"site": {m.id(sc.site.ID)}, "role": {"read_only"}, "from": {"dashboard"}}, 0
		}},
	{route: "POST /users/{id}/status", expect: [6]string{pNone, pNone, dOwn, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "POST", fmt.Sprintf("/users/%d/status", u.ID), url.Values{"action": {"deactivate"}}, u.ID
		}},
	{route: "POST /users/{id}/unlock", expect: [6]string{pNone, pNone, dOwn, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.freshUser(sc, "locked")
			return "POST", fmt.Sprintf("/users/%d/unlock", u.ID), url.Values{}, u.ID
		}},
	{route: "POST /users/{id}/reset", expect: [6]string{pNone, pNone, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "POST", fmt.Sprintf("/users/%d/reset", u.ID), url.Values{"password": {""}}, u.ID
		}},
	{route: "POST /users/{id}/reinvite", expect: [6]string{pNone, pNone, dOwn, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			u := m.freshUser(sc, admin.UserInvited)
			return "POST", fmt.Sprintf("/users/%d/reinvite", u.ID), url.Values{}, u.ID
		}},
	{route: "GET /invitations", expect: [6]string{pAll, pAll, pAll, pAll, pAll, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/invitations", nil, 0
		}},
	{route: "POST /invitations/{id}/accept", expect: [6]string{mine, mine, mine, mine, mine, mine},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			inv := m.invitation(a, sc)
			return "POST", fmt.Sprintf("/invitations/%d/accept", inv.ID), url.Values{}, inv.UserID
		}},
	{route: "POST /invitations/{id}/decline", expect: [6]string{mine, mine, mine, mine, mine, mine},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			inv := m.invitation(a, sc)
			return "POST", fmt.Sprintf("/invitations/%d/decline", inv.ID), url.Values{}, inv.UserID
		}},
	{route: "GET /patients", expect: [6]string{pAll, pAll, pAll, pAll, pAll, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/patients?search=1&family=Matrix" + sc.name + "&birth=2019-01-01", nil, 0
		}},
	{route: "GET /patients/{id}", label: " (sharing Yes)", expect: [6]string{pAll, pAll, pAll, pAll, pAll, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/patients/%d", m.patients[sc.name+"/Y"]), nil, 0
		}},
	{route: "GET /patients/{id}", label: " (sharing No)", expect: [6]string{hOwn, hOwn, hOwn, hOwn, hHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/patients/%d", m.patients[sc.name+"/N"]), nil, 0
		}},
	{route: "GET /patients/{id}", label: " (test environment)", expect: [6]string{hOwn, hOwn, hOwn, hOwn, hOwn, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/patients/%d", m.patients[sc.name+"/T"]), nil, 0
		}},
	{route: "POST /patients/{id}/sharing", expect: [6]string{pNone, dOwn, pNone, dOwn, dHS, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			id := m.patient("P", admin.SharingYes, sc)
			return "POST", fmt.Sprintf("/patients/%d/sharing", id), url.Values{"status": {"N"}, "form_ref": {"OBJ-1"}}, 0
		}},
	{route: "POST /patients/{id}/sharing", label: " (test environment, attested)", expect: [6]string{pNone, "303 404 404", pNone, "303 404 404", "303 404 404", dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			id := m.patient("T", admin.SharingYes, sc)
			return "POST", fmt.Sprintf("/patients/%d/sharing", id), url.Values{"status": {"N"}, "attestation": {"told us at the visit"}}, 0
		}},
	{route: "GET /registry", expect: [6]string{pNone, pNone, pNone, pNone, pNone, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/registry", nil, 0
		}},
	{route: "POST /registry/organizations", expect: [6]string{pNone, pNone, pNone, pNone, pNone, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "POST", "/registry/organizations", url.Values{"code": {fmt.Sprintf("ORG%d", m.next())}, "name": {"New"},
				"parent": {"0"}}, 0
		}},
	{route: "POST /registry/sites", expect: [6]string{pNone, pNone, pNone, pNone, pNone, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "POST", "/registry/sites", url.Values{"organization": {m.id(sc.site.OrganizationID)}, "code": {fmt.Sprintf("NEW%d", m.next())}, "name": {"New"}}, 0
		}},
	{route: "GET /sites", expect: [6]string{pAll, pAll, pAll, pAll, pAll, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/sites", nil, 0
		}},
	{route: "GET /sites/{id}", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/sites/%d", sc.site.ID), nil, 0
		}},
	{route: "POST /sites/{id}/status", expect: [6]string{pNone, pNone, pNone, pNone, pNone, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "POST", fmt.Sprintf("/sites/%d/status", m.freshSite(sc).ID), url.Values{"status": {"testing"}}, 0
		}},
	{route: "POST /sites/{id}/credentials", expect: [6]string{pNone, pNone, pNone, pNone, pNone, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "POST", fmt.Sprintf("/sites/%d/credentials", sc.site.ID), url.Values{"username": {fmt.Sprintf("soap%d", m.next())},
				"facility": {sc.site.Facilities[0]}}, 0
		}},
	{route: "POST /credentials/{id}/revoke", expect: [6]string{pNone, pNone, pNone, pNone, pNone, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "POST", fmt.Sprintf("/credentials/%d/revoke", m.credential(sc)), url.Values{}, 0
		}},
	{route: "GET /sites/{id}/intake", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/sites/%d/intake", sc.site.ID), nil, 0
		}},
	{route: "GET /sites/{id}/certification", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/sites/%d/certification", sc.site.ID), nil, 0
		}},
	{route: "GET /sites/{id}/certification", label: " (CSV)", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/sites/%d/certification?format=csv", sc.site.ID), nil, 0
		}},
	{route: "POST /sites/{id}/certification/sign-off", expect: [6]string{pNone, pNone, pNone, pNone, pNone, dAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "POST", fmt.Sprintf("/sites/%d/certification/sign-off", sc.site.ID), url.Values{"item": {"test-cases-reviewed"},
				"note": {fmt.Sprintf("matrix %d", m.next())}}, 0
		}},
	{route: "GET /sites/{id}/quality", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/sites/%d/quality?from=2026-01-01&to=2026-01-31&env=P", sc.site.ID), nil, 0
		}},
	{route: "GET /sites/{id}/quality", label: " (CSV)", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/sites/%d/quality?format=csv", sc.site.ID), nil, 0
		}},
	{route: "GET /sites/{id}/reconcile", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", fmt.Sprintf("/sites/%d/reconcile", sc.site.ID), nil, 0
		}},
	{route: "POST /sites/{id}/reconcile", expect: [6]string{pOwn, pOwn, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "POST", fmt.Sprintf("/sites/%d/reconcile", sc.site.ID), url.Values{"from": {"2026-01-01"}, "to": {"2026-01-31"},
				"env": {"P"}, "ids": {"MSG00001\nMSG00002\nnot an id"}}, 0
		}},
	{route: "GET /audit", expect: [6]string{pNone, pNone, pOwn, pOwn, pHS, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/audit?site=" + m.id(sc.site.ID), nil, 0
		}},
	{route: "GET /account", expect: [6]string{pAll, pAll, pAll, pAll, pAll, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/account", nil, 0
		}},
	{route: "GET /password", expect: [6]string{pAll, pAll, pAll, pAll, pAll, pAll},
		request: func(m *pmatrix, a admintest.Actor, sc pmScope) (string, string, url.Values, int64) {
			return "GET", "/password", nil, 0
		}},
}

// anonymous is the visitor who is not signed in: every row answers "in" (303 to the sign-in
// page, which comes back to the address after signing in).
var anonymous = admintest.Actor{Username: "(not signed in)", Group: "anon"}

// pmSession is one actor's browser: cookies, and the CSRF token of the session's forms.
type pmSession struct {
	http *http.Client
	csrf string
}

type pmatrix struct {
	w         *world
	hash      string
	seq       atomic.Int64
	scopes    []pmScope
	sessions  map[string]*pmSession
	users     map[string]*admin.User // the actors' accounts
	members   map[string]*admin.User // scope name → a Typical User of its site
	elsewhere *admin.User            // a user of organization ELSE only
	elseSite  *admin.Site
	patients  map[string]int64 // "scope/Y|N|T" → registry patient id
}

func (m *pmatrix) next() int64 { return m.seq.Add(1) }

func (m *pmatrix) freshUser(sc pmScope, status admin.UserStatus) *admin.User {
	m.w.t.Helper()
	u, err := admintest.FreshUser(context.Background(), m.w.db, m.hash, 1000+m.next(), sc.site, status, time.Now())
	m.w.must(err)
	return u
}

// freshSite is a registered site of the scope's organization with an active AA (ready for
// testing).
func (m *pmatrix) freshSite(sc pmScope) *admin.Site {
	m.w.t.Helper()
	ctx := context.Background()
	n := m.next()
	site, err := m.w.svc.CreateSite(ctx, m.w.sys, admin.SiteInput{OrganizationID: sc.site.OrganizationID, Code: fmt.Sprintf("FRESH%d", n), Name: "Fresh"})
	m.w.must(err)
	u, err := admintest.RegisterUser(ctx, m.w.svc, m.w.sys, fmt.Sprintf("freshaa%d", n), password, site, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	m.w.must(err)
	_ = u
	return site
}

func (m *pmatrix) patient(env string, sharing admin.Sharing, sc pmScope) int64 {
	m.w.t.Helper()
	id, err := admintest.InsertPatient(context.Background(), m.w.db, env, "Matrix"+sc.name, "Fresh", "2019-01-01", sharing, sc.site)
	m.w.must(err)
	return id
}

// credential is a new active SOAP credential of the scope's site.
func (m *pmatrix) credential(sc pmScope) int64 {
	m.w.t.Helper()
	c, err := m.w.svc.CreateSOAPCredential(context.Background(), m.w.sys, sc.site.ID, fmt.Sprintf("cred%d", m.next()), "Sender-Secret-2026-xyz", sc.site.Facilities[0])
	m.w.must(err)
	return c.ID
}

// invitation is a pending site invitation: for the own scope, of the actor (to the ELSE site,
// Read Only: accepting it grants nothing the matrix looks at); else, of the scope's member.
func (m *pmatrix) invitation(a admintest.Actor, sc pmScope) *admin.SiteInvitation {
	m.w.t.Helper()
	site := m.elseSite
	var user int64
	if sc.name == "own" && a.Group != "anon" {
		user = m.users[a.Username].ID
		if u, err := m.w.svc.User(context.Background(), m.w.sys, user); err == nil && u.Membership(site.ID) != nil {
			// Accepted in an earlier cell (the mutated run repeats cells): a fresh site.
			s, err := m.w.svc.CreateSite(context.Background(), m.w.sys, admin.SiteInput{OrganizationID: site.OrganizationID,
				Code: fmt.Sprintf("ELSE%d", m.next()), Name: "Elsewhere"})
			m.w.must(err)
			site = s
		}
	} else {
		user = m.members[sc.name].ID
	}
	inv, err := m.w.svc.InviteToSite(context.Background(), m.w.sys, admin.SiteInvitationInput{UserID: user, SiteID: site.ID, Role: admin.RoleReadOnly})
	m.w.must(err)
	return inv
}

func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// session signs username in through the portal's form ("" for the anonymous visitor) and reads
// the CSRF token of its forms.
func (m *pmatrix) session(username string) *pmSession {
	t := m.w.t
	t.Helper()
	jar, err := cookiejar.New(nil)
	m.w.must(err)
	s := &pmSession{http: &http.Client{Jar: jar, CheckRedirect: noRedirect}}
	_, page := m.get(s, "/signin")
	s.csrf = csrfOf(t, page)
	if username == "" {
		return s
	}
	code, loc, body := m.send(s, "POST", "/signin", url.Values{"username": {username}, "password": {password}})
	if code != http.StatusSeeOther || strings.HasPrefix(loc, "/signin") {
		t.Fatalf("sign in %s: %d %s\n%s", username, code, loc, body)
	}
	_, page = m.get(s, "/account")
	s.csrf = csrfOf(t, page)
	return s
}

func (m *pmatrix) get(s *pmSession, path string) (int, string) {
	code, _, body := m.send(s, "GET", path, nil)
	return code, body
}

// send makes a request of the session; a POST carries the session's CSRF token.
func (m *pmatrix) send(s *pmSession, method, path string, form url.Values) (code int, location, body string) {
	m.w.t.Helper()
	var rd io.Reader
	if method == "POST" {
		if form == nil {
			form = url.Values{}
		}
		form.Set("csrf", s.csrf)
		rd = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, m.w.srv.URL+path, rd)
	m.w.must(err)
	if method == "POST" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := s.http.Do(req)
	m.w.must(err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	m.w.must(err)
	return resp.StatusCode, resp.Header.Get("Location"), string(b)
}

func newPortalMatrix(t *testing.T) *pmatrix {
	w := newWorld(t)
	ctx := context.Background()
	m := &pmatrix{w: w, sessions: map[string]*pmSession{}, users: map[string]*admin.User{}, members: map[string]*admin.User{}, patients: map[string]int64{}}
	var err error
	m.hash, err = passwd.Hash(password)
	w.must(err)
	m.scopes = []pmScope{{"own", w.acme}, {"hs", w.acme2}, {"other", w.beta}}
	org, err := w.svc.CreateOrganization(ctx, w.sys, admin.OrganizationInput{Code: "ELSE", Name: "Elsewhere"})
	w.must(err)
	m.elseSite, err = w.svc.CreateSite(ctx, w.sys, admin.SiteInput{OrganizationID: org.ID, Code: "S-ELSE", Name: "Elsewhere"})
	w.must(err)
	m.elsewhere = m.freshUser(pmScope{"else", m.elseSite}, admin.UserActive)
	for _, a := range admintest.Actors {
		var site *admin.Site
		var ds []admin.Designation
		if !a.Staff {
			site = w.acme
		}
		if a.Designation != "" {
			ds = append(ds, a.Designation)
		}
		m.users[a.Username], err = admintest.RegisterUser(ctx, w.svc, w.sys, a.Username, password, site, a.Role, ds...)
		w.must(err)
		m.sessions[a.Username] = m.session(a.Username)
	}
	m.sessions[anonymous.Username] = m.session("")
	for _, sc := range m.scopes {
		m.members[sc.name] = m.freshUser(sc, admin.UserActive)
		for _, k := range []struct {
			env     string
			sharing admin.Sharing
			key     string
		}{{"P", admin.SharingYes, "Y"}, {"P", admin.SharingNo, "N"}, {"T", admin.SharingYes, "T"}} {
			m.patients[sc.name+"/"+k.key], err = admintest.InsertPatient(ctx, w.db, k.env, "Matrix"+sc.name, k.key, "2019-01-01", k.sharing, sc.site)
			w.must(err)
		}
	}
	return m
}

type pmMismatch struct {
	cell      string
	got, want string
	body      string
	changed   string // what a denied request changed, if anything
}

// userState is what a denied request must not change of its target user.
func (m *pmatrix) userState(id int64) string {
	var s string
	m.w.must(m.w.db.Pool.QueryRow(context.Background(), `SELECT concat_ws('|', u.username, u.first_name, u.email, u.status,
		coalesce(u.password_hash, ''), u.locked_at IS NOT NULL, u.updated_at,
		(SELECT string_agg(site_id || ':' || role, ',' ORDER BY site_id) FROM user_sites WHERE user_id = u.id),
		(SELECT string_agg(id || ':' || status, ',' ORDER BY id) FROM site_invitations WHERE user_id = u.id),
		(SELECT count(*) FROM user_invites WHERE user_id = u.id))
		FROM users u WHERE u.id = $1`, id).Scan(&s))
	return s
}

func (m *pmatrix) auditMax() int64 {
	var n int64
	m.w.must(m.w.db.Pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM audit_log`).Scan(&n))
	return n
}

// answer is a response as the matrix writes it: the status, or "in" for a redirect to the
// sign-in page.
func answer(code int, location string) string {
	if code == http.StatusSeeOther && strings.HasPrefix(location, "/signin?") {
		return "in"
	}
	return fmt.Sprint(code)
}

// run runs the cells of the rows keep selects, each as a subtest, and returns those that did not
// answer as the contract says (or changed something while denied).
func (m *pmatrix) run(t *testing.T, keep func(pmRow) bool) (cells int, bad []pmMismatch) {
	actors := append(append([]admintest.Actor(nil), admintest.Actors...), anonymous)
	for _, row := range pmRows {
		if !keep(row) {
			continue
		}
		for _, a := range actors {
			want := []string{"in", "in", "in"}
			if a.Group != "anon" {
				want = strings.Fields(row.expect[admintest.GroupIndex(a.Group)])
			}
			for si, sc := range m.scopes {
				name := fmt.Sprintf("%s%s/%s/%s", row.route, row.label, a.Username, sc.name)
				t.Run(name, func(t *testing.T) {
					m.w.t = t
					cells++
					method, path, form, target := row.request(m, a, sc)
					var before string
					if target != 0 {
						before = m.userState(target)
					}
					audit := m.auditMax()
					code, loc, body := m.send(m.sessions[a.Username], method, path, form)
					got := answer(code, loc)
					if got != want[si] {
						bad = append(bad, pmMismatch{cell: name, got: got, want: want[si], body: firstLines(body)})
						return
					}
					if got == "303" && strings.HasPrefix(loc, "/signin") {
						bad = append(bad, pmMismatch{cell: name, got: got + " " + loc, want: want[si], changed: "a redirect to the sign-in page"})
					}
					if got == "403" || got == "404" || got == "in" {
						page := map[string]string{"403": "<h1>Not allowed</h1>", "404": "<h1>Not found</h1>", "in": ""}[got]
						if !strings.Contains(body, page) {
							bad = append(bad, pmMismatch{cell: name, got: got, want: want[si], body: firstLines(body), changed: "a denial without its error page"})
						}
						if m.auditMax() != audit {
							bad = append(bad, pmMismatch{cell: name, got: got, want: want[si], changed: "an audit entry"})
						}
						if target != 0 && m.userState(target) != before {
							bad = append(bad, pmMismatch{cell: name, got: got, want: want[si], changed: "the target user"})
						}
					}
				})
			}
		}
	}
	return cells, bad
}

func firstLines(s string) string {
	if i := strings.Index(s, "<main"); i >= 0 {
		s = s[i:]
	}
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}

// TestPortalPermissionMatrix runs the contract: every portal page and form action × every role
// and designation (and the anonymous visitor) × own site / other site of the health system /
// other organization. Then it proves the matrix can fail: with one decision of the decision point
// changed, it reports exactly the cells that changed.
func TestPortalPermissionMatrix(t *testing.T) {
	start := time.Now()
	m := newPortalMatrix(t)
	setup := time.Since(start)

	// Every route has a row or is knowingly left out; every row is a route.
	rows := map[string]bool{}
	for _, r := range pmRows {
		rows[r.route] = true
	}
	for _, r := range m.w.web.Routes() {
		if !rows[r] && pmNotInMatrix[r] == "" {
			t.Errorf("portal route %s has no row in the permission matrix", r)
		}
		delete(rows, r)
	}
	for r := range rows {
		t.Errorf("matrix row %s is not a portal route", r)
	}

	cells, bad := m.run(t, func(pmRow) bool { return true })
	m.w.t = t
	for _, b := range bad {
		if b.changed != "" {
			t.Errorf("%s: %s, but it has %s %s", b.cell, b.got, b.changed, b.body)
		} else {
			t.Errorf("%s: %s, want %s: %s", b.cell, b.got, b.want, b.body)
		}
	}
	actors := len(admintest.Actors) + 1
	if want := len(pmRows) * actors * len(m.scopes); cells != want {
		t.Errorf("%d cells ran, want %d", cells, want)
	}
	t.Logf("portal permission matrix: %d rows (%d routes) × %d actors (roles, designations, anonymous) × %d scopes = %d cells, %d mismatches; setup %s, total %s",
		len(pmRows), len(m.w.web.Routes())-len(pmNotInMatrix), actors, len(m.scopes), cells, len(bad), setup.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The matrix can fail: let the decision point allow resetting the password of a user outside
	// the actor's scope (the first step of a cross-organization takeover). The matrix must catch
	// every cell where that matters, and only those.
	restore := admintest.SetDecisionHook(func(act admin.Action, d admin.Decision) admin.Decision {
		if act == admin.ActionResetPassword && d.Rule == admin.RuleUserOutsideScope {
			return admin.Decision{Allow: true, Rule: "mutated", Reason: "mutated"}
		}
		return d
	})
	defer restore()
	_, bad = m.run(t, func(r pmRow) bool { return r.route == "POST /users/{id}/reset" })
	m.w.t = t
	restore()
	caught := map[string]bool{}
	for _, b := range bad {
		// Caught as a 200 where 403 is due, or as a denial page after the reset was done (the
		// page then shows the user, which the actor still may not view).
		if b.want != "403" || (b.got != "200" && b.changed == "") {
			t.Errorf("mutated decision: unexpected mismatch %+v", b)
		}
		caught[b.cell] = true
	}
	// Administrators of one site (4 actors) at hs and other, Health System Users (2) at other.
	if len(caught) != 4*2+2*1 {
		t.Errorf("with a mutated decision the matrix caught %d cells, want 10: %v", len(caught), caught)
	}
}
