package soap

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/ingest"
)

// memSenders is an in-memory credential table for the authenticator's unit tests (the handler's
// integration tests use the real store).
type memSenders struct {
	mu    sync.Mutex
	creds map[string]*ingest.SOAPCredential
	err   error
}

func (m *memSenders) SOAPCredential(_ context.Context, username string) (*ingest.SOAPCredential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return nil, m.err
	}
	c, ok := m.creds[username]
	if !ok {
		return nil, ingest.ErrUnknownSender
	}
	cp := *c
	return &cp, nil
}

func (m *memSenders) MLLPSender(context.Context, netip.Addr, string) (*ingest.Sender, error) {
	return nil, ingest.ErrUnknownSender
}

// countingVerify wraps passwd.Verify and counts the verifications, by hash.
type countingVerify struct {
	mu    sync.Mutex
	calls map[string]int
	total int
}

func (c *countingVerify) verify(hash, pw string) (bool, error) {
	c.mu.Lock()
	c.calls[hash]++
	c.total++
	c.mu.Unlock()
	return passwd.Verify(hash, pw)
}

func (c *countingVerify) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

// cheapHash hashes with small parameters: these tests are about the cache, not about argon2.
func cheapHash(t *testing.T, pw string) string {
	t.Helper()
	h, err := passwd.HashWithParams(pw, passwd.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	senders := &memSenders{creds: map[string]*ingest.SOAPCredential{
		"alice": {Username: "alice", PasswordHash: cheapHash(t, "alice-pw"), Sender: ingest.Sender{SiteCode: "A"}},
		"bob":   {Username: "bob", PasswordHash: "not a hash", Sender: ingest.Sender{SiteCode: "B"}},
	}}
	a, err := newAuthenticator(senders, clock, time.Minute, 2, 2, ThrottleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cv := &countingVerify{calls: map[string]int{}}
	a.verify = cv.verify
	a.dummy = cheapHash(t, "dummy")
	a.dummyOnce.Do(func() {})
	ctx := context.Background()

	steps := []struct {
		name        string
		user, pw    string
		advance     time.Duration
		wantReason  string // "" = success
		wantVerify  int    // verifications this step
		wantSite    string
		wantCacheSz int
	}{
		{name: "first success verifies", user: "alice", pw: "alice-pw", wantVerify: 1, wantSite: "A", wantCacheSz: 1},
		{name: "second success is cached", user: "alice", pw: "alice-pw", wantVerify: 0, wantSite: "A", wantCacheSz: 1},
		{name: "wrong password verifies and fails", user: "alice", pw: "nope", wantReason: authWrongPassword, wantVerify: 1, wantCacheSz: 1},
		{name: "unknown user verifies a dummy", user: "mallory", pw: "x", wantReason: authUnknownUser, wantVerify: 1, wantCacheSz: 1},
		{name: "missing password", user: "alice", pw: "", wantReason: authMissing, wantCacheSz: 1},
		{name: "missing username", user: "", pw: "alice-pw", wantReason: authMissing, wantCacheSz: 1},
		{name: "unusable stored hash", user: "bob", pw: "x", wantReason: authBadHash, wantVerify: 1, wantCacheSz: 1},
		{name: "still cached before the TTL", user: "alice", pw: "alice-pw", advance: 59 * time.Second, wantSite: "A", wantCacheSz: 1},
		{name: "expired after the TTL", user: "alice", pw: "alice-pw", advance: time.Second, wantVerify: 1, wantSite: "A", wantCacheSz: 1},
	}
	for _, s := range steps {
		now = now.Add(s.advance)
		before := cv.count()
		cred, err := a.authenticate(ctx, s.user, s.pw, "192.0.2.1")
		var ae *authError
		switch {
		case s.wantReason == "" && err != nil:
			t.Fatalf("%s: %v", s.name, err)
		case s.wantReason == "" && cred.Sender.SiteCode != s.wantSite:
			t.Errorf("%s: site %q; want %q", s.name, cred.Sender.SiteCode, s.wantSite)
		case s.wantReason != "" && (!errors.As(err, &ae) || ae.reason != s.wantReason):
			t.Errorf("%s: err = %v; want auth failure %s", s.name, err, s.wantReason)
		}
		if got := cv.count() - before; got != s.wantVerify {
			t.Errorf("%s: %d verifications; want %d", s.name, got, s.wantVerify)
		}
		if got := a.size(); got != s.wantCacheSz {
			t.Errorf("%s: cache holds %d; want %d", s.name, got, s.wantCacheSz)
		}
	}

	// A password change invalidates the cached verification at once.
	senders.mu.Lock()
	senders.creds["alice"].PasswordHash = cheapHash(t, "new-pw")
	senders.mu.Unlock()
	if _, err := a.authenticate(ctx, "alice", "alice-pw", "192.0.2.1"); err == nil {
		t.Fatal("old password accepted after a password change")
	}
	if _, err := a.authenticate(ctx, "alice", "new-pw", "192.0.2.1"); err != nil {
		t.Fatalf("new password: %v", err)
	}

	// A revoked credential is refused at once, cached or not.
	senders.mu.Lock()
	delete(senders.creds, "alice")
	senders.mu.Unlock()
	var ae *authError
	if _, err := a.authenticate(ctx, "alice", "new-pw", "192.0.2.1"); !errors.As(err, &ae) || ae.reason != authUnknownUser {
		t.Fatalf("revoked credential: %v", err)
	}

	// The cache is bounded.
	for _, u := range []string{"u1", "u2", "u3", "u4"} {
		senders.mu.Lock()
		senders.creds[u] = &ingest.SOAPCredential{Username: u, PasswordHash: cheapHash(t, u)}
		senders.mu.Unlock()
		if _, err := a.authenticate(ctx, u, u, "192.0.2.1"); err != nil {
			t.Fatal(err)
		}
		if a.size() > 2 {
			t.Fatalf("cache holds %d entries; bound is 2", a.size())
		}
	}

	// A store failure is an internal error, not an authentication failure.
	senders.mu.Lock()
	senders.err = errors.New("connection refused")
	senders.mu.Unlock()
	if _, err := a.authenticate(ctx, "u4", "u4", "192.0.2.1"); err == nil || errors.As(err, &ae) {
		t.Fatalf("store failure = %v; want an internal error", err)
	}
}

// Concurrent verifications are bounded, and a cancelled request stops waiting for a slot.
func TestAuthenticateConcurrencyBound(t *testing.T) {
	senders := &memSenders{creds: map[string]*ingest.SOAPCredential{
		"alice": {Username: "alice", PasswordHash: cheapHash(t, "pw")},
	}}
	a, err := newAuthenticator(senders, time.Now, -1, 10, 1, ThrottleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	started := make(chan struct{}, 4)
	var mu sync.Mutex
	inFlight, most := 0, 0
	a.verify = func(hash, pw string) (bool, error) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		started <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return passwd.Verify(hash, pw)
	}
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if _, err := a.authenticate(context.Background(), "alice", "pw", "192.0.2.1"); err != nil {
				t.Error(err)
			}
		})
	}
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := a.authenticate(ctx, "alice", "pw", "192.0.2.1"); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	close(release)
	wg.Wait()
	if most != 1 {
		t.Errorf("%d verifications ran at once; bound is 1", most)
	}
}
