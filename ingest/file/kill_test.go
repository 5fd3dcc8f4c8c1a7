package file_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/file"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// The kill test re-executes this test binary as the engine: with childEnv set to a drop-folder
// root, TestMain runs runChild instead of the tests.
const (
	childEnv   = "VAXGATE_FILE_TEST_CHILD_ROOT"
	childDBEnv = "VAXGATE_FILE_TEST_CHILD_DB"
)

// runChild is the engine of the kill test: the drop-folder service over a real writer and
// pipeline, until the ACK file of big.hl7 is published (exit 0), or a minute and a half passes
// (exit 3). The parent kills it with SIGKILL midway through the first time.
func runChild() int {
	root := os.Getenv(childEnv)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	db, err := store.Open(ctx, os.Getenv(childDBEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	defer db.Close()
	e, err := openEngine(ctx, db, store.WriterOptions{Registerer: prometheus.NewRegistry()})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	log, _ := zap.NewDevelopment()
	s, err := file.NewService(file.ServiceOptions{Root: root, Starter: e.pipeline, Senders: db,
		Settle: time.Hour, Poll: 50 * time.Millisecond, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 2
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	ackPath := filepath.Join(root, "SITE-A", "outbox", "big.hl7.ack")
	for ctx.Err() == nil && !exists(ackPath) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	_ = e.writer.Close(context.Background())
	if !exists(ackPath) {
		return 3
	}
	return 0
}

// TestKill9MidFile: an engine processing a large batch file is killed with SIGKILL midway, then
// started again. The file is finished, every message is stored exactly once (those committed after
// the last checkpoint come again as resends and are answered with their original ACK), and the ACK
// file is complete: one ACK per message, in order, with the batch trailer.
func TestKill9MidFile(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test: not in -short")
	}
	const n = 12000
	url := storetest.NewURL(t)
	ctx := context.Background()
	db, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := addSite(ctx, db, "SITE-A", "FAC-A", "production", nil); err != nil {
		t.Fatal(err)
	}
	msgs := traffic(n, "KILL")
	in := []byte("FHS|^~\\&|EHR|FAC-A|vaxgate|IIS|20240101||big.hl7||F-1\r\nBHS|^~\\&|EHR|FAC-A|vaxgate|IIS|20240101||||B-1\r\n")
	in = append(in, join(msgs, "\r\n")...)
	in = append(in, fmt.Sprintf("BTS|%d\r\nFTS|1\r\n", n)...)
	root := t.TempDir()
	write(t, filepath.Join(root, "SITE-A", "inbox", "big.hl7"), in)
	write(t, filepath.Join(root, "SITE-A", "inbox", "big.hl7.done"), nil)

	child := func() (*exec.Cmd, *bytes.Buffer) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), childEnv+"="+root, childDBEnv+"="+url)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd, &out
	}

	// First run: killed once a fair part of the file is answered and checkpointed.
	cmd, out := child()
	statePath := filepath.Join(root, "SITE-A", "work", "big.hl7.state")
	var st file.State
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if data, err := os.ReadFile(statePath); err == nil && json.Unmarshal(data, &st) == nil && st.Messages >= 2000 {
			break
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("the child did not checkpoint 2000 messages in 2 minutes:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if st.Done || st.Messages >= n {
		t.Fatalf("the child finished before it was killed (%d messages)", st.Messages)
	}
	if exists(filepath.Join(root, "SITE-A", "outbox", "big.hl7.ack")) {
		t.Fatal("an ACK file was published for a file that was not finished")
	}
	t.Logf("killed after at least %d of %d messages were checkpointed", st.Messages, n)

	// Second run: finishes the file.
	cmd, out = child()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("second run: %v\n%s", err, out)
		}
	case <-time.After(3 * time.Minute):
		_ = cmd.Process.Kill()
		<-waited
		t.Fatalf("second run did not finish in 3 minutes:\n%s", out)
	}

	// The ACK file is complete: header, one ACK per message in input order, trailer.
	data, err := os.ReadFile(filepath.Join(root, "SITE-A", "outbox", "big.hl7.ack"))
	if err != nil {
		t.Fatal(err)
	}
	segs := lines(data, "\r\n")
	if !strings.HasPrefix(segs[0], "FHS|") || !strings.HasPrefix(segs[1], "BHS|") ||
		!strings.HasPrefix(segs[len(segs)-2], fmt.Sprintf("BTS|%d|", n)) || segs[len(segs)-1] != "FTS|1" {
		t.Errorf("envelope: %q %q ... %q %q", segs[0], segs[1], segs[len(segs)-2], segs[len(segs)-1])
	}
	acks := hl7.SplitMessages(data)
	if len(acks) != n {
		t.Fatalf("%d ACKs, want %d", len(acks), n)
	}
	accepted := 0
	for i, a := range acks {
		o := file.ReadOutcome(a)
		m, _ := hl7.Parse(msgs[i])
		if want := m.Get("MSH-10"); o.ControlID != want {
			t.Fatalf("ACK %d answers %q, want %q", i, o.ControlID, want)
		}
		if o.Code == "AA" || o.Code == "AE" {
			accepted++
		}
	}
	if accepted < n*9/10 {
		t.Errorf("only %d of %d messages accepted", accepted, n)
	}

	// Stored exactly once: one accepted archive row per control ID, one patient report per
	// accepted message; the copies processed again after the kill are archived as resends only.
	var keys, distinct, reports, copies int
	if err := db.Pool.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE resend_key),
		       count(DISTINCT control_id) FILTER (WHERE resend_key),
		       (SELECT count(*) FROM patients, unnest(report_messages)),
		       count(*) FILTER (WHERE NOT resend_key AND ack_code <> 'AR')
		FROM messages WHERE transport = 'file'`).Scan(&keys, &distinct, &reports, &copies); err != nil {
		t.Fatal(err)
	}
	if keys != accepted || distinct != accepted {
		t.Errorf("%d accepted archive rows (%d control IDs) for %d accepted messages", keys, distinct, accepted)
	}
	if reports != accepted {
		t.Errorf("%d patient reports stored for %d accepted messages", reports, accepted)
	}
	t.Logf("%d messages answered again after the restart were resends", copies)
	if !exists(filepath.Join(root, "SITE-A", "archive", "big.hl7")) || exists(statePath) {
		t.Error("the input was not archived, or its checkpoint was left behind")
	}
}
