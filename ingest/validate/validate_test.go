package validate

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// testNow is the fixed clock of the tests: the fixtures' dates are judged against it, never
// against the day the tests run.
var testNow = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

func testValidator(t testing.TB) *Validator {
	t.Helper()
	v, err := New(Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustParse(t testing.TB, data []byte) *hl7.Message {
	t.Helper()
	m, err := hl7.Parse(data)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, data)
	}
	return m
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// fmtFinding renders a finding the way the fixtures write it: severity, ERR-2 location
// (segment^sequence^field^repetition^component^subcomponent), group, ERR-8 text.
func fmtFinding(f ack.Finding) string {
	l := f.Location
	return fmt.Sprintf("%s %s^%d^%d^%d^%d^%d g%d %s", f.Severity, l.Segment, l.Sequence, l.Field, l.Rep, l.Component, l.Sub, f.Group, f.Text)
}

// findingsOf returns the formatted findings of one rule.
func findingsOf(fs []ack.Finding, rule string) []string {
	var out []string
	for _, f := range fs {
		if f.Rule == rule {
			out = append(out, fmtFinding(f))
		}
	}
	return out
}

func ruleIDs(fs []ack.Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Severity)+" "+f.Rule)
	}
	return out
}

func TestBaseFixtureIsClean(t *testing.T) {
	v := testValidator(t)
	if fs := v.Validate(mustParse(t, readFixture(t, "base.hl7")), "SITE1"); len(fs) > 0 {
		for _, f := range fs {
			t.Errorf("%s %s", f.Rule, fmtFinding(f))
		}
	}
}

func TestCatalogue(t *testing.T) {
	rules := Rules()
	if len(rules) != len(catalogue) {
		t.Fatalf("Rules() has %d rules, the catalogue %d", len(rules), len(catalogue))
	}
	if !slices.IsSortedFunc(rules, func(a, b Rule) int { return strings.Compare(a.ID, b.ID) }) {
		t.Error("Rules() is not sorted by ID")
	}
	seen := map[string]bool{}
	for _, r := range rules {
		if seen[r.ID] {
			t.Errorf("duplicate rule ID %s", r.ID)
		}
		seen[r.ID] = true
		if r.ID != strings.ToLower(r.ID) || strings.ContainsAny(r.ID, " _.") {
			t.Errorf("rule ID %q: want lower-case words joined by hyphens", r.ID)
		}
		if !slices.Contains(Families, r.Family) {
			t.Errorf("%s: unknown family %q", r.ID, r.Family)
		}
		if r.Severity != ack.Error && r.Severity != ack.Warning && r.Severity != ack.Information {
			t.Errorf("%s: default severity %q", r.ID, r.Severity)
		}
		if r.Code == 0 {
			t.Errorf("%s: no ERR-3 code", r.ID)
		}
		if r.Description == "" || r.Message == "" || r.Location == "" || r.Reference == "" {
			t.Errorf("%s: description, message, location and reference are all needed", r.ID)
		}
		if r.Scope != ScopeMessage && r.Scope != ScopeVaccination && r.Scope != ScopeSegment {
			t.Errorf("%s: scope %q", r.ID, r.Scope)
		}
		// ERR-8 is 250 characters: the template with typical values must fit.
		text := fill(r.Message, args{at: "RXA-5.1 (RXA #2, repetition 2)", name: "Substance Manufacturer Name",
			value: "'" + strings.Repeat("x", 20) + "'", detail: strings.Repeat("y", 30)})
		if len(text) > maxText || strings.HasSuffix(text, "...") {
			t.Errorf("%s: message is %d characters with typical values, ERR-8 allows %d", r.ID, len(text), maxText)
		}
		if strings.Contains(fill(r.Message, args{}), "{") {
			t.Errorf("%s: message has an unknown placeholder", r.ID)
		}
	}
}

func TestNewRejectsBadOverrides(t *testing.T) {
	_, err := New(Options{
		Severity:       map[string]ack.Severity{"no-such-rule": ack.Error, "pid-8-missing": "Q"},
		SenderSeverity: map[string]map[string]ack.Severity{"SITE9": {"other-bad-rule": ack.Warning}},
	})
	if err == nil {
		t.Fatal("New accepted unknown rules and severities")
	}
	for _, want := range []string{`"no-such-rule"`, `"other-bad-rule" (sender SITE9)`, `"pid-8-missing": severity "Q"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestSeverityOverrides(t *testing.T) {
	v, err := New(Options{
		Now:      func() time.Time { return testNow },
		Severity: map[string]ack.Severity{"pid-8-missing": ack.Error, "rxa-21-missing": Ignore},
		SenderSeverity: map[string]map[string]ack.Severity{
			"LENIENT": {"pid-8-missing": ack.Information},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := mustParse(t, applyEdits(t, []string{"PID-8=", "RXA-21="}))
	for _, tc := range []struct {
		site string
		want []string
	}{
		{"", []string{"E pid-8-missing"}},
		{"OTHER", []string{"E pid-8-missing"}},
		{"LENIENT", []string{"I pid-8-missing"}},
	} {
		if got := ruleIDs(v.Validate(msg, tc.site)); !slices.Equal(got, tc.want) {
			t.Errorf("site %q: got %v, want %v", tc.site, got, tc.want)
		}
	}
	if s, ok := v.Severity("rxa-21-missing", "LENIENT"); !ok || s != Ignore {
		t.Errorf("Severity(rxa-21-missing) = %q, %v", s, ok)
	}
	if _, ok := v.Severity("nope", ""); ok {
		t.Error("Severity found an unknown rule")
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]ack.Severity{"E": ack.Error, "warning": ack.Warning, " i ": ack.Information, "off": Ignore, "X": Ignore} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseSeverity("fatal"); err == nil {
		t.Error("ParseSeverity accepted fatal")
	}
}

// TestConcurrentValidate runs the validator from several goroutines (go test -race checks the
// pool and the shared tables) and checks each gets the same answer.
func TestConcurrentValidate(t *testing.T) {
	v := testValidator(t)
	msgs := [][]byte{
		readFixture(t, "base.hl7"),
		applyEdits(t, []string{"RXA-3=", "PID-8=Q"}),
		applyEdits(t, []string{"RXA-5=99999^Nothing^CVX", "add end ZZZ|1"}),
	}
	want := make([][]string, len(msgs))
	for i, m := range msgs {
		want[i] = ruleIDs(v.Validate(mustParse(t, m), ""))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				i := (g + k) % len(msgs)
				m, _ := hl7.Parse(msgs[i])
				if got := ruleIDs(v.Validate(m, "")); !slices.Equal(got, want[i]) {
					t.Errorf("message %d: got %v, want %v", i, got, want[i])
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestMessageOrder checks that findings come in message order whatever pass found them.
func TestMessageOrder(t *testing.T) {
	v := testValidator(t)
	fs := v.Validate(mustParse(t, applyEdits(t, []string{"RXA-3=", "PID-8=Q", "MSH-10=", "OBX#3-11=X", "RXR-2=ZZ^Zed^HL70163"})), "")
	var got []string
	for _, f := range fs {
		got = append(got, fmt.Sprintf("%s-%d", f.Location.Segment, f.Location.Field))
	}
	want := []string{"MSH-10", "PID-8", "RXA-3", "RXR-2", "OBX-11"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestTruncateAndQuote(t *testing.T) {
	long := strings.Repeat("é", 200)
	if s := truncate(long, 250); len(s) > 250 || !strings.HasSuffix(s, "...") {
		t.Errorf("truncate: %d bytes %q", len(s), s[len(s)-5:])
	}
	if q := quote([]byte("a\rb\x00c")); q != "'a?b?c'" {
		t.Errorf("quote = %s", q)
	}
	if q := quote([]byte(strings.Repeat("z", 50))); !strings.HasSuffix(q, "...'") {
		t.Errorf("quote does not cut: %s", q)
	}
}

// TestSameAddressAndPhoneInPIDAndNK1: the address and telephone rules skip a field equal to one
// they found clean in the same message, never one they found a problem in: the next of kin's
// address and number, when they are the patient's, give the patient's findings again, at their
// own place, and a clean one gives none.
func TestSameAddressAndPhoneInPIDAndNK1(t *testing.T) {
	v := testValidator(t)
	base := string(readFixture(t, "base.hl7"))
	const addr, phone = "12 Main St^^Boston^MA^02118^USA^P", "^PRN^PH^^^617^5551212"
	for _, c := range []struct {
		name, addr, phone string
		want              []string
	}{
		{"clean", addr, phone, nil},
		{"bad zip", "12 Main St^^Boston^MA^0211^USA^P", phone, []string{
			"W PID^1^11^1^5^0 g0 PID-11.5 (ZIP code) is '0211'; send 5 digits or ZIP+4 (12345-6789).",
			"W NK1^1^4^1^5^0 g0 NK1-4.5 (ZIP code) is '0211'; send 5 digits or ZIP+4 (12345-6789).",
		}},
		{"bad phone", addr, "^PRN^PH^^^617^555121", []string{
			"W PID^1^13^1^7^0 g0 PID-13.7 (telephone) is '^PRN^PH^^^617^555121'; send it as ^PRN^PH^^^area code^local number, e.g. ^PRN^PH^^^617^5551212.",
			"W NK1^1^5^1^7^0 g0 NK1-5.7 (telephone) is '^PRN^PH^^^617^555121'; send it as ^PRN^PH^^^area code^local number, e.g. ^PRN^PH^^^617^5551212.",
		}},
	} {
		msg := strings.ReplaceAll(strings.ReplaceAll(base, addr, c.addr), phone, c.phone)
		fs := v.Validate(mustParse(t, []byte(msg)), "SITE1")
		var got []string
		for _, f := range fs {
			if f.Rule == ruleAddressZip.ID || f.Rule == rulePhoneInvalid.ID {
				got = append(got, fmtFinding(f))
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: findings\n%s\nwant\n%s", c.name, strings.Join(got, "\n"), strings.Join(c.want, "\n"))
		}
	}
}
