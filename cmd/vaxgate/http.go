package main

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/admin"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/soap"
	"github.com/vaxgate/vaxgate/store"
)

// newHTTPMux serves SOAP, the admin API, metrics and health on one listener.
func newHTTPMux(c *config, db *store.DB, p *ingest.Pipeline, svc *admin.Service, reg *prometheus.Registry, log *zap.Logger) (*http.ServeMux, error) {
	mux := http.NewServeMux()
	soapHandler, err := soap.NewHandler(soap.Options{
		Submitter: p, Senders: db, MaxMessageSize: c.SOAP.MaxMessageSize,
		PublicURL: c.HTTP.PublicURL, Logger: log, Registerer: reg,
	})
	if err != nil {
		return nil, err
	}
	mux.Handle("/soap", soapHandler)
	mux.Handle("/api/v1/", admin.NewHandler(svc, log))
	reports, err := newReportHandler(c, db, svc, log)
	if err != nil {
		return nil, err
	}
	reports.Register(mux)
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

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
