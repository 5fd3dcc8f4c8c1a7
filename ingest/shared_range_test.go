package ingest_test

import (
	"context"
	"testing"

	"github.com/vaxgate/vaxgate/ack"
)

// TestNestedRangesToldApartByMSH4: SITE-B's MLLP credential is a /32 inside SITE-A's 127.0.0.0/8
// (a clinic inside its health system's network). Registering it must not take SITE-A's traffic
// from that address away: a message from 127.0.0.2 is stored for the site whose range contains
// the address and whose facility MSH-4 names, the narrowest range first; a facility no matching
// site has is refused, and an address outside SITE-B's range cannot send for SITE-B.
func TestNestedRangesToldApartByMSH4(t *testing.T) {
	e := newEngine(t, "production")
	siteB := e.addSite(t, siteSpec{org: "ORG-B", code: "SITE-B", status: "production", facilities: []string{"FAC-B"}, addr: "127.0.0.2"})
	ctx := context.Background()

	cases := []struct {
		name     string
		from     *sender
		ctrl     string
		facility string
		wantSite string // "" = AR (archived under the connection's own site, nothing else stored)
	}{
		{"the narrower range's own facility", siteB, "NEST-1", "FAC-B", "SITE-B"},
		{"the wider range's facility from inside the narrower", siteB, "NEST-2", "FAC-A", "SITE-A"},
		{"a facility of neither", siteB, "NEST-3", "FAC-Z", ""},
		{"the narrower site's facility from outside its range", e.siteA, "NEST-4", "FAC-B", ""},
		{"the wider range's facility from outside the narrower", e.siteA, "NEST-5", "FAC-A", "SITE-A"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, raw := c.from.send(t, variant(t, c.ctrl, "|FAC-A|", "|"+c.facility+"|"))
			code := a.Get("MSA-1")
			var site string
			err := e.db.Pool.QueryRow(ctx, `SELECT s.code FROM messages m JOIN sites s ON s.id = m.site_id
				WHERE m.control_id = $1`, c.ctrl).Scan(&site)
			if c.wantSite == "" {
				if code != ack.AR || err != nil || site != c.from.code {
					t.Fatalf("MSA-1 %s, archived for site %q (%v); want AR archived for %s\n%s", code, site, err, c.from.code, raw)
				}
				if got := errCodes(a); len(got) != 1 || got[0] != "204" {
					t.Errorf("ERR codes %v; want one 204 (sending facility not the sender's)", got)
				}
				return
			}
			if code == ack.AR || err != nil || site != c.wantSite {
				t.Fatalf("MSA-1 %s, archived for site %q (%v); want it stored for %s\n%s", code, site, err, c.wantSite, raw)
			}
		})
	}
}
