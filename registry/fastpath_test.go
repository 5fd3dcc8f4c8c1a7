package registry

import (
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
)

// The identity keys have fast paths for the common cases (ASCII and Latin names, eight-digit
// dates): each must return exactly what the general code returns.

func randomText(rng *rand.Rand, pieces []string) string {
	s := ""
	for range rng.IntN(8) {
		s += pieces[rng.IntN(len(pieces))]
	}
	return s
}

var textPieces = []string{"a", "Z", "m", " ", "-", "'", ".", "3", "0", "é", "Ä", "ß", "ø", "Ł", "ǅ", "ɏ", "ɐ", "\u0301", "\u0327",
	"Ω", "日", "\xff", "\xc3", "St", "STREET", "Ave", "north", "Apt", "#", "\t", "ﬁ", "Ǆ", "İ", "K", "ſ"}

func TestMatchFastPaths(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	for range 200000 {
		s := randomText(rng, textPieces)
		if got, want := MatchName(s), matchNameNFD(s); got != want {
			t.Fatalf("MatchName(%q) = %q, want %q", s, got, want)
		}
		if got, want := MatchStreet(s), matchStreetNFD(s); got != want {
			t.Fatalf("MatchStreet(%q) = %q, want %q", s, got, want)
		}
		if got, want := zip5(s), zip5Any(s); got != want {
			t.Fatalf("zip5(%q) = %q, want %q", s, got, want)
		}
	}
	for r := range rune(0x400) {
		s := "x" + string(r) + "Y"
		if got, want := MatchName(s), matchNameNFD(s); got != want {
			t.Fatalf("MatchName(%q) = %q, want %q", s, got, want)
		}
	}
}

func TestParseDateFastPath(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 11))
	digits := []string{"0", "1", "2", "3", "9", "-", "+", " ", "a"}
	for range 300000 {
		s := ""
		for range 8 + rng.IntN(3) {
			s += digits[rng.IntN(len(digits))]
		}
		if rng.IntN(3) == 0 {
			s = time.Date(rng.IntN(3000), time.Month(1+rng.IntN(13)), rng.IntN(33), 0, 0, 0, 0, time.UTC).Format("20060102")
		}
		got := ParseDate(s)
		var want *time.Time
		if ts := trimmed(s); len(ts) >= 8 {
			if w, err := time.Parse("20060102", ts[:8]); err == nil {
				want = &w
			}
		}
		switch {
		case (got == nil) != (want == nil):
			t.Fatalf("ParseDate(%q) = %v, want %v", s, got, want)
		case got != nil && (*got != *want):
			t.Fatalf("ParseDate(%q) = %#v, want %#v", s, *got, *want)
		}
		if got != nil {
			if d := dateOnly(*got); d != got.Format(time.DateOnly) {
				t.Fatalf("dateOnly(%v) = %q", *got, d)
			}
		}
	}
}

func trimmed(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// TestLinkKeyHash: LinkKey is the FNV-1a hash of env|YYYYMMDD|normalised family name.
func TestLinkKeyHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 13))
	for range 20000 {
		family := randomText(rng, textPieces)
		dob := time.Date(1900+rng.IntN(130), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC).Format("20060102")
		switch rng.IntN(6) {
		case 0:
			dob = []string{"20240230", "2024013", "0000101", "00000101", "2024-01-01", " 20240101 ", "20240101123000", "2O240101", "+0240101", ""}[rng.IntN(10)]
		case 1:
			dob += "1200"
		}
		rec := &ingest.Record{Env: []string{"P", "T"}[rng.IntN(2)], Sender: &ingest.Sender{},
			VXU: &ingest.VXU{Patient: ingest.Patient{BirthDate: dob, Names: []ingest.Name{{Family: family, Type: "L"}}}}}
		got, ok := LinkKey(rec)
		m := matchNameNFD(family)
		birth := ParseDate(dob)
		if ok != (m != "" && birth != nil) {
			t.Fatalf("LinkKey(%q, %q): ok %v", family, dob, ok)
		}
		if !ok {
			continue
		}
		h := fnv.New32a()
		h.Write([]byte(rec.Env + "|" + birth.Format("20060102") + "|" + m))
		if want := int32(h.Sum32()); got != want {
			t.Fatalf("LinkKey(%q, %s) = %d, want %d", family, dob, got, want)
		}
	}
}
