package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
)

// CheckFacts checks the report facts that intake wrote with the archive rows (the facts columns
// of messages): every archived message of a known site has facts, no message without a site
// has any, and each message's facts equal, column by column, those the reports' summaries
// compute from the archived copy (report.Summarized over store.ReportStore.ArchivedForFacts). It
// returns how many messages it checked.
func CheckFacts(t testing.TB, db *store.DB) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var messages, facts, siteless int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE site_id IS NOT NULL),
			count(*) FILTER (WHERE site_id IS NOT NULL AND readable IS NOT NULL),
			count(*) FILTER (WHERE site_id IS NULL AND readable IS NOT NULL)
		FROM messages`).Scan(&messages, &facts, &siteless); err != nil {
		t.Fatalf("storetest: count report facts: %v", err)
	}
	if facts != messages || siteless != 0 {
		t.Errorf("storetest: %d archived messages of known sites with facts of %d (and %d without a site with facts)",
			facts, messages, siteless)
	}
	// The facts columns are NULL together (migration 014).
	var partial int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE num_nulls(readable, has_errors, has_warnings,
			finding_keys, administered, historical, refusals, immunity, with_lot, with_mvx, with_funding, with_vis,
			has_race, has_ethnicity, has_address, lag_1, lag_7, lag_30, lag_late, lag_days) NOT IN (0, 20)`).Scan(&partial); err != nil {
		t.Fatalf("storetest: count partial facts: %v", err)
	}
	if partial != 0 {
		t.Errorf("storetest: %d archived messages with some facts columns NULL and others not", partial)
	}
	rows, err := db.Pool.Query(ctx, `SELECT id FROM messages WHERE site_id IS NOT NULL ORDER BY id`)
	if err != nil {
		t.Fatalf("storetest: list messages: %v", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatalf("storetest: list messages: %v", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("storetest: list messages: %v", err)
	}
	st := store.NewReportStore(db)
	archived, err := st.ArchivedForFacts(ctx, ids)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	stored, err := st.StoredFacts(ctx, ids)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	byID := make(map[int64]report.FactsRow, len(stored))
	for _, r := range stored {
		byID[r.MessageID] = r
	}
	var m hl7.Message
	for _, a := range archived {
		want := StoredColumns(report.Summarized(&m, a))
		got, ok := byID[a.ID]
		if !ok {
			t.Errorf("storetest: message %d (control ID %s) has no report facts", a.ID, a.ControlID)
			continue
		}
		if d := DiffFacts(got, want); d != "" {
			t.Errorf("storetest: report facts of message %d (control ID %s) written at intake differ from the summaries': %s",
				a.ID, a.ControlID, d)
		}
	}
	return len(archived)
}

// StoredColumns is r as the facts columns of messages store it: the facts no column holds (age, orders, next of
// kin) zeroed, counts clamped to their columns, the time to the microsecond (as pgx sends it).
func StoredColumns(r report.FactsRow) report.FactsRow {
	f := &r.Facts
	f.AgeYears, f.HasAge, f.Orders, f.NextOfKin = 0, false, 0, 0
	for _, p := range []*int{&f.Administered, &f.Historical, &f.Refusals, &f.Immunity, &f.WithLot, &f.WithMVX,
		&f.WithFunding, &f.WithVIS, &f.Lag1, &f.Lag7, &f.Lag30, &f.LagLate} {
		*p = min(*p, 32767)
	}
	f.LagDays = min(f.LagDays, 1<<31-1)
	r.ReceivedAt = r.ReceivedAt.Truncate(time.Microsecond).UTC()
	if r.Findings == nil {
		r.Findings = []string{}
	}
	return r
}

// DiffFacts names the columns in which two facts rows differ ("" when none do).
func DiffFacts(got, want report.FactsRow) string {
	got, want = StoredColumns(got), StoredColumns(want)
	cols := []struct {
		name      string
		got, want any
	}{
		{"message_id", got.MessageID, want.MessageID}, {"site_id", got.SiteID, want.SiteID},
		{"env", got.Env, want.Env}, {"received_at", got.ReceivedAt, want.ReceivedAt},
		{"control_id", got.ControlID, want.ControlID}, {"ack_code", got.ACKCode, want.ACKCode},
		{"resend", got.Resend, want.Resend}, {"readable", got.Readable, want.Readable},
		{"has_errors", got.Errors, want.Errors}, {"has_warnings", got.Warnings, want.Warnings},
		{"findings", fmt.Sprint(got.Findings), fmt.Sprint(want.Findings)},
		{"administered", got.Facts.Administered, want.Facts.Administered},
		{"historical", got.Facts.Historical, want.Facts.Historical},
		{"refusals", got.Facts.Refusals, want.Facts.Refusals}, {"immunity", got.Facts.Immunity, want.Facts.Immunity},
		{"with_lot", got.Facts.WithLot, want.Facts.WithLot}, {"with_mvx", got.Facts.WithMVX, want.Facts.WithMVX},
		{"with_funding", got.Facts.WithFunding, want.Facts.WithFunding},
		{"with_vis", got.Facts.WithVIS, want.Facts.WithVIS}, {"race", got.Facts.Race, want.Facts.Race},
		{"ethnicity", got.Facts.Ethnicity, want.Facts.Ethnicity}, {"address", got.Facts.Address, want.Facts.Address},
		{"lag_1", got.Facts.Lag1, want.Facts.Lag1}, {"lag_7", got.Facts.Lag7, want.Facts.Lag7},
		{"lag_30", got.Facts.Lag30, want.Facts.Lag30}, {"lag_late", got.Facts.LagLate, want.Facts.LagLate},
		{"lag_days", got.Facts.LagDays, want.Facts.LagDays},
	}
	out := ""
	for _, c := range cols {
		g, w := c.got, c.want
		if gt, ok := g.(time.Time); ok {
			if gt.Equal(w.(time.Time)) {
				continue
			}
		} else if g == w {
			continue
		}
		out += fmt.Sprintf("%s %v, want %v; ", c.name, g, w)
	}
	return out
}

// ClearFacts sets the facts columns of the archived messages of site siteID (of every site when
// 0) to NULL, as if they had been archived before intake wrote facts: the summaries' catch-up
// finds them again.
func ClearFacts(t testing.TB, db *store.DB, siteID int64) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `UPDATE messages SET readable = NULL, has_errors = NULL,
			has_warnings = NULL, finding_keys = NULL, administered = NULL, historical = NULL, refusals = NULL,
			immunity = NULL, with_lot = NULL, with_mvx = NULL, with_funding = NULL, with_vis = NULL, has_race = NULL,
			has_ethnicity = NULL, has_address = NULL, lag_1 = NULL, lag_7 = NULL, lag_30 = NULL, lag_late = NULL,
			lag_days = NULL
		WHERE readable IS NOT NULL AND ($1 = 0 OR site_id = $1)`, siteID); err != nil {
		t.Fatalf("storetest: clear report facts: %v", err)
	}
}

// FactsCount counts the archived messages that have facts, of site siteID (of every site when 0).
func FactsCount(t testing.TB, db *store.DB, siteID int64) int {
	t.Helper()
	var n int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM messages
		WHERE readable IS NOT NULL AND ($1 = 0 OR site_id = $1)`, siteID).Scan(&n); err != nil {
		t.Fatalf("storetest: count report facts: %v", err)
	}
	return n
}
