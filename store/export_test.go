package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"

	"github.com/vaxgate/vaxgate/registry"
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

// InsertFactsSQL and FactsArgs are the intake's insert of report facts (facts.go), and
// FactsColumns the summaries' COPY columns, for BenchmarkFactsWrite.
var (
	InsertFactsSQL = insertFactsSQL
	FactsArgs      = factsArgs
	FactsColumns   = factsColumns
)

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
