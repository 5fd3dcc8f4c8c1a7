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

	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestAdminBesideServe runs `vaxgate serve` on a private PostgreSQL (no database_url, a fresh data
// dir, as after `make run`) and uses `vaxgate admin`, `vaxgate migrate` and `vaxgate report` on the
// same data dir while it runs: they attach to the running server instead of failing on the data
// dir's lock.
func TestAdminBesideServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL")
	}
	dataDir := filepath.Join(privateDataParent(t), "data")
	t.Setenv("VAXGATE_DATABASE_URL", "")
	t.Setenv("VAXGATE_DATA_DIR", dataDir)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")

	runServe(t, "serve")

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
	run("admin", "site", "create", "--org", "BESIDE", "--code", "BESIDE-1", "--name", "Beside Clinic", "--facility", "BESIDE1")
	if out := run("report", "certification", "--site", "BESIDE-1"); !strings.Contains(out, "BESIDE-1") {
		t.Errorf("report certification beside the server:\n%s", out)
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
	first := runServe(t, "serve")
	out, httpAddr := first.stdout.String(), first.http
	m := regexp.MustCompile(`username (\S+)  password (\S+)`).FindStringSubmatch(out)
	if m == nil || m[1] != "registrar" || !strings.Contains(out, "http://"+httpAddr+"/") {
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
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	if out := runServe(t, "serve").stdout.String(); strings.Contains(out, "password") {
		t.Errorf("second start printed a password again:\n%s", out)
	}
}

// privateDataParent makes a directory, removed after the test, to hold the data dir of a private
// PostgreSQL: it runs as an unprivileged user when we are root, so the data dir's parents must let
// it in.
func privateDataParent(t *testing.T) string {
	t.Helper()
	parent, err := os.MkdirTemp("", "vaxgate-data-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	return parent
}
