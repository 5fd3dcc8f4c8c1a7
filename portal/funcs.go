package portal

import (
	"fmt"
	"html/template"
	"slices"
	"strings"
	"time"

	"github.com/vaxgate/vaxgate/admin"
)

// fieldErr is a form field's error, for the "ferr" template.
type fieldErr struct {
	ID, Msg string
}

var funcs = template.FuncMap{
	"fe": func(fields map[string]string, name, id string) fieldErr {
		return fieldErr{ID: id, Msg: fields[name]}
	},
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return fmtTime(v)
		case *time.Time:
			if v == nil {
				return ""
			}
			return fmtTime(*v)
		}
		return ""
	},
	"role": func(r admin.Role) string { return r.Label() },
	"designations": func(ds []admin.Designation) string {
		out := make([]string, 0, len(ds))
		for _, d := range ds {
			out = append(out, d.Label())
		}
		return strings.Join(out, ", ")
	},
	"has": func(ds []admin.Designation, d admin.Designation) bool {
		for _, x := range ds {
			if x == d {
				return true
			}
		}
		return false
	},
	"contains": func(xs []string, x string) bool { return slices.Contains(xs, x) },
	"sharing": func(s admin.Sharing) string {
		switch s {
		case admin.SharingYes:
			return "Yes"
		case admin.SharingNo:
			return "No"
		case admin.SharingUnknown:
			return "Unknown"
		}
		return string(s)
	},
	"env": func(e string) string {
		switch e {
		case "P":
			return "Production"
		case "T":
			return "Test"
		}
		return "—"
	},
	"f": func(v float64) string { return fmt.Sprintf("%.1f", v) },
	// pct is a rate (0..1) as a percentage; width the same as an SVG bar's width out of 100.
	"pct":   func(v float64) string { return fmt.Sprintf("%.1f%%", v*100) },
	"width": func(v float64) string { return fmt.Sprintf("%.1f", min(max(v, 0), 1)*100) },
	"inc":   func(i int) int { return i + 1 },
	"join":  strings.Join,
	"list":  func(v ...string) []string { return v },
	"title": func(s admin.SiteStatus) string {
		if s == "" {
			return ""
		}
		return strings.ToUpper(string(s[:1])) + string(s[1:])
	},
}
