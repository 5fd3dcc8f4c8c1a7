package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/soap"
	"github.com/vaxgate/vaxgate/portal"
	"github.com/vaxgate/vaxgate/report"
	"github.com/vaxgate/vaxgate/store"
)

// newHTTPMux serves SOAP, the admin API, the portal, metrics and health on one listener.
func newHTTPMux(c *config, db *store.DB, p *ingest.Pipeline, svc *admin.Service, reg *prometheus.Registry, log *zap.Logger) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	soapHandler, err := soap.NewHandler(soap.Options{
		Submitter: p, Senders: db, MaxMessageSize: c.SOAP.MaxMessageSize,
		MultiMessage: c.SOAP.MultiMessage, RetryAfter: c.SOAP.RetryAfter,
		PublicURL: c.HTTP.PublicURL, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("/soap", soapHandler)
	mux.Handle("/api/v1/", admin.NewHandler(svc, log))
	// The registry portal (web pages) at "/", its site report pages over the report service the
	// report API uses too; it also answers the registration link of invitation
	// emails (GET /api/v1/register) with its registration page.
	rs, err := newReportService(db, c.Report.Plan)
	if err != nil {
		return nil, err
	}
	web, err := portal.New(portal.Options{Service: svc, Intake: db, Reports: rs, Logger: log,
		Secure: strings.HasPrefix(strings.ToLower(c.HTTP.PublicURL), "https://")})
	if err != nil {
		return nil, err
	}
	mux.Handle("/", web)
	mux.Handle("GET /api/v1/register", web)
	report.NewHandler(rs, svc, log).Register(mux)
	registerPprof(mux, c.HTTP.Pprof)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := db.Ready(ctx); err != nil {
			log.Warn("not ready", zap.Error(err))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "reason": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	return mux, nil
}

// newHTTPServer is the HTTP server with the timeouts that keep slow and idle clients from holding
// connections: http.read_header_timeout for the request line and headers, http.read_timeout for
// the whole request with its body (a body trickling in is cut off), http.write_timeout for the
// response, http.idle_timeout between requests on a keep-alive connection. The limiter follows
// its connections' states, so that idle ones make room when http.max_connections are open.
func newHTTPServer(c *config, h http.Handler, l *connLimiter, log *zap.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: c.HTTP.ReadHeaderTimeout,
		ReadTimeout:       c.HTTP.ReadTimeout,
		WriteTimeout:      c.HTTP.WriteTimeout,
		IdleTimeout:       c.HTTP.IdleTimeout,
		ConnState:         l.ConnState,
		ErrorLog:          zap.NewStdLog(log),
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
