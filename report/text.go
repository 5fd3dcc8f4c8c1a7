package report

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// maxListed bounds the control IDs a text report lists per kind (the CSV lists them all).
const maxListed = 20

func pct(r float64) string { return fmt.Sprintf("%.1f%%", 100*r) }

// WriteText writes the certification status for people: the cases, what failed and why, the
// findings by rule and the readiness checklist.
func (c *Certification) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("Certification of site %s (%s), status %s, against %q", c.Site.Code, c.Site.Name, c.Site.Status, c.Plan)
	if c.PlanVersion != "" {
		ew.printf(" version %s", c.PlanVersion)
	}
	ew.printf("\n%d test messages read (%d matched no case, %d unreadable)\n", c.Messages, c.Unmatched, c.Unreadable)
	ew.printf("Cases: %d passed, %d failed, %d not yet attempted, of %d\n\n", c.Passed, c.Failed, c.NotAttempted, len(c.Cases))
	tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CASE\tSTATUS\tATTEMPTS\tLATEST\tACK (EXPECTED)")
	for _, r := range c.Cases {
		latest, got := "-", "-"
		if r.Latest != nil {
			latest, got = r.Latest.ControlID, r.Latest.ACK
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s (%s)\n", r.ID, strings.ToUpper(r.Status), r.Attempts, latest, got, strings.Join(r.Expect, "/"))
	}
	_ = tw.Flush()
	for _, r := range c.Cases {
		if r.Status != CaseFailed || r.Latest == nil {
			continue
		}
		ew.printf("\nFAILED %s (%s): message %s got %s, expected %s\n", r.ID, r.Title, r.Latest.ControlID, r.Latest.ACK, strings.Join(r.Expect, " or "))
		if len(r.Latest.Findings) == 0 {
			ew.printf("  (no errors or warnings were archived with it)\n")
		}
		for _, f := range r.Latest.Findings {
			ew.printf("  %s %s %s: %s\n", f.Severity, f.Rule, f.Location, f.Text)
		}
	}
	var open []string
	for _, r := range c.Cases {
		if r.Status == CaseNotAttempted {
			open = append(open, r.ID)
		}
	}
	if len(open) > 0 {
		ew.printf("\nNot yet attempted: %s\n", strings.Join(open, ", "))
	}
	if len(c.Findings) > 0 {
		ew.printf("\nFindings by rule (messages, share, examples):\n")
		tw = tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
		for _, f := range c.Findings {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", f.Severity, f.Rule, f.Messages, pct(f.Rate), strings.Join(f.Examples, " "))
		}
		_ = tw.Flush()
	}
	ew.printf("\nReadiness for production:\n")
	for _, r := range c.Readiness {
		mark := "[ ]"
		who := ""
		if r.Signed {
			mark = "[x]"
			who = fmt.Sprintf(" (signed off by %s, %s)", r.SignedBy, r.SignedAt.Format(time.RFC3339))
		}
		ew.printf("  %s %s: %s%s\n", mark, r.ID, r.Title, who)
	}
	allPassed := "[ ]"
	if c.Passed == len(c.Cases) {
		allPassed = "[x]"
	}
	ew.printf("  %s every test case passed\n", allPassed)
	if c.Ready {
		ew.printf("READY for production\n")
	} else {
		ew.printf("NOT READY for production\n")
	}
	return ew.err
}

// WriteText writes the data-quality report for people.
func (q *Quality) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("Data quality of site %s (%s), environment %s, %s to %s (exclusive)\n", q.Site.Code, q.Site.Name, q.Env,
		q.From.Format(time.RFC3339), q.To.Format(time.RFC3339))
	v := q.Volume
	ew.printf("\nMessages: %d (AA %d, AE %d, AR %d; %d resent copies, %d unreadable)\n", v.Messages, v.AA, v.AE, v.AR, v.Resends, v.Unreadable)
	ew.printf("With errors: %d (%s); with warnings: %d (%s)\n", v.WithErrors, pct(v.ErrorRate), v.WithWarnings, pct(v.WarningRate))
	ew.printf("Doses: %d administered, %d historical; %d refusals; %d evidence of immunity\n", v.Administered, v.Historical, v.Refusals, v.Immunity)
	if len(q.Rules) > 0 {
		ew.printf("\nFindings by rule (messages, share of messages):\n")
		tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
		for _, r := range q.Rules {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\n", r.Severity, r.Rule, r.Messages, pct(r.Rate))
		}
		_ = tw.Flush()
	}
	ew.printf("\nCompleteness:\n")
	tw := tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
	for _, c := range q.Completeness {
		fmt.Fprintf(tw, "  %s\t%d of %d %s\t%s\n", c.Item, c.Count, c.Total, c.Of, pct(c.Rate))
	}
	_ = tw.Flush()
	t := q.Timeliness
	ew.printf("\nTimeliness (administration to receipt, %d administered doses; mean %.1f days):\n", t.Doses, t.MeanDays)
	for _, b := range []struct {
		label string
		n     int64
	}{{"within 1 day", t.Within1}, {"2 to 7 days", t.Within7}, {"8 to 30 days", t.Within30}, {"more than 30 days", t.Later}} {
		ew.printf("  %-18s %d (%s)\n", b.label, b.n, pct(rate(b.n, t.Doses)))
	}
	if len(q.Weeks) > 0 {
		ew.printf("\nBy week:\n")
		tw = tabwriter.NewWriter(ew, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  WEEK OF\tMESSAGES\tAE\tAR\tERRORS\tWARNINGS\tDOSES\tLOT\tWITHIN 1 DAY")
		for _, wk := range q.Weeks {
			fmt.Fprintf(tw, "  %s\t%d\t%d\t%d\t%s\t%s\t%d\t%s\t%s\n", wk.Start.Format(time.DateOnly), wk.Messages, wk.AE, wk.AR,
				pct(wk.ErrorRate), pct(wk.WarningRate), wk.Administered, pct(wk.LotRate), pct(wk.Within1Rate))
		}
		_ = tw.Flush()
	}
	return ew.err
}

// WriteText writes the reconciliation for people.
func (r *Reconciliation) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("Message counts of site %s (%s), environment %s, %s to %s (exclusive)\n", r.Site.Code, r.Site.Name, r.Env,
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339))
	ew.printf("Claimed by the site: %d (%s)\n", r.Claimed, map[string]string{"count": "a count", "control-ids": "control IDs from a file"}[r.ClaimKind])
	ew.printf("Received: %d distinct control IDs: %d accepted (AA/AE), %d rejected (AR)\n", r.Received, r.Accepted, r.Rejected)
	if r.ClaimKind == "control-ids" {
		ew.printf("Of the claimed IDs: %d received and accepted, %d received and rejected, %d missing\n", r.ClaimedAccepted, r.ClaimedRejected, r.Missing)
		ew.printf("Received but not claimed (unexpected): %d\n", r.Unexpected)
		list := func(what string, ids []string) {
			if len(ids) == 0 {
				return
			}
			shown := ids[:min(len(ids), maxListed)]
			ew.printf("%s: %s", what, strings.Join(shown, " "))
			if len(ids) > len(shown) {
				ew.printf(" ... and %d more (--csv lists them all)", len(ids)-len(shown))
			}
			ew.printf("\n")
		}
		list("Missing", r.MissingIDs)
		list("Rejected", r.RejectedIDs)
		list("Unexpected", r.UnexpectedIDs)
	} else {
		ew.printf("Missing (claimed but not received): %d; unexpected (received beyond the claim): %d\n", r.Missing, r.Unexpected)
	}
	if r.DuplicateLines > 0 {
		ew.printf("Duplicate lines in the file: %d (counted once)\n", r.DuplicateLines)
	}
	if len(r.Junk) > 0 {
		ew.printf("Junk lines skipped:\n")
		for _, j := range r.Junk {
			if j.Line == 0 {
				ew.printf("  %s\n", j.Reason)
				continue
			}
			ew.printf("  line %d: %s\n", j.Line, j.Reason)
		}
	}
	if r.Missing == 0 && r.Unexpected == 0 {
		ew.printf("RECONCILED: the counts agree\n")
	} else {
		ew.printf("NOT RECONCILED: %d missing, %d unexpected\n", r.Missing, r.Unexpected)
	}
	return ew.err
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }
