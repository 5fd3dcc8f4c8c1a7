package store

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
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
