package passwd

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("Correct-Horse-9battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with the default parameters", h)
	}
	h2, err := Hash("Correct-Horse-9battery")
	if err != nil {
		t.Fatal(err)
	}
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	tests := []struct {
		pw   string
		want bool
	}{
		{"Correct-Horse-9battery", true},
		{"correct-horse-9battery", false}, // case sensitive
		{"Correct-Horse-9batter", false},
		{"", false},
	}
	for _, tc := range tests {
		got, err := Verify(h, tc.pw)
		if err != nil {
			t.Fatalf("Verify(%q): %v", tc.pw, err)
		}
		if got != tc.want {
			t.Errorf("Verify(%q) = %v, want %v", tc.pw, got, tc.want)
		}
	}
	if NeedsRehash(h) {
		t.Error("NeedsRehash of a default hash = true")
	}
}

func TestVerifyOtherParams(t *testing.T) {
	p := Params{Memory: 64, Time: 1, Threads: 2, SaltLen: 8, KeyLen: 16}
	h, err := HashWithParams("x", p)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := Verify(h, "x")
	if err != nil || !ok {
		t.Fatalf("Verify = %v, %v", ok, err)
	}
	if !NeedsRehash(h) {
		t.Error("NeedsRehash of a non-default hash = false")
	}
}

func TestVerifyMalformed(t *testing.T) {
	good, err := HashWithParams("x", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$")
	for _, h := range []string{
		"",
		"plain",
		"$argon2i$v=19$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=18$m=64,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=99999999,t=1,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=0,p=1$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1,x=2$" + parts[4] + "$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$short",
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4],
	} {
		if _, err := Verify(h, "x"); !errors.Is(err, ErrMalformed) {
			t.Errorf("Verify(%q) error = %v, want ErrMalformed", h, err)
		}
	}
}

func FuzzVerify(f *testing.F) {
	f.Add("$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5")
	f.Fuzz(func(t *testing.T, h string) {
		_, _ = Verify(h, "pw") // must not panic nor allocate without bound
	})
}
