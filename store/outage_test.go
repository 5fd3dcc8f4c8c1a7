package store_test

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/vaxgate/vaxgate/admin/passwd"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/soap"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/pgembed"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// counterOf reads a counter (or gauge) of reg with the given labels; 0 when absent.
func counterOf(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	metrics:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// siteFixture creates an organization and a production site and returns it as a sender.
func siteFixture(t *testing.T, db *store.DB, code string) *ingest.Sender {
	t.Helper()
	ctx := context.Background()
	s := &ingest.Sender{SiteCode: code, Status: ingest.SiteProduction, Facilities: []string{"X68"}}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ($1, $1) RETURNING id`, "ORG-"+code).Scan(&s.OrganizationID); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, $2, $2, 'production') RETURNING id`,
		s.OrganizationID, code).Scan(&s.SiteID); err != nil {
		t.Fatal(err)
	}
	return s
}

// When the reply to a batch's COMMIT is lost, the writer finds out whether the batch was stored
// before answering: a stored batch is answered with its ACKs (AA), not "nothing was stored", and is
// not written a second time; a batch that was not stored is written again.
func TestAmbiguousCommitIsResolved(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dropBefore bool
	}{
		{"the COMMIT reached the server and its reply was lost", false},
		{"the connection was lost before the COMMIT reached the server", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			url := storetest.NewURL(t)
			proxy := newPGProxy(t, upstreamOf(t, url))
			db, err := store.Open(ctx, proxy.viaProxy(t, url))
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s := siteFixture(t, db, "SITE-C")
			reg := prometheus.NewRegistry()
			// One shard and a long delay: the records are written as one batch.
			w, err := db.NewWriter(store.WriterOptions{MaxBatch: 64, MaxDelay: 300 * time.Millisecond, Shards: 1,
				Registerer: reg, Logger: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close(ctx)
			recs := records(t, s, 11)
			if _, err := w.Commit(recs[0]).Wait(ctx); err != nil { // warm up: statements prepared
				t.Fatal(err)
			}
			proxy.arm(tc.dropBefore)
			recs = recs[1:]
			pend := make([]ingest.Pending, len(recs))
			for i, r := range recs {
				pend[i] = w.Commit(r)
			}
			for i, p := range pend {
				got, err := p.Wait(ctx)
				if err != nil || string(got) != string(recs[i].ACK) {
					t.Errorf("record %d: %v, ACK %q; want its own ACK (AA)", i, err, got)
				}
			}
			if n := proxy.fired.Load(); n != 1 {
				t.Fatalf("the proxy cut %d COMMITs; want 1", n)
			}
			if n := counterOf(t, reg, "vaxgate_store_failures_total", map[string]string{"stage": "commit_unknown"}); n != 1 {
				t.Errorf("commit outcomes looked up: %v; want 1", n)
			}
			// Stored exactly once: the batch was not written again after it had been committed.
			var rows, distinct int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*), count(DISTINCT control_id) FROM messages WHERE site_id = $1`, s.SiteID).Scan(&rows, &distinct); err != nil {
				t.Fatal(err)
			}
			if rows != 11 || distinct != 11 {
				t.Errorf("%d archive rows for %d control IDs; want 11 and 11", rows, distinct)
			}
		})
	}
}

// writerBehindProxy is a writer whose database connections go through a pgProxy.
func writerBehindProxy(t *testing.T, o store.WriterOptions) (*store.Writer, *pgProxy, *store.DB, *ingest.Sender) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := storetest.NewURL(t)
	proxy := newPGProxy(t, upstreamOf(t, url))
	db, err := store.Open(ctx, proxy.viaProxy(t, url))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	s := siteFixture(t, db, "SITE-H")
	o.Registerer = prometheus.NewRegistry()
	o.Logger = zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	w, err := db.NewWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer ccancel()
		_ = w.Close(cctx)
	})
	return w, proxy, db, s
}

// A record is held while the database is unreachable and answered with its ACK once it is back,
// within the outage wait; past the wait it is answered ErrUnavailable (no ACK), and so is every
// held record when the writer is closed.
func TestWriterHoldsThroughOutage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	t.Run("database back within the wait: the ACK", func(t *testing.T) {
		w, proxy, db, s := writerBehindProxy(t, store.WriterOptions{OutageWait: 20 * time.Second})
		recs := records(t, s, 1)
		proxy.setDown(true)
		start := time.Now()
		p := w.Commit(recs[0])
		time.AfterFunc(700*time.Millisecond, func() { proxy.setDown(false) })
		got, err := p.Wait(ctx)
		if err != nil || string(got) != string(recs[0].ACK) {
			t.Fatalf("held record: %v, %q; want its ACK", err, got)
		}
		if took := time.Since(start); took < 600*time.Millisecond {
			t.Errorf("answered after %v, before the database was back", took)
		}
		var n int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE control_id = $1`, recs[0].ControlID).Scan(&n); err != nil || n != 1 {
			t.Errorf("stored %d times (%v); want once", n, err)
		}
	})
	t.Run("database not back within the wait: no ACK", func(t *testing.T) {
		w, proxy, _, s := writerBehindProxy(t, store.WriterOptions{OutageWait: 800 * time.Millisecond})
		recs := records(t, s, 3)
		proxy.setDown(true)
		start := time.Now()
		pend := []ingest.Pending{w.Commit(recs[0]), w.Commit(recs[1]), w.Commit(recs[2])}
		for i, p := range pend {
			got, err := p.Wait(ctx)
			if got != nil || !errors.Is(err, ingest.ErrUnavailable) {
				t.Errorf("record %d: %q, %v; want no ACK and ErrUnavailable", i, got, err)
			}
		}
		if took := time.Since(start); took < 700*time.Millisecond || took > 10*time.Second {
			t.Errorf("answered after %v; want about the outage wait (800ms)", took)
		}
	})
	t.Run("closing the writer lets held records go at once", func(t *testing.T) {
		w, proxy, _, s := writerBehindProxy(t, store.WriterOptions{OutageWait: time.Minute})
		recs := records(t, s, 1)
		proxy.setDown(true)
		p := w.Commit(recs[0])
		time.Sleep(300 * time.Millisecond)
		start := time.Now()
		if err := w.Close(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := p.Wait(ctx)
		if got != nil || !errors.Is(err, ingest.ErrUnavailable) {
			t.Errorf("held record at close: %q, %v; want ErrUnavailable", got, err)
		}
		if took := time.Since(start); took > 10*time.Second {
			t.Errorf("Close took %v with a record held", took)
		}
	})
}

// outageServer is a private PostgreSQL that a test can stop and start again on the same port.
type outageServer struct {
	t   *testing.T
	o   pgembed.Options
	mu  sync.Mutex
	srv *pgembed.Server
}

func startOutageServer(t *testing.T) *outageServer {
	t.Helper()
	// The server runs as another user when the tests run as root: its directory's parent must be
	// traversable.
	parent, err := os.MkdirTemp("", "vaxgate-outage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &outageServer{t: t, o: pgembed.Options{DataDir: filepath.Join(parent, "data"), Port: port, Database: "outage",
		Settings: map[string]string{"fsync": "off", "full_page_writes": "off", "shared_buffers": "32MB"}}}
	s.start()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *outageServer) start() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgembed.Start(ctx, s.o)
	if err != nil {
		s.t.Fatalf("start PostgreSQL: %v", err)
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
}

func (s *outageServer) stop() {
	s.mu.Lock()
	srv := s.srv
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		s.t.Errorf("stop PostgreSQL: %v", err)
	}
}

func (s *outageServer) url() string { return s.urlFor(s.o.Database) }

func (s *outageServer) urlFor(db string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.srv.AdminURL(db)
}

// outageReport is what the senders saw.
type outageReport struct {
	messages       int            // distinct messages sent
	acks           map[string]int // by MSA-1
	ar207          int            // ACKs saying "internal error, send it again later"
	closedNoACK    int            // exchanges that ended with the connection closed, no ACK
	dialFailures   int
	maxWait        time.Duration // longest time a message waited for its ACK or the close
	acknowledged   []string      // control IDs answered AA or AE
	stopped, total time.Duration
}

func (r outageReport) String() string {
	return fmt.Sprintf("%d messages; ACKs %v; AR 207: %d; connections closed without ACK: %d (then resent); dial failures: %d; longest wait for an answer: %v; database stopped %v; run %v",
		r.messages, r.acks, r.ar207, r.closedNoACK, r.dialFailures, r.maxWait.Round(10*time.Millisecond), r.stopped.Round(10*time.Millisecond), r.total.Round(10*time.Millisecond))
}

// outageStop is how long the database is stopped (VAXGATE_OUTAGE_STOP, e.g. 10s, to measure).
func outageStop(t *testing.T, def time.Duration) time.Duration {
	if v := os.Getenv("VAXGATE_OUTAGE_STOP"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("VAXGATE_OUTAGE_STOP: %v", err)
		}
		return d
	}
	return def
}

// runOutage runs the engine (writer, pipeline, MLLP on loopback) over the server through a
// pgProxy, sends a paced load from several connections the way EHR interfaces do (one message at a
// time; a connection closed without an ACK is reopened and the message sent again), stops the
// database for stopFor in the middle, starts it again, and reports what the senders saw. With arm,
// the proxy loses the reply of one COMMIT instead of the server being stopped.
func runOutage(t *testing.T, srv *outageServer, dbName string, outageWait, stopFor time.Duration, armCommit bool) (outageReport, *store.DB, *pgProxy) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	admin, err := store.Open(ctx, srv.url())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Pool.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	dbURL := srv.urlFor(dbName)
	proxy := newPGProxy(t, upstreamOf(t, dbURL))
	db, err := store.Open(ctx, proxy.viaProxy(t, dbURL))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := siteFixture(t, db, "SITE-O")
	if _, err := db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ('X68', $1)`, s.SiteID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO sender_credentials (site_id, transport, source_cidr) VALUES ($1, 'mllp', '127.0.0.0/8')`, s.SiteID); err != nil {
		t.Fatal(err)
	}
	logger := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	w, err := db.NewWriter(store.WriterOptions{OutageWait: outageWait, Registerer: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: w, Registerer: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	server, err := mllp.NewServer(mllp.Options{Starter: p, Senders: db, Registerer: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = server.Serve(ln) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = server.Shutdown(sctx)
		_ = w.Close(sctx)
	}()

	const senders = 8
	const pace = 25 * time.Millisecond // per connection: 8 × 40 = 320 messages/s offered
	const maxPerSender = 2000
	var (
		mu     sync.Mutex
		rep    = outageReport{acks: map[string]int{}}
		stopCh = make(chan struct{})
		wg     sync.WaitGroup
	)
	began := time.Now()
	for i := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			gen := vxugen.New(vxugen.Options{Seed: uint64(100 + i), ControlIDs: fmt.Sprintf("%s-%d-", dbName, i), Patients: 5000, Now: time.Now()})
			var c *mllp.Client
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			for n := 0; n < maxPerSender; n++ {
				select {
				case <-stopCh:
					return
				case <-time.After(pace):
				}
				msg := gen.Next()
				mu.Lock()
				rep.messages++
				mu.Unlock()
				// Send until answered, as an EHR's interface engine does (bounded).
				for attempt := 0; ; attempt++ {
					if attempt == 100 || ctx.Err() != nil {
						t.Errorf("a message was never answered")
						return
					}
					if c == nil {
						dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
						var err error
						c, err = mllp.Dial(dctx, ln.Addr().String(), nil)
						dcancel()
						if err != nil {
							mu.Lock()
							rep.dialFailures++
							mu.Unlock()
							time.Sleep(200 * time.Millisecond)
							continue
						}
					}
					sent := time.Now()
					sctx, scancel := context.WithTimeout(ctx, outageWait+30*time.Second)
					a, err := c.Send(sctx, msg)
					scancel()
					waited := time.Since(sent)
					mu.Lock()
					rep.maxWait = max(rep.maxWait, waited)
					mu.Unlock()
					if err != nil {
						// Closed without an ACK: reconnect (after a pause) and send it again.
						mu.Lock()
						rep.closedNoACK++
						mu.Unlock()
						c.Close()
						c = nil
						time.Sleep(200 * time.Millisecond)
						continue
					}
					m, perr := hl7.Parse(a)
					if perr != nil {
						t.Errorf("ACK does not parse: %v", perr)
						return
					}
					code := m.Get("MSA-1")
					mu.Lock()
					rep.acks[code]++
					if strings.Contains(string(a), "|207^") {
						rep.ar207++
					}
					if code == "AA" || code == "AE" {
						rep.acknowledged = append(rep.acknowledged, m.Get("MSA-2"))
					}
					mu.Unlock()
					break
				}
			}
		}()
	}

	time.Sleep(time.Second) // the load runs against a healthy database first
	if armCommit {
		proxy.arm(false)
		time.Sleep(time.Second)
	} else {
		stopAt := time.Now()
		srv.stop()
		time.Sleep(stopFor)
		srv.start()
		rep.stopped = time.Since(stopAt)
	}
	time.Sleep(2 * time.Second) // and against the database back
	close(stopCh)
	wg.Wait()
	rep.total = time.Since(began)
	return rep, db, proxy
}

// checkStored asserts that every acknowledged message is stored, once.
func checkStored(t *testing.T, db *store.DB, rep outageReport) {
	t.Helper()
	ctx := context.Background()
	var stored, rows int
	if err := db.Pool.QueryRow(ctx, `SELECT count(DISTINCT control_id) FROM messages WHERE resend_key AND control_id = ANY($1)`, rep.acknowledged).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != len(rep.acknowledged) {
		t.Errorf("%d acknowledged messages stored; want all %d", stored, len(rep.acknowledged))
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE resend_key`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != stored {
		t.Errorf("%d accepted archive rows for %d messages: a message was stored twice", rows, stored)
	}
	if len(rep.acknowledged) != rep.messages {
		t.Errorf("%d of %d messages acknowledged", len(rep.acknowledged), rep.messages)
	}
	t.Logf("stored: %d of %d acknowledged messages, %d accepted archive rows", stored, len(rep.acknowledged), rows)
}

// While PostgreSQL is stopped under load, senders get no "AR 207 send it again later": their
// messages are held and answered once the database is back (within the outage wait), or their
// connections are closed without an ACK (past it) and their resends are answered. Every
// acknowledged message is stored, once. VAXGATE_OUTAGE_STOP=10s measures a 10 s stop.
func TestDatabaseOutageOverMLLP(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops a PostgreSQL server: not in -short")
	}
	srv := startOutageServer(t)

	t.Run("stop shorter than the outage wait: held, then answered", func(t *testing.T) {
		stop := outageStop(t, 2*time.Second)
		wait := store.DefaultOutageWait // what a deployment gets
		if stop+5*time.Second > wait {
			wait = stop + 15*time.Second
		}
		rep, db, _ := runOutage(t, srv, "held", wait, stop, false)
		t.Logf("database stopped %v, outage wait %v: %s", stop, wait, rep)
		if rep.ar207 != 0 || rep.acks["AR"] != 0 {
			t.Errorf("senders got %d AR (%d AR 207) during the outage; want none", rep.acks["AR"], rep.ar207)
		}
		if rep.closedNoACK != 0 {
			t.Errorf("%d connections closed without an ACK within the outage wait; want none", rep.closedNoACK)
		}
		if rep.maxWait < stop/2 {
			t.Errorf("no message waited through the outage (longest %v): was the database stopped under load?", rep.maxWait)
		}
		checkStored(t, db, rep)
	})

	t.Run("stop longer than the outage wait: closed without ACK, resent, answered", func(t *testing.T) {
		stop := outageStop(t, 4*time.Second)
		wait := stop / 4
		rep, db, _ := runOutage(t, srv, "closed", wait, stop, false)
		t.Logf("database stopped %v, outage wait %v: %s", stop, wait, rep)
		if rep.ar207 != 0 || rep.acks["AR"] != 0 {
			t.Errorf("senders got %d AR (%d AR 207) during the outage; want none", rep.acks["AR"], rep.ar207)
		}
		if rep.closedNoACK == 0 {
			t.Errorf("no connection was closed without an ACK past the outage wait")
		}
		if limit := wait + 10*time.Second; rep.maxWait > limit {
			t.Errorf("a sender waited %v for an answer; want the connection closed after about the outage wait (%v)", rep.maxWait, wait)
		}
		checkStored(t, db, rep)
	})

	t.Run("SOAP while the database is stopped: a retry fault, then AA", func(t *testing.T) {
		soapDuringOutage(t, srv)
	})

	t.Run("a COMMIT's reply lost under load: answered AA, stored once", func(t *testing.T) {
		rep, db, proxy := runOutage(t, srv, "ambiguous", 20*time.Second, 0, true)
		t.Logf("one COMMIT reply lost: %s", rep)
		if proxy.fired.Load() != 1 {
			t.Fatalf("the proxy cut %d COMMITs; want 1", proxy.fired.Load())
		}
		if rep.ar207 != 0 || rep.acks["AR"] != 0 || rep.closedNoACK != 0 {
			t.Errorf("senders got %d AR (%d AR 207) and %d closed connections; want none", rep.acks["AR"], rep.ar207, rep.closedNoACK)
		}
		checkStored(t, db, rep)
	})
}

// soapDuringOutage: while the database is stopped, a SOAP submission gets the WSDL's UnknownFault
// as soap:Receiver with a Retry-After (never an ACK that says AR), and the same request sent again
// once the database is back is answered AA and stored.
func soapDuringOutage(t *testing.T, srv *outageServer) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := store.Open(ctx, srv.url())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Pool.Exec(ctx, "CREATE DATABASE soap"); err != nil {
		t.Fatal(err)
	}
	admin.Close()
	db, err := store.Open(ctx, srv.urlFor("soap"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	s := siteFixture(t, db, "SITE-S")
	hash, err := passwd.Hash("Soap-Secret-1!")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ('X68', $1)`, s.SiteID); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO sender_credentials (site_id, transport, username, password_hash, facility_id) VALUES ($1, 'soap', 'soap-ehr', $2, 'X68')`,
		s.SiteID, hash); err != nil {
		t.Fatal(err)
	}
	logger := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	w, err := db.NewWriter(store.WriterOptions{OutageWait: 2 * time.Second, Registerer: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	p, err := ingest.NewPipeline(ingest.Options{Committer: w, Registerer: prometheus.NewRegistry(), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	h, err := soap.NewHandler(soap.Options{Submitter: p, Senders: db, Logger: logger, RetryAfter: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()
	gen := vxugen.New(vxugen.Options{Seed: 7, ControlIDs: "SOAP-", Patients: 10, Now: time.Now()})
	submit := func(msg []byte) (status int, retryAfter string, body string) {
		var b strings.Builder
		b.WriteString(`<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:iis="urn:cdc:iisb:2011"><soap:Body><iis:submitSingleMessage>` +
			`<iis:username>soap-ehr</iis:username><iis:password>Soap-Secret-1!</iis:password><iis:facilityID>X68</iis:facilityID><iis:hl7Message>`)
		_ = xml.EscapeText(&b, msg)
		b.WriteString(`</iis:hl7Message></iis:submitSingleMessage></soap:Body></soap:Envelope>`)
		resp, err := hs.Client().Post(hs.URL, "application/soap+xml; charset=utf-8", strings.NewReader(b.String()))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After"), string(out)
	}
	isAA := func(body string) bool { return strings.Contains(body, "MSA|AA|") }

	if status, _, body := submit(gen.Next()); status != 200 || !isAA(body) {
		t.Fatalf("before the outage: %d\n%s", status, body)
	}
	srv.stop()
	msg := gen.Next()
	start := time.Now()
	status, retry, body := submit(msg)
	took := time.Since(start)
	srv.start()
	if status != 500 || retry != "20" || !strings.Contains(body, "Receiver") || !strings.Contains(body, "<Code>4</Code>") ||
		!strings.Contains(body, "<Reason>Unknown</Reason>") || strings.Contains(body, "MSA|") {
		t.Errorf("during the outage: %d Retry-After %q\n%s\nwant a Receiver UnknownFault, Code 4, Retry-After 20, no ACK", status, retry, body)
	}
	if took > 15*time.Second {
		t.Errorf("the fault took %v", took)
	}
	var status2 int
	for range 50 { // the pool reconnects to the restarted server
		status2, _, body = submit(msg)
		if status2 == 200 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if status2 != 200 || !isAA(body) {
		t.Fatalf("the same request once the database is back: %d\n%s", status2, body)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE resend_key AND transport = 'soap'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d SOAP messages stored; want 2", n)
	}
}
