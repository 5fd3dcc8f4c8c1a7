package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

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

// ArchiveBatch is intake's archive insert (insertMessages) and its arguments for n archive rows
// of site, ids from firstID, each with the facts of content (nil: without facts), for
// BenchmarkArchiveFacts.
func ArchiveBatch(firstID int64, n int, site int64, raw []byte, content *report.Content) (string, []any) {
	rows := make([]archiveRow, n)
	env, now := "P", time.Now()
	for i := range rows {
		id := firstID + int64(i)
		rows[i] = archiveRow{id: id, env: &env, site: &site, transport: "mllp", control: "C-" + strconv.FormatInt(id, 10),
			received: now, raw: raw, ack: []byte("MSH|^~\\&|ACK\rMSA|AA\r"), code: "AA", findings: "[]", resendKey: true,
			keys: []string{"I:pd1-12-recorded"}, content: content}
	}
	return insertMessages, messagesArgs(rows)
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
