package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/mllp"
)

// benchConn is one connection of `vaxgate bench`, driven by one goroutine: it writes, in one
// write, every message its window (and its --rate schedule) allows, building them framed into
// one reused buffer, then reads the ACKs that have arrived, in one read when they came together.
// No goroutine or channel hand-off per message, no allocation per message: the load generator
// runs on the CPUs of the system it measures. (mllp.Client.SendPipelined, with a writer and a
// reader goroutine and a deadline set per message, cost several times more per message.)
type benchConn struct {
	conn    net.Conn
	timeout time.Duration // for each ACK, from its message's write

	ackReader
	wbuf   []byte
	sentAt []time.Time
	rdl    time.Time // read deadline set on conn (zero: none)
	wdl    time.Time // write deadline set on conn
	sys    sysIO     // the socket's own reads and writes, where the system allows (bench_conn_linux.go)
}

// deadlineSlack is how far the deadlines set on the connection may lag behind the ones wanted:
// moving a deadline costs a timer update, so it is moved only when it is this much behind. An
// ACK is thus given between timeout-deadlineSlack and timeout.
const deadlineSlack = time.Second

// benchSchedule is a connection's --rate schedule: message i is due at first + i*interval
// (interval 0: no schedule, as fast as the window allows).
type benchSchedule struct {
	first    time.Time
	interval time.Duration
}

// benchSendBuffer, when positive, is the send buffer size of the load generator's sockets
// (tests make it small to exercise writes the socket takes only in part).
var benchSendBuffer int

func dialBench(ctx context.Context, addr string) (*benchConn, error) {
	d := net.Dialer{}
	dctx, cancel := context.WithTimeout(ctx, mllp.DefaultClientTimeout)
	defer cancel()
	nc, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	c := &benchConn{conn: nc, timeout: mllp.DefaultClientTimeout, ackReader: ackReader{maxACK: mllp.DefaultMaxMessageSize}}
	if err := c.sys.init(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("mllp: dial %s: %w", addr, err)
	}
	return c, nil
}

func (c *benchConn) Close() error { return c.conn.Close() }

// run sends n messages, appended framed by next (which appends one message to its argument), at
// most window of them unanswered, and calls onAck for each ACK in order: i counts messages from
// 0, ack is valid only until onAck returns, rtt is the time from the write of message i to the
// read that brought its ACK, and at is when that read returned. It returns when every message
// has been answered, or at the first failure.
func (c *benchConn) run(ctx context.Context, n, window int, sched benchSchedule, next func([]byte) []byte,
	onAck func(i int, ack []byte, rtt time.Duration, at time.Time)) error {
	if window < 1 {
		window = 1
	}
	stop := context.AfterFunc(ctx, func() { _ = c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if c.sentAt == nil {
		c.sentAt = make([]time.Time, window)
	}
	due := sched.first
	var wait *time.Timer
	defer func() {
		if wait != nil {
			wait.Stop()
		}
	}()
	sent, acked := 0, 0
	for acked < n {
		// Write what the window and the schedule allow.
		var now time.Time
		if sched.interval > 0 {
			now = time.Now()
		}
		c.wbuf = c.wbuf[:0]
		first := sent
		for sent < n && sent-acked < window && (sched.interval == 0 || !due.After(now)) {
			c.wbuf = append(c.wbuf, hl7.FrameStart)
			start := len(c.wbuf)
			c.wbuf = next(c.wbuf)
			if bytes.IndexByte(c.wbuf[start:], hl7.FrameStart) >= 0 || bytes.IndexByte(c.wbuf[start:], hl7.FrameEnd) >= 0 {
				return fmt.Errorf("mllp: message %d: %w", sent, hl7.ErrFrameContent)
			}
			c.wbuf = append(c.wbuf, hl7.FrameEnd, '\r')
			sent++
			if sched.interval > 0 {
				due = due.Add(sched.interval)
			}
		}
		if sent > first {
			t := time.Now()
			for i := first; i < sent; i++ {
				c.sentAt[i%window] = t
			}
			if err := c.writeDeadline(ctx, t); err != nil {
				return fmt.Errorf("mllp: send message %d: %w", first, err)
			}
			if err := c.write(c.wbuf); err != nil {
				return c.wrap(ctx, fmt.Sprintf("send message %d", first), err)
			}
		}
		if sent == acked {
			// Nothing in flight: the next message is not due yet.
			if err := sleepUntil(ctx, &wait, due); err != nil {
				return fmt.Errorf("mllp: send message %d: %w", sent, err)
			}
			continue
		}
		// Read until the ACK of the oldest message in flight is due, or, on a schedule with a
		// free slot in the window, until the next message is due.
		ackDue := c.sentAt[acked%window].Add(c.timeout)
		early := sched.interval > 0 && sent < n && sent-acked < window && due.Before(ackDue)
		if early || c.rdl.IsZero() || c.rdl.After(ackDue) || ackDue.Sub(c.rdl) > deadlineSlack {
			d := ackDue
			if early {
				d = due
			}
			if err := c.conn.SetReadDeadline(d); err != nil {
				return fmt.Errorf("mllp: read ACK %d: %w", acked, err)
			}
			c.rdl = ackDue
			if early {
				c.rdl = time.Time{} // set again for the ACK next time
			}
			// After SetReadDeadline: if ctx ended before, AfterFunc may have run and been undone.
			if err := ctx.Err(); err != nil {
				return c.wrap(ctx, fmt.Sprintf("read ACK %d", acked), err)
			}
		}
		if err := c.room(); err != nil {
			return fmt.Errorf("mllp: read ACK %d: %w", acked, err)
		}
		nr, err := c.read(c.rbuf[c.w:])
		at := time.Now()
		c.w += nr
		if err != nil && nr == 0 {
			if early && errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() == nil && at.Before(ackDue) {
				continue // the next message is due
			}
			return c.wrap(ctx, fmt.Sprintf("read ACK %d", acked), err)
		}
		for {
			frame, ok := c.frame()
			if !ok {
				break
			}
			if acked == sent {
				return fmt.Errorf("mllp: read ACK %d: an ACK came for no message in flight", acked)
			}
			onAck(acked, frame, at.Sub(c.sentAt[acked%window]), at)
			acked++
		}
		if err != nil {
			return c.wrap(ctx, fmt.Sprintf("read ACK %d", acked), err)
		}
	}
	return nil
}

// ackReader splits the bytes read from a connection into ACK frames.
type ackReader struct {
	maxACK int
	rbuf   []byte
	r0, w  int  // unread bytes are rbuf[r0:w]
	in     bool // inside a frame: its content starts at rbuf[r0]
}

// room makes sure there is room to read into rbuf[w:].
func (c *ackReader) room() error {
	if c.rbuf == nil {
		c.rbuf = make([]byte, 16<<10)
	}
	if c.w == len(c.rbuf) {
		return c.grow()
	}
	return nil
}

// frame returns the next complete frame buffered, without its framing bytes, and consumes it.
// Bytes outside frames (the CR after 0x1C, noise) are skipped.
func (c *ackReader) frame() ([]byte, bool) {
	for {
		data := c.rbuf[c.r0:c.w]
		if !c.in {
			i := bytes.IndexByte(data, hl7.FrameStart)
			if i < 0 {
				c.r0, c.w = 0, 0
				return nil, false
			}
			c.r0 += i + 1
			c.in = true
			continue
		}
		i := bytes.IndexByte(data, hl7.FrameEnd)
		if i < 0 {
			return nil, false
		}
		c.r0 += i + 1
		c.in = false
		return data[:i], true
	}
}

// grow makes room for more of the frame in progress: it moves it to the front of the buffer, or
// doubles the buffer, up to the largest ACK accepted.
func (c *ackReader) grow() error {
	if c.r0 > 0 {
		c.w = copy(c.rbuf, c.rbuf[c.r0:c.w])
		c.r0 = 0
		return nil
	}
	if len(c.rbuf) > c.maxACK {
		return fmt.Errorf("an ACK larger than %d bytes", c.maxACK)
	}
	nb := make([]byte, 2*len(c.rbuf))
	c.w = copy(nb, c.rbuf[:c.w])
	c.rbuf = nb
	return nil
}

// writeDeadline keeps the write deadline between timeout-deadlineSlack and timeout from now.
func (c *benchConn) writeDeadline(ctx context.Context, now time.Time) error {
	want := now.Add(c.timeout)
	if c.wdl.IsZero() || want.Sub(c.wdl) > deadlineSlack {
		if err := c.conn.SetWriteDeadline(want); err != nil {
			return err
		}
		c.wdl = want
		if err := context.Cause(ctx); err != nil { // AfterFunc's deadline may have been undone
			return err
		}
	}
	return nil
}

// wrap names what failed, preferring the context's error when the context ended it.
func (c *benchConn) wrap(ctx context.Context, what string, err error) error {
	if cerr := context.Cause(ctx); cerr != nil {
		return fmt.Errorf("mllp: %s: %w", what, cerr)
	}
	return fmt.Errorf("mllp: %s: %w", what, err)
}

// sleepUntil waits until t or the end of ctx, with *timer (made on first use).
func sleepUntil(ctx context.Context, timer **time.Timer, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return nil
	}
	if *timer == nil {
		*timer = time.NewTimer(d)
	} else {
		(*timer).Reset(d)
	}
	select {
	case <-(*timer).C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
