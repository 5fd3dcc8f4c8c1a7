package validate

import "testing"

func TestParseDTM(t *testing.T) {
	for _, tc := range []struct {
		in     string
		ok     bool
		digits int
		date   date
		tz     bool
	}{
		{"2024", true, 4, 20240101, false},
		{"202402", true, 6, 20240201, false},
		{"20240229", true, 8, 20240229, false},
		{"20230229", false, 0, 0, false},
		{"20241301", false, 0, 0, false},
		{"20240115103000-0500", true, 14, 20240115, true},
		{"20240115103000.1234+0100", true, 14, 20240115, true},
		{"202401151030-0500", true, 12, 20240115, true},
		{"20240115-0500", true, 8, 20240115, true},
		{"20240115246000", false, 0, 0, false},
		{"2024011510300", false, 0, 0, false},
		{"2024-01-15", false, 0, 0, false},
		{"20240115.5", false, 0, 0, false},
		{"20240115103000-05", false, 0, 0, false},
		{"00000101", false, 0, 0, false},
		{"", false, 0, 0, false},
	} {
		v, ok := parseDTM([]byte(tc.in))
		if ok != tc.ok || ok && (v.digits != tc.digits || v.date != tc.date || v.tz != tc.tz) {
			t.Errorf("parseDTM(%q) = %+v, %v", tc.in, v, ok)
		}
	}
}

func TestDates(t *testing.T) {
	if d := mkDate(1970, 1, 1).days(); d != 0 {
		t.Errorf("1970-01-01 is day %d", d)
	}
	if d := mkDate(2024, 3, 1).days() - mkDate(2024, 2, 28).days(); d != 2 {
		t.Errorf("2024-02-28 to 03-01: %d days", d)
	}
	if a := addYears(20200229, 1); a != 20210301 {
		t.Errorf("addYears = %v", a)
	}
	for _, tc := range []struct {
		birth, on date
		want      string
	}{
		{20240101, 20240115, "14 days"},
		{20230101, 20240115, "12 months"},
		{20100101, 20240115, "14 years"},
	} {
		if got := ageText(tc.birth, tc.on); got != tc.want {
			t.Errorf("ageText(%v, %v) = %q, want %q", tc.birth, tc.on, got, tc.want)
		}
	}
}

func TestNumbers(t *testing.T) {
	for in, want := range map[string]int64{"0.5": 500, "999": 999000, "+1": 1000, "-0.25": -250, "1.23456": 1234} {
		if got, ok := parseAmount([]byte(in)); !ok || got != want {
			t.Errorf("parseAmount(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", ".", "1.2.3", "0.5 mL", "1e3", "+"} {
		if isNumber([]byte(in)) {
			t.Errorf("isNumber(%q)", in)
		}
	}
}
