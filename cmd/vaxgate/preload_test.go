package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

func addTestSite(t *testing.T, url, code, facility, status string, goLive *time.Time) {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var org, site int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ($1, 'Org') RETURNING id`, "ORG-"+code).Scan(&org); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status, go_live_date) VALUES ($1, $2, 'Site', $3, $4) RETURNING id`,
		org, code, status, goLive).Scan(&site); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ($1, $2)`, facility, site); err != nil {
		t.Fatal(err)
	}
}

func vxuFile(t *testing.T, dir, name, facility string, n int, bad int) string {
	t.Helper()
	g := vxugen.New(vxugen.Options{Seed: 3, Facility: facility, ControlIDs: name, Patients: 500})
	var b bytes.Buffer
	for i := range n {
		m := g.Next()
		if i < bad {
			m = bytes.Replace(m, []byte("|"+facility+"|"), []byte("|ELSEWHERE|"), 1)
		}
		b.Write(m)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runCLI(args ...string) (stdout, stderr string, err error) {
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	err = root.Execute()
	return out.String(), errb.String(), err
}

// TestPreloadCommand: `vaxgate preload` against a real PostgreSQL: the summary, the rejects file,
// the exit statuses, plain progress lines when not on a terminal, and the go-live guard.
func TestPreloadCommand(t *testing.T) {
	url := storetest.NewURL(t)
	t.Setenv("VAXGATE_DATABASE_URL", url)
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")
	future := time.Now().AddDate(0, 1, 0)
	past := time.Now().AddDate(0, -1, 0)
	addTestSite(t, url, "NEW-SITE", "FAC-N", "production", &future)
	addTestSite(t, url, "LIVE-SITE", "FAC-L", "production", &past)
	dir := t.TempDir()

	f := vxuFile(t, dir, "history.hl7", "FAC-N", 60, 2)
	out, errOut, err := runCLI("preload", "--site", "NEW-SITE", f)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("preload with rejects: %v, want exit status 1\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{
		"preload NEW-SITE: 60 messages",
		"rejected                         2  (nothing stored)",
		"MSH-4 204 Unknown key identifier",
		"rejected messages: " + f + ".rejects.hl7 (reasons in " + f + ".rejects.txt)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	if !regexp.MustCompile(`preload history.hl7: done, 60 messages, 2 rejected`).MatchString(errOut) {
		t.Errorf("no plain progress line on a non-terminal:\n%s", errOut)
	}
	rej, _ := os.ReadFile(f + ".rejects.hl7")
	if n := len(hl7.SplitMessages(rej)); n != 2 {
		t.Errorf("%d messages in the rejects file, want 2", n)
	}
	// Again: nothing to do.
	_, errOut, _ = runCLI("preload", "--site", "NEW-SITE", f)
	if !strings.Contains(errOut, "was preloaded already") {
		t.Errorf("second run: %s", errOut)
	}

	clean := vxuFile(t, dir, "clean.hl7", "FAC-L", 20, 0)
	if _, _, err := runCLI("preload", "--site", "LIVE-SITE", clean); err == nil || !strings.Contains(err.Error(), "--confirm") {
		t.Errorf("live site without --confirm: %v", err)
	}
	out, errOut, err = runCLI("preload", "--site", "LIVE-SITE", "--confirm", clean)
	if err != nil {
		t.Fatalf("live site with --confirm: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(out, "accepted") || strings.Contains(out, "rejected messages:") || fileExists(clean+".rejects.hl7") {
		t.Errorf("clean preload:\n%s", out)
	}
	// Confirmed on a live site, the backload still marks data sharing Unknown: no patient of either
	// preload (nor one they share) is Yes.
	db, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	var notUnknown, patients int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE sharing <> 'U'), count(*) FROM registry_patients`).Scan(&notUnknown, &patients); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if notUnknown != 0 || patients == 0 {
		t.Errorf("%d of %d registry patients of backloads are not data sharing Unknown", notUnknown, patients)
	}
	if _, _, err := runCLI("preload", "--site", "NO-SUCH", clean); err == nil || !strings.Contains(err.Error(), "not registered") {
		t.Errorf("unknown site: %v", err)
	}
	// At the default log level, the terminal gets the progress and the summary, not JSON log
	// lines (the log writes to the process's stderr: run as a process).
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	more := vxuFile(t, dir, "more.hl7", "FAC-N", 5, 0)
	cmd := exec.Command(self, "preload", "--site", "NEW-SITE", more)
	cmd.Env = append(os.Environ(), execMainEnv+"=1", "VAXGATE_LOG_LEVEL=info", "VAXGATE_LOG_FORMAT=json")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil || !strings.Contains(stderr.String(), "more.hl7: done, 5 messages") || strings.Contains(stderr.String(), `"level"`) {
		t.Errorf("preload at the default log level: %v; stderr:\n%s", err, stderr.String())
	}
	if _, _, err := runCLI("preload", "--site", "NEW-SITE", filepath.Join(dir, "missing.hl7")); err == nil {
		t.Error("missing file: no error")
	}
	if _, _, err := runCLI("preload", clean); err == nil || !strings.Contains(err.Error(), "--site") {
		t.Errorf("no --site: %v", err)
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// TestServeFileDrop: `vaxgate serve` with file.root watches the drop folders: a file dropped for
// the demo site is answered with an ACK file in its outbox and archived.
func TestServeFileDrop(t *testing.T) {
	url := storetest.NewURL(t)
	root := t.TempDir()
	t.Setenv("VAXGATE_DATABASE_URL", url)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")
	t.Setenv("VAXGATE_FILE_ROOT", root)
	t.Setenv("VAXGATE_FILE_POLL", "50ms")
	inbox := filepath.Join(root, demoSite, "inbox")
	if err := os.MkdirAll(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	vxuFile(t, inbox, "drop.hl7", "X68", 5, 0)
	if err := os.WriteFile(filepath.Join(inbox, "drop.hl7.done"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root2 := newRootCmd()
	root2.SetArgs([]string{"serve", "--demo"})
	root2.SetOut(&stdout)
	root2.SetErr(&stderr)
	done := make(chan error, 1)
	go func() { done <- root2.ExecuteContext(ctx) }()
	ackPath := filepath.Join(root, demoSite, "outbox", "drop.hl7.ack")
	for deadline := time.Now().Add(90 * time.Second); !fileExists(ackPath); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no ACK file within 90 s:\n%s", stderr.String())
		}
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, stderr.String())
		default:
		}
	}
	data, _ := os.ReadFile(ackPath)
	if n := len(hl7.SplitMessages(data)); n != 5 {
		t.Errorf("%d ACKs, want 5", n)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	if !fileExists(filepath.Join(root, demoSite, "archive", "drop.hl7")) {
		t.Error("input not archived")
	}
}

// TestFileConfig: the drop folders' keys from a YAML file (a list of sites with their own folders)
// and the environment, with their defaults.
func TestFileConfig(t *testing.T) {
	yaml := `file:
  root: /srv/drop
  settle: 30s
  sites:
    - code: ACME-02
      dir: /mnt/land/acme02
    - code: ACME-03
      inbox: /mnt/in/acme03
      work: /srv/work/acme03
      outbox: /mnt/out/acme03
      archive: /srv/archive/acme03
      error: /srv/error/acme03
`
	path := filepath.Join(t.TempDir(), "vaxgate.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAXGATE_FILE_WINDOW", "4096")
	var got *config
	root := newRootCmd()
	probe := &cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
		var err error
		got, err = loadConfig(cmd)
		return err
	}}
	root.AddCommand(probe)
	root.SetArgs([]string{"probe", "--config", path})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	f := got.File
	if f.Root != "/srv/drop" || f.Settle != 30*time.Second || f.Poll != 2*time.Second || f.Window != 4096 ||
		f.MaxFileSize != 1<<30 || f.MaxMessageSize != 4<<20 || f.Workers != 2 {
		t.Errorf("file config %+v", f)
	}
	if len(f.Sites) != 2 || f.Sites[0].Code != "ACME-02" || f.Sites[0].Dir != "/mnt/land/acme02" ||
		f.Sites[1].Code != "ACME-03" || f.Sites[1].Outbox != "/mnt/out/acme03" || f.Sites[1].Error != "/srv/error/acme03" {
		t.Errorf("sites %+v", f.Sites)
	}
}
