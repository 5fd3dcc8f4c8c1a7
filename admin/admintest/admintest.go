// Package admintest holds what the permission matrices of the admin API (admin's
// TestPermissionMatrix) and of the web portal (portal's TestPortalPermissionMatrix) share: the
// actors of the matrix (one per role and per designation, and registry staff) with the groups of
// equal rights their expectations are written for, the seeding of users and patients straight
// into the store (fast), and the test seam that changes one decision of the decision point to
// prove that a matrix can fail. It is for tests only.
package admintest

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/internal/testhook"
	"github.com/vaxgate/vaxgate/store"
)

// Actor is one actor of a permission matrix. Non-staff actors are members of the matrix's own
// site only, with Role and (if any) Designation; designations are held with the Read Only role,
// so that they show what they add.
type Actor struct {
	Username    string
	Role        admin.Role
	Designation admin.Designation
	Staff       bool   // registry staff (no membership)
	Group       string // the column of the expectations (one of Groups)
}

// Actors are the matrix's actors: every MIIC role and every MIIS designation, and registry staff.
var Actors = []Actor{
	{Username: "m.readonly", Role: admin.RoleReadOnly, Group: "ro"},
	{Username: "m.typical", Role: admin.RoleTypicalUser, Group: "tu"},
	{Username: "m.typicalord", Role: admin.RoleTypicalUserOrdering, Group: "tu"},
	{Username: "m.roadm", Role: admin.RoleReadOnlyAdministrator, Group: "mro"},
	{Username: "m.adm", Role: admin.RoleAdministrator, Group: "adm"},
	{Username: "m.admord", Role: admin.RoleAdministratorOrdering, Group: "adm"},
	{Username: "m.hsu", Role: admin.RoleHealthSystemUser, Group: "hsu"},
	{Username: "m.hsuord", Role: admin.RoleHealthSystemUserOrdering, Group: "hsu"},
	{Username: "m.aa", Role: admin.RoleReadOnly, Designation: admin.DesignationAccessAdministrator, Group: "mro"},
	{Username: "m.supervising", Role: admin.RoleReadOnly, Designation: admin.DesignationSupervisingPhysician, Group: "ro"},
	{Username: "m.technical", Role: admin.RoleReadOnly, Designation: admin.DesignationTechnicalContact, Group: "ro"},
	{Username: "m.champion", Role: admin.RoleReadOnly, Designation: admin.DesignationClinicalChampion, Group: "ro"},
	{Username: "m.incentive", Role: admin.RoleReadOnly, Designation: admin.DesignationIncentiveContact, Group: "ro"},
	{Username: "m.registry", Staff: true, Group: "staff"},
}

// Groups of actors with the same rights, in the order of the matrices' expectation columns:
//
//	ro    Read Only, and the designations other than AA (on Read Only): look up patients only
//	tu    Typical User (with Ordering): patients and data sharing
//	mro   Read Only Administrator, and Access Administrator (on Read Only): users of their site, patients read-only
//	adm   Administrator (with Ordering): users of their site, patients and data sharing
//	hsu   Health System User (with Ordering): as Administrator, in every site of the health system
//	staff registry staff: everything
var Groups = []string{"ro", "tu", "mro", "adm", "hsu", "staff"}

// GroupIndex is the column of group g in Groups.
func GroupIndex(g string) int {
	for i, x := range Groups {
		if x == g {
			return i
		}
	}
	panic("admintest: unknown group " + g)
}

// SetDecisionHook makes admin.Decide pass every decision through h, until restore is called: a
// permission matrix changes one decision and checks that it notices.
func SetDecisionHook(h func(admin.Action, admin.Decision) admin.Decision) (restore func()) {
	old := testhook.Swap(testhook.Hook{F: h})
	return func() { testhook.Swap(old) }
}

// RegisterUser creates an active user through the real flow (invitation and registration, by
// actor by): a member of site with role and designations, or registry staff when site is nil.
func RegisterUser(ctx context.Context, svc *admin.Service, by admin.Actor, username, password string, site *admin.Site, role admin.Role, ds ...admin.Designation) (*admin.User, error) {
	in := admin.InviteInput{
		NewUserInput: admin.NewUserInput{Username: username, FirstName: "F" + username, LastName: "L" + username, Email: username + "@clinic.test"},
		Role:         role, Designations: ds, SkipEmail: true,
	}
	if site != nil {
		in.SiteID = site.ID
	} else {
		in.RegistryAdmin = true
	}
	inv, err := svc.Invite(ctx, by, in)
	if err != nil {
		return nil, fmt.Errorf("invite %s: %w", username, err)
	}
	tok, err := LinkToken(inv.Link)
	if err != nil {
		return nil, err
	}
	u, err := svc.Register(ctx, tok, password, true)
	if err != nil {
		return nil, fmt.Errorf("register %s: %w", username, err)
	}
	return u, nil
}

// LinkToken is the token of a registration link (…/api/v1/register?token=…).
func LinkToken(link string) (string, error) {
	i := strings.Index(link, "token=")
	if i < 0 {
		return "", fmt.Errorf("no token in registration link %q", link)
	}
	tok := link[i+len("token="):]
	if j := strings.IndexAny(tok, "&# \r\n"); j >= 0 {
		tok = tok[:j]
	}
	return url.QueryUnescape(tok)
}

// FreshUser creates, directly in the store (fast), user "target<n>": a Typical User of site only,
// with the password hash given. Status "locked" is an active user locked after failed logins;
// status invited has no password.
func FreshUser(ctx context.Context, db *store.DB, hash string, n int64, site *admin.Site, status admin.UserStatus, now time.Time) (*admin.User, error) {
	st := status
	if status == "locked" {
		st = admin.UserActive
	}
	u := &admin.User{Username: fmt.Sprintf("target%d", n), FirstName: "Target", LastName: fmt.Sprintf("T%d", n),
		Email: fmt.Sprintf("target%d@clinic.test", n), Status: st, LastActiveAt: &now, CreatedAt: now, UpdatedAt: now,
		Memberships: []admin.Membership{{SiteID: site.ID, Role: admin.RoleTypicalUser, Designations: []admin.Designation{}}}}
	if st != admin.UserInvited {
		u.PasswordHash = hash
	}
	if err := store.NewAdminStore(db).CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("create user %s: %w", u.Username, err)
	}
	if status == "locked" {
		if _, err := db.Pool.Exec(ctx, `UPDATE users SET locked_at = $2, failed_logins = 5 WHERE id = $1`, u.ID, now); err != nil {
			return nil, fmt.Errorf("lock user %s: %w", u.Username, err)
		}
	}
	return u, nil
}

// InsertPatient inserts a registry patient of environment env ("P" or "T") reported by the given
// sites (one report and one vaccination per site), the way the pipeline stores them: the archived
// message (SeedVXU) is the copy of record, referenced by the patient and vaccination rows.
func InsertPatient(ctx context.Context, db *store.DB, env, family, given, birth string, sharing admin.Sharing, sites ...*admin.Site) (int64, error) {
	var reg int64
	err := db.Pool.QueryRow(ctx, `INSERT INTO registry_patients (env, family_name, given_name, birth_date, sex, sharing)
		VALUES ($5, $1, $2, $3, 'F', $4) RETURNING id`, family, given, birth, string(sharing), env).Scan(&reg)
	if err != nil {
		return 0, fmt.Errorf("insert registry patient: %w", err)
	}
	for i, s := range sites {
		var msg, pat int64
		mrn := fmt.Sprintf("MRN-%d-%d", reg, i)
		raw := SeedVXU(mrn, family, given, birth, "08")
		if err := db.Pool.QueryRow(ctx, `INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code)
			VALUES ($3, $1, 'mllp', $2, now(), $4, '\x00', 'AA') RETURNING id`, s.ID, fmt.Sprintf("ctl-%d-%d", reg, i), env, raw).Scan(&msg); err != nil {
			return 0, fmt.Errorf("insert message: %w", err)
		}
		if err := db.Pool.QueryRow(ctx, `INSERT INTO patients (env, organization_id, id_value, id_authority, id_type, registry_patient_id,
			family_name, given_name, birth_date, sex, report_messages) VALUES ($7, $1, $2, 'AUTH', 'MR', $3, $4, $5, $6::date, 'F',
			ARRAY[$8::bigint]) RETURNING id`,
			s.OrganizationID, mrn, reg, family, given, birth, env, msg).Scan(&pat); err != nil {
			return 0, fmt.Errorf("insert patient: %w", err)
		}
		if _, err := db.Pool.Exec(ctx, `INSERT INTO vaccinations (env, patient_id, registry_patient_id, organization_id, site_id, cvx,
			administered_on, historical, lot, mvx, report_messages, report_groups)
			VALUES ($7, $1, $2, $3, $4, '08', '2024-05-01', false, $5, 'MSD', ARRAY[$6::bigint], '{1}')`,
			pat, reg, s.OrganizationID, s.ID, "LOT-"+s.Code, msg, env); err != nil {
			return 0, fmt.Errorf("insert vaccination: %w", err)
		}
	}
	return reg, nil
}

// SeedVXU is a minimal VXU of a patient (PID-3 mrn with authority AUTH, type MR; birth as
// YYYY-MM-DD; sex F) with one order group per CVX code, administered 2024-05-01: the archived
// message a seeded patient's rows reference.
func SeedVXU(mrn, family, given, birth string, cvx ...string) []byte {
	var b strings.Builder
	b.WriteString("MSH|^~\\&|SEED|SEED|VAXGATE|VAXGATE|20240501120000||VXU^V04^VXU_V04|SEED-" + mrn + "|P|2.5.1\r")
	fmt.Fprintf(&b, "PID|1||%s^^^AUTH^MR||%s^%s^^^^^L||%s|F\r", mrn, family, given, strings.ReplaceAll(birth, "-", ""))
	for _, c := range cvx {
		fmt.Fprintf(&b, "ORC|RE||%s-%s^SEED\rRXA|0|1|20240501|20240501|%s^vaccine^CVX|0.5|mL^mL^UCUM||00^New^NIP001\r", mrn, c, c)
	}
	return []byte(b.String())
}
