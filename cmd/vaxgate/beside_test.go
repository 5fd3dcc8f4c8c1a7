package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestAdminBesideServe runs `vaxgate serve` on a private PostgreSQL (no database_url, a fresh data
// dir, as after `make run`) and uses `vaxgate admin` and `vaxgate migrate` on the same data dir while
// it runs: they attach to the running server instead of failing on the data dir's lock.
func TestAdminBesideServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL")
	}
	// PostgreSQL runs as an unprivileged user when we are root: the data dir's parents must let it in.
	parent, err := os.MkdirTemp("", "vaxgate-beside-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(parent, "data")
	t.Setenv("VAXGATE_DATABASE_URL", "")
	t.Setenv("VAXGATE_DATA_DIR", dataDir)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")

	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	root.SetArgs([]string{"serve"})
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	re := regexp.MustCompile(`MLLP on (\S+), HTTP on (\S+)`)
	started := false
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline) && !started; time.Sleep(50 * time.Millisecond) {
		started = re.MatchString(stderr.String())
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
		default:
		}
	}
	if !started {
		t.Fatalf("serve did not start:\n%s", stderr.String())
	}

	run := func(args ...string) string {
		t.Helper()
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetArgs(args)
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("vaxgate %s: %v\n%s", strings.Join(args, " "), err, out.String())
		}
		return out.String()
	}
	run("admin", "org", "create", "--code", "BESIDE", "--name", "Beside Health")
	if out := run("admin", "org", "list"); !strings.Contains(out, "BESIDE") {
		t.Errorf("org list after create, beside the server:\n%s", out)
	}
	if out := run("migrate"); !strings.Contains(out, "schema at version") {
		t.Errorf("migrate beside the server:\n%s", out)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestFirstStartAdmin: the first start of an empty registry creates the first registry
// administrator and prints its one-time password, which signs in and must be changed; the next
// start prints nothing.
func TestFirstStartAdmin(t *testing.T) {
	url := storetest.NewURL(t)
	t.Setenv("VAXGATE_DATABASE_URL", url)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")
	start := func() (stdout string, httpAddr string, stop func()) {
		var out, errb syncBuffer
		ctx, cancel := context.WithCancel(context.Background())
		root := newRootCmd()
		root.SetArgs([]string{"serve"})
		root.SetOut(&out)
		root.SetErr(&errb)
		done := make(chan error, 1)
		go func() { done <- root.ExecuteContext(ctx) }()
		re := regexp.MustCompile(`HTTP on (\S+)`)
		for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if m := re.FindStringSubmatch(errb.String()); m != nil {
				httpAddr = m[1]
				break
			}
		}
		if httpAddr == "" {
			cancel()
			t.Fatalf("serve did not start:\n%s", errb.String())
		}
		return out.String(), httpAddr, func() {
			cancel()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Error("serve did not stop")
			}
		}
	}
	out, httpAddr, stop := start()
	m := regexp.MustCompile(`username (\S+)  password (\S+)`).FindStringSubmatch(out)
	if m == nil || m[1] != "registrar" || !strings.Contains(out, "http://"+httpAddr+"/") {
		stop()
		t.Fatalf("first start printed no one-time sign-in for the first administrator:\n%s", out)
	}
	body := fmt.Sprintf(`{"username": %q, "password": %q}`, m[1], m[2])
	resp, err := http.Post("http://"+httpAddr+"/api/v1/login", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"password_change_required":true`) {
		t.Errorf("login with the one-time password: %d %s", resp.StatusCode, b)
	}
	stop()
	out, _, stop = start()
	defer stop()
	if strings.Contains(out, "password") {
		t.Errorf("second start printed a password again:\n%s", out)
	}
}
