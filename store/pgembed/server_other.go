//go:build !unix

package pgembed

import (
	"context"
	"fmt"
	"runtime"
)

// Server is a running private PostgreSQL server (unsupported on this platform).
type Server struct{}

// Start reports that a private server is not supported on this platform: set
// VAXGATE_DATABASE_URL to a PostgreSQL server instead.
func Start(context.Context, Options) (*Server, error) {
	return nil, fmt.Errorf("pgembed: a private PostgreSQL is not supported on %s: set VAXGATE_DATABASE_URL", runtime.GOOS)
}

// URL returns "".
func (*Server) URL() string { return "" }

// AdminURL returns "".
func (*Server) AdminURL(string) string { return "" }

// Port returns 0.
func (*Server) Port() int { return 0 }

// DataDir returns "".
func (*Server) DataDir() string { return "" }

// Done returns a closed channel.
func (*Server) Done() <-chan struct{} { c := make(chan struct{}); close(c); return c }

// Stop does nothing.
func (*Server) Stop(context.Context) error { return nil }
