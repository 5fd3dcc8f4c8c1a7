package store

import (
	"context"
	"fmt"
	"net/netip"
)

// MLLPSourceRanges lists the address ranges of the active MLLP credentials, so that the MLLP
// server can reserve connection slots for registered senders (mllp.SourceRanges).
func (db *DB) MLLPSourceRanges(ctx context.Context) ([]netip.Prefix, error) {
	rows, err := db.Pool.Query(ctx, `
SELECT DISTINCT c.source_cidr::text
FROM sender_credentials c
WHERE c.transport = 'mllp' AND c.source_cidr IS NOT NULL AND `+activeCredential)
	if err != nil {
		return nil, fmt.Errorf("store: mllp source ranges: %w", err)
	}
	defer rows.Close()
	var out []netip.Prefix
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("store: mllp source ranges: %w", err)
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("store: mllp source range %q: %w", s, err)
		}
		out = append(out, p.Masked())
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: mllp source ranges: %w", err)
	}
	return out, nil
}
