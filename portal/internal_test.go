package portal

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store"
)

// FuzzLocalPath: the "next" address after sign-in is a path of this site or nothing.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"/dashboard", "//evil.example/x", "/\\evil.example", "https://evil.example", "/users?site=1",
		"/%2F%2Fevil", "", "javascript:alert(1)", "/\t/evil.example", "///evil"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := localPath(next)
		if got == "" {
			return
		}
		if got != next || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.HasPrefix(got, "/\\") {
			t.Fatalf("localPath(%q) = %q", next, got)
		}
		u, err := url.Parse(got)
		if err != nil || u.Host != "" || u.Scheme != "" {
			t.Fatalf("localPath(%q) = %q, which leaves the site", next, got)
		}
		// What a browser does with it: resolved against this site, it stays on this site.
		base, _ := url.Parse("https://registry.example/signin")
		if r := base.ResolveReference(u); r.Host != "registry.example" {
			t.Fatalf("localPath(%q) = %q resolves to %s", next, got, r)
		}
	})
}

// FuzzInviteRows: any posted invitation form gives 1 to 20 rows with answers yes/no only.
func FuzzInviteRows(f *testing.F) {
	f.Add("rows=2&first_0=A&access_administrator_0=yes&first_1=B&technical_contact_1=no")
	f.Add("rows=-5")
	f.Add("rows=99999999999999999999&first_19=x")
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		rows := parseInviteRows(v)
		if len(rows) < 1 || len(rows) > maxInviteRows {
			t.Fatalf("%d rows", len(rows))
		}
		for _, r := range rows {
			for d, a := range r.Answers {
				if !d.Valid() || (a != "yes" && a != "no") {
					t.Fatalf("answer %q=%q", d, a)
				}
			}
		}
	})
}

// TestBuildChart: bars stack per day in the order AA, AE, AR, scaled to a round maximum; days
// without messages have no bar; other environments are left out.
func TestBuildChart(t *testing.T) {
	d0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	days := []store.IntakeDay{
		{Day: d0, Env: "P", Code: "AA", Count: 6}, {Day: d0, Env: "P", Code: "AE", Count: 2}, {Day: d0, Env: "P", Code: "AR", Count: 1},
		{Day: d0.AddDate(0, 0, 2), Env: "P", Code: "AA", Count: 4}, {Day: d0, Env: "T", Code: "AA", Count: 50},
	}
	c := buildChart("P", "Production", days, d0, d0.AddDate(0, 0, 2))
	if c.Total != 13 || len(c.Bars) != 4 || len(c.Days) != 2 {
		t.Fatalf("total %d, %d bars, %d days", c.Total, len(c.Bars), len(c.Days))
	}
	if c.Bars[0].Class != "bar-AA" || c.Bars[1].Class != "bar-AE" || c.Bars[2].Class != "bar-AR" {
		t.Errorf("stack order %s %s %s", c.Bars[0].Class, c.Bars[1].Class, c.Bars[2].Class)
	}
	// Scale: the top is 10 (9 messages round up); 9 messages reach 90% of the plot height.
	plot := float64(c.Bottom - 12)
	top := c.Bars[2].Y
	if got := (float64(c.Bottom) - top) / plot; got < 0.899 || got > 0.901 {
		t.Errorf("9 of 10 drawn at %.3f of the height", got)
	}
	if c.YTicks[len(c.YTicks)-1].Label != "10" {
		t.Errorf("top tick %q", c.YTicks[len(c.YTicks)-1].Label)
	}
	if !strings.Contains(c.Bars[3].Title, "2026-12-03: 4 AA") {
		t.Errorf("bar title %q", c.Bars[3].Title)
	}
	for _, n := range []struct{ in, want int }{{0, 1}, {1, 1}, {3, 5}, {9, 10}, {11, 20}, {101, 200}, {500, 500}} {
		if got := niceMax(n.in); got != n.want {
			t.Errorf("niceMax(%d) = %d, want %d", n.in, got, n.want)
		}
	}
}
