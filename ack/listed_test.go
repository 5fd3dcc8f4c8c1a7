package ack

import (
	"math/rand/v2"
	"reflect"
	"testing"
)

// listedByCopy is Listed as it is specified: errors, then warnings, then information, each in
// message order, at most max (all when max <= 0).
func listedByCopy(findings []Finding, max int) ([]Finding, int) {
	if max <= 0 || max > len(findings) {
		max = len(findings)
	}
	var out []Finding
	for _, sev := range []Severity{Error, Warning, Information} {
		for _, f := range findings {
			if f.Severity == sev && len(out) < max {
				out = append(out, f)
			}
		}
	}
	return out, len(findings) - len(out)
}

// Listed lists what its specification says, whether or not it can return the findings
// themselves; when it does (they are in order already), the result cannot be appended to over
// the findings that follow it.
func TestListedWithoutCopy(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sevs := []Severity{Error, Warning, Information}
	aliased := 0
	for i := range 5000 {
		n := rng.IntN(8)
		fs := make([]Finding, n)
		for j := range fs {
			fs[j] = Finding{Severity: sevs[rng.IntN(3)], Rule: string(rune('a' + j))}
		}
		if i%3 == 0 { // in order already, as most messages' findings are
			want, _ := listedByCopy(fs, 0)
			fs = append([]Finding(nil), want...)
		}
		max := rng.IntN(n+2) - 1
		got, omitted := Listed(fs, max)
		want, wantOmitted := listedByCopy(fs, max)
		if len(want) == 0 {
			want = nil
		}
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, want) || omitted != wantOmitted {
			t.Fatalf("Listed(%v, %d) = %v, %d; want %v, %d", fs, max, got, omitted, want, wantOmitted)
		}
		if len(got) > 0 && &got[0] == &fs[0] {
			aliased++
			if cap(got) != len(got) {
				t.Fatalf("Listed returned the findings themselves with room to append over the rest: len %d cap %d", len(got), cap(got))
			}
		}
	}
	if aliased == 0 {
		t.Error("Listed copied findings that were in order already")
	}
}
