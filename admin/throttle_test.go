package admin

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestThrottleDelays(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 12; n++ {
		got = append(got, usernamePolicy.delay(n))
	}
	want := []time.Duration{0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second,
		32 * time.Second, time.Minute, time.Minute, time.Minute}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays = %v, want %v", got, want)
		}
	}
	if d := sourcePolicy.delay(1000); d != sourcePolicy.max {
		t.Fatalf("source delay after 1000 failures = %s", d)
	}
}

func TestThrottleBoundedAndForgetful(t *testing.T) {
	th := newLoginThrottle(5, 15*time.Minute)
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range maxThrottleEntries + 10 {
		th.fail("user"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+itoa(i), "192.0.2.1", now)
	}
	if len(th.users) > maxThrottleEntries || len(th.pairs) > maxThrottleEntries {
		t.Fatalf("throttle grew to %d users, %d pairs", len(th.users), len(th.pairs))
	}
	// Failures are forgotten after the quiet period.
	th2 := newLoginThrottle(5, 15*time.Minute)
	for range 6 {
		th2.fail("jsmith", "192.0.2.9", now)
	}
	if th2.wait("jsmith", "192.0.2.9", now) == 0 || !th2.pairLocked("jsmith", "192.0.2.9", now) {
		t.Fatal("six failures neither throttle nor lock the pair")
	}
	later := now.Add(2 * time.Hour)
	if th2.wait("jsmith", "192.0.2.9", later) != 0 || th2.pairLocked("jsmith", "192.0.2.9", later) {
		t.Fatal("failures not forgotten after two hours")
	}
}

func itoa(i int) string {
	b := []byte{}
	for {
		b = append([]byte{byte('0' + i%10)}, b...)
		i /= 10
		if i == 0 {
			return string(b)
		}
	}
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":             "192.0.2.7",
		"192.0.2.7:5555":        "192.0.2.7",
		"::ffff:192.0.2.7":      "192.0.2.7",
		"2001:db8:1:2:3:4:5:6":  "2001:db8:1:2::/64",
		"[2001:db8:1:2::9]:443": "2001:db8:1:2::/64",
		"":                      "unknown",
		"not an address":        "unknown",
	} {
		if got := sourceKey(in); got != want {
			t.Errorf("sourceKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzSourceKey: any client address string gives a key that is an address, a /64 or "unknown".
func FuzzSourceKey(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "[::1]:80", "2001:db8::1", "", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := sourceKey(s)
		if k == "unknown" {
			return
		}
		if _, err := netip.ParseAddr(k); err == nil {
			return
		}
		if p, err := netip.ParsePrefix(k); err == nil && p.Bits() == 64 {
			return
		}
		t.Fatalf("sourceKey(%q) = %q", s, k)
	})
}

// FuzzCheckUsername: no input panics, and what is accepted keeps the rules.
func FuzzCheckUsername(f *testing.F) {
	for _, s := range []string{"jsmith", "clinic.staff", "Ad-Min", "j.doe@clinic.example", "nurse2", "ab", "ÿadmin"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, u string) {
		if CheckUsername(u) != nil {
			return
		}
		if len(u) < 3 || len(u) > 64 {
			t.Fatalf("%q accepted with length %d", u, len(u))
		}
		if strings.Contains(strings.ReplaceAll(foldUsername(u), "@", ""), "admin") {
			t.Fatalf("%q accepted but contains admin", u)
		}
		letters := strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
				return r | 0x20
			}
			return -1
		}, u)
		if onlyGeneric(letters) {
			t.Fatalf("%q accepted but generic", u)
		}
	})
}
