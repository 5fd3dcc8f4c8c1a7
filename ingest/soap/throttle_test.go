package soap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
)

// fakeClock is a settable clock for the throttle's waits.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func throttleFixture(t *testing.T) (*authenticator, *fakeClock, *countingVerify) {
	t.Helper()
	clock := &fakeClock{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	senders := &memSenders{creds: map[string]*ingest.SOAPCredential{
		"alice": {Username: "alice", PasswordHash: cheapHash(t, "alice-pw"), Sender: ingest.Sender{SiteCode: "A"}},
		"bob":   {Username: "bob", PasswordHash: cheapHash(t, "bob-pw"), Sender: ingest.Sender{SiteCode: "B"}},
	}}
	// No cache: every accepted attempt is a verification, which the test counts.
	a, err := newAuthenticator(senders, clock.Now, -1, 10, 2, ThrottleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cv := &countingVerify{calls: map[string]int{}}
	a.verify = cv.verify
	a.dummy = cheapHash(t, "dummy")
	a.dummyOnce.Do(func() {})
	return a, clock, cv
}

func reasonOf(err error) string {
	var ae *authError
	if errors.As(err, &ae) {
		return ae.reason
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

// Twenty wrong passwords, then the right one: it does not work at once (it did before the
// throttle). The waits grow with each failure, are capped, and end: no permanent lock.
func TestThrottleGuessingAUsername(t *testing.T) {
	a, clock, cv := throttleFixture(t)
	ctx := context.Background()
	const attacker = "198.51.100.7"
	for i := range 20 {
		_, err := a.authenticate(ctx, "alice", fmt.Sprintf("guess-%d", i), attacker)
		if r := reasonOf(err); r != authWrongPassword && r != authThrottled {
			t.Fatalf("guess %d: %s", i, r)
		}
	}
	// Guesses made while held back are not even verified: only the 5 free ones were (no time
	// passed, so the first wait never ended).
	if n := cv.count(); n != 5 {
		t.Errorf("%d verifications for 20 immediate guesses; want 5 (the rest were held back)", n)
	}
	if _, err := a.authenticate(ctx, "alice", "alice-pw", attacker); reasonOf(err) != authThrottled {
		t.Fatalf("right password right after 20 wrong ones: %q; want it held back (%s)", reasonOf(err), authThrottled)
	}

	// The waits double: after 5 failures 1 s, then 2 s, 4 s...
	clock.Advance(1100 * time.Millisecond)
	if _, err := a.authenticate(ctx, "alice", "guess-x", attacker); reasonOf(err) != authWrongPassword {
		t.Fatalf("after the first wait: %q; want the guess checked", reasonOf(err))
	}
	clock.Advance(1100 * time.Millisecond) // 6 failures: 2 s
	if _, err := a.authenticate(ctx, "alice", "alice-pw", attacker); reasonOf(err) != authThrottled {
		t.Errorf("1.1 s into a 2 s wait: %q; want held back", reasonOf(err))
	}
	// The wait is capped (2 minutes) whatever the count: no permanent lock.
	for range 30 {
		clock.Advance(3 * time.Minute)
		if _, err := a.authenticate(ctx, "alice", "guess-y", attacker); reasonOf(err) != authWrongPassword {
			t.Fatalf("after more than the longest wait: %q; want the guess checked", reasonOf(err))
		}
	}
	clock.Advance(2*time.Minute + time.Second)
	if _, err := a.authenticate(ctx, "alice", "alice-pw", attacker); err != nil {
		t.Fatalf("right password after the longest wait: %q", reasonOf(err))
	}
	// A source that got it right is trusted for the username from then on: a typo is checked.
	if _, err := a.authenticate(ctx, "alice", "wrong", attacker); reasonOf(err) != authWrongPassword {
		t.Errorf("after a success: %q", reasonOf(err))
	}
	// But the source's own count (37 failures) still holds it back after that failure: trust
	// exempts it from the username's waits only.
	if _, err := a.authenticate(ctx, "alice", "alice-pw", attacker); reasonOf(err) != authThrottled {
		t.Errorf("a source with 37 failures right after another: %q; want held back", reasonOf(err))
	}
}

// Someone guessing a sender's password from elsewhere does not lock the sender out: a source that
// authenticated the username recently is not held back by the username's failures. A new source
// is.
func TestThrottleSparesTheSendersOwnSource(t *testing.T) {
	a, _, _ := throttleFixture(t)
	ctx := context.Background()
	const ehr, attacker, newcomer = "203.0.113.10", "198.51.100.7", "203.0.113.99"
	if _, err := a.authenticate(ctx, "alice", "alice-pw", ehr); err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		_, _ = a.authenticate(ctx, "alice", fmt.Sprintf("guess-%d", i), attacker)
	}
	if _, err := a.authenticate(ctx, "alice", "alice-pw", ehr); err != nil {
		t.Errorf("the sender's own source after an attack from elsewhere: %q; want accepted", reasonOf(err))
	}
	if _, err := a.authenticate(ctx, "alice", "alice-pw", newcomer); reasonOf(err) != authThrottled {
		t.Errorf("a new source for an attacked username: %q; want held back", reasonOf(err))
	}
}

// One source guessing many usernames (or probing which exist) is held back on its own count, even
// for a credential it has right; other sources are not affected.
func TestThrottleGuessingFromOneSource(t *testing.T) {
	a, clock, _ := throttleFixture(t)
	ctx := context.Background()
	const scanner, other = "198.51.100.7", "192.0.2.44"
	for i := range 20 {
		if _, err := a.authenticate(ctx, fmt.Sprintf("user-%d", i), "pw", scanner); reasonOf(err) != authUnknownUser {
			t.Fatalf("probe %d: %q", i, reasonOf(err))
		}
	}
	if _, err := a.authenticate(ctx, "bob", "bob-pw", scanner); reasonOf(err) != authThrottled {
		t.Errorf("after 20 failures from one source: %q; want held back", reasonOf(err))
	}
	if _, err := a.authenticate(ctx, "bob", "bob-pw", other); err != nil {
		t.Errorf("another source: %q; want accepted", reasonOf(err))
	}
	clock.Advance(15*time.Minute + time.Second) // failures forgotten after a quiet period
	if _, err := a.authenticate(ctx, "bob", "bob-pw", scanner); err != nil {
		t.Errorf("after the quiet period: %q; want accepted", reasonOf(err))
	}
}

// The tables stay bounded whatever is tried.
func TestThrottleBounded(t *testing.T) {
	th := newThrottle(ThrottleOptions{MaxEntries: 100}, time.Now)
	for i := range 1000 {
		th.failed(fmt.Sprintf("u%d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		th.succeeded(fmt.Sprintf("v%d", i), "10.9.9.9")
	}
	if len(th.users) > 100 || len(th.sources) > 100 || len(th.trusted) > 100 {
		t.Errorf("tables grew to %d users, %d sources, %d trusted; want at most 100 each", len(th.users), len(th.sources), len(th.trusted))
	}
}

func TestSourceOf(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:5555":                "192.0.2.1",
		"[::ffff:192.0.2.1]:80":         "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443":    "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443":    "2001:db8:1:2::/64",
		"not an address":                "not an address",
		"[2001:db8:1:3::1%eth0]:1":      "2001:db8:1:3::/64",
		"@":                             "@",
		"192.0.2.1":                     "192.0.2.1",
		"[fe80::1]:1":                   "fe80::/64",
		"127.0.0.1:1":                   "127.0.0.1",
		"[2001:db8::]:1":                "2001:db8::/64",
		"[::1]:2":                       "::/64",
		"[2001:db8:aaaa:bbbb::]:1":      "2001:db8:aaaa:bbbb::/64",
		"[2001:db8:aaaa:bbbb:1::]:1234": "2001:db8:aaaa:bbbb::/64",
	} {
		if got := sourceOf(in); got != want {
			t.Errorf("sourceOf(%q) = %q; want %q", in, got, want)
		}
	}
}

// Over HTTP, a held-back attempt with the right password is answered exactly like a wrong
// password: the same SecurityFault, byte for byte.
func TestThrottledAnswerIsAWrongPasswordAnswer(t *testing.T) {
	clock := &fakeClock{now: time.Date(2025, 1, 1, 12, 0, 0, 0, time.UTC)}
	senders := &memSenders{creds: map[string]*ingest.SOAPCredential{
		"u": {Username: "u", PasswordHash: cheapHash(t, "right-pw"), FacilityID: "F",
			Sender: ingest.Sender{CredentialID: 7, SiteCode: "S", Facilities: []string{"F"}}},
	}}
	h, err := NewHandler(Options{Submitter: &recordingSubmitter{}, Senders: senders, Clock: clock.Now, AuthCacheTTL: -1})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	post := func(pw string) (*http.Response, []byte) {
		resp, err := srv.Client().Post(srv.URL, ct12, strings.NewReader(submission{user: "u", pass: pw, facility: "F", payload: escape(vxu("T-1", "F"))}.String()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp, out
	}
	var wrong []byte
	for i := range 20 {
		resp, out := post(fmt.Sprintf("guess-%d", i))
		checkFault(t, resp, out, faultWant{400, "application/soap+xml", "Sender", "SecurityFault", "60"})
		if i == 0 {
			wrong = out
		}
	}
	resp, out := post("right-pw")
	checkFault(t, resp, out, faultWant{400, "application/soap+xml", "Sender", "SecurityFault", "60"})
	if !bytes.Equal(out, wrong) {
		t.Errorf("held-back answer differs from a wrong password's:\n%s\n%s", out, wrong)
	}
	clock.Advance(2*time.Minute + time.Second)
	resp, out = post("right-pw")
	if r, err := decodeResponse(out); err != nil || resp.StatusCode != 200 || r.Fault {
		t.Errorf("after the wait: %d %v\n%s", resp.StatusCode, err, out)
	}
}
