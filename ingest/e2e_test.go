package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// engine is a real pipeline over a real PostgreSQL behind a real MLLP listener on loopback.
type engine struct {
	db   *store.DB
	addr string
	site int64
	org  int64
	// siteA is SITE-A as a sender (e.send sends as it).
	siteA *sender
}

// sender is a site's MLLP connection as the engine authenticates it: by its loopback source
// address.
type sender struct {
	e     *engine
	code  string
	site  int64
	org   int64
	local string // source address; "" for the default (127.0.0.1)
}

// siteSpec describes a further site for addSite.
type siteSpec struct {
	org        string // organization code: created when new, shared when it exists
	code       string // site code
	status     string // registered, testing, production
	goLive     time.Time
	facilities []string
	// addr is the loopback address the site connects from (127.0.0.2, 127.0.0.3, ...): its MLLP
	// credential is that /32, more specific than SITE-A's 127.0.0.0/8.
	addr string
}

// newEngine starts the engine with one production site "SITE-A" (facility FAC-A and X68) whose
// MLLP credential is the loopback address.
func newEngine(t testing.TB, status string, opts ...func(*ingest.Options)) *engine {
	t.Helper()
	ctx := context.Background()
	db := storetest.New(t)
	e := &engine{db: db}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('ORG-A', 'Clinic A') RETURNING id`).Scan(&e.org); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'SITE-A', 'Clinic A Main', $2) RETURNING id`, e.org, status).Scan(&e.site); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ('FAC-A', $1), ('X68', $1)`, e.site); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO sender_credentials (site_id, transport, source_cidr) VALUES ($1, 'mllp', '127.0.0.0/8')`, e.site); err != nil {
		t.Fatal(err)
	}
	writer, err := db.NewWriter(store.WriterOptions{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := validate.New(validate.Options{Now: func() time.Time { return time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	o := ingest.Options{Committer: writer, Validator: v, Registerer: prometheus.NewRegistry()}
	for _, f := range opts {
		f(&o)
	}
	p, err := ingest.NewPipeline(o)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mllp.NewServer(mllp.Options{Starter: p, Senders: db, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	e.addr = ln.Addr().String()
	e.siteA = &sender{e: e, code: "SITE-A", site: e.site, org: e.org}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		_ = writer.Close(ctx)
	})
	return e
}

// send sends one message as SITE-A over a new MLLP connection and returns the parsed ACK.
func (e *engine) send(t testing.TB, msg []byte) (*hl7.Message, []byte) {
	t.Helper()
	return e.siteA.send(t, msg)
}

// send sends one message as this site over a new MLLP connection and returns the parsed ACK.
func (s *sender) send(t testing.TB, msg []byte) (*hl7.Message, []byte) {
	t.Helper()
	m, raw, err := s.try(msg)
	if err != nil {
		t.Fatal(err)
	}
	return m, raw
}

// try is send for goroutines other than the test's: it returns what went wrong.
func (s *sender) try(msg []byte) (*hl7.Message, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var opts []mllp.DialOption
	if s.local != "" {
		opts = append(opts, mllp.WithDialer(&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(s.local)}}))
	}
	c, err := mllp.Dial(ctx, s.e.addr, nil, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("dial as %s: %w", s.code, err)
	}
	defer c.Close()
	raw, err := c.Send(ctx, msg)
	if err != nil {
		return nil, nil, fmt.Errorf("send as %s: %w", s.code, err)
	}
	m, err := hl7.Parse(raw)
	if err != nil {
		return nil, raw, fmt.Errorf("ACK does not parse: %w\n%q", err, raw)
	}
	return m, raw, nil
}

// addSite registers a further site (and its organization when new) with an MLLP credential for
// its own loopback address.
func (e *engine) addSite(t *testing.T, spec siteSpec) *sender {
	t.Helper()
	ctx := context.Background()
	s := &sender{e: e, code: spec.code, local: spec.addr}
	if err := e.db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ($1, $1)
		ON CONFLICT (code) DO UPDATE SET code = EXCLUDED.code RETURNING id`, spec.org).Scan(&s.org); err != nil {
		t.Fatal(err)
	}
	var goLive *time.Time
	if !spec.goLive.IsZero() {
		goLive = &spec.goLive
	}
	if err := e.db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status, go_live_date)
		VALUES ($1, $2, $2, $3, $4) RETURNING id`, s.org, spec.code, spec.status, goLive).Scan(&s.site); err != nil {
		t.Fatal(err)
	}
	for _, f := range spec.facilities {
		if _, err := e.db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ($1, $2)`, f, s.site); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.db.Pool.Exec(ctx, `INSERT INTO sender_credentials (site_id, transport, source_cidr)
		VALUES ($1, 'mllp', $2::inet)`, s.site, spec.addr+"/32"); err != nil {
		t.Fatal(err)
	}
	return s
}

// setSite changes a site's onboarding status and go-live date (zero: none); the next connection
// sees them.
func (s *sender) setSite(t *testing.T, status string, goLive time.Time) {
	t.Helper()
	var d *time.Time
	if !goLive.IsZero() {
		d = &goLive
	}
	if _, err := s.e.db.Pool.Exec(context.Background(), `UPDATE sites SET status = $2, go_live_date = $3 WHERE id = $1`,
		s.site, status, d); err != nil {
		t.Fatal(err)
	}
}

// withSharingPolicy is a newEngine option.
func withSharingPolicy(p ingest.SharingPolicy) func(*ingest.Options) {
	return func(o *ingest.Options) { o.SharingPolicy = p }
}

func (e *engine) count(t *testing.T, table string) int {
	t.Helper()
	var n int
	if err := e.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// errCodes lists ERR-3.1 of every ERR segment.
func errCodes(m *hl7.Message) []string {
	var out []string
	for i := 1; i <= m.Count("ERR"); i++ {
		s, _ := m.Find("ERR", i)
		out = append(out, s.Field(3).Component(1).String())
	}
	return out
}

func TestVXUOverMLLPIsStored(t *testing.T) {
	e := newEngine(t, "production")
	msg := fixture(t, "vxu_basic.hl7")
	a, _ := e.send(t, msg)
	if got := a.Get("MSA-2"); got != "CTRL-0001" {
		t.Fatalf("MSA-2 = %q, want CTRL-0001", got)
	}
	if got := a.Get("MSA-1"); got != "AA" && got != "AE" {
		t.Fatalf("MSA-1 = %q, want AA or AE; ERR: %v", got, errCodes(a))
	}
	if got := a.Get("MSH-9"); got != "ACK" || a.Get("MSH-9-2") != "V04" || a.Get("MSH-21-1") != "Z23" {
		t.Errorf("ACK header: MSH-9 %q^%q, MSH-21 %q", got, a.Get("MSH-9-2"), a.Get("MSH-21-1"))
	}
	if a.Get("MSH-5") != "ClinicEHR" || a.Get("MSH-6") != "FAC-A" || a.Get("MSH-3") != "vaxgate" || a.Get("MSH-4") != "STATEIIS" {
		t.Errorf("applications/facilities not swapped: %q %q %q %q", a.Get("MSH-3"), a.Get("MSH-4"), a.Get("MSH-5"), a.Get("MSH-6"))
	}
	if a.Get("MSH-11") != "P" || a.Get("MSH-15") != "NE" || a.Get("MSH-16") != "NE" {
		t.Errorf("MSH-11/15/16 = %q %q %q", a.Get("MSH-11"), a.Get("MSH-15"), a.Get("MSH-16"))
	}

	ctx := context.Background()
	var (
		family, given, mother, sex, idv, ida, idt, env, protection string
		birth                                                      time.Time
	)
	if err := e.db.Pool.QueryRow(ctx, `SELECT family_name, given_name, mother_maiden, sex, birth_date, id_value, id_authority, id_type, env, protection FROM patients`).
		Scan(&family, &given, &mother, &sex, &birth, &idv, &ida, &idt, &env, &protection); err != nil {
		t.Fatal(err)
	}
	if family != "Müller" || given != "Jürgen" || mother != "O&Brien" || sex != "M" || birth.Format("20060102") != "20190402" ||
		idv != "MRN-1001" || ida != "CLINIC-A" || idt != "MR" || env != "P" || protection != "N" {
		t.Errorf("patient stored as %q %q %q %q %v %q %q %q %q %q", family, given, mother, sex, birth, idv, ida, idt, env, protection)
	}
	var (
		cvx, lot, mvx, route, site, filler, action, completion, kind string
		given1, exp                                                  time.Time
		historical, deleted                                          bool
	)
	if err := e.db.Pool.QueryRow(ctx, `SELECT cvx, lot, mvx, route, body_site, filler_order_id, action_code, completion_status, kind,
			administered_on, lot_expiration, historical, deleted FROM vaccinations`).
		Scan(&cvx, &lot, &mvx, &route, &site, &filler, &action, &completion, &kind, &given1, &exp, &historical, &deleted); err != nil {
		t.Fatal(err)
	}
	if cvx != "08" || lot != "LOT123A" || mvx != "MSD" || route != "C28161" || site != "LT" || filler != "ORD-5001^CLINIC-A" ||
		action != "A" || completion != "CP" || kind != "dose" || given1.Format("20060102") != "20240310" ||
		exp.Format("20060102") != "20251231" || historical || deleted {
		t.Errorf("vaccination stored as %q %q %q %q %q %q %q %q %q %v %v %v %v", cvx, lot, mvx, route, site, filler, action, completion, kind, given1, exp, historical, deleted)
	}
	// Observations and next of kin are read back from the archived message the rows reference.
	var regID int64
	if err := e.db.Pool.QueryRow(ctx, `SELECT registry_patient_id FROM patients`).Scan(&regID); err != nil {
		t.Fatal(err)
	}
	rec, err := e.db.PatientRecord(ctx, regID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Vaccinations) != 1 || len(rec.Vaccinations[0].Observations) != 4 {
		t.Fatalf("record: %d vaccinations, want 1 with 4 observations: %+v", len(rec.Vaccinations), rec.Vaccinations)
	}
	fundingValue := ""
	for _, o := range rec.Vaccinations[0].Observations {
		if o.Identifier.Code == "64994-7" {
			fundingValue = o.Value.Code
		}
	}
	if fundingValue != "V02" {
		t.Errorf("funding eligibility observation = %q, want V02", fundingValue)
	}
	if d := rec.Vaccinations[0].Details; d.FillerOrder != "ORD-5001^CLINIC-A" || d.CVX != "08" || len(d.Lots) == 0 || d.Lots[0] != "LOT123A" {
		t.Errorf("vaccination details read back %+v", d)
	}
	if len(rec.Senders) != 1 || len(rec.Senders[0].NextOfKin) != 1 || rec.Senders[0].NextOfKin[0].Relationship.Code != "MTH" {
		t.Errorf("next of kin read back %+v", rec.Senders)
	}
	var raw, storedACK []byte
	var code, ctrl, transport string
	if err := e.db.Pool.QueryRow(ctx, `SELECT raw, ack, ack_code, control_id, transport FROM messages`).Scan(&raw, &storedACK, &code, &ctrl, &transport); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, msg) || ctrl != "CTRL-0001" || transport != "mllp" || code != a.Get("MSA-1") {
		t.Errorf("archive: raw equal %v, control %q, transport %q, code %q", bytes.Equal(raw, msg), ctrl, transport, code)
	}
	var sharing string
	if err := e.db.Pool.QueryRow(ctx, `SELECT sharing FROM registry_patients`).Scan(&sharing); err != nil || sharing != "Y" {
		t.Errorf("sharing = %q (%v), want Y", sharing, err)
	}
}

func TestHeaderRejections(t *testing.T) {
	e := newEngine(t, "production")
	base := string(fixture(t, "vxu_basic.hl7"))
	cases := []struct {
		name     string
		msg      string
		code     string
		location string
	}{
		{"unsupported type", strings.Replace(base, "VXU^V04^VXU_V04", "ADT^A01^ADT_A01", 1), "200", "MSH"},
		{"unsupported event", strings.Replace(base, "VXU^V04^VXU_V04", "VXU^V99", 1), "201", "MSH"},
		{"wrong version", strings.Replace(base, "|P|2.5.1|", "|P|2.3.1|", 1), "203", "MSH"},
		{"test message from production site", strings.Replace(base, "|P|2.5.1|", "|T|2.5.1|", 1), "202", "MSH"},
		{"other site's facility", strings.Replace(base, "|ClinicEHR|FAC-A|", "|ClinicEHR|FAC-Z|", 1), "204", "MSH"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := e.count(t, "vaccinations")
			a, _ := e.send(t, []byte(c.msg))
			if a.Get("MSA-1") != ack.AR {
				t.Fatalf("MSA-1 = %q, want AR", a.Get("MSA-1"))
			}
			if a.Get("MSA-2") != "CTRL-0001" {
				t.Errorf("MSA-2 = %q", a.Get("MSA-2"))
			}
			if got := errCodes(a); len(got) != 1 || got[0] != c.code {
				t.Errorf("ERR-3 codes %v, want [%s]", got, c.code)
			}
			if got := a.Get("ERR-2-1"); got != c.location {
				t.Errorf("ERR-2 segment %q, want %q", got, c.location)
			}
			if e.count(t, "vaccinations") != before {
				t.Error("a rejected message stored a vaccination")
			}
		})
	}
	t.Run("unparseable frame", func(t *testing.T) {
		a, _ := e.send(t, []byte("this is not HL7 at all"))
		if a.Get("MSA-1") != ack.AR || len(errCodes(a)) != 1 {
			t.Fatalf("got MSA-1 %q ERR %v, want one AR", a.Get("MSA-1"), errCodes(a))
		}
	})
	t.Run("damaged MSH keeps the control ID", func(t *testing.T) {
		a, _ := e.send(t, []byte("MSH|^~\\&|App|FAC-A|||20240101||VXU^V04|DAMAGED-1|P|2.5.1\rP@D|broken"))
		if a.Get("MSA-1") != ack.AR || a.Get("MSA-2") != "DAMAGED-1" {
			t.Fatalf("got MSA-1 %q MSA-2 %q, want AR for DAMAGED-1", a.Get("MSA-1"), a.Get("MSA-2"))
		}
	})
	if n := e.count(t, "messages"); n != len(cases)+2 {
		t.Errorf("%d messages archived, want %d (every message is archived)", n, len(cases)+2)
	}
}

func TestResendReturnsOriginalACK(t *testing.T) {
	e := newEngine(t, "production")
	msg := fixture(t, "vxu_basic.hl7")
	_, first := e.send(t, msg)
	counts := map[string]int{}
	for _, tbl := range []string{"patients", "vaccinations", "patients, unnest(report_messages)", "vaccinations, unnest(report_messages)"} {
		counts[tbl] = e.count(t, tbl)
	}
	_, second := e.send(t, msg)
	if !bytes.Equal(first, second) {
		t.Fatalf("resend ACK differs:\n%q\n%q", first, second)
	}
	for tbl, n := range counts {
		if got := e.count(t, tbl); got != n {
			t.Errorf("%s: %d rows after resend, %d before", tbl, got, n)
		}
	}
	if n := e.count(t, "messages"); n != 2 {
		t.Errorf("%d messages archived, want 2 (the resend is archived too)", n)
	}
}

func TestFailedCommitGetsNoAA(t *testing.T) {
	e := newEngine(t, "production")
	ctx := context.Background()
	// A trigger that fails every vaccination with this lot stands for any failure of the write.
	if _, err := e.db.Pool.Exec(ctx, `
		CREATE FUNCTION fail_lot() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN IF NEW.lot = 'LOT123A' THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$;
		CREATE TRIGGER fail_lot BEFORE INSERT ON vaccinations FOR EACH ROW EXECUTE FUNCTION fail_lot();`); err != nil {
		t.Fatal(err)
	}
	a, _ := e.send(t, fixture(t, "vxu_basic.hl7"))
	if a.Get("MSA-1") != ack.AR {
		t.Fatalf("MSA-1 = %q, want AR", a.Get("MSA-1"))
	}
	if got := errCodes(a); len(got) != 1 || got[0] != "207" {
		t.Errorf("ERR-3 %v, want [207]", got)
	}
	for _, tbl := range []string{"patients", "vaccinations", "registry_patients", "sharing_changes"} {
		if n := e.count(t, tbl); n != 0 {
			t.Errorf("%s has %d rows: the failed message was half written", tbl, n)
		}
	}
	// The failure itself is archived (asynchronously), without the resend key.
	deadline := time.Now().Add(5 * time.Second)
	for e.count(t, "messages WHERE ack_code = 'AR' AND NOT resend_key") != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := e.count(t, "messages WHERE ack_code = 'AR' AND NOT resend_key"); n != 1 {
		t.Errorf("%d archived failures, want 1", n)
	}
	// The sender's retry, once the fault is gone, is processed (no resend answer from the failure).
	if _, err := e.db.Pool.Exec(ctx, `DROP TRIGGER fail_lot ON vaccinations`); err != nil {
		t.Fatal(err)
	}
	a, _ = e.send(t, fixture(t, "vxu_basic.hl7"))
	if code := a.Get("MSA-1"); code == ack.AR {
		t.Fatalf("retry answered AR: %v", errCodes(a))
	}
	if n := e.count(t, "vaccinations"); n != 1 {
		t.Errorf("retry stored %d vaccinations, want 1", n)
	}
}
