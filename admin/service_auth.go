package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin/passwd"
)

// LoginResult is a new session. The token is shown once; the store keeps only its digest.
type LoginResult struct {
	Token                  string    `json:"token"`
	ExpiresAt              time.Time `json:"expires_at"`
	PasswordChangeRequired bool      `json:"password_change_required"`
	User                   *User     `json:"user"`
}

// Login checks a username and password and opens a session. In order: a locked account is
// refused (ErrAccountLocked); a wrong password counts a failure and locks the account at the
// threshold; an Inactive Manual account is refused (ErrAccountInactive); an active account unused
// for the inactivity period becomes Inactive Expired and is refused (ErrAccountExpired), like an
// account that already is. After an administrator's reset the session may only change the
// password (PasswordChangeRequired).
func (s *Service) Login(ctx context.Context, username, password string) (*LoginResult, error) {
	username = strings.TrimSpace(username)
	if username == "" || password == "" || len(username) > 64 || len(password) > 256 {
		return nil, ErrInvalidCredentials
	}
	u, err := s.st.UserByUsername(ctx, username)
	if errors.Is(err, ErrNotFound) {
		s.dummyVerify(password)
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	if u.Locked() {
		return nil, ErrAccountLocked
	}
	if u.PasswordHash == "" { // invited, not registered
		s.dummyVerify(password)
		return nil, ErrInvalidCredentials
	}
	ok, err := passwd.Verify(u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("admin: verify password of user %d: %w", u.ID, err)
	}
	now := s.now()
	if !ok {
		failures, locked, err := s.st.RecordLoginFailure(ctx, u.ID, s.o.LockoutThreshold, now)
		if err != nil {
			return nil, err
		}
		s.log.Info("login failed", zap.Int64("user_id", u.ID), zap.Int("failures", failures))
		if locked && failures == s.o.LockoutThreshold { // the failure that locked it (once, even under concurrency)
			err := s.st.Tx(ctx, func(tx Store) error {
				return s.audit(ctx, tx, SystemActor("auth"), "user.lock", "user", u.ID, userSites(u),
					map[string]bool{"locked": false}, map[string]any{"locked": true, "failed_logins": failures})
			})
			if err != nil {
				return nil, err
			}
		}
		if locked {
			return nil, ErrAccountLocked
		}
		return nil, ErrInvalidCredentials
	}
	switch u.Status {
	case UserInactiveManual:
		return nil, ErrAccountInactive
	case UserInactiveExpired:
		return nil, ErrAccountExpired
	case UserActive:
	default:
		return nil, ErrInvalidCredentials
	}
	if last := u.LastActiveAt; last != nil && now.Sub(*last) > s.o.InactiveAfter {
		err := s.st.Tx(ctx, func(tx Store) error {
			if err := tx.ExpireUser(ctx, u.ID, now); err != nil {
				return err
			}
			return s.audit(ctx, tx, SystemActor("auth"), "user.expire", "user", u.ID, userSites(u),
				map[string]UserStatus{"status": UserActive}, map[string]UserStatus{"status": UserInactiveExpired})
		})
		if err != nil {
			return nil, err
		}
		return nil, ErrAccountExpired
	}
	tok, hash, err := newToken()
	if err != nil {
		return nil, err
	}
	sess := &Session{UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.o.SessionTTL)}
	if err := s.st.RecordLogin(ctx, u.ID, now); err != nil {
		return nil, err
	}
	if err := s.st.CreateSession(ctx, sess, hash); err != nil {
		return nil, err
	}
	if passwd.NeedsRehash(u.PasswordHash) {
		if h, err := passwd.Hash(password); err == nil {
			_ = s.st.SetPassword(ctx, u.ID, h, u.MustChangePassword, now)
		}
	}
	if u, err = s.st.User(ctx, u.ID); err != nil {
		return nil, err
	}
	s.log.Info("login", zap.Int64("user_id", u.ID), zap.Bool("password_change_required", u.MustChangePassword))
	return &LoginResult{Token: tok, ExpiresAt: sess.ExpiresAt, PasswordChangeRequired: u.MustChangePassword, User: u}, nil
}

// Authenticate turns a session token into the actor it belongs to. The user's current roles are
// read on every call, so that changes take effect at once.
func (s *Service) Authenticate(ctx context.Context, token string) (Actor, error) {
	if !validToken(token) {
		return Actor{}, ErrUnauthenticated.With("invalid session token")
	}
	now := s.now()
	sess, err := s.st.SessionByToken(ctx, hashToken(token), now)
	if errors.Is(err, ErrNotFound) {
		return Actor{}, ErrUnauthenticated.With("the session is unknown, ended or expired: log in again")
	}
	if err != nil {
		return Actor{}, err
	}
	u, err := s.st.User(ctx, sess.UserID)
	if err != nil {
		return Actor{}, err
	}
	switch {
	case u.Locked():
		return Actor{}, ErrAccountLocked
	case u.Status == UserInactiveManual:
		return Actor{}, ErrAccountInactive
	case u.Status == UserInactiveExpired:
		return Actor{}, ErrAccountExpired
	case u.Status != UserActive:
		return Actor{}, ErrUnauthenticated
	}
	return Actor{UserID: u.ID, Name: u.Username, RegistryAdmin: u.RegistryAdmin, Memberships: u.Memberships,
		SessionID: sess.ID, MustChangePassword: u.MustChangePassword}, nil
}

// Logout ends the actor's session.
func (s *Service) Logout(ctx context.Context, a Actor) error {
	if a.SessionID == 0 {
		return ErrUnauthenticated
	}
	return s.st.RevokeSession(ctx, a.SessionID, s.now())
}

// Me returns the actor's own account.
func (s *Service) Me(ctx context.Context, a Actor) (*User, error) {
	if a.UserID == 0 {
		return nil, ErrUnauthenticated
	}
	return s.st.User(ctx, a.UserID)
}

// ChangePassword changes the actor's own password (policy applies; it must differ from the
// current one) and ends their other sessions. It clears the forced change after a reset.
func (s *Service) ChangePassword(ctx context.Context, a Actor, current, next string) error {
	if a.UserID == 0 {
		return ErrUnauthenticated
	}
	return s.st.Tx(ctx, func(tx Store) error {
		u, err := tx.UserForUpdate(ctx, a.UserID)
		if err != nil {
			return err
		}
		ok, err := passwd.Verify(u.PasswordHash, current)
		if err != nil {
			return fmt.Errorf("admin: verify password of user %d: %w", u.ID, err)
		}
		if !ok {
			return &Error{Kind: KindForbidden, Code: "wrong_password", Message: "the current password is wrong"}
		}
		if current == next {
			return ErrWeakPassword.With("the new password must differ from the current one")
		}
		if err := CheckPassword(next, u.Username); err != nil {
			return err
		}
		hash, err := passwd.Hash(next)
		if err != nil {
			return fmt.Errorf("admin: hash password: %w", err)
		}
		now := s.now()
		if err := tx.SetPassword(ctx, u.ID, hash, false, now); err != nil {
			return err
		}
		if err := tx.RevokeUserSessions(ctx, u.ID, a.SessionID, now); err != nil {
			return err
		}
		return s.audit(ctx, tx, a, "user.change_password", "user", u.ID, userSites(u),
			map[string]bool{"must_change_password": u.MustChangePassword}, map[string]bool{"must_change_password": false})
	})
}
