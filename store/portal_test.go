package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestSiteIntake: counts per day, environment and ACK code; findings ranked by frequency with
// the newest control IDs; the latest messages; other sites and older days left out.
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
	add := func(siteID int64, at time.Time, env, code, findings string) {
		t.Helper()
		n++
		_, err := db.Pool.Exec(ctx, `INSERT INTO messages (env, site_id, transport, control_id, received_at, raw, ack, ack_code, findings, resend_key)
			VALUES ($1, $2, 'mllp', $3, $4, '\x00', '\x00', $5, $6, false)`, env, siteID, fmt.Sprintf("C%d", n), at, code, findings)
		must(err)
	}
	w1 := `[{"rule":"r.one","severity":"W","code":101,"text":"one"}]`
	w2 := `[{"rule":"r.one","severity":"W","code":101,"text":"one again"},{"rule":"r.two","severity":"E","code":103,"text":"two"}]`
	add(site, day.Add(time.Hour), "P", "AA", `[]`)   // C1
	add(site, day.Add(2*time.Hour), "P", "AE", w1)   // C2
	add(site, day.Add(3*time.Hour), "T", "AE", w1)   // C3
	add(site, day.Add(25*time.Hour), "P", "AR", w2)  // C4
	add(site, day.Add(-48*time.Hour), "P", "AE", w2) // C5: before the period
	add(other, day.Add(time.Hour), "P", "AE", w2)    // C6: another site
	// C7: rejected before its environment was known (env null).
	_, err := db.Pool.Exec(ctx, `INSERT INTO messages (site_id, transport, control_id, received_at, raw, ack, ack_code, resend_key)
		VALUES ($1, 'mllp', 'C7', $2, '\x00', '\x00', 'AR', false)`, site, day.Add(26*time.Hour))
	must(err)
	in, err := db.SiteIntake(ctx, site, day, 10, 3)
	must(err)
	var got []string
	for _, d := range in.Days {
		got = append(got, fmt.Sprintf("%s %s %s %d", d.Day.Format(time.DateOnly), d.Env, d.Code, d.Count))
	}
	want := []string{"2026-11-20 P AA 1", "2026-11-20 P AE 1", "2026-11-20 T AE 1", "2026-11-21  AR 1", "2026-11-21 P AR 1"}
	if !slices.Equal(got, want) {
		t.Errorf("days = %v, want %v", got, want)
	}
	if len(in.Findings) != 2 || in.Findings[0].Rule != "r.one" || in.Findings[0].Count != 3 ||
		!slices.Equal(in.Findings[0].ControlIDs, []string{"C4", "C3", "C2"}) || in.Findings[0].Example != "one again" ||
		in.Findings[1].Rule != "r.two" || in.Findings[1].Severity != "E" || in.Findings[1].Count != 1 {
		t.Errorf("findings = %+v", in.Findings)
	}
	var latest []string
	for _, m := range in.Latest {
		latest = append(latest, m.ControlID+" "+m.Code)
	}
	if !slices.Equal(latest, []string{"C7 AR", "C4 AR", "C3 AE"}) {
		t.Errorf("latest = %v", latest)
	}
}
