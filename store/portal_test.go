package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestSiteIntake: counts per day, environment and ACK code; findings ranked by the number of
// messages that reported them, with the newest control IDs and the newest listed text — read from
// the messages' finding keys (report facts, which count the findings the ACK did not list too),
// or from their listed findings when they have no facts yet (archived before intake wrote them);
// the latest messages; other sites and older days left out.
func TestSiteIntake(t *testing.T) {
	ctx := context.Background()
	db := storetest.New(t)
	var org, site, other int64
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('O', 'O') RETURNING id`).Scan(&org))
	must(db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name) VALUES ($1, 'S1', 'S1') RETURNING id`, org).Scan(&site))
	must(db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name) VALUES ($1, 'S2', 'S2') RETURNING id`, org).Scan(&other))
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	n := 0
	// keys nil: a message without report facts (finding_keys NULL).
	add := func(siteID int64, at time.Time, env, code, findings string, keys ...string) {
		t.Helper()
		n++
		var fk []string
		if keys != nil {
			fk = keys
		}
		_, err := db.Pool.Exec(ctx, `INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key,
				readable, finding_keys)
			VALUES ($1, $2, 'mllp', $3, $4, '\x00', '\x00', $5, $6, false, $7::text[] IS NOT NULL, $7)`, env, siteID, fmt.Sprintf("C%d", n), at, code, findings, fk)
		must(err)
	}
	w1 := `[{"rule":"r.one","severity":"W","code":101,"text":"one"}]`
	w2 := `[{"rule":"r.one","severity":"W","code":101,"text":"one again"},{"rule":"r.two","severity":"E","code":103,"text":"two"}]`
	twice := `[{"rule":"r.one","severity":"W","code":101,"text":"first"},{"rule":"r.one","severity":"W","code":101,"text":"second"}]`
	add(site, day.Add(time.Hour), "P", "AA", `[]`, []string{}...)                     // C1: facts, no finding
	add(site, day.Add(2*time.Hour), "P", "AE", w1)                                    // C2: no facts
	add(site, day.Add(3*time.Hour), "T", "AE", w1, "W:r.one")                         // C3
	add(site, day.Add(25*time.Hour), "P", "AR", w2, "E:r.two", "I:r.more", "W:r.one") // C4: r.more not listed
	add(site, day.Add(-48*time.Hour), "P", "AE", w2, "E:r.two", "W:r.one")            // C5: before the period
	add(other, day.Add(time.Hour), "P", "AE", w2, "E:r.two", "W:r.one")               // C6: another site
	add(site, day.Add(4*time.Hour), "P", "AE", twice)                                 // C7: no facts, r.one twice
	// C8: rejected before its environment was known (env null).
	_, err := db.Pool.Exec(ctx, `INSERT INTO messages (site_id, transport, control_id, received_at, raw, ack, ack_code, resend_key)
		VALUES ($1, 'mllp', 'C8', $2, '\x00', '\x00', 'AR', false)`, site, day.Add(26*time.Hour))
	must(err)
	in, err := db.SiteIntake(ctx, site, day, 10, 3)
	must(err)
	var got []string
	for _, d := range in.Days {
		got = append(got, fmt.Sprintf("%s %s %s %d", d.Day.Format(time.DateOnly), d.Env, d.Code, d.Count))
	}
	want := []string{"2026-11-20 P AA 1", "2026-11-20 P AE 2", "2026-11-20 T AE 1", "2026-11-21  AR 1", "2026-11-21 P AR 1"}
	if !slices.Equal(got, want) {
		t.Errorf("days = %v, want %v", got, want)
	}
	// r.one: C2 and C7 from their listed findings (C7's twice, counted once), C3 and C4 from their
	// keys; r.more only among C4's keys (no listed text); ties by severity and rule.
	var findings []string
	for _, f := range in.Findings {
		findings = append(findings, fmt.Sprintf("%s %s %d %v %q", f.Severity, f.Rule, f.Count, f.ControlIDs, f.Example))
	}
	wantFindings := []string{`W r.one 4 [C7 C4 C3 C2] "first"`, `E r.two 1 [C4] "two"`, `I r.more 1 [C4] ""`}
	if !slices.Equal(findings, wantFindings) {
		t.Errorf("findings = %q, want %q", findings, wantFindings)
	}
	// At most top rules.
	in2, err := db.SiteIntake(ctx, site, day, 1, 3)
	must(err)
	if len(in2.Findings) != 1 || in2.Findings[0].Rule != "r.one" {
		t.Errorf("top 1: %+v", in2.Findings)
	}
	var latest []string
	for _, m := range in.Latest {
		latest = append(latest, m.ControlID+" "+m.Code)
	}
	if !slices.Equal(latest, []string{"C8 AR", "C4 AR", "C7 AE"}) {
		t.Errorf("latest = %v", latest)
	}
}
