package admin

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"
)

// Kind classifies an Error; the JSON API maps each kind to one HTTP status.
type Kind int

// The kinds of errors.
const (
	KindInternal        Kind = iota // a failure of the system, not of the request
	KindInvalid                     // bad input: 400
	KindUnauthenticated             // no or bad credentials: 401
	KindForbidden                   // authenticated, but not allowed: 403
	KindNotFound                    // 404
	KindConflict                    // duplicate, invariant, state conflict: 409
	KindLocked                      // account locked: 423
	KindUnavailable                 // a dependency (mail) is not available: 503
	KindTooLarge                    // request body too large: 413
	KindTooManyRequests             // throttled: 429
)

// HTTPStatus is the HTTP status of an error of this kind.
func (k Kind) HTTPStatus() int {
	switch k {
	case KindInvalid:
		return http.StatusBadRequest
	case KindUnauthenticated:
		return http.StatusUnauthorized
	case KindForbidden:
		return http.StatusForbidden
	case KindNotFound:
		return http.StatusNotFound
	case KindConflict:
		return http.StatusConflict
	case KindLocked:
		return http.StatusLocked
	case KindUnavailable:
		return http.StatusServiceUnavailable
	case KindTooLarge:
		return http.StatusRequestEntityTooLarge
	case KindTooManyRequests:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

// Error is an error the user of the API or CLI can act on: a kind, a stable machine-readable
// code and a plain-language message. Err, when set, is the underlying cause (not shown to users).
type Error struct {
	Kind    Kind
	Code    string
	Message string
	// Rule names the authorization rule that denied the action (Decision.Rule), for 403s.
	Rule string
	// RetryAfter, for KindTooManyRequests, is how long the caller must wait.
	RetryAfter time.Duration
	Err        error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrNotFound) and the other sentinels match any Error of the same kind
// and code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Kind == e.Kind && t.Code == e.Code
}

func newErr(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a KindInvalid error with code "invalid".
func Invalid(format string, args ...any) *Error {
	return newErr(KindInvalid, "invalid", format, args...)
}

// NotFound returns a KindNotFound error with code "not_found".
func NotFound(format string, args ...any) *Error {
	return newErr(KindNotFound, "not_found", format, args...)
}

// Conflict returns a KindConflict error with the given code.
func Conflict(code, format string, args ...any) *Error {
	return newErr(KindConflict, code, format, args...)
}

// Forbidden returns a KindForbidden error with code "forbidden".
func Forbidden(format string, args ...any) *Error {
	return newErr(KindForbidden, "forbidden", format, args...)
}

// Sentinels for errors.Is. Errors returned carry a specific message but match these.
var (
	ErrNotFound           = &Error{Kind: KindNotFound, Code: "not_found", Message: "not found"}
	ErrForbidden          = &Error{Kind: KindForbidden, Code: "forbidden", Message: "not allowed"}
	ErrInvalid            = &Error{Kind: KindInvalid, Code: "invalid", Message: "invalid input"}
	ErrUnauthenticated    = &Error{Kind: KindUnauthenticated, Code: "unauthenticated", Message: "authentication required"}
	ErrInvalidCredentials = &Error{Kind: KindUnauthenticated, Code: "invalid_credentials", Message: "wrong username or password"}
	// ErrAccountLocked is no longer answered to a login (a locked account is answered exactly as a
	// wrong password, ErrInvalidCredentials); it is kept for clients that match on it.
	ErrAccountLocked     = &Error{Kind: KindLocked, Code: "account_locked", Message: "the account is locked after repeated failed logins; an access administrator must unlock it"}
	ErrAccountExpired    = &Error{Kind: KindForbidden, Code: "account_expired", Message: "the account is Inactive Expired (unused for too long); an access administrator must reactivate it"}
	ErrAccountInactive   = &Error{Kind: KindForbidden, Code: "account_inactive", Message: "the account is Inactive Manual; an access administrator must reactivate it"}
	ErrPasswordChange    = &Error{Kind: KindForbidden, Code: "password_change_required", Message: "the password was set by an administrator and must be changed first (POST /api/v1/me/password)"}
	ErrWeakPassword      = &Error{Kind: KindInvalid, Code: "weak_password", Message: "the password does not meet the password policy"}
	ErrInvalidUsername   = &Error{Kind: KindInvalid, Code: "invalid_username", Message: "the username is not allowed"}
	ErrDuplicateUser     = &Error{Kind: KindConflict, Code: "duplicate_user", Message: "a user with these details already exists"}
	ErrPossibleDuplicate = &Error{Kind: KindConflict, Code: "possible_duplicate", Message: "users with this name already exist"}
	ErrUsernameTaken     = &Error{Kind: KindConflict, Code: "username_taken", Message: "the username is taken"}
	ErrLastAA            = &Error{Kind: KindConflict, Code: "last_access_administrator", Message: "the site's last active access administrator cannot be deactivated or demoted"}
	ErrLastRegistryAdmin = &Error{Kind: KindConflict, Code: "last_registry_administrator", Message: "the last active registry administrator cannot be deactivated"}
	ErrAlreadyExists     = &Error{Kind: KindConflict, Code: "already_exists", Message: "already exists"}
	ErrInvalidTransition = &Error{Kind: KindConflict, Code: "invalid_transition", Message: "the change is not allowed from the current state"}
	ErrSharingUnresolved = &Error{Kind: KindConflict, Code: "sharing_unresolved", Message: "the patient's data-sharing status is Unknown: set it to Yes or No before viewing the records"}
	ErrSharingUnchanged  = &Error{Kind: KindConflict, Code: "sharing_unchanged", Message: "the patient already has this data-sharing status"}
	ErrInviteInvalid     = &Error{Kind: KindNotFound, Code: "invite_invalid", Message: "the registration link is unknown, already used or expired"}
	ErrMailUnavailable   = &Error{Kind: KindUnavailable, Code: "mail_unavailable", Message: "the invitation email could not be sent"}
	ErrAlreadyBootstrap  = &Error{Kind: KindConflict, Code: "already_bootstrapped", Message: "a registry administrator already exists"}
	ErrTooManyAttempts   = &Error{Kind: KindTooManyRequests, Code: "too_many_attempts", Message: "too many failed logins: wait before trying again"}
	ErrSiteNeedsAA       = &Error{Kind: KindConflict, Code: "site_needs_access_administrator", Message: "the site has no active access administrator"}
)

// retryAfter returns a copy of sentinel e that tells the caller to wait d.
func (e *Error) retryAfter(d time.Duration) *Error {
	c := *e
	c.RetryAfter = d
	c.Message = fmt.Sprintf("%s (%d s)", e.Message, int(math.Ceil(d.Seconds())))
	return &c
}

// with returns a copy of sentinel e with a specific message.
func (e *Error) with(format string, args ...any) *Error {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

// Wrap returns a copy of sentinel e with a specific message and cause. The store uses it to
// report conflicts it detects (e.g. ErrLastAA) with details.
func (e *Error) Wrap(cause error, format string, args ...any) *Error {
	c := e.with(format, args...)
	c.Err = cause
	return c
}

// With returns a copy of sentinel e with a specific message.
func (e *Error) With(format string, args ...any) *Error { return e.with(format, args...) }

// AsError returns the *Error in err's chain, or an internal error wrapping err.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: KindInternal, Code: "internal", Message: "internal error", Err: err}
}
