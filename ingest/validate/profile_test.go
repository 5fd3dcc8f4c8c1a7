package validate

import (
	"bytes"
	"strings"
	"testing"
)

// TestSegByBytes: the hash table finds exactly the definitions a comparison with every
// definition's name finds, for every name of capital letters and digits and for some other bytes.
func TestSegByBytes(t *testing.T) {
	linear := func(raw []byte) segRef {
		for i := range z22Segments {
			if z22Segments[i].name == string(raw[:3]) {
				return segRef(i)
			}
		}
		return -1
	}
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\x00\xffaz|"
	found := 0
	for _, a := range []byte(chars) {
		for _, b := range []byte(chars) {
			for _, c := range []byte(chars) {
				raw := []byte{a, b, c, '|'}
				got, want := segByBytes(raw), linear(raw)
				if got != want {
					t.Fatalf("segByBytes(%q) = %d, want %d", raw, got, want)
				}
				if got >= 0 {
					found++
					if segByName(string(raw[:3])) != got {
						t.Fatalf("segByName(%q) = %d, want %d", raw[:3], segByName(string(raw[:3])), got)
					}
				}
			}
		}
	}
	if found != len(z22Segments) {
		t.Fatalf("found %d definitions, want all %d", found, len(z22Segments))
	}
	if segByBytes([]byte("PI")) != -1 || segByName("PIDX") != -1 || segByName("") != -1 {
		t.Fatal("a name that is not three bytes long was found")
	}
}

// TestValueSetHas: a value set's look-up (packed codes for short ones) finds exactly its codes,
// for every value set, on its codes and on near misses (prefixes, extensions, one byte changed,
// other cases).
func TestValueSetHas(t *testing.T) {
	sets := []*valueSet{&usStates, &routes162}
	for i := range z22ValueSets {
		sets = append(sets, &z22ValueSets[i])
	}
	packed := 0
	for _, vs := range sets {
		if vs.packed != nil {
			packed++
		}
		ref := func(code []byte) bool {
			for _, c := range vs.codes {
				if c == string(code) {
					return true
				}
			}
			return false
		}
		var probes [][]byte
		probes = append(probes, nil, []byte{}, []byte("X"), []byte("ZZZZZZZZ"))
		for _, c := range vs.codes {
			b := []byte(c)
			probes = append(probes, b, append(b[:len(b):len(b)], 'A'), []byte(strings.ToLower(c)))
			if len(b) > 0 {
				probes = append(probes, b[:len(b)-1], b[1:])
				for k := range b {
					x := append([]byte(nil), b...)
					x[k]++
					probes = append(probes, x)
				}
			}
		}
		for _, p := range probes {
			if got, want := vs.has(p), ref(p); got != want {
				t.Fatalf("%s: has(%q) = %v, want %v", vs.id, p, got, want)
			}
		}
	}
	if packed < len(sets)/2 {
		t.Fatalf("only %d of %d value sets packed", packed, len(sets))
	}
}

// TestIsPlaceholderName: the first-byte test of isPlaceholderName says no only where comparing
// the trimmed, upper-cased name with every placeholder says no.
func TestIsPlaceholderName(t *testing.T) {
	ref := func(v []byte) bool {
		if len(v) > 32 {
			return false
		}
		var u []byte
		for _, c := range bytes.TrimSpace(v) {
			u = append(u, upperASCII(c))
		}
		for _, p := range placeholderNames {
			if bytes.Equal(u, p) {
				return true
			}
		}
		return false
	}
	var probes [][]byte
	for _, p := range placeholderNames {
		for _, pre := range []string{"", " ", "\t", "\u00a0", "\u0085", "  \r"} {
			for _, suf := range []string{"", " ", "\u00a0", "X"} {
				probes = append(probes, []byte(pre+string(p)+suf), []byte(pre+strings.ToLower(string(p))+suf))
			}
		}
	}
	for c := range 256 {
		probes = append(probes, []byte{byte(c)}, []byte{byte(c), 'A', 'B', 'Y'}, append([]byte{byte(c)}, "OY"...))
	}
	probes = append(probes, []byte("Doe"), []byte("Søren"), []byte("Ñame"), []byte(""))
	for _, p := range probes {
		if got, want := isPlaceholderName(p), ref(p); got != want {
			t.Fatalf("isPlaceholderName(%q) = %v, want %v", p, got, want)
		}
	}
}
