// Package mllp is vaxgate's MLLP transport: HL7 v2 over TCP (optionally TLS), each message framed
// as 0x0B message 0x1C 0x0D.
//
// The Server hands every framed message to the intake pipeline (a Starter) and writes the ACK the
// pipeline returns on the same connection. Per connection, one goroutine reads frames and starts
// them in arrival order, and another waits for their ACKs and writes them in the same order, so a
// sender may pipeline messages: they share the store's group commits and are still answered in
// order. Memory is bounded whatever a sender does: a connection holds at most one frame buffer of
// MaxMessageSize, and at most MaxInFlight messages (MaxInFlightBytes bytes) read but not yet
// answered; a frame larger than MaxMessageSize is discarded as it streams in and answered with an
// AR built from its head.
//
// The Client is the other side, used by `vaxgate send` and the load generator: one message at a
// time (Send) or a pipelined stream with a window (SendPipelined).
package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
)

// Defaults applied to zero Options fields.
const (
	DefaultMaxMessageSize = 4 << 20
	DefaultReadTimeout    = 30 * time.Second
	DefaultIdleTimeout    = 5 * time.Minute
	DefaultWriteTimeout   = 30 * time.Second
	DefaultMaxConnections = 1024
	DefaultMaxInFlight    = 64
)

// senderLookupTimeout bounds the credential lookup made once per connection; senderRetryInterval
// is how often a connection retries it after an internal failure (every frame meanwhile gets an
// AR 207 "internal error", never a misleading "unknown sender").
const (
	senderLookupTimeout = 10 * time.Second
	senderRetryInterval = time.Second
)

// Starter is the intake pipeline as the MLLP server sees it (ingest.Pipeline implements it). Start
// is called in arrival order from one goroutine per connection and must enqueue the message for
// commit before it returns, so that messages started in order are committed in order; the Pending's
// Wait returns the ACK once the records are committed.
type Starter interface {
	Start(ctx context.Context, env ingest.Envelope) ingest.Pending
}

// Options configure a Server. Zero durations and sizes take the defaults above; a negative
// duration disables that timeout.
type Options struct {
	Starter Starter        // required
	Senders ingest.Senders // required: identifies each connection's sender by address or certificate

	// TLSConfig, when set, makes the server speak TLS. To identify senders by client certificate,
	// set ClientCAs and ClientAuth (VerifyClientCertIfGiven lets address-identified senders connect
	// without one): the verified leaf certificate's Subject.String() is passed to Senders.
	TLSConfig *tls.Config

	// MaxMessageSize is the largest frame accepted (default 4 MiB). A larger frame is answered AR.
	MaxMessageSize int
	// MaxInFlightBytes bounds, per connection, the bytes of messages read and not yet answered;
	// default MaxMessageSize. One message is always admitted when nothing else is in flight.
	MaxInFlightBytes int
	// ReadTimeout is the time a started frame (from its 0x0B) has to arrive completely, however
	// its bytes trickle in, so it must allow the largest message at the slowest sender's
	// bandwidth (default 30s). It also limits the TLS handshake (IdleTimeout does when it is
	// disabled). Time the server spends with a full window is not charged to the sender.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection that has had no frames and no ACKs for this long (default
	// 5m). A connection whose messages are still being committed is not idle.
	IdleTimeout time.Duration
	// WriteTimeout is the time the sender has to take each ACK off the wire (default 30s).
	WriteTimeout time.Duration
	// MaxConnections bounds the open connections (default 1024); beyond it, connections are
	// accepted and closed at once, and counted.
	MaxConnections int
	// MaxInFlight is the per-connection pipelining window: messages read and not yet answered
	// (default 64). When it is full the server stops reading, and TCP pushes back on the sender.
	MaxInFlight int

	// ACK builds the AR the server answers with itself when the pipeline cannot (a failed sender
	// lookup, a pipeline that returned no ACK). Default: ack.NewBuilder("vaxgate", ack.DefaultPolicy).
	ACK *ack.Builder

	Logger     *zap.Logger           // default: no logging
	Registerer prometheus.Registerer // nil: metrics are kept but not registered
	// Clock stamps Envelope.ReceivedAt (default time.Now). Timeouts always use the real clock,
	// because socket deadlines do.
	Clock func() time.Time
}

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or Close.
var ErrServerClosed = errors.New("mllp: server closed")

// Server is an MLLP server. Create it with NewServer.
type Server struct {
	o       Options
	log     *zap.Logger
	m       *metrics
	ack     *ack.Builder
	clock   func() time.Time
	connSeq atomic.Uint64

	// ctx is handed to Start and Wait. It is canceled only when Shutdown gives up (or Close), so
	// a message already read is processed even if its sender disconnects meanwhile.
	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closing   bool
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	connWG    sync.WaitGroup
	addr      net.Addr
}

// NewServer validates the options, applies the defaults and registers the metrics.
func NewServer(o Options) (*Server, error) {
	if o.Starter == nil {
		return nil, errors.New("mllp: options: Starter is required")
	}
	if o.Senders == nil {
		return nil, errors.New("mllp: options: Senders is required")
	}
	if o.MaxMessageSize < 0 || o.MaxInFlightBytes < 0 || o.MaxConnections < 0 || o.MaxInFlight < 0 {
		return nil, errors.New("mllp: options: sizes and counts must not be negative")
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxInFlightBytes == 0 {
		o.MaxInFlightBytes = o.MaxMessageSize
	}
	if o.MaxInFlightBytes < o.MaxMessageSize {
		return nil, fmt.Errorf("mllp: options: MaxInFlightBytes %d is smaller than MaxMessageSize %d", o.MaxInFlightBytes, o.MaxMessageSize)
	}
	o.ReadTimeout = durationOr(o.ReadTimeout, DefaultReadTimeout)
	o.IdleTimeout = durationOr(o.IdleTimeout, DefaultIdleTimeout)
	o.WriteTimeout = durationOr(o.WriteTimeout, DefaultWriteTimeout)
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.ACK == nil {
		o.ACK = ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	s := &Server{
		o:         o,
		log:       o.Logger,
		m:         m,
		ack:       o.ACK,
		clock:     o.Clock,
		listeners: make(map[*net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// durationOr maps the Options convention (0 = default, negative = disabled) to a duration where 0
// means disabled.
func durationOr(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}

// ListenAndServe listens on the TCP address addr and serves on it.
func (s *Server) ListenAndServe(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("mllp: listen %s: %w", addr, err)
	}
	return s.Serve(l)
}

// Addr is the address of the listener the server is serving on (the first one, if several), or
// nil before Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Serve accepts connections on l and serves each in its own goroutines until Shutdown or Close,
// when it returns ErrServerClosed. It closes l when it returns.
func (s *Server) Serve(l net.Listener) error {
	if !s.trackListener(&l) {
		l.Close()
		return ErrServerClosed
	}
	defer s.untrackListener(&l)
	var backoff time.Duration
	for {
		nc, err := l.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			if isTransientAcceptError(err) {
				// Out of file descriptors or buffers: wait for connections to close rather
				// than give up serving.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("mllp accept failed; retrying", zap.Error(err), zap.Duration("backoff", backoff))
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("mllp: accept: %w", err)
		}
		backoff = 0
		c, ok := s.admit(nc)
		if !ok {
			continue
		}
		go c.serve()
	}
}

func isTransientAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM) ||
		errors.Is(err, syscall.ECONNABORTED)
}

// admit registers a new connection, or closes it when the server is full or shutting down.
func (s *Server) admit(nc net.Conn) (*conn, bool) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return nil, false
	}
	if len(s.conns) >= s.o.MaxConnections {
		s.mu.Unlock()
		// Closing at once (a FIN, no data) tells a well-behaved sender to retry later; nothing
		// was read from it, so nothing is left unanswered.
		s.m.rejected.Inc()
		s.log.Warn("mllp connection refused: too many connections",
			zap.String("remote", nc.RemoteAddr().String()), zap.Int("max_connections", s.o.MaxConnections))
		nc.Close()
		return nil, false
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.m.connections.Inc()
	s.m.connectionsTotal.Inc()
	return c, true
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.m.connections.Dec()
	s.connWG.Done()
}

func (s *Server) trackListener(l *net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.listeners[l] = struct{}{}
	if s.addr == nil {
		s.addr = (*l).Addr()
	}
	return true
}

func (s *Server) untrackListener(l *net.Listener) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.listeners[l]; ok {
		(*l).Close()
		delete(s.listeners, l)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// beginClose stops accepting and returns the open connections.
func (s *Server) beginClose() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	for l := range s.listeners {
		(*l).Close()
		delete(s.listeners, l)
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}

// Shutdown stops accepting connections, stops reading new messages (a frame being received is
// still completed, within ReadTimeout), lets every message already read be committed and its ACK
// written, then closes the connections. It returns nil when all that is done, or ctx.Err() when
// ctx expires first, after closing the remaining connections at once.
func (s *Server) Shutdown(ctx context.Context) error {
	for _, c := range s.beginClose() {
		c.stopReading()
	}
	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.Close()
		return fmt.Errorf("mllp: shutdown: %w", ctx.Err())
	}
}

// Close closes the listeners and every connection at once. Messages already handed to the
// pipeline may still be committed, but their ACKs are not sent (the senders will resend them, and
// the registry recognises the resends). Prefer Shutdown.
func (s *Server) Close() error {
	conns := s.beginClose()
	s.cancel()
	for _, c := range conns {
		c.abort()
	}
	return nil
}
