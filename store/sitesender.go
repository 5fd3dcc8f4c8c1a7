package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
)

// siteSenderQuery reads a site as the sender of the files in its folders: no credential (the
// folder is the authentication), its status, go-live date and facilities.
const siteSenderQuery = `
SELECT s.id, s.code, s.organization_id, s.status, s.go_live_date,
	coalesce(array_agg(f.facility_id ORDER BY f.facility_id) FILTER (WHERE f.facility_id IS NOT NULL), '{}')
FROM sites s
LEFT JOIN site_facilities f ON f.site_id = s.id
WHERE s.code = $1
GROUP BY s.id`

// SiteSender returns the site with this code as the sender of the files dropped in its folders
// (ingest/file), or ingest.ErrUnknownSender.
func (db *DB) SiteSender(ctx context.Context, code string) (*ingest.Sender, error) {
	var (
		s      ingest.Sender
		goLive *time.Time
		status string
	)
	err := db.Pool.QueryRow(ctx, siteSenderQuery, code).Scan(
		&s.SiteID, &s.SiteCode, &s.OrganizationID, &status, &goLive, &s.Facilities)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ingest.ErrUnknownSender
	}
	if err != nil {
		return nil, fmt.Errorf("store: site sender %s: %w", code, err)
	}
	fillSender(&s, status, goLive)
	return &s, nil
}
