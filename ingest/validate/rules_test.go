package validate

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest/codes"
)

// The rule fixtures: testdata/rules/<family>.txt hold, for every rule of the catalogue, a failing
// and a passing example written as edits of testdata/base.hl7 (a conformant VXU with no findings),
// and the exact findings of that rule the failing example produces.
//
//	rule rxa-3-missing                 the rule under test
//	fail RXA-3=                        edits making the failing message (one per line, in order)
//	pass RXA-3=20240110                edits making the passing message ("pass base": base as is)
//	want E RXA^1^3^1^0^0 g1 RXA-3 ...  a finding of the rule on the failing message, formatted
//	                                   as fmtFinding does; the list must match exactly
//
// Edits: "SEG[#n]-F=value" sets field F (HL7 numbering) of the n-th SEG, "SEG[#n]-F.C=value"
// sets component C of its first repetition; "del SEG[#n]" deletes a segment; "add SEG[#n] text"
// inserts the segment text after it, "ins SEG[#n] text" before it, "add end text" at the end;
// "base file" starts from another file of testdata instead; "codes pending" validates with the
// CDC code sets plus a CVX 899 in status Pending (the CDC tables have none today).
//
// In edits, "{0xHH}" stands for the byte HH (NUL, Latin-1, ...), "{repeat N text}" for text N
// times, and the edit "many N text" appends N copies of the segment text at the end.
//
// go test -run TestRuleFixtures -update rewrites the want lines from what the validator finds.

var update = flag.Bool("update", false, "rewrite the want lines of testdata/rules from the findings")

type ruleCase struct {
	rule       string
	fail, pass []string
	want       []string
	line       int
}

func readRuleCases(t *testing.T, path string) ([]ruleCase, []string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	var cases []ruleCase
	var cur *ruleCase
	for n, l := range lines {
		word, rest, _ := strings.Cut(l, " ")
		switch word {
		case "rule":
			cases = append(cases, ruleCase{rule: rest, line: n + 1})
			cur = &cases[len(cases)-1]
		case "fail", "pass", "want":
			if cur == nil {
				t.Fatalf("%s:%d: %s before rule", path, n+1, word)
			}
			switch word {
			case "fail":
				cur.fail = append(cur.fail, rest)
			case "pass":
				cur.pass = append(cur.pass, rest)
			case "want":
				cur.want = append(cur.want, rest)
			}
		case "", "#":
		default:
			if !strings.HasPrefix(l, "#") {
				t.Fatalf("%s:%d: unknown line %q", path, n+1, l)
			}
		}
	}
	return cases, lines
}

// applyEdits builds a fixture message from testdata/base.hl7 and edits.
func applyEdits(t *testing.T, edits []string) []byte {
	t.Helper()
	base := "base.hl7"
	for _, e := range edits {
		if f, ok := strings.CutPrefix(e, "base "); ok {
			base = f
		}
	}
	data, err := os.ReadFile(filepath.Join("testdata", base))
	if err != nil {
		t.Fatal(err)
	}
	segs := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	find := func(ref string) int {
		name, occ := ref, 1
		if a, b, ok := strings.Cut(ref, "#"); ok {
			name = a
			occ, err = strconv.Atoi(b)
			if err != nil {
				t.Fatalf("edit %q: bad occurrence", ref)
			}
		}
		for i, s := range segs {
			if strings.HasPrefix(s, name+"|") || s == name {
				occ--
				if occ == 0 {
					return i
				}
			}
		}
		t.Fatalf("edit: no segment %q", ref)
		return -1
	}
	for _, e := range edits {
		if e == "base" || strings.HasPrefix(e, "base ") || strings.HasPrefix(e, "codes ") {
			continue
		}
		verb, rest, _ := strings.Cut(e, " ")
		switch verb {
		case "many":
			ns, text, _ := strings.Cut(rest, " ")
			n, err := strconv.Atoi(ns)
			if err != nil {
				t.Fatalf("edit %q: bad count", e)
			}
			for range n {
				segs = append(segs, text)
			}
			continue
		case "del":
			i := find(rest)
			segs = append(segs[:i], segs[i+1:]...)
			continue
		case "add", "ins":
			ref, text, _ := strings.Cut(rest, " ")
			i := len(segs)
			if ref != "end" {
				i = find(ref)
				if verb == "add" {
					i++
				}
			}
			segs = append(segs[:i], append([]string{text}, segs[i:]...)...)
			continue
		}
		path, value, ok := strings.Cut(e, "=")
		if !ok {
			t.Fatalf("edit %q: want SEG-F=value", e)
		}
		ref, pos, _ := strings.Cut(path, "-")
		fs, cs, hasComp := strings.Cut(pos, ".")
		field, err := strconv.Atoi(fs)
		if err != nil {
			t.Fatalf("edit %q: bad field", e)
		}
		i := find(ref)
		parts := strings.Split(segs[i], "|")
		idx := field
		if parts[0] == "MSH" {
			idx = field - 1
		}
		for len(parts) <= idx {
			parts = append(parts, "")
		}
		if hasComp {
			comp, err := strconv.Atoi(cs)
			if err != nil {
				t.Fatalf("edit %q: bad component", e)
			}
			reps := strings.Split(parts[idx], "~")
			comps := strings.Split(reps[0], "^")
			for len(comps) < comp {
				comps = append(comps, "")
			}
			comps[comp-1] = value
			reps[0] = strings.Join(comps, "^")
			parts[idx] = strings.Join(reps, "~")
		} else {
			parts[idx] = value
		}
		segs[i] = strings.Join(parts, "|")
	}
	return expandEdits(t, strings.Join(segs, "\n")+"\n")
}

// expandEdits replaces {0xHH} by byte HH and {repeat N text} by text N times.
func expandEdits(t *testing.T, s string) []byte {
	t.Helper()
	var out []byte
	for {
		i := strings.Index(s, "{")
		if i < 0 {
			return append(out, s...)
		}
		j := strings.Index(s[i:], "}")
		if j < 0 {
			return append(out, s...)
		}
		out = append(out, s[:i]...)
		tok := s[i+1 : i+j]
		s = s[i+j+1:]
		if h, ok := strings.CutPrefix(tok, "0x"); ok {
			b, err := strconv.ParseUint(h, 16, 8)
			if err != nil {
				t.Fatalf("bad byte {%s}", tok)
			}
			out = append(out, byte(b))
			continue
		}
		if r, ok := strings.CutPrefix(tok, "repeat "); ok {
			ns, text, _ := strings.Cut(r, " ")
			n, err := strconv.Atoi(ns)
			if err != nil {
				t.Fatalf("bad {%s}", tok)
			}
			out = append(out, strings.Repeat(text, n)...)
			continue
		}
		out = append(out, '{')
		out = append(out, tok...)
		out = append(out, '}')
	}
}

func TestRuleFixtures(t *testing.T) {
	v := testValidator(t)
	pending := pendingValidator(t)
	pick := func(edits []string) *Validator {
		if slices.Contains(edits, "codes pending") {
			return pending
		}
		return v
	}
	files, err := filepath.Glob("testdata/rules/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule fixtures: %v", err)
	}
	covered := map[string]bool{}
	for _, file := range files {
		cases, lines := readRuleCases(t, file)
		family := strings.TrimSuffix(filepath.Base(file), ".txt")
		rewritten := false
		for ci := range cases {
			c := &cases[ci]
			rule := ruleByID(c.rule)
			if rule == nil {
				t.Errorf("%s:%d: unknown rule %q", file, c.line, c.rule)
				continue
			}
			if rule.Family != family {
				t.Errorf("%s:%d: rule %s belongs to family %s", file, c.line, c.rule, rule.Family)
			}
			covered[c.rule] = true
			if len(c.fail) == 0 || len(c.pass) == 0 {
				t.Errorf("%s:%d: rule %s needs a fail and a pass example", file, c.line, c.rule)
				continue
			}
			got := findingsOf(pick(c.fail).Validate(mustParse(t, applyEdits(t, c.fail)), ""), c.rule)
			if *update {
				c.want = got
				rewritten = true
			} else if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("%s:%d: %s on the failing example:\n got %s\nwant %s", file, c.line, c.rule,
					strings.Join(got, "\n     "), strings.Join(c.want, "\n     "))
			}
			if len(got) == 0 {
				t.Errorf("%s:%d: %s: the failing example produces no finding", file, c.line, c.rule)
			}
			pass := c.pass
			if len(pass) == 1 && pass[0] == "base" {
				pass = nil
			}
			if got := findingsOf(pick(pass).Validate(mustParse(t, applyEdits(t, pass)), ""), c.rule); len(got) > 0 {
				t.Errorf("%s:%d: %s on the passing example: %s", file, c.line, c.rule, strings.Join(got, "; "))
			}
		}
		if rewritten {
			writeWants(t, file, lines, cases)
		}
	}
	for _, r := range catalogue {
		if !covered[r.ID] {
			t.Errorf("rule %s (%s) has no fixture in testdata/rules/%s.txt", r.ID, r.Family, r.Family)
		}
	}
}

// pendingValidator validates with the CDC code sets plus CVX 899 in status Pending.
func pendingValidator(t *testing.T) *Validator {
	t.Helper()
	set, _, err := codes.ImportReaders(codes.Default(), map[string]io.Reader{
		"cvx.txt": strings.NewReader("899|Test pending vaccine|test pending vaccine||Pending|False|2024/05/01\n"),
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(Options{Codes: set, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// writeWants rewrites a fixture file with the want lines of cases.
func writeWants(t *testing.T, path string, lines []string, cases []ruleCase) {
	t.Helper()
	var b strings.Builder
	w := bufio.NewWriter(&b)
	ci := -1
	for _, l := range lines {
		word, _, _ := strings.Cut(l, " ")
		switch word {
		case "want":
			continue
		case "rule":
			ci++
		}
		if word == "" && ci >= 0 && ci < len(cases) && cases[ci].want != nil {
			for _, wl := range cases[ci].want {
				fmt.Fprintf(w, "want %s\n", wl)
			}
			cases[ci].want = nil
		}
		fmt.Fprintln(w, l)
	}
	w.Flush()
	out := strings.TrimRight(b.String(), "\n") + "\n"
	if ci >= 0 && cases[ci].want != nil {
		for _, wl := range cases[ci].want {
			out += "want " + wl + "\n"
		}
	}
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
}
