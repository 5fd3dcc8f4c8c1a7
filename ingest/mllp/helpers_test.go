package mllp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// patientName appears in every test message and must never appear in a log.
const patientName = "TESTPATIENT^JANE"

// vxu is a small synthetic VXU with control ID id.
func vxu(id string) []byte {
	return []byte("MSH|^~\\&|EHR|CLINIC-A|VAXGATE|IIS|20240102030405||VXU^V04^VXU_V04|" + id + "|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS\r" +
		"PID|1||MRN-" + id + "^^^CLINIC-A^MR||" + patientName + "||20200101|F\r" +
		"RXA|0|1|20240102||08^HepB^CVX|0.5|mL\r")
}

func frame(msg []byte) []byte { return hl7.AppendFrame(nil, msg) }

// testACK is the answer the in-test pipeline gives: MSA-2 echoes the control ID, MSA-1 is AR for
// an oversize message or one whose MSH-10 starts with "REJECT", AA otherwise.
func testACK(env ingest.Envelope) []byte {
	id := ack.RecoverHeader(env.Payload).ControlID
	code := "AA"
	if env.TooLarge > 0 || strings.HasPrefix(id, "REJECT") {
		code = "AR"
	}
	return []byte("MSH|^~\\&|VAXGATE|IIS|EHR|CLINIC-A|20240102030405||ACK^V04^ACK|ACK-" + id + "|P|2.5.1\rMSA|" + code + "|" + id + "\r")
}

// testStarter is a trivial pipeline: it records the envelopes it is given and answers each with
// testACK, through respond when set (which may delay or reorder the answers).
type testStarter struct {
	mu      sync.Mutex
	envs    []ingest.Envelope
	started chan ingest.Envelope // when not nil, receives every envelope (buffered by the test)
	respond func(n int, env ingest.Envelope) ingest.Pending
}

func (s *testStarter) Start(_ context.Context, env ingest.Envelope) ingest.Pending {
	s.mu.Lock()
	n := len(s.envs)
	s.envs = append(s.envs, env)
	s.mu.Unlock()
	if s.started != nil {
		s.started <- env
	}
	if s.respond != nil {
		return s.respond(n, env)
	}
	return ready(testACK(env))
}

func (s *testStarter) envelopes() []ingest.Envelope {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ingest.Envelope(nil), s.envs...)
}

// gatedPending answers once its gate is closed.
type gatedPending struct {
	gate <-chan struct{}
	ack  []byte
	err  error
}

func (p gatedPending) Wait(ctx context.Context) ([]byte, error) {
	select {
	case <-p.gate:
		return p.ack, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// testSenders knows one site by address or certificate subject, and records the lookups.
type testSenders struct {
	mu      sync.Mutex
	addrs   []netip.Addr
	subject []string
	known   func(addr netip.Addr, subject string) bool // nil: everyone is known
	err     error                                      // returned instead, when set
}

var testSite = &ingest.Sender{CredentialID: 7, SiteID: 3, SiteCode: "SITE-A", Status: ingest.SiteProduction, Facilities: []string{"CLINIC-A"}}

func (s *testSenders) SOAPCredential(context.Context, string) (*ingest.SOAPCredential, error) {
	return nil, ingest.ErrUnknownSender
}

func (s *testSenders) MLLPSender(_ context.Context, addr netip.Addr, subject string) (*ingest.Sender, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addrs = append(s.addrs, addr)
	s.subject = append(s.subject, subject)
	if s.err != nil {
		return nil, s.err
	}
	if s.known != nil && !s.known(addr, subject) {
		return nil, ingest.ErrUnknownSender
	}
	return testSite, nil
}

func (s *testSenders) lookups() ([]netip.Addr, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]netip.Addr(nil), s.addrs...), append([]string(nil), s.subject...)
}

// testServer is a server on a loopback port with its log captured.
type testServer struct {
	*Server
	addr string
	logs *observer.ObservedLogs
}

func startServer(t testing.TB, o Options) *testServer {
	t.Helper()
	if o.Starter == nil {
		o.Starter = &testStarter{}
	}
	if o.Senders == nil {
		o.Senders = &testSenders{}
	}
	core, logs := observer.New(zapcore.DebugLevel)
	o.Logger = zap.New(core)
	o.Registerer = prometheus.NewRegistry()
	s, err := NewServer(o)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
		for _, e := range logs.All() {
			line := e.Message + fmt.Sprint(e.ContextMap())
			if strings.Contains(line, "TESTPATIENT") {
				t.Errorf("patient data in the log: %s", line)
			}
		}
	})
	return &testServer{Server: s, addr: l.Addr().String(), logs: logs}
}

func dialRaw(t testing.TB, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// readACKs reads n frames from c within 10 seconds.
func readACKs(t testing.TB, c net.Conn, fr *hl7.FrameReader, n int) [][]byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var out [][]byte
	for range n {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("reading ACK %d of %d: %v", len(out)+1, n, err)
		}
		out = append(out, append([]byte(nil), f...))
	}
	return out
}

// expectClosed checks that the server closes c (EOF or reset) within d, reading and discarding.
func expectClosed(t testing.TB, c net.Conn, d time.Duration) time.Duration {
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

// msa returns MSA-1 and MSA-2 of an ACK.
func msa(t testing.TB, a []byte) (code, id string) {
	t.Helper()
	m, err := hl7.Parse(a)
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, a)
	}
	return m.Get("MSA-1"), m.Get("MSA-2")
}

func counterValue(t testing.TB, c prometheus.Collector) float64 {
	t.Helper()
	// A registry of its own gathers the collector without importing its protobuf types.
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var total float64
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			total += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return total
}

// eventually polls cond for up to 5 seconds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testPKI is a throwaway CA with a server certificate for 127.0.0.1 and client certificates.
type testPKI struct {
	pool   *x509.CertPool
	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	server tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "vaxgate test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p := &testPKI{pool: x509.NewCertPool(), caCert: ca, caKey: key}
	p.pool.AddCert(ca)
	p.server = p.issue(t, pkix.Name{CommonName: "localhost"}, x509.ExtKeyUsageServerAuth)
	return p
}

var serial = big.NewInt(100)
var serialMu sync.Mutex

func (p *testPKI) issue(t testing.TB, subject pkix.Name, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serialMu.Lock()
	serial.Add(serial, big.NewInt(1))
	sn := new(big.Int).Set(serial)
	serialMu.Unlock()
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// countingReader counts what it reads, to check what a frame reader holds.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// receivingFrame reports whether a connection of the server has read the start of a frame and
// not yet its end.
func (s *testServer) receivingFrame() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.cr.mu.Lock()
		in := c.cr.inFrame
		c.cr.mu.Unlock()
		if in {
			return true
		}
	}
	return false
}
