package mllp

import (
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// deadlineConn records the deadlines set on it; it reads frames from frames, one per Read.
type deadlineConn struct {
	net.Conn
	frames   [][]byte
	read     []time.Time // SetReadDeadline calls
	written  []time.Time // SetWriteDeadline calls
	writes   int
	readSeen []time.Time // the read deadline in force at each Read
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.read = append(c.read, t)
	return nil
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.written = append(c.written, t)
	return nil
}

func (c *deadlineConn) Read(p []byte) (int, error) {
	if len(c.read) > 0 {
		c.readSeen = append(c.readSeen, c.read[len(c.read)-1])
	}
	f := c.frames[0]
	c.frames = c.frames[1:]
	return copy(p, f), nil
}

func (c *deadlineConn) Write(p []byte) (int, error) {
	c.writes++
	return len(p), nil
}

func TestKeepDeadline(t *testing.T) {
	now := time.Now()
	want := now.Add(80 * time.Second)
	tests := []struct {
		name      string
		cur, want time.Time
		keep      bool
	}{
		{"none needed, none set", time.Time{}, time.Time{}, true},
		{"none needed, one set", want, time.Time{}, false},
		{"one needed, none set", time.Time{}, want, false},
		{"the same", want, want, true},
		{"early within an eighth of the time left", want.Add(-9 * time.Second), want, true},
		{"early by more than an eighth", want.Add(-11 * time.Second), want, false},
		{"later than needed", want.Add(time.Millisecond), want, false},
		{"passed", now.Add(-time.Millisecond), want, false},
		{"now", now, want, false},
	}
	for _, tt := range tests {
		if got := keepDeadline(tt.cur, tt.want, now); got != tt.keep {
			t.Errorf("%s: keepDeadline = %v, want %v", tt.name, got, tt.keep)
		}
	}
}

// A busy connection does not set its read deadline again at every frame (each setting is a timer
// operation): the deadline in force is never later than the timeouts need, never passed, and is
// set only a few times over many frames.
func TestReadDeadlineKeptWhileBusy(t *testing.T) {
	const frames = 1000
	fc := &deadlineConn{}
	for range frames {
		fc.frames = append(fc.frames, frame(vxu("1")))
	}
	var inflight, lastWrite atomic.Int64
	inflight.Store(1) // messages await their ACKs: the idle timeout looks again later
	r := &connReader{r: fc, dl: fc, readTimeout: 30 * time.Second, idleTimeout: 5 * time.Minute,
		inflight: &inflight, lastWrite: &lastWrite}
	r.opened = time.Now()
	r.lastActivity = r.opened
	buf := make([]byte, 64<<10)
	for range frames {
		before := time.Now()
		if _, err := r.Read(buf); err != nil {
			t.Fatal(err)
		}
		d := fc.readSeen[len(fc.readSeen)-1]
		if !d.After(before) || d.After(time.Now().Add(r.idleTimeout)) {
			t.Fatalf("read deadline %v in force, reading at %v with an idle timeout of %v", d, before, r.idleTimeout)
		}
	}
	if n := len(fc.read); n > 3 {
		t.Errorf("the read deadline was set %d times over %d frames, want at most 3", n, frames)
	}
	// Once stopped, the wake-up deadline set is not taken for one still in force.
	r.stop()
	if _, err := r.Read(buf); err != errShutdown {
		t.Fatalf("Read after stop: %v, want errShutdown", err)
	}
	if last := fc.read[len(fc.read)-1]; !last.Equal(aLongTimeAgo) {
		t.Errorf("deadline after stop = %v, want %v", last, aLongTimeAgo)
	}
}

// The ACK writer renews its write deadline only when less than WriteTimeout is left: every ACK
// still has at least WriteTimeout, and a busy connection does not set it at every ACK.
func TestWriteDeadlineRenewed(t *testing.T) {
	const wt = time.Minute
	fc := &deadlineConn{}
	c := &conn{s: &Server{o: Options{WriteTimeout: wt}}, raw: fc, nc: fc}
	var wdl time.Time
	for i := range 1000 {
		before := time.Now()
		if err := c.write([]byte("ack"), &wdl); err != nil {
			t.Fatal(err)
		}
		set := fc.written[len(fc.written)-1]
		if set.Before(before.Add(wt)) || set.After(time.Now().Add(wt+wt/deadlineSlack)) {
			t.Fatalf("ACK %d: write deadline %v, written at %v with a write timeout of %v", i, set, before, wt)
		}
	}
	if fc.writes != 1000 {
		t.Fatalf("%d writes, want 1000", fc.writes)
	}
	if n := len(fc.written); n != 1 {
		t.Errorf("the write deadline was set %d times over 1000 ACKs, want once", n)
	}
}
