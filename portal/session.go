package portal

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/vaxgate/vaxgate/admin"
)

// Cookie names. The session cookie holds the admin module's session token (the database keeps
// only its digest); the CSRF cookie holds a random value the forms' tokens are derived from.
const (
	sessionCookie = "vaxgate_session"
	csrfCookie    = "vaxgate_csrf"
)

// session is the request's sign-in state.
type session struct {
	token    string       // the session cookie's value ("" when none)
	actor    *admin.Actor // nil when not signed in
	authErr  error        // why the session cookie was refused
	authCode string       // the admin error code of authErr
	csrf     string       // the CSRF cookie's value
}

// session reads the cookies: authenticates the session token with the Service (the user's roles
// are read afresh on every request) and makes sure the CSRF cookie exists.
func (p *Portal) session(w http.ResponseWriter, r *http.Request) *session {
	s := &session{}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		s.token = c.Value
		a, err := p.svc.Authenticate(r.Context(), c.Value)
		if err != nil {
			s.authErr, s.authCode = err, admin.AsError(err).Code
			if admin.AsError(err).Kind == admin.KindInternal {
				s.authCode = ""
			}
		} else {
			s.actor = &a
		}
	}
	if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 43 {
		s.csrf = c.Value
	} else if r.Method != http.MethodPost {
		s.csrf = randomToken()
		http.SetCookie(w, p.cookie(r, csrfCookie, s.csrf, 0))
	}
	return s
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("portal: no randomness"))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// cookie builds one of the portal's cookies: HttpOnly, SameSite=Strict, Secure over HTTPS, for
// the whole site; maxAge < 0 deletes it, 0 makes it last for the browser session.
func (p *Portal) cookie(r *http.Request, name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: p.secure || r.TLS != nil, SameSite: http.SameSiteStrictMode}
}

func (p *Portal) setSession(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, p.cookie(r, sessionCookie, token, 0))
}

func (p *Portal) clearSession(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, p.cookie(r, sessionCookie, "", -1))
}

// csrfToken is the token the forms of this response carry: an HMAC of the CSRF cookie and the
// session token under the portal's key, so that it is worthless in another browser or session.
func (p *Portal) csrfToken(s *session) string {
	if s == nil || s.csrf == "" {
		return ""
	}
	m := hmac.New(sha256.New, p.csrfKey)
	m.Write([]byte(s.csrf))
	m.Write([]byte{0})
	m.Write([]byte(s.token))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// csrfOK checks a POST: the form's token matches the cookies, and the browser does not say the
// request came from another site.
func (p *Portal) csrfOK(r *http.Request, s *session) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		u, err := url.Parse(o)
		if err != nil || !strings.EqualFold(u.Host, r.Host) {
			return false
		}
	}
	want := p.csrfToken(s)
	got := r.PostForm.Get("csrf")
	return want != "" && hmac.Equal([]byte(want), []byte(got))
}

// Actor is the signed-in actor (nil when anonymous), for the templates.
func (s *session) Actor() *admin.Actor { return s.actor }
