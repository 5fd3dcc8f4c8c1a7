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
// (messages.findings, json) and the others (messages.more_findings, see archivedFindings).
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

// addFacts appends r's facts to a batch_message row (its last 20 columns) or a batch_facts row,
// counts clamped to their columns' types (smallint, integer for the sum of days); nil: a row
// without facts, its facts columns NULL.
func addFacts(a *rowArray, r *report.FactsRow) {
	if r == nil {
		for _, oid := range factsColumnTypes {
			a.null(oid)
		}
		return
	}
	clamp := func(v int) int16 { return int16(min(v, 32767)) }
	f := &r.Facts
	a.bool(r.Readable)
	a.bool(r.Errors)
	a.bool(r.Warnings)
	a.texts(r.Findings)
	for _, v := range []int{f.Administered, f.Historical, f.Refusals, f.Immunity, f.WithLot, f.WithMVX, f.WithFunding, f.WithVIS} {
		a.small(clamp(v))
	}
	a.bool(f.Race)
	a.bool(f.Ethnicity)
	a.bool(f.Address)
	for _, v := range []int{f.Lag1, f.Lag7, f.Lag30, f.LagLate} {
		a.small(clamp(v))
	}
	a.int4(int32(min(f.LagDays, 1<<31-1)))
}

// factsColumnTypes are the types of batch_message's facts columns, in order.
var factsColumnTypes = []uint32{pgtype.BoolOID, pgtype.BoolOID, pgtype.BoolOID, pgtype.TextArrayOID,
	pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID,
	pgtype.Int4OID, pgtype.BoolOID, pgtype.BoolOID, pgtype.BoolOID, pgtype.Int4OID, pgtype.Int4OID, pgtype.Int4OID,
	pgtype.Int4OID, pgtype.Int4OID}
