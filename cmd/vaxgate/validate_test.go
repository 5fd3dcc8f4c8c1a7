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

// TestValidateAnswersAsServer (issue 13.11): an empty MSH-4 is AR offline as on the server, an
// empty file gets the server's AR, a batch file gets the batch envelope too, and what cannot be
// checked offline is said on standard error.
func TestValidateAnswersAsServer(t *testing.T) {
	dir := t.TempDir()
	gen := vxugen.New(vxugen.Options{Seed: 4, ControlIDs: "OFF", Now: time.Now()})
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	run := func(args ...string) (stdout, stderr string, err error) {
		root := newRootCmd()
		var out, errOut bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&errOut)
		root.SetArgs(append([]string{"validate"}, args...))
		err = root.Execute()
		return out.String(), errOut.String(), err
	}
	msg := string(gen.Next())
	msh := strings.Split(msg, "\r")[0]
	f := strings.Split(msh, "|")
	f[3] = ""
	noFacility := write("no-facility.hl7", []byte(strings.Replace(msg, msh, strings.Join(f, "|"), 1)))
	out, stderr, err := run(noFacility)
	var ee exitError
	if !errors.As(err, &ee) || !strings.Contains(out, "MSA|AR|") || !strings.Contains(out, "ERR||MSH^1^4^1^1|101^") {
		t.Errorf("empty MSH-4: %v\n%s", err, out)
	}
	for _, what := range []string{"not checked", "sender authorization", "resends", "unknown keys", "onboarding status"} {
		if !strings.Contains(stderr, what) {
			t.Errorf("standard error does not say %q:\n%s", what, stderr)
		}
	}
	if strings.Contains(out, "not checked") {
		t.Error("the offline caveats belong on standard error, not in the output")
	}

	out, _, err = run(write("empty.hl7", []byte(" \r\n")))
	if !errors.As(err, &ee) || !strings.Contains(out, "MSA|AR") || !strings.Contains(out, "|100^Segment sequence error^HL70357|E|") {
		t.Errorf("empty file: %v\n%s", err, out)
	}

	batch := "FHS|^~\\&|EHR|X68\rBHS|^~\\&|EHR|X68|||||||B-9\r" + string(gen.Next()) + string(gen.Next()) + "BTS|2\rFTS|1\r"
	out, _, err = run(write("batch.hl7", []byte(batch)))
	if err != nil {
		t.Errorf("batch of good messages: %v\n%s", err, out)
	}
	if strings.Count(out, "MSA|AA|OFF-") != 4 || !strings.Contains(out, "the batch answer (2 ACKs") ||
		!strings.Contains(out, "    BTS|2\n    FTS|1\n") || !strings.Contains(out, "    FHS|^~\\&|") || !strings.Contains(out, "|B-9\n") {
		t.Errorf("batch answer not printed:\n%s", out)
	}
}
