package portal

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

//go:embed agreement/*.txt
var agreementFS embed.FS

// IntakeReader reads a site's intake statistics; *store.DB implements it.
type IntakeReader interface {
	SiteIntake(ctx context.Context, siteID int64, since time.Time, topFindings, latest int) (*store.SiteIntake, error)
}

// Options configure the portal.
type Options struct {
	Service *admin.Service  // every rule and every decision
	Intake  IntakeReader    // the per-site intake page's statistics
	Reports *report.Service // the site's certification, data-quality and reconciliation pages
	// Secure marks the cookies Secure: set it when the portal is reached over HTTPS (TLS here or
	// at a proxy: http.public_url https://…). Requests that arrive over TLS get Secure cookies
	// anyway.
	Secure bool
	Logger *zap.Logger
	Now    func() time.Time // clock of the intake page (default time.Now)
}

// Portal is the web portal's http.Handler.
type Portal struct {
	svc      *admin.Service
	intake   IntakeReader
	reports  *report.Service
	secure   bool
	log      *zap.Logger
	now      func() time.Time
	csrfKey  []byte
	pages    map[string]*template.Template
	mux      *http.ServeMux
	static   http.Handler
	patterns []string // the routes, "METHOD /path" as registered
}

// Routes lists the portal's routes ("GET /users/{id}", …; "/" is the not-found page for
// every other address). The permission matrix checks that each has its row.
func (p *Portal) Routes() []string { return append([]string(nil), p.patterns...) }

// New returns the portal. Mount it at "/" (it serves /api/v1/register too: the registration link
// of invitation emails, redirected to the portal's registration page).
func New(o Options) (*Portal, error) {
	if o.Service == nil || o.Intake == nil || o.Reports == nil {
		return nil, errors.New("portal: Service, Intake and Reports are required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Portal{svc: o.Service, intake: o.Intake, reports: o.Reports, secure: o.Secure, log: o.Logger, now: o.Now,
		csrfKey: make([]byte, 32), pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	if _, err := rand.Read(p.csrfKey); err != nil {
		return nil, fmt.Errorf("portal: csrf key: %w", err)
	}
	if err := p.parseTemplates(); err != nil {
		return nil, err
	}
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("portal: static files: %w", err)
	}
	p.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	p.routes()
	return p, nil
}

func (p *Portal) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return fmt.Errorf("portal: templates: %w", err)
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n)
		if err != nil {
			return fmt.Errorf("portal: template %s: %w", base, err)
		}
		p.pages[base] = t
	}
	return nil
}

// handlerFunc is a page handler: it runs with the request's session (nil actor when anonymous).
type handlerFunc func(w http.ResponseWriter, r *http.Request, s *session)

// access says what a route needs.
type access int

const (
	public   access = iota // anyone (sign in, registration, static files)
	signedIn               // an authenticated session whose password need not be changed
	anyAuth                // an authenticated session, even one that must change its password
)

func (p *Portal) routes() {
	h := func(pattern string, a access, fn handlerFunc) {
		p.mux.Handle(pattern, p.wrap(a, fn))
		p.patterns = append(p.patterns, pattern)
	}
	// upload is a route whose form may carry a file (multipart, up to maxUpload).
	upload := func(pattern string, a access, fn handlerFunc) {
		p.mux.Handle(pattern, p.wrapBody(a, maxUpload, fn))
		p.patterns = append(p.patterns, pattern)
	}
	p.mux.Handle("GET /static/", p.static)
	p.patterns = append(p.patterns, "GET /static/")
	h("GET /{$}", public, p.home)
	h("GET /signin", public, p.signinPage)
	h("POST /signin", public, p.signin)
	h("POST /signout", anyAuth, p.signout)
	h("GET /account", signedIn, p.account)
	h("GET /password", anyAuth, p.passwordPage)
	h("POST /password", anyAuth, p.changePassword)
	h("GET /register", public, p.registerPage)
	h("POST /register", public, p.register)
	h("GET /api/v1/register", public, p.registerRedirect)

	h("GET /dashboard", signedIn, p.dashboard)
	h("GET /invite", signedIn, p.invitePage)
	h("POST /invite", signedIn, p.invite)
	h("GET /users", signedIn, p.manageUsers)
	h("GET /users/{id}", signedIn, p.userPage)
	h("POST /users/{id}/profile", signedIn, p.userProfile)
	h("POST /users/{id}/membership", signedIn, p.userMembership)
	h("POST /users/{id}/membership/remove", signedIn, p.userRemoveMembership)
	h("POST /users/{id}/site-invitation", signedIn, p.userSiteInvite)
	h("POST /users/{id}/status", signedIn, p.userStatus)
	h("POST /users/{id}/unlock", signedIn, p.userUnlock)
	h("POST /users/{id}/reset", signedIn, p.userReset)
	h("POST /users/{id}/reinvite", signedIn, p.userReinvite)

	h("GET /invitations", signedIn, p.invitations)
	h("POST /invitations/{id}/accept", signedIn, p.answerInvitation(true))
	h("POST /invitations/{id}/decline", signedIn, p.answerInvitation(false))

	h("GET /patients", signedIn, p.patients)
	h("GET /patients/{id}", signedIn, p.patient)
	h("POST /patients/{id}/sharing", signedIn, p.patientSharing)

	h("GET /registry", signedIn, p.registry)
	h("POST /registry/organizations", signedIn, p.createOrganization)
	h("POST /registry/sites", signedIn, p.createSite)
	h("GET /sites", signedIn, p.sites)
	h("GET /sites/{id}", signedIn, p.site)
	h("POST /sites/{id}/status", signedIn, p.siteStatus)
	h("POST /sites/{id}/credentials", signedIn, p.siteCredential)
	h("POST /credentials/{id}/revoke", signedIn, p.revokeCredential)
	h("GET /sites/{id}/intake", signedIn, p.intakePage)
	h("GET /sites/{id}/certification", signedIn, p.certificationPage)
	h("POST /sites/{id}/certification/sign-off", signedIn, p.signOff)
	h("GET /sites/{id}/quality", signedIn, p.qualityPage)
	h("GET /sites/{id}/reconcile", signedIn, p.reconcilePage)
	upload("POST /sites/{id}/reconcile", signedIn, p.reconcile)
	h("GET /audit", signedIn, p.auditPage)
	h("/", public, p.notFound)
}

// csp is the Content-Security-Policy of every answer: no inline script or style, nothing from
// elsewhere, forms post only here, no framing.
const csp = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// ServeHTTP adds the security headers every answer carries and turns a panic into a 500 page.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	if p.secure || r.TLS != nil {
		hd.Set("Strict-Transport-Security", "max-age=31536000")
	}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			p.log.Error("portal: panic", zap.String("path", r.URL.Path), zap.String("type", fmt.Sprintf("%T", v)))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	p.mux.ServeHTTP(w, r)
}

// maxForm bounds a form's body; maxUpload that of a form with a file (the reconciliation's
// control-ID file).
const (
	maxForm   = 1 << 20
	maxUpload = 32 << 20
)

// wrap authenticates the request, enforces the forced password change, checks the CSRF token of
// every POST, and limits form bodies.
func (p *Portal) wrap(a access, fn handlerFunc) http.Handler { return p.wrapBody(a, maxForm, fn) }

// wrapBody is wrap for a route whose POST body may be up to limit bytes; a multipart form (a file
// upload) is read too, its files beyond 1 MiB kept in temporary files removed after the handler.
func (p *Portal) wrapBody(a access, limit int64, fn handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := p.session(w, r)
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			var err error
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" && limit > maxForm {
				err = r.ParseMultipartForm(maxForm)
				if r.MultipartForm != nil {
					defer func() { _ = r.MultipartForm.RemoveAll() }()
				}
			} else {
				err = r.ParseForm()
			}
			if err != nil {
				var tooLarge *http.MaxBytesError
				if errors.As(err, &tooLarge) {
					p.errorPage(w, r, s, http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is larger than %d MiB.", limit>>20))
					return
				}
				p.errorPage(w, r, s, http.StatusBadRequest, "The form could not be read.")
				return
			}
			if !p.csrfOK(r, s) {
				p.errorPage(w, r, s, http.StatusForbidden, "The form has expired or did not come from this portal. Go back, reload the page and try again.")
				return
			}
		}
		if a != public && s.actor == nil {
			if s.authErr != nil {
				p.clearSession(w, r)
			}
			q := url.Values{"next": {r.URL.RequestURI()}}
			if s.authErr != nil {
				q.Set("why", s.authCode)
			}
			http.Redirect(w, r, "/signin?"+q.Encode(), http.StatusSeeOther)
			return
		}
		if a == signedIn && s.actor.MustChangePassword {
			http.Redirect(w, r, "/password", http.StatusSeeOther)
			return
		}
		hd := w.Header()
		hd.Set("Cache-Control", "no-store")
		fn(w, r, s)
	})
}

// view is what every page template gets.
type view struct {
	Title   string
	Nav     nav
	Session *session
	CSRF    string
	Notice  string            // a success message
	Error   string            // the form's or page's error
	Fields  map[string]string // field name → its error
	Data    any
}

// render executes the page template with the layout.
func (p *Portal) render(w http.ResponseWriter, r *http.Request, s *session, status int, page, title string, v view) {
	t, ok := p.pages[page]
	if !ok {
		p.log.Error("portal: no template", zap.String("page", page))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	v.Title, v.Session, v.CSRF = title, s, p.csrfToken(s)
	pending := 0
	if s != nil && s.actor != nil && s.actor.UserID != 0 && !s.actor.MustChangePassword {
		if invs, err := p.svc.MySiteInvitations(r.Context(), *s.actor); err == nil {
			pending = len(invs)
		} else {
			p.log.Warn("portal: pending invitations for the navigation bar", zap.Error(err))
		}
	}
	v.Nav = navFor(s, r.URL.Path, pending)
	if v.Notice == "" {
		v.Notice = notices[r.URL.Query().Get("ok")]
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, "layout", v); err != nil {
		p.log.Error("portal: render", zap.String("page", page), zap.Error(err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(b.String()))
}

// errorPage renders a plain page with one message.
func (p *Portal) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	title := http.StatusText(status)
	switch status {
	case http.StatusForbidden:
		title = "Not allowed"
	case http.StatusNotFound:
		title = "Not found"
	}
	p.render(w, r, s, status, "error", title, view{Error: msg})
}

// fail renders the error of a Service call as a page: its kind gives the status, its message
// the text; an internal error is logged and not shown.
func (p *Portal) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	e := admin.AsError(err)
	if e.Kind == admin.KindInternal {
		p.log.Error("portal: request failed", zap.String("path", r.URL.Path), zap.Error(err))
		p.errorPage(w, r, s, http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.")
		return
	}
	p.errorPage(w, r, s, e.Kind.HTTPStatus(), sentence(e.Message))
}

// formError is the message of a Service error for a form, and its status; internal errors are
// logged and replaced by a generic message.
func (p *Portal) formError(r *http.Request, err error) (int, string) {
	e := admin.AsError(err)
	if e.Kind == admin.KindInternal {
		p.log.Error("portal: request failed", zap.String("path", r.URL.Path), zap.Error(err))
		return http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment."
	}
	return e.Kind.HTTPStatus(), sentence(e.Message)
}

// sentence capitalises a service message and ends it with a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// notices are the success messages a redirect may name (?ok=…): fixed texts, so that a link
// cannot put words in the portal's mouth.
var notices = map[string]string{
	"password":     "Your password was changed.",
	"signedout":    "You are signed out.",
	"profile":      "The user's details were saved.",
	"membership":   "The user's role was saved.",
	"removed":      "The user was removed from the site: their account and their other sites are unchanged.",
	"deactivated":  "The user is now Inactive Manual and was signed out.",
	"reactivated":  "The user is active again.",
	"unlocked":     "The account is unlocked.",
	"sharing":      "The data-sharing status was changed.",
	"organization": "The organization was created.",
	"site":         "The site was created.",
	"status":       "The site's onboarding status was saved.",
	"revoked":      "The credential was revoked.",
	"siteinvited":  "The invitation was sent: the user becomes a member of the site when they accept it after signing in.",
	"accepted":     "You accepted the invitation: you are now a member of the site.",
	"declined":     "You declined the invitation.",
	"reinvited":    "A new registration link was emailed; the previous one no longer works.",
	"signedoff":    "The readiness item is signed off; the sign-off is in the audit log.",
	"unsigned":     "The sign-off was revoked; the revocation is in the audit log.",
}

func (p *Portal) home(w http.ResponseWriter, r *http.Request, s *session) {
	switch {
	case s.actor == nil:
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
	case s.actor.MustChangePassword:
		http.Redirect(w, r, "/password", http.StatusSeeOther)
	default:
		http.Redirect(w, r, s.home(), http.StatusSeeOther)
	}
}

func (p *Portal) notFound(w http.ResponseWriter, r *http.Request, s *session) {
	p.errorPage(w, r, s, http.StatusNotFound, "There is no page at this address.")
}

// pathID reads a numeric path value.
func pathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

// formID reads an optional numeric query or form value (0 when absent or not a number).
func formID(r *http.Request, name string) int64 {
	id, err := strconv.ParseInt(strings.TrimSpace(r.FormValue(name)), 10, 64)
	if err != nil || id < 0 {
		return 0
	}
	return id
}

// seeOther redirects after a successful POST, with a notice key.
func seeOther(w http.ResponseWriter, r *http.Request, path, notice string, q url.Values) {
	if q == nil {
		q = url.Values{}
	}
	if notice != "" {
		q.Set("ok", notice)
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}
