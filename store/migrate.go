package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/tern/v2/migrate"
	"go.uber.org/zap"
)

// The schema, one file per version: NNN_name.sql, numbered from 001 without gaps (tern's rule).
// Each file runs in one transaction (unless it contains a "---- tern: disable-tx ----" line, for
// CREATE INDEX CONCURRENTLY) and may hold a down migration after a
// "---- create above / drop below ----" line. tern reads files as Go text/templates: a literal
// "{{" must be written {{"{{"}}.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// versionTable records the schema version (tern's table: one row, one int4 column).
const versionTable = "public.schema_version"

// migrations returns the embedded migration files at the root of an fs.FS.
func migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// LatestSchemaVersion is the schema version this binary migrates to: the number of embedded
// migrations.
func LatestSchemaVersion() (int32, error) {
	paths, err := migrate.FindMigrations(migrations())
	if err != nil {
		return 0, fmt.Errorf("store: embedded migrations: %w", err)
	}
	return int32(len(paths)), nil
}

// Migrate brings the schema up to LatestSchemaVersion. It is idempotent, and safe when several
// processes migrate at once: tern holds a PostgreSQL advisory lock while it reads the version and
// applies migrations, each in its own transaction with its version update. It runs on a connection
// of its own (not from the pool), closed at the end, so that a session lock can never outlive it.
// A database already at a newer version than this binary knows is refused with ErrSchemaNewer.
func (db *DB) Migrate(ctx context.Context) error {
	t0 := time.Now()
	conn, err := pgx.ConnectConfig(ctx, db.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("store: migrate: connect: %w", err)
	}
	defer conn.Close(context.Background())

	m, err := migrate.NewMigrator(ctx, conn, versionTable)
	if err != nil {
		return fmt.Errorf("store: migrate: version table: %w", err)
	}
	if err := m.LoadMigrations(migrations()); err != nil {
		return fmt.Errorf("store: migrate: load embedded migrations: %w", err)
	}
	latest := int32(len(m.Migrations))
	from, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: read schema version: %w", err)
	}
	if from > latest {
		return fmt.Errorf("store: migrate: %w: database schema is at version %d, this vaxgate knows up to %d: upgrade vaxgate", ErrSchemaNewer, from, latest)
	}
	if from == latest {
		db.log.Debug("store: schema is current", zap.Int32("version", latest))
		return nil
	}
	m.OnStart = func(seq int32, name, direction, _ string) {
		db.log.Info("store: applying migration", zap.Int32("version", seq), zap.String("name", name), zap.String("direction", direction))
	}
	if err := m.Migrate(ctx); err != nil {
		var mErr migrate.MigrationPgError
		if errors.As(err, &mErr) {
			where := mErr.MigrationName
			if mErr.Position > 0 {
				if l, lerr := migrate.ExtractErrorLine(mErr.Sql, int(mErr.Position)); lerr == nil {
					where = fmt.Sprintf("%s line %d (%q)", where, l.LineNum, l.Text)
				}
			}
			return fmt.Errorf("store: migrate: %s: %w", where, mErr.PgError)
		}
		return fmt.Errorf("store: migrate: %w", err)
	}
	to, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: read schema version: %w", err)
	}
	if to != from {
		db.log.Info("store: schema migrated", zap.Int32("from", from), zap.Int32("to", to), zap.Duration("elapsed", time.Since(t0)))
		// The pool's connections may hold statements prepared against the old schema (pgx keeps
		// them per connection, and PostgreSQL refuses to run a kept plan whose result columns
		// changed type): they are closed, and new ones opened as they are needed.
		db.Pool.Reset()
	}
	return nil
}

// SchemaVersion returns the database's schema version (0 before the first migration) and the
// version this binary migrates to.
func (db *DB) SchemaVersion(ctx context.Context) (current, latest int32, err error) {
	if latest, err = LatestSchemaVersion(); err != nil {
		return 0, 0, err
	}
	err = db.Pool.QueryRow(ctx, "SELECT version FROM "+versionTable).Scan(&current)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table: never migrated
		return 0, latest, nil
	case errors.Is(err, pgx.ErrNoRows):
		return 0, latest, nil
	case err != nil:
		return 0, 0, fmt.Errorf("store: read schema version: %w", err)
	}
	return current, latest, nil
}
