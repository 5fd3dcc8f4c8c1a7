package portal_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestReportPages: a testing site's certification run as the certification page shows it (the
// failed case with its control ID and findings), registry staff's sign-off (audited) and its
// refusal to anyone else, the CSV downloads, the quality report with its chart and its period
// form, and reconciliation by count, pasted IDs and an uploaded file with junk lines. Every page
// passes the crawler's checks (labels, ids, links, HTML).
func TestReportPages(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	site := w.acme2 // testing
	w.certificationRun(site, time.Now().Add(-48*time.Hour))
	w.traffic(w.acme, "P", 21)
	checked := func(t *testing.T, path, body string) {
		t.Helper()
		_, problems := checkPage(body)
		for _, p := range problems {
			t.Errorf("%s: %s", path, p)
		}
	}

	staff := newClient(t, w)
	staff.signIn("rstaff")
	cert := fmt.Sprintf("/sites/%d/certification", site.ID)
	resp, body := staff.get(cert)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("certification: %d", resp.StatusCode)
	}
	checked(t, cert, body)
	adult := section(body, `id="case-adult-administered"`, "</tr>")
	for _, want := range []string{"Failed", "CERT-02-ADULT", "rxa-15-missing", "RXA-15 (lot number) is empty", `ack-AE">AE`} {
		if !strings.Contains(adult, want) {
			t.Errorf("the failed case's row lacks %q:\n%s", want, adult)
		}
	}
	if child := section(body, `id="case-child-administered"`, "</tr>"); !strings.Contains(child, "Passed") {
		t.Errorf("the child case's row: %s", child)
	}
	for _, want := range []string{"Not ready for production", "1 case failed", `action="/sites/` + fmt.Sprint(site.ID) + `/certification/sign-off"`, "Download CSV"} {
		if !strings.Contains(body, want) {
			t.Errorf("certification page lacks %q", want)
		}
	}
	resp, csv := staff.get(cert + "?format=csv")
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") || !strings.Contains(csv, "case,adult-administered,failed,1,CERT-02-ADULT,AE") {
		t.Errorf("certification CSV (%s):\n%s", ct, csv)
	}

	// Sign-off: a note too long is refused with the reason; then signed off, shown and audited;
	// then revoked.
	resp, body = staff.formPost(cert, cert+"/sign-off", url.Values{"item": {"test-cases-reviewed"}, "note": {strings.Repeat("x", 501)}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Note must be up to 500 printable characters") {
		t.Errorf("long note: %d %s", resp.StatusCode, firstLines(body))
	}
	resp, body = staff.formPost(cert, cert+"/sign-off", url.Values{"item": {"test-cases-reviewed"}, "note": {"Reviewed with Dr. Lee"}})
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != cert {
		t.Fatalf("sign off: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	item := section(body, `id="item-test-cases-reviewed"`, "</tr>")
	if !strings.Contains(item, "Signed off") || !strings.Contains(item, "by rstaff") || !strings.Contains(item, "Reviewed with Dr. Lee") {
		t.Errorf("signed item: %s", item)
	}
	var audited int
	w.must(w.db.Pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'certification.sign_off' AND target_id = $1`, fmt.Sprint(site.ID)).Scan(&audited))
	if audited != 1 {
		t.Errorf("%d audit entries of the sign-off, want 1", audited)
	}
	_, body = staff.formPost(cert, cert+"/sign-off", url.Values{"item": {"test-cases-reviewed"}, "revoke": {"1"}})
	if item := section(body, `id="item-test-cases-reviewed"`, "</tr>"); !strings.Contains(item, "Open") {
		t.Errorf("revoked item: %s", item)
	}

	// The site's own users see the page, without the sign-off forms, and may not sign off.
	aa := newClient(t, w)
	aa.signIn("aalvarez") // Administrator of ACME-01, in the health system of ACME-02
	own := fmt.Sprintf("/sites/%d/certification", w.acme.ID)
	resp, body = aa.get(own)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "sign-off\"") || strings.Contains(body, "<form method=\"post\" action=\"/sites") {
		t.Errorf("AA's certification page: %d, sign-off form shown: %v", resp.StatusCode, strings.Contains(body, "/certification/sign-off"))
	}
	if resp, _ := aa.formPost(own, own+"/sign-off", url.Values{"item": {"test-cases-reviewed"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("AA signs off: %d, want 403", resp.StatusCode)
	}
	bb := newClient(t, w)
	bb.signIn("bbrown")
	for _, p := range []string{own, fmt.Sprintf("/sites/%d/quality", w.acme.ID), fmt.Sprintf("/sites/%d/reconcile", w.acme.ID)} {
		if resp, _ := bb.get(p); resp.StatusCode != http.StatusForbidden {
			t.Errorf("another organization's %s: %d, want 403", p, resp.StatusCode)
		}
	}
	// The tabs: the site and intake pages link the report pages.
	for _, p := range []string{fmt.Sprintf("/sites/%d", w.acme.ID), fmt.Sprintf("/sites/%d/intake", w.acme.ID)} {
		_, body := aa.get(p)
		for _, l := range []string{"/certification\"", "/quality\"", "/reconcile\""} {
			if !strings.Contains(body, fmt.Sprintf(`href="/sites/%d%s`, w.acme.ID, l)) {
				t.Errorf("%s does not link %s", p, l)
			}
		}
	}

	// Quality: the default period (the last 30 days) and environment (production for a site in
	// production), the chart, the rates, the CSV; a bad period is answered on the form.
	q := fmt.Sprintf("/sites/%d/quality", w.acme.ID)
	resp, body = aa.get(q)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("quality: %d %s", resp.StatusCode, firstLines(body))
	}
	checked(t, q, body)
	today := time.Now().UTC().Format(time.DateOnly)
	for _, want := range []string{`value="` + today + `"`, `<option value="P" selected>`, `<svg viewBox=`, `class="bar-AA"`, `class="bar-AE"`,
		"rxa-15-missing", "rxa-5-cvx-999", "lot number", "funding eligibility", "VIS date", "race", "ethnicity", "address",
		"Within 1 day", "More than 30 days", "format=csv"} {
		if !strings.Contains(body, want) {
			t.Errorf("quality page lacks %q", want)
		}
	}
	resp, csv = aa.get(q + "?format=csv&env=P")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") || !strings.Contains(csv, "completeness (administered doses),lot number") {
		t.Errorf("quality CSV:\n%s", csv)
	}
	resp, body = aa.get(q + "?from=2026-02-10&to=2026-02-01&env=X")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The last day must not be before the first day") || !strings.Contains(body, "Choose Production or Test") {
		t.Errorf("bad period: %d %s", resp.StatusCode, firstLines(body))
	}
	checked(t, q+" (bad period)", body)

	// Reconcile: a count; pasted IDs with a junk line; a file upload.
	rec := fmt.Sprintf("/sites/%d/reconcile", w.acme.ID)
	from := time.Now().UTC().AddDate(0, 0, -30).Format(time.DateOnly)
	_, page := aa.get(rec)
	checked(t, rec, page)
	resp, body = aa.formPost(rec, rec, url.Values{"from": {from}, "to": {today}, "env": {"P"}, "count": {"100000"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "a count of <strong>100000</strong>") || !strings.Contains(body, "missing") {
		t.Errorf("reconcile count: %d %s", resp.StatusCode, section(body, `id="result"`, "</section>"))
	}
	checked(t, rec+" (count)", body)
	code := w.acme.Code
	pasted := code + "-00001\n" + code + "-00002\nNOT-SENT-1\nhas a space\n"
	resp, body = aa.formPost(rec, rec, url.Values{"from": {from}, "to": {today}, "env": {"P"}, "ids": {pasted}})
	res := section(body, `id="result"`, "</section>")
	for _, want := range []string{"<strong>3</strong> control IDs listed", "NOT-SENT-1", "Junk lines", `data-label="Line">4<`, "unexpected"} {
		if !strings.Contains(res, want) {
			t.Errorf("reconcile pasted IDs lacks %q: %d\n%s", want, resp.StatusCode, res)
		}
	}
	checked(t, rec+" (pasted)", body)
	resp, body = aa.upload(rec, rec, url.Values{"from": {from}, "to": {today}, "env": {"P"}}, "ids.txt", "MSH-10\n"+code+"-00003\n\x01bad\n")
	res = section(body, `id="result"`, "</section>")
	if resp.StatusCode != http.StatusOK || !strings.Contains(res, "<strong>1</strong> control IDs listed") || !strings.Contains(res, `data-label="Line">3<`) {
		t.Errorf("reconcile file: %d\n%s", resp.StatusCode, res)
	}
	resp, body = aa.formPost(rec, rec, url.Values{"from": {from}, "to": {today}, "env": {"P"}, "count": {"5"}, "ids": {"A-1"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Give one of them only") {
		t.Errorf("count and IDs: %d", resp.StatusCode)
	}
	resp, body = aa.formPost(rec, rec, url.Values{"from": {from}, "to": {today}, "env": {"P"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "Enter the number of messages sent") {
		t.Errorf("no claim: %d", resp.StatusCode)
	}
	checked(t, rec+" (no claim)", body)
}

// section is the part of s from the first start to the next end after it.
func section(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, end); j >= 0 {
		return s[:j]
	}
	return s
}

// upload posts a multipart form with a file, signed with the CSRF token of the page at pagePath.
func (c *client) upload(pagePath, action string, form url.Values, name, content string) (*http.Response, string) {
	c.t.Helper()
	_, page := c.get(pagePath)
	form.Set("csrf", csrfOf(c.t, page))
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for k, vs := range form {
		for _, v := range vs {
			_ = mw.WriteField(k, v)
		}
	}
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		c.t.Fatal(err)
	}
	_, _ = io.WriteString(fw, content)
	_ = mw.Close()
	req, _ := http.NewRequest("POST", c.w.srv.URL+action, &b)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(out)
}
