package main

import (
	"net/http"
	"net/http/pprof"
)

// registerPprof serves the Go runtime profiles under /debug/pprof/ when enabled (config
// http.pprof, default false). Off by default: profiles reveal internals and a CPU profile costs
// CPU, and the HTTP listener may face the network. With it on, a profile of a load test is
//
//	go tool pprof -http=: 'http://HOST:PORT/debug/pprof/profile?seconds=20'
func registerPprof(mux *http.ServeMux, enabled bool) {
	if !enabled {
		return
	}
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
