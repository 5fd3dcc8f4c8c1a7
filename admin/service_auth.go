package admin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
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

// Login is LoginFrom with an unknown source address: the throttle then counts every such
// caller as one source. The API and the portal call LoginFrom with the client's address.
func (s *Service) Login(ctx context.Context, username, password string) (*LoginResult, error) {
	return s.LoginFrom(ctx, username, password, "")
}

// LoginFrom checks a username and password sent from the source address (the client's IP) and
// opens a session. Guessing is throttled (see throttle.go): an attempt made too soon is answered
// ErrTooManyAttempts (429, Retry-After) whatever the username. A wrong password, an unknown
// username, an account not registered yet and an account locked for this source are all answered
// ErrInvalidCredentials, after the same password verification. With the right password, an
// Inactive Manual account is refused (ErrAccountInactive); an active account unused for the
// inactivity period becomes Inactive Expired and is refused (ErrAccountExpired), like one that
// already is. After an administrator's reset the session may only change the password
// (PasswordChangeRequired). Every attempt that is not throttled is audited (never the password).
func (s *Service) LoginFrom(ctx context.Context, username, password, source string) (*LoginResult, error) {
	username = strings.TrimSpace(username)
	key, src := usernameKey(username), sourceKey(source)
	now := s.now()
	if wait := s.throttle.wait(key, src, now); wait > 0 {
		s.log.Info("login throttled", zap.String("source", src), zap.Duration("wait", wait))
		return nil, ErrTooManyAttempts.retryAfter(wait)
	}
	if username == "" || password == "" || len(username) > 64 || len(password) > 256 {
		s.throttle.fail(key, src, now)
		return nil, ErrInvalidCredentials
	}
	u, err := s.st.UserByUsername(ctx, username)
	if errors.Is(err, ErrNotFound) {
		s.dummyVerify(password)
		s.throttle.fail(key, src, now)
		return nil, s.loginFailed(ctx, nil, key, src, "unknown_user")
	}
	if err != nil {
		return nil, err
	}
	ok := false
	if u.PasswordHash == "" { // invited, not registered
		s.dummyVerify(password)
	} else if ok, err = passwd.Verify(u.PasswordHash, password); err != nil {
		return nil, fmt.Errorf("admin: verify password of user %d: %w", u.ID, err)
	}
	if ok && s.throttle.pairLocked(key, src, now) {
		// Locked for this source: answered like a wrong password, not counted again.
		return nil, s.loginFailed(ctx, u, key, src, "locked_for_source")
	}
	if !ok {
		s.throttle.fail(key, src, now)
		reason := "wrong_password"
		if u.PasswordHash == "" {
			reason = "not_registered"
		} else if err := s.recordFailure(ctx, u, now); err != nil {
			return nil, err
		}
		return nil, s.loginFailed(ctx, u, key, src, reason)
	}
	switch u.Status {
	case UserInactiveManual:
		_ = s.loginFailed(ctx, u, key, src, "inactive_manual")
		return nil, ErrAccountInactive
	case UserInactiveExpired:
		_ = s.loginFailed(ctx, u, key, src, "inactive_expired")
		return nil, ErrAccountExpired
	case UserActive:
	default:
		return nil, s.loginFailed(ctx, u, key, src, "status_"+string(u.Status))
	}
	if last := u.LastActiveAt; last != nil && now.Sub(*last) > s.o.InactiveAfter {
		var flagged []Site
		err := s.st.Tx(ctx, func(tx Store) error {
			if err := tx.ExpireUser(ctx, u.ID, now); err != nil {
				return err
			}
			if err := s.audit(ctx, tx, SystemActor("auth"), "", "user.expire", "user", u.ID, userSites(u),
				map[string]UserStatus{"status": UserActive}, map[string]UserStatus{"status": UserInactiveExpired}); err != nil {
				return err
			}
			var err error
			flagged, err = s.refreshAA(ctx, tx, userSites(u))
			return err
		})
		if err != nil {
			return nil, err
		}
		s.tellNeedsAA(ctx, flagged)
		_ = s.loginFailed(ctx, u, key, src, "inactive_expired")
		return nil, ErrAccountExpired
	}
	tok, hash, err := newToken()
	if err != nil {
		return nil, err
	}
	sess := &Session{UserID: u.ID, CreatedAt: now, ExpiresAt: now.Add(s.o.SessionTTL)}
	err = s.st.Tx(ctx, func(tx Store) error {
		if err := tx.RecordLogin(ctx, u.ID, now); err != nil {
			return err
		}
		if err := tx.CreateSession(ctx, sess, hash); err != nil {
			return err
		}
		return s.audit(ctx, tx, Actor{UserID: u.ID, Name: u.Username}, RuleSelf, "auth.login", "user", u.ID, userSites(u), nil,
			map[string]any{"source": src, "was_locked": u.Locked()})
	})
	if err != nil {
		return nil, err
	}
	s.throttle.succeed(key, src)
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

// recordFailure counts a wrong password in the database; the failure that reaches the threshold
// sets the account's Locked flag (shown to administrators) and is audited once.
func (s *Service) recordFailure(ctx context.Context, u *User, now time.Time) error {
	failures, locked, err := s.st.RecordLoginFailure(ctx, u.ID, s.o.LockoutThreshold, now)
	if err != nil {
		return err
	}
	s.log.Info("login failed", zap.Int64("user_id", u.ID), zap.Int("failures", failures))
	if locked && failures == s.o.LockoutThreshold { // the failure that locked it (once, even under concurrency)
		return s.st.Tx(ctx, func(tx Store) error {
			return s.audit(ctx, tx, SystemActor("auth"), "", "user.lock", "user", u.ID, userSites(u),
				map[string]bool{"locked": false}, map[string]any{"locked": true, "failed_logins": failures})
		})
	}
	return nil
}

// loginFailed audits a failed login and returns the caller's answer, ErrInvalidCredentials. The
// audit names the account when it exists; an unknown username is recorded only as a digest (a
// password typed into the username field must not end up in the log).
func (s *Service) loginFailed(ctx context.Context, u *User, key, src, reason string) error {
	after := map[string]string{"source": src, "reason": reason}
	var (
		id    int64
		sites []int64
	)
	if u != nil {
		id, sites = u.ID, userSites(u)
	} else {
		sum := sha256.Sum256([]byte(key))
		after["username_sha256"] = hex.EncodeToString(sum[:8])
	}
	err := s.st.Tx(ctx, func(tx Store) error {
		return s.audit(ctx, tx, SystemActor("auth"), "", "auth.login_failed", "user", id, sites, nil, after)
	})
	if err != nil {
		return err
	}
	return ErrInvalidCredentials
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
		return s.audit(ctx, tx, a, RuleSelf, "user.change_password", "user", u.ID, userSites(u),
			map[string]bool{"must_change_password": u.MustChangePassword}, map[string]bool{"must_change_password": false})
	})
}
