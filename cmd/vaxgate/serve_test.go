package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(execMainEnv) == "1" {
		// The README test runs this binary as the vaxgate command.
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	// The commands under test default to ./data (the private database, the demo's mail drop):
	// keep what they write out of the source tree.
	dir, err := os.MkdirTemp("", "vaxgate-cmd-test-")
	if err != nil {
		panic(err)
	}
	if os.Getenv("VAXGATE_DATA_DIR") == "" {
		os.Setenv("VAXGATE_DATA_DIR", dir)
	}
	code := storetest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer is written by serve's goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeDemo runs `vaxgate serve --demo` in-process against a real PostgreSQL, sends messages
// over MLLP, checks the HTTP endpoints, and stops it the way Ctrl-C does.
func TestServeDemo(t *testing.T) {
	url := storetest.NewURL(t)
	t.Setenv("VAXGATE_DATABASE_URL", url)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")

	srv := runServe(t, "serve", "--demo")
	mllpAddr, httpAddr, stdout := srv.mllp, srv.http, srv.stdout
	ctx := context.Background()
	if !strings.Contains(stdout.String(), "demo-ehr") {
		t.Errorf("the demo set-up did not print the SOAP credentials:\n%s", stdout.String())
	}

	// A message of the demo site's facility over MLLP is accepted and its ACK echoes MSH-10.
	gen := vxugen.New(vxugen.Options{Seed: 7, Facility: "X68", ControlIDs: "SERVE-TEST", Now: time.Now()})
	msg := gen.Next()
	in, _ := hl7.Parse(msg)
	c, err := mllp.Dial(ctx, mllpAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	ack, err := c.Send(ctx, msg)
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	a, err := hl7.Parse(ack)
	if err != nil {
		t.Fatal(err)
	}
	if a.Get("MSA-2") != in.Get("MSH-10") || (a.Get("MSA-1") != "AA" && a.Get("MSA-1") != "AE") {
		t.Fatalf("ACK %q", ack)
	}

	// `vaxgate send` against the running engine: exit status 0 for AA/AE? It is 1 unless every ACK is AA.
	file := filepath.Join(t.TempDir(), "msgs.hl7")
	if err := os.WriteFile(file, append(gen.Next(), gen.Next()...), 0o600); err != nil {
		t.Fatal(err)
	}
	send := newRootCmd()
	var sendOut bytes.Buffer
	send.SetOut(&sendOut)
	send.SetErr(&sendOut)
	send.SetArgs([]string{"send", "--addr", mllpAddr, file})
	err = send.Execute()
	if got := strings.Count(sendOut.String(), "MSA|"); got != 2 {
		t.Errorf("send printed %d ACKs, want 2:\n%s", got, sendOut.String())
	}
	if err != nil && !strings.Contains(sendOut.String(), "AE") {
		t.Errorf("send failed without an AE: %v\n%s", err, sendOut.String())
	}

	for path, want := range map[string]string{
		"/healthz":   `"ok"`,
		"/readyz":    `"ready"`,
		"/metrics":   `vaxgate_messages_total{code=`,
		"/soap?wsdl": `urn:cdc:iisb:2011`,
		"/":          `<h1>Sign in</h1>`, // the portal, via its redirect
	} {
		resp, err := http.Get("http://" + httpAddr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("GET %s: %d, want 200 containing %q", path, resp.StatusCode, want)
		}
	}

	// Per-site counts and the production site's last message, which the alert rules watch.
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metricsText, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`site="DEMO-SITE",transport="mllp"}`, `vaxgate_site_last_message_timestamp_seconds{env="P",site="DEMO-SITE"}`} {
		if !strings.Contains(string(metricsText), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	if err := srv.stop(); err != nil {
		t.Errorf("serve returned %v", err)
	}
}
