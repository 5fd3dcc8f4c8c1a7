package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// Closing a socket that still has unread input makes TCP send a reset, which can destroy ACKs the
// sender has not read yet; so a connection is half-closed first and its input drained for a
// moment (what net/http calls a lingering close).
const (
	lingerTimeout  = 500 * time.Millisecond
	lingerMaxBytes = 256 << 10
)

// ackBufferKeep is the largest ACK write buffer a connection keeps between ACKs.
const ackBufferKeep = 64 << 10

// conn is one MLLP connection: serve runs its reader; a second goroutine writes its ACKs.
type conn struct {
	s      *Server
	id     uint64
	raw    net.Conn // the TCP connection: deadlines and closing
	nc     net.Conn // raw, or the TLS connection over it: reading and writing
	addr   netip.Addr
	remote string
	log    *zap.Logger // fixed before the writer starts: shared by both goroutines
	cr     *connReader
	class  slotClass // fixed at admission

	// Reader goroutine only.
	subject    string // verified client certificate subject, "" without one
	identified bool   // the sender lookup has been made (at the first frame)
	sender     *ingest.Sender
	lookupErr  error // the sender lookup failed (not "unknown"): retried, frames answered AR 207
	lastLookup time.Time
	// senderUntil is when the cached lookup the connection took its sender from expires
	// (zero: none): until then, the cache would give the same answer.
	senderUntil time.Time
	junk        int // frames in a row that were not HL7

	slots     chan struct{} // the pipelining window: one slot per message read and not answered
	budget    budget        // bytes of messages read and not answered
	waiting   atomic.Int64  // valid (HL7) messages read and not answered: the idle timer does not run meanwhile
	lastWrite atomic.Int64  // UnixNano of the last ACK written
}

// item is a message handed to the pipeline, waiting in the connection's queue for its ACK.
type item struct {
	pending ingest.Pending
	payload []byte // kept to build an AR should the pipeline return no ACK
	cost    int    // taken from the connection's budget
	valid   bool   // an HL7 frame: its ACK counts as activity
	readAt  time.Time
}

func newConn(s *Server, raw net.Conn) *conn {
	c := &conn{
		s:      s,
		id:     s.connSeq.Add(1),
		raw:    raw,
		nc:     raw,
		remote: raw.RemoteAddr().String(),
		slots:  make(chan struct{}, s.o.MaxInFlight),
	}
	c.addr = remoteAddr(raw.RemoteAddr())
	c.budget.init(s.o.MaxInFlightBytes)
	if s.o.TLSConfig != nil {
		c.nc = tls.Server(raw, s.o.TLSConfig)
	}
	c.log = s.log.With(zap.Uint64("conn", c.id), zap.String("remote", c.remote))
	c.cr = &connReader{
		r:           c.nc,
		dl:          raw,
		readTimeout: s.o.ReadTimeout,
		idleTimeout: s.o.IdleTimeout,
		handshake:   s.o.HandshakeTimeout,
		inflight:    &c.waiting,
		lastWrite:   &c.lastWrite,
	}
	c.cr.opened = time.Now()
	c.cr.lastActivity = c.cr.opened
	return c
}

// remoteAddr is the peer's IP address as Senders expects it: IPv4 peers on a dual-stack socket
// appear as IPv4, not as IPv4-mapped IPv6. It is the zero Addr for non-IP connections.
func remoteAddr(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// serve runs the connection to its end: the TLS handshake if any, then frames read in
// order and handed to the pipeline while the writer answers them in the same order.
func (c *conn) serve() {
	defer c.s.forget(c)
	opened := time.Now()
	if err := c.handshake(); err != nil {
		if errors.Is(err, io.EOF) {
			// A TCP health check or a port scan, most likely.
			c.log.Debug("mllp connection closed before the TLS handshake", zap.Error(err))
		} else {
			c.log.Warn("mllp TLS handshake failed", zap.Error(err))
		}
		c.s.m.closed.WithLabelValues(closedTLS).Inc()
		c.raw.Close()
		return
	}
	if c.class == slotProbation && c.subject == "" {
		// Only a verified client certificate earns a reserved slot.
		c.s.m.rejected.WithLabelValues(rejectReserved).Inc()
		c.log.Warn("mllp connection refused: only reserved slots are left, and it has no verified client certificate")
		c.raw.Close()
		return
	}
	if c.subject != "" {
		c.cr.knownSender() // a verified certificate: only the idle timeout applies
	}
	c.log.Debug("mllp connection opened", zap.Bool("tls", c.nc != c.raw), zap.String("cert_subject", c.subject))

	queue := make(chan item, c.s.o.MaxInFlight)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop(queue)
	}()
	frames, reason := c.readLoop(queue)
	close(queue)
	<-writerDone
	c.closeGracefully()
	c.s.m.closed.WithLabelValues(reason).Inc()
	c.log.Debug("mllp connection closed", zap.String("reason", reason),
		zap.Int("frames", frames), zap.Duration("duration", time.Since(opened)))
}

func (c *conn) handshake() error {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return nil
	}
	// The TLS handshake must complete within the handshake timeout (or, without one, the read
	// or the idle timeout), or a silent peer would hold a connection slot forever.
	var deadline time.Time
	switch {
	case c.s.o.HandshakeTimeout > 0:
		deadline = c.cr.opened.Add(c.s.o.HandshakeTimeout)
	case c.s.o.ReadTimeout > 0:
		deadline = time.Now().Add(c.s.o.ReadTimeout)
	case c.s.o.IdleTimeout > 0:
		deadline = time.Now().Add(c.s.o.IdleTimeout)
	}
	_ = c.raw.SetDeadline(deadline)
	err := tc.HandshakeContext(c.s.ctx)
	// The reader sets its own deadlines; a shutdown meanwhile is seen through its flag.
	_ = c.raw.SetDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("mllp: TLS handshake: %w", err)
	}
	// Only a verified chain identifies a sender: with ClientAuth RequestClientCert the peer's
	// certificates are unverified and prove nothing.
	if chains := tc.ConnectionState().VerifiedChains; len(chains) > 0 && len(chains[0]) > 0 {
		c.subject = chains[0][0].Subject.String()
	}
	return nil
}

// identify looks the sender up by address and certificate subject, through the server's cache,
// at every message: a credential revoked or a site moved out of production meanwhile is seen
// within SenderTTL. An unknown sender is not an error: its messages are still answered, AR, by
// the pipeline (Envelope.Sender nil). The connection keeps the cache's answer until it expires
// rather than asking the (shared, locked) cache again at every message.
func (c *conn) identify(now time.Time) {
	if c.identified && c.lookupErr == nil && now.Before(c.senderUntil) {
		return // the cache's answer, still younger than SenderTTL
	}
	first := !c.identified
	prev := c.sender
	c.identified = true
	c.lastLookup = now
	r, ok := c.s.senders.cached(c.addr, c.subject)
	s, err := r.sender, r.err
	c.senderUntil = time.Time{}
	if ok && !first {
		c.senderUntil = r.at.Add(c.s.senders.ttl)
	}
	if first || !ok {
		ctx, cancel := context.WithTimeout(c.s.ctx, senderLookupTimeout)
		s, err = c.s.senders.lookup(ctx, c.addr, c.subject, first)
		cancel()
	}
	switch {
	case err == nil && s != nil:
		c.sender, c.lookupErr = s, nil
		if prev == nil || prev.CredentialID != s.CredentialID || prev.Status != s.Status {
			c.log.Debug("mllp sender identified", zap.String("site", s.SiteCode), zap.Int64("credential", s.CredentialID),
				zap.String("status", string(s.Status)))
		}
	case err == nil || errors.Is(err, ingest.ErrUnknownSender):
		c.sender, c.lookupErr = nil, nil
		switch {
		case prev != nil:
			c.log.Warn("mllp sender no longer authorized (credential revoked or deactivated): its messages are answered AR",
				zap.String("site", prev.SiteCode), zap.Int64("credential", prev.CredentialID))
		case first:
			c.log.Warn("mllp sender unknown: its messages are answered AR", zap.String("cert_subject", c.subject))
		}
	default:
		c.sender, c.lookupErr = nil, fmt.Errorf("mllp: identify sender: %w", err)
		c.log.Error("mllp sender lookup failed: messages are answered AR until it succeeds", zap.Error(err))
	}
}

// readLoop reads frames until the stream ends and hands each to the pipeline in order. It returns
// the number of frames read and why the stream ended, for the log.
func (c *conn) readLoop(queue chan<- item) (frames int, reason string) {
	fr := newFrameReader(c.cr, c.s.o.MaxMessageSize, c.s.chunks)
	defer fr.Release()
	var skipped int64
	for {
		frame, err := fr.ReadFrame()
		readAt := time.Now()
		if n := fr.Skipped(); n > skipped {
			c.s.m.junk.Add(float64(n - skipped))
			skipped = n
		}
		if err != nil {
			var tl *hl7.FrameTooLargeError
			if !errors.As(err, &tl) {
				return frames, c.endOfStream(err)
			}
			c.s.m.frames.WithLabelValues(outcomeTooLarge).Inc()
			c.log.Warn("mllp frame too large: answered AR", zap.Int("size", tl.Size), zap.Int("max_message_size", c.s.o.MaxMessageSize))
			frames++
			if c.handle(queue, tl.Head, tl.Size, readAt) {
				return frames, closedJunk
			}
			continue
		}
		c.s.m.framesOK.Inc()
		frames++
		if c.handle(queue, frame, 0, readAt) {
			return frames, closedJunk
		}
	}
}

// handle dispatches one frame and keeps count of the frames that are not HL7. It returns true
// when there have been MaxJunkFrames of them in a row: the connection then stops reading (the
// ACKs already due are still written), so that a stream of noise gets a few answers, not one
// per stray 0x0B.
func (c *conn) handle(queue chan<- item, payload []byte, tooLarge int, readAt time.Time) (closeNow bool) {
	valid := looksLikeHL7(payload)
	c.dispatch(queue, payload, tooLarge, readAt, valid) // marks the connection active when valid
	if valid {
		c.junk = 0
		return false
	}
	c.junk++
	c.s.m.junkFrames.Inc()
	if max := c.s.o.MaxJunkFrames; max > 0 && c.junk >= max {
		c.log.Debug("mllp frames that are not HL7: closing", zap.Int("frames_in_a_row", c.junk))
		return true
	}
	return false
}

// looksLikeHL7 reports whether a frame starts like an HL7 message or batch: MSH, FHS or BHS and
// a field separator (leading CR and LF are tolerated, as the pipeline does).
func looksLikeHL7(b []byte) bool {
	b = bytes.TrimLeft(b, "\r\n")
	if len(b) < 4 || !hl7Head(b[:3]) {
		return false
	}
	sep := b[3]
	return sep > ' ' && sep < 0x7f && !('0' <= sep && sep <= '9' || 'A' <= sep && sep <= 'Z' || 'a' <= sep && sep <= 'z')
}

func hl7Head(b []byte) bool {
	switch string(b) {
	case "MSH", "FHS", "BHS":
		return true
	}
	return false
}

// endOfStream logs and counts why reading stopped.
func (c *conn) endOfStream(err error) string {
	reason, midFrame := c.cr.end()
	switch {
	case errors.Is(reason, errShutdown):
		return closedShutdown
	case errors.Is(reason, errIdle):
		c.log.Debug("mllp connection idle: closing")
		return closedIdle
	case errors.Is(reason, errHandshake):
		if midFrame {
			c.s.m.frames.WithLabelValues(outcomeTimeout).Inc()
		}
		c.log.Debug("mllp connection sent no HL7 frame within the handshake timeout: closing",
			zap.Duration("handshake_timeout", c.s.o.HandshakeTimeout))
		return closedHandshake
	case errors.Is(reason, errReadTimeout):
		c.s.m.frames.WithLabelValues(outcomeTimeout).Inc()
		c.log.Warn("mllp frame not completed within the read timeout: closing", zap.Duration("read_timeout", c.s.o.ReadTimeout))
		return closedReadTimeout
	case midFrame || errors.Is(err, hl7.ErrPartialFrame):
		c.s.m.frames.WithLabelValues(outcomePartial).Inc()
		c.log.Warn("mllp connection ended in the middle of a frame", zap.Error(err))
		return closedPartial
	case errors.Is(err, io.EOF):
		return closedBySender
	}
	c.log.Info("mllp read failed", zap.Error(err))
	return closedReadError
}

// dispatch hands one frame to the pipeline and queues its Pending for the writer. It blocks while
// the connection's window or byte budget is full: the reader then stops reading and TCP flow
// control pushes back on the sender. That time is not charged to the sender's read timeout. A
// valid frame marks the connection active (connReader.resume).
func (c *conn) dispatch(queue chan<- item, payload []byte, tooLarge int, readAt time.Time, valid bool) {
	c.cr.pause(readAt)
	defer c.cr.resume(valid)
	c.slots <- struct{}{}
	cost := messageCost(c.s.o, len(payload))
	c.budget.acquire(cost)
	c.s.memory.acquire(cost)
	if valid {
		c.waiting.Add(1)
	}
	// The payload is the frame reader's fresh slice, never written to again: the pipeline keeps
	// it until it is committed, and the record's strings share it (Owned).
	env := ingest.Envelope{
		Transport:  ingest.TransportMLLP,
		Remote:     c.remote,
		Payload:    payload,
		ReceivedAt: c.s.clock(),
		TooLarge:   tooLarge,
		Owned:      true,
	}
	queue <- item{pending: c.start(env, time.Now()), payload: payload, cost: cost, valid: valid, readAt: readAt}
}

// start hands the message to the pipeline, or answers it AR 207 itself when it cannot.
func (c *conn) start(env ingest.Envelope, now time.Time) (p ingest.Pending) {
	// The sender is looked up at the first frame rather than at connect time, so that health
	// checks and port scans cost no query, and again at every frame (through the cache): a
	// revoked credential must not keep working on a connection opened before.
	if !c.identified || c.lookupErr == nil || now.Sub(c.lastLookup) >= senderRetryInterval {
		c.identify(now)
	}
	env.Sender = c.sender
	if c.lookupErr != nil {
		// Without knowing who sent it the pipeline would answer "unknown sender", which is
		// false; the database is unavailable: no ACK, the connection is closed (writeLoop) and
		// the sender sends the message again.
		return unavailable{}
	}
	defer func() {
		if r := recover(); r != nil {
			// One bad message must not take down every connection's messages in flight.
			c.log.Error("mllp pipeline panicked starting a message: answered AR", panicField(r), zap.Stack("stack"))
			c.s.m.internalErrors.Inc()
			p = ready(c.internalAR(env.Payload))
		}
	}()
	if p = c.s.o.Starter.Start(c.s.ctx, env); p == nil {
		c.log.Error("mllp pipeline returned no pending message: answered AR")
		c.s.m.internalErrors.Inc()
		p = ready(c.internalAR(env.Payload))
	}
	return p
}

// ackFlushBytes is how many bytes of framed ACKs the writer gathers before it writes them, even
// if more are ready (the last ACK gathered may take it past).
const ackFlushBytes = 64 << 10

// writeLoop waits for each queued message's ACK in order and writes it. ACKs that are ready
// together (a group commit answers many messages at once, and a sender that pipelines has several
// waiting) go out in one write rather than one each: after each ACK, the writer takes the next
// message from the queue and, if its ACK is ready too (ingest.Ready), appends it to the same
// buffer; it writes when the next is not ready, the queue is empty, or ackFlushBytes are
// gathered. Every ACK is still written only after its own commit, and in order. After a failed
// write it keeps waiting (so every message read is still processed and counted) but writes no
// more.
func (c *conn) writeLoop(queue <-chan item) {
	w := ackWriter{c: c}
	for {
		var it item
		var ok bool
		if len(w.done) > 0 {
			select {
			case it, ok = <-queue:
			default:
				// Nothing more has been read: send what is gathered before waiting.
				w.flush()
				it, ok = <-queue
			}
		} else {
			it, ok = <-queue
		}
		if !ok {
			w.flush()
			return
		}
		if len(w.done) > 0 && !ingest.Ready(it.pending) {
			w.flush() // the ACKs gathered must not wait for this message's commit
		}
		a := c.wait(it)
		if a == nil && !w.broken {
			// The registry's database stayed unavailable: no ACK (an AR would be taken as final
			// by many senders). Closing the connection makes the sender send it again; the ACKs
			// gathered before it are sent first.
			w.flush()
			w.broken = true
			c.log.Warn("mllp message not answered, database unavailable: closing the connection without an ACK")
			c.raw.Close() // wakes the reader
		}
		a = frameSafe(a, c.log)
		// The ACK is now known: an ACK larger than its reserve is charged what it really costs
		// (never waiting here: the writer must go on); a smaller one keeps its reserve until it is
		// written, then all is released at once (one budget operation per ACK, not two).
		extra := max(len(a)-c.s.o.ACKReserve, 0)
		if extra > 0 {
			c.budget.adjust(extra)
			c.s.memory.adjust(extra)
		}
		if !w.broken {
			w.buf = hl7.AppendFrame(w.buf, a)
		}
		w.done = append(w.done, written{cost: it.cost + extra, valid: it.valid, readAt: it.readAt})
		if len(w.buf) >= ackFlushBytes || w.broken {
			w.flush()
		}
	}
}

// ackWriter holds the framed ACKs the writer has gathered and not yet written, and what each
// of their messages holds of the connection's window and budgets until then.
type ackWriter struct {
	c      *conn
	buf    []byte
	done   []written
	wdl    time.Time // the write deadline set
	broken bool      // a write failed, or the database was unavailable: write no more
}

// written is what a message whose ACK was gathered still holds until its ACK is written.
type written struct {
	cost   int // taken from the budgets (the ACK's extra included)
	valid  bool
	readAt time.Time
}

// flush writes the ACKs gathered, in one write, then releases what their messages held: their
// place in the window, their bytes in the budgets.
func (w *ackWriter) flush() {
	if len(w.done) == 0 {
		return
	}
	c := w.c
	if !w.broken && len(w.buf) > 0 {
		if err := c.write(w.buf, &w.wdl); err != nil {
			w.broken = true
			c.log.Info("mllp ACK not delivered: closing", zap.Error(err))
			c.raw.Close() // wakes the reader
		} else {
			now := time.Now()
			valid := false
			for _, d := range w.done {
				c.s.m.ackSeconds.Observe(now.Sub(d.readAt).Seconds())
				valid = valid || d.valid
			}
			if valid {
				c.lastWrite.Store(now.UnixNano())
			}
		}
	}
	w.buf = w.buf[:0]
	if cap(w.buf) > ackBufferKeep {
		w.buf = nil
	}
	for _, d := range w.done {
		if d.valid {
			c.waiting.Add(-1)
		}
		c.s.memory.release(d.cost)
		c.budget.release(d.cost)
		<-c.slots
	}
	clear(w.done)
	w.done = w.done[:0]
}

// write writes one framed ACK. The write deadline (a timer operation) is renewed only when less
// than WriteTimeout is left of the one set (*wdl), to WriteTimeout and an eighth from now: every
// ACK still has at least WriteTimeout to be taken off the wire, and a busy connection renews its
// deadline about once per eighth of WriteTimeout instead of at every ACK.
func (c *conn) write(b []byte, wdl *time.Time) error {
	if wt := c.s.o.WriteTimeout; wt > 0 {
		now := time.Now()
		if wdl.Sub(now) < wt {
			d := now.Add(wt + wt/deadlineSlack)
			if err := c.raw.SetWriteDeadline(d); err != nil {
				return fmt.Errorf("mllp: set write deadline: %w", err)
			}
			*wdl = d
		}
	}
	if _, err := c.nc.Write(b); err != nil {
		return fmt.Errorf("mllp: write ACK: %w", err)
	}
	return nil
}

// wait returns the message's ACK; whatever happens, it returns a valid HL7 answer, except nil
// when the registry's database is unavailable (ingest.ErrUnavailable).
func (c *conn) wait(it item) (a []byte) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("mllp pipeline panicked waiting for an ACK: answered AR", panicField(r), zap.Stack("stack"))
			c.s.m.internalErrors.Inc()
			a = c.internalAR(it.payload)
		}
	}()
	a, err := it.pending.Wait(c.s.ctx)
	if errors.Is(err, ingest.ErrUnavailable) {
		return nil // no ACK at all: writeLoop closes the connection
	}
	if len(a) > 0 {
		// With an error, the pipeline has logged it and a is the AR that says so.
		return a
	}
	c.log.Error("mllp pipeline returned no ACK: answered AR", zap.Error(err))
	c.s.m.internalErrors.Inc()
	return c.internalAR(it.payload)
}

// frameSafe returns a, or a copy of it without the MLLP framing bytes that an ACK must never
// contain (escaping makes them impossible in a well-built one): a 0x1C would end the frame early
// and a 0x0B start a new one for many readers, leaving the sender out of step.
func frameSafe(a []byte, log *zap.Logger) []byte {
	if bytes.IndexByte(a, startBlock) < 0 && bytes.IndexByte(a, endBlock) < 0 {
		return a
	}
	log.Error("mllp ACK contains an MLLP framing byte: replaced with '?'")
	out := bytes.Clone(a)
	for i, b := range out {
		if b == startBlock || b == endBlock {
			out[i] = '?'
		}
	}
	return out
}

// internalAR is the AR for a message the registry failed to process, built from what can be
// recovered of its MSH so that MSA-2 names the sender's control ID.
func (c *conn) internalAR(payload []byte) []byte {
	return c.s.ack.Reject(ack.RecoverHeader(payload), ack.Finding{
		Rule:     "internal-error",
		Location: ack.Location{Segment: "MSH", Sequence: 1},
		Code:     ack.CodeInternalError,
		Severity: ack.Error,
		Text:     "The registry could not process this message because of an internal error; nothing was stored. Please send it again later.",
	})
}

// panicField describes a recovered panic without its value when that value could carry message
// content: runtime errors are safe to log, anything else is logged by type only.
func panicField(r any) zap.Field {
	if re, ok := r.(runtime.Error); ok {
		return zap.String("panic", re.Error())
	}
	return zap.String("panic", fmt.Sprintf("%T", r))
}

// stopReading is Shutdown's request: read no new frame, finish the one being received.
func (c *conn) stopReading() { c.cr.stop() }

// abort closes the connection at once.
func (c *conn) abort() { c.raw.Close() }

func (c *conn) closeGracefully() {
	type closeWriter interface{ CloseWrite() error }
	if cw, ok := c.nc.(closeWriter); ok {
		_ = c.raw.SetWriteDeadline(time.Now().Add(lingerTimeout))
		if cw.CloseWrite() == nil {
			_ = c.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
			_, _ = io.CopyN(io.Discard, c.raw, lingerMaxBytes)
		}
	}
	c.raw.Close()
}

// unavailable is the Pending of a message the registry cannot take while its database is
// unavailable: it has no ACK.
type unavailable struct{}

func (unavailable) Wait(context.Context) ([]byte, error) { return nil, ingest.ErrUnavailable }

// Ready is always true: there is no answer to wait for (ingest.Readier).
func (unavailable) Ready() bool { return true }

// ready is a Pending whose answer is already known.
type ready []byte

func (r ready) Wait(context.Context) ([]byte, error) { return r, nil }

// Ready is always true (ingest.Readier).
func (ready) Ready() bool { return true }

// budget bounds the bytes a connection (or the server) holds in messages read and not yet
// answered. A message is always admitted when nothing else is held, so a message up to the limit
// never waits forever.
type budget struct {
	mu    sync.Mutex
	cond  sync.Cond
	used  int
	limit int
}

func (b *budget) init(limit int) {
	b.limit = limit
	b.cond.L = &b.mu
}

func (b *budget) acquire(n int) {
	b.mu.Lock()
	for b.used > 0 && b.used+n > b.limit {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
}

func (b *budget) release(n int) {
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// adjust corrects what is held by n bytes (an ACK larger or smaller than its reserve) without
// waiting.
func (b *budget) adjust(n int) {
	b.mu.Lock()
	b.used += n
	b.mu.Unlock()
	if n < 0 {
		b.cond.Broadcast()
	}
}

// held returns the bytes held.
func (b *budget) held() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.used
}
