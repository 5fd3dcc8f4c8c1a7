package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// running is a `vaxgate serve --demo` started in-process.
type running struct {
	mllp, http string
	stdout     *syncBuffer
	stderr     *syncBuffer
	stop       func() error
}

// serveConfig is the configuration serve gets from the environment env (VAXGATE_ variables) on
// top of a test database and loopback ports.
func serveConfig(t *testing.T, url string, env map[string]string) *config {
	t.Helper()
	t.Setenv("VAXGATE_DATABASE_URL", url)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := loadConfig(newServeCmd())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// startServe runs serve --demo with c and waits until it serves.
func startServe(t *testing.T, c *config) *running {
	t.Helper()
	r := &running{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cc := *c
	go func() { done <- serve(ctx, &cc, true, r.stdout, r.stderr) }()
	r.stop = stopper(cancel, done)
	t.Cleanup(func() { _ = r.stop() })
	if !r.waitServing(done) {
		t.Errorf("serve did not start:\n%s", r.stderr.String())
		return nil
	}
	return r
}

// msaOf returns MSA-1 of an ACK and the text of its first ERR.
func msaOf(t *testing.T, ack []byte) (code, err string) {
	t.Helper()
	a, perr := hl7.Parse(ack)
	if perr != nil {
		t.Fatalf("ACK does not parse: %v\n%q", perr, ack)
	}
	return a.Get("MSA-1"), a.Get("ERR-8")
}

// Revoking the MLLP credential, or moving the site back to testing, takes effect on a connection
// that is already open, within mllp.sender_ttl, without a restart.
func TestRevocationOnOpenConnection(t *testing.T) {
	url := storetest.NewURL(t)
	srv := startServe(t, serveConfig(t, url, map[string]string{"VAXGATE_MLLP_SENDER_TTL": "200ms"}))
	if srv == nil {
		t.FailNow()
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	gen := vxugen.New(vxugen.Options{Seed: 11, Facility: "X68", ProcessingID: "P", ControlIDs: "REVOKE", Now: time.Now()})
	c, err := mllp.Dial(ctx, srv.mllp, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	send := func() (string, string) {
		t.Helper()
		a, err := c.Send(ctx, gen.Next())
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		return msaOf(t, a)
	}
	if code, _ := send(); code != "AA" && code != "AE" {
		t.Fatalf("before: %s", code)
	}

	t.Run("site moved back to testing", func(t *testing.T) {
		exec(`UPDATE sites SET status = 'testing' WHERE code = 'DEMO-SITE'`)
		time.Sleep(300 * time.Millisecond)
		if code, text := send(); code != "AR" || !strings.Contains(text, "MSH-11") {
			t.Errorf("P message from a site in testing: %s %q, want AR naming MSH-11", code, text)
		}
		exec(`UPDATE sites SET status = 'production' WHERE code = 'DEMO-SITE'`)
		time.Sleep(300 * time.Millisecond)
		if code, _ := send(); code != "AA" && code != "AE" {
			t.Errorf("back in production: %s", code)
		}
	})
	t.Run("credential revoked", func(t *testing.T) {
		exec(`UPDATE sender_credentials SET active = false, revoked_at = now() WHERE transport = 'mllp'`)
		time.Sleep(300 * time.Millisecond)
		if code, text := send(); code != "AR" || !strings.Contains(text, "not registered") {
			t.Errorf("after the revocation: %s %q, want AR (sender not registered)", code, text)
		}
	})
}

// Two `serve --demo` racing on an empty database create the demo credentials once, and each
// prints them only once it has bound its listeners, naming the bound addresses.
func TestDemoRace(t *testing.T) {
	url := storetest.NewURL(t)
	c := serveConfig(t, url, nil)
	var wg sync.WaitGroup
	servers := make([]*running, 2)
	for i := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			servers[i] = startServe(t, c)
		}()
	}
	wg.Wait()
	for i, r := range servers {
		if r == nil {
			t.Fatalf("server %d did not start", i)
		}
		port := r.mllp[strings.LastIndex(r.mllp, ":"):]
		if !strings.Contains(r.stdout.String(), "localhost"+port) && !strings.Contains(r.stdout.String(), "127.0.0.1"+port) {
			t.Errorf("server %d printed the demo set-up without its bound MLLP address %s:\n%s", i, r.mllp, r.stdout.String())
		}
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(),
		`SELECT count(*) FROM sender_credentials WHERE transport = 'mllp' AND active`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Errorf("%d active demo MLLP credentials, want 2 (127.0.0.0/8 and ::1)", n)
	}
}

// httpTestServer serves h with the HTTP settings of c behind a limiter of max connections.
func httpTestServer(t *testing.T, c *config, max int, h http.Handler) (addr string, l *connLimiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err = newConnLimiter(ln, max, prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(c, h, l, zap.NewNop())
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return ln.Addr().String(), l
}

func httpConfig(idle, read time.Duration) *config {
	c := &config{}
	c.HTTP.ReadHeaderTimeout = read
	c.HTTP.ReadTimeout = read
	c.HTTP.WriteTimeout = 10 * time.Second
	c.HTTP.IdleTimeout = idle
	return c
}

var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
})

// keepAlive opens a connection, makes one request on it and leaves it open (idle).
func keepAlive(t *testing.T, addr string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	get(t, c, br, "/healthz")
	return c, br
}

// get makes a GET request on c and returns the status code (0 when the connection failed).
func get(t *testing.T, c net.Conn, br *bufio.Reader, path string) int {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: test\r\n\r\n", path); err != nil {
		return 0
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// closedWithin reports how long the server took to close c (reading and discarding), or fails.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open after %v", d)
	}
	return time.Since(start)
}

// oneClosedWithin waits until one of conns is closed by the server and returns its index (-1 when
// none is within d).
func oneClosedWithin(conns []net.Conn, d time.Duration) int {
	closed := make(chan int, len(conns))
	deadline := time.Now().Add(d)
	for i, c := range conns {
		go func() {
			_ = c.SetReadDeadline(deadline)
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				closed <- i
			}
		}()
	}
	select {
	case i := <-closed:
		return i
	case <-time.After(time.Until(deadline) + 100*time.Millisecond):
		return -1
	}
}

// Idle keep-alive connections are closed after http.idle_timeout.
func TestHTTPIdleKeepAlivesClosed(t *testing.T) {
	const idle = 300 * time.Millisecond
	addr, _ := httpTestServer(t, httpConfig(idle, 5*time.Second), 100, okHandler)
	conns := make([]net.Conn, 50)
	for i := range conns {
		conns[i], _ = keepAlive(t, addr)
	}
	for i, c := range conns {
		if d := closedWithin(t, c, 5*time.Second); d > 10*idle {
			t.Errorf("keep-alive %d closed after %v, idle timeout %v", i, d, idle)
		}
	}
}

// A body sent at 1 byte a second is cut off at http.read_timeout.
func TestHTTPSlowBodyCutOff(t *testing.T) {
	const read = 500 * time.Millisecond
	bodyErr := make(chan error, 1)
	addr, _ := httpTestServer(t, httpConfig(time.Minute, read), 10, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := io.ReadAll(r.Body)
		bodyErr <- err
		w.WriteHeader(http.StatusBadRequest)
	}))
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "POST /soap HTTP/1.1\r\nHost: test\r\nContent-Length: 1000\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	go func() {
		for range 1000 {
			if _, err := c.Write([]byte("x")); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // 10 bytes/s: 100 s for the body
		}
	}()
	select {
	case err := <-bodyErr:
		if err == nil {
			t.Fatal("the slow body was read completely")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the slow body was still being read after 10 s")
	}
	closedWithin(t, c, 5*time.Second)
	if d := time.Since(start); d > 4*read+time.Second {
		t.Errorf("slow body cut off after %v, read timeout %v", d, read)
	}
}

// When http.max_connections are open and idle, a new client is still served: the oldest idle
// connection makes room.
func TestHTTPFullListenerEvictsIdle(t *testing.T) {
	const max = 5
	addr, l := httpTestServer(t, httpConfig(time.Minute, 5*time.Second), max, okHandler)
	var idle []net.Conn
	for range max {
		c, _ := keepAlive(t, addr)
		idle = append(idle, c)
	}
	c, br := keepAlive(t, addr) // would wait forever behind 5 idle keep-alives without eviction
	if code := get(t, c, br, "/readyz"); code != http.StatusOK {
		t.Errorf("new client: status %d", code)
	}
	// One idle keep-alive made room: the oldest, by when the server saw it go idle (which, on a
	// busy machine, need not be the order the test opened them in).
	if oneClosedWithin(idle, 10*time.Second) < 0 {
		t.Fatal("no idle keep-alive was closed to make room")
	}
	if got := counterOf(t, l.evicted); got != 1 {
		t.Errorf("evicted %v, want 1", got)
	}
}

func counterOf(t *testing.T, c prometheus.Collector) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var v float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return v
}

// With the HTTP listener saturated (every slot held by a slow body, more clients queued), MLLP
// still works; /readyz is answered as soon as a slot frees, and at once when the slots are
// held by idle keep-alives.
func TestHTTPSaturatedMLLPStillWorks(t *testing.T) {
	url := storetest.NewURL(t)
	srv := startServe(t, serveConfig(t, url, map[string]string{
		"VAXGATE_HTTP_MAX_CONNECTIONS": "8",
		"VAXGATE_HTTP_READ_TIMEOUT":    "1s",
	}))
	if srv == nil {
		t.FailNow()
	}
	for range 8 { // SOAP requests whose bodies trickle in: busy connections, not evictable
		c, err := net.DialTimeout("tcp", srv.http, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST /soap HTTP/1.1\r\nHost: test\r\nContent-Type: application/soap+xml\r\nContent-Length: 100000\r\n\r\n<")
	}
	for range 30 { // queued behind them
		c, err := net.DialTimeout("tcp", srv.http, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	saturated := time.Now()
	ctx := context.Background()
	gen := vxugen.New(vxugen.Options{Seed: 5, Facility: "X68", ProcessingID: "P", ControlIDs: "SATURATED", Now: time.Now()})
	mc, err := mllp.Dial(ctx, srv.mllp, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := mc.Send(ctx, gen.Next())
	mc.Close()
	if err != nil {
		t.Fatalf("MLLP while HTTP is saturated: %v", err)
	}
	if code, _ := msaOf(t, a); code != "AA" && code != "AE" {
		t.Errorf("MLLP while HTTP is saturated: %s", code)
	}
	t.Logf("MLLP answered %v after the HTTP listener was saturated", time.Since(saturated))
	start := time.Now()
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Get("http://" + srv.http + "/readyz")
	if err != nil {
		t.Fatalf("/readyz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %d", resp.StatusCode)
	}
	t.Logf("/readyz answered after %v with the listener saturated by slow bodies", time.Since(start))
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("/readyz took %v: the read timeout (1s) should have freed a slot", d)
	}
}

// stuckStarter never answers until the server gives up on it.
type stuckStarter struct{ started chan struct{} }

func (s stuckStarter) Start(context.Context, ingest.Envelope) ingest.Pending {
	close(s.started)
	return stuckPending{}
}

type stuckPending struct{}

func (stuckPending) Wait(ctx context.Context) ([]byte, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

type okShutdown struct{}

func (okShutdown) Shutdown(context.Context) error { return nil }

// recordingWriter records how much time its Close was given.
type recordingWriter struct {
	left time.Duration
	err  error
}

func (w *recordingWriter) Close(ctx context.Context) error {
	w.err = ctx.Err()
	if d, ok := ctx.Deadline(); ok {
		w.left = time.Until(d)
	}
	return nil
}

// A connection stuck in the pipeline uses up the listeners' shutdown budget, not the writer's:
// the writer still gets its whole budget to flush.
func TestStopServingWriterBudget(t *testing.T) {
	st := stuckStarter{started: make(chan struct{})}
	srv, err := mllp.NewServer(mllp.Options{Starter: st, Senders: allSenders{}, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	gen := vxugen.New(vxugen.Options{Seed: 1, Facility: "X68", ControlIDs: "STUCK", Now: time.Now()})
	if _, err := c.Write(hl7.AppendFrame(nil, gen.Next())); err != nil {
		t.Fatal(err)
	}
	<-st.started

	cfg := &config{}
	cfg.Shutdown.Timeout = 300 * time.Millisecond
	cfg.Shutdown.WriterTimeout = 2 * time.Second
	w := &recordingWriter{}
	start := time.Now()
	stopServing(zap.NewNop(), cfg, srv, okShutdown{}, w)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopping took %v", d)
	}
	if w.err != nil || w.left < 1500*time.Millisecond {
		t.Errorf("the writer's flush got %v (ctx err %v), want nearly its 2 s budget", w.left, w.err)
	}
}

// allSenders identifies every connection as the demo site.
type allSenders struct{}

func (allSenders) SOAPCredential(context.Context, string) (*ingest.SOAPCredential, error) {
	return nil, ingest.ErrUnknownSender
}

func (allSenders) MLLPSender(context.Context, netip.Addr, string) (*ingest.Sender, error) {
	return &ingest.Sender{SiteCode: "DEMO-SITE", Status: ingest.SiteProduction, Facilities: []string{"X68"}}, nil
}

func TestFitConnectionCaps(t *testing.T) {
	tests := []struct {
		limit            uint64
		mllp, http       int
		wantMLLP, wantHT int
	}{
		{0, 1024, 512, 1024, 512},       // unknown limit
		{1 << 20, 1024, 512, 1024, 512}, // fits
		{2048, 1024, 512, 1024, 512},    // fits with the reserve
		{1024, 1024, 512, 597, 299},     // shrunk in proportion: 896 left
		{100, 1024, 512, 21, 16},        // floor of 16 each
	}
	for _, tt := range tests {
		m, h := fitConnectionCaps(tt.limit, tt.mllp, tt.http)
		if m != tt.wantMLLP || h != tt.wantHT {
			t.Errorf("fit(%d, %d, %d) = %d, %d; want %d, %d", tt.limit, tt.mllp, tt.http, m, h, tt.wantMLLP, tt.wantHT)
		}
		if tt.limit > fileReserve+32 && uint64(m+h+fileReserve) > tt.limit {
			t.Errorf("fit(%d, ...) = %d + %d + %d reserved exceeds the limit", tt.limit, m, h, fileReserve)
		}
	}
}

// The demo set-up run many times at once on an empty database (as racing `serve --demo` do)
// succeeds every time and creates each demo credential once.
func TestDemoSetUpConcurrent(t *testing.T) {
	url := storetest.NewURL(t)
	c := serveConfig(t, url, nil)
	ctx := context.Background()
	db, closeDB, err := database(ctx, c, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer closeDB()
	svc, err := newAdminService(c, db, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	c.DataDir = t.TempDir() // no demo SOAP password kept yet: every set-up wants to keep one
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	outs := make([]bytes.Buffer, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- setUpDemo(ctx, svc, &outs[i], c, zap.NewNop())
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("setUpDemo: %v", err)
		}
	}
	// They agree on the kept SOAP password, so the one each printed is the one that works.
	passwords := map[string]bool{}
	for i := range outs {
		if m := demoSOAPRE.FindStringSubmatch(outs[i].String()); m != nil {
			passwords[m[2]] = true
		}
	}
	if len(passwords) != 1 {
		t.Errorf("%d concurrent demo set-ups printed %d different SOAP passwords, want 1", n, len(passwords))
	}
	var mllpCreds, soapCreds int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE transport = 'mllp'), count(*) FILTER (WHERE transport = 'soap')
		FROM sender_credentials WHERE active`).Scan(&mllpCreds, &soapCreds); err != nil {
		t.Fatal(err)
	}
	if mllpCreds != 2 || soapCreds != 1 {
		t.Errorf("%d MLLP and %d SOAP demo credentials, want 2 and 1", mllpCreds, soapCreds)
	}
	// The index refuses a duplicate however it is inserted.
	_, err = db.Pool.Exec(ctx, `INSERT INTO sender_credentials (site_id, transport, source_cidr)
		SELECT site_id, 'mllp', source_cidr FROM sender_credentials WHERE transport = 'mllp' LIMIT 1`)
	if err == nil {
		t.Error("a second identical active MLLP credential was stored")
	}
}

// With every MLLP slot taken, HTTP (and /readyz) is untouched: the listeners have separate caps.
func TestMLLPSaturatedReadyzUp(t *testing.T) {
	url := storetest.NewURL(t)
	srv := startServe(t, serveConfig(t, url, map[string]string{
		"VAXGATE_MLLP_MAX_CONNECTIONS":      "16",
		"VAXGATE_MLLP_RESERVED_CONNECTIONS": "-1",
		"VAXGATE_MLLP_HANDSHAKE_TIMEOUT":    "1m",
	}))
	if srv == nil {
		t.FailNow()
	}
	for range 40 {
		c, err := net.DialTimeout("tcp", srv.mllp, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + srv.http + "/readyz")
	if err != nil {
		t.Fatalf("/readyz with MLLP saturated: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz with MLLP saturated: %d", resp.StatusCode)
	}
}
