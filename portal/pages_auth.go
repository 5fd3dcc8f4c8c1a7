package portal

import (
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/vaxgate/vaxgate/admin"
)

// signinMessages turn the admin module's refusals into what a person at the sign-in page needs
// to know and do. They say no more than the API's answers: a wrong password, an unknown
// username, an account not registered yet and an account locked after failed sign-ins are one
// answer (the admin module's rule), so the one message covers them all.
var signinMessages = map[string]string{
	admin.ErrInvalidCredentials.Code: "Wrong username or password. After 5 failed attempts in a row the account is locked: if you are sure of your password, ask your Access Administrator (AA) to unlock it.",
	admin.ErrAccountExpired.Code:     "Your account is Inactive Expired: it was not used for 90 days. Ask your Access Administrator (AA) to reactivate it.",
	admin.ErrAccountInactive.Code:    "Your account is Inactive Manual: it was deactivated. Ask your Access Administrator (AA) if you need it again.",
	admin.ErrUnauthenticated.Code:    "Your session has ended. Sign in again.",
}

type signinData struct {
	Username, Next string
}

// localPath keeps a "next" address only when it is a path of this site.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return ""
	}
	if u, err := url.Parse(next); err != nil || u.Host != "" || u.Scheme != "" {
		return ""
	}
	return next
}

func (p *Portal) signinPage(w http.ResponseWriter, r *http.Request, s *session) {
	if s.actor != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	v := view{Data: signinData{Next: localPath(r.URL.Query().Get("next"))}}
	if why := r.URL.Query().Get("why"); why != "" {
		v.Error = signinMessages[why]
	}
	if r.URL.Query().Get("ok") == "signedout" {
		v.Notice = notices["signedout"]
	}
	p.render(w, r, s, http.StatusOK, "signin", "Sign in", v)
}

func (p *Portal) signin(w http.ResponseWriter, r *http.Request, s *session) {
	username := strings.TrimSpace(r.PostForm.Get("username"))
	next := localPath(r.PostForm.Get("next"))
	res, err := p.svc.LoginFrom(r.Context(), username, r.PostForm.Get("password"), clientAddr(r))
	if err != nil {
		e := admin.AsError(err)
		status, msg := p.formError(r, err)
		if m, ok := signinMessages[e.Code]; ok && e.Kind != admin.KindInternal {
			msg = m
		}
		if e.Kind == admin.KindTooManyRequests {
			secs := max(1, int(math.Ceil(e.RetryAfter.Seconds())))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			msg = fmt.Sprintf("Too many failed sign-ins. Wait %s, then try again.", plural(secs, "second"))
		}
		p.render(w, r, s, status, "signin", "Sign in", view{Error: msg, Data: signinData{Username: username, Next: next}})
		return
	}
	p.setSession(w, r, res.Token)
	if res.PasswordChangeRequired {
		http.Redirect(w, r, "/password", http.StatusSeeOther)
		return
	}
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// clientAddr is the address sign-in attempts are throttled by: the connection's peer (a proxy in
// front of the portal is one source, as it is for the API's POST /api/v1/login).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// plural is "1 second", "2 seconds".
func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

func (p *Portal) signout(w http.ResponseWriter, r *http.Request, s *session) {
	if err := p.svc.Logout(r.Context(), *s.actor); err != nil {
		p.fail(w, r, s, err)
		return
	}
	p.clearSession(w, r)
	http.Redirect(w, r, "/signin?ok=signedout", http.StatusSeeOther)
}

type passwordData struct {
	Forced bool
	Rules  []string
}

// passwordRules is the password policy as the forms show it, after "The password (case
// sensitive) must:", in the words of admin.CheckPassword, which applies it: "the username" is the
// account's (on a reset form, not the administrator's), compared ignoring case.
var passwordRules = []string{
	"be 12 to 30 characters long",
	"contain an uppercase letter and a lowercase letter",
	"contain a digit",
	"contain a special character, such as ! # $ % & * - _ ?",
	"not contain the username, in upper or lower case",
}

func (p *Portal) passwordPage(w http.ResponseWriter, r *http.Request, s *session) {
	p.render(w, r, s, http.StatusOK, "password", "Change your password",
		view{Data: passwordData{Forced: s.actor.MustChangePassword, Rules: passwordRules}})
}

func (p *Portal) changePassword(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	d := passwordData{Forced: s.actor.MustChangePassword, Rules: passwordRules}
	if f.Get("new_password") != f.Get("confirm_password") {
		p.render(w, r, s, http.StatusBadRequest, "password", "Change your password",
			view{Data: d, Fields: map[string]string{"confirm_password": "The two new passwords differ."}})
		return
	}
	err := p.svc.ChangePassword(r.Context(), *s.actor, f.Get("current_password"), f.Get("new_password"))
	if err != nil {
		status, msg := p.formError(r, err)
		field := "new_password"
		if admin.AsError(err).Code == "wrong_password" {
			field = "current_password"
		}
		p.render(w, r, s, status, "password", "Change your password", view{Data: d, Fields: map[string]string{field: msg}})
		return
	}
	seeOther(w, r, s.home(), "password", nil)
}

type registerData struct {
	Token     string
	Pending   *admin.PendingRegistration
	Agreement []string // paragraphs
	Rules     []string
	Done      *admin.User
}

// agreementText is the user agreement of a version (agreement/<version>.txt), in paragraphs
// (separated by blank lines).
func agreementText(version string) ([]string, error) {
	if version == "" || strings.ContainsAny(version, "/\\.") {
		return nil, fmt.Errorf("portal: bad agreement version %q", version)
	}
	b, err := fs.ReadFile(agreementFS, "agreement/"+version+".txt")
	if err != nil {
		return nil, fmt.Errorf("portal: the text of user agreement version %s: %w", version, err)
	}
	var out []string
	for _, p := range strings.Split(string(b), "\n\n") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out, nil
}

// registerRedirect sends the registration link of invitation emails (/api/v1/register?token=…)
// to the portal's registration page.
func (p *Portal) registerRedirect(w http.ResponseWriter, r *http.Request, s *session) {
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, "/register?"+url.Values{"token": {r.URL.Query().Get("token")}}.Encode(), http.StatusSeeOther)
}

func (p *Portal) registerPage(w http.ResponseWriter, r *http.Request, s *session) {
	p.showRegister(w, r, s, r.URL.Query().Get("token"), http.StatusOK, view{})
}

// showRegister renders the registration form of the invitation behind token, with v's errors.
func (p *Portal) showRegister(w http.ResponseWriter, r *http.Request, s *session, token string, status int, v view) {
	w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the address
	pending, err := p.svc.PendingRegistration(r.Context(), token)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	text, err := agreementText(pending.AgreementVersion)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	v.Data = registerData{Token: token, Pending: pending, Agreement: text, Rules: passwordRules}
	p.render(w, r, s, status, "register", "Complete your registration", v)
}

func (p *Portal) register(w http.ResponseWriter, r *http.Request, s *session) {
	f := r.PostForm
	token := f.Get("token")
	if f.Get("password") != f.Get("confirm_password") {
		p.showRegister(w, r, s, token, http.StatusBadRequest, view{Fields: map[string]string{"confirm_password": "The two passwords differ."}})
		return
	}
	if v := p.svc.Options().AgreementVersion; f.Get("agreement_version") != v {
		p.showRegister(w, r, s, token, http.StatusConflict, view{Error: "The user agreement has changed since the page was opened: read version " + v + " below and accept it."})
		return
	}
	u, err := p.svc.Register(r.Context(), token, f.Get("password"), f.Get("accept_agreement") == "yes")
	if err != nil {
		e := admin.AsError(err)
		if e.Code == admin.ErrInviteInvalid.Code || e.Kind == admin.KindInternal {
			p.fail(w, r, s, err)
			return
		}
		status, msg := p.formError(r, err)
		field := "password"
		if e.Code == "agreement_required" {
			field = "accept_agreement"
		}
		p.showRegister(w, r, s, token, status, view{Fields: map[string]string{field: msg}})
		return
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	p.render(w, r, s, http.StatusOK, "registered", "Registration complete", view{Data: registerData{Done: u}})
}

// fmtTime is the portal's format of a time: UTC, to the minute.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// account shows the signed-in user their own account: details, sites and roles, and the
// version of the user agreement they accepted.
func (p *Portal) account(w http.ResponseWriter, r *http.Request, s *session) {
	u, err := p.svc.Me(r.Context(), *s.actor)
	if err != nil {
		p.fail(w, r, s, err)
		return
	}
	p.render(w, r, s, http.StatusOK, "account", "Your account", view{Data: u})
}
