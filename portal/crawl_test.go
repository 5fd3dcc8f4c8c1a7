package portal_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/admin/passwd"
)

// client is an HTTP client with its own cookies (one person).
type client struct {
	t    *testing.T
	w    *world
	http *http.Client
}

func newClient(t *testing.T, w *world) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, w: w, http: &http.Client{Jar: jar}}
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.http.Get(c.w.srv.URL + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return resp, string(b)
}

// csrfOf reads the CSRF token of the first form of a page.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "input" && attr(n, "name") == "csrf" {
			return attr(n, "value")
		}
	}
	t.Fatal("no CSRF token on the page")
	return ""
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	resp, err := c.http.PostForm(c.w.srv.URL+path, form)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (c *client) signIn(username string) {
	c.t.Helper()
	_, page := c.get("/signin")
	resp, body := c.post("/signin", url.Values{"csrf": {csrfOf(c.t, page)}, "username": {username}, "password": {password}})
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `role="alert"`) {
		c.t.Fatalf("sign in %s: %d\n%s", username, resp.StatusCode, body)
	}
}

func attr(n *html.Node, name string) string {
	for _, a := range n.Attr {
		if a.Key == name {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, name string) bool {
	for _, a := range n.Attr {
		if a.Key == name {
			return true
		}
	}
	return false
}

// checkPage parses a page and reports what is wrong with it: controls without a label,
// duplicate ids, references to ids that do not exist, a missing language, title or h1.
func checkPage(page string) (links []string, problems []string) {
	doc, err := html.Parse(strings.NewReader(page))
	if err != nil {
		return nil, []string{"does not parse: " + err.Error()}
	}
	ids := map[string]int{}
	labelFor := map[string]bool{}
	var controls []*html.Node
	var refs []string
	h1, title, lang := 0, false, false
	for n := range doc.Descendants() {
		if n.Type != html.ElementNode {
			continue
		}
		if id := attr(n, "id"); id != "" {
			ids[id]++
		}
		for _, k := range []string{"aria-describedby", "aria-labelledby"} {
			refs = append(refs, strings.Fields(attr(n, k))...)
		}
		switch n.Data {
		case "html":
			lang = attr(n, "lang") != ""
		case "title":
			title = n.FirstChild != nil && strings.TrimSpace(n.FirstChild.Data) != ""
		case "h1":
			h1++
		case "label":
			if f := attr(n, "for"); f != "" {
				labelFor[f] = true
			}
		case "input", "select", "textarea":
			switch attr(n, "type") {
			case "hidden", "submit", "button":
			default:
				controls = append(controls, n)
			}
		case "a":
			if h := attr(n, "href"); h != "" {
				links = append(links, h)
			} else {
				problems = append(problems, "a link without href")
			}
		case "link":
			links = append(links, attr(n, "href"))
		case "img":
			if !hasAttr(n, "alt") {
				problems = append(problems, "an image without alt")
			}
		case "button":
			if strings.TrimSpace(textOf(n)) == "" && attr(n, "aria-label") == "" {
				problems = append(problems, "a button without a name")
			}
		}
	}
	for _, c := range controls {
		id := attr(c, "id")
		labelled := (id != "" && labelFor[id]) || attr(c, "aria-label") != "" || attr(c, "aria-labelledby") != ""
		for p := c.Parent; p != nil && !labelled; p = p.Parent {
			labelled = p.Type == html.ElementNode && p.Data == "label"
		}
		if !labelled {
			problems = append(problems, fmt.Sprintf("<%s name=%q> has no label", c.Data, attr(c, "name")))
		}
	}
	for id, n := range ids {
		if n > 1 {
			problems = append(problems, fmt.Sprintf("id %q is used %d times", id, n))
		}
	}
	for _, r := range refs {
		if ids[r] == 0 {
			problems = append(problems, fmt.Sprintf("aria reference to missing id %q", r))
		}
	}
	if !lang || !title || h1 != 1 {
		problems = append(problems, fmt.Sprintf("lang %v, title %v, %d h1", lang, title, h1))
	}
	return links, problems
}

func textOf(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
		}
	}
	return b.String()
}

// TestCrawl visits every page reachable by links, as each kind of user, and checks that no link
// is broken, every page parses, carries the security headers, labels every control and uses
// its ids consistently.
func TestCrawl(t *testing.T) {
	w := newWorld(t)
	w.messages(w.acme, 10)
	w.patient("Doe", "Jane", "2020-02-03", admin.SharingYes, "MRN-1", w.acme)
	w.patient("Okafor", "Ada", "2019-07-21", admin.SharingUnknown, "MRN-2", w.acme)
	w.certificationRun(w.acme2, time.Now().Add(-24*time.Hour))
	w.traffic(w.acme, "P", 10)
	extra := map[string][]string{ // pages reached by forms (GET searches), not links
		"aalvarez": {fmt.Sprintf("/dashboard?site=%d&search=1&first=Tam&last=Nguyen", w.acme.ID),
			fmt.Sprintf("/sites/%d/quality?from=2026-01-01&to=2026-01-31&env=T", w.acme.ID),
			fmt.Sprintf("/dashboard?site=%d&search=1&first=No&last=Body", w.acme.ID), fmt.Sprintf("/invite?site=%d", w.acme.ID),
			fmt.Sprintf("/users?site=%d&show=all", w.acme.ID)},
		"tnguyen": {"/patients?search=1&family=Doe&birth=2020-02-03", "/patients?search=1&identifier=MRN-2"},
		"rstaff":  {"/audit?action=user.&since=2020-01-01", "/patients?search=1&family=Okafor&birth=2019-07-21"},
	}
	for _, who := range []string{"", "rstaff", "aalvarez", "tnguyen", "rreader", "bbrown"} {
		name := who
		if name == "" {
			name = "anonymous"
		}
		t.Run(name, func(t *testing.T) {
			c := newClient(t, w)
			if who != "" {
				c.signIn(who)
			}
			queue := append([]string{"/"}, extra[who]...)
			seen := map[string]bool{}
			pages := 0
			for len(queue) > 0 && pages < 300 {
				p := queue[0]
				queue = queue[1:]
				if seen[p] {
					continue
				}
				seen[p] = true
				resp, body := c.get(p)
				pages++
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: status %d (a broken link)", p, resp.StatusCode)
					continue
				}
				ct := resp.Header.Get("Content-Type")
				if !strings.HasPrefix(ct, "text/html") {
					continue
				}
				if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "unsafe-inline") {
					t.Errorf("%s: Content-Security-Policy %q", p, csp)
				}
				if strings.Contains(body, "<script") || strings.Contains(body, " style=") || strings.Contains(body, "<style") {
					t.Errorf("%s: inline script or style", p)
				}
				links, problems := checkPage(body)
				for _, pr := range problems {
					t.Errorf("%s: %s", p, pr)
				}
				for _, l := range links {
					u, err := url.Parse(l)
					if err != nil {
						t.Errorf("%s: bad link %q", p, l)
						continue
					}
					if u.Host != "" && u.Host != strings.TrimPrefix(w.srv.URL, "http://") {
						continue
					}
					u.Fragment = ""
					if u.Path == "" {
						continue
					}
					ref := resp.Request.URL.ResolveReference(u)
					queue = append(queue, ref.RequestURI())
				}
			}
			if who != "" && pages < 5 {
				t.Errorf("only %d pages reached", pages)
			}
			// The site report pages are reached by the tabs of the site pages.
			if who == "rstaff" || who == "aalvarez" {
				sites := []*admin.Site{w.acme}
				if who == "rstaff" {
					sites = append(sites, w.acme2)
				}
				for _, site := range sites {
					for _, pg := range []string{"certification", "quality", "reconcile"} {
						if p := fmt.Sprintf("/sites/%d/%s", site.ID, pg); !seen[p] {
							t.Errorf("%s not reached", p)
						}
					}
				}
			}
			t.Logf("%d pages", pages)
		})
	}
}

// TestSecurity: forms need the CSRF token of the session, cross-site posts are refused, cookies
// are HttpOnly and SameSite=Strict, and a denied page changes nothing.
func TestSecurity(t *testing.T) {
	w := newWorld(t)
	c := newClient(t, w)
	resp, page := c.get("/signin")
	for _, ck := range resp.Cookies() {
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
			t.Errorf("cookie %s: HttpOnly %v SameSite %v", ck.Name, ck.HttpOnly, ck.SameSite)
		}
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "Referrer-Policy"} {
		if resp.Header.Get(h) == "" {
			t.Errorf("no %s header", h)
		}
	}
	form := url.Values{"username": {"aalvarez"}, "password": {password}}
	if resp, _ := c.post("/signin", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign in without the CSRF token: %d, want 403", resp.StatusCode)
	}
	form.Set("csrf", csrfOf(t, page))
	req, _ := http.NewRequest("POST", w.srv.URL+"/signin", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://evil.example")
	if resp, err := c.http.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin sign in: %v %v, want 403", resp.StatusCode, err)
	}
	c.signIn("aalvarez")
	// The token of the anonymous page is worthless once signed in (it is bound to the session).
	target := w.users["tnguyen"].ID
	if resp, _ := c.post(fmt.Sprintf("/users/%d/status", target), url.Values{"csrf": {form.Get("csrf")}, "action": {"deactivate"}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("post with the anonymous token: %d, want 403", resp.StatusCode)
	}
	if u, _ := w.svc.User(context.Background(), w.sys, target); u.Status != admin.UserActive {
		t.Errorf("user %s after refused posts", u.Status)
	}
	// A session cookie that is not a session sends to the sign-in page.
	c2 := newClient(t, w)
	u, _ := url.Parse(w.srv.URL)
	c2.http.Jar.SetCookies(u, []*http.Cookie{{Name: "vaxgate_session", Value: strings.Repeat("A", 43)}})
	resp, body := c2.get("/users")
	if resp.Request.URL.Path != "/signin" || !strings.Contains(body, "Your session has ended") {
		t.Errorf("bad session: at %s", resp.Request.URL)
	}
	// "next" only goes to this site.
	_, page = c2.get("/signin")
	resp, _ = c2.post("/signin", url.Values{"csrf": {csrfOf(t, page)}, "username": {"aalvarez"}, "password": {password}, "next": {"//evil.example/x"}})
	if resp.Request.URL.Host != u.Host {
		t.Errorf("next led to %s", resp.Request.URL)
	}
}

// TestIntakePage: the chart, findings and latest messages come from the site's messages; a user
// of another organization gets 403.
func TestIntakePage(t *testing.T) {
	w := newWorld(t)
	w.messages(w.acme, 7)
	// One rejected before its environment could be told (MSH-11 neither P nor T): counted too.
	_, err := w.db.Pool.Exec(context.Background(), `INSERT INTO messages (env, site_id, transport, control_id, sending_facility, message_type,
		received_at, raw, ack, ack_code, findings, resend_key) VALUES (NULL, $1, 'mllp', 'NOENV1', $2, 'VXU^V04^VXU_V04', now(), '\x00', '\x00', 'AR', '[]', false)`,
		w.acme.ID, w.acme.Facilities[0])
	w.must(err)
	c := newClient(t, w)
	c.signIn("tnguyen")
	resp, body := c.get(fmt.Sprintf("/sites/%d/intake?days=7", w.acme.ID))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("intake: %d", resp.StatusCode)
	}
	for _, want := range []string{`<svg viewBox=`, `class="bar-AA"`, `class="bar-AE"`, `class="bar-AR"`, "msh-21-missing", "rxa-5-cvx-999",
		"MSG00", "Production:", "Test:", "Rejected before an environment was known: 1 message", `<span class="badge ack-AR">AR</span>`} {
		if !strings.Contains(body, want) {
			t.Errorf("intake page lacks %q", want)
		}
	}
	// A site that sent nothing shows the chart of the environment it sends to, and no other.
	b := newClient(t, w)
	b.signIn("bbrown")
	if _, body := b.get(fmt.Sprintf("/sites/%d/intake", w.beta.ID)); strings.Count(body, "<svg viewBox=") != 1 {
		t.Errorf("intake of a site with no message shows %d charts, want 1", strings.Count(body, "<svg viewBox="))
	}
	if resp, _ := b.get(fmt.Sprintf("/sites/%d/intake", w.acme.ID)); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another organization's intake: %d, want 403", resp.StatusCode)
	}
}

// TestCheckPage: the crawler's checks find what they look for.
func TestCheckPage(t *testing.T) {
	bad := `<!DOCTYPE html><html><head><title>x</title></head><body><h1>a</h1><h1>b</h1>
		<input name="q"><select id="s" aria-describedby="nope"></select><p id="s"></p><a>x</a><button></button></body></html>`
	_, problems := checkPage(bad)
	want := []string{`<input name="q"> has no label`, `<select name=""> has no label`, `id "s" is used 2 times`,
		`aria reference to missing id "nope"`, "lang false, title true, 2 h1", "a link without href", "a button without a name"}
	got := strings.Join(problems, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("checkPage misses %q; found:\n%s", w, got)
		}
	}
	good := `<!DOCTYPE html><html lang="en"><head><title>x</title></head><body><h1>a</h1><label for="q">Q</label><input id="q" name="q">
		<label>R <input name="r"></label><input type="hidden" name="h"></body></html>`
	if _, problems := checkPage(good); len(problems) > 0 {
		t.Errorf("a good page: %v", problems)
	}
}

// formPost signs the form with the CSRF token of the page at path and posts it.
func (c *client) formPost(pagePath, action string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	_, page := c.get(pagePath)
	form.Set("csrf", csrfOf(c.t, page))
	return c.post(action, form)
}

// TestRegistryStaff: registry staff register an organization and a site, move it through
// onboarding, generate SOAP credentials (the password is shown once and works), and filter the
// audit log; an Access Administrator gets 403 for the same actions.
func TestRegistryStaff(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	c := newClient(t, w)
	c.signIn("rstaff")
	resp, body := c.formPost("/registry", "/registry/organizations", url.Values{"code": {"GAMMA"}, "name": {"Gamma Clinics"}, "parent": {"0"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "The organization was created") {
		t.Fatalf("create organization: %d", resp.StatusCode)
	}
	org, err := w.svc.ListOrganizations(ctx, w.sys)
	w.must(err)
	var gamma int64
	for _, o := range org {
		if o.Code == "GAMMA" {
			gamma = o.ID
		}
	}
	resp, body = c.formPost("/registry", "/registry/sites", url.Values{"organization": {fmt.Sprint(gamma)}, "code": {"GAMMA-01"},
		"name": {"Gamma East"}, "facility": {"GAMMA01"}, "go_live": {"2027-01-15"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Gamma East") {
		t.Fatalf("create site: %d\n%s", resp.StatusCode, body)
	}
	// A duplicate code: the Service's refusal next to the form, nothing created.
	resp, body = c.formPost("/registry", "/registry/sites", url.Values{"organization": {fmt.Sprint(gamma)}, "code": {"GAMMA-01"}, "name": {"Again"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, `id="site-err"`) {
		t.Errorf("duplicate site: %d", resp.StatusCode)
	}
	site, err := w.svc.SiteByCode(ctx, w.sys, "GAMMA-01")
	w.must(err)
	sitePath := fmt.Sprintf("/sites/%d", site.ID)
	// Onboarding: one step at a time.
	if resp, body := c.formPost(sitePath, sitePath+"/status", url.Values{"status": {"production"}}); resp.StatusCode != http.StatusConflict || !strings.Contains(body, `id="status-err"`) {
		t.Errorf("registered → production: %d", resp.StatusCode)
	}
	// Not without an active Access Administrator (issue 12's rule), said next to the form.
	if resp, body := c.formPost(sitePath, sitePath+"/status", url.Values{"status": {"testing"}}); resp.StatusCode < 400 || !strings.Contains(body, "no active access administrator") {
		t.Errorf("registered → testing without an AA: %d", resp.StatusCode)
	}
	w.user("games", "Gil", "Ames", site, admin.RoleAdministrator, admin.DesignationAccessAdministrator)
	if resp, body := c.formPost(sitePath, sitePath+"/status", url.Values{"status": {"testing"}, "go_live": {"2027-01-15"}}); resp.StatusCode != http.StatusOK || !strings.Contains(body, "onboarding status was saved") {
		t.Errorf("registered → testing: %d", resp.StatusCode)
	}
	// Beside the onboarding form, where the site stands on certification: nothing sent yet.
	if _, body := c.get(sitePath); !strings.Contains(body, "Not ready for production") || !regexp.MustCompile(`0 of \d+ cases passed, \d+ not attempted; \d+ of \d+ readiness items not signed off`).MatchString(body) {
		t.Errorf("the site page does not say where certification stands:\n%s", body)
	}
	resp, body = c.formPost(sitePath, sitePath+"/credentials", url.Values{"username": {"gamma-ehr"}, "facility": {"GAMMA01"}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("generate credentials: %d", resp.StatusCode)
	}
	doc, err := html.Parse(strings.NewReader(body))
	w.must(err)
	secret := ""
	for n := range doc.Descendants() {
		if n.Type == html.ElementNode && n.Data == "code" && attr(n, "class") == "password" {
			secret = textOf(n)
		}
	}
	if len(secret) < 12 {
		t.Fatalf("no generated password on the page")
	}
	if _, again := c.get(sitePath); strings.Contains(again, secret) {
		t.Error("the SOAP password is shown again")
	}
	cred, err := w.db.SOAPCredential(ctx, "gamma-ehr")
	w.must(err)
	if ok, err := passwd.Verify(cred.PasswordHash, secret); !ok || err != nil || cred.FacilityID != "GAMMA01" {
		t.Errorf("the generated password does not verify (%v, %v) or facility %q", ok, err, cred.FacilityID)
	}
	// Clearing the go-live date of a production site (the status unchanged) is refused, and the
	// page says why rather than only that the site is already in production.
	acmePath := fmt.Sprintf("/sites/%d", w.acme.ID)
	if resp, body := c.formPost(acmePath, acmePath+"/status", url.Values{"status": {"production"}, "go_live": {""}}); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(body, "its go-live date can be changed but not cleared (an empty date keeps 2026-11-02)") {
		t.Errorf("clearing the go-live date: %d", resp.StatusCode)
	}
	// The audit log, filtered.
	_, body = c.get("/audit?action=credential.&target_type=credential")
	if !strings.Contains(body, "credential.create") || strings.Contains(body, "site.create") {
		t.Error("audit filter by action prefix")
	}
	_, body = c.get("/audit?since=not-a-date")
	if !strings.Contains(body, `id="since-err"`) {
		t.Error("a bad date in the audit filter is not reported next to the field")
	}
	// An Access Administrator may not do any of it.
	aa := newClient(t, w)
	aa.signIn("aalvarez")
	for _, p := range []struct{ page, action string }{
		{"/dashboard", "/registry/organizations"}, {"/dashboard", fmt.Sprintf("/sites/%d/credentials", w.acme.ID)},
		{"/dashboard", fmt.Sprintf("/sites/%d/status", w.acme.ID)},
	} {
		if resp, _ := aa.formPost(p.page, p.action, url.Values{"code": {"X"}, "name": {"X"}, "username": {"x-ehr"}, "facility": {"ACME01"}, "status": {"testing"}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("AA posts %s: %d, want 403", p.action, resp.StatusCode)
		}
	}
}

// TestInviteAAHelp: the invitation form's help for the Access Administrator question says what
// the admin module enforces: the designation goes with any role, so a Typical User invited as an
// AA through the form is accepted, and the help does not claim otherwise.
func TestInviteAAHelp(t *testing.T) {
	w := newWorld(t)
	c := newClient(t, w)
	c.signIn("aalvarez")
	invite := fmt.Sprintf("/invite?site=%d", w.acme.ID)
	_, page := c.get(invite)
	if !strings.Contains(page, "Any role may be an AA") || strings.Contains(page, "must have the Administrator") {
		t.Errorf("the AA help does not say that any role may be an AA")
	}
	form := url.Values{"site": {fmt.Sprint(w.acme.ID)}, "rows": {"1"}, "send": {"1"}, "first_0": {"Uma"}, "last_0": {"Ito"},
		"email_0": {"uito@acme.test"}, "username_0": {"uito"}, "role_0": {string(admin.RoleTypicalUser)}}
	for _, d := range admin.Designations {
		form.Set(string(d)+"_0", "no")
	}
	form.Set(string(admin.DesignationAccessAdministrator)+"_0", "yes")
	resp, body := c.formPost(invite, "/invite", form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Invitations sent") {
		t.Fatalf("a Typical User invited as an AA: %d\n%s", resp.StatusCode, body)
	}
	u, err := w.svc.UserByUsername(context.Background(), w.sys, "uito")
	w.must(err)
	if m := u.Membership(w.acme.ID); m == nil || m.Role != admin.RoleTypicalUser || !m.AccessAdministrator() {
		t.Errorf("the invitee's membership at ACME-01 = %+v, want a Typical User with the AA designation", m)
	}
}
