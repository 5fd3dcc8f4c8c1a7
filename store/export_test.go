package store

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/registry"
	"github.com/vaxgate/vaxgate/report"
)

// MigrateTo brings db's schema to version (for tests of a migration: the old shape first).
func MigrateTo(ctx context.Context, db *DB, version int32) error {
	conn, err := pgx.ConnectConfig(ctx, db.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return err
	}
	if err := m.LoadMigrations(migrations()); err != nil {
		return err
	}
	return m.MigrateTo(ctx, version)
}

// ArchiveBatch is the archive insert of small batches (insertMessages) and its arguments for n
// archive rows of site, ids from firstID, each with the facts of content (nil: without facts), for
// BenchmarkArchiveFacts.
func ArchiveBatch(firstID int64, n int, site int64, raw []byte, content *report.Content) (string, []any) {
	var a rowArray
	addMessages(&a, benchArchiveRows(firstID, n, site, raw, content))
	return insertMessages, []any{&a}
}

// ArchiveCopy writes the rows ArchiveBatch would insert as intake writes a larger batch's, with COPY
// (copyMessages), in tx.
func ArchiveCopy(ctx context.Context, tx pgx.Tx, firstID int64, n int, site int64, raw []byte, content *report.Content) error {
	return copyMessages(ctx, &pipeTx{Tx: tx}, benchArchiveRows(firstID, n, site, raw, content))
}

// benchFindings are the findings of a typical message of make bench's traffic (two of severity
// I, 356 bytes), as the writer writes them (appendFindingsJSON).
const benchFindings = `[{"rule":"length-exceeded","location":"ORC[1]-3.0.0","code":102,"severity":"I","app":4,` +
	`"text":"ORC-3 (Filler Order Number) is 26 characters long; Z22 allows 22. The registry may truncate it.","group":1},` +
	`{"rule":"pd1-12-recorded","location":"PD1[1]-12.0.0","code":0,"severity":"I","app":8,` +
	`"text":"PD1-12 was recorded; data sharing is managed in the registry."}]`

func benchArchiveRows(firstID int64, n int, site int64, raw []byte, content *report.Content) []archiveRow {
	rows := make([]archiveRow, n)
	env, now := "P", time.Now()
	for i := range rows {
		id := firstID + int64(i)
		rows[i] = archiveRow{id: id, env: &env, site: &site, transport: "mllp", control: "C-" + strconv.FormatInt(id, 10),
			received: now, raw: raw, ack: []byte("MSH|^~\\&|ACK\rMSA|AA\r"), code: "AA", findings: benchFindings, resendKey: true,
			keys: []string{"I:length-exceeded", "I:pd1-12-recorded"}, content: content}
	}
	return rows
}

// ReportQueries are the reports' queries over a site's period ($1 site, $2 environment, $3 and $4
// the bounds), for TestReportPlans.
var ReportQueries = map[string]string{
	"missing facts": missingFactsSQL, "control IDs": controlIDsSQL, "control ID counts": controlIDCountsSQL,
	"tallies by day": tallyDaysSQL, "rules by day": ruleDaysSQL,
}

// UpdateFacts is the summaries' UPDATE of the facts columns (SaveFacts) and its arguments for rs,
// for TestReportPlans.
func UpdateFacts(rs []report.FactsRow) (string, []any) { return updateFactsSQL, updateFactsArgs(rs) }

// TakeIDs draws ahead, in a transaction of its own, the ids counts says (idTables' order), then
// takes n of table's, as the registry does while applying a batch: past those drawn ahead,
// takeID draws more. The transaction is rolled back.
func TakeIDs(ctx context.Context, db *DB, counts [4]int, table string, n int) ([]int64, error) {
	c, err := db.Pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	tx := beginOn(c.Conn())
	defer func() { _ = tx.Tx.Rollback(context.Background()) }()
	tx.ctx = ctx
	if err := drawIDs(ctx, tx, counts); err != nil {
		return nil, err
	}
	if err := tx.Flush(ctx); err != nil {
		return nil, err
	}
	var out []int64
	for range n {
		id, ok := tx.Next(table)
		if !ok {
			return out, fmt.Errorf("no id for %s after %d", table, len(out))
		}
		out = append(out, id)
	}
	return out, nil
}

// RegisterRowTypes and VaccinationRows: the batch row encoding (rows.go), for its round-trip test.
var RegisterRowTypes = registerRowTypes

func VaccinationRows(xs []*registry.Vaccination) any {
	var a rowArray
	for _, x := range xs {
		addVaccination(&a, x)
	}
	return &a
}

// ArchiveBothWays writes the same archive rows of site twice in tx, rows that vary every column
// (NULLs, time zones, every byte value, JSON escapes, large messages, with and without facts of
// content): first inserted as batch_message rows, as a small batch's are (insertMessages; ids
// 1..n), then copied, as a larger batch's are (copyMessages; ids n+1..2n). It returns n.
func ArchiveBothWays(ctx context.Context, tx pgx.Tx, site int64, content *report.Content) (int, error) {
	zone := time.FixedZone("", -5*3600)
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	big := bytes.Repeat([]byte("MSH|^~\\&|EHR\rPID|1||MRN^^^EHR^MR||Müller^Jürgen\r"), 2500)
	p, t, cred, charset := "P", "T", int64(77), "8859/1"
	digest := bytes.Repeat([]byte{0xab}, 32)
	variants := []archiveRow{
		{env: &p, site: &site, cred: &cred, transport: "mllp", facility: "FAC-A", mtype: "VXU^V04",
			received: time.Date(2026, 3, 1, 12, 30, 45, 123456000, zone), raw: every, ack: []byte("MSH|^~\\&|ACK\rMSA|AE|X\r"),
			code: "AE", findings: `[{"text": "é \" \\ \n \u00e9 😀", "severity": "W", "code": 102}]`, resendKey: true,
			digest: digest, more: []byte{0x1f, 0x8b, 0, 1}, moreCount: 3, charset: &charset,
			keys: []string{"W:length-exceeded", "I:pd1-12-recorded", ""}, content: content},
		{env: &t, site: &site, transport: "soap", received: time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC),
			raw: big, ack: []byte{}, code: "AA", findings: "[]", resendKey: false, content: content},
		{transport: "file", control: "", received: time.Date(2030, 1, 1, 0, 0, 0, 0, time.Local), raw: []byte("junk"),
			ack: []byte("MSA|AR\r"), code: "AR", findings: "[]", keys: []string{}},
		{env: &p, site: &site, transport: "mllp", received: time.Unix(0, 0), raw: []byte("x"), ack: []byte("y"),
			code: "AA", findings: "[]", resendKey: true, digest: []byte{}, keys: nil, content: content},
	}
	n := len(variants)
	ways := [2][]archiveRow{}
	for w := range ways {
		for i, v := range variants {
			v.id = int64(w*n + i + 1)
			v.control = fmt.Sprintf("C-%d", v.id)
			ways[w] = append(ways[w], v)
		}
	}
	var a rowArray
	addMessages(&a, ways[0])
	if _, err := tx.Exec(ctx, insertMessages, &a); err != nil {
		return 0, err
	}
	return n, copyMessages(ctx, &pipeTx{Tx: tx}, ways[1])
}

// WriteArchive writes n archive rows of site as the writer writes a batch's (writeMessages: copied
// from copyMinRows rows on, inserted below), in tx, and sends what it queued.
func WriteArchive(ctx context.Context, tx pgx.Tx, firstID int64, n int, site int64, raw []byte) error {
	ptx := &pipeTx{Tx: tx}
	if err := writeMessages(ctx, ptx, benchArchiveRows(firstID, n, site, raw, nil)); err != nil {
		return err
	}
	return ptx.Flush(ctx)
}

// CopyMinRows is copyMinRows, for tests of both ways.
const CopyMinRows = copyMinRows

// LookUpPatients runs the writer's look-up of recs' sender patients and link candidates (the
// statement its batches begin with, row locks included) on conn, in conn's transaction, and
// returns the registry patients it read, in the order it read them.
func LookUpPatients(ctx context.Context, conn *pgx.Conn, recs []*ingest.Record) ([]int64, error) {
	if err := registerRowTypes(ctx, conn); err != nil {
		return nil, err
	}
	v := registry.NewViewFor(len(recs))
	ids, blocks, _ := lookupKeys(v, recs)
	rows, err := conn.Query(ctx, prefetchPatients, &ids, &blocks)
	if err != nil {
		return nil, err
	}
	var regs []int64
	err = readViewPatients(v, rows, func(p *registry.Patient, _ bool) {
		regs = append(regs, p.RegID)
	})
	rows.Close()
	return regs, err
}
