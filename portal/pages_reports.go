package portal

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
)

// The site's report pages (certification, data quality, reconciliation), beside its intake page,
// over report.Service. Who may see them, and who may sign off readiness, is the admin decision
// point's answer (admin.ActionViewSiteReports, admin.ActionSignOffCertification), asked through
// Service.Can as the report API asks it.

// siteTabs is the sub-navigation of a site's pages; the report tabs are there when the decision
// point allows the actor to view the site's reports.
type siteTabs struct {
	Site    *admin.Site
	Current string
	Reports bool
}

func tabsFor(a *admin.Actor, site *admin.Site, current string) siteTabs {
	return siteTabs{Site: site, Current: current, Reports: mayAt(a, admin.ActionViewSiteReports, site)}
}

// reportSite reads the page's site and asks the decision point whether the actor may view its
// reports (and do act, when not ""); on a denial it renders the error page and returns nil.
func (p *Portal) reportSite(w http.ResponseWriter, r *http.Request, s *session, act admin.Action) (*admin.Site, *report.Site) {
	id, ok := pathID(r, "id")
	if !ok {
		p.notFound(w, r, s)
		return nil, nil
	}
	site, err := p.svc.Site(r.Context(), *s.actor, id) // 403 or 404 when the actor may not see the site
	if err != nil {
		p.fail(w, r, s, err)
		return nil, nil
	}
	for _, a := range []admin.Action{admin.ActionViewSiteReports, act} {
		if a == "" {
			continue
		}
		if d := p.svc.Can(r.Context(), *s.actor, a, admin.Target{Site: site}); !d.Allow {
			p.fail(w, r, s, d.Err())
			return nil, nil
		}
	}
	rs, err := p.reports.Site(r.Context(), site.ID, "")
	if errors.Is(err, report.ErrSiteNotFound) {
		p.notFound(w, r, s)
		return nil, nil
	}
	if err != nil {
		p.fail(w, r, s, err)
		return nil, nil
	}
	return site, rs
}

// wantsCSV: the page's "Download CSV" link (?format=csv).
func wantsCSV(r *http.Request) bool { return strings.EqualFold(r.URL.Query().Get("format"), "csv") }

// sendCSV answers the report as a CSV attachment.
func (p *Portal) sendCSV(w http.ResponseWriter, r *http.Request, name string, write func(io.Writer) error) {
	var b strings.Builder
	if err := write(&b); err != nil {
		p.log.Error("portal: write CSV", zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	_, _ = io.WriteString(w, b.String())
}

type certificationData struct {
	Site    *admin.Site
	Tabs    siteTabs
	C       *report.Certification
	Cases   int
	SignOff bool // the decision point allows the actor to sign off readiness
	// Item and Note are the sign-off form's values after a refused submission.
	Item, Note string
}

// certificationPage shows the site's certification status: the cases passed, failed (with the
// message and its findings) and not yet attempted, the findings by rule, and the readiness
// checklist with its sign-offs (and, for registry staff, the forms that sign off or revoke).
func (p *Portal) certificationPage(w http.ResponseWriter, r *http.Request, s *session) {
	site, rs := p.reportSite(w, r, s, "")
	if site == nil {
		return
	}
	if wantsCSV(r) {
		c, err := p.reports.Certification(r.Context(), rs)
		if err != nil {
			p.fail(w, r, s, err)
			return
		}
		p.sendCSV(w, r, "certification-"+fileSafe(site.Code)+".csv", c.WriteCSV)
		return
	}
	p.showCertification(w, r, s, site, rs, http.StatusOK, view{})
}

func (p *Portal) showCertification(w http.ResponseWriter, r *http.Request, s *session, site *admin.Site, rs *report.Site, status int, v view) {
	c, err := p.reports.Certification(r.Context(), rs)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	d, _ := v.Data.(*certificationData)
	if d == nil {
		d = &certificationData{}
	}
	d.Site, d.C, d.Cases = site, c, len(c.Cases)
	d.Tabs = tabsFor(s.actor, site, "certification")
	d.SignOff = p.svc.Can(r.Context(), *s.actor, admin.ActionSignOffCertification, admin.Target{Site: site}).Allow
	v.Data = d
	p.render(w, r, s, status, "certification", "Certification: "+site.Name, v)
}

// signOff signs off (or revokes the sign-off of) a readiness item: registry staff only, as the
// decision point says; the report service writes the audit entry with the sign-off.
func (p *Portal) signOff(w http.ResponseWriter, r *http.Request, s *session) {
	site, rs := p.reportSite(w, r, s, admin.ActionSignOffCertification)
	if site == nil {
		return
	}
	f := r.PostForm
	item, note, revoke := strings.TrimSpace(f.Get("item")), f.Get("note"), f.Get("revoke") == "1"
	if _, err := p.reports.SignOff(r.Context(), *s.actor, rs, item, note, revoke, ""); err != nil {
		st, msg := p.formError(r, err)
		if st >= 500 || st == http.StatusForbidden || st == http.StatusNotFound {
			p.fail(w, r, s, err)
			return
		}
		p.showCertification(w, r, s, site, rs, st, view{Error: "The sign-off was not saved: " + msg,
			Data: &certificationData{Item: item, Note: note}})
		return
	}
	notice := "signedoff"
	if revoke {
		notice = "unsigned"
	}
	seeOther(w, r, fmt.Sprintf("/sites/%d/certification", site.ID), notice, nil)
}

type qualityData struct {
	Site     *admin.Site
	Tabs     siteTabs
	Q        *report.Quality
	From, To string // the form's dates (To inclusive)
	Env      string
	Chart    chart
	CSV      string // the CSV link
	Timely   []bucket
}

// bucket is a bar of the timeliness histogram.
type bucket struct {
	Label string
	N     int64
	Rate  float64
}

// qualityPage is the data-quality report of the site for a period and environment (default: the
// last 30 days, the site's environment), with the weekly trend as a chart; ?format=csv downloads it.
func (p *Portal) qualityPage(w http.ResponseWriter, r *http.Request, s *session) {
	site, rs := p.reportSite(w, r, s, "")
	if site == nil {
		return
	}
	q := r.URL.Query()
	today := utcDate(p.now())
	d := &qualityData{Site: site, Tabs: tabsFor(s.actor, site, "quality"),
		From: strings.TrimSpace(q.Get("from")), To: strings.TrimSpace(q.Get("to")), Env: strings.ToUpper(strings.TrimSpace(q.Get("env")))}
	if d.From == "" {
		d.From = today.AddDate(0, 0, -29).Format(time.DateOnly)
	}
	if d.To == "" {
		d.To = today.Format(time.DateOnly)
	}
	fields := map[string]string{}
	env, err := report.ParseEnv(d.Env, report.DefaultEnv(rs))
	if err != nil {
		fields["env"] = "Choose Production or Test."
		env = report.DefaultEnv(rs)
	}
	d.Env = env
	from, errFrom := time.Parse(time.DateOnly, d.From)
	to, errTo := time.Parse(time.DateOnly, d.To)
	switch {
	case errFrom != nil:
		fields["from"] = "Enter the first day as a date (YYYY-MM-DD)."
	case errTo != nil:
		fields["to"] = "Enter the last day as a date (YYYY-MM-DD)."
	case to.Before(from):
		fields["to"] = "The last day must not be before the first day."
	}
	if len(fields) > 0 {
		p.render(w, r, s, http.StatusBadRequest, "quality", "Data quality: "+site.Name,
			view{Data: d, Fields: fields, Error: "The report was not made: see below."})
		return
	}
	rep, err := p.reports.Quality(r.Context(), rs, report.Period{Env: env, From: from, To: to.AddDate(0, 0, 1)})
	if errors.Is(err, report.ErrBadPeriod) {
		msg := sentence(strings.TrimPrefix(err.Error(), report.ErrBadPeriod.Error()+": "))
		p.render(w, r, s, http.StatusBadRequest, "quality", "Data quality: "+site.Name,
			view{Data: d, Fields: map[string]string{"to": msg}, Error: "The report was not made: see below."})
		return
	}
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	if wantsCSV(r) {
		p.sendCSV(w, r, fmt.Sprintf("quality-%s-%s-%s-%s.csv", fileSafe(site.Code), env, d.From, d.To), rep.WriteCSV)
		return
	}
	d.Q = rep
	d.CSV = fmt.Sprintf("/sites/%d/quality?", site.ID) + url.Values{"from": {d.From}, "to": {d.To}, "env": {env}, "format": {"csv"}}.Encode()
	var weeks []chartDay
	for _, wk := range rep.Weeks {
		weeks = append(weeks, chartDay{Day: wk.Start.Format(time.DateOnly), AA: int(wk.AA), AE: int(wk.AE), AR: int(wk.AR)})
	}
	d.Chart = layoutChart(weeks)
	d.Chart.ID, d.Chart.Env, d.Chart.Title = "trend", env, "Weekly trend"
	d.Chart.Caption = fmt.Sprintf("Messages per week (weeks start on Monday) and ACK code, %s to %s", d.From, d.To)
	t := rep.Timeliness
	rt := func(n int64) float64 {
		if t.Doses == 0 {
			return 0
		}
		return float64(n) / float64(t.Doses)
	}
	d.Timely = []bucket{{"Within 1 day", t.Within1, rt(t.Within1)}, {"2 to 7 days", t.Within7, rt(t.Within7)},
		{"8 to 30 days", t.Within30, rt(t.Within30)}, {"More than 30 days", t.Later, rt(t.Later)}}
	p.render(w, r, s, http.StatusOK, "quality", "Data quality: "+site.Name, view{Data: d})
}

// utcDate is the start of t's UTC day.
func utcDate(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// fileSafe keeps the letters, digits, '-' and '_' of a site code for a file name.
func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

type reconcileData struct {
	Site     *admin.Site
	Tabs     siteTabs
	From, To string
	Env      string
	Count    string
	IDs      string
	R        *report.Reconciliation
	// The lists of the result, at most maxListed IDs each, and how many more there are.
	Missing, Unexpected, Rejected       []string
	MoreMissing, MoreUnexp, MoreRejects int
	Junk                                []report.JunkLine
	MoreJunk                            int
}

// maxListed bounds the control IDs a reconciliation page lists per kind (the CSV of the API has
// them all).
const maxListed = 200

// maxPasted bounds the control IDs pasted into the form's text area (a file may be larger).
const maxPasted = 1 << 20

func (p *Portal) reconcileDefaults(s *session, site *admin.Site) *reconcileData {
	today := utcDate(p.now())
	return &reconcileData{Site: site, Tabs: tabsFor(s.actor, site, "reconcile"), Env: "P",
		From: today.AddDate(0, 0, -7).Format(time.DateOnly), To: today.AddDate(0, 0, -1).Format(time.DateOnly)}
}

// reconcilePage is the reconciliation form: the period, the environment, and what the site says
// it sent (a count, or its messages' control IDs pasted or as a file).
func (p *Portal) reconcilePage(w http.ResponseWriter, r *http.Request, s *session) {
	site, _ := p.reportSite(w, r, s, "")
	if site == nil {
		return
	}
	p.render(w, r, s, http.StatusOK, "reconcile", "Reconciliation: "+site.Name, view{Data: p.reconcileDefaults(s, site)})
}

// reconcile compares the site's claim with what the registry received and shows the result.
// Reconciling changes nothing: the result is shown in answer to the POST.
func (p *Portal) reconcile(w http.ResponseWriter, r *http.Request, s *session) {
	site, rs := p.reportSite(w, r, s, "")
	if site == nil {
		return
	}
	f := r.PostForm
	d := p.reconcileDefaults(s, site)
	d.From, d.To, d.Env = strings.TrimSpace(f.Get("from")), strings.TrimSpace(f.Get("to")), strings.ToUpper(strings.TrimSpace(f.Get("env")))
	d.Count, d.IDs = strings.TrimSpace(f.Get("count")), f.Get("ids")
	fields := map[string]string{}
	refuse := func() {
		p.render(w, r, s, http.StatusBadRequest, "reconcile", "Reconciliation: "+site.Name,
			view{Data: d, Fields: fields, Error: "Nothing was reconciled: see below."})
	}
	from, errFrom := time.Parse(time.DateOnly, d.From)
	to, errTo := time.Parse(time.DateOnly, d.To)
	switch {
	case errFrom != nil:
		fields["from"] = "Enter the first day as a date (YYYY-MM-DD)."
	case errTo != nil:
		fields["to"] = "Enter the last day as a date (YYYY-MM-DD)."
	case to.Before(from):
		fields["to"] = "The last day must not be before the first day."
	}
	env, err := report.ParseEnv(d.Env, "P")
	if err != nil {
		fields["env"] = "Choose Production or Test."
	}
	d.Env = env
	// The claim: a file, pasted IDs, or a count — one of them.
	var claim *report.Claim
	file, _, ferr := r.FormFile("file")
	if ferr == nil {
		defer file.Close()
	}
	hasFile := ferr == nil
	given := 0
	for _, g := range []bool{hasFile, strings.TrimSpace(d.IDs) != "", d.Count != ""} {
		if g {
			given++
		}
	}
	switch {
	case given == 0:
		fields["claim"] = "Enter the number of messages sent, paste their control IDs, or choose a file of control IDs."
	case given > 1:
		fields["claim"] = "Give one of them only: a count, pasted control IDs or a file."
	case d.Count != "":
		n, err := strconv.ParseInt(d.Count, 10, 64)
		if err != nil || n < 0 {
			fields["count"] = "Enter the number of messages as a whole number, 0 or more."
		} else {
			claim = &report.Claim{Count: n}
		}
	default:
		var rd io.Reader = file
		if !hasFile {
			if len(d.IDs) > maxPasted {
				fields["ids"] = fmt.Sprintf("Paste at most %d MiB of control IDs; choose a file for more.", maxPasted>>20)
				break
			}
			rd = strings.NewReader(d.IDs)
		}
		c, err := report.ParseControlIDs(rd)
		switch {
		case errors.Is(err, report.ErrClaimTooLarge):
			fields["claim"] = sentence(strings.TrimPrefix(err.Error(), "report: "))
		case err != nil:
			fields["claim"] = "The control-ID file could not be read."
		default:
			claim = c
		}
	}
	if len(fields) > 0 {
		refuse()
		return
	}
	res, err := p.reports.Reconcile(r.Context(), rs, report.Period{Env: env, From: from, To: to.AddDate(0, 0, 1)}, claim)
	if errors.Is(err, report.ErrBadPeriod) {
		fields["to"] = sentence(strings.TrimPrefix(err.Error(), report.ErrBadPeriod.Error()+": "))
		refuse()
		return
	}
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	if len(d.IDs) > 10_000 {
		d.IDs = "" // not sent back into the form: the result lists what matters
	}
	d.R = res
	d.Missing, d.MoreMissing = capList(res.MissingIDs)
	d.Unexpected, d.MoreUnexp = capList(res.UnexpectedIDs)
	d.Rejected, d.MoreRejects = capList(res.RejectedIDs)
	d.Junk = res.Junk
	if len(d.Junk) > maxListed {
		d.Junk, d.MoreJunk = d.Junk[:maxListed], len(d.Junk)-maxListed
	}
	p.render(w, r, s, http.StatusOK, "reconcile", "Reconciliation: "+site.Name, view{Data: d})
}

func capList(ids []string) ([]string, int) {
	if len(ids) > maxListed {
		return ids[:maxListed], len(ids) - maxListed
	}
	return ids, 0
}
