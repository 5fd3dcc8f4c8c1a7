package admin

import (
	"context"
	"errors"
	"time"
)

// PendingRegistration is what an invitee sees before registering: who the account is for, the
// site (name and PIN) they were invited to, until when the link works and the version of the
// user agreement they are asked to accept.
type PendingRegistration struct {
	User             *User
	Site             *Site // nil for a registry administrator invited without a site
	ExpiresAt        time.Time
	AgreementVersion string
}

// PendingRegistration reads the invitation behind a registration link without using it (the
// registration page shows it; Register uses it). An unknown, used or expired link, or an account
// that is no longer waiting for registration, is ErrInviteInvalid.
func (s *Service) PendingRegistration(ctx context.Context, token string) (*PendingRegistration, error) {
	if !validToken(token) {
		return nil, ErrInviteInvalid
	}
	inv, err := s.st.InviteByToken(ctx, hashToken(token), s.now())
	if err != nil {
		return nil, err
	}
	u, err := s.st.User(ctx, inv.UserID)
	if err != nil {
		return nil, err
	}
	if u.Status != UserInvited {
		return nil, ErrInviteInvalid.With("the account is %s; ask your access administrator", u.Status.Label())
	}
	p := &PendingRegistration{User: u, ExpiresAt: inv.ExpiresAt, AgreementVersion: s.o.AgreementVersion}
	if inv.SiteID != 0 {
		site, err := s.st.Site(ctx, inv.SiteID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		p.Site = site
	}
	return p, nil
}
