package validate

import "testing"

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
