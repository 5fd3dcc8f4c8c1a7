package admin

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Guessing passwords is slowed down, not turned into a lock an attacker can put on someone else:
//
//   - per username (whether or not the account exists, so that the answer tells nothing): after
//     3 failures in a row, each next attempt must wait 1 s, 2 s, 4 s … up to 1 minute;
//   - per source address (IPv6: its /64): after 10 failures, 1 s, 2 s … up to 15 minutes;
//   - per username and source: after LockoutThreshold failures that source may not log in to that
//     account for LockDuration, even with the right password, and is answered exactly as for a
//     wrong password. Other sources — the account's owner at their desk — are not locked out.
//
// An attempt made before its wait is over is answered 429 with Retry-After, without looking at the
// password or the account. Failures are forgotten after a quiet period; a successful login clears
// the username's and the pair's counts. The account's Locked flag (threshold failures in a row,
// kept in the database) is shown to administrators, never to the login caller; unlocking clears
// it and this process's counts for the username.
//
// The counts are kept in memory, per process, with a bounded number of entries.

type throttlePolicy struct {
	free   int           // failures allowed without delay
	base   time.Duration // first delay
	max    time.Duration // delay cap
	forget time.Duration // failures older than this are forgotten
}

var (
	usernamePolicy = throttlePolicy{free: 3, base: time.Second, max: time.Minute, forget: 30 * time.Minute}
	sourcePolicy   = throttlePolicy{free: 10, base: time.Second, max: 15 * time.Minute, forget: time.Hour}
)

// maxThrottleEntries bounds each of the throttle's tables.
const maxThrottleEntries = 100_000

type attempts struct {
	failures int
	last     time.Time // last failure
	until    time.Time // no attempt before this
}

type loginThrottle struct {
	mu                    sync.Mutex
	users, sources, pairs map[string]*attempts
	lockAfter             int
	lockFor               time.Duration
}

func newLoginThrottle(lockAfter int, lockFor time.Duration) *loginThrottle {
	return &loginThrottle{users: map[string]*attempts{}, sources: map[string]*attempts{}, pairs: map[string]*attempts{},
		lockAfter: lockAfter, lockFor: lockFor}
}

// usernameKey is how the throttle compares usernames: as the store does (foldUsername).
func usernameKey(u string) string { return foldUsername(strings.TrimSpace(u)) }

// sourceKey is the throttled unit of a client address: the address, or its /64 for IPv6.
func sourceKey(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		if ap, err2 := netip.ParseAddrPort(addr); err2 == nil {
			a, err = ap.Addr(), nil
		}
	}
	if err != nil {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

func (p throttlePolicy) delay(failures int) time.Duration {
	n := failures - p.free
	if n <= 0 {
		return 0
	}
	d := p.base
	for i := 1; i < n && d < p.max; i++ {
		d *= 2
	}
	return min(d, p.max)
}

func (t *loginThrottle) current(m map[string]*attempts, key string, forget time.Duration, now time.Time) *attempts {
	e := m[key]
	if e != nil && now.Sub(e.last) > forget {
		delete(m, key)
		return nil
	}
	return e
}

// wait returns how long the attempt must still wait (0: go ahead).
func (t *loginThrottle) wait(user, source string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var w time.Duration
	if e := t.current(t.users, user, usernamePolicy.forget, now); e != nil && e.until.After(now) {
		w = e.until.Sub(now)
	}
	if e := t.current(t.sources, source, sourcePolicy.forget, now); e != nil && e.until.After(now) {
		w = max(w, e.until.Sub(now))
	}
	return w
}

// pairLocked reports whether this source is locked out of this username.
func (t *loginThrottle) pairLocked(user, source string, now time.Time) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.current(t.pairs, user+"\x00"+source, t.lockFor, now)
	return e != nil && e.failures >= t.lockAfter
}

func (t *loginThrottle) bump(m map[string]*attempts, key string, p throttlePolicy, now time.Time) {
	e := t.current(m, key, p.forget, now)
	if e == nil {
		if len(m) >= maxThrottleEntries {
			t.sweep(m, p.forget, now)
		}
		e = &attempts{}
		m[key] = e
	}
	e.failures++
	e.last = now
	e.until = now.Add(p.delay(e.failures))
}

// sweep drops forgotten entries; when none is, an arbitrary half goes (bounded memory wins
// over perfect memory).
func (t *loginThrottle) sweep(m map[string]*attempts, forget time.Duration, now time.Time) {
	for k, e := range m {
		if now.Sub(e.last) > forget {
			delete(m, k)
		}
	}
	if len(m) < maxThrottleEntries {
		return
	}
	n := 0
	for k := range m {
		if n%2 == 0 {
			delete(m, k)
		}
		n++
	}
}

// fail counts a failed attempt.
func (t *loginThrottle) fail(user, source string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bump(t.users, user, usernamePolicy, now)
	t.bump(t.sources, source, sourcePolicy, now)
	t.bump(t.pairs, user+"\x00"+source, throttlePolicy{free: 1 << 30, forget: t.lockFor}, now)
}

// succeed clears the username's and the pair's counts.
func (t *loginThrottle) succeed(user, source string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.users, user)
	delete(t.pairs, user+"\x00"+source)
}

// forgetUser clears every count of the username (an administrator unlocked the account).
func (t *loginThrottle) forgetUser(user string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.users, user)
	prefix := user + "\x00"
	for k := range t.pairs {
		if strings.HasPrefix(k, prefix) {
			delete(t.pairs, k)
		}
	}
}
