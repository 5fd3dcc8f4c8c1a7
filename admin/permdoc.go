package admin

//go:generate go test -run ^TestPermissionsDoc$ . -args -update

import (
	"bytes"
	"fmt"
	"strings"
)

// PermissionsMarkdown renders docs/permissions.md from the code: the roles' permissions
// (Role.Can), what designations add (Membership.grants), the rules of the decision point, and the
// whole action × role/designation × scope table, each cell computed by Decide. A test compares
// the file with it (go generate ./admin rewrites the file).
func PermissionsMarkdown() []byte {
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("# Permissions\n\n")
	w("<!-- Generated from the code by `go generate ./admin` (admin/permdoc.go): do not edit. A test fails when it is stale. -->\n\n")
	w("Every action of the admin module — through the JSON API, `vaxgate admin` and the web portal — is decided\n")
	w("by one authorization decision point, `admin.Decide(actor, action, target)` (`admin/authz.go`), which\n")
	w("answers allow or deny with the rule that decided. A denied action changes nothing and is answered\n")
	w("`403` with `{\"error\": {\"code\": \"forbidden\", \"rule\": ..., \"message\": ...}}` (`404` for the rules\n")
	w("that hide a patient). Pages ask the same point before showing a control (`Service.Can`,\n")
	w("`GET /api/v1/me/can?action=...`). Actions that change something are audited with the rule that\n")
	w("allowed them.\n\n")

	w("## Roles (MIIC)\n\n")
	w("A user has one role per site they are a member of. What each role allows at its site:\n\n")
	w("| role | look up patients | change data sharing | view users, credentials, audit | manage users | reach |\n")
	w("| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range Roles {
		reach := "its site"
		if r.HealthSystem() {
			reach = "every site of its health system (parent and child organizations)"
		}
		w("| %s (`%s`) | %s | %s | %s | %s | %s |\n", r.Label(), r, yn(r.Can(PermReadPatients)), yn(r.Can(PermChangeSharing)),
			yn(r.Can(PermViewUsers)), yn(r.Can(PermManageUsers)), reach)
	}
	w("\nThe \"with Ordering\" variants add vaccine ordering (outside this module) and nothing else here.\n")
	w("A Read Only Administrator manages users but has read-only access to patients.\n\n")

	w("## Designations (MIIS)\n\n")
	w("Designations are held per site, with any role. What a designation adds to the role, at its site:\n\n")
	w("| designation | adds |\n| --- | --- |\n")
	for _, d := range Designations {
		m := Membership{Role: RoleReadOnly, Designations: []Designation{d}}
		var adds []string
		for _, p := range []struct {
			p    Permission
			name string
		}{{PermChangeSharing, "change data sharing"}, {PermViewUsers, "view users, credentials, audit"}, {PermManageUsers, "manage users"}} {
			if m.grants(p.p) && !RoleReadOnly.Can(p.p) {
				adds = append(adds, p.name)
			}
		}
		what := "nothing in this module (a contact the registry reaches)"
		if len(adds) > 0 {
			what = strings.Join(adds, ", ")
		}
		w("| %s (`%s`) | %s |\n", d.Label(), d, what)
	}
	w("\n**How they combine.** At a site, a user may do what their role allows plus what their designations\n")
	w("add: user management comes from an administrator role (Read Only Administrator, Administrator, Health\n")
	w("System User) *or* the Access Administrator designation; patient access and data-sharing changes come\n")
	w("from the role only (an Access Administrator whose role is Read Only manages users but reads patients\n")
	w("only). A Health System User's role reaches every site of the health system; designations reach only\n")
	w("their own site. Registry staff (a registry-level role, not a site role) may do everything below,\n")
	w("except what only the person concerned may do (accept an invitation); every such action is audited\n")
	w("with rule `registry-staff`. The command line acts as registry staff, audited as `cli:<os-user>`.\n\n")

	w("**Every site keeps an active Access Administrator.** Deactivating, demoting or removing the last one\n")
	w("is refused (409 `last_access_administrator`); a site cannot move to testing or production without one\n")
	w("(409 `site_needs_access_administrator`); when an account expires (90 days unused) or anything else\n")
	w("leaves a site in testing or production without one, the site is flagged `needs_access_administrator`\n")
	w("(in the API and the portal) until one is active again, and registry staff are e-mailed.\n\n")

	w("## Rules\n\n| rule | meaning |\n| --- | --- |\n")
	for _, r := range ruleDocs {
		w("| `%s` | %s |\n", r[0], r[1])
	}

	w("\n## Actions by role, designation and scope\n\n")
	w("Computed by `Decide` for an actor whose only membership is one site of organization HS, the parent of\n")
	w("a health system. Scopes of the target (a site, a user who is a member of that site only, a patient\n")
	w("that site's organization reported, sharing Yes, production): **own** = the actor's site, **hs** = a site\n")
	w("of a child organization of the same health system, **other** = a site of an unrelated organization.\n")
	w("Designations are shown on the Read Only role, so that the column shows what the designation adds.\n")
	w("✓ allowed, · denied.\n\n")
	actors := docActors()
	w("| action | scope |")
	for _, a := range actors {
		w(" %s |", a.label)
	}
	w("\n| --- | --- |%s\n", strings.Repeat(" --- |", len(actors)))
	scopes := docScopes()
	for _, act := range Actions {
		for si, sc := range scopes {
			name := ""
			if si == 0 {
				name = "`" + string(act) + "`"
			}
			w("| %s | %s |", name, sc.name)
			for _, a := range actors {
				if Decide(a.actor, act, sc.target(act, a.actor)).Allow {
					w(" ✓ |")
				} else {
					w(" · |")
				}
			}
			w("\n")
		}
	}
	w("\nRules that decide each action (any actor, any scope above):\n\n")
	for _, act := range Actions {
		rules := map[string]bool{}
		var order []string
		for _, sc := range scopes {
			for _, a := range actors {
				d := Decide(a.actor, act, sc.target(act, a.actor))
				k := d.Rule
				if d.Allow {
					k = "allow: " + k
				} else {
					k = "deny: " + k
				}
				if !rules[k] {
					rules[k] = true
					order = append(order, k)
				}
			}
		}
		w("- `%s` (%s): %s\n", act, actionPhrase[act], strings.Join(order, "; "))
	}

	w("\n## Users' accounts\n\n")
	w("An administrator manages the **memberships** of the sites they administer (`membership.*`), and\n")
	w("nothing else of a user who belongs anywhere else: a user's password, e-mail, name, phone and status\n")
	w("(`user.update`, `user.deactivate`, `user.reactivate`, `user.unlock`, `user.reset_password`,\n")
	w("`user.resend_invite`) are changed by registry staff, by the user (name, e-mail, phone), or by an actor\n")
	w("who manages users at **every** site the user belongs to (rule `user-outside-scope` otherwise). A user\n")
	w("the actor may not see at all (no membership at a site whose users the actor may view: another\n")
	w("organization's user, registry staff, a user of no site) is refused with that rule in the same words\n")
	w("whoever it is, naming only the id asked for, so that trying ids tells nothing of other accounts. Adding\n")
	w("an existing user to a site is an invitation (`POST /api/v1/site-invitations`, after the search by\n")
	w("name or e-mail) that the user accepts or declines after logging in; `PUT` of a membership of a\n")
	w("non-member is denied with rule `consent-required`.\n\n")
	w("**Usernames** are personal and unique regardless of case and of the separators `. _ -`\n")
	w("(`J.Smith` = `jsmith`); they may not contain `admin` (whatever the case and separators) and may not\n")
	w("be made only of these generic words (digits and separators ignored, e.g. `clinicstaff`,\n")
	w("`front.desk2`):\n\n")
	for i, g := range GenericUsernames {
		if i > 0 {
			w(", ")
		}
		w("`%s`", g)
	}
	w(".\n\n")
	w("**Logins** are throttled per username (whether or not it exists: after %d failures, waits of %s doubling\n", usernamePolicy.free, usernamePolicy.base)
	w("up to %s) and per address (after %d failures, %s doubling up to %s), answered 429 with Retry-After.\n",
		usernamePolicy.max, sourcePolicy.free, sourcePolicy.base, sourcePolicy.max)
	w("After the lockout threshold of failures in a row (default 5) the account shows **Locked** to\n")
	w("administrators and the addresses that failed may not log in to it for the lock duration (default\n")
	w("15 minutes); to the caller a locked account is answered exactly like a wrong password. The owner is\n")
	w("not locked out from elsewhere; an administrator of the user's sites may unlock it. Logins (success\n")
	w("and failure, never the password) are audited.\n\n")

	w("## Patients and data sharing\n\n")
	w("- Any site role may look patients up; every view of a record is audited (`patient.view`).\n")
	w("- A patient whose data sharing is **No** is visible only to the organizations that reported them (404\n")
	w("  to others, rule `sharing-no`), with only their own records; **Unknown** must be resolved before the\n")
	w("  records are shown (409 `sharing_unresolved`).\n")
	w("- **Test-environment** patients are visible only to users of a site that reported them (404 to\n")
	w("  others, rule `test-environment-own-site`); registry staff see them for certification.\n")
	w("- Only registry staff, or users of an organization that reported the patient whose role allows it\n")
	w("  (not the read-only roles), may object, withdraw an objection or resolve Unknown (rule\n")
	w("  `reporting-organization`); every change carries the signed form's reference (`form_ref`) or the\n")
	w("  user's attestation of how the decision was given (`attestation`), and is recorded in the\n")
	w("  patient's sharing history and the audit log.\n")
	return b.Bytes()
}

func yn(ok bool) string {
	if ok {
		return "yes"
	}
	return "-"
}

// ruleDocs explains each rule, in the order of the constants.
var ruleDocs = [][2]string{
	{RuleRegistryStaff, "registry staff (and operator tools at the command line) may do it; audited"},
	{RuleRegistryStaffOnly, "reserved to registry staff: organizations, sites, onboarding status, facilities, sender credentials, inviting registry staff"},
	{RuleSiteRole, "allowed by the actor's role or designation at the target's site"},
	{RuleHealthSystem, "allowed by the actor's Health System User role over the target's health system"},
	{RuleNoSiteRole, "no role or designation of the actor allows it at the target's site"},
	{RuleSelf, "the actor's own account (profile, invitations, registration)"},
	{RuleUserOutsideScope, "the target user belongs to a site the actor does not administer: only registry staff (or an administrator of every site of the user) may change their account; a user the actor may not see at all is refused by this rule too, in the same words for every such user"},
	{RuleRegistryStaffUser, "registry staff accounts are managed by registry staff only (named so only to an actor who sees the account at one of their sites)"},
	{RuleConsentRequired, "a user who is not a member of the site is not added silently: invite them, they accept"},
	{RuleGrantAboveOwn, "Health System User roles are granted only by a Health System User of that health system or registry staff"},
	{RuleNotMember, "the membership action does not fit the user's membership (not a member, or already one)"},
	{RuleInviteeOnly, "only the invited user accepts or declines an invitation"},
	{RuleReportingOrg, "the actor's organization (or health system, for a Health System User) reported the patient"},
	{RuleNotReportingOrg, "the actor's organization did not report the patient: only registry staff or a reporting organization may change their data sharing"},
	{RuleSharingNo, "the patient objected to sharing and the actor's organization did not report them (answered 404)"},
	{RuleTestEnvironment, "a test-environment patient that none of the actor's own sites reported (answered 404)"},
	{RuleAnyRole, "any site role allows it"},
	{RuleNoRole, "no role of the actor allows it anywhere"},
	{RuleUnauthenticated, "no authenticated actor"},
	{RuleTargetMissing, "the action's target is missing or unknown"},
}

type docActor struct {
	label string
	actor Actor
}

// The synthetic world of the table: organization 1 (HS, parent) with site 10, organization 2
// (child of 1) with site 20, organization 3 (unrelated) with site 30. The actor (user 1) is a
// member of site 10.
func docActors() []docActor {
	m := func(r Role, ds ...Designation) Actor {
		return Actor{UserID: 1, Name: "actor", Memberships: []Membership{{UserID: 1, SiteID: 10, SiteCode: "OWN", OrganizationID: 1,
			HealthSystemID: 1, Role: r, Designations: ds}}}
	}
	var out []docActor
	for _, r := range Roles {
		out = append(out, docActor{r.Label(), m(r)})
	}
	for _, d := range Designations {
		out = append(out, docActor{d.Label(), m(RoleReadOnly, d)})
	}
	out = append(out, docActor{"Registry staff", Actor{UserID: 1, Name: "staff", RegistryAdmin: true}})
	return out
}

type docScope struct {
	name   string
	target func(Action, Actor) Target
}

func docScopes() []docScope {
	mk := func(name string, orgID, parent, siteID int64) docScope {
		var p *int64
		if parent != 0 {
			p = &parent
		}
		hs := orgID
		if parent != 0 {
			hs = parent
		}
		org := &Organization{ID: orgID, Code: name, ParentID: p}
		site := &Site{ID: siteID, Code: name + "-SITE", OrganizationID: orgID, HealthSystemID: hs, Status: SiteTesting}
		member := &User{ID: 2, Username: "member", Status: UserActive, Memberships: []Membership{{UserID: 2, SiteID: siteID,
			OrganizationID: orgID, HealthSystemID: hs, Role: RoleTypicalUser}}}
		outsider := &User{ID: 3, Username: "outsider", Status: UserActive, Memberships: []Membership{{UserID: 3, SiteID: 99,
			OrganizationID: 9, HealthSystemID: 9, Role: RoleTypicalUser}}}
		patient := &Patient{ID: 5, Env: "P", Sharing: SharingYes,
			Reports:      []PatientReport{{OrganizationID: orgID, HealthSystemID: hs}},
			Vaccinations: []Vaccination{{OrganizationID: orgID, HealthSystemID: hs, SiteID: siteID}}}
		return docScope{name, func(act Action, _ Actor) Target {
			t := Target{Organization: org, Site: site, User: member, Patient: patient, Role: RoleTypicalUser}
			if act == ActionInviteToSite {
				t.User = outsider // an existing user of elsewhere, invited to the scope's site
			}
			return t
		}}
	}
	return []docScope{mk("own", 1, 0, 10), mk("hs", 2, 1, 20), mk("other", 3, 0, 30)}
}
