package admin

import (
	"html/template"
	"mime"
	"net/http"
)

// The registration link of an invitation email opens a small HTML page (no JavaScript) that posts
// the form back to POST /api/v1/register; API clients post JSON to the same endpoint instead.
var registerTmpl = template.Must(template.New("register").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Immunization registry: registration</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: sans-serif; max-width: 36em; margin: 2em auto">
<h1>Complete your registration</h1>
{{if .Done}}<p>Your account <b>{{.Username}}</b> is active. You can now log in.</p>
{{else}}{{if .Error}}<p style="color: #a00">{{.Error}}</p>{{end}}
{{if .Token}}<form method="post" action="/api/v1/register">
<input type="hidden" name="token" value="{{.Token}}">
<p><label>Password<br><input type="password" name="password" autocomplete="new-password" required minlength="12" maxlength="30"></label></p>
<p>12 to 30 characters, with at least one uppercase letter, one lowercase letter, one digit and one special character.</p>
<p><label><input type="checkbox" name="accept_agreement" value="true" required> I have read and accept the registry user agreement.</label></p>
<p><button type="submit">Register</button></p>
</form>{{end}}{{end}}
</body></html>
`))

type registerView struct {
	Token, Error, Username string
	Done                   bool
}

func writeRegisterPage(w http.ResponseWriter, status int, v registerView) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; style-src 'unsafe-inline'")
	w.Header().Set("Referrer-Policy", "no-referrer") // the token is in the URL
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = registerTmpl.Execute(w, v)
}

func (h *handler) registerPage(w http.ResponseWriter, r *http.Request) {
	tok := r.URL.Query().Get("token")
	if !validToken(tok) {
		writeRegisterPage(w, http.StatusNotFound, registerView{Error: ErrInviteInvalid.Message})
		return
	}
	writeRegisterPage(w, http.StatusOK, registerView{Token: tok})
}

// registerForm serves the HTML form's POST; anything else goes to the JSON handler next.
func (h *handler) registerForm(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if mt != "application/x-www-form-urlencoded" {
			next(w, r)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := r.ParseForm(); err != nil {
			writeRegisterPage(w, http.StatusBadRequest, registerView{Error: "The form could not be read."})
			return
		}
		tok := r.PostForm.Get("token")
		u, err := h.svc.Register(r.Context(), tok, r.PostForm.Get("password"), r.PostForm.Get("accept_agreement") == "true")
		if err != nil {
			e := AsError(err)
			if e.Kind == KindInternal {
				h.writeError(w, r, err)
				return
			}
			v := registerView{Token: tok, Error: e.Message}
			if e.Code == ErrInviteInvalid.Code {
				v.Token = ""
			}
			writeRegisterPage(w, e.Kind.HTTPStatus(), v)
			return
		}
		writeRegisterPage(w, http.StatusOK, registerView{Done: true, Username: u.Username})
	}
}
