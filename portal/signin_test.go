package portal_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/admin"
)

var alertRE = regexp.MustCompile(`<p class="alert" role="alert">([^<]*)</p>`)

// TestSignInAnswers: the sign-in page says no more than the API. A wrong password, an unknown
// username, an invited user who has not registered, and the right password of an account locked
// for this address get the same status and the same words; guessing is throttled per address
// and username (429 with Retry-After, and the wait in words).
func TestSignInAnswers(t *testing.T) {
	w := newWorld(t)
	_, err := w.svc.Invite(context.Background(), w.sys, admin.InviteInput{NewUserInput: admin.NewUserInput{Username: "nnew", FirstName: "Nia",
		LastName: "New", Email: "nnew@clinic.test"}, SiteID: w.acme.ID, Role: admin.RoleReadOnly, SkipEmail: true})
	w.must(err)
	c := newClient(t, w)
	c.http.CheckRedirect = noRedirect
	attempt := func(username, pw string) (int, http.Header, string) {
		t.Helper()
		_, page := c.get("/signin")
		resp, body := c.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "username": {username}, "password": {pw}})
		m := alertRE.FindStringSubmatch(body)
		if m == nil {
			if resp.StatusCode == http.StatusSeeOther {
				return resp.StatusCode, resp.Header, ""
			}
			t.Fatalf("sign in %s: %d without a message", username, resp.StatusCode)
		}
		return resp.StatusCode, resp.Header, m[1]
	}
	wrongCode, _, wrong := attempt("tnguyen", "Wrong-Password-1")
	if wrongCode != http.StatusUnauthorized || !strings.Contains(wrong, "Wrong username or password") {
		t.Fatalf("wrong password: %d %q", wrongCode, wrong)
	}
	for _, c := range []struct{ what, username, pw string }{
		{"an unknown username", "nobody-here", "Wrong-Password-1"},
		{"an invited user who has not registered", "nnew", password},
	} {
		w.skew.Add(int64(time.Minute))
		code, _, msg := attempt(c.username, c.pw)
		if code != wrongCode || msg != wrong {
			t.Errorf("%s: %d %q, want the wrong password's %d %q", c.what, code, msg, wrongCode, wrong)
		}
	}
	// Three more wrong passwords for tnguyen (4 in a row): the next attempt at once is throttled.
	for i := 2; i <= 4; i++ {
		w.skew.Add(int64(time.Minute))
		attempt("tnguyen", fmt.Sprintf("Wrong-Password-%d", i))
	}
	code, h, msg := attempt("tnguyen", "Wrong-Password-now")
	if code != http.StatusTooManyRequests || h.Get("Retry-After") != "1" || msg != "Too many failed sign-ins. Wait 1 second, then try again." {
		t.Errorf("an attempt made too soon: %d Retry-After %q %q", code, h.Get("Retry-After"), msg)
	}
	// Throttled whatever the password: the right one does not get through either.
	if code, _, _ := attempt("tnguyen", password); code != http.StatusTooManyRequests {
		t.Errorf("the right password during the wait: %d, want 429", code)
	}
	w.skew.Add(int64(time.Minute))
	attempt("tnguyen", "Wrong-Password-5")
	// Five failures from this address: the right password is answered like a wrong one.
	w.skew.Add(int64(time.Minute))
	if code, _, msg := attempt("tnguyen", password); code != wrongCode || msg != wrong {
		t.Errorf("the right password of a locked account: %d %q, want the wrong password's %d %q", code, msg, wrongCode, wrong)
	}
	// Another user from the same address is not locked out.
	if code, h, _ := attempt("aalvarez", password); code != http.StatusSeeOther || strings.HasPrefix(h.Get("Location"), "/signin") {
		t.Errorf("another user's sign-in: %d %s", code, h.Get("Location"))
	}
}

// TestNeedsAA: when the 90-day expiry leaves a live site without an active Access Administrator,
// the admin module flags it "needs AA"; the registry and site pages show its flag and since when.
func TestNeedsAA(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c := newClient(t, w)
	c.signIn("rstaff")
	betaRow := func(body string) string {
		row := body[strings.Index(body, ">BETA-01<"):]
		return row[:strings.Index(row, "</tr>")]
	}
	_, body := c.get("/registry")
	if strings.Contains(betaRow(body), `<span class="badge bad">Needs AA</span>`) {
		t.Fatal("BETA-01 is flagged before its AA expired")
	}
	flagged := strings.Count(body, `<span class="badge bad">Needs AA</span>`) // ACME-02 is in testing without an AA
	_, err := w.db.Pool.Exec(ctx, `UPDATE users SET last_active_at = now() - interval '100 days' WHERE username = 'bbrown'`)
	w.must(err)
	n, err := w.svc.ExpireInactive(ctx)
	w.must(err)
	if n != 1 {
		t.Fatalf("%d accounts expired, want 1", n)
	}
	beta, err := w.svc.Site(ctx, w.sys, w.beta.ID)
	w.must(err)
	if !beta.NeedsAA || beta.NeedsAASince == nil {
		t.Fatalf("BETA-01 after its only AA expired: needs AA %v since %v", beta.NeedsAA, beta.NeedsAASince)
	}
	since := beta.NeedsAASince.UTC().Format("2006-01-02 15:04 UTC")
	_, body = c.get("/registry")
	row := betaRow(body)
	if !strings.Contains(row, `<span class="badge bad">Needs AA</span>`) || !strings.Contains(row, since) {
		t.Errorf("registry row of BETA-01 lacks its Needs AA flag since %s: %s", since, row)
	}
	if strings.Count(body, `<span class="badge bad">Needs AA</span>`) != flagged+1 {
		t.Error("another site is flagged too")
	}
	_, body = c.get(fmt.Sprintf("/sites/%d", w.beta.ID))
	if !strings.Contains(body, "Needs AA</span> since "+since) {
		t.Errorf("the site page of BETA-01 lacks its Needs AA flag since %s", since)
	}
	_, body = c.get(fmt.Sprintf("/sites/%d", w.acme.ID))
	if strings.Contains(body, "Needs AA</span>") {
		t.Error("ACME-01, which has an active AA, is flagged")
	}
}
