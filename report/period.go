package report

import (
	"fmt"
	"strings"
	"time"
)

// ParseBounds reads the bounds of a report period: a date (YYYY-MM-DD, UTC; "to" includes its
// whole day) or an RFC 3339 time ("to" exclusive).
func ParseBounds(from, to string) (time.Time, time.Time, error) {
	f, _, err := parseBound("from", from)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	t, isDate, err := parseBound("to", to)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if t.Before(f) {
		// Said in the bounds as given, before "to" is moved to the end of its day.
		return time.Time{}, time.Time{}, fmt.Errorf("%w: to (%s) is before from (%s)", ErrBadPeriod, strings.TrimSpace(to), strings.TrimSpace(from))
	}
	if isDate {
		t = t.AddDate(0, 0, 1)
	}
	return f, t, nil
}

func parseBound(name, v string) (time.Time, bool, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, false, fmt.Errorf("%w: %s is required (YYYY-MM-DD or an RFC 3339 time)", ErrBadPeriod, name)
	}
	if d, err := time.Parse(time.DateOnly, v); err == nil {
		return d, true, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, false, nil
	}
	return time.Time{}, false, fmt.Errorf("%w: %s %q is not a date (YYYY-MM-DD) or an RFC 3339 time", ErrBadPeriod, name, v)
}

// DefaultEnv is the environment a site's reports are about unless asked otherwise: production
// for a site in production, else the test environment.
func DefaultEnv(site *Site) string {
	if site.Status == "production" {
		return "P"
	}
	return "T"
}

// ParseEnv reads an environment: P or T (case-insensitive); "" is def.
func ParseEnv(v, def string) (string, error) {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "":
		return def, nil
	case "P":
		return "P", nil
	case "T":
		return "T", nil
	}
	return "", fmt.Errorf("%w: environment %q is not P (production) or T (test)", ErrBadPeriod, v)
}
