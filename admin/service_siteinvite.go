package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"
)

// Adding an existing user to a site is an invitation the user accepts (the MIIS flow: search
// first, then invite; the invitee confirms), never a silent membership: an administrator of one
// organization cannot make someone of another organization a member of their site, and so
// cannot gain a say over that person's account.

// SiteInvitationStatus is the state of an invitation of an existing user to a site.
type SiteInvitationStatus string

// The states of a site invitation.
const (
	SiteInvitationPending  SiteInvitationStatus = "pending"
	SiteInvitationAccepted SiteInvitationStatus = "accepted"
	SiteInvitationDeclined SiteInvitationStatus = "declined"
)

// SiteInvitation invites an existing user to become a member of a site with a role.
type SiteInvitation struct {
	ID           int64                `json:"id"`
	UserID       int64                `json:"user_id"`
	Username     string               `json:"username"`
	SiteID       int64                `json:"site_id"`
	SiteCode     string               `json:"site_code"`
	SiteName     string               `json:"site_name"`
	Role         Role                 `json:"role"`
	Designations []Designation        `json:"designations"`
	InvitedBy    string               `json:"invited_by"` // the inviting actor's name
	Status       SiteInvitationStatus `json:"status"`
	CreatedAt    time.Time            `json:"created_at"`
	ExpiresAt    time.Time            `json:"expires_at"`
	AnsweredAt   *time.Time           `json:"answered_at,omitempty"`
}

// SiteInvitationInput is an invitation of an existing user to a site.
type SiteInvitationInput struct {
	UserID       int64         `json:"user_id"`
	SiteID       int64         `json:"site_id"`
	Role         Role          `json:"role"`
	Designations []Designation `json:"designations,omitempty"`
}

// SiteInvitationFilter selects site invitations.
type SiteInvitationFilter struct {
	UserID      int64
	SiteID      int64
	PendingAt   time.Time // non-zero: only pending invitations not expired at this time
	ForUpdateID int64     // the one invitation with this id, row locked (inside Tx)
}

// InviteToSite invites an existing user to a site (the decision point, ActionInviteToSite: an
// actor who manages the site's users; not for current members, whose role is changed with
// SetMembership). The user becomes a member when they accept (AnswerSiteInvitation). The user is
// told by e-mail when a mail server is configured, and sees the invitation after logging in
// (MySiteInvitations) either way. A newer invitation to the same site replaces a pending one.
func (s *Service) InviteToSite(ctx context.Context, a Actor, in SiteInvitationInput) (*SiteInvitation, error) {
	site, err := s.st.Site(ctx, in.SiteID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, Invalid("site %d not found", in.SiteID)
		}
		return nil, err
	}
	ds, err := checkDesignations(in.Role, in.Designations)
	if err != nil {
		return nil, err
	}
	var inv *SiteInvitation
	var invitee *User
	err = s.st.Tx(ctx, func(tx Store) error {
		u, err := tx.UserForUpdate(ctx, in.UserID)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return Invalid("user %d not found", in.UserID)
			}
			return err
		}
		d, err := s.authorize(a, ActionInviteToSite, Target{User: u, Site: site, Role: in.Role})
		if err != nil {
			return err
		}
		if u.Status == UserInactiveManual {
			return ErrInvalidTransition.With("user %s is Inactive Manual", u.Username)
		}
		now := s.now()
		inv = &SiteInvitation{UserID: u.ID, Username: u.Username, SiteID: site.ID, SiteCode: site.Code, SiteName: site.Name,
			Role: in.Role, Designations: ds, InvitedBy: a.Name, Status: SiteInvitationPending, CreatedAt: now, ExpiresAt: now.Add(s.o.SiteInviteTTL)}
		if err := tx.CreateSiteInvitation(ctx, inv, a.userIDPtr()); err != nil {
			return err
		}
		invitee = u
		return s.audit(ctx, tx, a, d.Rule, "membership.invite", "user", u.ID, []int64{site.ID}, nil,
			map[string]any{"site_invitation_id": inv.ID, "role": in.Role, "designations": ds})
	})
	if err != nil {
		return nil, err
	}
	if s.o.SMTP.Configured() {
		body := fmt.Sprintf(`Hello %s %s,

%s invites you to become a member of site %s (%s) in the immunization registry, as %s.

Log in to the registry to accept or decline. Nothing changes until you accept.
The invitation expires on %s.
`, invitee.FirstName, invitee.LastName, a.Name, site.Code, site.Name, in.Role.Label(), inv.ExpiresAt.Format("2006-01-02 15:04 MST"))
		if err := sendMail(ctx, s.o.SMTP, mailMessage{To: invitee.Email, Subject: "Invitation to a site of the immunization registry", Body: body}, s.now()); err != nil {
			s.log.Warn("site invitation e-mail failed; the user sees it after logging in", zap.Int64("user_id", invitee.ID), zap.Error(err))
		}
	}
	return inv, nil
}

// MySiteInvitations lists the actor's pending invitations.
func (s *Service) MySiteInvitations(ctx context.Context, a Actor) ([]SiteInvitation, error) {
	if a.UserID == 0 {
		return nil, ErrUnauthenticated
	}
	return s.st.ListSiteInvitations(ctx, SiteInvitationFilter{UserID: a.UserID, PendingAt: s.now()})
}

// SiteInvitations lists the pending invitations of a site, for those who may list its users.
func (s *Service) SiteInvitations(ctx context.Context, a Actor, siteID int64) ([]SiteInvitation, error) {
	site, err := s.st.Site(ctx, siteID)
	if err != nil {
		return nil, err
	}
	if _, err := s.authorize(a, ActionListUsers, Target{Site: site}); err != nil {
		return nil, err
	}
	return s.st.ListSiteInvitations(ctx, SiteInvitationFilter{SiteID: siteID, PendingAt: s.now()})
}

// AnswerSiteInvitation accepts or declines one of the actor's invitations (only the invitee may:
// ActionAnswerSiteInvite). Accepting makes the actor a member of the site with the invited role
// and designations (replacing a role they may have gained there since).
func (s *Service) AnswerSiteInvitation(ctx context.Context, a Actor, id int64, accept bool) (*SiteInvitation, error) {
	var (
		inv     *SiteInvitation
		flagged []Site
	)
	err := s.st.Tx(ctx, func(tx Store) error {
		found, err := tx.ListSiteInvitations(ctx, SiteInvitationFilter{ForUpdateID: id})
		if err != nil {
			return err
		}
		if len(found) == 0 {
			return NotFound("invitation %d not found", id)
		}
		inv = &found[0]
		u, err := tx.UserForUpdate(ctx, inv.UserID)
		if err != nil {
			return err
		}
		d, err := s.authorize(a, ActionAnswerSiteInvite, Target{User: u})
		if err != nil {
			return NotFound("invitation %d not found", id) // others' invitations are not shown
		}
		now := s.now()
		if inv.Status != SiteInvitationPending || !now.Before(inv.ExpiresAt) {
			return ErrInvalidTransition.With("invitation %d is %s", id, map[bool]string{true: "expired", false: string(inv.Status)}[inv.Status == SiteInvitationPending])
		}
		status, action := SiteInvitationDeclined, "membership.decline_invitation"
		if accept {
			status, action = SiteInvitationAccepted, "membership.accept_invitation"
			site, err := tx.Site(ctx, inv.SiteID)
			if err != nil {
				return err
			}
			m := Membership{UserID: u.ID, SiteID: site.ID, SiteCode: site.Code, OrganizationID: site.OrganizationID,
				HealthSystemID: site.HealthSystemID, Role: inv.Role, Designations: inv.Designations}
			if _, err := tx.PutMembership(ctx, m, now); err != nil {
				return err
			}
			if flagged, err = s.refreshAA(ctx, tx, []int64{site.ID}); err != nil {
				return err
			}
		}
		if err := tx.AnswerSiteInvitation(ctx, id, status, now); err != nil {
			return err
		}
		inv.Status, inv.AnsweredAt = status, &now
		return s.audit(ctx, tx, a, d.Rule, action, "user", u.ID, []int64{inv.SiteID}, nil,
			map[string]any{"site_invitation_id": id, "role": inv.Role, "designations": inv.Designations})
	})
	if err != nil {
		return nil, err
	}
	s.tellNeedsAA(ctx, flagged)
	return inv, nil
}
