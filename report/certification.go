package report

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// Case statuses.
const (
	CasePassed       = "passed"
	CaseFailed       = "failed"
	CaseNotAttempted = "not-attempted"
)

// Certification is a site's certification status against a test plan, from the messages it sent
// to the test environment.
type Certification struct {
	Site        Site      `json:"site"`
	Plan        string    `json:"plan"`
	PlanVersion string    `json:"plan_version,omitempty"`
	GeneratedAt time.Time `json:"generated_at"`
	// Messages is the number of test-environment messages read (resent copies excluded);
	// Unmatched those that are an attempt at no case; Unreadable those that do not parse.
	Messages   int `json:"messages"`
	Unmatched  int `json:"unmatched"`
	Unreadable int `json:"unreadable"`

	Passed       int          `json:"passed"`
	Failed       int          `json:"failed"`
	NotAttempted int          `json:"not_attempted"`
	Cases        []CaseResult `json:"cases"`
	// Findings are the findings of the site's test messages, by rule.
	Findings []RuleCount `json:"findings"`
	// Readiness is the production-readiness checklist and who signed off what.
	Readiness []ReadinessStatus `json:"readiness"`
	// Ready is true when every case passed and every readiness item is signed off.
	Ready bool `json:"ready"`
}

// CaseResult is where a site stands on one test case. The latest attempt decides: a site that
// fixes a failed case passes it by sending it again.
type CaseResult struct {
	ID       string   `json:"id"`
	Title    string   `json:"title"`
	Status   string   `json:"status"` // passed, failed, not-attempted
	Expect   []string `json:"expect_ack"`
	Attempts int      `json:"attempts"`
	Passes   int      `json:"passes"`
	Latest   *Attempt `json:"latest,omitempty"`
}

// Attempt is one message that is an attempt at a case.
type Attempt struct {
	ControlID  string    `json:"control_id"`
	ReceivedAt time.Time `json:"received_at"`
	ACK        string    `json:"ack"`
	Passed     bool      `json:"passed"`
	// Findings are the message's errors and warnings (what to fix), when it failed.
	Findings []Finding `json:"findings,omitempty"`
}

// RuleCount is how many messages had a finding of one rule at one severity, with examples.
type RuleCount struct {
	Rule     string   `json:"rule"`
	Severity string   `json:"severity"`
	Messages int      `json:"messages"`
	Rate     float64  `json:"rate"` // share of the messages, 0..1
	Examples []string `json:"examples,omitempty"`
}

// ReadinessStatus is one readiness item and its sign-off, if any.
type ReadinessStatus struct {
	ID       string     `json:"id"`
	Title    string     `json:"title"`
	Signed   bool       `json:"signed"`
	SignedBy string     `json:"signed_by,omitempty"`
	SignedAt *time.Time `json:"signed_at,omitempty"`
	Note     string     `json:"note,omitempty"`
}

// maxExamples bounds the example control IDs of a rule.
const maxExamples = 3

// Certifier builds a Certification from a site's test messages, given in the order they were
// received.
type Certifier struct {
	plan     *Plan
	c        Certification
	msg      hl7.Message
	facts    Facts
	matched  []int
	rules    map[ruleKey]*RuleCount
	ruleSeen map[ruleKey]bool
}

type ruleKey struct{ rule, severity string }

// NewCertifier starts a certification of site against plan.
func NewCertifier(plan *Plan, site Site) *Certifier {
	z := &Certifier{plan: plan, rules: map[ruleKey]*RuleCount{}, ruleSeen: map[ruleKey]bool{}}
	z.c = Certification{Site: site, Plan: plan.Name, PlanVersion: plan.Version}
	for _, cs := range plan.Cases {
		z.c.Cases = append(z.c.Cases, CaseResult{ID: cs.ID, Title: cs.Title, Status: CaseNotAttempted, Expect: cs.ExpectACK})
	}
	return z
}

// Add reads one archived test message. Resent copies (answered with the original's ACK) are
// skipped: the original counts.
func (z *Certifier) Add(a *Archived) {
	if a.Resend {
		return
	}
	z.c.Messages++
	clear(z.ruleSeen)
	for _, f := range a.Findings {
		k := ruleKey{f.Rule, f.Severity}
		if z.ruleSeen[k] {
			continue
		}
		z.ruleSeen[k] = true
		rc := z.rules[k]
		if rc == nil {
			rc = &RuleCount{Rule: f.Rule, Severity: f.Severity}
			z.rules[k] = rc
		}
		rc.Messages++
		if len(rc.Examples) < maxExamples && !slices.Contains(rc.Examples, a.ControlID) {
			rc.Examples = append(rc.Examples, a.ControlID)
		}
	}
	if err := z.msg.Parse(a.Raw); err != nil {
		z.c.Unreadable++
		return
	}
	Extract(&z.msg, a.ReceivedAt, &z.facts)
	z.matched = z.plan.Match(z.matched[:0], &z.msg, &z.facts)
	if len(z.matched) == 0 {
		z.c.Unmatched++
		return
	}
	for _, i := range z.matched {
		cs, res := &z.plan.Cases[i], &z.c.Cases[i]
		at := &Attempt{ControlID: a.ControlID, ReceivedAt: a.ReceivedAt, ACK: a.ACKCode, Passed: cs.Passes(a.ACKCode)}
		res.Attempts++
		if at.Passed {
			res.Passes++
			res.Status = CasePassed
		} else {
			res.Status = CaseFailed
			for _, f := range a.Findings {
				if f.Severity == "E" || f.Severity == "W" {
					at.Findings = append(at.Findings, f)
				}
			}
		}
		res.Latest = at
	}
}

// Result returns the certification, with the readiness checklist and its sign-offs.
func (z *Certifier) Result(signOffs []SignOff, now time.Time) *Certification {
	c := z.c
	c.GeneratedAt = now.UTC()
	c.Cases = slices.Clone(z.c.Cases)
	c.Passed, c.Failed, c.NotAttempted = 0, 0, 0
	for _, r := range c.Cases {
		switch r.Status {
		case CasePassed:
			c.Passed++
		case CaseFailed:
			c.Failed++
		default:
			c.NotAttempted++
		}
	}
	c.Findings = sortedRules(z.rules, c.Messages)
	latest := map[string]SignOff{}
	for _, s := range signOffs {
		if prev, ok := latest[s.Item]; !ok || s.At.After(prev.At) || s.At.Equal(prev.At) && s.ID > prev.ID {
			latest[s.Item] = s
		}
	}
	c.Ready = c.Passed == len(c.Cases)
	for _, it := range z.plan.Readiness {
		st := ReadinessStatus{ID: it.ID, Title: it.Title}
		if s, ok := latest[it.ID]; ok && !s.Revoked {
			at := s.At.UTC()
			st.Signed, st.SignedBy, st.SignedAt, st.Note = true, s.By, &at, s.Note
		}
		if !st.Signed {
			c.Ready = false
		}
		c.Readiness = append(c.Readiness, st)
	}
	return &c
}

// sortedRules orders rule counts by severity (E, W, I), then count, then rule.
func sortedRules(m map[ruleKey]*RuleCount, messages int) []RuleCount {
	out := make([]RuleCount, 0, len(m))
	for _, rc := range m {
		r := *rc
		if messages > 0 {
			r.Rate = float64(r.Messages) / float64(messages)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b RuleCount) int {
		return cmp.Or(cmp.Compare(severityRank(a.Severity), severityRank(b.Severity)),
			cmp.Compare(b.Messages, a.Messages), cmp.Compare(a.Rule, b.Rule))
	})
	return out
}

func severityRank(s string) int {
	switch s {
	case "E":
		return 0
	case "W":
		return 1
	case "I":
		return 2
	}
	return 3
}

// WriteCSV writes the certification as one table: a row per case (status, attempts, latest
// message, its ACK, and its errors and warnings when it failed), per rule and per readiness item.
func (c *Certification) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"kind", "id", "status", "count", "control_id", "ack", "expected", "detail"})
	for _, r := range c.Cases {
		ctl, got, detail := "", "", ""
		if r.Latest != nil {
			ctl, got = r.Latest.ControlID, r.Latest.ACK
			var parts []string
			for _, f := range r.Latest.Findings {
				parts = append(parts, f.Severity+" "+f.Rule+" "+f.Location+": "+f.Text)
			}
			detail = strings.Join(parts, "; ")
		}
		_ = cw.Write([]string{"case", r.ID, r.Status, strconv.Itoa(r.Attempts), ctl, got, strings.Join(r.Expect, "/"), detail})
	}
	for _, f := range c.Findings {
		_ = cw.Write([]string{"rule", f.Rule, f.Severity, strconv.Itoa(f.Messages), strings.Join(f.Examples, " "), "", "", ""})
	}
	for _, r := range c.Readiness {
		status, detail := "open", ""
		if r.Signed {
			status, detail = "signed", r.SignedBy+" "+r.SignedAt.Format(time.RFC3339)
		}
		_ = cw.Write([]string{"readiness", r.ID, status, "", "", "", "", detail})
	}
	ready := "not-ready"
	if c.Ready {
		ready = "ready"
	}
	_ = cw.Write([]string{"ready", "", ready, "", "", "", "", ""})
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("report: write CSV: %w", err)
	}
	return nil
}
