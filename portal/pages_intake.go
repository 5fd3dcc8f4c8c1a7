package portal

import (
	"cmp"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/store"
)

// chart is a stacked bar chart of messages per day by ACK code for one environment, drawn as
// server-side SVG (no script); the same numbers are in a table under it.
type chart struct {
	ID      string // the caption's id
	Env     string // "P" or "T"
	Title   string
	Caption string
	Width   int
	Height  int
	Bars    []bar
	YTicks  []tick
	XLabels []tick
	Total   int
	Days    []chartDay
	Left    int
	Bottom  int
	Right   int
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type tick struct {
	Pos   float64
	Label string
}

type chartDay struct {
	Day        string
	AA, AE, AR int
}

var ackCodes = []string{"AA", "AE", "AR"}

// niceMax rounds n up to 1, 2 or 5 times a power of ten.
func niceMax(n int) int {
	if n <= 0 {
		return 1
	}
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p >= n {
				return m * p
			}
		}
	}
}

// buildChart lays out the chart of env over the days from since to today (UTC).
func buildChart(env, title string, days []store.IntakeDay, since, today time.Time) chart {
	counts := map[string]map[string]int{} // day → code → count
	for _, d := range days {
		if d.Env != env {
			continue
		}
		k := d.Day.Format(time.DateOnly)
		if counts[k] == nil {
			counts[k] = map[string]int{}
		}
		counts[k][d.Code] += d.Count
	}
	var list []chartDay
	for t := since; !t.After(today); t = t.AddDate(0, 0, 1) {
		k := t.Format(time.DateOnly)
		m := counts[k]
		list = append(list, chartDay{Day: k, AA: m["AA"], AE: m["AE"], AR: m["AR"]})
	}
	c := layoutChart(list)
	c.ID, c.Env, c.Title = "chart-"+cmp.Or(env, "none"), env, title
	return c
}

// layoutChart lays out a stacked bar per entry of list (a day, or a week labelled by its first
// day), labelled by month and day.
func layoutChart(list []chartDay) chart {
	c := chart{Width: 720, Height: 240, Left: 48, Bottom: 210, Right: 710}
	maxTotal := 0
	for _, d := range list {
		maxTotal = max(maxTotal, d.AA+d.AE+d.AR)
		c.Total += d.AA + d.AE + d.AR
	}
	top := niceMax(maxTotal)
	plotH := float64(c.Bottom - 12)
	slot := float64(c.Right-c.Left) / float64(max(1, len(list)))
	scale := plotH / float64(top)
	// Gridlines at whole, round steps: top (1, 2 or 5 times a power of ten) in 5, 4, 2 or 1 parts.
	parts := 1
	for _, n := range []int{5, 4, 2} {
		if top%n == 0 {
			parts = n
			break
		}
	}
	for i := 0; i <= parts; i++ {
		v := top * i / parts
		c.YTicks = append(c.YTicks, tick{Pos: float64(c.Bottom) - float64(v)*scale, Label: strconv.Itoa(v)})
	}
	every := max(1, len(list)/6)
	for i, d := range list {
		x := float64(c.Left) + float64(i)*slot
		if i%every == 0 {
			c.XLabels = append(c.XLabels, tick{Pos: x + slot/2, Label: d.Day[5:]})
		}
		y := float64(c.Bottom)
		for _, code := range ackCodes {
			n := map[string]int{"AA": d.AA, "AE": d.AE, "AR": d.AR}[code]
			if n == 0 {
				continue
			}
			h := float64(n) * scale
			y -= h
			c.Bars = append(c.Bars, bar{X: x + slot*0.1, Y: y, W: slot * 0.8, H: h, Class: "bar-" + code,
				Title: fmt.Sprintf("%s: %d %s", d.Day, n, code)})
		}
	}
	for _, d := range list {
		if d.AA+d.AE+d.AR > 0 {
			c.Days = append(c.Days, d)
		}
	}
	return c
}

type intakeData struct {
	Site     *admin.Site
	Days     int
	Charts   []chart
	Findings []store.IntakeFinding
	Latest   []store.IntakeMessage
	Periods  []int
	Tabs     siteTabs
}

// intakePage shows what a site sent: messages per day by environment and ACK code, the most
// frequent findings with example control IDs, the latest messages with their ACK.
func (p *Portal) intakePage(w http.ResponseWriter, r *http.Request, s *session) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return
	}
	site, err := p.svc.Site(r.Context(), *s.actor, id) // the Service says whether the actor may see the site
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	days := int(formID(r, "days"))
	if days != 7 && days != 90 {
		days = 30
	}
	now := p.now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	since := today.AddDate(0, 0, -(days - 1))
	in, err := p.intake.SiteIntake(r.Context(), site.ID, since, 10, 25)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	d := intakeData{Site: site, Days: days, Tabs: tabsFor(s.actor, site, "intake"), Findings: in.Findings, Latest: in.Latest, Periods: []int{7, 30, 90}}
	// A chart per environment the site's messages went to, and one for those rejected before an
	// environment could be told (unreadable, or MSH-11 neither P nor T), so that the charts add up
	// to every message received, as the data-quality report counts them. With no message at all,
	// the environment the site sends to now.
	home := "P"
	if site.Status != admin.SiteProduction {
		home = "T"
	}
	for _, e := range []struct{ env, title string }{{"P", "Production"}, {"T", "Test"}, {"", "Rejected before an environment was known"}} {
		c := buildChart(e.env, e.title, in.Days, since, today)
		if c.Total == 0 && e.env != home {
			continue
		}
		c.Caption = fmt.Sprintf("%s: %s in the last %d days, per day and ACK code", c.Title, plural(c.Total, "message"), days)
		d.Charts = append(d.Charts, c)
	}
	p.render(w, r, s, http.StatusOK, "intake", "Intake: "+site.Name, view{Data: d})
}
