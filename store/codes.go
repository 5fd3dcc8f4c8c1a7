package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// SaveCodeSnapshot stores code sets imported at run time (ingest/codes' compact format); the
// newest one is what LatestCodeSnapshot returns.
func (db *DB) SaveCodeSnapshot(ctx context.Context, source string, data []byte) error {
	if _, err := db.Pool.Exec(ctx, `INSERT INTO code_snapshots (source, data) VALUES ($1, $2)`, source, data); err != nil {
		return fmt.Errorf("store: save code snapshot: %w", err)
	}
	return nil
}

// LatestCodeSnapshot returns the newest imported code sets, or nil when none was imported.
func (db *DB) LatestCodeSnapshot(ctx context.Context) ([]byte, error) {
	var data []byte
	err := db.Pool.QueryRow(ctx, `SELECT data FROM code_snapshots ORDER BY id DESC LIMIT 1`).Scan(&data)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read code snapshot: %w", err)
	}
	return data, nil
}
