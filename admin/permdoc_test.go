package admin

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/permissions.md from the code")

// TestPermissionsDoc fails when docs/permissions.md is not what the code says (go generate ./admin
// rewrites it).
func TestPermissionsDoc(t *testing.T) {
	path := filepath.Join("..", "docs", "permissions.md")
	want := PermissionsMarkdown()
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v: run go generate ./admin", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) || i < len(wl); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("docs/permissions.md is stale (go generate ./admin): line %d is\n%s\nwant\n%s", i+1, g, w)
			}
		}
	}
	// The document names every action, role, designation and rule.
	for _, a := range Actions {
		if !bytes.Contains(want, []byte("`"+string(a)+"`")) {
			t.Errorf("action %s is not in the document", a)
		}
		if actionPhrase[a] == "" {
			t.Errorf("action %s has no phrase", a)
		}
	}
	for _, r := range Roles {
		if !bytes.Contains(want, []byte(r.Label())) {
			t.Errorf("role %s is not in the document", r)
		}
	}
	for _, d := range Designations {
		if !bytes.Contains(want, []byte(d.Label())) {
			t.Errorf("designation %s is not in the document", d)
		}
	}
	if len(ruleDocs) != 20 {
		t.Errorf("%d rules documented: a rule was added or removed without its explanation", len(ruleDocs))
	}
}
