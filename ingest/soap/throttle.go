package soap

import (
	"net"
	"net/netip"
	"sync"
	"time"
)

// Password guessing is slowed down, not stopped by a lock: after a few failed authentications a
// username, and after more a source address, must wait before its next attempt is even checked,
// and the wait doubles with each further failure, up to a cap. A request arriving during the wait
// is answered exactly like a wrong password (the same SecurityFault), without verifying anything,
// so it neither tells that the username exists nor costs an argon2id verification. Nothing is
// permanent: the wait is capped and the failures are forgotten after a quiet period, so an attacker
// cannot lock a sender out for good. And a source address from which a username authenticated
// recently is not held back by that username's failures from elsewhere: someone guessing a
// sender's password from another address does not lock the sender out.
//
// Defaults (ThrottleOptions): 5 free failures per username, 20 per source address (one address may
// relay many senders: a health information exchange), then 1 s, 2 s, 4 s… up to 2 minutes;
// forgotten after 15 minutes without a failure; a successful source stays trusted for its username
// for 24 hours.
type ThrottleOptions struct {
	UserFree   int           // failures of a username before it must wait (default 5)
	SourceFree int           // failures from a source address before it must wait (default 20)
	Base       time.Duration // the first wait (default 1s); each further failure doubles it
	Max        time.Duration // the longest wait (default 2 minutes)
	Forget     time.Duration // failures are forgotten this long after the last one (default 15 minutes)
	Trust      time.Duration // how long a source that authenticated a username stays exempt from its waits (default 24 hours)
	MaxEntries int           // entries kept per table (default 16384): memory is bounded whatever is tried
}

func (o *ThrottleOptions) defaults() {
	if o.UserFree <= 0 {
		o.UserFree = 5
	}
	if o.SourceFree <= 0 {
		o.SourceFree = 20
	}
	if o.Base <= 0 {
		o.Base = time.Second
	}
	if o.Max <= 0 {
		o.Max = 2 * time.Minute
	}
	if o.Forget <= 0 {
		o.Forget = 15 * time.Minute
	}
	if o.Forget < o.Max {
		o.Forget = o.Max
	}
	if o.Trust <= 0 {
		o.Trust = 24 * time.Hour
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 16384
	}
}

// throttle holds the failure counts.
type throttle struct {
	o   ThrottleOptions
	now func() time.Time

	mu      sync.Mutex
	users   map[string]*strikes
	sources map[string]*strikes
	trusted map[trustKey]time.Time // until when
}

type strikes struct {
	n    int
	last time.Time
}

type trustKey struct{ username, source string }

func newThrottle(o ThrottleOptions, now func() time.Time) *throttle {
	o.defaults()
	return &throttle{o: o, now: now, users: map[string]*strikes{}, sources: map[string]*strikes{}, trusted: map[trustKey]time.Time{}}
}

// wait is how long after its last failure a key with s's failures must wait (0: none).
func (t *throttle) wait(s *strikes, free int) time.Duration {
	if s == nil || s.n < free {
		return 0
	}
	d := t.o.Base
	for i := free; i < s.n && d < t.o.Max; i++ {
		d *= 2
	}
	return min(d, t.o.Max)
}

// held reports whether an attempt for username from source must not be checked now.
func (t *throttle) held(username, source string) bool {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.current(t.sources, source, now); s != nil && now.Before(s.last.Add(t.wait(s, t.o.SourceFree))) {
		return true
	}
	if until, ok := t.trusted[trustKey{username, source}]; ok && now.Before(until) {
		return false
	}
	s := t.current(t.users, username, now)
	return s != nil && now.Before(s.last.Add(t.wait(s, t.o.UserFree)))
}

// current returns key's strikes, forgetting them when they are old.
func (t *throttle) current(m map[string]*strikes, key string, now time.Time) *strikes {
	s := m[key]
	if s != nil && now.Sub(s.last) >= t.o.Forget {
		delete(m, key)
		return nil
	}
	return s
}

// failed counts a failed authentication (a wrong password or an unknown username).
func (t *throttle) failed(username, source string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.strike(t.users, username, now)
	t.strike(t.sources, source, now)
}

func (t *throttle) strike(m map[string]*strikes, key string, now time.Time) {
	s := t.current(m, key, now)
	if s == nil {
		t.makeRoom(m, now)
		s = &strikes{}
		m[key] = s
	}
	s.n++
	s.last = now
}

// makeRoom keeps a table under MaxEntries: forgotten entries go first, then arbitrary ones (an
// attacker filling the table with names of its own then gains a few free guesses, no more).
func (t *throttle) makeRoom(m map[string]*strikes, now time.Time) {
	if len(m) < t.o.MaxEntries {
		return
	}
	for k, s := range m {
		if now.Sub(s.last) >= t.o.Forget {
			delete(m, k)
		}
	}
	for k := range m {
		if len(m) < t.o.MaxEntries {
			break
		}
		delete(m, k)
	}
}

// succeeded trusts the source for the username. No count is reset: the username's failures keep
// holding back other sources (a busy sender authenticating every few seconds must not give an
// attacker elsewhere fresh free guesses each time), and the source's own failures stand (one valid
// credential must not reset the count of guesses at others).
func (t *throttle) succeeded(username, source string) {
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	k := trustKey{username, source}
	if _, ok := t.trusted[k]; !ok && len(t.trusted) >= t.o.MaxEntries {
		for tk, until := range t.trusted {
			if !now.Before(until) || len(t.trusted) >= t.o.MaxEntries {
				delete(t.trusted, tk)
			}
		}
	}
	t.trusted[k] = now.Add(t.o.Trust)
}

// sourceOf is the throttled source of a request: the peer's IP address (an IPv6 peer's /64, which
// one host usually holds entirely).
func sourceOf(remoteAddr string) string {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	a = a.Unmap()
	if a.Is6() {
		if p, err := a.Prefix(64); err == nil {
			return p.String()
		}
	}
	return a.String()
}
