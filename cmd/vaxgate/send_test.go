package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/mllp"
)

// sendTestStarter is a trivial pipeline for the send command's tests: it answers AA, or AE with
// one error when the control ID starts with "BAD", and records the control IDs it was sent.
type sendTestStarter struct {
	b   *ack.Builder
	mu  sync.Mutex
	ids []string
}

func (s *sendTestStarter) Start(_ context.Context, env ingest.Envelope) ingest.Pending {
	h := ack.RecoverHeader(env.Payload)
	s.mu.Lock()
	s.ids = append(s.ids, h.ControlID)
	s.mu.Unlock()
	if strings.HasPrefix(h.ControlID, "BAD") {
		return sendTestPending(s.b.Build(h, ack.AE, []ack.Finding{{
			Code: ack.CodeRequiredFieldMissing, Severity: ack.Error, Text: "RXA-5 is missing",
			Location: ack.Location{Segment: "RXA", Sequence: 1, Field: 5},
		}}))
	}
	return sendTestPending(s.b.Build(h, ack.AA, nil))
}

func (s *sendTestStarter) sent() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...)
}

type sendTestPending []byte

func (p sendTestPending) Wait(context.Context) ([]byte, error) { return p, nil }

type sendTestSenders struct{}

func (sendTestSenders) SOAPCredential(context.Context, string) (*ingest.SOAPCredential, error) {
	return nil, ingest.ErrUnknownSender
}

func (sendTestSenders) MLLPSender(context.Context, netip.Addr, string) (*ingest.Sender, error) {
	return &ingest.Sender{SiteCode: "SITE-A"}, nil
}

// startSendTestServer runs an MLLP server on a loopback port.
func startSendTestServer(t *testing.T, tlsCfg *tls.Config) (string, *sendTestStarter) {
	t.Helper()
	st := &sendTestStarter{b: ack.NewBuilder([]string{"VAXGATE"}, []string{"IIS"}, ack.DefaultPolicy)}
	srv, err := mllp.NewServer(mllp.Options{Starter: st, Senders: sendTestSenders{}, TLSConfig: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return l.Addr().String(), st
}

func sendTestVXU(id, eol string) string {
	return strings.Join([]string{
		"MSH|^~\\&|EHR|CLINIC-A|VAXGATE|IIS|20240102030405||VXU^V04^VXU_V04|" + id + "|P|2.5.1|||ER|AL|||||Z22^CDCPHINVS",
		"PID|1||MRN1^^^CLINIC-A^MR||DOE^JANE||20200101|F",
		"RXA|0|1|20240102||08^HepB^CVX|0.5|mL",
	}, eol) + eol
}

// runSendCmd executes `vaxgate send` in-process, as the root command would (errors not printed
// by cobra: main prints them).
func runSendCmd(t *testing.T, stdin string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := newSendCmd()
	cmd.SetArgs(args)
	cmd.SetIn(strings.NewReader(stdin))
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SilenceErrors = true
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = cmd.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func sendWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSend(t *testing.T) {
	addr, _ := startSendTestServer(t, nil)
	lfFile := sendWriteFile(t, "two.hl7", sendTestVXU("C1", "\n")+sendTestVXU("C2", "\n"))
	crFile := sendWriteFile(t, "cr.hl7", sendTestVXU("C3", "\r"))
	batch := sendWriteFile(t, "batch.hl7", "FHS|^~\\&|EHR\r\nBHS|^~\\&|EHR\r\n"+sendTestVXU("B1", "\r\n")+sendTestVXU("B2", "\r\n")+"BTS|2\r\nFTS|1\r\n")
	bad := sendWriteFile(t, "bad.hl7", sendTestVXU("C4", "\n")+sendTestVXU("BAD5", "\n"))
	var many strings.Builder
	var manyIDs []string
	for i := range 20 {
		id := "M" + string(rune('A'+i))
		manyIDs = append(manyIDs, id)
		many.WriteString(sendTestVXU(id, "\n"))
	}
	manyFile := sendWriteFile(t, "many.hl7", many.String())

	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantIDs  []string // MSA-2 in stdout order
		wantLine []string // lines expected on stderr
		wantExit int      // 0, or the exitError code
		raw      bool
	}{
		{name: "LF-separated file", args: []string{lfFile}, wantIDs: []string{"C1", "C2"},
			wantLine: []string{"two.hl7 #1 MSH-10 C1: AA", "two.hl7 #2 MSH-10 C2: AA", "2 of 2 message(s) answered: 2 AA"}},
		{name: "several files", args: []string{crFile, lfFile}, wantIDs: []string{"C3", "C1", "C2"}},
		{name: "batch envelope", args: []string{batch}, wantIDs: []string{"B1", "B2"}},
		{name: "stdin", stdin: sendTestVXU("S1", "\r"), args: []string{"-"}, wantIDs: []string{"S1"},
			wantLine: []string{"stdin #1 MSH-10 S1: AA"}},
		{name: "an ACK that is not AA exits 1", args: []string{bad}, wantIDs: []string{"C4", "BAD5"}, wantExit: 1,
			wantLine: []string{"bad.hl7 #2 MSH-10 BAD5: AE (1 ERR)", "2 of 2 message(s) answered: 1 AA, 1 AE"}},
		{name: "raw output", args: []string{"--raw", lfFile}, wantIDs: []string{"C1", "C2"}, raw: true},
		{name: "pipelined", args: []string{"--window", "8", manyFile}, wantIDs: manyIDs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runSendCmd(t, tt.stdin, append([]string{"--addr", addr}, tt.args...)...)
			if tt.wantExit == 0 && err != nil {
				t.Fatalf("err = %v\nstderr:\n%s", err, stderr)
			}
			if tt.wantExit != 0 {
				var ee exitError
				if !errors.As(err, &ee) || ee.code != tt.wantExit {
					t.Fatalf("err = %v, want exit status %d", err, tt.wantExit)
				}
			}
			var gotIDs []string
			if tt.raw {
				if strings.Contains(stdout, "\n") {
					t.Errorf("raw output has LF: %q", stdout)
				}
				stdout = strings.ReplaceAll(stdout, "\r", "\n")
			}
			for line := range strings.Lines(stdout) {
				if id, ok := strings.CutPrefix(strings.TrimSpace(line), "MSA|"); ok {
					_, id, _ = strings.Cut(id, "|")
					gotIDs = append(gotIDs, id)
				}
			}
			if strings.Join(gotIDs, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ACKs answer %v, want %v\nstdout:\n%s", gotIDs, tt.wantIDs, stdout)
			}
			for _, l := range tt.wantLine {
				if !strings.Contains(stderr, l+"\n") {
					t.Errorf("stderr lacks %q:\n%s", l, stderr)
				}
			}
		})
	}
}

func TestSendUsage(t *testing.T) {
	addr, st := startSendTestServer(t, nil)
	good := sendWriteFile(t, "good.hl7", sendTestVXU("U1", "\n"))
	empty := sendWriteFile(t, "empty.hl7", "not HL7\n")
	framed := sendWriteFile(t, "framed.hl7", "\x0b"+sendTestVXU("U2", "\r")+"\x1c\r")
	tests := []struct {
		name string
		args []string
	}{
		{"no address", []string{good}},
		{"no file", []string{"--addr", addr}},
		{"missing file", []string{"--addr", addr, good, filepath.Join(t.TempDir(), "missing.hl7")}},
		{"file without a message", []string{"--addr", addr, good, empty}},
		{"MLLP-framed file", []string{"--addr", addr, framed}},
		{"stdin twice", []string{"--addr", addr, "-", "-"}},
		{"certificate without key", []string{"--addr", addr, "--tls", "--cert", good, good}},
		{"TLS option without --tls", []string{"--addr", addr, "--ca", good, good}},
		{"bad CA file", []string{"--addr", addr, "--tls", "--ca", good, good}},
		{"zero window", []string{"--addr", addr, "--window", "0", good}},
		{"unknown flag", []string{"--addr", addr, "--nope", good}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, err := runSendCmd(t, sendTestVXU("S", "\n"), tt.args...)
			var ee exitError
			if err == nil || errors.As(err, &ee) {
				t.Fatalf("err = %v, want a usage error", err)
			}
			if msg := err.Error(); strings.Contains(msg, "\n") || msg == "" {
				t.Errorf("error is not one line: %q", msg)
			}
			if stdout != "" || stderr != "" {
				t.Errorf("output on bad usage:\nstdout: %q\nstderr: %q", stdout, stderr)
			}
		})
	}
	if ids := st.sent(); len(ids) != 0 {
		t.Errorf("messages sent despite bad usage: %v", ids)
	}
}

func TestSendServerUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	file := sendWriteFile(t, "one.hl7", sendTestVXU("X1", "\n"))
	_, stderr, err := runSendCmd(t, "", "--addr", addr, "--timeout", "2s", file)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("err = %v, want exit status 1", err)
	}
	if !strings.Contains(stderr, "dial") {
		t.Errorf("stderr does not say what failed: %q", stderr)
	}
}

func TestSendTLS(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey := sendTestCert(t, nil, nil, pkix.Name{CommonName: "test CA"}, true)
	srvCert, srvKey := sendTestCert(t, caCert, caKey, pkix.Name{CommonName: "localhost"}, false)
	cliCert, cliKey := sendTestCert(t, caCert, caKey, pkix.Name{CommonName: "ehr", Organization: []string{"Clinic A"}}, false)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	keyDER := func(k *ecdsa.PrivateKey) []byte {
		b, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	caFile := write("ca.pem", "CERTIFICATE", caCert.Raw)
	certFile := write("client.pem", "CERTIFICATE", cliCert.Raw)
	keyFile := write("client-key.pem", "PRIVATE KEY", keyDER(cliKey))

	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	addr, st := startSendTestServer(t, &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvCert.Raw}, PrivateKey: srvKey}},
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS12,
	})
	file := sendWriteFile(t, "one.hl7", sendTestVXU("T1", "\n"))

	stdout, stderr, err := runSendCmd(t, "", "--addr", addr, "--tls", "--ca", caFile, "--cert", certFile, "--key", keyFile, file)
	if err != nil {
		t.Fatalf("err = %v\nstderr: %s", err, stderr)
	}
	if !strings.Contains(stdout, "MSA|AA|T1") {
		t.Errorf("stdout: %q", stdout)
	}
	// Without the client certificate the server refuses the connection: exit 1.
	if _, _, err := runSendCmd(t, "", "--addr", addr, "--tls", "--ca", caFile, file); !errors.As(err, new(exitError)) {
		t.Errorf("without a client certificate: err = %v, want exit status 1", err)
	}
	if ids := st.sent(); len(ids) != 1 {
		t.Errorf("server got %v, want [T1]", ids)
	}
}

func sendTestCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name pkix.Name, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sn, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      name,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if isCA {
		tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
