// Package mllp is vaxgate's MLLP transport: HL7 v2 over TCP (optionally TLS), each message framed
// as 0x0B message 0x1C 0x0D.
//
// The Server hands every framed message to the intake pipeline (a Starter) and writes the ACK the
// pipeline returns on the same connection. Per connection, one goroutine reads frames and starts
// them in arrival order, and another waits for their ACKs and writes them in the same order, so a
// sender may pipeline messages: they share the store's group commits and are still answered in
// order. Memory is bounded whatever a sender does: a connection holds the frame it is receiving
// (in memory that grows with the bytes that have actually arrived, up to MaxMessageSize, and is
// returned to the system when the frame or the connection ends), and at most MaxInFlight messages
// read but not yet answered, whose estimated cost (the message, its processing and its ACK) stays
// within MaxInFlightBytes, and within MaxMemory over all connections; a frame larger than
// MaxMessageSize is discarded as it streams in and answered with an AR built from its head.
//
// Connection slots are shared fairly: an address that no MLLP credential names may hold at most
// MaxConnectionsPerSource connections and no more than MaxConnections-ReservedConnections in all,
// so that registered senders always find a slot; a connection must send a valid HL7 frame within
// HandshakeTimeout of connecting, frames that are not HL7 do not keep a connection alive, and
// MaxJunkFrames of them in a row close it. The sender is identified at the first frame and looked
// up again once its identification is older than SenderTTL, so that a revoked credential or a
// site taken out of production stops being honoured on connections that are already open.
//
// The Client is the other side, used by `vaxgate send` and the load generator: one message at a
// time (Send) or a pipelined stream with a window (SendPipelined).
package mllp

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
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

	DefaultMaxConnectionsPerSource = 32
	DefaultHandshakeTimeout        = 10 * time.Second
	DefaultMaxJunkFrames           = 3
	DefaultSenderTTL               = 5 * time.Second
	DefaultProcessingFactor        = 8
	DefaultMaxMemory               = 1 << 30
	DefaultACKReserve              = 32 << 10
)

// senderLookupTimeout bounds a credential lookup; senderRetryInterval is how often a connection
// retries it after an internal failure (every frame meanwhile gets an AR 207 "internal error",
// never a misleading "unknown sender").
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
	// MaxInFlightBytes bounds, per connection, what the messages read and not yet answered cost
	// in memory: each message counts its own size, ProcessingFactor times its size for its
	// processing, and ACKReserve for its ACK (its actual size once it is known). Default: the
	// cost of one message of MaxMessageSize. One message is always admitted when nothing else is
	// in flight.
	MaxInFlightBytes int
	// MaxMemory bounds what the messages in flight on all connections cost together (default
	// 1 GiB, never less than one message of MaxMessageSize). When it is reached, connections stop
	// reading until answers free it, and TCP pushes back on their senders. Frames being received
	// are bounded apart: each connection holds at most one, up to MaxMessageSize.
	MaxMemory int64
	// ProcessingFactor is the memory a message takes while it is parsed, decoded, validated and
	// stored, as a multiple of its size (default 8: BenchmarkProcessingMemory measures 9 to 12
	// bytes allocated per byte of message for ordinary VXU, of which only part is live at once).
	ProcessingFactor float64
	// ACKReserve is what a message's ACK is assumed to cost until it is known (default 32 KiB).
	ACKReserve int
	// ReadTimeout is the time a started frame (from its 0x0B) has to arrive completely, however
	// its bytes trickle in, so it must allow the largest message at the slowest sender's
	// bandwidth (default 30s). It also limits the TLS handshake (IdleTimeout does when it is
	// disabled). Time the server spends with a full window is not charged to the sender.
	ReadTimeout time.Duration
	// IdleTimeout closes a connection that has had no HL7 frames and no ACKs to them for this
	// long (default 5m); junk and frames that are not HL7 do not count. A connection whose
	// messages are still being committed is not idle.
	IdleTimeout time.Duration
	// WriteTimeout is the time the sender has to take each ACK off the wire (default 30s): at
	// least that, and at most an eighth more (the deadline is renewed only when less than
	// WriteTimeout is left, not at every ACK).
	WriteTimeout time.Duration
	// MaxConnections bounds the open connections (default 1024); beyond it, connections are
	// accepted and closed at once, and counted.
	MaxConnections int
	// MaxConnectionsPerSource bounds the connections one IP address may hold when no MLLP
	// credential's address range contains it (default 32; negative: no limit).
	MaxConnectionsPerSource int
	// ReservedConnections of the MaxConnections are kept for known senders: addresses inside a
	// credential's range (see SourceRanges) and, when TLS verifies client certificates,
	// connections that present a verified one (default MaxConnections/4; negative: none).
	ReservedConnections int
	// HandshakeTimeout is the time a new connection has to complete its TLS handshake and send
	// a valid HL7 frame, or to start one (a frame that begins with MSH, FHS or BHS then has
	// ReadTimeout to complete). Default 10s. Connections of known senders (an address inside a
	// credential's range, or a verified client certificate) need only complete the TLS
	// handshake in that time: interface engines keep idle connections open, and IdleTimeout
	// applies to them.
	HandshakeTimeout time.Duration
	// MaxJunkFrames closes a connection after this many frames in a row that are not HL7 (each
	// answered AR); default 3, negative: never. Frames that are not HL7 never count as activity
	// for HandshakeTimeout or IdleTimeout.
	MaxJunkFrames int
	// SenderTTL is how long a sender lookup is trusted: a connection's sender is looked up again
	// (through a cache shared by all connections) at its first message after that, so a revoked
	// credential or a site's status change takes effect within SenderTTL. Default 5s; negative:
	// every message is looked up.
	SenderTTL time.Duration
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
	memory  budget // the cost of the messages in flight on all connections
	chunks  *chunkAlloc
	senders *senderCache
	known   knownSources

	// ctx is handed to Start and Wait. It is canceled only when Shutdown gives up (or Close), so
	// a message already read is processed even if its sender disconnects meanwhile.
	ctx    context.Context
	cancel context.CancelFunc

	refusals logEvery // refused connections, logged at most once a second

	mu        sync.Mutex
	closing   bool
	listeners map[*net.Listener]struct{}
	conns     map[*conn]struct{}
	perSource map[netip.Addr]int // connections by source address, of sources not known
	general   int                // connections in the unreserved slots
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
	if o.MaxMessageSize < 0 || o.MaxInFlightBytes < 0 || o.MaxConnections < 0 || o.MaxInFlight < 0 ||
		o.ProcessingFactor < 0 || o.ACKReserve < 0 {
		return nil, errors.New("mllp: options: sizes, counts and factors must not be negative")
	}
	if o.MaxMessageSize == 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.ProcessingFactor == 0 {
		o.ProcessingFactor = DefaultProcessingFactor
	}
	if o.ACKReserve == 0 {
		o.ACKReserve = DefaultACKReserve
	}
	if o.MaxInFlightBytes == 0 {
		o.MaxInFlightBytes = messageCost(o, o.MaxMessageSize)
	}
	if o.MaxMemory < 0 {
		return nil, errors.New("mllp: options: MaxMemory must not be negative")
	}
	if o.MaxMemory == 0 {
		o.MaxMemory = DefaultMaxMemory
	}
	o.MaxMemory = max(o.MaxMemory, int64(messageCost(o, o.MaxMessageSize)))
	if o.MaxInFlightBytes < o.MaxMessageSize {
		return nil, fmt.Errorf("mllp: options: MaxInFlightBytes %d is smaller than MaxMessageSize %d", o.MaxInFlightBytes, o.MaxMessageSize)
	}
	o.ReadTimeout = durationOr(o.ReadTimeout, DefaultReadTimeout)
	o.IdleTimeout = durationOr(o.IdleTimeout, DefaultIdleTimeout)
	o.WriteTimeout = durationOr(o.WriteTimeout, DefaultWriteTimeout)
	if o.MaxConnections == 0 {
		o.MaxConnections = DefaultMaxConnections
	}
	switch {
	case o.MaxConnectionsPerSource == 0:
		o.MaxConnectionsPerSource = DefaultMaxConnectionsPerSource
	case o.MaxConnectionsPerSource < 0:
		o.MaxConnectionsPerSource = o.MaxConnections
	}
	switch {
	case o.ReservedConnections == 0:
		o.ReservedConnections = o.MaxConnections / 4
	case o.ReservedConnections < 0:
		o.ReservedConnections = 0
	}
	if o.ReservedConnections >= o.MaxConnections {
		return nil, fmt.Errorf("mllp: options: ReservedConnections %d leaves no slot of MaxConnections %d to other senders", o.ReservedConnections, o.MaxConnections)
	}
	o.HandshakeTimeout = durationOr(o.HandshakeTimeout, DefaultHandshakeTimeout)
	if o.MaxJunkFrames == 0 {
		o.MaxJunkFrames = DefaultMaxJunkFrames
	}
	o.SenderTTL = durationOr(o.SenderTTL, DefaultSenderTTL)
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
		chunks:    newChunkAlloc(m.frameBytes.Set),
		senders:   newSenderCache(o.Senders, o.SenderTTL),
		listeners: make(map[*net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
		perSource: make(map[netip.Addr]int),
	}
	s.memory.init(int(min(o.MaxMemory, math.MaxInt)))
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.known.init(o.Senders, o.SenderTTL, o.Logger)
	return s, nil
}

// messageCost is what a message of size bytes is charged against its connection's budget while
// it is in flight: itself, its processing, and its ACK until the ACK is known.
func messageCost(o Options, size int) int {
	return size + int(float64(size)*o.ProcessingFactor) + o.ACKReserve
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
	s.known.start(s.ctx)
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

// Why a connection was refused, the values of the reason label of
// vaxgate_mllp_connections_rejected_total.
const (
	rejectFull      = "max_connections" // MaxConnections open
	rejectPerSource = "per_source"      // MaxConnectionsPerSource open from this unknown address
	rejectReserved  = "reserved"        // only reserved slots left, and the source is not known
)

// Slot classes: a known source's connection may take any slot; another takes an unreserved
// one, or, when TLS verifies client certificates, a reserved one on probation until its
// handshake shows a verified certificate.
type slotClass uint8

const (
	slotKnown slotClass = iota
	slotGeneral
	slotProbation
)

// admit registers a new connection, or closes it when there is no slot for it or the server is
// shutting down.
func (s *Server) admit(nc net.Conn) (*conn, bool) {
	addr := remoteAddr(nc.RemoteAddr())
	known := s.known.contains(addr)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		nc.Close()
		return nil, false
	}
	class, reason := s.slotLocked(addr, known)
	if reason != "" {
		s.mu.Unlock()
		// Closing at once (a FIN, no data) tells a well-behaved sender to retry later; nothing
		// was read from it, so nothing is left unanswered.
		s.m.rejected.WithLabelValues(reason).Inc()
		if n, ok := s.refusals.note(time.Now()); ok {
			// A flood must not flood the log too: at most one line a second.
			s.log.Warn("mllp connection refused", zap.String("reason", reason),
				zap.String("remote", nc.RemoteAddr().String()), zap.Int("max_connections", s.o.MaxConnections),
				zap.Int("refused_since_last_logged", n))
		}
		nc.Close()
		return nil, false
	}
	c := newConn(s, nc)
	c.class = class
	if class == slotKnown {
		// A registered sender's interface engine may open its connection long before it has a
		// message to send: only the idle timeout applies to it.
		c.cr.handshake = 0
	}
	if class != slotKnown {
		s.perSource[addr]++
	}
	if class == slotGeneral {
		s.general++
	}
	s.conns[c] = struct{}{}
	s.connWG.Add(1)
	s.mu.Unlock()
	s.m.connections.Inc()
	s.m.connectionsTotal.Inc()
	return c, true
}

// slotLocked decides which slot a new connection from addr takes, or why it gets none.
func (s *Server) slotLocked(addr netip.Addr, known bool) (slotClass, string) {
	if len(s.conns) >= s.o.MaxConnections {
		return 0, rejectFull
	}
	if known {
		return slotKnown, ""
	}
	if s.perSource[addr] >= s.o.MaxConnectionsPerSource {
		return 0, rejectPerSource
	}
	if s.general < s.o.MaxConnections-s.o.ReservedConnections {
		return slotGeneral, ""
	}
	if t := s.o.TLSConfig; t != nil && t.ClientAuth >= tls.VerifyClientCertIfGiven {
		return slotProbation, ""
	}
	return 0, rejectReserved
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if c.class != slotKnown {
		if s.perSource[c.addr]--; s.perSource[c.addr] <= 0 {
			delete(s.perSource, c.addr)
		}
	}
	if c.class == slotGeneral {
		s.general--
	}
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

// beginClose stops accepting and returns the open connections. With stopReading (Shutdown), each
// connection is told to read no new frame before the listeners close, under the same lock: once a
// sender can see that the server stopped accepting, every connection has stopped reading, so a
// frame sent after that is never read (with the listeners closed first, a connection not yet told
// could still read and process such a frame).
func (s *Server) beginClose(stopReading bool) []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	if stopReading {
		for c := range s.conns {
			c.stopReading()
		}
	}
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
	s.beginClose(true)
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
	conns := s.beginClose(false)
	s.cancel()
	for _, c := range conns {
		c.abort()
	}
	return nil
}

// logEvery lets through one log line a second of an event that may come in floods, and counts
// the others.
type logEvery struct {
	mu   sync.Mutex
	last time.Time
	n    int
}

// note records an event and reports whether to log it now, with the number of events since
// the last one logged (this one included).
func (l *logEvery) note(now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if now.Sub(l.last) < time.Second {
		return 0, false
	}
	n := l.n
	l.last, l.n = now, 0
	return n, true
}
