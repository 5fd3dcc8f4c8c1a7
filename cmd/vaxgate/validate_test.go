package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store/storetest"
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
		!strings.Contains(out, "    BTS|2|AA 2, AE 0, AR 0\n    FTS|1\n") || !strings.Contains(out, "    FHS|^~\\&|") || !strings.Contains(out, "|B-9\n") {
		t.Errorf("batch answer not printed:\n%s", out)
	}
}

// TestValidateBatchEnvelopeAsServer: for a batch whose BTS-1 declares more messages than it holds,
// `vaxgate validate` prints the envelope the server answers the same bytes with in one MLLP frame:
// the same BTS (count, and in BTS-2 what was wrong with the received counts) and FTS.
func TestValidateBatchEnvelopeAsServer(t *testing.T) {
	gen := vxugen.New(vxugen.Options{Seed: 5, Facility: "X68", ControlIDs: "ENV", Now: time.Now()})
	batches := map[string][]byte{
		"declared 4, holds 2": []byte("FHS|^~\\&|EHR|X68\rBHS|^~\\&|EHR|X68|||||||B-4\r" +
			string(gen.Next()) + string(gen.Next()) + "BTS|4\rFTS|1\r"),
	}
	corpus := filepath.Join("..", "..", "..", "shared", "corpus", "batch", "smm_v24_batch_FHS_BHS_after.hl7")
	if data, err := os.ReadFile(corpus); err == nil {
		batches["corpus "+filepath.Base(corpus)] = data // declares BTS|4, holds one message
	} else {
		t.Logf("%s absent (%v): its case is skipped", corpus, err)
	}

	t.Setenv("VAXGATE_DATABASE_URL", storetest.NewURL(t))
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")
	srv := runServe(t, "serve", "--demo")

	// trailer returns the BTS and FTS segments of an envelope, one per line.
	trailer := func(segs []string) string {
		var out []string
		for _, s := range segs {
			if strings.HasPrefix(s, "BTS|") || strings.HasPrefix(s, "FTS|") {
				out = append(out, s)
			}
		}
		return strings.Join(out, "\n")
	}
	for name, data := range batches {
		t.Run(name, func(t *testing.T) {
			out, _ := validateData(t, data) // exit status 1 when a message is not AA; the envelope is what is compared
			_, answer, found := strings.Cut(out, "the batch answer")
			if !found {
				t.Fatalf("validate printed no batch answer:\n%s", out)
			}
			var printed []string
			for _, l := range strings.Split(answer, "\n")[1:] {
				printed = append(printed, strings.TrimSpace(l))
			}
			got := trailer(printed)

			ctx := context.Background()
			c, err := mllp.Dial(ctx, srv.mllp, nil)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := c.Send(ctx, data)
			c.Close()
			if err != nil {
				t.Fatal(err)
			}
			want := trailer(strings.Split(strings.TrimRight(string(raw), "\r"), "\r"))
			if !strings.Contains(want, "; BTS-1 declared 4 messages,") {
				t.Fatalf("the server's BTS does not say BTS-1 was wrong (the case no longer tests it):\n%s", want)
			}
			if got != want {
				t.Errorf("validate printed the trailer\n%s\nthe server answered\n%s", got, want)
			}
		})
	}
}

// TestValidateGarbageIsPrintable: a file that is not HL7 at all (binary bytes, XML) is answered
// AR, and what validate prints — the finding's location, its text, the ACK — carries none of the
// file's control bytes to the terminal.
func TestValidateGarbageIsPrintable(t *testing.T) {
	for name, data := range map[string][]byte{
		"binary": []byte("\x00\x01\xff\x1b[2Jhello\r"),
		"xml":    []byte("<soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"/>\n"),
	} {
		t.Run(name, func(t *testing.T) {
			text, err := validateData(t, data)
			if err == nil {
				t.Fatalf("validate accepted %s", name)
			}
			if !strings.Contains(text, ": AR") || !strings.Contains(text, "(no segment) HL7 100") {
				t.Errorf("want AR, its finding at no segment:\n%s", text)
			}
			for i, r := range text {
				if (r < 0x20 && r != '\n') || r == 0x7f || r == utf8.RuneError {
					t.Fatalf("validate printed byte %q at %d:\n%q", r, i, text)
				}
			}
		})
	}
}

// validateData runs `vaxgate validate` on data written to a file and returns what it printed on
// standard output, and its error (exit status 1 when a message is not AA).
func validateData(t *testing.T, data []byte) (string, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "in.hl7")
	if err := os.WriteFile(file, data, 0o600); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs([]string{"validate", file})
	err := root.Execute()
	return out.String(), err
}
