package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
)

// The store is what the transports authenticate senders against.
var _ ingest.Senders = (*DB)(nil)

// A credential counts while it is active and not revoked; a revocation dated in the future takes
// effect at that time.
const activeCredential = `c.active AND (c.revoked_at IS NULL OR c.revoked_at > now())`

// senderColumns are scanned by scanSender, in this order. The facilities are aggregated from
// site_facilities, so each lookup is one query.
const senderColumns = `
	c.id, s.id, s.code, s.organization_id, s.status, s.go_live_date,
	coalesce(array_agg(f.facility_id ORDER BY f.facility_id) FILTER (WHERE f.facility_id IS NOT NULL), '{}')`

const soapCredentialQuery = `
SELECT ` + senderColumns + `, c.username, c.password_hash, coalesce(c.facility_id, '')
FROM sender_credentials c
JOIN sites s ON s.id = c.site_id
LEFT JOIN site_facilities f ON f.site_id = s.id
WHERE c.transport = 'soap' AND c.username = $1 AND ` + activeCredential + `
GROUP BY c.id, s.id`

// mllpSenderQuery prefers a credential whose certificate subject matches (and whose address range,
// when it has one, contains the peer) over one matched by address alone; among address matches the
// most specific range wins, and the others follow (MLLPSender makes them the sender's Shared
// sites). A credential that names a certificate subject never matches by address alone, so a
// plain connection from the right network cannot stand in for the certificate.
const mllpSenderQuery = `
SELECT ` + senderColumns + `, c.cert_subject IS NOT NULL
FROM sender_credentials c
JOIN sites s ON s.id = c.site_id
LEFT JOIN site_facilities f ON f.site_id = s.id
WHERE c.transport = 'mllp' AND ` + activeCredential + `
  AND (
        ($2 <> '' AND c.cert_subject = $2 AND (c.source_cidr IS NULL OR c.source_cidr >>= $1::inet))
     OR (c.cert_subject IS NULL AND c.source_cidr >>= $1::inet)
  )
GROUP BY c.id, s.id
ORDER BY (c.cert_subject IS NOT NULL) DESC, masklen(c.source_cidr) DESC NULLS LAST, c.id
LIMIT ` + mllpSharedMax + `+1`

// mllpSharedMax bounds the other sites an address can be shared with (Sender.Shared).
const mllpSharedMax = "16"

// SOAPCredential returns the active SOAP credential with this username and the site it belongs to,
// or ingest.ErrUnknownSender.
func (db *DB) SOAPCredential(ctx context.Context, username string) (*ingest.SOAPCredential, error) {
	var (
		c      ingest.SOAPCredential
		goLive *time.Time
		status string
	)
	s := &c.Sender
	err := db.Pool.QueryRow(ctx, soapCredentialQuery, username).Scan(
		&s.CredentialID, &s.SiteID, &s.SiteCode, &s.OrganizationID, &status, &goLive, &s.Facilities,
		&c.Username, &c.PasswordHash, &c.FacilityID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ingest.ErrUnknownSender
	}
	if err != nil {
		return nil, fmt.Errorf("store: soap credential: %w", err)
	}
	fillSender(s, status, goLive)
	return &c, nil
}

// MLLPSender returns the sender whose active MLLP credential matches the TLS client certificate
// subject (when not empty) or else the source address, or ingest.ErrUnknownSender. Matched by
// address, its Shared lists the other sites whose ranges contain the address, narrowest first.
func (db *DB) MLLPSender(ctx context.Context, addr netip.Addr, certSubject string) (*ingest.Sender, error) {
	// A NULL address matches no range: only the certificate can then identify the sender. IPv4
	// peers seen through a dual-stack listener arrive as ::ffff:a.b.c.d and must match IPv4 ranges.
	var inet *string
	if addr.IsValid() {
		a := addr.Unmap().WithZone("").String()
		inet = &a
	}
	rows, err := db.Pool.Query(ctx, mllpSenderQuery, inet, certSubject)
	if err != nil {
		return nil, fmt.Errorf("store: mllp sender: %w", err)
	}
	defer rows.Close()
	var first *ingest.Sender
	for rows.Next() {
		var (
			s      ingest.Sender
			goLive *time.Time
			status string
			byCert bool
		)
		if err := rows.Scan(&s.CredentialID, &s.SiteID, &s.SiteCode, &s.OrganizationID, &status, &goLive, &s.Facilities, &byCert); err != nil {
			return nil, fmt.Errorf("store: mllp sender: %w", err)
		}
		fillSender(&s, status, goLive)
		switch {
		case first == nil:
			first = &s
			if byCert {
				// A certificate names one site: nothing is shared with it.
				return first, nil
			}
		case s.SiteID != first.SiteID && !sharesSite(first.Shared, s.SiteID):
			first.Shared = append(first.Shared, &s)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: mllp sender: %w", err)
	}
	if first == nil {
		return nil, ingest.ErrUnknownSender
	}
	return first, nil
}

func sharesSite(shared []*ingest.Sender, siteID int64) bool {
	for _, s := range shared {
		if s.SiteID == siteID {
			return true
		}
	}
	return false
}

func fillSender(s *ingest.Sender, status string, goLive *time.Time) {
	s.Status = ingest.SiteStatus(status)
	if goLive != nil {
		s.GoLive = *goLive
	}
}
