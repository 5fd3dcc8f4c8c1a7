package admin

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// errRule returns the rule of a denial error (empty for other errors).
func errRule(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Rule
	}
	return ""
}

// TestDecideRules covers the rules the HTTP matrix does not reach with its targets: each case
// names the rule it must end on.
func TestDecideRules(t *testing.T) {
	hsSite := &Site{ID: 10, Code: "OWN", OrganizationID: 1, HealthSystemID: 1}
	childSite := &Site{ID: 20, Code: "KID", OrganizationID: 2, HealthSystemID: 1}
	otherSite := &Site{ID: 30, Code: "OTH", OrganizationID: 3, HealthSystemID: 3}
	member := func(id int64, s *Site, r Role, ds ...Designation) Membership {
		return Membership{UserID: id, SiteID: s.ID, OrganizationID: s.OrganizationID, HealthSystemID: s.HealthSystemID, Role: r, Designations: ds}
	}
	aa := Actor{UserID: 1, Name: "aa", Memberships: []Membership{member(1, hsSite, RoleTypicalUser, DesignationAccessAdministrator)}}
	hsu := Actor{UserID: 2, Name: "hsu", Memberships: []Membership{member(2, hsSite, RoleHealthSystemUser)}}
	staff := Actor{UserID: 3, Name: "staff", RegistryAdmin: true}
	sys := OperatorActor("alice")
	both := &User{ID: 7, Username: "both", Memberships: []Membership{member(7, hsSite, RoleReadOnly), member(7, otherSite, RoleReadOnly)}}
	mine := &User{ID: 8, Username: "mine", Memberships: []Membership{member(8, hsSite, RoleReadOnly)}}
	kid := &User{ID: 9, Username: "kid", Memberships: []Membership{member(9, childSite, RoleReadOnly)}}
	registry := &User{ID: 11, Username: "reg", RegistryAdmin: true}
	nowhere := &User{ID: 12, Username: "gone"}
	self := &User{ID: 1, Username: "aa", Memberships: aa.Memberships}
	tests := []struct {
		name  string
		a     Actor
		act   Action
		t     Target
		allow bool
		rule  string
	}{
		{"nobody", Actor{}, ActionViewSite, Target{Site: hsSite}, false, RuleUnauthenticated},
		{"missing target", aa, ActionDeactivateUser, Target{}, false, RuleTargetMissing},
		{"unknown action", aa, Action("user.fly"), Target{}, false, RuleNoRole},
		{"AA designation manages own site", aa, ActionDeactivateUser, Target{User: mine}, true, RuleSiteRole},
		{"user who also belongs elsewhere", aa, ActionResetPassword, Target{User: both}, false, RuleUserOutsideScope},
		{"HSU over the health system", hsu, ActionResetPassword, Target{User: kid}, true, RuleHealthSystem},
		{"HSU, user also in another organization", hsu, ActionUpdateUser, Target{User: both}, false, RuleUserOutsideScope},
		{"staff over anyone", staff, ActionResetPassword, Target{User: both}, true, RuleRegistryStaff},
		{"operator at the command line", sys, ActionResetPassword, Target{User: both}, true, RuleRegistryStaff},
		{"registry staff account", aa, ActionDeactivateUser, Target{User: registry}, false, RuleUserOutsideScope},
		{"registry staff account seen at a site", aa, ActionDeactivateUser, Target{User: &User{ID: 13, Username: "regmember", RegistryAdmin: true,
			Memberships: []Membership{member(13, hsSite, RoleReadOnly)}}}, false, RuleRegistryStaffUser},
		{"user in no site", aa, ActionDeactivateUser, Target{User: nowhere}, false, RuleUserOutsideScope},
		{"own profile", aa, ActionUpdateUser, Target{User: self}, true, RuleSelf},
		{"own account view", Actor{UserID: 8, Name: "mine"}, ActionViewUser, Target{User: mine}, true, RuleSelf},
		{"membership of own site of a user also elsewhere", aa, ActionSetMembership, Target{User: both, Site: hsSite, Role: RoleTypicalUser}, true, RuleSiteRole},
		{"silent add", aa, ActionSetMembership, Target{User: kid, Site: hsSite, Role: RoleTypicalUser}, false, RuleConsentRequired},
		{"silent add by staff", staff, ActionSetMembership, Target{User: kid, Site: hsSite, Role: RoleTypicalUser}, false, RuleConsentRequired},
		{"invite a member again", aa, ActionInviteToSite, Target{User: mine, Site: hsSite, Role: RoleReadOnly}, false, RuleNotMember},
		{"invite someone of elsewhere", aa, ActionInviteToSite, Target{User: kid, Site: hsSite, Role: RoleReadOnly}, true, RuleSiteRole},
		{"remove a non-member", aa, ActionRemoveMembership, Target{User: kid, Site: hsSite}, false, RuleNotMember},
		{"grant HSU above own", aa, ActionInviteUser, Target{Site: hsSite, Role: RoleHealthSystemUser}, false, RuleGrantAboveOwn},
		{"HSU grants HSU", hsu, ActionSetMembership, Target{User: kid, Site: childSite, Role: RoleHealthSystemUser}, true, RuleHealthSystem},
		{"answer someone else's invitation", staff, ActionAnswerSiteInvite, Target{User: mine}, false, RuleInviteeOnly},
		{"answer own invitation", Actor{UserID: 8, Name: "mine"}, ActionAnswerSiteInvite, Target{User: mine}, true, RuleSelf},
		{"AA with Read Only role may not change sharing",
			Actor{UserID: 4, Memberships: []Membership{member(4, hsSite, RoleReadOnly, DesignationAccessAdministrator)}},
			ActionChangeSharing, Target{Patient: &Patient{ID: 1, Env: "P", Sharing: SharingYes, Reports: []PatientReport{{OrganizationID: 1, HealthSystemID: 1}}}},
			false, RuleNoRole},
		{"sharing of a patient another organization reported", hsu, ActionChangeSharing,
			Target{Patient: &Patient{ID: 1, Env: "P", Sharing: SharingUnknown, Reports: []PatientReport{{OrganizationID: 3, HealthSystemID: 3}}}},
			false, RuleNotReportingOrg},
		{"test patient of a sibling site", hsu, ActionViewPatient,
			Target{Patient: &Patient{ID: 1, Env: "T", Sharing: SharingYes, Reports: []PatientReport{{OrganizationID: 2, HealthSystemID: 1}},
				Vaccinations: []Vaccination{{SiteID: 20}}}}, false, RuleTestEnvironment},
		{"test patient of own site, merged report", aa, ActionViewPatient,
			Target{Patient: &Patient{ID: 1, Env: "T", Sharing: SharingYes, Reports: []PatientReport{{OrganizationID: 1, HealthSystemID: 1}},
				Vaccinations: []Vaccination{{SiteID: 20, Merged: []MergedReport{{SiteID: 10}}}}}}, true, RuleReportingOrg},
	}
	for _, tc := range tests {
		d := Decide(tc.a, tc.act, tc.t)
		if d.Allow != tc.allow || d.Rule != tc.rule || d.Reason == "" {
			t.Errorf("%s: %+v, want allow=%v rule %s", tc.name, d, tc.allow, tc.rule)
		}
		if err := d.Err(); (err == nil) != tc.allow || (err != nil && errRule(err) != tc.rule) {
			t.Errorf("%s: Err() = %v", tc.name, err)
		}
	}
}

// TestRefusalsTellNothingOfUnseenUsers: an administrator trying the ids of users they may not see
// (another organization's, registry staff, nobody's) gets the same refusal for every one of them
// and every account action: it names no username and does not tell staff accounts apart.
func TestRefusalsTellNothingOfUnseenUsers(t *testing.T) {
	own := &Site{ID: 10, Code: "OWN", OrganizationID: 1, HealthSystemID: 1}
	other := &Site{ID: 30, Code: "OTH", OrganizationID: 3, HealthSystemID: 3}
	aa := Actor{UserID: 1, Name: "aa", Memberships: []Membership{{UserID: 1, SiteID: own.ID, OrganizationID: 1, HealthSystemID: 1,
		Role: RoleAdministrator, Designations: []Designation{DesignationAccessAdministrator}}}}
	unseen := []*User{
		{ID: 31, Username: "oadams", Memberships: []Membership{{UserID: 31, SiteID: other.ID, OrganizationID: 3, HealthSystemID: 3, Role: RoleAdministrator}}},
		{ID: 32, Username: "registrar", RegistryAdmin: true},
		{ID: 33, Username: "nobody"},
	}
	var want string
	for _, u := range unseen {
		for _, act := range []Action{ActionViewUser, ActionUpdateUser, ActionDeactivateUser, ActionReactivateUser,
			ActionUnlockUser, ActionResetPassword, ActionResendInvite} {
			d := Decide(aa, act, Target{User: u})
			generic := strings.ReplaceAll(d.Reason, fmt.Sprint(u.ID), "N")
			if want == "" {
				want = generic
			}
			if d.Allow || d.Rule != RuleUserOutsideScope || generic != want || strings.Contains(d.Reason, u.Username) {
				t.Errorf("%s on user %d (%s): allow %v, rule %s, %q; want refused by %s as %q",
					act, u.ID, u.Username, d.Allow, d.Rule, d.Reason, RuleUserOutsideScope, want)
			}
		}
	}
}

// TestDecideSiteReasons: the reasons of the site-scoped views name the action and the site
// once each.
func TestDecideSiteReasons(t *testing.T) {
	own := &Site{ID: 10, Code: "OWN-01", OrganizationID: 1, HealthSystemID: 1}
	other := &Site{ID: 30, Code: "OTH-01", OrganizationID: 3, HealthSystemID: 3}
	a := Actor{UserID: 1, Name: "hsu", Memberships: []Membership{{UserID: 1, SiteID: own.ID, OrganizationID: 1, HealthSystemID: 1,
		Role: RoleHealthSystemUser}}}
	tests := []struct {
		act  Action
		site *Site
		want string
	}{
		{ActionViewSite, other, "you may not view site OTH-01: no role of yours there allows it"},
		{ActionViewSite, own, "you may view site OWN-01"},
		{ActionListUsers, other, "you may not list the users of site OTH-01: no role of yours there allows it"},
		{ActionViewCredentials, own, "you may view the sender credentials of site OWN-01"},
		{ActionViewAudit, other, "you may not view the audit log of site OTH-01: no role of yours there allows it"},
	}
	for _, tc := range tests {
		if d := Decide(a, tc.act, Target{Site: tc.site}); d.Reason != tc.want {
			t.Errorf("%s at %s: reason %q, want %q", tc.act, tc.site.Code, d.Reason, tc.want)
		}
	}
}
