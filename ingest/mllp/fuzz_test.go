package mllp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// fuzzStarter numbers the messages it is given and answers each with its number, or, when the
// payload says so, fails the way a broken pipeline could.
type fuzzStarter struct{ n atomic.Int64 }

func (s *fuzzStarter) Start(_ context.Context, env ingest.Envelope) ingest.Pending {
	n := s.n.Add(1) - 1
	switch {
	case bytes.Contains(env.Payload, []byte("NIL")):
		return ready(nil) // no ACK: the server builds an AR from the raw bytes
	case bytes.Contains(env.Payload, []byte("PANIC")):
		panic("fuzz")
	}
	return ready([]byte("MSH|^~\\&|||||||ACK^V04^ACK|1|P|2.5.1\rMSA|AA|" + strconv.FormatInt(n, 10) + "\r"))
}

// answeredFrames counts the frames of data that must be answered: from each 0x0B to the next
// 0x1C, up to the maxJunk-th frame in a row that is not HL7, after which the server closes.
func answeredFrames(data []byte, maxJunk int) int {
	n, junk := 0, 0
	for {
		i := bytes.IndexByte(data, hl7.FrameStart)
		if i < 0 {
			return n
		}
		j := bytes.IndexByte(data[i+1:], hl7.FrameEnd)
		if j < 0 {
			return n
		}
		n++
		if looksLikeHL7(data[i+1 : i+1+j]) {
			junk = 0
		} else if junk++; junk == maxJunk {
			return n
		}
		data = data[i+1+j+1:]
	}
}

// FuzzConn writes arbitrary bytes to a server connection and checks that the server survives,
// answers every complete frame in order with a valid ACK, and closes the connection.
func FuzzConn(f *testing.F) {
	for _, seed := range [][]byte{
		frame(vxu("1")),
		append([]byte("junk\r\n"), frame(vxu("2"))...),
		bytes.Join([][]byte{frame(vxu("1")), frame(vxu("2")), frame(vxu("3"))}, nil),
		frame(bigVXU("BIG", 1000)),
		append(frame(vxu("1")), "\x0bMSH|^~\\&|partial"...),
		{0x0B, 0x1C, 0x0D},
		{0x0B, 0x0B, 0x1C, 0x1C, 0x0D, 0x0D},
		frame([]byte("MSH|^~\\&|NIL|||||||X1|P|2.5.1\r")),
		frame([]byte("NIL")),
		frame([]byte("MSH|PANIC")),
		frame([]byte("MSH")),
		frame([]byte("MSH|\r")),
		frame([]byte("MSH^~\\&|\x00\xff|NIL")),
		// 0x0B as the field separator: the ACK must still be framable.
		frame([]byte("MSH\x0b^~\\&\x0bEHR\x0bCLINIC\x0b\x0b\x0b\x0b\x0bVXU^V04\x0bNIL\x0bP\x0b2.5.1\r")),
		frame([]byte("MSH|^~\\&|EHR|CLINIC|||||VXU^V04|ID\x0bNIL|P|2.5.1\r")),
	} {
		f.Add(seed)
	}
	st := &fuzzStarter{}
	s, err := NewServer(Options{
		Starter: st, Senders: &testSenders{}, Logger: zap.NewNop(),
		MaxMessageSize: 512, ReadTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second,
	})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		// In memory rather than over loopback TCP: thousands of connections a second would
		// exhaust the machine's ephemeral ports (TIME_WAIT).
		client, server := memPipe()
		defer client.Close()
		hung := time.AfterFunc(5*time.Second, func() { client.Close(); server.Close() })
		defer hung.Stop()
		first := st.n.Load()
		c, ok := s.admit(server)
		if !ok {
			t.Fatal("connection not admitted")
		}
		served := make(chan struct{})
		go func() {
			defer close(served)
			c.serve()
		}()
		go func() {
			_, _ = client.Write(data)
			_ = client.CloseWrite()
		}()
		fr := hl7.NewFrameReader(client, 0)
		var acks int
		for {
			a, err := fr.ReadFrame()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("after %d ACKs: %v", acks, err)
			}
			if bytes.IndexByte(a, hl7.FrameStart) >= 0 {
				t.Fatalf("ACK %d contains 0x0B, which other MLLP readers take for a new frame: %q", acks, a)
			}
			m, err := hl7.Parse(a)
			if err != nil {
				t.Fatalf("ACK %d does not parse: %v\n%q", acks, err, a)
			}
			switch code := m.Get("MSA-1"); code {
			case "AA":
				if got, want := m.Get("MSA-2"), strconv.FormatInt(first+int64(acks), 10); got != want {
					t.Fatalf("ACK %d answers message %s, want %s", acks, got, want)
				}
			case "AR":
			default:
				t.Fatalf("ACK %d has MSA-1 %q", acks, code)
			}
			acks++
		}
		<-served
		if want := answeredFrames(data, DefaultMaxJunkFrames); acks != want {
			t.Fatalf("%d ACKs for %d complete frames", acks, want)
		}
		if started := int(st.n.Load() - first); started != acks {
			t.Fatalf("%d messages started, %d answered", started, acks)
		}
	})
}

// memConn is one end of an in-memory connection that, unlike net.Pipe, can be half-closed.
// Deadlines are not supported (the fuzz test bounds its time itself).
type memConn struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func memPipe() (*memConn, *memConn) {
	ar, bw := io.Pipe()
	br, aw := io.Pipe()
	return &memConn{r: ar, w: aw}, &memConn{r: br, w: bw}
}

func (c *memConn) Read(p []byte) (int, error)  { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error) { return c.w.Write(p) }
func (c *memConn) CloseWrite() error           { return c.w.Close() }
func (c *memConn) Close() error {
	c.r.Close()
	return c.w.Close()
}
func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// FuzzFrameReader checks the server's frame reader against hl7.FrameReader on arbitrary streams,
// limits and read sizes, and that no chunk is left held.
func FuzzFrameReader(f *testing.F) {
	f.Add([]byte("junk\x0bMSH|^~\\&|x\x1c\r\x0b\x0bpartial"), uint16(8), uint8(3))
	f.Add(frame(bigVXU("BIG", 1000)), uint16(100), uint8(1))
	f.Add([]byte{0x0B, 0x1C, 0x0D, 0x0B, 0x1C}, uint16(0), uint8(255))
	f.Fuzz(func(t *testing.T, data []byte, max uint16, step uint8) {
		compareFrameReaders(t, data, int(max)+1, int(step)+1)
	})
}
