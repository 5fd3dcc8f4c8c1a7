package report

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"strings"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
)

// Authorizer is the admin module's authentication and its one authorization decision point
// (admin.Service implements it): a Bearer session token names an actor; reading a site's reports
// is admin.ActionViewSiteReports, signing off its readiness admin.ActionSignOffCertification.
type Authorizer interface {
	Authenticate(ctx context.Context, token string) (admin.Actor, error)
	Authorize(ctx context.Context, a admin.Actor, act admin.Action, t admin.Target) error
}

// Route is one operation of the report API.
type Route struct {
	Method string
	Path   string // net/http pattern path
	// Access says who may call it, for the permission matrix.
	Access string
}

// Routes lists the report API's operations.
func Routes() []Route {
	return []Route{
		{"GET", "/api/v1/sites/{id}/certification", "admin.ActionViewSiteReports"},
		{"POST", "/api/v1/sites/{id}/certification/sign-off", "admin.ActionSignOffCertification (registry staff)"},
		{"GET", "/api/v1/sites/{id}/quality", "admin.ActionViewSiteReports"},
		{"POST", "/api/v1/sites/{id}/reconcile", "admin.ActionViewSiteReports"},
	}
}

// maxReconcileBody bounds the body of a reconcile request (a file of control IDs).
const maxReconcileBody = 64 << 20

// Handler serves the report API under /api/v1/sites/{id}/…, with the admin API's
// authentication, error format ({"error":{"code","message"}}) and headers.
type Handler struct {
	svc  *Service
	auth Authorizer
	log  *zap.Logger
	mux  *http.ServeMux
}

// NewHandler returns the report API.
func NewHandler(svc *Service, auth Authorizer, log *zap.Logger) *Handler {
	if log == nil {
		log = zap.NewNop()
	}
	h := &Handler{svc: svc, auth: auth, log: log, mux: http.NewServeMux()}
	fns := map[string]func(*http.Request, admin.Actor, *Site) (int, any, error){
		"/api/v1/sites/{id}/certification":          h.certification,
		"/api/v1/sites/{id}/certification/sign-off": h.signOff,
		"/api/v1/sites/{id}/quality":                h.quality,
		"/api/v1/sites/{id}/reconcile":              h.reconcile,
	}
	allowed := map[string][]string{}
	for _, rt := range Routes() {
		h.mux.HandleFunc(rt.Method+" "+rt.Path, h.wrap(fns[rt.Path]))
		allowed[rt.Path] = append(allowed[rt.Path], rt.Method)
	}
	for path, methods := range allowed {
		h.mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			allow := strings.Join(methods, ", ")
			w.Header().Set("Allow", allow)
			writeErrorBody(w, http.StatusMethodNotAllowed, "method_not_allowed",
				fmt.Sprintf("%s is not allowed here (allowed: %s)", r.Method, allow))
		})
	}
	return h
}

// Register adds the report routes to mux (beside the admin API's "/api/v1/", which they are
// more specific than).
func (h *Handler) Register(mux *http.ServeMux) {
	seen := map[string]bool{}
	for _, rt := range Routes() {
		if !seen[rt.Path] {
			seen[rt.Path] = true
			mux.Handle(rt.Path, h)
		}
	}
}

// ServeHTTP serves the report routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			field := zap.String("panic", fmt.Sprintf("%T", v))
			if re, ok := v.(runtime.Error); ok {
				field = zap.String("panic", re.Error())
			}
			h.log.Error("report api: panic", zap.String("method", r.Method), zap.String("pattern", r.Pattern), field)
			writeError(w, &admin.Error{Kind: admin.KindInternal, Code: "internal", Message: "internal error"})
		}
	}()
	h.mux.ServeHTTP(w, r)
}

// csvBody is an answer written as CSV instead of JSON.
type csvBody interface{ WriteCSV(io.Writer) error }

type asCSV struct{ csvBody }

func (h *Handler) wrap(fn func(*http.Request, admin.Actor, *Site) (int, any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		status, body, err := h.serve(r, fn)
		if err != nil {
			e := admin.AsError(err)
			if e.Kind == admin.KindInternal {
				if errors.Is(err, context.Canceled) {
					return
				}
				h.log.Error("report api: internal error", zap.String("method", r.Method), zap.String("pattern", r.Pattern), zap.Error(err))
			}
			writeError(w, e)
			return
		}
		if c, ok := body.(asCSV); ok {
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.WriteHeader(status)
			if err := c.WriteCSV(w); err != nil {
				h.log.Warn("report api: write CSV", zap.Error(err))
			}
			return
		}
		writeJSON(w, status, body)
	}
}

// serve authenticates the request, checks the actor may see the site, and runs fn.
func (h *Handler) serve(r *http.Request, fn func(*http.Request, admin.Actor, *Site) (int, any, error)) (int, any, error) {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if auth == "" || !ok || !strings.EqualFold(scheme, "Bearer") {
		return 0, nil, admin.ErrUnauthenticated.With("authentication required: send Authorization: Bearer <token> (POST /api/v1/login)")
	}
	a, err := h.auth.Authenticate(r.Context(), strings.TrimSpace(tok))
	if err != nil {
		return 0, nil, err
	}
	if a.MustChangePassword {
		return 0, nil, admin.ErrPasswordChange
	}
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, nil, admin.Invalid("id %q must be a positive integer", r.PathValue("id"))
	}
	if err := h.auth.Authorize(r.Context(), a, admin.ActionViewSiteReports, admin.Target{SiteID: id}); err != nil {
		if errors.Is(err, admin.ErrNotFound) {
			return 0, nil, admin.NotFound("site %d not found", id)
		}
		return 0, nil, err
	}
	site, err := h.svc.Site(r.Context(), id, "")
	if errors.Is(err, ErrSiteNotFound) {
		return 0, nil, admin.NotFound("site %d not found", id)
	}
	if err != nil {
		return 0, nil, err
	}
	return fn(r, a, site)
}

func wantsCSV(r *http.Request) bool {
	if f := r.URL.Query().Get("format"); f != "" {
		return strings.EqualFold(f, "csv")
	}
	return strings.Contains(r.Header.Get("Accept"), "text/csv")
}

func (h *Handler) certification(r *http.Request, _ admin.Actor, site *Site) (int, any, error) {
	c, err := h.svc.Certification(r.Context(), site)
	if err != nil {
		return 0, nil, err
	}
	if wantsCSV(r) {
		return http.StatusOK, asCSV{c}, nil
	}
	return http.StatusOK, c, nil
}

func (h *Handler) signOff(r *http.Request, a admin.Actor, site *Site) (int, any, error) {
	if err := h.auth.Authorize(r.Context(), a, admin.ActionSignOffCertification, admin.Target{SiteID: site.ID}); err != nil {
		return 0, nil, err
	}
	var in struct {
		Item   string `json:"item"`
		Note   string `json:"note"`
		Revoke bool   `json:"revoke"`
	}
	if err := decodeJSON(r, &in, 64<<10); err != nil {
		return 0, nil, err
	}
	so, err := h.svc.SignOff(r.Context(), a, site, in.Item, in.Note, in.Revoke, "")
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, so, nil
}

// period reads from, to and env of the query.
func period(r *http.Request, site *Site, defEnv string) (Period, error) {
	q := r.URL.Query()
	from, to, err := ParseBounds(q.Get("from"), q.Get("to"))
	if err != nil {
		return Period{}, admin.Invalid("%s", strings.TrimPrefix(err.Error(), ErrBadPeriod.Error()+": "))
	}
	env, err := ParseEnv(q.Get("env"), defEnv)
	if err != nil {
		return Period{}, admin.Invalid("%s", strings.TrimPrefix(err.Error(), ErrBadPeriod.Error()+": "))
	}
	return Period{SiteID: site.ID, Env: env, From: from, To: to}, nil
}

// invalidPeriod turns ErrBadPeriod into a 400.
func invalidPeriod(err error) error {
	if errors.Is(err, ErrBadPeriod) {
		return admin.Invalid("%s", strings.TrimPrefix(err.Error(), ErrBadPeriod.Error()+": "))
	}
	return err
}

func (h *Handler) quality(r *http.Request, _ admin.Actor, site *Site) (int, any, error) {
	p, err := period(r, site, DefaultEnv(site))
	if err != nil {
		return 0, nil, err
	}
	q, err := h.svc.Quality(r.Context(), site, p)
	if err != nil {
		return 0, nil, invalidPeriod(err)
	}
	if wantsCSV(r) {
		return http.StatusOK, asCSV{q}, nil
	}
	return http.StatusOK, q, nil
}

// reconcile takes the site's claim as the body: a file of control IDs (text/plain), or JSON
// {"count": N} or {"control_ids": [...]}.
func (h *Handler) reconcile(r *http.Request, _ admin.Actor, site *Site) (int, any, error) {
	p, err := period(r, site, "P")
	if err != nil {
		return 0, nil, err
	}
	var claim *Claim
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case mt == "text/plain" || mt == "text/csv":
		claim, err = ParseControlIDs(http.MaxBytesReader(nil, r.Body, maxReconcileBody))
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return 0, nil, &admin.Error{Kind: admin.KindTooLarge, Code: "too_large", Message: fmt.Sprintf("the control-ID file is larger than %d bytes", maxReconcileBody)}
		case errors.Is(err, ErrClaimTooLarge):
			return 0, nil, admin.Invalid("%s", strings.TrimPrefix(err.Error(), "report: "))
		case err != nil:
			return 0, nil, admin.Invalid("the control-ID file could not be read: %v", err)
		}
	case mt == "application/json" || mt == "":
		var in struct {
			Count      *int64   `json:"count"`
			ControlIDs []string `json:"control_ids"`
		}
		if err := decodeJSON(r, &in, maxReconcileBody); err != nil {
			return 0, nil, err
		}
		switch {
		case in.Count != nil && in.ControlIDs != nil:
			return 0, nil, admin.Invalid("give either count or control_ids, not both")
		case in.Count != nil:
			if *in.Count < 0 {
				return 0, nil, admin.Invalid("count must not be negative")
			}
			claim = &Claim{Count: *in.Count}
		case in.ControlIDs != nil:
			claim, err = ClaimOf(in.ControlIDs)
			if err != nil {
				return 0, nil, admin.Invalid("%s", strings.TrimPrefix(err.Error(), "report: "))
			}
		default:
			return 0, nil, admin.Invalid("the body needs count or control_ids (or send the control-ID file as text/plain)")
		}
	default:
		return 0, nil, &admin.Error{Kind: admin.KindInvalid, Code: "unsupported_media_type", Message: "send the control IDs as text/plain, or JSON {\"count\": N} or {\"control_ids\": [...]}"}
	}
	rec, err := h.svc.Reconcile(r.Context(), site, p, claim)
	if err != nil {
		return 0, nil, invalidPeriod(err)
	}
	if wantsCSV(r) {
		return http.StatusOK, asCSV{rec}, nil
	}
	return http.StatusOK, rec, nil
}

// decodeJSON reads one JSON object of at most limit bytes, refusing unknown fields.
func decodeJSON(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			return &admin.Error{Kind: admin.KindTooLarge, Code: "too_large", Message: fmt.Sprintf("the request body is larger than %d bytes", limit)}
		case errors.Is(err, io.EOF):
			return admin.Invalid("a JSON request body is required")
		}
		return admin.Invalid("the request body is not valid: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return admin.Invalid("the request body must hold one JSON object")
	}
	return nil
}

// writeError answers e with its kind's status, in the admin API's error format.
func writeError(w http.ResponseWriter, e *admin.Error) {
	if e.Kind == admin.KindUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vaxgate"`)
	}
	writeErrorRule(w, e.Kind.HTTPStatus(), e.Code, e.Rule, e.Message)
}

// writeErrorBody writes {"error":{"code":…,"message":…}}.
func writeErrorBody(w http.ResponseWriter, status int, code, message string) {
	writeErrorRule(w, status, code, "", message)
}

// writeErrorRule writes {"error":{"code":…,"rule":…,"message":…}}, the rule naming the
// authorization rule that denied the action (as the admin API does).
func writeErrorRule(w http.ResponseWriter, status int, code, rule, message string) {
	var body struct {
		Error struct {
			Code    string `json:"code"`
			Rule    string `json:"rule,omitempty"`
			Message string `json:"message"`
		} `json:"error"`
	}
	body.Error.Code, body.Error.Rule, body.Error.Message = code, rule, message
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"error":{"code":"internal","message":"internal error"}}` + "\n"))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
