package admin_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
)

// The permission matrix is the contract of the admin API's authorization: every endpoint that
// acts on something, for every role and designation, against a target in the actor's own site,
// in another site of the same health system, and in another organization, answers the status
// written here — by hand, from the specification, not computed from the code it checks. It runs
// over real HTTP (the real admin handler on an httptest server) against a real PostgreSQL, one
// subtest per cell.

// The actors: one user per role and per designation, each a member of site S-HS (organization
// HS, the parent of a health system) only, and a registry staff member. Designations are held
// with the Read Only role, so that they show what they add.
type matrixActor struct {
	username    string
	role        admin.Role
	designation admin.Designation
	staff       bool
	group       string // the column of the expectations
}

var matrixActors = []matrixActor{
	{username: "m.readonly", role: admin.RoleReadOnly, group: "ro"},
	{username: "m.typical", role: admin.RoleTypicalUser, group: "tu"},
	{username: "m.typicalord", role: admin.RoleTypicalUserOrdering, group: "tu"},
	{username: "m.roadm", role: admin.RoleReadOnlyAdministrator, group: "mro"},
	{username: "m.adm", role: admin.RoleAdministrator, group: "adm"},
	{username: "m.admord", role: admin.RoleAdministratorOrdering, group: "adm"},
	{username: "m.hsu", role: admin.RoleHealthSystemUser, group: "hsu"},
	{username: "m.hsuord", role: admin.RoleHealthSystemUserOrdering, group: "hsu"},
	{username: "m.aa", role: admin.RoleReadOnly, designation: admin.DesignationAccessAdministrator, group: "mro"},
	{username: "m.supervising", role: admin.RoleReadOnly, designation: admin.DesignationSupervisingPhysician, group: "ro"},
	{username: "m.technical", role: admin.RoleReadOnly, designation: admin.DesignationTechnicalContact, group: "ro"},
	{username: "m.champion", role: admin.RoleReadOnly, designation: admin.DesignationClinicalChampion, group: "ro"},
	{username: "m.incentive", role: admin.RoleReadOnly, designation: admin.DesignationIncentiveContact, group: "ro"},
	{username: "m.registry", staff: true, group: "staff"},
}

// Groups of actors with the same rights, in the order of the expectation strings:
//
//	ro    Read Only, and the designations other than AA (on Read Only): look up patients only
//	tu    Typical User (with Ordering): patients and data sharing
//	mro   Read Only Administrator, and Access Administrator (on Read Only): users of their site, patients read-only
//	adm   Administrator (with Ordering): users of their site, patients and data sharing
//	hsu   Health System User (with Ordering): as Administrator, in every site of the health system
//	staff registry staff: everything
var matrixGroups = []string{"ro", "tu", "mro", "adm", "hsu", "staff"}

// Shorthands for a group's three answers (own site, other site of the health system, other
// organization).
const (
	sOwn   = "200 403 403"
	sHS    = "200 200 403"
	sAll   = "200 200 200"
	sNone  = "403 403 403"
	cOwn   = "201 403 403"
	cHS    = "201 201 403"
	cAll   = "201 201 201"
	nOwn   = "200 404 404" // hidden elsewhere (404, not 403)
	nHS    = "200 200 404"
	search = sAll
)

// matrixScope is where the target is.
type matrixScope struct {
	name string
	site *admin.Site
	org  *admin.Organization
	top  string // code of the top organization of the health system
}

type matrixEndpoint struct {
	route string // "METHOD /path" exactly as admin.Routes lists it
	label string // distinguishes variants of one route
	// expect holds the answers of each group, in the order of matrixGroups.
	expect [6]string
	// request builds the request of one cell (and the target it acts on, when it is a user whose
	// row must not change on a denial).
	request func(m *matrix, sc matrixScope) (method, path string, body any, target int64)
}

// notInMatrix lists the routes that act on nothing but the caller (or nobody): they are tested
// by their own tests. Any other route must have a row, so that a new endpoint cannot be added
// without its place in the contract.
var notInMatrix = map[string]string{
	"GET /api/v1/openapi.yaml":                      "public document",
	"POST /api/v1/login":                            "public: TestLoginSessionLogout, TestLockoutAndUnlock",
	"GET /api/v1/register":                          "public: TestRegisterHTMLForm",
	"POST /api/v1/register":                         "public: TestInviteRegister",
	"POST /api/v1/logout":                           "the caller's session",
	"GET /api/v1/me":                                "the caller's account",
	"POST /api/v1/me/password":                      "the caller's password: TestPasswordPolicyAndChange",
	"GET /api/v1/me/site-invitations":               "the caller's invitations: TestInviteRefusals",
	"POST /api/v1/me/site-invitations/{id}/accept":  "only the invitee: TestInviteRefusals, TestTakeoverSequenceFailsAtFirstStep",
	"POST /api/v1/me/site-invitations/{id}/decline": "only the invitee",
	"GET /api/v1/me/can":                            "the decision point's query form: TestCanQuery",
}

var matrixEndpoints = []matrixEndpoint{
	// The report module's site reports (package report), mounted beside the admin API.
	{route: "GET /api/v1/sites/{id}/certification", expect: [6]string{sOwn, sOwn, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/sites/%d/certification", sc.site.ID), nil, 0
		}},
	{route: "GET /api/v1/sites/{id}/quality", expect: [6]string{sOwn, sOwn, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/sites/%d/quality?from=2025-02-01&to=2025-03-01", sc.site.ID), nil, 0
		}},
	{route: "POST /api/v1/sites/{id}/reconcile", expect: [6]string{sOwn, sOwn, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "POST", fmt.Sprintf("/api/v1/sites/%d/reconcile?from=2025-02-01&to=2025-03-01", sc.site.ID), map[string]any{"count": 0}, 0
		}},
	{route: "POST /api/v1/sites/{id}/certification/sign-off", expect: [6]string{sNone, sNone, sNone, sNone, sNone, cAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "POST", fmt.Sprintf("/api/v1/sites/%d/certification/sign-off", sc.site.ID), map[string]any{"item": "contacts-on-file", "note": fmt.Sprintf("n%d", m.next())}, 0
		}},
	{route: "GET /api/v1/organizations", expect: [6]string{search, search, search, search, search, search},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", "/api/v1/organizations", nil, 0
		}},
	{route: "POST /api/v1/organizations", expect: [6]string{sNone, sNone, sNone, sNone, sNone, cAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			n := m.next()
			return "POST", "/api/v1/organizations", map[string]any{"code": fmt.Sprintf("ORG%d", n), "name": "New", "parent_code": sc.top}, 0
		}},
	{route: "GET /api/v1/organizations/{id}", expect: [6]string{sOwn, sOwn, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/organizations/%d", sc.org.ID), nil, 0
		}},
	{route: "GET /api/v1/sites", expect: [6]string{search, search, search, search, search, search},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/sites?organization_id=%d", sc.org.ID), nil, 0
		}},
	{route: "POST /api/v1/sites", expect: [6]string{sNone, sNone, sNone, sNone, sNone, cAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			n := m.next()
			return "POST", "/api/v1/sites", map[string]any{"organization_id": sc.org.ID, "code": fmt.Sprintf("NEW%d", n), "name": "New"}, 0
		}},
	{route: "GET /api/v1/sites/{id}", expect: [6]string{sOwn, sOwn, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/sites/%d", sc.site.ID), nil, 0
		}},
	{route: "POST /api/v1/sites/{id}/status", expect: [6]string{sNone, sNone, sNone, sNone, sNone, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			site := m.freshSite(sc) // registered, with an active AA: ready for testing
			return "POST", fmt.Sprintf("/api/v1/sites/%d/status", site.ID), map[string]string{"status": "testing"}, 0
		}},
	{route: "POST /api/v1/sites/{id}/facilities", expect: [6]string{sNone, sNone, sNone, sNone, sNone, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "POST", fmt.Sprintf("/api/v1/sites/%d/facilities", sc.site.ID), map[string]string{"facility_id": fmt.Sprintf("FAC-%d", m.next())}, 0
		}},
	{route: "DELETE /api/v1/sites/{id}/facilities/{facility}", expect: [6]string{sNone, sNone, sNone, sNone, sNone, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			f := fmt.Sprintf("DEL-%d", m.next())
			if _, err := m.e.svc.AddSiteFacility(context.Background(), m.e.sys, sc.site.ID, f); err != nil {
				m.e.t.Fatal(err)
			}
			return "DELETE", fmt.Sprintf("/api/v1/sites/%d/facilities/%s", sc.site.ID, f), nil, 0
		}},
	{route: "GET /api/v1/sites/{id}/credentials", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/sites/%d/credentials", sc.site.ID), nil, 0
		}},
	{route: "POST /api/v1/sites/{id}/credentials", expect: [6]string{sNone, sNone, sNone, sNone, sNone, cAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "POST", fmt.Sprintf("/api/v1/sites/%d/credentials", sc.site.ID), map[string]string{"transport": "mllp", "source_cidr": m.cidr()}, 0
		}},
	{route: "DELETE /api/v1/credentials/{id}", expect: [6]string{sNone, sNone, sNone, sNone, sNone, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			c, err := m.e.svc.CreateMLLPCredential(context.Background(), m.e.sys, sc.site.ID, m.cidr(), "")
			if err != nil {
				m.e.t.Fatal(err)
			}
			return "DELETE", fmt.Sprintf("/api/v1/credentials/%d", c.ID), nil, 0
		}},
	{route: "GET /api/v1/users", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/users?site_id=%d", sc.site.ID), nil, 0
		}},
	{route: "GET /api/v1/users/search", expect: [6]string{sNone, sNone, sAll, sAll, sAll, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", "/api/v1/users/search?email=" + m.members[sc.name].Email, nil, 0
		}},
	{route: "POST /api/v1/invitations", expect: [6]string{sNone, sNone, cOwn, cOwn, cHS, cAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			n := m.next()
			return "POST", "/api/v1/invitations", map[string]any{"site_id": sc.site.ID, "username": fmt.Sprintf("inv.m%d", n),
				"first_name": "Invited", "last_name": fmt.Sprintf("Person%d", n), "email": fmt.Sprintf("inv.m%d@clinic.test", n), "role": "read_only"}, 0
		}},
	{route: "GET /api/v1/users/{id}", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/users/%d", m.members[sc.name].ID), nil, 0
		}},
	{route: "PATCH /api/v1/users/{id}", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "PATCH", fmt.Sprintf("/api/v1/users/%d", u.ID), map[string]string{"email": fmt.Sprintf("changed%d@elsewhere.test", m.next())}, u.ID
		}},
	{route: "POST /api/v1/users/{id}/invitation", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, admin.UserInvited)
			return "POST", fmt.Sprintf("/api/v1/users/%d/invitation", u.ID), nil, u.ID
		}},
	{route: "PUT /api/v1/users/{id}/memberships/{site_id}", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "PUT", fmt.Sprintf("/api/v1/users/%d/memberships/%d", u.ID, sc.site.ID), map[string]any{"role": "read_only"}, u.ID
		}},
	{route: "DELETE /api/v1/users/{id}/memberships/{site_id}", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "DELETE", fmt.Sprintf("/api/v1/users/%d/memberships/%d", u.ID, sc.site.ID), nil, u.ID
		}},
	{route: "POST /api/v1/users/{id}/deactivate", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "POST", fmt.Sprintf("/api/v1/users/%d/deactivate", u.ID), nil, u.ID
		}},
	{route: "POST /api/v1/users/{id}/reactivate", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, admin.UserInactiveManual)
			return "POST", fmt.Sprintf("/api/v1/users/%d/reactivate", u.ID), nil, u.ID
		}},
	{route: "POST /api/v1/users/{id}/unlock", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, "locked")
			return "POST", fmt.Sprintf("/api/v1/users/%d/unlock", u.ID), nil, u.ID
		}},
	{route: "POST /api/v1/users/{id}/reset-password", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(sc, admin.UserActive)
			return "POST", fmt.Sprintf("/api/v1/users/%d/reset-password", u.ID), nil, u.ID
		}},
	{route: "POST /api/v1/site-invitations", expect: [6]string{sNone, sNone, cOwn, cOwn, cHS, cAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			u := m.freshUser(m.elsewhere, admin.UserActive) // an existing user of an unrelated organization
			return "POST", "/api/v1/site-invitations", map[string]any{"user_id": u.ID, "site_id": sc.site.ID, "role": "read_only"}, u.ID
		}},
	{route: "GET /api/v1/sites/{id}/site-invitations", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/sites/%d/site-invitations", sc.site.ID), nil, 0
		}},
	{route: "GET /api/v1/patients", expect: [6]string{search, search, search, search, search, search},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", "/api/v1/patients?family_name=Matrix" + sc.name + "&birth_date=2019-01-01", nil, 0
		}},
	{route: "GET /api/v1/patients/{id}", label: "sharing Yes", expect: [6]string{sAll, sAll, sAll, sAll, sAll, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/patients/%d", m.patients[sc.name+"/Y"]), nil, 0
		}},
	{route: "GET /api/v1/patients/{id}", label: "sharing No", expect: [6]string{nOwn, nOwn, nOwn, nOwn, nHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/patients/%d", m.patients[sc.name+"/N"]), nil, 0
		}},
	{route: "GET /api/v1/patients/{id}", label: "test environment", expect: [6]string{nOwn, nOwn, nOwn, nOwn, nOwn, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/patients/%d", m.patients[sc.name+"/T"]), nil, 0
		}},
	{route: "POST /api/v1/patients/{id}/sharing", expect: [6]string{sNone, sOwn, sNone, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			p := m.e.patient("Sharing"+sc.name, fmt.Sprintf("P%d", m.next()), "2018-02-02", admin.SharingYes, sc.site)
			return "POST", fmt.Sprintf("/api/v1/patients/%d/sharing", p), map[string]string{"status": "N", "form_ref": "OBJ-1"}, 0
		}},
	{route: "GET /api/v1/audit", expect: [6]string{sNone, sNone, sOwn, sOwn, sHS, sAll},
		request: func(m *matrix, sc matrixScope) (string, string, any, int64) {
			return "GET", fmt.Sprintf("/api/v1/audit?site_id=%d", sc.site.ID), nil, 0
		}},
}

// matrix is the seeded world: the env's health system HS (site S-HS) with child organization
// CHILD (site S-CHILD), the unrelated organization OTHER (site S-OTHER), and ELSE (site S-ELSE)
// where invitees of site invitations come from.
type matrix struct {
	e         *env
	st        *store.AdminStore
	hash      string
	seq       atomic.Int64
	tokens    map[string]string
	scopes    []matrixScope
	elsewhere matrixScope
	members   map[string]*admin.User // a member of each scope's site (read-only targets)
	patients  map[string]int64       // "scope/Y", "scope/N", "scope/T"
}

func (m *matrix) next() int64 { return m.seq.Add(1) }

func (m *matrix) cidr() string {
	n := m.next()
	return fmt.Sprintf("10.%d.%d.%d/32", (n>>16)&255, (n>>8)&255, n&255)
}

// freshUser creates a user who is a member (Typical User) of the scope's site only, directly in
// the store (fast); status "locked" is an active user locked after failed logins.
func (m *matrix) freshUser(sc matrixScope, status admin.UserStatus) *admin.User {
	m.e.t.Helper()
	n := m.next()
	now := m.e.clock.Now()
	st := status
	if status == "locked" {
		st = admin.UserActive
	}
	u := &admin.User{Username: fmt.Sprintf("target%d", n), FirstName: "Target", LastName: fmt.Sprintf("T%d", n),
		Email: fmt.Sprintf("target%d@clinic.test", n), Status: st, LastActiveAt: &now, CreatedAt: now, UpdatedAt: now,
		Memberships: []admin.Membership{{SiteID: sc.site.ID, Role: admin.RoleTypicalUser, Designations: []admin.Designation{}}}}
	if st != admin.UserInvited {
		u.PasswordHash = m.hash
	}
	if err := m.st.CreateUser(context.Background(), u); err != nil {
		m.e.t.Fatal(err)
	}
	if status == "locked" {
		if _, err := m.e.db.Pool.Exec(context.Background(), `UPDATE users SET locked_at = $2, failed_logins = 5 WHERE id = $1`, u.ID, now); err != nil {
			m.e.t.Fatal(err)
		}
	}
	return u
}

// freshSite creates a registered site of the scope's organization with an active AA.
func (m *matrix) freshSite(sc matrixScope) *admin.Site {
	m.e.t.Helper()
	n := m.next()
	site, err := m.e.svc.CreateSite(context.Background(), m.e.sys, admin.SiteInput{OrganizationID: sc.org.ID, Code: fmt.Sprintf("FRESH%d", n), Name: "Fresh"})
	if err != nil {
		m.e.t.Fatal(err)
	}
	aa := m.freshUser(matrixScope{site: site}, admin.UserActive)
	if _, err := m.st.PutMembership(context.Background(), admin.Membership{UserID: aa.ID, SiteID: site.ID, Role: admin.RoleAdministrator,
		Designations: []admin.Designation{admin.DesignationAccessAdministrator}}, m.e.clock.Now()); err != nil {
		m.e.t.Fatal(err)
	}
	return site
}

func newMatrix(t *testing.T) *matrix {
	e := newEnv(t)
	ctx := context.Background()
	m := &matrix{e: e, st: store.NewAdminStore(e.db), tokens: map[string]string{}, members: map[string]*admin.User{}, patients: map[string]int64{}}
	var err error
	if m.hash, err = passwd.Hash(goodPassword); err != nil {
		t.Fatal(err)
	}
	m.scopes = []matrixScope{
		{"own", e.siteHS, e.orgHS, "HS"},
		{"hs", e.siteChild, e.orgChild, "HS"},
		{"other", e.siteOther, e.orgOther, "OTHER"},
	}
	orgElse, err := e.svc.CreateOrganization(ctx, e.sys, admin.OrganizationInput{Code: "ELSE", Name: "Elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	siteElse, err := e.svc.CreateSite(ctx, e.sys, admin.SiteInput{OrganizationID: orgElse.ID, Code: "S-ELSE", Name: "Elsewhere"})
	if err != nil {
		t.Fatal(err)
	}
	m.elsewhere = matrixScope{"else", siteElse, orgElse, "ELSE"}
	for _, a := range matrixActors {
		if a.staff {
			e.user(a.username, nil, "")
		} else if a.designation != "" {
			e.user(a.username, e.siteHS, a.role, a.designation)
		} else {
			e.user(a.username, e.siteHS, a.role)
		}
		m.tokens[a.username] = e.login(a.username)
	}
	for _, sc := range m.scopes {
		m.members[sc.name] = m.freshUser(sc, admin.UserActive)
		m.patients[sc.name+"/Y"] = e.patient("Matrix"+sc.name, "Yes", "2019-01-01", admin.SharingYes, sc.site)
		m.patients[sc.name+"/N"] = e.patient("Matrix"+sc.name, "No", "2019-01-01", admin.SharingNo, sc.site)
		m.patients[sc.name+"/T"] = e.patientIn("T", "Matrix"+sc.name, "Test", "2019-01-01", admin.SharingYes, sc.site)
	}
	return m
}

// mismatch is a cell whose answer is not the contract's.
type mismatch struct {
	cell      string
	got, want int
	body      string
	changedBy string // what a denied request changed, if anything
}

// userState is what a denied request must not change of its target user.
func (m *matrix) userState(id int64) string {
	var s string
	err := m.e.db.Pool.QueryRow(context.Background(), `SELECT concat_ws('|', u.username, u.email, u.status, coalesce(u.password_hash, ''),
		u.locked_at IS NOT NULL, u.updated_at, (SELECT count(*) FROM user_sites WHERE user_id = u.id),
		(SELECT count(*) FROM site_invitations WHERE user_id = u.id), (SELECT count(*) FROM user_invites WHERE user_id = u.id))
		FROM users u WHERE u.id = $1`, id).Scan(&s)
	if err != nil {
		m.e.t.Fatal(err)
	}
	return s
}

func (m *matrix) auditMax() int64 {
	var n int64
	if err := m.e.db.Pool.QueryRow(context.Background(), `SELECT coalesce(max(id), 0) FROM audit_log`).Scan(&n); err != nil {
		m.e.t.Fatal(err)
	}
	return n
}

// run runs the cells of the endpoints for which keep is true, each as a subtest, and returns the
// cells that did not answer as the contract says. A denied cell (403/404) must also change
// nothing: no audit entry (every change is audited; a patient view is only on success), and its
// target user's row unchanged.
func (m *matrix) run(t *testing.T, keep func(matrixEndpoint) bool) (cells int, bad []mismatch) {
	for _, ep := range m.matrixEndpoints() {
		if !keep(ep) {
			continue
		}
		for _, a := range matrixActors {
			gi := indexOf(matrixGroups, a.group)
			want := strings.Fields(ep.expect[gi])
			for si, sc := range m.scopes {
				name := fmt.Sprintf("%s%s/%s/%s", ep.route, ep.label, a.username, sc.name)
				t.Run(name, func(t *testing.T) {
					m.e.t = t
					cells++
					method, path, body, target := ep.request(m, sc)
					var before string
					if target != 0 {
						before = m.userState(target)
					}
					audit := m.auditMax()
					got, b, _ := m.e.do(method, path, m.tokens[a.username], body)
					var w int
					fmt.Sscan(want[si], &w)
					if got != w {
						bad = append(bad, mismatch{cell: name, got: got, want: w, body: string(b)})
						return
					}
					if got == http.StatusForbidden || got == http.StatusNotFound {
						if !strings.Contains(string(b), `"rule":"`) {
							bad = append(bad, mismatch{cell: name, got: got, want: w, body: string(b), changedBy: "a denial without its rule"})
						}
						if m.auditMax() != audit {
							bad = append(bad, mismatch{cell: name, got: got, want: w, body: string(b), changedBy: "an audit entry"})
						}
						if target != 0 && m.userState(target) != before {
							bad = append(bad, mismatch{cell: name, got: got, want: w, body: string(b), changedBy: "the target user"})
						}
					}
				})
			}
		}
	}
	return cells, bad
}

func (m *matrix) matrixEndpoints() []matrixEndpoint { return matrixEndpoints }

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	panic("unknown group " + x)
}

// TestPermissionMatrix runs the contract: every admin endpoint × every role and designation ×
// own site / other site of the health system / other organization. Then it proves the matrix can
// fail: with one decision of the decision point changed, the matrix reports exactly the cells that
// changed.
func TestPermissionMatrix(t *testing.T) {
	start := time.Now()
	m := newMatrix(t)
	setup := time.Since(start)

	// Every route is in the matrix or knowingly left out of it.
	inMatrix := map[string]bool{}
	for _, ep := range matrixEndpoints {
		inMatrix[ep.route] = true
	}
	routes := admin.Routes()
	for _, r := range report.Routes() {
		routes = append(routes, admin.Route{Method: r.Method, Path: r.Path})
	}
	for _, r := range routes {
		k := r.Method + " " + r.Path
		if !inMatrix[k] && notInMatrix[k] == "" {
			t.Errorf("route %s has no row in the permission matrix", k)
		}
		delete(inMatrix, k)
	}
	for k := range inMatrix {
		t.Errorf("matrix row %s is not a route", k)
	}

	cells, bad := m.run(t, func(matrixEndpoint) bool { return true })
	m.e.t = t
	for _, b := range bad {
		if b.changedBy != "" {
			t.Errorf("%s: denied (%d) but it changed %s: %s", b.cell, b.got, b.changedBy, b.body)
		} else {
			t.Errorf("%s: %d, want %d: %s", b.cell, b.got, b.want, b.body)
		}
	}
	endpoints := map[string]bool{}
	for _, ep := range matrixEndpoints {
		endpoints[ep.route+ep.label] = true
	}
	if want := len(endpoints) * len(matrixActors) * len(m.scopes); cells != want {
		t.Errorf("%d cells ran, want %d", cells, want)
	}
	t.Logf("permission matrix: %d endpoint rows × %d roles/designations × %d scopes = %d cells, %d mismatches; setup %s, total %s",
		len(endpoints), len(matrixActors), len(m.scopes), cells, len(bad), setup.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// The matrix can fail: let the decision point allow resetting the password of a user outside
	// the actor's scope (the cross-organization takeover), and the matrix must catch every cell
	// where that matters, and only those.
	restore := admin.SetDecisionHook(func(act admin.Action, d admin.Decision) admin.Decision {
		if act == admin.ActionResetPassword && d.Rule == admin.RuleUserOutsideScope {
			return admin.Decision{Allow: true, Rule: "mutated", Reason: "mutated"}
		}
		return d
	})
	defer restore()
	_, bad = m.run(t, func(ep matrixEndpoint) bool { return ep.route == "POST /api/v1/users/{id}/reset-password" })
	m.e.t = t
	restore()
	caught := map[string]bool{}
	for _, b := range bad {
		if b.got != http.StatusOK || b.want != http.StatusForbidden {
			t.Errorf("mutated decision: unexpected mismatch %+v", b)
		}
		caught[b.cell] = true
	}
	// Administrators of one site (4 actors) at hs and other, Health System Users (2) at other.
	if len(caught) != 4*2+2*1 {
		t.Errorf("with a mutated decision the matrix caught %d cells, want 10: %v", len(caught), caught)
	}
	// The mutated run's subtests failed on purpose: they report through the mismatches, not
	// through t, so this test passes only if the matrix caught the mutation.
}
