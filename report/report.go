// Package report is the registry's view of onboarding and of a site's traffic: certification runs
// against a test plan (a checklist of test cases, as YAML data), the production-readiness checklist
// the registry signs off, data-quality reports for a period and environment, and message-count
// reconciliation against what a site says it sent.
//
// Results are plain Go values (Certification, Quality, Reconciliation) with JSON tags and CSV
// writers, rendered by `vaxgate report`, by the JSON API (Handler) and by the portal's pages.
//
// How it reads the archive: certification re-reads a site's test-environment messages (raw, with
// their ACK code and findings) and matches each to the plan's cases with the zero-copy parser, at
// report time, so that a registry may change its plan and see the result at once, and intake does
// no work for it. Quality reports add up the facts of each archived message (its ACK code,
// finding keys, completeness and timeliness counts: FactsRow), which the store keeps as columns
// of the archive row: the store's writer writes them with the row, in the same statement, from
// the message it has just received (ReadContent, NewFactsRow); a report fills them for the
// messages of the period that have none — archived before facts were written at intake, or by
// anything else than the writer — before it aggregates (Summarize), from the archived copy and
// with the same functions. Reconciliation reads the period's control IDs and ACK codes from the
// archive (it needs no facts). vaxgate serve
// catches up the last days once after it starts and rolls closed days up (RunSummaries, the store's
// report_days), so that a quality report over a past month reads a row per day.
package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/hl7"
)

// Site is the site a report is about.
type Site struct {
	ID     int64      `json:"id"`
	Code   string     `json:"code"`
	Name   string     `json:"name"`
	Status string     `json:"status"`
	GoLive *time.Time `json:"go_live_date,omitempty"`
}

// Finding is a finding as archived with a message.
type Finding struct {
	Rule     string `json:"rule"`
	Severity string `json:"severity"`
	Location string `json:"location,omitempty"`
	Code     int    `json:"code"`
	Text     string `json:"text"`
}

// Archived is one message of the archive as the reports read it.
type Archived struct {
	ID         int64
	SiteID     int64
	Env        string
	ControlID  string
	ReceivedAt time.Time
	ACKCode    string
	// Resend marks the archived copy of a resend, answered with the original's ACK.
	Resend   bool
	Findings []Finding // certification reads them in full
	// FindingKeys are the distinct "severity:rule" of the findings (summaries read only these).
	FindingKeys []string
	Raw         []byte
}

// Period selects a site's messages of one environment received in [From, To).
type Period struct {
	SiteID int64
	Env    string // "P" or "T"
	From   time.Time
	To     time.Time
}

// FactsRow is the summary of one archived message that quality reports read: its archive
// columns (message, site, environment, receipt, control ID, ACK code, resend flag) and its facts.
type FactsRow struct {
	MessageID  int64
	SiteID     int64
	Env        string
	ReceivedAt time.Time
	ControlID  string
	ACKCode    string
	Resend     bool
	Errors     bool // any finding of severity E
	Warnings   bool // any finding of severity W
	Findings   []string
	Facts      Facts
	Readable   bool // the raw message parsed
}

// Tally is what a set of summaries adds up to.
type Tally struct {
	Messages, AA, AE, AR, Resends, WithErrors, WithWarnings, Unreadable int64
	Administered, Historical, Refusals, Immunity                        int64
	WithLot, WithMVX, WithFunding, WithVIS                              int64
	Race, Ethnicity, Address                                            int64
	Lag1, Lag7, Lag30, LagLate, LagDays                                 int64
}

// WeekTally is the tally of one week (starting Monday, UTC).
type WeekTally struct {
	Week time.Time
	Tally
}

// RuleTally counts the messages with a finding of one rule at one severity.
type RuleTally struct {
	Rule, Severity string
	Messages       int64
}

// Tallies is what the store adds up for a quality report. Resent copies are counted in Resends
// only.
type Tallies struct {
	Total Tally
	Weeks []WeekTally
	Rules []RuleTally
}

// ControlIDStatus is one control ID a site used in a period: how many archived messages carry it
// and whether one of them was accepted (AA or AE).
type ControlIDStatus struct {
	ControlID string
	Messages  int
	Accepted  bool
}

// SignOff is a readiness item signed off (or the sign-off revoked) by registry staff.
type SignOff struct {
	ID      int64     `json:"id"`
	SiteID  int64     `json:"site_id"`
	Item    string    `json:"item"`
	By      string    `json:"by"`
	UserID  *int64    `json:"user_id,omitempty"`
	At      time.Time `json:"at"`
	Note    string    `json:"note,omitempty"`
	Revoked bool      `json:"revoked"`
}

// Store is what the reports need from the database; package store implements it.
type Store interface {
	// ReportSite returns the site with this id (when not 0) or code; ErrSiteNotFound if none.
	ReportSite(ctx context.Context, id int64, code string) (*Site, error)
	// ReportSites lists every site.
	ReportSites(ctx context.Context) ([]Site, error)
	// TestMessages calls fn for each test-environment (env T) message of the site, in the order
	// received, with its findings and raw bytes.
	TestMessages(ctx context.Context, siteID int64, fn func(*Archived) error) error
	// MissingFacts returns the ids of the period's archived messages that have no facts yet.
	MissingFacts(ctx context.Context, p Period) ([]int64, error)
	// ArchivedForFacts reads archived messages by id, with FindingKeys and raw bytes.
	ArchivedForFacts(ctx context.Context, ids []int64) ([]*Archived, error)
	// SaveFacts stores the facts of summarized messages; facts a message already has are kept.
	SaveFacts(ctx context.Context, rows []FactsRow) error
	// QualityTallies adds up the summaries of the period, which must be summarized (Summarize):
	// the closed days it reads whole are rolled up as they are, and read from the rollup later.
	QualityTallies(ctx context.Context, p Period) (*Tallies, error)
	// ControlIDs calls fn for each control ID of the period's archived messages.
	ControlIDs(ctx context.Context, p Period, fn func(ControlIDStatus) error) error
	// ControlIDCounts counts the distinct control IDs of the period's archived messages, and those of
	// them with an accepted message.
	ControlIDCounts(ctx context.Context, p Period) (received, accepted int64, err error)
	// SignOffs lists the site's sign-offs, oldest first.
	SignOffs(ctx context.Context, siteID int64) ([]SignOff, error)
	// AddSignOff stores s (setting its ID) and the audit entry e in one transaction.
	AddSignOff(ctx context.Context, s *SignOff, e *admin.AuditEntry) error
}

// ErrSiteNotFound is the answer about a site that does not exist.
var ErrSiteNotFound = errors.New("report: no such site")

// Options configure a Service.
type Options struct {
	Plan    *Plan            // default: DefaultPlan()
	Now     func() time.Time // default: time.Now
	Workers int              // summarizing goroutines (default GOMAXPROCS)
}

// Service produces the reports.
type Service struct {
	st Store
	o  Options
}

// NewService returns a Service over st.
func NewService(st Store, o Options) *Service {
	if o.Plan == nil {
		o.Plan = DefaultPlan()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Workers <= 0 {
		o.Workers = runtime.GOMAXPROCS(0)
	}
	return &Service{st: st, o: o}
}

// Plan is the test plan in use.
func (s *Service) Plan() *Plan { return s.o.Plan }

// Site finds a site by id (when not 0) or code.
func (s *Service) Site(ctx context.Context, id int64, code string) (*Site, error) {
	return s.st.ReportSite(ctx, id, code)
}

// Certification is the site's certification status against the service's plan.
func (s *Service) Certification(ctx context.Context, site *Site) (*Certification, error) {
	z := NewCertifier(s.o.Plan, *site)
	if err := s.st.TestMessages(ctx, site.ID, func(a *Archived) error { z.Add(a); return nil }); err != nil {
		return nil, fmt.Errorf("report: read test messages of site %s: %w", site.Code, err)
	}
	offs, err := s.st.SignOffs(ctx, site.ID)
	if err != nil {
		return nil, fmt.Errorf("report: sign-offs of site %s: %w", site.Code, err)
	}
	return z.Result(offs, s.o.Now()), nil
}

// SignOff records that actor signs off (or, with revoke, withdraws the sign-off of) a readiness
// item of the plan for the site, with an entry in the admin audit log. by names who signs off
// when the actor is an operator tool (the command line); "" is the actor. Who may sign off is
// the caller's decision (the API asks the admin module).
func (s *Service) SignOff(ctx context.Context, actor admin.Actor, site *Site, item, note string, revoke bool, by string) (*SignOff, error) {
	known := false
	var ids []string
	for _, it := range s.o.Plan.Readiness {
		ids = append(ids, it.ID)
		known = known || it.ID == item
	}
	if !known {
		return nil, admin.Invalid("readiness item %q is not in the test plan (items: %s)", item, strings.Join(ids, ", "))
	}
	note = strings.TrimSpace(note)
	if len(note) > 500 || strings.ContainsFunc(note, func(r rune) bool { return r < ' ' }) {
		return nil, admin.Invalid("note must be up to 500 printable characters")
	}
	by = strings.TrimSpace(by)
	if by == "" {
		by = actor.Name
	}
	if len(by) > 200 || strings.ContainsFunc(by, func(r rune) bool { return r < ' ' }) {
		return nil, admin.Invalid("the name of who signs off must be up to 200 printable characters")
	}
	so := &SignOff{SiteID: site.ID, Item: item, By: by, At: s.o.Now().UTC().Truncate(time.Microsecond), Note: note, Revoked: revoke}
	if actor.UserID != 0 {
		id := actor.UserID
		so.UserID = &id
	}
	action := "certification.sign_off"
	if revoke {
		action = "certification.revoke_sign_off"
	}
	type detail struct {
		Item     string `json:"item"`
		SignedBy string `json:"signed_by"`
		Note     string `json:"note,omitempty"`
		Plan     string `json:"plan"`
	}
	after, err := jsonRaw(detail{Item: item, SignedBy: by, Note: note, Plan: s.o.Plan.Name})
	if err != nil {
		return nil, err
	}
	e := &admin.AuditEntry{At: so.At, ActorUserID: so.UserID, Actor: actor.Name, Action: action,
		TargetType: "site", TargetID: fmt.Sprint(site.ID), SiteIDs: []int64{site.ID}, After: after}
	if err := s.st.AddSignOff(ctx, so, e); err != nil {
		return nil, fmt.Errorf("report: sign off %s for site %s: %w", item, site.Code, err)
	}
	return so, nil
}

// SummarizeRecent summarizes the messages every site received since lookback ago that have no
// summary yet, and has the closed days of the lookback rolled up; it returns how many messages it
// summarized. Run periodically (RunSummaries), it keeps summaries and rollups current, so that a
// report finds its period summarized and its past days rolled up.
func (s *Service) SummarizeRecent(ctx context.Context, lookback time.Duration) (int64, error) {
	return s.summarizeRecent(ctx, lookback, true)
}

// summarizeRecent is SummarizeRecent; without open, only the closed days of the lookback that
// are not rolled up yet are summarized (and rolled up), not the days messages still arrive in.
func (s *Service) summarizeRecent(ctx context.Context, lookback time.Duration, open bool) (int64, error) {
	sites, err := s.st.ReportSites(ctx)
	if err != nil {
		return 0, fmt.Errorf("report: list sites: %w", err)
	}
	now := s.o.Now()
	// Whole days: those of the lookback that have been over for an hour (no message of theirs can
	// still arrive) are summarized whole, and the store rolls their tallies up once.
	closedFrom, closedTo := utcDay(now.Add(-lookback)), utcDay(now.Add(-time.Hour))
	var total int64
	for _, site := range sites {
		for _, env := range []string{"P", "T"} {
			to := now.Add(time.Hour)
			if !open {
				to = closedTo
			}
			if to.After(closedFrom) {
				n, err := s.Summarize(ctx, Period{SiteID: site.ID, Env: env, From: closedFrom, To: to})
				total += n
				if err != nil {
					return total, fmt.Errorf("report: summarize site %s: %w", site.Code, err)
				}
			}
			if closedTo.After(closedFrom) {
				p := Period{SiteID: site.ID, Env: env, From: closedFrom, To: closedTo}
				if _, err := s.st.QualityTallies(ctx, p); err != nil {
					return total, fmt.Errorf("report: roll up site %s: %w", site.Code, err)
				}
			}
		}
	}
	return total, nil
}

// utcDay is the start of t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// RunSummaries summarizes the lookback every interval until ctx ends, logging failures (site
// codes only). vaxgate serve runs it with one worker, so that it takes a small, steady share of
// the CPU instead of the first report of a month taking a burst.
//
// Intake writes the facts of every message it archives, so the first run alone looks at the whole
// lookback (SummarizeRecent: the messages archived before this process started, by an earlier
// version or by anything else than the writer). The later ones summarize and roll up only the
// closed days not rolled up yet — once a day closes, one pass over it makes sure it is complete
// before its tallies are frozen — and otherwise cost a look-up in report_days per site and
// environment, whatever the traffic. Finding the messages without facts reads the store's index
// of them, empty but for those, whatever the period's traffic. A message that a later run would
// have found missing (written into the archive by hand) is summarized by the first report that
// covers it, or when its day closes. (An older version still running after the upgrade to facts
// as archive columns archives nothing: its writes name a table that is gone.)
func (s *Service) RunSummaries(ctx context.Context, interval, lookback time.Duration, log *zap.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	caughtUp := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		n, err := s.summarizeRecent(ctx, lookback, !caughtUp)
		caughtUp = caughtUp || err == nil
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("report summaries", zap.Int64("summarized", n), zap.Error(err))
		case n > 0:
			log.Debug("report summaries", zap.Int64("summarized", n), zap.Duration("took", time.Since(start)))
		}
	}
}

// summarizeChunk is how many messages a summarizing goroutine reads, parses and saves at a time.
const summarizeChunk = 2000

// Summarize fills the facts of the period's messages that have none yet: Workers goroutines
// each read a chunk of them, parse their raw bytes and save their facts. It returns how many it
// summarized.
func (s *Service) Summarize(ctx context.Context, p Period) (int64, error) {
	ids, err := s.st.MissingFacts(ctx, p)
	if err != nil {
		return 0, fmt.Errorf("report: find messages to summarize: %w", err)
	}
	if len(ids) == 0 {
		return 0, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	chunks := make(chan []int64)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		done  int64
	)
	fail := func(err error) {
		mu.Lock()
		if first == nil {
			first = err
			cancel()
		}
		mu.Unlock()
	}
	for range min(s.o.Workers, (len(ids)+summarizeChunk-1)/summarizeChunk) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var m hl7.Message
			for chunk := range chunks {
				msgs, err := s.st.ArchivedForFacts(ctx, chunk)
				if err != nil {
					fail(fmt.Errorf("report: read messages to summarize: %w", err))
					continue
				}
				rows := make([]FactsRow, len(msgs))
				for i, a := range msgs {
					summarize(&m, a, &rows[i])
				}
				if err := s.st.SaveFacts(ctx, rows); err != nil {
					fail(fmt.Errorf("report: save summaries: %w", err))
					continue
				}
				mu.Lock()
				done += int64(len(rows))
				mu.Unlock()
			}
		}()
	}
feed:
	for len(ids) > 0 {
		n := min(len(ids), summarizeChunk)
		select {
		case chunks <- ids[:n]:
			ids = ids[n:]
		case <-ctx.Done():
			break feed
		}
	}
	close(chunks)
	wg.Wait()
	if first != nil {
		return done, first
	}
	if err := ctx.Err(); err != nil {
		return done, fmt.Errorf("report: summarize: %w", err)
	}
	return done, nil
}

// summarize builds the facts row of one archived message: what intake writes for it (see
// Content and NewFactsRow), computed from the archived copy.
func summarize(m *hl7.Message, a *Archived, r *FactsRow) {
	var c Content
	ReadContent(m, a.Raw, a.ReceivedAt, &c)
	*r = NewFactsRow(a, &c)
}

// Summarized is the facts row the summaries compute from an archived message, as Summarize
// stores it (m is a reused Message; it keeps a reference to a.Raw). Tests compare it with the
// row intake wrote.
func Summarized(m *hl7.Message, a *Archived) FactsRow {
	var r FactsRow
	summarize(m, a, &r)
	return r
}

// Content is what the reports read from a message's raw bytes: whether they parse as HL7, and
// the facts of what they report. Intake reads it once from the message it receives (the store's
// writer, as it commits the record); the summaries read it from the archived copy of a message
// that has no facts row. Both call ReadContent.
type Content struct {
	Readable bool
	Facts    Facts
}

// ReadContent parses raw into m (reused: parsing allocates nothing once its tables are large
// enough) and reads its facts; receivedAt is when the message arrived, for timeliness.
func ReadContent(m *hl7.Message, raw []byte, receivedAt time.Time, c *Content) {
	*c = Content{}
	if err := m.Parse(raw); err == nil {
		c.Readable = true
		Extract(m, receivedAt, &c.Facts)
	}
}

// NewFactsRow is the facts row of an archived message: a's archive columns (its ID, site,
// environment, receipt, control ID, ACK code, resend flag and finding keys; Raw is not read) and
// the content of its raw bytes. Intake and the summaries both build their rows with it.
func NewFactsRow(a *Archived, c *Content) FactsRow {
	r := FactsRow{MessageID: a.ID, SiteID: a.SiteID, Env: a.Env, ReceivedAt: a.ReceivedAt, ControlID: a.ControlID,
		ACKCode: a.ACKCode, Resend: a.Resend, Findings: a.FindingKeys, Readable: c.Readable, Facts: c.Facts}
	if r.Findings == nil {
		r.Findings = []string{}
	}
	for _, k := range a.FindingKeys {
		r.Errors = r.Errors || strings.HasPrefix(k, "E:")
		r.Warnings = r.Warnings || strings.HasPrefix(k, "W:")
	}
	return r
}

// FindingKeys turns the "severity:rule" of a message's findings into the facts' finding keys:
// distinct and sorted, whatever the order in which the findings were listed (intake has them in
// the order the checks made them, the archive in the order the ACK lists them). keys is sorted
// in place.
func FindingKeys(keys []string) []string {
	slices.Sort(keys)
	return slices.Compact(keys)
}

// jsonRaw encodes v for an audit entry.
func jsonRaw(v any) (json.RawMessage, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("report: encode audit detail: %w", err)
	}
	return b, nil
}
