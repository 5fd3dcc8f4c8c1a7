package portal

import (
	"strings"

	"github.com/vaxgate/vaxgate/admin"
)

// What the portal shows or hides. These helpers only choose which links and controls to offer:
// every action and every page still asks the admin Service, which decides and answers 403 when
// the actor may not. They read the role helpers admin exposes (Role.Can, the memberships, the
// registry-administrator flag); once the authorization decision point of issue 12 is merged
// they should ask it instead (admin.Decide / Service.Can):
//
//	canSomewhere(a, PermManageUsers)   → Decide(a, ActionInviteUser, Target{Site}) for one of a's sites
//	canSomewhere(a, PermViewUsers)     → Decide(a, ActionListUsers, …) / ActionViewAudit for one of a's sites
//	canSomewhere(a, PermReadPatients)  → Decide(a, ActionSearchPatients, Target{})
//	canSomewhere(a, PermChangeSharing) → Service.Can(ctx, a, ActionChangeSharing, Target{PatientID})
//	canAt(a, PermManageUsers, site)    → Decide(a, ActionInviteUser, Target{Site: site})
//	canAt(a, PermViewUsers, site)      → Decide(a, ActionListUsers, Target{Site: site})
//	registryStaff(a)                   → Decide(a, ActionCreateOrganization, Target{})

// canSomewhere reports whether the actor's role allows perm at one of their sites at least.
func canSomewhere(a *admin.Actor, perm admin.Permission) bool {
	if a == nil {
		return false
	}
	if a.RegistryAdmin || a.System {
		return true
	}
	for _, m := range a.Memberships {
		if m.Role.Can(perm) {
			return true
		}
	}
	return false
}

// canAt reports whether the actor's role at the site (or their health system role) allows perm.
func canAt(a *admin.Actor, perm admin.Permission, site *admin.Site) bool {
	if a == nil || site == nil {
		return false
	}
	if a.RegistryAdmin || a.System {
		return true
	}
	for _, m := range a.Memberships {
		if !m.Role.Can(perm) {
			continue
		}
		if m.SiteID == site.ID || (m.Role.HealthSystem() && m.HealthSystemID == site.HealthSystemID) {
			return true
		}
	}
	return false
}

func registryStaff(a *admin.Actor) bool { return a != nil && (a.RegistryAdmin || a.System) }

// link is an entry of the navigation bar.
type link struct {
	Href, Label string
	Current     bool
}

type nav struct {
	Links []link
}

// navFor is the navigation bar of a signed-in actor.
func navFor(s *session, path string) nav {
	if s == nil || s.actor == nil || s.actor.MustChangePassword {
		return nav{}
	}
	a := s.actor
	var ls []link
	add := func(href, label string) {
		cur := path == href || strings.HasPrefix(path, href+"/")
		ls = append(ls, link{Href: href, Label: label, Current: cur})
	}
	if canSomewhere(a, admin.PermManageUsers) {
		add("/dashboard", "Dashboard")
	}
	if canSomewhere(a, admin.PermViewUsers) {
		add("/users", "Manage users")
	}
	if canSomewhere(a, admin.PermReadPatients) {
		add("/patients", "Patients")
	}
	add("/sites", "Sites")
	if registryStaff(a) {
		add("/registry", "Registry")
	}
	if canSomewhere(a, admin.PermViewUsers) {
		add("/audit", "Audit log")
	}
	return nav{Links: ls}
}

// home is where a signed-in actor lands.
func (s *session) home() string {
	a := s.actor
	switch {
	case registryStaff(a):
		return "/registry"
	case canSomewhere(a, admin.PermManageUsers):
		return "/dashboard"
	case canSomewhere(a, admin.PermViewUsers):
		return "/users"
	case canSomewhere(a, admin.PermReadPatients):
		return "/patients"
	}
	return "/sites"
}
