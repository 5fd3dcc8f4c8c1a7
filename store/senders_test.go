package store_test

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// senderFixture inserts two organizations with sites, facilities and credentials of every kind,
// with plain SQL so that the test does not depend on the admin code that normally creates them.
// It returns the credential IDs by name.
func senderFixture(t *testing.T, db *store.DB) map[string]int64 {
	t.Helper()
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("fixture %q: %v", sql, err)
		}
	}
	exec(`INSERT INTO organizations (id, code, name) VALUES (1, 'ORG1', 'Org One'), (2, 'ORG2', 'Org Two')`)
	exec(`INSERT INTO sites (id, organization_id, code, name, status, go_live_date) VALUES
		(10, 1, 'S10', 'Site Ten', 'production', '2024-03-01'),
		(20, 2, 'S20', 'Site Twenty', 'testing', NULL),
		(30, 2, 'S30', 'Site Thirty', 'registered', NULL)`)
	exec(`INSERT INTO site_facilities (facility_id, site_id) VALUES ('10144', 10), ('2.16.840.1.113883.3.1', 10), ('20001', 20)`)

	ids := map[string]int64{}
	cred := func(name, sql string, args ...any) {
		t.Helper()
		var id int64
		if err := db.Pool.QueryRow(ctx, sql+` RETURNING id`, args...).Scan(&id); err != nil {
			t.Fatalf("fixture credential %s: %v", name, err)
		}
		ids[name] = id
	}
	soap := `INSERT INTO sender_credentials (site_id, transport, username, password_hash, facility_id, active, revoked_at)
		VALUES ($1, 'soap', $2, $3, $4, $5, $6)`
	future, past := time.Now().Add(24*time.Hour), time.Now().Add(-time.Hour)
	cred("soap-s10", soap, 10, "ehr-ten", "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA", "10144", true, nil)
	cred("soap-s20", soap, 20, "ehr-twenty", "hash20", nil, true, nil)
	cred("soap-s30", soap, 30, "ehr-thirty", "hash30", nil, true, nil)
	cred("soap-inactive", soap, 10, "ehr-inactive", "h", nil, false, nil)
	cred("soap-revoked", soap, 10, "ehr-revoked", "h", nil, true, past)
	cred("soap-revoking", soap, 10, "ehr-revoking", "h", nil, true, future)

	mllp := `INSERT INTO sender_credentials (site_id, transport, cert_subject, source_cidr, active, revoked_at)
		VALUES ($1, 'mllp', $2, $3::cidr, $4, $5)`
	cred("mllp-net8", mllp, 20, nil, "10.0.0.0/8", true, nil)
	cred("mllp-net24", mllp, 10, nil, "10.1.2.0/24", true, nil)
	cred("mllp-host", mllp, 20, nil, "10.1.2.3/32", false, nil) // inactive: must not win
	cred("mllp-v6", mllp, 10, nil, "2001:db8::/32", true, nil)
	cred("mllp-cert", mllp, 10, "CN=ehr.site10.example,O=Site Ten", nil, true, nil)
	cred("mllp-cert-net", mllp, 20, "CN=ehr.site20.example", "192.0.2.0/24", true, nil)
	cred("mllp-cert-in-net8", mllp, 10, "CN=only.with.cert", "10.0.0.0/8", true, nil)
	cred("mllp-revoked", mllp, 10, nil, "198.51.100.0/24", true, past)
	// The same username over MLLP does not exist (usernames are SOAP-only), but an MLLP credential
	// must never be found by a SOAP lookup: give it one to check the transport filter.
	cred("mllp-with-username", `INSERT INTO sender_credentials (site_id, transport, username, source_cidr)
		VALUES ($1, 'mllp', $2, $3::cidr)`, 10, "mllp-user", "203.0.113.0/24")
	return ids
}

func TestSOAPCredential(t *testing.T) {
	db := storetest.New(t)
	ids := senderFixture(t, db)
	ctx := context.Background()

	tests := []struct {
		username   string
		wantErr    error
		credential string
		site       string
		status     ingest.SiteStatus
		facilities []string
		facilityID string
		goLive     time.Time
	}{
		{username: "ehr-ten", credential: "soap-s10", site: "S10", status: ingest.SiteProduction,
			facilities: []string{"10144", "2.16.840.1.113883.3.1"}, facilityID: "10144",
			goLive: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
		{username: "ehr-twenty", credential: "soap-s20", site: "S20", status: ingest.SiteTesting, facilities: []string{"20001"}},
		{username: "ehr-thirty", credential: "soap-s30", site: "S30", status: ingest.SiteRegistered, facilities: []string{}},
		{username: "ehr-revoking", credential: "soap-revoking", site: "S10", status: ingest.SiteProduction,
			facilities: []string{"10144", "2.16.840.1.113883.3.1"}, goLive: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)},
		{username: "EHR-TEN", wantErr: ingest.ErrUnknownSender}, // usernames are exact
		{username: "nobody", wantErr: ingest.ErrUnknownSender},
		{username: "", wantErr: ingest.ErrUnknownSender},
		{username: "ehr-inactive", wantErr: ingest.ErrUnknownSender},
		{username: "ehr-revoked", wantErr: ingest.ErrUnknownSender},
		{username: "mllp-user", wantErr: ingest.ErrUnknownSender},
	}
	for _, tt := range tests {
		t.Run(tt.username, func(t *testing.T) {
			c, err := db.SOAPCredential(ctx, tt.username)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("SOAPCredential(%q) = %+v, %v; want %v", tt.username, c, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("SOAPCredential(%q): %v", tt.username, err)
			}
			s := c.Sender
			if s.CredentialID != ids[tt.credential] || s.SiteCode != tt.site || s.Status != tt.status ||
				!slices.Equal(s.Facilities, tt.facilities) || c.FacilityID != tt.facilityID ||
				c.Username != tt.username || !s.GoLive.Equal(tt.goLive) {
				t.Errorf("SOAPCredential(%q) = %+v; want credential %d site %s status %s facilities %v facilityID %q go-live %v",
					tt.username, c, ids[tt.credential], tt.site, tt.status, tt.facilities, tt.facilityID, tt.goLive)
			}
			if s.Facilities == nil {
				t.Errorf("Facilities is nil; want an empty slice")
			}
		})
	}

	c, err := db.SOAPCredential(ctx, "ehr-ten")
	if err != nil {
		t.Fatal(err)
	}
	if c.PasswordHash != "$argon2id$v=19$m=65536,t=3,p=2$c2FsdA$aGFzaA" {
		t.Errorf("PasswordHash = %q", c.PasswordHash)
	}
	if c.Sender.SiteID != 10 || c.Sender.OrganizationID != 1 {
		t.Errorf("site/org = %d/%d; want 10/1", c.Sender.SiteID, c.Sender.OrganizationID)
	}
}

func TestMLLPSender(t *testing.T) {
	db := storetest.New(t)
	ids := senderFixture(t, db)
	ctx := context.Background()

	tests := []struct {
		name    string
		addr    string // "" = no address
		subject string
		want    string // credential name; "" = ErrUnknownSender
	}{
		{name: "most specific range", addr: "10.1.2.3", want: "mllp-net24"},
		{name: "wider range", addr: "10.9.9.9", want: "mllp-net8"},
		{name: "ipv4-mapped ipv6 peer", addr: "::ffff:10.1.2.77", want: "mllp-net24"},
		{name: "ipv6 range", addr: "2001:db8::5", want: "mllp-v6"},
		{name: "no matching range", addr: "172.16.0.1", want: ""},
		{name: "revoked range", addr: "198.51.100.7", want: ""},
		{name: "certificate", addr: "172.16.0.1", subject: "CN=ehr.site10.example,O=Site Ten", want: "mllp-cert"},
		{name: "certificate without address", subject: "CN=ehr.site10.example,O=Site Ten", want: "mllp-cert"},
		{name: "certificate wins over range", addr: "10.1.2.3", subject: "CN=only.with.cert", want: "mllp-cert-in-net8"},
		{name: "certificate inside its range", addr: "192.0.2.10", subject: "CN=ehr.site20.example", want: "mllp-cert-net"},
		{name: "certificate outside its range", addr: "172.16.0.1", subject: "CN=ehr.site20.example", want: ""},
		{name: "unknown certificate falls back to range", addr: "10.1.2.3", subject: "CN=stranger", want: "mllp-net24"},
		{name: "certificate credential never matches by address alone", addr: "192.0.2.10", want: ""},
		{name: "nothing", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			s, err := db.MLLPSender(ctx, addr, tt.subject)
			if tt.want == "" {
				if !errors.Is(err, ingest.ErrUnknownSender) {
					t.Fatalf("MLLPSender(%s, %q) = %+v, %v; want ErrUnknownSender", tt.addr, tt.subject, s, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("MLLPSender(%s, %q): %v", tt.addr, tt.subject, err)
			}
			if s.CredentialID != ids[tt.want] {
				t.Errorf("MLLPSender(%s, %q) = credential %d (site %s); want %s (%d)", tt.addr, tt.subject,
					s.CredentialID, s.SiteCode, tt.want, ids[tt.want])
			}
		})
	}

	s, err := db.MLLPSender(ctx, netip.MustParseAddr("10.1.2.3"), "")
	if err != nil {
		t.Fatal(err)
	}
	want := ingest.Sender{CredentialID: ids["mllp-net24"], SiteID: 10, SiteCode: "S10", OrganizationID: 1,
		Status: ingest.SiteProduction, GoLive: time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC),
		Facilities: []string{"10144", "2.16.840.1.113883.3.1"}}
	if s.CredentialID != want.CredentialID || s.SiteID != want.SiteID || s.SiteCode != want.SiteCode ||
		s.OrganizationID != want.OrganizationID || s.Status != want.Status || !s.GoLive.Equal(want.GoLive) ||
		!slices.Equal(s.Facilities, want.Facilities) {
		t.Errorf("MLLPSender = %+v; want %+v", s, want)
	}
	// Site 20's wider range contains the address too: it is shared, for messages whose MSH-4 is
	// site 20's (its inactive /32 of the same address is not).
	if len(s.Shared) != 1 || s.Shared[0].SiteCode != "S20" || s.Shared[0].CredentialID != ids["mllp-net8"] ||
		!slices.Equal(s.Shared[0].Facilities, []string{"20001"}) || len(s.Shared[0].Shared) != 0 {
		t.Errorf("MLLPSender(10.1.2.3).Shared = %+v; want site S20 by mllp-net8", s.Shared)
	}
	if s, err := db.MLLPSender(ctx, netip.MustParseAddr("10.9.9.9"), ""); err != nil || len(s.Shared) != 0 {
		t.Errorf("MLLPSender(10.9.9.9) = %+v, %v; want no shared site", s, err)
	}
	// A certificate names one site, even from an address other sites' ranges contain.
	if s, err := db.MLLPSender(ctx, netip.MustParseAddr("10.1.2.3"), "CN=only.with.cert"); err != nil || len(s.Shared) != 0 {
		t.Errorf("MLLPSender(10.1.2.3, certificate) = %+v, %v; want no shared site", s, err)
	}
}
