package store

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/report"
)

// Report facts written at intake. The facts of a message (the narrow summary the quality
// reports add up: report.FactsRow) are columns of its archive row (migration 014),
// written by the archive insert itself (persist.go insertMessages), from what the writer has in
// hand: the record's raw bytes, read once by report.ReadContent as the record is committed (in
// the caller's goroutine, not the shard's), and what apply decided for the archive row (its ACK
// code, its resend flag, its findings). No second row, no second statement: a message is
// archived with its facts or not at all, and the facts cannot fail on their own.
//
// The summaries' catch-up (report.Service.Summarize, for messages archived before facts were
// written at intake) computes the same columns from the archived copy with the same functions —
// report.ReadContent over messages.raw, report.NewFactsRow over the archive columns,
// archivedResend and the finding keys of every archived finding (archivedFindingKeys,
// findingKeysOf) — and sets them with an UPDATE (ReportStore.SaveFacts). A message without a site
// (its sender unknown) is in no report: its facts columns stay NULL, from either path.

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

// intakeFacts gives each of a batch's archive rows of a known site the content its facts
// columns are made of (rows[i] is batch[i]'s).
func intakeFacts(rows []archiveRow, batch []*job) error {
	if len(rows) != len(batch) {
		return fmt.Errorf("store: %d archive rows for %d records", len(rows), len(batch))
	}
	for i := range rows {
		if j := batch[i]; j.facts && rows[i].site != nil {
			rows[i].content = &j.content
		}
	}
	return nil
}

// factsArrays are the facts columns of archive rows as array parameters (args: insertMessages'
// $19 on, updateFactsSQL's $2 on). A row without facts (has false) is written NULL in every facts column
// (insertMessages' CASE): the arrays need no NULL elements.
type factsArrays struct {
	has, readable, errs, warns, race, eth, addr                       boolArray
	keys                                                              textArray // text[] literals
	adm, hist, ref, imm, lot, mvx, fund, vis, lag1, lag7, lag30, late int4Array
	lagDays                                                           int4Array
}

func newFactsArrays(n int) *factsArrays {
	return &factsArrays{has: make(boolArray, 0, n), readable: make(boolArray, 0, n), errs: make(boolArray, 0, n),
		warns: make(boolArray, 0, n), race: make(boolArray, 0, n), eth: make(boolArray, 0, n), addr: make(boolArray, 0, n),
		keys: make(textArray, 0, n), adm: make(int4Array, 0, n), hist: make(int4Array, 0, n), ref: make(int4Array, 0, n),
		imm: make(int4Array, 0, n), lot: make(int4Array, 0, n), mvx: make(int4Array, 0, n), fund: make(int4Array, 0, n),
		vis: make(int4Array, 0, n), lag1: make(int4Array, 0, n), lag7: make(int4Array, 0, n), lag30: make(int4Array, 0, n),
		late: make(int4Array, 0, n), lagDays: make(int4Array, 0, n)}
}

// add appends r's facts (its message's own columns are not read), counts clamped to their
// columns' types (smallint, integer for the sum of days).
func (a *factsArrays) add(r *report.FactsRow) {
	clamp := func(v int) int32 { return int32(min(v, 32767)) }
	f := &r.Facts
	a.has, a.readable = append(a.has, true), append(a.readable, r.Readable)
	a.errs, a.warns = append(a.errs, r.Errors), append(a.warns, r.Warnings)
	a.race, a.eth, a.addr = append(a.race, f.Race), append(a.eth, f.Ethnicity), append(a.addr, f.Address)
	a.keys = append(a.keys, pgTextArray(r.Findings))
	a.adm, a.hist = append(a.adm, clamp(f.Administered)), append(a.hist, clamp(f.Historical))
	a.ref, a.imm = append(a.ref, clamp(f.Refusals)), append(a.imm, clamp(f.Immunity))
	a.lot, a.mvx = append(a.lot, clamp(f.WithLot)), append(a.mvx, clamp(f.WithMVX))
	a.fund, a.vis = append(a.fund, clamp(f.WithFunding)), append(a.vis, clamp(f.WithVIS))
	a.lag1, a.lag7 = append(a.lag1, clamp(f.Lag1)), append(a.lag7, clamp(f.Lag7))
	a.lag30, a.late = append(a.lag30, clamp(f.Lag30)), append(a.late, clamp(f.LagLate))
	a.lagDays = append(a.lagDays, int32(min(f.LagDays, 1<<31-1)))
}

// addFacts appends r's facts to a batch_message row (its last 20 columns), counts clamped as
// add clamps them; nil: a row without facts, its facts columns NULL.
func addFacts(a *rowArray, r *report.FactsRow) {
	if r == nil {
		for _, oid := range factsColumnTypes {
			a.null(oid)
		}
		return
	}
	clamp := func(v int) int32 { return int32(min(v, 32767)) }
	f := &r.Facts
	a.bool(r.Readable)
	a.bool(r.Errors)
	a.bool(r.Warnings)
	a.texts(r.Findings)
	for _, v := range []int{f.Administered, f.Historical, f.Refusals, f.Immunity, f.WithLot, f.WithMVX, f.WithFunding, f.WithVIS} {
		a.int4(clamp(v))
	}
	a.bool(f.Race)
	a.bool(f.Ethnicity)
	a.bool(f.Address)
	for _, v := range []int{f.Lag1, f.Lag7, f.Lag30, f.LagLate} {
		a.int4(clamp(v))
	}
	a.int4(int32(min(f.LagDays, 1<<31-1)))
}

// factsColumnTypes are the types of batch_message's facts columns, in order.
var factsColumnTypes = []uint32{pgtype.BoolOID, pgtype.BoolOID, pgtype.BoolOID, pgtype.TextArrayOID,
	pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID,
	pgtype.Int4OID, pgtype.BoolOID, pgtype.BoolOID, pgtype.BoolOID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID,
	pgtype.Int4OID, pgtype.Int4OID}

// args are the arrays, f_has first.
func (a *factsArrays) args() []any {
	return []any{a.has, a.readable, a.errs, a.warns, a.keys, a.adm, a.hist, a.ref, a.imm, a.lot, a.mvx, a.fund, a.vis,
		a.race, a.eth, a.addr, a.lag1, a.lag7, a.lag30, a.late, a.lagDays}
}
