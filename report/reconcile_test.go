package report

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func TestParseControlIDs(t *testing.T) {
	in := strings.Join([]string{
		"MSH-10",                 // 1 header
		"CTRL-1",                 // 2
		"  CTRL-2\r",             // 3 CRLF and spaces trimmed
		"",                       // 4 blank
		"# comment",              // 5
		"CTRL-1",                 // 6 duplicate
		"CTRL 3",                 // 7 junk: space
		"MSH|^~\\&|EHR",          // 8 junk: an HL7 segment pasted in
		strings.Repeat("x", 200), // 9 junk: too long for MSH-10
		"bad\x00id",              // 10 junk: control character
		"\xff\xfe",               // 11 junk: not UTF-8
		"CTRL-4",                 // 12 last line without a newline
	}, "\n")
	c, err := ParseControlIDs(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"CTRL-1", "CTRL-2", "CTRL-4"}; !slices.Equal(c.ControlIDs, want) {
		t.Errorf("ids %q, want %q", c.ControlIDs, want)
	}
	if c.Count != 3 || c.Duplicates != 1 {
		t.Errorf("count %d duplicates %d", c.Count, c.Duplicates)
	}
	var lines []int
	for _, j := range c.Junk {
		lines = append(lines, j.Line)
		if j.Reason == "" {
			t.Errorf("junk line %d without a reason", j.Line)
		}
	}
	if want := []int{7, 8, 9, 10, 11}; !slices.Equal(lines, want) {
		t.Errorf("junk lines %v, want %v (%+v)", lines, want, c.Junk)
	}
}

func TestParseControlIDsLongLine(t *testing.T) {
	in := "A\n" + strings.Repeat("y", maxClaimLineBytes+10) + "\nB\n"
	c, err := ParseControlIDs(iotest.OneByteReader(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ControlIDs, []string{"A", "B"}) || len(c.Junk) != 1 || c.Junk[0].Line != 2 {
		t.Fatalf("ids %q junk %+v", c.ControlIDs, c.Junk)
	}
}

func TestParseControlIDsManyJunkLines(t *testing.T) {
	in := strings.Repeat("a b\n", maxJunkReported+5)
	c, err := ParseControlIDs(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Junk) != maxJunkReported+1 || !strings.Contains(c.Junk[maxJunkReported].Reason, "5 more") {
		t.Fatalf("%d junk entries, last %+v", len(c.Junk), c.Junk[len(c.Junk)-1])
	}
}

func TestParseControlIDsReadError(t *testing.T) {
	_, err := ParseControlIDs(iotest.ErrReader(errors.New("disk gone")))
	if err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Fatalf("err = %v", err)
	}
}

func TestClaimOf(t *testing.T) {
	c, err := ClaimOf([]string{"A", "B\nC", "A", "", "D"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.ControlIDs, []string{"A", "D"}) || c.Duplicates != 1 || len(c.Junk) != 1 || c.Junk[0].Line != 2 {
		t.Fatalf("%+v", c)
	}
}

func FuzzParseControlIDs(f *testing.F) {
	f.Add([]byte("CTRL-1\nCTRL-2\r\n# x\nMSH|bad\n"))
	f.Add([]byte("MSH-10\n\xff\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseControlIDs(strings.NewReader(string(data)))
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, id := range c.ControlIDs {
			if id == "" || junkReason(id) != "" || seen[id] {
				t.Fatalf("accepted %q", id)
			}
			seen[id] = true
		}
		if c.Count != int64(len(c.ControlIDs)) {
			t.Fatalf("count %d of %d", c.Count, len(c.ControlIDs))
		}
	})
}
