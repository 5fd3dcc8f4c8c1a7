package main

import (
	"bytes"
	"strings"
	"testing"
)

// A mistyped command line answers one line on stderr and exit status 2, never help and 0.
func TestUsageErrorsExit2WithOneLine(t *testing.T) {
	for _, args := range [][]string{
		{"bogus"},
		{"admin", "user", "add"},
		{"admin", "bogus"},
		{"codes", "bogus"},
		{"send", "--bogus"},
		{"admin", "user", "list", "--bogus"},
		{"migrate", "extra-argument"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if code != 2 || len(lines) != 1 || !strings.HasPrefix(lines[0], "vaxgate: ") || out.Len() != 0 {
			t.Errorf("vaxgate %s: exit %d, stdout %q, stderr %q; want exit 2 and one line on stderr",
				strings.Join(args, " "), code, out.String(), errb.String())
		}
	}
	// A command group alone still shows its help, successfully.
	var out, errb bytes.Buffer
	if code := run([]string{"admin", "user"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Available Commands") {
		t.Errorf("vaxgate admin user: exit %d, output %q", code, out.String())
	}
}
