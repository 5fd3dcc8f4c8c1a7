package admin

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// OpenAPI is the OpenAPI 3 description of the JSON API, served at GET /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte

// maxBody bounds request bodies.
const maxBody = 64 << 10

// access says who may call a route.
type access int

const (
	public  access = iota // no session
	session               // a session whose password need not be changed first
	pending               // any session, also one that must change its password first
)

// Route is one operation of the JSON API.
type Route struct {
	Method string
	Path   string // a net/http pattern path, e.g. /api/v1/users/{id}
	access access
	fn     func(h *handler, r *http.Request, a Actor) (int, any, error)
}

// routes is the API. NewHandler registers exactly these, and the OpenAPI document describes
// exactly these (a test checks both ways).
var routes = []Route{
	{"GET", "/api/v1/openapi.yaml", public, nil}, // served raw, see NewHandler
	{"POST", "/api/v1/login", public, (*handler).login},
	{"GET", "/api/v1/register", public, nil}, // the HTML page of the registration link
	{"POST", "/api/v1/register", public, (*handler).register},
	{"POST", "/api/v1/logout", pending, (*handler).logout},
	{"GET", "/api/v1/me", pending, (*handler).me},
	{"POST", "/api/v1/me/password", pending, (*handler).changePassword},

	{"GET", "/api/v1/organizations", session, (*handler).listOrganizations},
	{"POST", "/api/v1/organizations", session, (*handler).createOrganization},
	{"GET", "/api/v1/organizations/{id}", session, (*handler).getOrganization},

	{"GET", "/api/v1/sites", session, (*handler).listSites},
	{"POST", "/api/v1/sites", session, (*handler).createSite},
	{"GET", "/api/v1/sites/{id}", session, (*handler).getSite},
	{"POST", "/api/v1/sites/{id}/status", session, (*handler).setSiteStatus},
	{"POST", "/api/v1/sites/{id}/facilities", session, (*handler).addFacility},
	{"DELETE", "/api/v1/sites/{id}/facilities/{facility}", session, (*handler).removeFacility},
	{"GET", "/api/v1/sites/{id}/credentials", session, (*handler).listCredentials},
	{"POST", "/api/v1/sites/{id}/credentials", session, (*handler).createCredential},
	{"DELETE", "/api/v1/credentials/{id}", session, (*handler).revokeCredential},

	{"GET", "/api/v1/users", session, (*handler).listUsers},
	{"GET", "/api/v1/users/search", session, (*handler).searchUsers},
	{"POST", "/api/v1/invitations", session, (*handler).invite},
	{"GET", "/api/v1/users/{id}", session, (*handler).getUser},
	{"PATCH", "/api/v1/users/{id}", session, (*handler).updateUser},
	{"POST", "/api/v1/users/{id}/invitation", session, (*handler).resendInvite},
	{"PUT", "/api/v1/users/{id}/memberships/{site_id}", session, (*handler).putMembership},
	{"DELETE", "/api/v1/users/{id}/memberships/{site_id}", session, (*handler).deleteMembership},
	{"POST", "/api/v1/users/{id}/deactivate", session, (*handler).deactivate},
	{"POST", "/api/v1/users/{id}/reactivate", session, (*handler).reactivate},
	{"POST", "/api/v1/users/{id}/unlock", session, (*handler).unlock},
	{"POST", "/api/v1/users/{id}/reset-password", session, (*handler).resetPassword},

	{"POST", "/api/v1/site-invitations", session, (*handler).inviteToSite},
	{"GET", "/api/v1/sites/{id}/site-invitations", session, (*handler).siteInvitations},
	{"GET", "/api/v1/me/site-invitations", session, (*handler).mySiteInvitations},
	{"POST", "/api/v1/me/site-invitations/{id}/accept", session, (*handler).acceptSiteInvitation},
	{"POST", "/api/v1/me/site-invitations/{id}/decline", session, (*handler).declineSiteInvitation},
	{"GET", "/api/v1/me/can", session, (*handler).can},

	{"GET", "/api/v1/patients", session, (*handler).searchPatients},
	{"GET", "/api/v1/patients/{id}", session, (*handler).getPatient},
	{"POST", "/api/v1/patients/{id}/sharing", session, (*handler).setSharing},

	{"GET", "/api/v1/audit", session, (*handler).listAudit},
}

// Routes lists the API's operations (method and path pattern).
func Routes() []Route {
	out := make([]Route, len(routes))
	copy(out, routes)
	return out
}

type handler struct {
	svc *Service
	log *zap.Logger
	mux *http.ServeMux
}

// NewHandler returns the JSON API, serving every route under /api/v1/ (mount it at "/api/v1/"
// without stripping the prefix). Errors are {"error":{"code":…,"message":…}} with the matching
// 4xx status; sessions are Bearer tokens from POST /api/v1/login.
func NewHandler(svc *Service, logger *zap.Logger) http.Handler {
	if logger == nil {
		logger = zap.NewNop()
	}
	h := &handler{svc: svc, log: logger, mux: http.NewServeMux()}
	for _, rt := range routes {
		pattern := rt.Method + " " + rt.Path
		switch {
		case rt.Path == "/api/v1/openapi.yaml":
			h.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/yaml")
				_, _ = w.Write(OpenAPI)
			})
		case rt.Method == "GET" && rt.Path == "/api/v1/register":
			h.mux.HandleFunc(pattern, h.registerPage)
		case rt.Method == "POST" && rt.Path == "/api/v1/register":
			h.mux.HandleFunc(pattern, h.registerForm(h.wrap(rt)))
		default:
			h.mux.HandleFunc(pattern, h.wrap(rt))
		}
	}
	h.mux.HandleFunc("/api/v1/", h.noRoute)
	return h
}

// ServeHTTP adds the headers every answer carries and turns a panic into a 500.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			h.log.Error("admin api: panic", zap.String("method", r.Method), zap.String("pattern", r.Pattern), panicField(v))
			writeJSON(w, http.StatusInternalServerError, errorBody("internal", "internal error"))
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// noRoute answers paths no route matches: 405 when another method would match, else 404.
// panicField names a panic without its value, which could quote request data (patients, passwords):
// a runtime error's message, or only the value's type.
func panicField(v any) zap.Field {
	if re, ok := v.(runtime.Error); ok {
		return zap.String("panic", re.Error())
	}
	return zap.String("panic", fmt.Sprintf("%T", v))
}

func (h *handler) noRoute(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE"} {
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, p := h.mux.Handler(r2); p != "/api/v1/" && p != "" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", fmt.Sprintf("%s is not allowed here (allowed: %s)", r.Method, strings.Join(allow, ", "))))
		return
	}
	writeJSON(w, http.StatusNotFound, errorBody("no_route", "no such API endpoint: see /api/v1/openapi.yaml"))
}

type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Rule    string `json:"rule,omitempty"` // the authorization rule that denied the action
	} `json:"error"`
}

func errorBody(code, msg string) errorJSON {
	var e errorJSON
	e.Error.Code, e.Error.Message = code, msg
	return e
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	b, err := json.Marshal(v)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"code":"internal","message":"internal error"}}`))
		return
	}
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError answers err: its kind decides the status; internal errors are logged and shown
// only as "internal error".
func (h *handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsError(err)
	if e.Kind == KindInternal {
		if errors.Is(err, context.Canceled) {
			return
		}
		h.log.Error("admin api: internal error", zap.String("method", r.Method), zap.String("pattern", r.Pattern), zap.Error(err))
	}
	if e.Kind == KindUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vaxgate"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(e.RetryAfter.Seconds()))))
	}
	body := errorBody(e.Code, e.Message)
	body.Error.Rule = e.Rule
	writeJSON(w, e.Kind.HTTPStatus(), body)
}

func (h *handler) wrap(rt Route) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var a Actor
		if rt.access != public {
			var err error
			if a, err = h.authenticate(r); err != nil {
				h.writeError(w, r, err)
				return
			}
			if a.MustChangePassword && rt.access != pending {
				h.writeError(w, r, ErrPasswordChange)
				return
			}
		}
		status, body, err := rt.fn(h, r, a)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, status, body)
	}
}

func (h *handler) authenticate(r *http.Request) (Actor, error) {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return Actor{}, ErrUnauthenticated.With("authentication required: send Authorization: Bearer <token> (POST /api/v1/login)")
	}
	return h.svc.Authenticate(r.Context(), strings.TrimSpace(tok))
}

// decode reads a JSON request body into v: size-limited, unknown fields and trailing data
// refused.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &Error{Kind: KindInvalid, Code: "unsupported_media_type", Message: "the request body must be application/json"}
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return bodyError(err)
	}
	if err := dec.Decode(&struct{}{}); !errors.Is(err, io.EOF) {
		if err != nil {
			return bodyError(err)
		}
		return Invalid("the request body must hold one JSON object")
	}
	return nil
}

// errNoBody is decode's answer to an empty body; routes whose body is optional ignore it.
var errNoBody = &Error{Kind: KindInvalid, Code: "invalid", Message: "a JSON request body is required"}

func bodyError(err error) error {
	var (
		tooLarge *http.MaxBytesError
		syntax   *json.SyntaxError
		typ      *json.UnmarshalTypeError
		ae       *Error
	)
	switch {
	case errors.As(err, &tooLarge):
		return &Error{Kind: KindTooLarge, Code: "too_large", Message: fmt.Sprintf("the request body is larger than %d bytes", maxBody)}
	case errors.Is(err, io.EOF):
		return errNoBody
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return Invalid("the request body is not valid JSON")
	case errors.As(err, &typ):
		return Invalid("field %q must be a %s", typ.Field, typ.Type.String())
	case errors.As(err, &ae):
		return ae
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return Invalid("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return Invalid("the request body is not valid: %v", err)
}

func pathID(r *http.Request, name string) (int64, error) {
	v := r.PathValue(name)
	id, err := strconv.ParseInt(v, 10, 64)
	if err != nil || id <= 0 {
		return 0, Invalid("%s %q must be a positive integer", name, v)
	}
	return id, nil
}

func queryInt(r *http.Request, name string) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, Invalid("query parameter %s=%q must be a non-negative integer", name, v)
	}
	return n, nil
}

func queryTime(r *http.Request, name string) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if d, err := ParseDate(v); err == nil {
		return d.Time(), nil
	}
	return time.Time{}, Invalid("query parameter %s=%q must be an RFC 3339 time or a date", name, v)
}

type items[T any] struct {
	Items []T `json:"items"`
}

func list[T any](v []T) items[T] {
	if v == nil {
		v = []T{}
	}
	return items[T]{v}
}

// --- authentication ---

func (h *handler) login(r *http.Request, _ Actor) (int, any, error) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	res, err := h.svc.LoginFrom(r.Context(), in.Username, in.Password, host)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, res, nil
}

type registerInput struct {
	Token           string `json:"token"`
	Password        string `json:"password"`
	AcceptAgreement bool   `json:"accept_agreement"`
}

func (h *handler) register(r *http.Request, _ Actor) (int, any, error) {
	var in registerInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	u, err := h.svc.Register(r.Context(), in.Token, in.Password, in.AcceptAgreement)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, u, nil
}

func (h *handler) logout(r *http.Request, a Actor) (int, any, error) {
	if err := h.svc.Logout(r.Context(), a); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

func (h *handler) me(r *http.Request, a Actor) (int, any, error) {
	u, err := h.svc.Me(r.Context(), a)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, u, nil
}

func (h *handler) changePassword(r *http.Request, a Actor) (int, any, error) {
	var in struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	if err := h.svc.ChangePassword(r.Context(), a, in.CurrentPassword, in.NewPassword); err != nil {
		return 0, nil, err
	}
	return http.StatusNoContent, nil, nil
}

// --- organizations and sites ---

func (h *handler) listOrganizations(r *http.Request, a Actor) (int, any, error) {
	os, err := h.svc.ListOrganizations(r.Context(), a)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(os), nil
}

func (h *handler) createOrganization(r *http.Request, a Actor) (int, any, error) {
	var in OrganizationInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	o, err := h.svc.CreateOrganization(r.Context(), a, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, o, nil
}

func (h *handler) getOrganization(r *http.Request, a Actor) (int, any, error) {
	return byID(r, a, h.svc.Organization)
}

func (h *handler) listSites(r *http.Request, a Actor) (int, any, error) {
	org, err := queryInt(r, "organization_id")
	if err != nil {
		return 0, nil, err
	}
	f := SiteFilter{OrganizationID: org, Status: SiteStatus(r.URL.Query().Get("status"))}
	switch v := r.URL.Query().Get("needs_access_administrator"); v {
	case "", "false":
	case "true":
		f.NeedsAA = true
	default:
		return 0, nil, Invalid("needs_access_administrator=%q must be true or false", v)
	}
	sites, err := h.svc.ListSites(r.Context(), a, f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(sites), nil
}

func (h *handler) createSite(r *http.Request, a Actor) (int, any, error) {
	var in SiteInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	s, err := h.svc.CreateSite(r.Context(), a, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, s, nil
}

func (h *handler) getSite(r *http.Request, a Actor) (int, any, error) {
	return byID(r, a, h.svc.Site)
}

func (h *handler) setSiteStatus(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Status SiteStatus `json:"status"`
		GoLive Date       `json:"go_live_date"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	s, err := h.svc.SetSiteStatus(r.Context(), a, id, in.Status, in.GoLive)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s, nil
}

func (h *handler) addFacility(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		FacilityID string `json:"facility_id"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	s, err := h.svc.AddSiteFacility(r.Context(), a, id, in.FacilityID)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s, nil
}

func (h *handler) removeFacility(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	s, err := h.svc.RemoveSiteFacility(r.Context(), a, id, r.PathValue("facility"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, s, nil
}

func (h *handler) listCredentials(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	cs, err := h.svc.ListCredentials(r.Context(), a, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(cs), nil
}

func (h *handler) createCredential(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Transport   Transport `json:"transport"`
		Username    string    `json:"username"`
		Password    string    `json:"password"`
		FacilityID  string    `json:"facility_id"`
		SourceCIDR  string    `json:"source_cidr"`
		CertSubject string    `json:"cert_subject"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var c *SenderCredential
	switch in.Transport {
	case TransportSOAP:
		if in.SourceCIDR != "" || in.CertSubject != "" {
			return 0, nil, Invalid("a SOAP credential has username, password and facility_id only")
		}
		c, err = h.svc.CreateSOAPCredential(r.Context(), a, id, in.Username, in.Password, in.FacilityID)
	case TransportMLLP:
		if in.Username != "" || in.Password != "" || in.FacilityID != "" {
			return 0, nil, Invalid("an MLLP credential has source_cidr and/or cert_subject only")
		}
		c, err = h.svc.CreateMLLPCredential(r.Context(), a, id, in.SourceCIDR, in.CertSubject)
	default:
		return 0, nil, Invalid("transport must be soap or mllp")
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, c, nil
}

func (h *handler) revokeCredential(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	c, err := h.svc.RevokeCredential(r.Context(), a, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, c, nil
}

// --- users ---

func (h *handler) listUsers(r *http.Request, a Actor) (int, any, error) {
	site, err := queryInt(r, "site_id")
	if err != nil {
		return 0, nil, err
	}
	us, err := h.svc.ListUsers(r.Context(), a, site, UserStatus(r.URL.Query().Get("status")))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(us), nil
}

func (h *handler) searchUsers(r *http.Request, a Actor) (int, any, error) {
	q := r.URL.Query()
	m, err := h.svc.SearchUsers(r.Context(), a, UserQuery{FirstName: q.Get("first_name"), LastName: q.Get("last_name"), Email: q.Get("email")})
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(m), nil
}

func (h *handler) invite(r *http.Request, a Actor) (int, any, error) {
	var in InviteInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	inv, err := h.svc.Invite(r.Context(), a, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, inv, nil
}

func (h *handler) getUser(r *http.Request, a Actor) (int, any, error) {
	return byID(r, a, h.svc.User)
}

func (h *handler) updateUser(r *http.Request, a Actor) (int, any, error) {
	return byIDWithBody(r, a, h.svc.UpdateUser)
}

func (h *handler) resendInvite(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	inv, err := h.svc.ResendInvite(r.Context(), a, id, false)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, inv, nil
}

func (h *handler) putMembership(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	site, err := pathID(r, "site_id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Role         Role           `json:"role"`
		Designations *[]Designation `json:"designations"`
	}
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	var ds []Designation
	if in.Designations != nil {
		ds = *in.Designations
		if ds == nil {
			ds = []Designation{}
		}
	}
	u, err := h.svc.SetMembership(r.Context(), a, id, site, in.Role, ds)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, u, nil
}

func (h *handler) deleteMembership(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	site, err := pathID(r, "site_id")
	if err != nil {
		return 0, nil, err
	}
	u, err := h.svc.RemoveMembership(r.Context(), a, id, site)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, u, nil
}

// byID answers 200 with what op returns for the {id} of the path.
func byID[T any](r *http.Request, a Actor, op func(context.Context, Actor, int64) (T, error)) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	v, err := op(r.Context(), a, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

// byIDWithBody answers 200 with what op returns for the {id} of the path and the decoded body.
func byIDWithBody[In, T any](r *http.Request, a Actor, op func(context.Context, Actor, int64, In) (T, error)) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	var in In
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	v, err := op(r.Context(), a, id, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, v, nil
}

func (h *handler) deactivate(r *http.Request, a Actor) (int, any, error) {
	return byID(r, a, h.svc.Deactivate)
}

func (h *handler) reactivate(r *http.Request, a Actor) (int, any, error) {
	return byID(r, a, h.svc.Reactivate)
}

func (h *handler) unlock(r *http.Request, a Actor) (int, any, error) {
	return byID(r, a, h.svc.Unlock)
}

func (h *handler) resetPassword(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil && err != errNoBody { // identity: the body is optional here
		return 0, nil, err
	}
	u, generated, err := h.svc.ResetPassword(r.Context(), a, id, in.Password)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, struct {
		User              *User  `json:"user"`
		TemporaryPassword string `json:"temporary_password,omitempty"`
	}{u, generated}, nil
}

// --- invitations of existing users to sites, and the decision point's query form ---

func (h *handler) inviteToSite(r *http.Request, a Actor) (int, any, error) {
	var in SiteInvitationInput
	if err := decode(r, &in); err != nil {
		return 0, nil, err
	}
	inv, err := h.svc.InviteToSite(r.Context(), a, in)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, inv, nil
}

func (h *handler) siteInvitations(r *http.Request, a Actor) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	invs, err := h.svc.SiteInvitations(r.Context(), a, id)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(invs), nil
}

func (h *handler) mySiteInvitations(r *http.Request, a Actor) (int, any, error) {
	invs, err := h.svc.MySiteInvitations(r.Context(), a)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(invs), nil
}

func (h *handler) answerSiteInvitation(r *http.Request, a Actor, accept bool) (int, any, error) {
	id, err := pathID(r, "id")
	if err != nil {
		return 0, nil, err
	}
	inv, err := h.svc.AnswerSiteInvitation(r.Context(), a, id, accept)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, inv, nil
}

func (h *handler) acceptSiteInvitation(r *http.Request, a Actor) (int, any, error) {
	return h.answerSiteInvitation(r, a, true)
}

func (h *handler) declineSiteInvitation(r *http.Request, a Actor) (int, any, error) {
	return h.answerSiteInvitation(r, a, false)
}

// can answers the decision point for the caller: GET /api/v1/me/can?action=user.deactivate&user_id=7.
func (h *handler) can(r *http.Request, a Actor) (int, any, error) {
	q := r.URL.Query()
	act := Action(q.Get("action"))
	if _, ok := actionPhrase[act]; !ok {
		return 0, nil, Invalid("action %q is not one of the actions of docs/permissions.md", act)
	}
	var t Target
	var err error
	if t.SiteID, err = queryInt(r, "site_id"); err != nil {
		return 0, nil, err
	}
	if t.UserID, err = queryInt(r, "user_id"); err != nil {
		return 0, nil, err
	}
	if t.PatientID, err = queryInt(r, "patient_id"); err != nil {
		return 0, nil, err
	}
	t.Role = Role(q.Get("role"))
	return http.StatusOK, h.svc.Can(r.Context(), a, act, t), nil
}

// --- patients and audit ---

func (h *handler) searchPatients(r *http.Request, a Actor) (int, any, error) {
	q := r.URL.Query()
	pq := PatientQuery{Env: q.Get("env"), FamilyName: q.Get("family_name"), GivenName: q.Get("given_name")}
	if v := q.Get("birth_date"); v != "" {
		d, err := ParseDate(v)
		if err != nil {
			return 0, nil, err
		}
		pq.BirthDate = d
	}
	ps, err := h.svc.SearchPatients(r.Context(), a, pq)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(ps), nil
}

func (h *handler) getPatient(r *http.Request, a Actor) (int, any, error) {
	return byID(r, a, h.svc.LookupPatient)
}

func (h *handler) setSharing(r *http.Request, a Actor) (int, any, error) {
	return byIDWithBody(r, a, h.svc.SetSharing)
}

func (h *handler) listAudit(r *http.Request, a Actor) (int, any, error) {
	q := r.URL.Query()
	var f AuditFilter
	var err error
	site, err := queryInt(r, "site_id")
	if err != nil {
		return 0, nil, err
	}
	if site != 0 {
		f.SiteIDs = []int64{site}
	}
	if f.ActorUserID, err = queryInt(r, "actor_user_id"); err != nil {
		return 0, nil, err
	}
	if f.BeforeID, err = queryInt(r, "before_id"); err != nil {
		return 0, nil, err
	}
	limit, err := queryInt(r, "limit")
	if err != nil {
		return 0, nil, err
	}
	f.Limit = int(min(limit, 1000))
	if f.Since, err = queryTime(r, "since"); err != nil {
		return 0, nil, err
	}
	if f.Until, err = queryTime(r, "until"); err != nil {
		return 0, nil, err
	}
	f.Action, f.TargetType, f.TargetID = q.Get("action"), q.Get("target_type"), q.Get("target_id")
	entries, err := h.svc.ListAudit(r.Context(), a, f)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, list(entries), nil
}
