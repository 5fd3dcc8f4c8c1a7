package report

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// Quality is a data-quality report of a site for a period and environment.
type Quality struct {
	Site        Site      `json:"site"`
	Env         string    `json:"env"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"` // exclusive
	GeneratedAt time.Time `json:"generated_at"`
	// Summarized is how many messages this report summarized for the first time.
	Summarized int64 `json:"summarized"`

	Volume       Volume         `json:"volume"`
	Rules        []RuleCount    `json:"rules"`
	Completeness []Completeness `json:"completeness"`
	Timeliness   Timeliness     `json:"timeliness"`
	Weeks        []Week         `json:"weeks"`
}

// Volume counts messages and what they reported. Messages excludes resent copies (counted in
// Resends); rates are shares of Messages.
type Volume struct {
	Messages     int64   `json:"messages"`
	AA           int64   `json:"aa"`
	AE           int64   `json:"ae"`
	AR           int64   `json:"ar"`
	Resends      int64   `json:"resends"`
	Unreadable   int64   `json:"unreadable"`
	WithErrors   int64   `json:"with_errors"`
	WithWarnings int64   `json:"with_warnings"`
	ErrorRate    float64 `json:"error_rate"`
	WarningRate  float64 `json:"warning_rate"`
	Administered int64   `json:"administered_doses"`
	Historical   int64   `json:"historical_doses"`
	Refusals     int64   `json:"refusals"`
	Immunity     int64   `json:"immunity"`
}

// Completeness is how many of the doses (or messages) have one item.
type Completeness struct {
	Item  string  `json:"item"`
	Of    string  `json:"of"` // "administered doses" or "messages"
	Count int64   `json:"count"`
	Total int64   `json:"total"`
	Rate  float64 `json:"rate"`
}

// Timeliness is how long after administration the administered doses were received.
type Timeliness struct {
	Doses    int64   `json:"doses"`
	Within1  int64   `json:"within_1_day"`
	Within7  int64   `json:"within_7_days"`  // 2 to 7 days
	Within30 int64   `json:"within_30_days"` // 8 to 30 days
	Later    int64   `json:"later"`          // more than 30 days
	MeanDays float64 `json:"mean_days"`
}

// Week is one week of the trend (weeks start on Monday, UTC).
type Week struct {
	Start        time.Time `json:"start"`
	Messages     int64     `json:"messages"`
	AA           int64     `json:"aa"`
	AE           int64     `json:"ae"`
	AR           int64     `json:"ar"`
	WithErrors   int64     `json:"with_errors"`
	ErrorRate    float64   `json:"error_rate"`
	WarningRate  float64   `json:"warning_rate"`
	Administered int64     `json:"administered_doses"`
	LotRate      float64   `json:"lot_rate"`
	Within1Rate  float64   `json:"within_1_day_rate"`
}

// ErrBadPeriod is the answer to a period that ends before it starts or is too long.
var ErrBadPeriod = fmt.Errorf("report: bad period")

// maxPeriod bounds a report's period.
const maxPeriod = 400 * 24 * time.Hour

func checkPeriod(p Period) error {
	switch {
	case p.Env != "P" && p.Env != "T":
		return fmt.Errorf("%w: environment %q is not P or T", ErrBadPeriod, p.Env)
	case p.From.IsZero() || p.To.IsZero():
		return fmt.Errorf("%w: from and to are required", ErrBadPeriod)
	case !p.To.After(p.From):
		return fmt.Errorf("%w: to (%s) must be after from (%s)", ErrBadPeriod, p.To.Format(time.RFC3339), p.From.Format(time.RFC3339))
	case p.To.Sub(p.From) > maxPeriod:
		return fmt.Errorf("%w: a report covers at most 400 days", ErrBadPeriod)
	}
	return nil
}

func rate(n, of int64) float64 {
	if of == 0 {
		return 0
	}
	return float64(n) / float64(of)
}

// Quality reports on the site's messages of the period: it summarizes those not summarized yet,
// then adds up the summaries.
func (s *Service) Quality(ctx context.Context, site *Site, p Period) (*Quality, error) {
	p.SiteID = site.ID
	if err := checkPeriod(p); err != nil {
		return nil, err
	}
	n, err := s.Summarize(ctx, p)
	if err != nil {
		return nil, err
	}
	t, err := s.st.QualityTallies(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("report: quality of site %s: %w", site.Code, err)
	}
	q := &Quality{Site: *site, Env: p.Env, From: p.From.UTC(), To: p.To.UTC(), GeneratedAt: s.o.Now().UTC(), Summarized: n}
	tt := t.Total
	q.Volume = Volume{Messages: tt.Messages, AA: tt.AA, AE: tt.AE, AR: tt.AR, Resends: tt.Resends, Unreadable: tt.Unreadable,
		WithErrors: tt.WithErrors, WithWarnings: tt.WithWarnings,
		ErrorRate: rate(tt.WithErrors, tt.Messages), WarningRate: rate(tt.WithWarnings, tt.Messages),
		Administered: tt.Administered, Historical: tt.Historical, Refusals: tt.Refusals, Immunity: tt.Immunity}
	for _, r := range t.Rules {
		q.Rules = append(q.Rules, RuleCount{Rule: r.Rule, Severity: r.Severity, Messages: int(r.Messages), Rate: rate(r.Messages, tt.Messages)})
	}
	q.Rules = sortedRuleList(q.Rules)
	doses := func(item string, n int64) Completeness {
		return Completeness{Item: item, Of: "administered doses", Count: n, Total: tt.Administered, Rate: rate(n, tt.Administered)}
	}
	readable := tt.Messages - tt.Unreadable
	msgs := func(item string, n int64) Completeness {
		return Completeness{Item: item, Of: "messages", Count: n, Total: readable, Rate: rate(n, readable)}
	}
	q.Completeness = []Completeness{
		doses("lot number", tt.WithLot), doses("manufacturer", tt.WithMVX),
		doses("funding eligibility", tt.WithFunding), doses("VIS date", tt.WithVIS),
		msgs("race", tt.Race), msgs("ethnicity", tt.Ethnicity), msgs("address", tt.Address),
	}
	lagged := tt.Lag1 + tt.Lag7 + tt.Lag30 + tt.LagLate
	q.Timeliness = Timeliness{Doses: lagged, Within1: tt.Lag1, Within7: tt.Lag7, Within30: tt.Lag30, Later: tt.LagLate}
	if lagged > 0 {
		q.Timeliness.MeanDays = float64(tt.LagDays) / float64(lagged)
	}
	q.Weeks = []Week{}
	for _, w := range t.Weeks {
		q.Weeks = append(q.Weeks, Week{Start: w.Week.UTC(), Messages: w.Messages, AA: w.AA, AE: w.AE, AR: w.AR, WithErrors: w.WithErrors,
			ErrorRate: rate(w.WithErrors, w.Messages), WarningRate: rate(w.WithWarnings, w.Messages),
			Administered: w.Administered, LotRate: rate(w.WithLot, w.Administered),
			Within1Rate: rate(w.Lag1, w.Lag1+w.Lag7+w.Lag30+w.LagLate)})
	}
	return q, nil
}

func sortedRuleList(rs []RuleCount) []RuleCount {
	m := map[ruleKey]*RuleCount{}
	for i := range rs {
		m[ruleKey{rs[i].Rule, rs[i].Severity}] = &rs[i]
	}
	out := sortedRules(m, 0)
	for i := range out {
		out[i].Rate = m[ruleKey{out[i].Rule, out[i].Severity}].Rate
	}
	if out == nil {
		out = []RuleCount{}
	}
	return out
}

// WriteCSV writes the report as one table: section, item, count, total, rate, with a row per
// volume figure, rule, completeness item, timeliness bucket and week.
func (q *Quality) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	row := func(section, item string, count, total int64) {
		r := ""
		if total > 0 {
			r = strconv.FormatFloat(float64(count)/float64(total), 'f', 4, 64)
		}
		_ = cw.Write([]string{section, item, strconv.FormatInt(count, 10), strconv.FormatInt(total, 10), r})
	}
	_ = cw.Write([]string{"section", "item", "count", "total", "rate"})
	v := q.Volume
	for _, x := range []struct {
		item string
		n    int64
	}{{"messages", v.Messages}, {"AA", v.AA}, {"AE", v.AE}, {"AR", v.AR}, {"with errors", v.WithErrors},
		{"with warnings", v.WithWarnings}, {"unreadable", v.Unreadable}} {
		row("volume", x.item, x.n, v.Messages)
	}
	row("volume", "resent copies", v.Resends, 0)
	row("volume", "administered doses", v.Administered, 0)
	row("volume", "historical doses", v.Historical, 0)
	row("volume", "refusals", v.Refusals, 0)
	row("volume", "evidence of immunity", v.Immunity, 0)
	for _, r := range q.Rules {
		row("rule "+r.Severity, r.Rule, int64(r.Messages), v.Messages)
	}
	for _, c := range q.Completeness {
		row("completeness ("+c.Of+")", c.Item, c.Count, c.Total)
	}
	t := q.Timeliness
	row("timeliness", "within 1 day", t.Within1, t.Doses)
	row("timeliness", "2 to 7 days", t.Within7, t.Doses)
	row("timeliness", "8 to 30 days", t.Within30, t.Doses)
	row("timeliness", "more than 30 days", t.Later, t.Doses)
	for _, wk := range q.Weeks {
		d := wk.Start.Format(time.DateOnly)
		row("week "+d, "messages", wk.Messages, 0)
		row("week "+d, "AE", wk.AE, wk.Messages)
		row("week "+d, "AR", wk.AR, wk.Messages)
		row("week "+d, "with errors", wk.WithErrors, wk.Messages)
		row("week "+d, "administered doses", wk.Administered, 0)
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: write CSV: %w", err)
	}
	return nil
}
