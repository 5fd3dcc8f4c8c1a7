package mllp

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// MLLP framing bytes.
const (
	startBlock = hl7.FrameStart
	endBlock   = hl7.FrameEnd
)

// Why a connection's reader stopped, as connReader returns it to the frame reader.
var (
	errShutdown    = errors.New("mllp: server shutting down")
	errIdle        = errors.New("mllp: connection idle")
	errReadTimeout = errors.New("mllp: frame not completed within the read timeout")
	errHandshake   = errors.New("mllp: no HL7 frame within the handshake timeout")
)

// aLongTimeAgo is a deadline in the past, to wake a blocked Read at once.
var aLongTimeAgo = time.Unix(1, 0)

// connReader sits between the connection and the frame reader and enforces the timeouts, which
// depend on where the stream is: between frames the idle timeout runs (and is suspended while
// messages wait for their ACKs, since then the sender is waiting for us); once a frame's 0x0B has
// arrived, the frame must complete within the read timeout, however slowly its bytes trickle in.
// It follows the framing itself, on the bytes as they arrive, because the frame reader reads
// ahead and cannot say when the frame it will return next began. Socket timeouts are retried
// here, not returned, so the frame reader only ever sees the end of the stream.
//
// Only valid frames are activity: the idle timer restarts when the reader marks a frame valid
// (markValidLocked) and when a valid frame's ACK is written, not when junk or a frame that is not HL7
// arrives. Until the first valid frame, the handshake timeout also runs from the connection's
// opening; a frame whose first bytes are MSH, FHS or BHS is given its read timeout to complete.
type connReader struct {
	r           io.Reader // the connection, TLS or not
	dl          net.Conn  // the TCP connection, where deadlines are set
	readTimeout time.Duration
	idleTimeout time.Duration
	handshake   time.Duration
	inflight    *atomic.Int64 // valid messages read and not yet answered
	lastWrite   *atomic.Int64 // UnixNano of the last ACK to a valid frame written

	mu           sync.Mutex
	opened       time.Time // the handshake timeout runs from here (shifted by server time)
	valid        bool      // a valid frame has been read
	inFrame      bool      // a 0x0B has arrived and its 0x1C not yet
	head         [3]byte   // the current frame's first bytes (leading CR and LF skipped)
	headN        int
	frameStart   time.Time
	lastActivity time.Time // the last valid frame (or the opening)
	framesEnded  uint64
	pausedAt     time.Time
	shutdown     bool
	stopAfter    uint64    // after Shutdown, read up to the end of this many frames
	reason       error     // why Read stopped, when it was this reader's decision
	deadline     time.Time // the read deadline last set on the socket (zero: none)
}

// Read reads from the connection, waiting out socket timeouts that are not the sender's fault.
func (r *connReader) Read(p []byte) (int, error) {
	for {
		r.mu.Lock()
		if r.stoppingLocked() {
			r.reason = errShutdown
			r.mu.Unlock()
			return 0, errShutdown
		}
		// Set under the lock so that a concurrent stop's wake-up deadline is never overwritten.
		r.setDeadlineLocked(time.Now())
		r.mu.Unlock()

		n, err := r.r.Read(p)
		now := time.Now()

		r.mu.Lock()
		if n > 0 {
			r.trackLocked(p[:n], now)
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			if n > 0 {
				r.mu.Unlock()
				return n, nil // the next Read looks at the deadline again
			}
			if end := r.timeoutLocked(now); end != nil {
				r.reason = end
				r.mu.Unlock()
				return 0, end
			}
			r.mu.Unlock()
			continue
		}
		r.mu.Unlock()
		return n, err
	}
}

// setDeadlineLocked gives the socket the read deadline of the timeouts that run now. Setting a
// deadline is a timer operation, and while a connection is busy the deadline moves with every
// frame and ACK; so the deadline already set is kept when it is still ahead, not later than
// needed, and early by at most an eighth of the time left (deadlineSlack). It then fires a little
// early now and then: the timeout is looked at again (timeoutLocked) and the exact deadline set.
func (r *connReader) setDeadlineLocked(now time.Time) {
	want := r.deadlineLocked(now)
	if keepDeadline(r.deadline, want, now) {
		return
	}
	_ = r.dl.SetReadDeadline(want)
	r.deadline = want
}

// deadlineSlack is the share of the time left by which a kept read deadline may be early.
const deadlineSlack = 8

// keepDeadline reports whether the deadline set, cur, may stay when want is needed (zero: none).
func keepDeadline(cur, want, now time.Time) bool {
	if want.IsZero() || cur.IsZero() {
		return want.Equal(cur)
	}
	if !cur.After(now) || cur.After(want) {
		return false
	}
	return want.Sub(cur) <= want.Sub(now)/deadlineSlack
}

// stoppingLocked: after Shutdown, no new frame is read; the frame being received is finished.
func (r *connReader) stoppingLocked() bool {
	return r.shutdown && (!r.inFrame || r.framesEnded >= r.stopAfter)
}

func (r *connReader) deadlineLocked(now time.Time) time.Time {
	d := r.streamDeadlineLocked(now)
	if hd, ok := r.handshakeDeadlineLocked(); ok && (d.IsZero() || hd.Before(d)) {
		d = hd
	}
	return d
}

// streamDeadlineLocked is the deadline of the read and idle timeouts (zero: none).
func (r *connReader) streamDeadlineLocked(now time.Time) time.Time {
	if r.inFrame {
		if r.readTimeout > 0 {
			return r.frameStart.Add(r.readTimeout)
		}
		return time.Time{}
	}
	if r.idleTimeout <= 0 {
		return time.Time{}
	}
	if r.inflight.Load() > 0 {
		// Not idle while the sender waits for ACKs: look again later.
		return now.Add(r.idleTimeout)
	}
	return r.lastActivityLocked().Add(r.idleTimeout)
}

// handshakeDeadlineLocked is when a connection that has sent no valid frame is closed; ok is
// false when the handshake timeout does not apply (any more).
func (r *connReader) handshakeDeadlineLocked() (time.Time, bool) {
	if r.valid || r.handshake <= 0 || (r.inFrame && r.headN == len(r.head) && hl7Head(r.head[:])) {
		return time.Time{}, false
	}
	return r.opened.Add(r.handshake), true
}

func (r *connReader) lastActivityLocked() time.Time {
	last := r.lastActivity
	if w := r.lastWrite.Load(); w > 0 {
		if t := time.Unix(0, w); t.After(last) {
			last = t
		}
	}
	return last
}

// timeoutLocked decides what a socket timeout means: the end of the stream (returned) or nothing
// yet (nil: read on).
func (r *connReader) timeoutLocked(now time.Time) error {
	if hd, ok := r.handshakeDeadlineLocked(); ok && !now.Before(hd) {
		return errHandshake
	}
	if r.inFrame {
		if r.readTimeout > 0 && !now.Before(r.frameStart.Add(r.readTimeout)) {
			return errReadTimeout
		}
		return nil
	}
	if r.shutdown {
		return errShutdown
	}
	if r.inflight.Load() > 0 {
		return nil
	}
	if r.idleTimeout > 0 && !now.Before(r.lastActivityLocked().Add(r.idleTimeout)) {
		return errIdle
	}
	return nil
}

// trackLocked follows the framing over bytes just read, the way hl7.FrameReader reads it: 0x0B
// starts a frame, the next 0x1C ends it (the CR after it is not waited for, and a 0x0B inside a
// frame is content).
func (r *connReader) trackLocked(b []byte, now time.Time) {
	for len(b) > 0 {
		if !r.inFrame {
			i := bytes.IndexByte(b, startBlock)
			if i < 0 {
				return // junk between frames is not activity
			}
			r.inFrame = true
			r.frameStart = now
			r.headN = 0
			b = b[i+1:]
			continue
		}
		i := bytes.IndexByte(b, endBlock)
		r.trackHeadLocked(b, i)
		if i < 0 {
			return
		}
		r.inFrame = false
		r.framesEnded++
		b = b[i+1:]
	}
}

// trackHeadLocked records the first bytes of the frame being received, from b up to end (the end
// of the frame in b, or -1).
func (r *connReader) trackHeadLocked(b []byte, end int) {
	if end >= 0 {
		b = b[:end]
	}
	for _, c := range b {
		if r.headN == len(r.head) {
			return
		}
		if r.headN == 0 && (c == '\r' || c == '\n') {
			continue
		}
		r.head[r.headN] = c
		r.headN++
	}
}

// knownSender lifts the handshake timeout: the connection belongs to a registered sender.
func (r *connReader) knownSender() {
	r.mu.Lock()
	r.handshake = 0
	r.mu.Unlock()
}

// pause and resume bracket the time the reader spends handing a frame on, blocked on a full
// window or in the pipeline: that is the server's time, not charged to the next frame's read
// timeout, to the handshake timeout nor counted as idleness. pause is given the time the frame
// was read (now, as good as a clock read of its own).
func (r *connReader) pause(now time.Time) {
	r.mu.Lock()
	r.pausedAt = now
	r.mu.Unlock()
}

// resume ends the pause; valid records that the frame handed on is HL7 (markValidLocked) at the same
// time, under the same lock.
func (r *connReader) resume(valid bool) {
	r.mu.Lock()
	now := time.Now()
	paused := now.Sub(r.pausedAt)
	if r.inFrame {
		r.frameStart = r.frameStart.Add(paused)
	}
	r.lastActivity = r.lastActivity.Add(paused)
	r.opened = r.opened.Add(paused)
	if valid {
		r.markValidLocked(now)
	}
	r.mu.Unlock()
}

// markValidLocked records that the frame just read is HL7: the connection has passed its
// handshake and is active now.
func (r *connReader) markValidLocked(now time.Time) {
	r.valid = true
	r.lastActivity = now
}

// stop makes Read return errShutdown once the frame being received, if any, is complete.
func (r *connReader) stop() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.shutdown {
		return
	}
	r.shutdown = true
	r.stopAfter = r.framesEnded + 1
	if !r.inFrame {
		_ = r.dl.SetReadDeadline(aLongTimeAgo)
		r.deadline = aLongTimeAgo
	}
}

// end reports why reading stopped, when it was this reader's decision, and whether the stream
// stopped in the middle of a frame.
func (r *connReader) end() (reason error, midFrame bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reason, r.inFrame
}
