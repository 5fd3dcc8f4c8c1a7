package mllp

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// While the registry's database is unavailable a message gets no ACK at all (an AR "send it again
// later" is final for many senders): the connection is closed after the ACKs of the messages
// before it, and the sender sends it again.
func TestUnavailableClosesWithoutACK(t *testing.T) {
	t.Run("the pipeline answers ErrUnavailable", func(t *testing.T) {
		st := &testStarter{respond: func(n int, env ingest.Envelope) ingest.Pending {
			if n == 1 {
				g := make(chan struct{})
				close(g)
				return gatedPending{gate: g, err: fmt.Errorf("ingest: commit message: %w", ingest.ErrUnavailable)}
			}
			return ready(testACK(env))
		}}
		srv := startServer(t, Options{Starter: st})
		c := dialRaw(t, srv.addr)
		if _, err := c.Write(append(append(frame(vxu("U1")), frame(vxu("U2"))...), frame(vxu("U3"))...)); err != nil {
			t.Fatal(err)
		}
		fr := hl7.NewFrameReader(c, 0)
		if code, id := msa(t, readACKs(t, c, fr, 1)[0]); code != "AA" || id != "U1" {
			t.Errorf("first ACK %s %s; want AA U1", code, id)
		}
		expectNoACKClosed(t, c, fr)
		if got := counterValue(t, srv.m.internalErrors); got != 0 {
			t.Errorf("internal errors = %v; want 0 (nothing was answered AR)", got)
		}
	})
	t.Run("the sender cannot be looked up", func(t *testing.T) {
		srv := startServer(t, Options{Starter: &testStarter{}, Senders: &testSenders{err: errors.New("database unreachable")}})
		c := dialRaw(t, srv.addr)
		if _, err := c.Write(frame(vxu("L1"))); err != nil {
			t.Fatal(err)
		}
		expectNoACKClosed(t, c, hl7.NewFrameReader(c, 0))
	})
}

// expectNoACKClosed checks that the server closes c within 5 s without sending another frame.
func expectNoACKClosed(t *testing.T, c net.Conn, fr *hl7.FrameReader) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	a, err := fr.ReadFrame()
	var ne net.Error
	switch {
	case err == nil:
		t.Errorf("answered %q; want the connection closed without an ACK", a)
	case errors.As(err, &ne) && ne.Timeout():
		t.Errorf("the connection was not closed: %v", err)
	}
}
