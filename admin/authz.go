package admin

import (
	"context"
	"fmt"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin/internal/testhook"
)

// This file is the one authorization decision point of the admin module. Every Service method
// that acts on behalf of an Actor asks Decide (through Service.authorize) before it reads or
// changes anything; the JSON API, the command line and the web portal never decide on their own.
// Service.Can is the cheap query form for pages that hide the controls an actor may not use.
// docs/permissions.md is generated from this file (go generate ./admin).

// Action is something an actor asks to do. Its value is the name used in docs/permissions.md and
// in GET /api/v1/me/can.
type Action string

// The actions. The target each one needs is noted; Decide denies an action whose target is
// missing (rule "target-missing").
const (
	ActionViewOrganization   Action = "organization.view"      // Target.Organization
	ActionCreateOrganization Action = "organization.create"    // no target
	ActionViewSite           Action = "site.view"              // Target.Site
	ActionCreateSite         Action = "site.create"            // no target (registry staff only)
	ActionSetSiteStatus      Action = "site.set_status"        // no target (registry staff only)
	ActionManageFacilities   Action = "site.manage_facilities" // no target (registry staff only)
	ActionViewCredentials    Action = "credential.view"        // Target.Site
	ActionManageCredentials  Action = "credential.manage"      // no target (registry staff only)

	ActionSearchUsers         Action = "user.search"                  // no target: the duplicate search before an invitation
	ActionListUsers           Action = "user.list"                    // Target.Site
	ActionViewUser            Action = "user.view"                    // Target.User
	ActionInviteUser          Action = "user.invite"                  // Target.Site, Target.Role: a new account at the site
	ActionInviteRegistryStaff Action = "user.invite_registry_staff"   // no target
	ActionUpdateUser          Action = "user.update"                  // Target.User: name, e-mail, phone
	ActionDeactivateUser      Action = "user.deactivate"              // Target.User
	ActionReactivateUser      Action = "user.reactivate"              // Target.User
	ActionUnlockUser          Action = "user.unlock"                  // Target.User
	ActionResetPassword       Action = "user.reset_password"          // Target.User
	ActionResendInvite        Action = "user.resend_invite"           // Target.User
	ActionSetMembership       Action = "membership.set"               // Target.User, Target.Site, Target.Role: edit the role of a member
	ActionRemoveMembership    Action = "membership.remove"            // Target.User, Target.Site
	ActionInviteToSite        Action = "membership.invite"            // Target.User, Target.Site, Target.Role: existing user, who must accept
	ActionAnswerSiteInvite    Action = "membership.answer_invitation" // Target.User (the invitee)

	ActionSearchPatients Action = "patient.search"         // no target (results are filtered with ActionViewPatient)
	ActionViewPatient    Action = "patient.view"           // Target.Patient
	ActionChangeSharing  Action = "patient.change_sharing" // Target.Patient
	ActionViewAudit      Action = "audit.view"             // Target.Site

	// The report module's (package report) site reports: certification, data quality and
	// reconciliation, and the registry's sign-off of a site's readiness for production.
	ActionViewSiteReports      Action = "site.view_reports"           // Target.Site
	ActionSignOffCertification Action = "site.sign_off_certification" // Target.Site (registry staff only)
)

// Actions lists every action, in the order of docs/permissions.md.
var Actions = []Action{
	ActionViewOrganization, ActionCreateOrganization, ActionViewSite, ActionCreateSite, ActionSetSiteStatus,
	ActionManageFacilities, ActionViewCredentials, ActionManageCredentials,
	ActionSearchUsers, ActionListUsers, ActionViewUser, ActionInviteUser, ActionInviteRegistryStaff,
	ActionUpdateUser, ActionDeactivateUser, ActionReactivateUser, ActionUnlockUser, ActionResetPassword,
	ActionResendInvite, ActionSetMembership, ActionRemoveMembership, ActionInviteToSite, ActionAnswerSiteInvite,
	ActionSearchPatients, ActionViewPatient, ActionChangeSharing, ActionViewAudit,
	ActionViewSiteReports, ActionSignOffCertification,
}

// Target is what an action is done to. Fill what the action needs (see the Action constants);
// Service.Can also accepts ids (SiteID, UserID, PatientID) and loads the rows itself.
type Target struct {
	Organization *Organization
	Site         *Site
	User         *User
	Patient      *Patient
	// Role is the role being granted (user.invite, membership.set, membership.invite).
	Role Role

	SiteID, UserID, PatientID int64 // for Service.Can when the row is not at hand
}

// Decision is the answer of the decision point: allowed or not, the rule that decided, and a
// sentence for the person (no patient data).
type Decision struct {
	Allow  bool   `json:"allow"`
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// The rules a Decision names. docs/permissions.md explains each.
const (
	RuleRegistryStaff     = "registry-staff"         // registry staff (and operator tools) may do it
	RuleRegistryStaffOnly = "registry-staff-only"    // reserved to registry staff
	RuleSiteRole          = "site-role"              // the actor's role or designation at the target's site
	RuleHealthSystem      = "health-system"          // a Health System User's role covers the target's health system
	RuleNoSiteRole        = "no-site-role"           // no role of the actor grants this at the target's site
	RuleSelf              = "self"                   // the actor's own account
	RuleUserOutsideScope  = "user-outside-scope"     // the target user belongs to a site the actor does not administer
	RuleRegistryStaffUser = "registry-staff-account" // registry staff accounts are managed by registry staff only
	RuleConsentRequired   = "consent-required"       // adding an existing user to a site is an invitation they accept
	RuleGrantAboveOwn     = "grant-above-own"        // a role the actor may not grant
	RuleNotMember         = "not-a-member"           // membership change of a user who is not a member of the site
	RuleInviteeOnly       = "invitee-only"           // only the invited user answers an invitation
	RuleReportingOrg      = "reporting-organization" // the actor's organization reported the patient
	RuleNotReportingOrg   = "not-reporting-organization"
	RuleSharingNo         = "sharing-no"                // the patient objected to sharing: only reporting organizations see them
	RuleTestEnvironment   = "test-environment-own-site" // test patients: only users of a site that reported them
	RuleAnyRole           = "any-site-role"             // any role at any site
	RuleNoRole            = "no-role"                   // the actor has no role that allows it anywhere
	RuleUnauthenticated   = "unauthenticated"
	RuleTargetMissing     = "target-missing"
)

// hiddenRules deny by hiding the target: the API answers 404 rather than 403, so that the
// existence of a patient who objected to sharing, or of a test patient, is not revealed.
var hiddenRules = map[string]bool{RuleSharingNo: true, RuleTestEnvironment: true}

// Err is nil for an allowed decision, else the error the API answers: 403 naming the rule (404
// for the rules that hide the target).
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	if hiddenRules[d.Rule] {
		return &Error{Kind: KindNotFound, Code: "not_found", Message: d.Reason, Rule: d.Rule}
	}
	return &Error{Kind: KindForbidden, Code: "forbidden", Message: d.Reason, Rule: d.Rule}
}

func allow(rule, format string, args ...any) Decision {
	return Decision{Allow: true, Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

func deny(rule, format string, args ...any) Decision {
	return Decision{Allow: false, Rule: rule, Reason: fmt.Sprintf(format, args...)}
}

// Decide is the decision point: may actor a do act to t? It reads nothing but its arguments.
func Decide(a Actor, act Action, t Target) Decision {
	d := decide(a, act, t)
	// A test may change a decision (admin/admintest.SetDecisionHook): the permission matrices
	// use it to prove that they fail when one decision changes.
	if h, ok := testhook.Load().F.(func(Action, Decision) Decision); ok && h != nil {
		d = h(act, d)
	}
	return d
}

// Can answers Decide for the portal and the API's clients: the target's rows are loaded from
// their ids when not given. A target that does not exist is denied (rule "target-missing").
func (s *Service) Can(ctx context.Context, a Actor, act Action, t Target) Decision {
	if err := s.loadTarget(ctx, &t); err != nil {
		return deny(RuleTargetMissing, "the target could not be read: %s", AsError(err).Message)
	}
	return Decide(a, act, t)
}

func (s *Service) loadTarget(ctx context.Context, t *Target) error {
	var err error
	if t.Site == nil && t.SiteID != 0 {
		if t.Site, err = s.st.Site(ctx, t.SiteID); err != nil {
			return err
		}
	}
	if t.User == nil && t.UserID != 0 {
		if t.User, err = s.st.User(ctx, t.UserID); err != nil {
			return err
		}
	}
	if t.Patient == nil && t.PatientID != 0 {
		if t.Patient, err = s.st.Patient(ctx, t.PatientID); err != nil {
			return err
		}
	}
	return nil
}

// authorize asks the decision point and turns a denial into the API's error. Denials are logged
// (ids and the rule only).
func (s *Service) authorize(a Actor, act Action, t Target) (Decision, error) {
	d := Decide(a, act, t)
	if !d.Allow {
		s.log.Info("admin: denied", zap.String("action", string(act)), zap.String("rule", d.Rule),
			zap.Int64("actor_user_id", a.UserID), zap.Bool("system", a.System))
		return d, d.Err()
	}
	return d, nil
}

// Authorize is the decision point for other modules' operations (the report API): nil when a may
// do act to t, else the Forbidden error naming the rule; the target's rows are loaded from their
// ids as Can does.
func (s *Service) Authorize(ctx context.Context, a Actor, act Action, t Target) error {
	if err := s.loadTarget(ctx, &t); err != nil {
		return err
	}
	_, err := s.authorize(a, act, t)
	return err
}

// grants reports whether membership m grants p at its site: by its role, or, for user
// management, by the Access Administrator designation (whatever the role).
func (m *Membership) grants(p Permission) bool {
	if m.Role.Can(p) {
		return true
	}
	return (p == PermManageUsers || p == PermViewUsers) && m.AccessAdministrator()
}

// atSite reports whether a has p at the site, and by which rule.
func (a Actor) atSite(p Permission, site *Site) (string, bool) {
	if a.privileged() {
		return RuleRegistryStaff, true
	}
	for i := range a.Memberships {
		m := &a.Memberships[i]
		if m.SiteID == site.ID && m.grants(p) {
			return RuleSiteRole, true
		}
	}
	for i := range a.Memberships {
		m := &a.Memberships[i]
		if m.Role.HealthSystem() && m.HealthSystemID == site.HealthSystemID && m.grants(p) {
			return RuleHealthSystem, true
		}
	}
	return RuleNoSiteRole, false
}

// anywhere reports whether a has p at some site.
func (a Actor) anywhere(p Permission) bool {
	if a.privileged() {
		return true
	}
	for i := range a.Memberships {
		if a.Memberships[i].grants(p) {
			return true
		}
	}
	return false
}

// reporters tells whether the actor belongs (with permission p) to an organization that reported
// the patient: a membership at a site of that organization, or a Health System User role over
// its health system.
func (a Actor) reporters(p Permission, pt *Patient) bool {
	for _, r := range pt.Reports {
		for i := range a.Memberships {
			m := &a.Memberships[i]
			if !m.grants(p) {
				continue
			}
			if m.OrganizationID == r.OrganizationID || (m.Role.HealthSystem() && m.HealthSystemID == r.HealthSystemID) {
				return true
			}
		}
	}
	return false
}

// ownTestSite tells whether a test-environment patient was reported by one of the actor's own
// sites (direct membership with permission p): test data belongs to the site that sent it.
func (a Actor) ownTestSite(p Permission, pt *Patient) bool {
	own := map[int64]bool{}
	ownOrg := map[int64]bool{}
	for i := range a.Memberships {
		if a.Memberships[i].grants(p) {
			own[a.Memberships[i].SiteID] = true
			ownOrg[a.Memberships[i].OrganizationID] = true
		}
	}
	sites := 0
	for _, v := range pt.Vaccinations {
		sites++
		if own[v.SiteID] {
			return true
		}
		for _, m := range v.Merged {
			if own[m.SiteID] {
				return true
			}
		}
	}
	if sites == 0 { // no vaccination names a site: the reporting organization decides
		for _, r := range pt.Reports {
			if ownOrg[r.OrganizationID] {
				return true
			}
		}
	}
	return false
}

func (a Actor) authenticated() bool { return a.System || a.UserID != 0 }

func decide(a Actor, act Action, t Target) Decision {
	if !a.authenticated() {
		return deny(RuleUnauthenticated, "authentication required")
	}
	staff := a.privileged()
	need := func(ok bool, what string) (Decision, bool) {
		if ok {
			return Decision{}, true
		}
		return deny(RuleTargetMissing, "%s: the %s is missing", act, what), false
	}
	switch act {
	case ActionCreateOrganization, ActionCreateSite, ActionSetSiteStatus, ActionManageFacilities,
		ActionManageCredentials, ActionInviteRegistryStaff, ActionSignOffCertification:
		if staff {
			return allow(RuleRegistryStaff, "registry staff may %s", actionPhrase[act])
		}
		return deny(RuleRegistryStaffOnly, "only registry staff may %s", actionPhrase[act])

	case ActionViewOrganization:
		if d, ok := need(t.Organization != nil, "organization"); !ok {
			return d
		}
		if staff {
			return allow(RuleRegistryStaff, "registry staff see every organization")
		}
		o := t.Organization
		for _, m := range a.Memberships {
			if m.OrganizationID == o.ID {
				return allow(RuleSiteRole, "a site of organization %s is yours", o.Code)
			}
		}
		for _, m := range a.Memberships {
			if m.Role.HealthSystem() && m.HealthSystemID == o.HealthSystemID() {
				return allow(RuleHealthSystem, "organization %s is in your health system", o.Code)
			}
		}
		return deny(RuleNoSiteRole, "organization %s is not one of yours", o.Code)

	case ActionViewSite, ActionListUsers, ActionViewCredentials, ActionViewAudit, ActionViewSiteReports:
		if d, ok := need(t.Site != nil, "site"); !ok {
			return d
		}
		p := PermViewUsers
		if act == ActionViewSite || act == ActionViewSiteReports {
			p = PermReadPatients
		}
		if rule, ok := a.atSite(p, t.Site); ok {
			return allow(rule, "you may %s", siteActionPhrase(act, t.Site))
		}
		return deny(RuleNoSiteRole, "you may not %s: no role of yours there allows it", siteActionPhrase(act, t.Site))

	case ActionSearchUsers:
		if a.anywhere(PermManageUsers) {
			if staff {
				return allow(RuleRegistryStaff, "registry staff may search users")
			}
			return allow(RuleSiteRole, "user managers search before inviting")
		}
		return deny(RuleNoRole, "searching users requires a role that manages users")

	case ActionInviteUser:
		if d, ok := need(t.Site != nil, "site"); !ok {
			return d
		}
		rule, ok := a.atSite(PermManageUsers, t.Site)
		if !ok {
			return deny(RuleNoSiteRole, "you may not invite users to site %s", t.Site.Code)
		}
		if d := grantCheck(a, t.Role, t.Site); !d.Allow {
			return d
		}
		return allow(rule, "you manage the users of site %s", t.Site.Code)

	case ActionViewUser:
		if d, ok := need(t.User != nil, "user"); !ok {
			return d
		}
		if a.UserID != 0 && a.UserID == t.User.ID {
			return allow(RuleSelf, "your own account")
		}
		if staff {
			return allow(RuleRegistryStaff, "registry staff see every user")
		}
		rule, ok := viewRule(a, t.User)
		if !ok {
			return outOfSight(t.User)
		}
		if t.User.RegistryAdmin {
			return deny(RuleRegistryStaffUser, "registry staff accounts are visible to registry staff only")
		}
		return allow(rule, "user %s is a member of a site whose users you may view", t.User.Username)

	case ActionUpdateUser, ActionDeactivateUser, ActionReactivateUser, ActionUnlockUser, ActionResetPassword, ActionResendInvite:
		if d, ok := need(t.User != nil, "user"); !ok {
			return d
		}
		if act == ActionUpdateUser && a.UserID != 0 && a.UserID == t.User.ID {
			return allow(RuleSelf, "your own name, e-mail and phone")
		}
		return accountDecision(a, act, t.User)

	case ActionSetMembership, ActionRemoveMembership, ActionInviteToSite:
		if d, ok := need(t.Site != nil && t.User != nil, "site or user"); !ok {
			return d
		}
		rule, ok := a.atSite(PermManageUsers, t.Site)
		if !ok {
			return deny(RuleNoSiteRole, "you may not manage the users of site %s", t.Site.Code)
		}
		if t.User.RegistryAdmin && !staff {
			return deny(RuleRegistryStaffUser, "registry staff accounts are managed by registry staff only")
		}
		member := t.User.Membership(t.Site.ID) != nil
		switch {
		case act == ActionInviteToSite && member:
			return deny(RuleNotMember, "user %s is already a member of site %s: change their role instead", t.User.Username, t.Site.Code)
		case act != ActionInviteToSite && !member:
			if act == ActionSetMembership {
				return deny(RuleConsentRequired, "user %s is not a member of site %s: adding an existing user to a site is an invitation they must accept",
					t.User.Username, t.Site.Code)
			}
			return deny(RuleNotMember, "user %s is not a member of site %s", t.User.Username, t.Site.Code)
		}
		if act != ActionRemoveMembership {
			if d := grantCheck(a, t.Role, t.Site); !d.Allow {
				return d
			}
		}
		return allow(rule, "you manage the memberships of site %s", t.Site.Code)

	case ActionAnswerSiteInvite:
		if d, ok := need(t.User != nil, "user"); !ok {
			return d
		}
		if a.UserID != 0 && a.UserID == t.User.ID {
			return allow(RuleSelf, "only you accept or decline your invitations")
		}
		return deny(RuleInviteeOnly, "only the invited user may accept or decline an invitation")

	case ActionSearchPatients:
		if a.anywhere(PermReadPatients) {
			if staff {
				return allow(RuleRegistryStaff, "registry staff may search patients")
			}
			return allow(RuleAnyRole, "every site role may look up patients")
		}
		return deny(RuleNoRole, "looking up patients requires a site role")

	case ActionViewPatient, ActionChangeSharing:
		if d, ok := need(t.Patient != nil, "patient"); !ok {
			return d
		}
		return patientDecision(a, act, t.Patient)
	}
	return deny(RuleNoRole, "unknown action %q", act)
}

// grantCheck refuses roles above the actor's: a Health System User role is granted by registry
// staff or a Health System User of the site's health system.
func grantCheck(a Actor, role Role, site *Site) Decision {
	if role == "" || !role.HealthSystem() || a.privileged() {
		return Decision{Allow: true}
	}
	for _, m := range a.Memberships {
		if m.Role.HealthSystem() && m.HealthSystemID == site.HealthSystemID {
			return Decision{Allow: true}
		}
	}
	return deny(RuleGrantAboveOwn, "only a Health System User of this health system or registry staff may grant %s", role.Label())
}

// accountDecision is the rule for a user's account (password, e-mail, name, status): registry
// staff, or an actor who manages users at every site the user belongs to. A user who also
// belongs elsewhere is out of a site administrator's reach: that is what stops one organization
// from taking over another's accounts.
func accountDecision(a Actor, act Action, u *User) Decision {
	if a.privileged() {
		return allow(RuleRegistryStaff, "registry staff may %s", actionPhrase[act])
	}
	if !a.anywhere(PermManageUsers) {
		return deny(RuleNoRole, "you may not %s: no role of yours manages users", actionPhrase[act])
	}
	if _, ok := viewRule(a, u); !ok {
		return outOfSight(u)
	}
	if u.RegistryAdmin {
		return deny(RuleRegistryStaffUser, "registry staff accounts are managed by registry staff only")
	}
	rule := RuleSiteRole
	for i := range u.Memberships {
		m := &u.Memberships[i]
		r, ok := a.atSite(PermManageUsers, &Site{ID: m.SiteID, HealthSystemID: m.HealthSystemID})
		if !ok {
			return deny(RuleUserOutsideScope, "user %s also belongs to a site you do not administer: only registry staff (or an administrator of every site of the user) may %s",
				u.Username, actionPhrase[act])
		}
		if r == RuleHealthSystem {
			rule = r
		}
	}
	return allow(rule, "you administer every site of user %s", u.Username)
}

// viewRule returns the rule by which a may see user u (a membership of u at a site whose users a
// may view), if any.
func viewRule(a Actor, u *User) (string, bool) {
	for i := range u.Memberships {
		m := &u.Memberships[i]
		if rule, ok := a.atSite(PermViewUsers, &Site{ID: m.SiteID, HealthSystemID: m.HealthSystemID}); ok {
			return rule, true
		}
	}
	return "", false
}

// outOfSight refuses an action on a user the actor may not see, in the same words whatever the
// user is (a member of other organizations' sites, of none, or registry staff), so that trying ids
// tells nothing about other organizations' accounts: not their usernames, nor who is staff.
func outOfSight(u *User) Decision {
	return deny(RuleUserOutsideScope, "user %d is not a member of a site whose users you may view", u.ID)
}

// patientDecision is the rule for viewing a patient and changing their data sharing.
func patientDecision(a Actor, act Action, p *Patient) Decision {
	perm := PermReadPatients
	if act == ActionChangeSharing {
		perm = PermChangeSharing
	}
	if a.privileged() {
		return allow(RuleRegistryStaff, "registry staff may %s", actionPhrase[act])
	}
	if !a.anywhere(perm) {
		if act == ActionChangeSharing {
			return deny(RuleNoRole, "changing data sharing requires a role other than Read Only / Read Only Administrator")
		}
		return deny(RuleNoRole, "looking up patients requires a site role")
	}
	if p.Env == "T" && !a.ownTestSite(PermReadPatients, p) {
		return deny(RuleTestEnvironment, "patient %d not found", p.ID)
	}
	reporter := a.reporters(PermReadPatients, p)
	if p.Sharing == SharingNo && !reporter {
		return deny(RuleSharingNo, "patient %d not found", p.ID)
	}
	if act == ActionViewPatient {
		if reporter {
			return allow(RuleReportingOrg, "your organization reported the patient")
		}
		return allow(RuleAnyRole, "the patient shares data")
	}
	if a.reporters(PermChangeSharing, p) {
		return allow(RuleReportingOrg, "your organization reported the patient")
	}
	return deny(RuleNotReportingOrg, "only registry staff or users of an organization that reported patient %d may change their data sharing", p.ID)
}

// siteActionPhrase is act done at site, for a decision's reason: "view site ACME-01", "list the
// users of site ACME-01" (not "view the site of site ACME-01").
func siteActionPhrase(act Action, site *Site) string {
	if act == ActionViewSite {
		return "view site " + site.Code
	}
	return actionPhrase[act] + " of site " + site.Code
}

var actionPhrase = map[Action]string{
	ActionViewSiteReports:      "view the certification, data-quality and reconciliation reports",
	ActionSignOffCertification: "sign off a site's readiness for production",
	ActionViewOrganization:     "view the organization",
	ActionCreateOrganization:   "create organizations",
	ActionViewSite:             "view the site",
	ActionCreateSite:           "create sites",
	ActionSetSiteStatus:        "change a site's onboarding status",
	ActionManageFacilities:     "change a site's MSH-4 facility identifiers",
	ActionViewCredentials:      "view the sender credentials",
	ActionManageCredentials:    "manage sender credentials",
	ActionSearchUsers:          "search users",
	ActionListUsers:            "list the users",
	ActionViewUser:             "view the user",
	ActionInviteUser:           "invite a new user to the site",
	ActionInviteRegistryStaff:  "invite registry staff",
	ActionUpdateUser:           "change the user's name, e-mail or phone",
	ActionDeactivateUser:       "deactivate the user",
	ActionReactivateUser:       "reactivate the user",
	ActionUnlockUser:           "unlock the user",
	ActionResetPassword:        "reset the user's password",
	ActionResendInvite:         "resend the user's registration link",
	ActionSetMembership:        "change a member's role at the site",
	ActionRemoveMembership:     "remove a member from the site",
	ActionInviteToSite:         "invite an existing user to the site",
	ActionAnswerSiteInvite:     "accept or decline an invitation",
	ActionSearchPatients:       "search patients",
	ActionViewPatient:          "view the patient's record",
	ActionChangeSharing:        "change the patient's data sharing",
	ActionViewAudit:            "view the audit log",
}
