package codes

import "testing"

func TestNormalizeCVX(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"08", "08"},
		{"8", "08"},
		{"008", "08"},
		{"08        ", "08"}, // cvx.txt pads with spaces
		{" 8\t", "08"},
		{"140", "140"},
		{"0140", "140"},
		{"00140", "140"},
		{"10", "10"},
		{"010", "10"},
		{"100", "100"},
		{"0", "00"},
		{"000", "00"},
		{"", ""},
		{"  ", ""},
		{"8a", "8a"},
		{"-8", "-8"},
		{"０８", "０８"}, // full-width digits are not CVX digits
	} {
		if got := NormalizeCVX(c.in); got != c.want {
			t.Errorf("NormalizeCVX(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizeMVX(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"PMC", "PMC"},
		{"pmc", "PMC"},
		{" Msd ", "MSD"},
		{"PFR       ", "PFR"},
		{"", ""},
	} {
		if got := NormalizeMVX(c.in); got != c.want {
			t.Errorf("NormalizeMVX(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestNormalizeNDC(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string // "" = refused
	}{
		{"49281-0425-50", "49281-0425-50"}, // 5-4-2
		{"49281042550", "49281-0425-50"},   // 11 digits
		{" 49281042550 ", "49281-0425-50"},
		{"0006-4045-00", "00006-4045-00"},  // 4-4-2
		{"49281-425-50", "49281-0425-50"},  // 5-3-2
		{"50090-7541-0", "50090-7541-00"},  // 5-4-1
		{"49281-*425-50", "49281-0425-50"}, // asterisk padding
		{"4928142550", ""},                 // 10 digits, no hyphens: ambiguous
		{"4928-425-50", ""},                // 9 digits
		{"49281-0425-5-0", ""},
		{"49281--50", ""},
		{"49281-0425-", ""},
		{"492810-425-50", ""},
		{"4928104255012", ""},
		{"4928a-0425-50", ""},
		{"", ""},
		{"-", ""},
	} {
		got, ok := NormalizeNDC(c.in)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("NormalizeNDC(%q) = %q, %v; want %q", c.in, got, ok, c.want)
		}
	}
}

func TestNDC10Readings(t *testing.T) {
	got := ndc10Readings("4928142550")
	want := []string{"04928-1425-50", "49281-0425-50", "49281-4255-00"}
	if len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("ndc10Readings = %q, want %q", got, want)
	}
	if r := ndc10Readings("49281042550"); r != nil {
		t.Errorf("ndc10Readings(11 digits) = %q", r)
	}
}

func TestClean(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain", "plain"},
		{"two words", "two words"},
		{"  padded  ", "padded"},
		{"140       ", "140"},
		{"a\tb", "a b"},
		{"wrapped\n\t\t\tnote", "wrapped note"},
		{"a  b", "a b"},
		{"a\x00b", "a b"},
		{"a\u0085b", "a b"},
		{"\ufeffBOM", "BOM"},
		{"", ""},
		{" \t\r\n", ""},
		{"IgG1κ", "IgG1κ"},
	} {
		if got := clean(c.in); got != c.want {
			t.Errorf("clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseDate(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"2010/05/28", "2010-05-28"},
		{"2010/5/28", "2010-05-28"},
		{"3/20/2011", "2011-03-20"},
		{"12/16/2024", "2024-12-16"},
		{"2025-07-16 00:00:00", "2025-07-16"},
		{"2025-07-16 13:45:00.123", "2025-07-16"},
		{"20250701", "2025-07-01"},
		{"3/20/2011 4:05:06 PM", "2011-03-20"},
		{"13/20/2011", ""},
		{"2011", ""},
		{"1/1/1800", ""},
		{"yesterday", ""},
	} {
		got, err := parseDate(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("parseDate(%q) = %v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got.Format("2006-01-02") != c.want || got.Location().String() != "UTC" || got.Hour() != 0 {
			t.Errorf("parseDate(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
}

func TestParseStatus(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Status
	}{
		{"Active", StatusActive},
		{"active ", StatusActive},
		{"Inactive", StatusInactive},
		{"Never Active", StatusNeverActive},
		{"never active", StatusNeverActive},
		{"Non-US", StatusNonUS},
		{"Non US", StatusNonUS},
		{"Pending", StatusPending},
		{" Retired ", "Retired"},
	} {
		if got := parseStatus(c.in); got != c.want {
			t.Errorf("parseStatus(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	if Status("Retired").Known() || !StatusPending.Known() {
		t.Error("Status.Known")
	}
}
