package portal

import (
	"context"
	"strings"

	"github.com/vaxgate/vaxgate/admin"
)

// What the portal shows or hides comes from the admin module's one decision point (admin.Decide,
// Service.Can): the same decision that the action itself asks for, so that a link, button or form
// is offered exactly when the Service would allow it. The portal has no rule of its own; every
// action and every page still asks the Service, which decides again and answers 403 or 404.

// may reports whether the decision point allows act on t for the signed-in actor.
func may(a *admin.Actor, act admin.Action, t admin.Target) bool {
	return a != nil && admin.Decide(*a, act, t).Allow
}

// mayAt reports whether the decision point allows act on the site (a site-targeted action).
func mayAt(a *admin.Actor, act admin.Action, site *admin.Site) bool {
	return site != nil && may(a, act, admin.Target{Site: site})
}

// maySomewhere reports whether the decision point allows the site-targeted act at one site at
// least: one of the actor's own sites, or any site for registry staff.
func maySomewhere(a *admin.Actor, act admin.Action) bool {
	if a == nil {
		return false
	}
	if registryStaff(a) {
		return true
	}
	for _, m := range a.Memberships {
		if mayAt(a, act, &admin.Site{ID: m.SiteID, OrganizationID: m.OrganizationID, HealthSystemID: m.HealthSystemID, Code: m.SiteCode}) {
			return true
		}
	}
	return false
}

// registryStaff reports whether the decision point gives the actor what only registry staff may
// do (creating organizations stands for the registry-staff-only actions).
func registryStaff(a *admin.Actor) bool {
	return may(a, admin.ActionCreateOrganization, admin.Target{})
}

// mayPatient asks the Service's decision (it loads the patient) for act on patient id.
func (p *Portal) mayPatient(ctx context.Context, a *admin.Actor, act admin.Action, id int64) bool {
	return a != nil && p.svc.Can(ctx, *a, act, admin.Target{PatientID: id}).Allow
}

// userControls says which of a user page's controls the decision point allows the actor.
type userControls struct {
	Profile, Deactivate, Reactivate, Unlock, Reset, Reinvite bool
	Membership                                               bool // edit the role at the page's site
	Remove                                                   bool
	Any                                                      bool // one of the account actions at least
}

func controlsFor(a *admin.Actor, u *admin.User, site *admin.Site) userControls {
	t := admin.Target{User: u}
	c := userControls{
		Profile:    may(a, admin.ActionUpdateUser, t),
		Deactivate: may(a, admin.ActionDeactivateUser, t),
		Reactivate: may(a, admin.ActionReactivateUser, t),
		Unlock:     may(a, admin.ActionUnlockUser, t),
		Reset:      may(a, admin.ActionResetPassword, t),
		Reinvite:   may(a, admin.ActionResendInvite, t),
	}
	if site != nil {
		mt := admin.Target{User: u, Site: site}
		if u.Membership(site.ID) != nil {
			c.Membership = may(a, admin.ActionSetMembership, mt)
			c.Remove = may(a, admin.ActionRemoveMembership, mt)
		}
	}
	c.Any = c.Deactivate || c.Reactivate || c.Unlock || c.Reset || c.Reinvite
	return c
}

// link is an entry of the navigation bar.
type link struct {
	Href, Label string
	Current     bool
	Count       int // things waiting there for the actor (shown when not 0)
}

type nav struct {
	Links []link
}

// navFor is the navigation bar of a signed-in actor; pending is how many invitations to sites
// wait for the actor's answer, shown beside "Invitations" so that none goes unnoticed.
func navFor(s *session, path string, pending int) nav {
	if s == nil || s.actor == nil || s.actor.MustChangePassword {
		return nav{}
	}
	a := s.actor
	var ls []link
	add := func(href, label string) {
		cur := path == href || strings.HasPrefix(path, href+"/")
		ls = append(ls, link{Href: href, Label: label, Current: cur})
	}
	if maySomewhere(a, admin.ActionInviteUser) {
		add("/dashboard", "Dashboard")
	}
	if maySomewhere(a, admin.ActionListUsers) {
		add("/users", "Manage users")
	}
	if may(a, admin.ActionSearchPatients, admin.Target{}) {
		add("/patients", "Patients")
	}
	add("/sites", "Sites")
	if registryStaff(a) {
		add("/registry", "Registry")
	}
	if maySomewhere(a, admin.ActionViewAudit) {
		add("/audit", "Audit log")
	}
	add("/invitations", "Invitations")
	ls[len(ls)-1].Count = pending
	return nav{Links: ls}
}

// home is where a signed-in actor lands.
func (s *session) home() string {
	a := s.actor
	switch {
	case registryStaff(a):
		return "/registry"
	case maySomewhere(a, admin.ActionInviteUser):
		return "/dashboard"
	case maySomewhere(a, admin.ActionListUsers):
		return "/users"
	case may(a, admin.ActionSearchPatients, admin.Target{}):
		return "/patients"
	}
	return "/sites"
}
