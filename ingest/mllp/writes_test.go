package mllp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// countingListener counts the writes made on the connections it accepts.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

// countingConn is a TCP connection (CloseWrite and all) whose writes are counted.
type countingConn struct {
	*net.TCPConn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.TCPConn.Write(b)
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{TCPConn: c.(*net.TCPConn), writes: &l.writes}, nil
}

// readyGated answers once its gate is closed, and says so without waiting (ingest.Readier), as
// the store's group commit does.
type readyGated struct{ gatedPending }

func (p readyGated) Ready() bool {
	select {
	case <-p.gate:
		return true
	default:
		return false
	}
}

// TestACKsReadyTogetherOneWrite: the ACKs of messages whose commits end together are written in
// one write, in order; an ACK whose commit has not ended is not written, and does not hold back
// the ACKs before it.
func TestACKsReadyTogetherOneWrite(t *testing.T) {
	first, second := make(chan struct{}), make(chan struct{})
	st := &testStarter{respond: func(n int, env ingest.Envelope) ingest.Pending {
		gate := first
		if n >= 4 {
			gate = second
		}
		return readyGated{gatedPending{gate: gate, ack: testACK(env)}}
	}}
	s, err := NewServer(Options{Starter: st, Senders: &testSenders{}, Logger: zap.NewNop(), Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &countingListener{Listener: inner}
	served := make(chan error, 1)
	go func() { served <- s.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v", err)
		}
	})

	c := dialRaw(t, inner.Addr().String())
	var stream []byte
	for i := range 8 {
		stream = append(stream, frame(vxu(fmt.Sprintf("W%d", i)))...)
	}
	if _, err := c.Write(stream); err != nil {
		t.Fatal(err)
	}
	eventually(t, "all 8 messages started", func() bool { return len(st.envelopes()) == 8 })
	fr := hl7.NewFrameReader(c, 1<<20)

	close(first)
	acks := readACKs(t, c, fr, 4)
	if n := l.writes.Load(); n != 1 {
		t.Errorf("4 ACKs ready together took %d writes, want 1", n)
	}
	// The other four are not committed: nothing more may arrive.
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if f, err := fr.ReadFrame(); err == nil {
		t.Fatalf("an ACK arrived before its commit: %q", f)
	}
	// The frame reader saw a timeout: read the rest through a new one.
	fr = hl7.NewFrameReader(c, 1<<20)
	close(second)
	acks = append(acks, readACKs(t, c, fr, 4)...)
	for i, a := range acks {
		if _, id := msa(t, a); id != fmt.Sprintf("W%d", i) {
			t.Errorf("ACK %d answers %s", i, id)
		}
	}
	if n := l.writes.Load(); n != 2 {
		t.Errorf("two groups of ACKs took %d writes, want 2", n)
	}
}
