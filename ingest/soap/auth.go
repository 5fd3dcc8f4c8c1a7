package soap

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/ingest"
)

// Reasons an authentication failed: metrics labels and log fields only. The sender always gets the
// same SecurityFault, so that it cannot learn whether a username exists.
const (
	authMissing        = "missing_credentials"
	authUnknownUser    = "unknown_username"
	authWrongPassword  = "wrong_password"
	authBadHash        = "unusable_password_hash"
	authPasswordDigest = "password_digest"
	authFacility       = "facility_not_of_site"
	authThrottled      = "throttled" // too many failures: not checked (see throttle)
)

// authenticator checks SOAP credentials against the store. Argon2id is slow by design, so a
// successful verification is remembered for a short while: the next request with the same
// username, password and stored hash skips it. The credential itself is looked up on every
// request, so a revoked or changed credential takes effect at once.
type authenticator struct {
	senders ingest.Senders
	verify  func(hash, pw string) (bool, error)
	now     func() time.Time
	ttl     time.Duration
	max     int
	// sem bounds concurrent verifications: each one takes the hash's memory cost (19 MiB by
	// default), and a flood of wrong passwords must not take the server's memory with it.
	sem chan struct{}

	key [32]byte // per-process HMAC key for the cache: no plain password digest sits in memory

	dummyOnce sync.Once
	dummy     string // a hash of nothing, verified for unknown usernames to keep the timing alike

	mu    sync.Mutex
	cache map[cacheKey]cacheEntry

	throttle *throttle // slows password guessing down (per username and per source address)
}

type cacheKey struct {
	username string
	pw       [sha256.Size]byte
}

type cacheEntry struct {
	hash    string // the stored hash that was verified: a password change invalidates the entry
	expires time.Time
}

func newAuthenticator(s ingest.Senders, now func() time.Time, ttl time.Duration, maxEntries, concurrency int, to ThrottleOptions) (*authenticator, error) {
	a := &authenticator{
		senders: s, verify: passwd.Verify, now: now, ttl: ttl, max: maxEntries,
		sem: make(chan struct{}, concurrency), cache: map[cacheKey]cacheEntry{},
		throttle: newThrottle(to, now),
	}
	if _, err := rand.Read(a.key[:]); err != nil {
		return nil, fmt.Errorf("soap: auth cache key: %w", err)
	}
	return a, nil
}

// authError is a failed authentication; reason is for metrics and logs only.
type authError struct{ reason string }

func (e *authError) Error() string { return "soap: authentication failed: " + e.reason }

// authenticate returns the credential of username when password is its password, for a request
// from source (sourceOf). A failure is an *authError; any other error is an internal failure (the
// store could not be asked). While the username or the source is held back after failed attempts,
// every attempt fails, the right password too, and exactly like a wrong one.
func (a *authenticator) authenticate(ctx context.Context, username, password, source string) (*ingest.SOAPCredential, error) {
	if username == "" || password == "" {
		return nil, &authError{authMissing}
	}
	if a.throttle.held(username, source) {
		return nil, &authError{authThrottled}
	}
	cred, err := a.senders.SOAPCredential(ctx, username)
	if errors.Is(err, ingest.ErrUnknownSender) {
		// Spend the time a real verification takes, so that the answer's timing does not tell
		// whether the username exists.
		if _, err := a.check(ctx, a.dummyHash(), password); err != nil {
			return nil, err
		}
		a.throttle.failed(username, source)
		return nil, &authError{authUnknownUser}
	}
	if err != nil {
		return nil, fmt.Errorf("soap: look up credential: %w", err)
	}
	k := a.cacheKey(username, password)
	if a.cached(k, cred.PasswordHash) {
		a.throttle.succeeded(username, source)
		return cred, nil
	}
	ok, err := a.check(ctx, cred.PasswordHash, password)
	if errors.Is(err, passwd.ErrMalformed) {
		return nil, &authError{authBadHash}
	}
	if err != nil {
		return nil, err
	}
	if !ok {
		a.throttle.failed(username, source)
		return nil, &authError{authWrongPassword}
	}
	a.remember(k, cred.PasswordHash)
	a.throttle.succeeded(username, source)
	return cred, nil
}

// check runs one verification, waiting for a free slot.
func (a *authenticator) check(ctx context.Context, hash, pw string) (bool, error) {
	select {
	case a.sem <- struct{}{}:
	case <-ctx.Done():
		return false, fmt.Errorf("soap: waiting to verify a password: %w", ctx.Err())
	}
	defer func() { <-a.sem }()
	return a.verify(hash, pw)
}

func (a *authenticator) dummyHash() string {
	a.dummyOnce.Do(func() {
		h, err := passwd.Hash("vaxgate: no such sender")
		if err != nil {
			// No randomness: verify against a fixed well-formed hash with the default cost.
			h = "$argon2id$v=19$m=19456,t=2,p=1$dmF4Z2F0ZS1kdW1teS1zYWx0$Zm9yIHRpbWluZyBvbmx5LCBuZXZlciBtYXRjaGVzLg"
		}
		a.dummy = h
	})
	return a.dummy
}

func (a *authenticator) cacheKey(username, password string) cacheKey {
	m := hmac.New(sha256.New, a.key[:])
	m.Write([]byte(password))
	k := cacheKey{username: username}
	copy(k.pw[:], m.Sum(nil))
	return k
}

func (a *authenticator) cached(k cacheKey, hash string) bool {
	if a.ttl <= 0 {
		return false
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	e, ok := a.cache[k]
	if !ok {
		return false
	}
	if e.hash != hash || !a.now().Before(e.expires) {
		delete(a.cache, k)
		return false
	}
	return true
}

func (a *authenticator) remember(k cacheKey, hash string) {
	if a.ttl <= 0 || a.max <= 0 {
		return
	}
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.cache[k]; !ok && len(a.cache) >= a.max {
		for ck, e := range a.cache {
			if !now.Before(e.expires) {
				delete(a.cache, ck)
			}
		}
		// Still full: drop arbitrary entries. Their senders pay one verification again.
		for ck := range a.cache {
			if len(a.cache) < a.max {
				break
			}
			delete(a.cache, ck)
		}
	}
	a.cache[k] = cacheEntry{hash: hash, expires: now.Add(a.ttl)}
}

// size is the number of cached verifications (tests).
func (a *authenticator) size() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.cache)
}
