package main

import (
	"bytes"
	"context"
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

// runCmd executes one vaxgate command in-process and returns its output and error.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCmd(t, args...)
	if err != nil {
		t.Fatalf("vaxgate %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestCertificationRun is a certification run end to end: a testing site is registered with
// `vaxgate admin`, `vaxgate serve` runs against a real PostgreSQL, the site sends the default
// checklist's messages with `vaxgate send` over MLLP (the adult dose deliberately without lot and
// manufacturer), and `vaxgate report certification` says which case failed, with the message and
// its findings; after the fixed message is sent, every case passes. The quality and reconcile
// reports and the API route are checked against the same run.
func TestCertificationRun(t *testing.T) {
	url := storetest.NewURL(t)
	t.Setenv("VAXGATE_DATABASE_URL", url)
	t.Setenv("VAXGATE_MLLP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_HTTP_ADDR", "127.0.0.1:0")
	t.Setenv("VAXGATE_LOG_LEVEL", "warn")

	mustRun(t, "admin", "org", "create", "--code", "CERTORG", "--name", "Certification Health")
	mustRun(t, "admin", "site", "create", "--org", "CERTORG", "--code", "CERT-SITE", "--name", "Certification Clinic",
		"--status", "testing", "--facility", "CERT01")
	mustRun(t, "admin", "sender", "add-mllp", "--site", "CERT-SITE", "--cidr", "127.0.0.0/8")

	srv := runServe(t, "serve")
	mllpAddr, httpAddr := srv.mllp, srv.http

	// Nothing sent yet: every case is not yet attempted.
	out := mustRun(t, "report", "certification", "--site", "CERT-SITE")
	if !strings.Contains(out, "0 passed, 0 failed, 9 not yet attempted") {
		t.Errorf("before sending:\n%s", out)
	}

	// The site sends the checklist: one ACK is AE, so send exits non-zero.
	out, err := runCmd(t, "send", "--addr", mllpAddr, filepath.Join("..", "..", "report", "testdata", "certification", "checklist.hl7"))
	if err == nil || strings.Count(out, "MSA|") != 9 || !strings.Contains(out, "MSA|AE|CERT-02-ADULT") {
		t.Fatalf("send: %v\n%s", err, out)
	}
	out = mustRun(t, "report", "certification", "--site", "CERT-SITE")
	for _, want := range []string{
		"9 test messages read (0 matched no case, 0 unreadable)",
		"Cases: 8 passed, 1 failed, 0 not yet attempted, of 9",
		"FAILED adult-administered (New administered dose, adult): message CERT-02-ADULT got AE, expected AA",
		"W rxa-15-missing",
		"W rxa-17-missing",
		"NOT READY for production",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("certification report lacks %q:\n%s", want, out)
		}
	}
	if regexp.MustCompile(`(?m)^(child-administered|historical|refusal|evidence-of-immunity|update|deletion|several-vaccines|next-of-kin)\s+FAILED`).MatchString(out) {
		t.Errorf("a case other than the adult dose failed:\n%s", out)
	}
	t.Logf("certification after the checklist:\n%s", out)

	// The report API is mounted beside the admin API, behind its authentication.
	resp, err := http.Get("http://" + httpAddr + "/api/v1/sites/1/certification")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"unauthenticated"`) {
		t.Errorf("GET certification without a session: %d %s", resp.StatusCode, body)
	}

	// The site fixes the adult message and sends it again: every case passes; readiness waits
	// for the registry's sign-offs.
	out, err = runCmd(t, "send", "--addr", mllpAddr, filepath.Join("..", "..", "report", "testdata", "certification", "adult_fixed.hl7"))
	if err != nil {
		t.Fatalf("send the fix: %v\n%s", err, out)
	}
	out = mustRun(t, "report", "certification", "--site", "CERT-SITE", "--json")
	if !strings.Contains(out, `"passed": 9`) || !strings.Contains(out, `"ready": false`) {
		t.Errorf("after the fix:\n%s", out)
	}
	for _, item := range []string{"test-cases-reviewed", "data-quality-reviewed", "production-connection", "contacts-on-file"} {
		mustRun(t, "report", "sign-off", "--site", "CERT-SITE", "--item", item, "--by", "Rita Rhodes")
	}
	out = mustRun(t, "report", "certification", "--site", "CERT-SITE")
	if !strings.Contains(out, "READY for production") || strings.Contains(out, "NOT READY") || !strings.Contains(out, "signed off by Rita Rhodes") {
		t.Errorf("after the sign-offs:\n%s", out)
	}
	out = mustRun(t, "admin", "audit", "list")
	if strings.Count(out, "certification.sign_off") != 4 {
		t.Errorf("audit log:\n%s", out)
	}

	// Data quality and reconciliation of the test environment today.
	// From yesterday (UTC), so that a run across midnight still covers every message.
	today := time.Now().UTC().Format(time.DateOnly)
	yesterday := time.Now().UTC().AddDate(0, 0, -1).Format(time.DateOnly)
	out = mustRun(t, "report", "quality", "--site", "CERT-SITE", "--from", yesterday, "--to", today, "--csv")
	for _, want := range []string{"volume,messages,10,10,1.0000", "volume,AE,1,10,0.1000", "completeness (administered doses),lot number,6,7,0.8571", "rule W,rxa-15-missing,1,10,0.1000"} {
		if !strings.Contains(out, want) {
			t.Errorf("quality CSV lacks %q:\n%s", want, out)
		}
	}
	out = mustRun(t, "report", "quality", "--site", "CERT-SITE", "--from", yesterday, "--to", today)
	for _, want := range []string{"environment T", "Messages: 10 (AA 9, AE 1, AR 0", "lot number", "6 of 7 administered doses", "85.7%", "Timeliness", "By week:"} {
		if !strings.Contains(out, want) {
			t.Errorf("quality report lacks %q:\n%s", want, out)
		}
	}
	t.Logf("quality of the test environment:\n%s", out)
	ids := filepath.Join(t.TempDir(), "sent.txt")
	if err := os.WriteFile(ids, []byte("MSH-10\nCERT-01-CHILD\nCERT-02-ADULT\nCERT-99-LOST\n| junk |\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out = mustRun(t, "report", "reconcile", "--site", "CERT-SITE", "--from", yesterday, "--to", today, "--env", "T", ids)
	for _, want := range []string{"Received: 10 distinct control IDs: 10 accepted", "Missing: CERT-99-LOST", "line 5: contains an HL7 delimiter", "NOT RECONCILED: 1 missing, 8 unexpected"} {
		if !strings.Contains(out, want) {
			t.Errorf("reconcile lacks %q:\n%s", want, out)
		}
	}
}

// TestReportCommandErrors: bad use gets one line and a non-zero exit, a bad plan its line.
func TestReportCommandErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(bad, []byte("name: mine\ncases:\n  - id: a\n    title: A\n    expect_ack: AA\n    when:\n      - field: RXB-9\n        equals: \"00\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "plan", "--plan", bad}, "test plan line 7: field \"RXB-9\": a VXU has no segment RXB"},
		{[]string{"report", "plan", "--plan", filepath.Join(t.TempDir(), "missing.yaml")}, "no such file"},
		{[]string{"report", "reconcile", "--site", "S", "--from", "2025-01-01", "--to", "2025-01-31"}, "give a FILE of control IDs"},
		{[]string{"report", "reconcile", "--site", "S", "--count", "3", "x.txt"}, "not both"},
		{[]string{"report", "sign-off", "--site", "S", "--item", "x"}, "--by is required"},
	} {
		out, err := runCmd(t, tc.args...)
		if err == nil || !strings.Contains(err.Error()+out, tc.want) {
			t.Errorf("vaxgate %s: %v %s\nwant an error saying %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
	out := mustRun(t, "report", "plan")
	if !strings.Contains(out, "id: several-vaccines") {
		t.Errorf("report plan prints:\n%s", out)
	}
}
