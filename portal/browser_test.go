package portal_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/vaxgate/vaxgate/admin"
)

// The key flows in a real headless Chromium against a real server and database. One browser
// serves the whole test binary (TestBrowser's subtests); each subtest has its own database,
// server and browser contexts (tabs with their own cookies).

// chromiumPath finds the browser: $VAXGATE_CHROMIUM, else the Debian package's binary or a
// Chrome on PATH.
func chromiumPath() string {
	if p := os.Getenv("VAXGATE_CHROMIUM"); p != "" {
		return p
	}
	for _, n := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	return ""
}

type browser struct {
	ctx context.Context
}

// startBrowser starts headless Chromium for the test and its subtests. Without Chromium the
// test fails in CI (CI=true) and is skipped elsewhere, with the command that installs it.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		const msg = `headless Chromium not found: install it with "make deps" (apt-get install chromium) or set VAXGATE_CHROMIUM`
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("lang", "en-US"))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox)
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	if err := chromedp.Do(bctx); err != nil { // starts the browser; no timeout on this first call
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	return &browser{ctx: bctx}
}

// tab is a browser tab in a browser context of its own (its own cookies: one signed-in person).
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
}

func (b *browser) tab(t *testing.T, w *world) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	focus := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, emulation.SetFocusEmulationEnabled, emulation.SetFocusEmulationEnabledParams{Enabled: true})
		return err
	})
	if err := chromedp.Do(ctx, focus); err != nil { // opens the tab; keyboard focus as in a focused window
		t.Fatal(err)
	}
	return &tab{t: t, ctx: ctx, base: w.srv.URL}
}

// submit clicks an element that loads a new page (a submit button, a link) and waits until the
// new page has loaded.
func (tb *tab) submit(sel any) {
	tb.t.Helper()
	var click chromedp.Action[chromedp.Void]
	switch s := sel.(type) {
	case chromedp.CSS:
		click = chromedp.Click(s)
	case chromedp.Search:
		click = chromedp.Click(s)
	default:
		tb.t.Fatalf("submit: selector %T", sel)
	}
	tb.do(chromedp.Steps(chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool]("window.__old = true")(ctx, t)
		return err
	}), click))
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		done, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.__old !== true && document.readyState === "complete"`))
		cancel()
		if err == nil && done {
			return
		}
		time.Sleep(30 * time.Millisecond)
	}
	tb.t.Fatalf("no new page after clicking %v (at %s)", sel, tb.location())
}

// do runs the steps with a time limit and fails the test on error.
func (tb *tab) do(steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("browser: %v (at %s)", err, tb.location())
	}
}

func (tb *tab) location() string {
	ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
	defer cancel()
	l, _ := chromedp.Run(ctx, chromedp.Location())
	return l
}

func (tb *tab) open(path string) { tb.t.Helper(); tb.do(chromedp.Navigate(tb.base + path)) }

// text is the visible text of the first element matching the CSS selector.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s: %v (at %s)", sel, err, tb.location())
	}
	return s
}

// eval runs a JavaScript expression in the page (through DevTools, not as a page script).
func evalIn[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls until the element's text contains want.
func (tb *tab) waitFor(sel, want string) string {
	tb.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(tb.ctx, 2*time.Second)
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		cancel()
		if err == nil && strings.Contains(s, want) {
			return s
		}
		last = s
		time.Sleep(50 * time.Millisecond)
	}
	tb.t.Fatalf("%s: want text containing %q, have %q (at %s)", sel, want, last, tb.location())
	return ""
}

// page waits for the page whose h1 contains title.
func (tb *tab) page(title string) { tb.t.Helper(); tb.waitFor("h1", title) }

// body is the text of the main element.
func (tb *tab) body() string { tb.t.Helper(); return tb.text("main") }

// fill sets a field's value (typing key by key costs a DevTools round trip per key: typeIn
// does that where the typing itself matters).
func (tb *tab) fill(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.SetValue(chromedp.CSS(sel), value)
}

// typeIn types into a field key by key, as a person does.
func (tb *tab) typeIn(sel, value string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Clear(chromedp.CSS(sel)), chromedp.SendKeys(chromedp.CSS(sel), value))
}

func (tb *tab) signIn(username, pw string) {
	tb.t.Helper()
	tb.open("/signin")
	tb.do(tb.fill("#username", username), tb.fill("#password", pw))
	tb.submit(chromedp.CSS("main button.primary"))
}

func (tb *tab) wantBody(want ...string) {
	tb.t.Helper()
	b := tb.body()
	for _, w := range want {
		if !strings.Contains(b, w) {
			tb.t.Errorf("page %s does not say %q:\n%s", tb.location(), w, b)
		}
	}
}

func (tb *tab) wantPath(prefix string) {
	tb.t.Helper()
	l := strings.TrimPrefix(tb.location(), tb.base)
	if !strings.HasPrefix(l, prefix) {
		tb.t.Errorf("at %s, want %s", l, prefix)
	}
}

func TestBrowser(t *testing.T) {
	b := startBrowser(t)
	start := time.Now()
	t.Cleanup(func() { t.Logf("browser flows took %v", time.Since(start).Round(time.Millisecond)) })

	t.Run("SignIn", func(t *testing.T) {
		w := newWorld(t)
		tb := b.tab(t, w)
		tb.open("/dashboard")
		tb.page("Sign in")
		tb.wantPath("/signin?next=")
		if got := evalIn[string](tb, `document.activeElement.id`); got != "username" {
			t.Errorf("the sign-in page focuses %q, want the username", got)
		}
		tb.do(tb.typeIn("#username", "aalvarez"), tb.typeIn("#password", "wrong-Password-1"))
		tb.submit(chromedp.CSS("main button.primary"))
		tb.waitFor(".alert", "Wrong username or password")
		if v := evalIn[string](tb, `document.querySelector("#username").value`); v != "aalvarez" {
			t.Errorf("username not kept after a failed sign-in: %q", v)
		}
		tb.do(tb.fill("#password", password))
		tb.submit(chromedp.CSS("main button.primary"))
		tb.page("Access Administrator dashboard")
		tb.wantPath("/dashboard")
		tb.wantBody("Acme Pediatrics Downtown", "ACME-01")
		// Keyboard: the first Tab reaches the skip link, visible when focused; Enter moves to the
		// main content; the focused element gets a visible outline.
		tb.do(chromedp.KeyEvent("\t"))
		if got := evalIn[string](tb, `document.activeElement.textContent + "|" + getComputedStyle(document.activeElement).left + "|" + getComputedStyle(document.activeElement).outlineStyle`); got != "Skip to main content|8px|solid" {
			t.Errorf("first Tab focuses %q, want the visible skip link with an outline", got)
		}
		tb.do(chromedp.KeyEvent("\r"))
		if got := evalIn[string](tb, `document.activeElement.id`); got != "main" {
			t.Errorf("the skip link moves focus to %q, want main", got)
		}
		// The cookie is HttpOnly: the page cannot read it.
		if c := evalIn[string](tb, `document.cookie`); c != "" {
			t.Errorf("document.cookie = %q, want nothing (HttpOnly)", c)
		}
		tb.submit(chromedp.CSS("form.signout button"))
		tb.waitFor(".notice", "You are signed out")
		tb.open("/dashboard")
		tb.page("Sign in")

		// Guessing is slowed down: after 4 wrong passwords the next attempt made at once is
		// throttled (429, Retry-After) and says how long to wait. Five wrong passwords lock this
		// browser's address out of the account: even the right password is then answered
		// exactly like a wrong one (the admin module's rule), with the advice to ask the AA.
		for i := 0; i < 5; i++ {
			if i == 4 {
				tb.signIn("tnguyen", "Wrong-Password-now")
				tb.waitFor(".alert", "Too many failed sign-ins. Wait 1 second, then try again.")
			}
			w.skew.Add(int64(time.Minute)) // the wait is over
			tb.signIn("tnguyen", fmt.Sprintf("Wrong-Password-%d", i))
			tb.waitFor(".alert", "Wrong username or password")
		}
		wrong := tb.text(".alert")
		w.skew.Add(int64(time.Minute))
		tb.signIn("tnguyen", password)
		tb.waitFor(".alert", "ask your Access Administrator (AA) to unlock it")
		if got := tb.text(".alert"); got != wrong {
			t.Errorf("the right password of a locked account is answered %q, a wrong one %q: they must not differ", got, wrong)
		}

		// Inactive Expired: ask your AA.
		_, err := w.db.Pool.Exec(context.Background(), `UPDATE users SET last_active_at = now() - interval '100 days' WHERE username = 'rreader'`)
		w.must(err)
		tb.signIn("rreader", password)
		tb.waitFor(".alert", "Inactive Expired")
		tb.wantBody("Ask your Access Administrator (AA) to reactivate it")
	})

	t.Run("ForcedPasswordChange", func(t *testing.T) {
		w := newWorld(t)
		aa := b.tab(t, w)
		aa.signIn("aalvarez", password)
		aa.page("Access Administrator dashboard")
		aa.open(fmt.Sprintf("/users?site=%d", w.acme.ID))
		aa.page("Manage users")
		aa.submit(chromedp.CSS(`a[aria-label="Reset the password of Tam Nguyen"]`)) // the R column
		aa.page("Tam Nguyen")
		aa.wantPath(fmt.Sprintf("/users/%d?site=%d#reset", w.users["tnguyen"].ID, w.acme.ID))
		aa.wantBody("12 to 30 characters") // the password rules are shown where a password is set
		aa.do(aa.fill("#password", "Temp-Pass-2026!"))
		aa.submit(chromedp.CSS("#reset button"))
		aa.waitFor(".notice", "The password was reset")
		aa.wantBody("must be changed at the next sign-in")

		u := b.tab(t, w)
		u.signIn("tnguyen", "Temp-Pass-2026!")
		u.page("Change your password")
		// True whether the one-time password came from a reset or from the account's creation
		// (the first registry administrator's): the page cannot tell them apart.
		u.wantBody("Your password was set by an administrator: choose your own", "not contain the username, in upper or lower case")
		u.open("/patients") // nothing else until the password is changed
		u.page("Change your password")
		u.do(u.fill("#current_password", "Temp-Pass-2026!"), u.fill("#new_password", "Brand-New-Pass-77"),
			u.fill("#confirm_password", "Brand-New-Pass-78"))
		u.submit(chromedp.CSS("main button.primary"))
		u.waitFor("#confirm_password-err", "differ")
		u.do(u.fill("#current_password", "Temp-Pass-2026!"), u.fill("#new_password", "short"), u.fill("#confirm_password", "short"),
			chromedp.RemoveAttribute(chromedp.CSS("#new_password"), "minlength"))
		u.submit(chromedp.CSS("main button.primary"))
		u.waitFor("#new_password-err", "12 to 30 characters")
		if v := evalIn[string](u, `document.querySelector("#new_password").getAttribute("aria-invalid")`); v != "true" {
			t.Errorf("new_password aria-invalid = %q", v)
		}
		// The username rule as the page states it: anywhere in the password, in any case.
		u.do(u.fill("#current_password", "Temp-Pass-2026!"), u.fill("#new_password", "My-TNguyen-Pass-7"),
			u.fill("#confirm_password", "My-TNguyen-Pass-7"))
		u.submit(chromedp.CSS("main button.primary"))
		u.waitFor("#new_password-err", "not contain the username")
		u.do(u.fill("#current_password", "Temp-Pass-2026!"), u.fill("#new_password", "Brand-New-Pass-77"),
			u.fill("#confirm_password", "Brand-New-Pass-77"))
		u.submit(chromedp.CSS("main button.primary"))
		u.page("Patients")
		u.waitFor(".notice", "Your password was changed")
		if _, err := w.svc.Login(context.Background(), "tnguyen", "Brand-New-Pass-77"); err != nil {
			t.Errorf("the new password does not sign in: %v", err)
		}
	})

	t.Run("SearchThenInvite", func(t *testing.T) {
		w := newWorld(t)
		ctx := context.Background()
		for i := 0; i < 12; i++ { // namesakes: two pages of search results
			_, err := w.svc.Invite(ctx, w.sys, admin.InviteInput{NewUserInput: admin.NewUserInput{Username: fmt.Sprintf("plee%d", i),
				FirstName: "Pat", LastName: "Lee", Email: fmt.Sprintf("plee%d@elsewhere.test", i)}, SiteID: w.beta.ID,
				Role: admin.RoleReadOnly, NotDuplicate: true, SkipEmail: true})
			w.must(err)
		}
		tb := b.tab(t, w)
		tb.signIn("aalvarez", password)
		tb.page("Access Administrator dashboard")
		tb.do(tb.fill("#first", "Pat"), tb.fill("#last", "Lee"))
		tb.submit(chromedp.CSS("form.inline-form button"))
		tb.waitFor("#results h3", "12 users found · page 1 of 2")
		if n := evalIn[int](tb, `document.querySelectorAll("#results tbody tr").length`); n != 10 {
			t.Errorf("page 1 has %d results, want 10", n)
		}
		tb.submit(chromedp.CSS(`a[rel="next"]`))
		tb.waitFor("#results h3", "page 2 of 2")
		if n := evalIn[int](tb, `document.querySelectorAll("#results tbody tr").length`); n != 2 {
			t.Errorf("page 2 has %d results, want 2", n)
		}

		tb.do(tb.fill("#first", "Zoe"), tb.fill("#last", "Quinn"))
		tb.submit(chromedp.CSS("form.inline-form button"))
		tb.waitFor("#results", "Unable to find user")
		tb.submit(chromedp.Search(`//a[normalize-space()="Invite a new user"]`))
		tb.page("Invite users")
		if v := evalIn[string](tb, `document.querySelector("#first_0").value + " " + document.querySelector("#last_0").value`); v != "Zoe Quinn" {
			t.Errorf("invite form not pre-filled from the search: %q", v)
		}
		tb.wantBody("Is this person an Access Administrator (AA)?", "Every site needs at least one active AA",
			"Is this person the Supervising Physician, Site Manager or Designee?", "Is this person a Technical Contact?",
			"Is this person a Clinical Champion?", "Is this person the Incentive Program Contact?")
		tb.do(tb.fill("#email_0", "zquinn@acme.test"), tb.fill("#username_0", "zquinn"),
			chromedp.SetValue(chromedp.CSS("#role_0"), "administrator"),
			chromedp.Click(chromedp.CSS("#access_administrator_0_yes")), chromedp.Click(chromedp.CSS("#supervising_physician_0_no")),
			chromedp.Click(chromedp.CSS("#technical_contact_0_yes")), chromedp.Click(chromedp.CSS("#clinical_champion_0_no")),
			chromedp.Click(chromedp.CSS("#incentive_program_contact_0_no")))
		tb.submit(chromedp.Search(`//button[normalize-space()="Copy Row"]`))
		tb.waitFor("main", "Person 2")
		copied := evalIn[string](tb, `[document.querySelector("#role_1").value, document.querySelector("#access_administrator_1_yes").checked,
			document.querySelector("#technical_contact_1_yes").checked, document.querySelector("#first_0").value, document.querySelector("#first_1").value].join(",")`)
		if copied != "administrator,true,true,Zoe," {
			t.Errorf("Copy Row copied %q, want role and answers (not the name)", copied)
		}
		// Send with the second person incomplete: the first is invited, the second comes back
		// with the Service's reason next to its field.
		tb.do(tb.fill("#first_1", "Yan"), tb.fill("#last_1", "Quinn"), tb.fill("#email_1", "yquinn@acme.test"), tb.fill("#username_1", "frontdesk"))
		tb.submit(chromedp.CSS(".form-actions button.primary"))
		tb.waitFor(".alert", "Some invitations could not be sent")
		tb.wantBody("Zoe Quinn (zquinn, zquinn@acme.test)")
		tb.waitFor("#username_0-err", "generic")
		tb.do(tb.fill("#username_0", "yquinn"))
		tb.submit(chromedp.CSS(".form-actions button.primary"))
		tb.page("Invitations sent")
		tb.wantBody("yquinn", "Access Administrator, Technical Contact")
		invitations := 0
		for _, m := range w.mail.messages() {
			if strings.Contains(m, "To: zquinn@acme.test") || strings.Contains(m, "To: yquinn@acme.test") {
				invitations++
			}
		}
		if invitations != 2 {
			t.Errorf("%d invitation emails, want 2", invitations)
		}
		tb.submit(chromedp.Search(`//a[normalize-space()="Back to the dashboard"]`))
		tb.page("Access Administrator dashboard")
		tb.wantBody("Quinn, Zoe", "Invitation pending")
		// A new link for an invitee who lost the email; the first one stops working.
		first := w.mail.linkFor(t, "zquinn@acme.test")
		tb.submit(chromedp.Search(`//a[normalize-space()="Quinn, Zoe"]`))
		tb.page("Zoe Quinn")
		tb.submit(chromedp.Search(`//button[normalize-space()="Send a new registration link"]`))
		tb.waitFor(".notice", "A new registration link was emailed")
		if second := w.mail.linkFor(t, "zquinn@acme.test"); second == first {
			t.Error("the new registration email has the old link")
		}
		tb.do(chromedp.Navigate(first))
		tb.page("Not found")
	})

	t.Run("ExistingUserInvitedToSite", func(t *testing.T) {
		// Search first; the person has an account at another organization: the AA invites her to
		// the site, and she becomes a member only when she accepts after signing in.
		w := newWorld(t)
		aa := b.tab(t, w)
		aa.signIn("aalvarez", password)
		aa.page("Access Administrator dashboard")
		aa.do(aa.fill("#first", "Bea"), aa.fill("#last", "Brown"))
		aa.submit(chromedp.CSS("form.inline-form button"))
		aa.waitFor("#results h3", "1 user found")
		aa.wantBody("BETA-01", "joins ACME-01 only when they accept")
		aa.do(chromedp.SetValue(chromedp.CSS(fmt.Sprintf("#role-%d", w.users["bbrown"].ID)), "read_only"))
		aa.submit(chromedp.Search(`//button[normalize-space()="Invite to ACME-01"]`))
		aa.waitFor(".notice", "The invitation was sent")
		aa.waitFor("#pending-title", "Existing users invited to ACME-01")
		aa.wantBody("bbrown", "Read Only")
		u, err := w.svc.User(context.Background(), w.sys, w.users["bbrown"].ID)
		w.must(err)
		if u.Membership(w.acme.ID) != nil {
			t.Fatal("the invitation made Bea a member of ACME-01 before she accepted")
		}

		bb := b.tab(t, w)
		bb.signIn("bbrown", password)
		bb.page("Access Administrator dashboard")
		if nav := evalIn[string](bb, `document.querySelector("nav").textContent`); !strings.Contains(nav, "Invitations 1 waiting for your answer") {
			t.Errorf("the navigation bar does not count the pending invitation: %q", nav)
		}
		bb.submit(chromedp.Search(`//nav//a[starts-with(normalize-space(), "Invitations")]`))
		bb.page("Your invitations")
		bb.wantBody("Acme Pediatrics Downtown (PIN ACME-01)", "Read Only", "aalvarez")
		bb.submit(chromedp.CSS(`button[aria-label="Accept the invitation to ACME-01"]`))
		bb.waitFor(".notice", "You accepted the invitation")
		bb.wantBody("You have no pending invitations")
		u, err = w.svc.User(context.Background(), w.sys, w.users["bbrown"].ID)
		w.must(err)
		if m := u.Membership(w.acme.ID); m == nil || m.Role != admin.RoleReadOnly {
			t.Errorf("after accepting, Bea's membership at ACME-01 = %+v, want Read Only", m)
		}
		aa.open(fmt.Sprintf("/dashboard?site=%d", w.acme.ID))
		aa.waitFor("#pending-title", "Existing users invited")
		aa.wantBody("No pending invitations", "Brown, Bea")
	})

	t.Run("Registration", func(t *testing.T) {
		w := newWorld(t)
		aaActor := actorOf(t, w, "aalvarez")
		_, err := w.svc.Invite(context.Background(), aaActor, admin.InviteInput{NewUserInput: admin.NewUserInput{Username: "mmorgan",
			FirstName: "Mia", LastName: "Morgan", Email: "mia@acme.test", Phone: "617-555-0100"}, SiteID: w.acme.ID,
			Role: admin.RoleTypicalUser, Designations: []admin.Designation{admin.DesignationClinicalChampion}})
		w.must(err)
		link := w.mail.linkFor(t, "mia@acme.test")
		tb := b.tab(t, w)
		tb.do(chromedp.Navigate(link))
		tb.page("Complete your registration")
		tb.wantPath("/register?token=")
		tb.wantBody("Acme Pediatrics Downtown", "ACME-01", "Mia Morgan", "mmorgan", "mia@acme.test", "617-555-0100",
			"Typical User · Clinical Champion", "User agreement, version 1", "Your account is personal")
		tb.do(tb.fill("#password", "weakpassword1"), tb.fill("#confirm_password", "weakpassword1"),
			chromedp.Click(chromedp.CSS("#accept_agreement")), chromedp.RemoveAttribute(chromedp.CSS("#password"), "minlength"))
		tb.submit(chromedp.CSS("main button.primary"))
		tb.waitFor("#password-err", "uppercase letter")
		tb.do(tb.fill("#password", "Morgan-Mia-2026!"), tb.fill("#confirm_password", "Morgan-Mia-2026!"),
			chromedp.Click(chromedp.CSS("#accept_agreement")))
		tb.submit(chromedp.CSS("main button.primary"))
		tb.page("Registration complete")
		tb.wantBody("mmorgan", "version 1")
		tb.do(chromedp.Navigate(link)) // the link works once
		tb.page("Not found")
		tb.wantBody("unknown, already used or expired")
		tb.signIn("mmorgan", "Morgan-Mia-2026!")
		tb.page("Patients")
		tb.submit(chromedp.CSS(`.who a`))
		tb.page("Your account")
		tb.wantBody("Version 1, accepted on", "ACME-01: Typical User · Clinical Champion")

		aa := b.tab(t, w)
		aa.signIn("aalvarez", password)
		aa.open(fmt.Sprintf("/users?site=%d", w.acme.ID))
		aa.page("Manage users")
		aa.submit(chromedp.Search(`//a[normalize-space()="Morgan, Mia"]`))
		aa.page("Mia Morgan")
		aa.wantBody("Version 1 accepted on")
	})

	t.Run("DeactivateUnlock", func(t *testing.T) {
		w := newWorld(t)
		for i := 0; i < 5; i++ {
			w.skew.Add(int64(time.Minute)) // past the login throttle's wait
			_, _ = w.svc.LoginFrom(context.Background(), "tnguyen", "Wrong-Password-9", "192.0.2.7")
		}
		tb := b.tab(t, w)
		tb.signIn("aalvarez", password)
		tb.page("Access Administrator dashboard")
		tb.open(fmt.Sprintf("/users?site=%d", w.acme.ID))
		tb.page("Manage users")
		row := evalIn[string](tb, `[...document.querySelectorAll("tbody tr")].map(r => r.innerText).find(t => t.includes("Nguyen")) || ""`)
		if !strings.Contains(row, "Locked") || !strings.Contains(row, "Active") || !strings.Contains(row, "Typical User") {
			t.Errorf("manage users row of Nguyen = %q, want Typical User, Active, Locked", row)
		}
		tb.submit(chromedp.Search(`//a[normalize-space()="Nguyen, Tam"]`))
		tb.page("Tam Nguyen")
		tb.submit(chromedp.Search(`//button[normalize-space()="Unlock"]`))
		tb.waitFor(".notice", "The account is unlocked")
		tb.submit(chromedp.Search(`//button[normalize-space()="Deactivate (Inactive Manual)"]`))
		tb.waitFor(".notice", "Inactive Manual")
		tb.waitFor(".facts", "Inactive Manual")
		tb.open(fmt.Sprintf("/users?site=%d&show=inactive", w.acme.ID))
		tb.waitFor("table.users", "Nguyen")
		tb.open(fmt.Sprintf("/users?site=%d&show=active", w.acme.ID))
		if strings.Contains(tb.text("table.users"), "Nguyen") {
			t.Error("an Inactive Manual user is listed under Show Active")
		}
		// The site's last active AA cannot be deactivated: the Service's refusal is shown.
		tb.open(fmt.Sprintf("/users/%d?site=%d", w.users["aalvarez"].ID, w.acme.ID))
		tb.submit(chromedp.Search(`//button[normalize-space()="Deactivate (Inactive Manual)"]`))
		tb.waitFor("#status-err", "last")
		u := b.tab(t, w)
		u.signIn("tnguyen", password)
		u.waitFor(".alert", "Inactive Manual")
	})

	t.Run("DataSharing", func(t *testing.T) {
		w := newWorld(t)
		id := w.patient("Doe", "Jane", "2020-02-03", admin.SharingUnknown, "MRN-77", w.acme)
		tb := b.tab(t, w)
		tb.signIn("tnguyen", password)
		tb.page("Patients")
		tb.do(tb.fill("#family", "Doe"), tb.typeIn("#birth", "02032020"))
		tb.submit(chromedp.CSS("main form button.primary"))
		tb.waitFor("main", "1 patient found")
		tb.wantBody("resolve data sharing to view")
		if strings.Contains(tb.body(), "Jane") {
			t.Error("a patient with sharing Unknown shows demographics in the search results")
		}
		tb.submit(chromedp.Search(`//a[contains(., "resolve data sharing")]`))
		tb.waitFor(".attention", "Unknown")
		if strings.Contains(tb.body(), "Jane") || strings.Contains(tb.body(), "LOT0") {
			t.Error("the record is shown before Unknown is resolved")
		}
		tb.do(chromedp.Click(chromedp.CSS("#status-Y")), tb.fill("#form_ref", "FORM-2026-001"))
		tb.submit(chromedp.CSS("main button.primary"))
		tb.page("Jane Doe")
		tb.waitFor(".notice", "data-sharing status was changed")
		tb.wantBody("2020-02-03", "LOT0ACME-01", "resolve unknown", "FORM-2026-001")
		// An objection, with its form, then its withdrawal.
		tb.do(tb.fill("#form_ref", "OBJ-9"))
		tb.submit(chromedp.Search(`//button[normalize-space()="Record objection"]`))
		tb.waitFor(".facts", "No")
		tb.do(tb.fill("#form_ref", "WD-10"))
		tb.submit(chromedp.Search(`//button[normalize-space()="Withdraw objection"]`))
		tb.waitFor(".facts", "Yes")
		tb.wantBody("OBJ-9", "WD-10", "objection", "withdrawal of objection")
		// Look-up by identifier.
		tb.open("/patients?search=1&identifier=MRN-77")
		tb.waitFor("main", "Doe, Jane")
		var changes int
		w.must(w.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM sharing_changes WHERE registry_patient_id = $1 AND source = 'admin'`, id).Scan(&changes))
		entries, err := w.svc.ListAudit(context.Background(), w.sys, admin.AuditFilter{Action: "patient.set_sharing", TargetID: fmt.Sprint(id)})
		w.must(err)
		if changes != 3 || len(entries) != 3 {
			t.Errorf("%d sharing changes and %d audit entries, want 3 and 3", changes, len(entries))
		}
		// A read-only user may look but not change.
		r := b.tab(t, w)
		r.signIn("rreader", password)
		r.open(fmt.Sprintf("/patients/%d", id))
		r.page("Jane Doe")
		if n := evalIn[int](r, `document.querySelectorAll("form[action$='/sharing']").length`); n != 0 {
			t.Errorf("a Read Only user is offered %d sharing forms", n)
		}
	})

	t.Run("CrossOrganizationDenied", func(t *testing.T) {
		w := newWorld(t)
		tb := b.tab(t, w)
		tb.signIn("bbrown", password)
		tb.page("Access Administrator dashboard")
		tb.wantBody("Beta Family Practice")
		if strings.Contains(tb.body(), "Acme") {
			t.Error("Beta's AA sees Acme on her dashboard")
		}
		target := w.users["tnguyen"].ID
		tb.open(fmt.Sprintf("/users/%d", target))
		tb.page("Not allowed")
		tb.open(fmt.Sprintf("/dashboard?site=%d", w.acme.ID))
		tb.page("Not allowed")
		// A forged form: her own deactivate form pointed at Acme's user. The Service refuses it
		// and nothing changes.
		tb.open(fmt.Sprintf("/users/%d", w.users["bbrown"].ID))
		tb.page("Bea Brown")
		tb.do(chromedp.SetAttributeValue(chromedp.CSS("#status form"), "action", fmt.Sprintf("/users/%d/status", target)))
		tb.submit(chromedp.CSS("#status form button"))
		tb.page("Not allowed")
		tb.wantBody(fmt.Sprintf("User %d is not a member of a site whose users you may view", target))
		if strings.Contains(tb.body(), "tnguyen") {
			t.Error("the refusal names the other organization's user")
		}
		u, err := w.svc.User(context.Background(), w.sys, target)
		w.must(err)
		if u.Status != admin.UserActive {
			t.Errorf("Acme's user is %s after Beta's forged deactivation", u.Status)
		}
	})

	t.Run("RegistryFormsKeepTheirOwnInput", func(t *testing.T) {
		// A refused registration comes back with what was typed in its own form, selects
		// included; the other form stays empty, so its next click registers nothing wrong.
		w := newWorld(t)
		orgs, err := w.svc.ListOrganizations(context.Background(), w.sys)
		w.must(err)
		ids := map[string]string{}
		for _, o := range orgs {
			ids[o.Code] = fmt.Sprint(o.ID)
		}
		const fields = `["#org-code", "#org-name", "#org-parent", "#site-org", "#site-code", "#site-name", "#site-facility", "#site-golive"]
			.map(s => document.querySelector(s).value).join("|")`
		tb := b.tab(t, w)
		tb.signIn("rstaff", password)
		tb.page("Organizations and sites")

		// A site PIN that is taken, under Beta (not the first organization offered).
		tb.do(chromedp.SetValue(chromedp.CSS("#site-org"), ids["BETA"]), tb.fill("#site-code", "ACME-01"),
			tb.fill("#site-name", "Beta Uptown"), tb.fill("#site-facility", "BETA09"), tb.fill("#site-golive", "2027-03-01"))
		tb.submit(chromedp.CSS(`form[action="/registry/sites"] button`))
		tb.waitFor("#site-err", "ACME-01")
		if got, want := evalIn[string](tb, fields), "||0|"+ids["BETA"]+"|ACME-01|Beta Uptown|BETA09|2027-03-01"; got != want {
			t.Errorf("after a refused site the forms hold\n%s, want\n%s (organization form empty, site form as typed)", got, want)
		}
		if n := evalIn[int](tb, `document.querySelectorAll("#org-err").length`); n != 0 {
			t.Errorf("the site's error is also shown under the organization form")
		}

		// An organization code that is taken, under a health system.
		tb.open("/registry")
		tb.page("Organizations and sites")
		tb.do(tb.fill("#org-code", "BETA"), tb.fill("#org-name", "Beta Again"), chromedp.SetValue(chromedp.CSS("#org-parent"), ids["ACME"]))
		tb.submit(chromedp.CSS(`form[action="/registry/organizations"] button`))
		tb.waitFor("#organization-err", "BETA")
		if got, want := evalIn[string](tb, fields), "BETA|Beta Again|"+ids["ACME"]+"|"+ids["ACME"]+"||||"; got != want {
			t.Errorf("after a refused organization the forms hold\n%s, want\n%s (organization form as typed, site form empty)", got, want)
		}
	})

	t.Run("Certification", func(t *testing.T) {
		// A testing site's certification run, the adult dose wrong: the page says it failed, with
		// its control ID and findings; registry staff sign off an item in the page (audited).
		w := newWorld(t)
		site := w.acme2
		w.certificationRun(site, time.Now().Add(-48*time.Hour))
		tb := b.tab(t, w)
		tb.signIn("rstaff", password)
		tb.page("Organizations and sites")
		tb.open(fmt.Sprintf("/sites/%d/intake", site.ID))
		tb.page("Intake")
		tb.submit(chromedp.CSS(`nav.tabs a[href$="/certification"]`))
		tb.page("Certification: Acme Kids Northside")
		row := tb.text("#case-adult-administered")
		for _, want := range []string{"Failed", "CERT-02-ADULT", "rxa-15-missing", "RXA-15 (lot number) is empty"} {
			if !strings.Contains(row, want) {
				t.Errorf("the adult case's row does not say %q: %s", want, row)
			}
		}
		if got := tb.text("#case-child-administered"); !strings.Contains(got, "Passed") {
			t.Errorf("child case: %s", got)
		}
		tb.wantBody("Not ready for production", "1 case failed")
		if got := strings.Join(strings.Fields(tb.text(".summary .tiles")), " "); got != "8 passed 1 failed 0 not attempted 9 cases in the plan" {
			t.Errorf("summary: %q", got)
		}
		tb.do(tb.typeIn("#item-data-quality-reviewed input[name=note]", "Quality report reviewed with the site"))
		tb.submit(chromedp.CSS(`#item-data-quality-reviewed button`))
		tb.waitFor(".notice", "signed off")
		item := tb.waitFor("#item-data-quality-reviewed", "Signed off")
		if !strings.Contains(item, "rstaff") || !strings.Contains(item, "Quality report reviewed with the site") {
			t.Errorf("signed item: %s", item)
		}
		var n int
		w.must(w.db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'certification.sign_off'
			AND target_id = $1 AND after->>'item' = 'data-quality-reviewed' AND actor = 'rstaff'`, fmt.Sprint(site.ID)).Scan(&n))
		if n != 1 {
			t.Errorf("%d audit entries of the sign-off, want 1", n)
		}
		tb.open("/audit?action=certification.")
		tb.page("Audit log")
		tb.wantBody("certification.sign_off")

		// The quality page of the test environment (the default for a testing site) with its chart.
		tb.submit(chromedp.Search(`//nav[@aria-label="Main"]//a[text()="Sites"]`))
		tb.open(fmt.Sprintf("/sites/%d/certification", site.ID))
		tb.submit(chromedp.CSS(`nav.tabs a[href$="/quality"]`))
		tb.page("Data quality: Acme Kids Northside")
		if got := evalIn[string](tb, `document.querySelector("#env").value`); got != "T" {
			t.Errorf("environment %q, want T for a testing site", got)
		}
		if got := evalIn[int](tb, `document.querySelectorAll("figure.chart svg.bars rect").length`); got < 1 {
			t.Errorf("the weekly chart has %d bars", got)
		}
		if got := evalIn[float64](tb, `document.querySelector("figure.chart svg.bars").getBoundingClientRect().height`); got < 100 {
			t.Errorf("the chart is %.0f px high", got)
		}
		tb.wantBody("9 messages", "rxa-15-missing", "lot number", "Within 1 day")
	})

	t.Run("Narrow", func(t *testing.T) {
		// At 360 px wide no page scrolls sideways: tables become stacked cards, forms one column.
		w := newWorld(t)
		w.messages(w.acme, 14)
		jane := w.patient("Doe", "Jane", "2020-02-03", admin.SharingYes, "MRN-1", w.acme)
		tb := b.tab(t, w)
		tb.do(chromedp.EmulateViewport(360, 740))
		tb.signIn("aalvarez", password)
		tb.page("Access Administrator dashboard")
		for _, path := range []string{
			fmt.Sprintf("/dashboard?site=%d&search=1&first=Tam&last=Nguyen", w.acme.ID),
			fmt.Sprintf("/invite?site=%d", w.acme.ID),
			fmt.Sprintf("/users?site=%d&show=all", w.acme.ID),
			fmt.Sprintf("/users/%d", w.users["tnguyen"].ID),
			fmt.Sprintf("/patients/%d", jane),
			fmt.Sprintf("/sites/%d/intake", w.acme.ID),
			fmt.Sprintf("/sites/%d", w.acme.ID),
			fmt.Sprintf("/sites/%d/certification", w.acme.ID),
			fmt.Sprintf("/sites/%d/quality", w.acme.ID),
			fmt.Sprintf("/sites/%d/reconcile", w.acme.ID),
			"/audit",
		} {
			tb.open(path)
			if got := evalIn[int](tb, `document.documentElement.scrollWidth`); got > 360 {
				t.Errorf("%s is %d px wide at 360 px", path, got)
			}
			if got := evalIn[int](tb, `Math.max(0, ...[...document.querySelectorAll(".table-wrap")].map(e => e.scrollWidth - e.clientWidth))`); got > 0 {
				t.Errorf("%s: a table scrolls sideways by %d px at 360 px", path, got)
			}
		}
	})

	if dir := os.Getenv("VAXGATE_SCREENSHOTS"); dir != "" {
		t.Run("Screenshots", func(t *testing.T) { screenshots(t, b, dir) })
	}
}

// actorOf authenticates a fixture user as the Service would for a session.
func actorOf(t *testing.T, w *world, username string) admin.Actor {
	t.Helper()
	res, err := w.svc.Login(context.Background(), username, password)
	w.must(err)
	a, err := w.svc.Authenticate(context.Background(), res.Token)
	w.must(err)
	return a
}

// screenshots writes PNGs of the main pages, at desktop width and at 360 px, into dir
// (VAXGATE_SCREENSHOTS=docs/screenshots go test -run TestBrowser/Screenshots ./portal).
func screenshots(t *testing.T, b *browser, dir string) {
	w := newWorld(t)
	w.messages(w.acme, 30)
	for _, p := range [][]string{{"Doe", "Jane"}, {"Rivera", "Luis"}} {
		w.patient(p[0], p[1], "2020-02-03", admin.SharingYes, "MRN-"+p[0], w.acme)
	}
	unknown := w.patient("Okafor", "Ada", "2019-07-21", admin.SharingUnknown, "MRN-O", w.acme)
	jane := int64(0)
	w.must(w.db.Pool.QueryRow(context.Background(), `SELECT id FROM registry_patients WHERE family_name = 'Doe'`).Scan(&jane))
	_, err := w.svc.Invite(context.Background(), w.sys, admin.InviteInput{NewUserInput: admin.NewUserInput{Username: "kpatel", FirstName: "Kiran",
		LastName: "Patel", Email: "kpatel@acme.test"}, SiteID: w.acme.ID, Role: admin.RoleTypicalUserOrdering, SkipEmail: true})
	w.must(err)
	for i := 0; i < 5; i++ {
		w.skew.Add(int64(time.Minute)) // past the login throttle's wait
		_, _ = w.svc.LoginFrom(context.Background(), "rreader", "Wrong-Password-1", "192.0.2.7")
	}
	w.user("clee", "Casey", "Lee", w.beta, admin.RoleTypicalUser) // found by the dashboard's search
	// Bea Brown (Beta's AA) invited to ACME-01: pending on the dashboard, and on her Invitations page.
	_, err = w.svc.InviteToSite(context.Background(), actorOf(t, w, "aalvarez"), admin.SiteInvitationInput{UserID: w.users["bbrown"].ID, SiteID: w.acme.ID,
		Role: admin.RoleReadOnly, Designations: []admin.Designation{admin.DesignationTechnicalContact}})
	w.must(err)
	if _, err := w.svc.Deactivate(context.Background(), w.sys, w.user("oold", "Owen", "Oldham", w.acme, admin.RoleReadOnly).ID); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := func(tb *tab, name string, width int64) {
		t.Helper()
		ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
		defer cancel()
		// Desktop: the whole page; 360 px wide: the first screenful and a half, as a phone shows it.
		height, capture := int64(800), chromedp.FullScreenshot(100)
		if width < 600 {
			height, capture = 1200, chromedp.CaptureScreenshot()
		}
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, height)); err != nil {
			t.Fatal(err)
		}
		png, err := chromedp.Run(ctx, capture)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := w.svc.Invite(context.Background(), w.sys, admin.InviteInput{NewUserInput: admin.NewUserInput{Username: "mmorgan", FirstName: "Mia",
		LastName: "Morgan", Email: "mia@acme.test"}, SiteID: w.acme.ID, Role: admin.RoleTypicalUser,
		Designations: []admin.Designation{admin.DesignationClinicalChampion}, SkipEmail: true})
	w.must(err)
	anon := b.tab(t, w)
	anon.open("/signin")
	anon.page("Sign in")
	shot(anon, "signin-360", 360)
	anon.do(chromedp.Navigate(inv.Link))
	anon.page("Complete your registration")
	shot(anon, "register", 1280)
	aa := b.tab(t, w)
	aa.signIn("aalvarez", password)
	aa.page("Access Administrator dashboard")
	aa.open(fmt.Sprintf("/dashboard?site=%d&first=Casey&last=Lee&search=1", w.acme.ID))
	aa.page("Access Administrator dashboard")
	shot(aa, "dashboard", 1280)
	shot(aa, "dashboard-360", 360)
	aa.open(fmt.Sprintf("/invite?site=%d&first=Zoe&last=Quinn", w.acme.ID))
	aa.page("Invite users")
	shot(aa, "invite", 1280)
	aa.open(fmt.Sprintf("/users?site=%d&show=all", w.acme.ID))
	aa.page("Manage users")
	shot(aa, "manage-users", 1280)
	shot(aa, "manage-users-360", 360)
	aa.open(fmt.Sprintf("/users/%d?site=%d", w.users["rreader"].ID, w.acme.ID))
	aa.page("Ray Reader")
	shot(aa, "user", 1280)
	u := b.tab(t, w)
	u.signIn("tnguyen", password)
	u.page("Patients")
	u.open(fmt.Sprintf("/patients/%d", jane))
	u.page("Jane Doe")
	shot(u, "patient", 1280)
	shot(u, "patient-360", 360)
	u.open(fmt.Sprintf("/patients/%d", unknown))
	u.waitFor(".attention", "Unknown")
	shot(u, "patient-unknown", 1280)
	bb := b.tab(t, w)
	bb.signIn("bbrown", password)
	bb.page("Access Administrator dashboard")
	bb.open("/invitations")
	bb.page("Your invitations")
	shot(bb, "invitations", 1280)
	r := b.tab(t, w)
	r.signIn("rstaff", password)
	r.page("Organizations and sites")
	shot(r, "registry", 1280)
	r.open(fmt.Sprintf("/sites/%d", w.acme.ID))
	r.page("Acme Pediatrics Downtown")
	shot(r, "site", 1280)
	r.open("/audit")
	r.page("Audit log")
	shot(r, "audit", 1280)
	r.open(fmt.Sprintf("/sites/%d/intake", w.acme.ID))
	r.page("Intake")
	shot(r, "intake", 1280)
	shot(r, "intake-360", 360)
	r.do(chromedp.Navigate(r.base + fmt.Sprintf("/sites/%d/intake#findings-title", w.acme.ID)))
	shot(r, "intake-findings-360", 360)
	// The report pages: ACME-02's certification run (the adult dose failed, one item signed
	// off), ACME-01's data quality over real messages, a reconciliation.
	w.certificationRun(w.acme2, time.Now().Add(-48*time.Hour))
	w.traffic(w.beta, "P", 30)
	cert := fmt.Sprintf("/sites/%d/certification", w.acme2.ID)
	r.open(cert)
	r.page("Certification")
	r.do(r.fill("#item-test-cases-reviewed input[name=note]", "Walked through the failed adult case with the site"))
	r.submit(chromedp.CSS(`#item-test-cases-reviewed button`))
	r.waitFor(".notice", "signed off")
	r.open(cert)
	r.page("Certification")
	shot(r, "certification", 1280)
	shot(r, "certification-360", 360)
	r.do(chromedp.Navigate(r.base + cert + "#readiness"))
	shot(r, "certification-readiness-360", 360)
	r.open(fmt.Sprintf("/sites/%d/quality", w.beta.ID))
	r.page("Data quality")
	shot(r, "quality", 1280)
	shot(r, "quality-360", 360)
	r.open(fmt.Sprintf("/sites/%d/reconcile", w.beta.ID))
	r.page("Reconciliation")
	// The site's list: most of the last two days' messages, one never received, a junk line.
	var ids []string
	w.must(w.db.Pool.QueryRow(context.Background(), `SELECT array_agg(control_id ORDER BY control_id) FROM messages WHERE site_id = $1
		AND received_at >= $2 AND control_id <> 'BETA-01-00172'`, w.beta.ID, utcToday().AddDate(0, 0, -1)).Scan(&ids))
	r.do(r.fill("#from", utcToday().AddDate(0, 0, -1).Format(time.DateOnly)), r.fill("#to", utcToday().Format(time.DateOnly)),
		r.fill("#ids", "MSH-10\n"+strings.Join(ids, "\n")+"\nBETA-01-99001\nBETA-01 99002\n"))
	r.submit(chromedp.CSS("main button.primary"))
	r.waitFor("#result", "Result")
	shot(r, "reconcile", 1280)
	shot(r, "reconcile-360", 360)
	if t.Failed() {
		t.Fatal(errors.New("screenshots incomplete"))
	}
}

// utcToday is the start of today (UTC), as the report pages count days.
func utcToday() time.Time {
	y, m, d := time.Now().UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
