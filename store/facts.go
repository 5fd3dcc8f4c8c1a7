package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/report"
)

// Report facts written at intake. Every archive row of a message from a known site gets its
// report_facts row (the narrow summary the quality and reconciliation reports add up) in the
// same transaction, from what the writer has in hand: the record's raw bytes, read once by
// report.ReadContent as the record is committed (in the caller's goroutine, not the shard's), and
// what apply decided for the archive row (its ACK code, its resend flag, its findings). The rows
// of a batch are inserted with one statement (writeFacts), queued with the batch's other writes.
//
// The summaries' catch-up (report.Service.Summarize, for messages archived before facts were
// written at intake, or by anything else than the writer) builds the same row from the archived
// copy with the same functions: report.ReadContent over messages.raw, report.NewFactsRow over the
// archive columns, archivedResend and the finding keys of every archived finding
// (archivedFindingKeys, findingKeysOf). A message without a site (its sender unknown) is in no
// report and gets no facts row, from either path.

// contentParsers are reused hl7.Messages for reading a record's content.
var contentParsers = sync.Pool{New: func() any { return new(hl7.Message) }}

// readContent reads the report content of rec's raw message into c, and reports whether rec gets
// a facts row (it has a site).
func readContent(rec *ingest.Record, c *report.Content) bool {
	if rec.Sender == nil {
		return false
	}
	m := contentParsers.Get().(*hl7.Message)
	// The archive keeps received_at to the microsecond (pgx truncates), which is what the
	// summaries read back.
	report.ReadContent(m, rec.Raw, rec.ReceivedAt.Truncate(time.Microsecond), c)
	_ = m.Parse(nil) // forgets the raw bytes, keeps the tables
	contentParsers.Put(m)
	return true
}

// archivedResend reports the archive row of a resend's copy (answered with the original's ACK):
// not a resend key, and not rejected.
func archivedResend(resendKey bool, code string) bool {
	return !resendKey && code != ack.AR
}

// findingKeysOf returns the facts' finding keys ("severity:rule", distinct, sorted) of fs.
func findingKeysOf(fs []ack.Finding) []string {
	if len(fs) == 0 {
		return nil
	}
	keys := make([]string, len(fs))
	for i := range fs {
		keys[i] = string(fs[i].Severity) + ":" + fs[i].Rule
	}
	return report.FindingKeys(keys)
}

// archivedFindingKeys returns the finding keys of an archive row's findings: those its ACK listed
// (messages.findings, jsonb) and the others (messages.more_findings, see archivedFindings).
func archivedFindingKeys(listed, more []byte) ([]string, error) {
	var fs []ack.Finding
	var js []struct {
		Rule     string `json:"rule"`
		Severity string `json:"severity"`
	}
	if err := json.Unmarshal(listed, &js); err != nil {
		return nil, fmt.Errorf("store: read findings: %w", err)
	}
	for _, f := range js {
		fs = append(fs, ack.Finding{Rule: f.Rule, Severity: ack.Severity(f.Severity)})
	}
	omitted, err := DecodeFindings(more)
	if err != nil {
		return nil, err
	}
	return findingKeysOf(append(fs, omitted...)), nil
}

// intakeFacts builds the facts rows of a batch's archive rows (rows[i] is batch[i]'s).
func intakeFacts(rows []archiveRow, batch []*job) ([]report.FactsRow, error) {
	if len(rows) != len(batch) {
		return nil, fmt.Errorf("store: %d archive rows for %d records", len(rows), len(batch))
	}
	out := make([]report.FactsRow, 0, len(rows))
	for i := range rows {
		r, j := &rows[i], batch[i]
		if !j.facts || r.site == nil {
			continue
		}
		a := report.Archived{ID: r.id, SiteID: *r.site, ReceivedAt: r.received, ControlID: r.control, ACKCode: r.code,
			Resend: archivedResend(r.resendKey, r.code), FindingKeys: r.keys}
		if r.env != nil {
			a.Env = *r.env
		}
		out = append(out, report.NewFactsRow(&a, &j.content))
	}
	return out, nil
}

// writeFacts queues the insert of a batch's facts rows. No ON CONFLICT: the rows' message ids
// were drawn for this transaction (precheck), and the summaries cannot see its messages before
// it commits them with their facts.
func writeFacts(ctx context.Context, tx *pipeTx, rs []report.FactsRow) error {
	if len(rs) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, insertFactsSQL, factsArgs(rs)...); err != nil {
		return fmt.Errorf("store: write report facts: %w", err)
	}
	return nil
}

// insertFactsSQL inserts report_facts rows from the arrays of factsArgs.
const insertFactsSQL = `INSERT INTO report_facts (message_id, site_id, env, received_at, control_id, ack_code, resend,
		readable, has_errors, has_warnings, findings, administered, historical, refusals, immunity, with_lot, with_mvx,
		with_funding, with_vis, race, ethnicity, address, lag_1, lag_7, lag_30, lag_late, lag_days)
	SELECT u.id, u.site, u.env, u.recv, u.control, u.ack, u.resend, u.readable, u.errs, u.warns, u.findings::text[],
		u.adm, u.hist, u.ref, u.imm, u.lot, u.mvx, u.fund, u.vis, u.race, u.eth, u.addr, u.lag1, u.lag7, u.lag30, u.late,
		u.lagsum
	FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::timestamptz[], $5::text[], $6::text[], $7::bool[],
		$8::bool[], $9::bool[], $10::bool[], $11::text[], $12::int[], $13::int[], $14::int[], $15::int[], $16::int[],
		$17::int[], $18::int[], $19::int[], $20::bool[], $21::bool[], $22::bool[], $23::int[], $24::int[], $25::int[],
		$26::int[], $27::int[])
		AS u(id, site, env, recv, control, ack, resend, readable, errs, warns, findings, adm, hist, ref, imm, lot, mvx,
		fund, vis, race, eth, addr, lag1, lag7, lag30, late, lagsum)`

// factsArgs are insertFactsSQL's arguments for rs (counts clamped to their columns' types).
func factsArgs(rs []report.FactsRow) []any {
	n := len(rs)
	var (
		ids, sites                           = make([]int64, n), make([]int64, n)
		envs, controls, acks, findings       = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		recv                                 = make([]time.Time, n)
		resend, readable, errs, warns        = make([]bool, n), make([]bool, n), make([]bool, n), make([]bool, n)
		race, eth, addr                      = make([]bool, n), make([]bool, n), make([]bool, n)
		adm, hist, ref, imm, lot, mvx, fund  = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
		vis, lag1, lag7, lag30, late, lagSum = make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n), make([]int32, n)
	)
	clamp := func(v int) int32 { return int32(min(v, 32767)) }
	for i := range rs {
		r := &rs[i]
		f := &r.Facts
		ids[i], sites[i], envs[i], controls[i], acks[i], recv[i] = r.MessageID, r.SiteID, r.Env, r.ControlID, r.ACKCode, r.ReceivedAt
		findings[i] = pgTextArray(r.Findings)
		resend[i], readable[i], errs[i], warns[i] = r.Resend, r.Readable, r.Errors, r.Warnings
		race[i], eth[i], addr[i] = f.Race, f.Ethnicity, f.Address
		adm[i], hist[i], ref[i], imm[i] = clamp(f.Administered), clamp(f.Historical), clamp(f.Refusals), clamp(f.Immunity)
		lot[i], mvx[i], fund[i], vis[i] = clamp(f.WithLot), clamp(f.WithMVX), clamp(f.WithFunding), clamp(f.WithVIS)
		lag1[i], lag7[i], lag30[i], late[i] = clamp(f.Lag1), clamp(f.Lag7), clamp(f.Lag30), clamp(f.LagLate)
		lagSum[i] = int32(min(f.LagDays, 1<<31-1))
	}
	return []any{ids, sites, envs, recv, controls, acks, resend, readable, errs, warns, findings, adm, hist, ref, imm, lot,
		mvx, fund, vis, race, eth, addr, lag1, lag7, lag30, late, lagSum}
}
