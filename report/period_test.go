package report_test

import (
	"errors"
	"testing"

	"github.com/vaxgate/vaxgate/report"
)

// TestParseBoundsBackwards: a period that ends before it starts is refused in the bounds as
// typed, not in the end-of-day instant a date becomes.
func TestParseBoundsBackwards(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{"2026-12-31", "2026-12-01", "report: bad period: to (2026-12-01) is before from (2026-12-31)"},
		{"2026-12-31T10:00:00Z", "2026-12-31T09:00:00Z", "report: bad period: to (2026-12-31T09:00:00Z) is before from (2026-12-31T10:00:00Z)"},
	} {
		_, _, err := report.ParseBounds(tc.from, tc.to)
		if !errors.Is(err, report.ErrBadPeriod) || err.Error() != tc.want {
			t.Errorf("ParseBounds(%s, %s) = %v; want %q", tc.from, tc.to, err, tc.want)
		}
	}
	if _, _, err := report.ParseBounds("2026-12-01", "2026-12-01"); err != nil {
		t.Errorf("a one-day period: %v", err)
	}
}
