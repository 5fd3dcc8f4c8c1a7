package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// TestValidateExitStatus: offline validation exits 0 when every message would be AA and 1
// otherwise, and prints each finding and the ACK.
func TestValidateExitStatus(t *testing.T) {
	dir := t.TempDir()
	gen := vxugen.New(vxugen.Options{Seed: 3, ControlIDs: "VALIDATE", Now: time.Now()})
	good := filepath.Join(dir, "good.hl7")
	if err := os.WriteFile(good, append(gen.Next(), gen.Next()...), 0o600); err != nil {
		t.Fatal(err)
	}
	// The same message without the patient's birth date: the patient cannot be identified, AR.
	bad := filepath.Join(dir, "bad.hl7")
	msg := string(gen.Next())
	pid := strings.Split(msg, "\r")[1]
	fields := strings.Split(pid, "|")
	fields[7] = ""
	if err := os.WriteFile(bad, []byte(strings.Replace(msg, pid, strings.Join(fields, "|"), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append([]string{"validate"}, args...))
		err := root.Execute()
		return out.String(), err
	}
	out, err := run(good)
	if err != nil {
		t.Fatalf("valid messages: %v\n%s", err, out)
	}
	if strings.Count(out, "MSA|AA|VALIDATE-") != 2 {
		t.Errorf("want two AA ACKs:\n%s", out)
	}
	out, err = run(good, bad)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("a rejected message must exit 1, got %v\n%s", err, out)
	}
	if !strings.Contains(out, "MSA|AR|") || !strings.Contains(out, "PID-7") {
		t.Errorf("the rejection and its finding are not printed:\n%s", out)
	}
	if _, err := run(filepath.Join(dir, "missing.hl7")); err == nil || errors.As(err, &ee) {
		t.Errorf("a missing file must be a plain one-line error, got %v", err)
	}
}
