package mllp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// dialFrom connects to addr from the loopback address src (Linux routes all of 127.0.0.0/8 to
// lo), so that one test can play several sources.
func dialFrom(t testing.TB, src, addr string) (*net.TCPConn, error) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn), nil
}

// exchange sends one message on c and returns its ACK's MSA-1, or "" when the connection was
// closed instead.
func exchange(t testing.TB, c net.Conn, id string) string {
	t.Helper()
	if _, err := c.Write(frame(vxu(id))); err != nil {
		return ""
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	a, err := hl7.NewFrameReader(c, 0).ReadFrame()
	if err != nil {
		return ""
	}
	code, _ := msa(t, a)
	return code
}

// rangedSenders is testSenders that also lists the address ranges of its credentials. The server
// reads them from its own goroutine (the periodic refresh) while a test registers new ones.
type rangedSenders struct {
	testSenders
	mu     sync.Mutex
	ranges []netip.Prefix
}

func (s *rangedSenders) MLLPSourceRanges(context.Context) ([]netip.Prefix, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ranges), nil
}

func (s *rangedSenders) setRanges(r ...netip.Prefix) {
	s.mu.Lock()
	s.ranges = r
	s.mu.Unlock()
}

// One address cannot take every slot: past MaxConnectionsPerSource its connections are refused,
// while other addresses still connect and are answered.
func TestConnectionsPerSource(t *testing.T) {
	srv := startServer(t, Options{MaxConnectionsPerSource: 3, MaxConnections: 100})
	var held []*net.TCPConn
	for i := range 3 {
		c, err := dialFrom(t, "127.0.0.2", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		if code := exchange(t, c, "P"+string(rune('0'+i))); code != "AA" {
			t.Fatalf("connection %d from 127.0.0.2: %q", i, code)
		}
		held = append(held, c)
	}
	extra, err := dialFrom(t, "127.0.0.2", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	expectClosed(t, extra, 5*time.Second)
	if got := counterValue(t, srv.m.rejected.WithLabelValues(rejectPerSource)); got != 1 {
		t.Errorf("per_source rejections = %v, want 1", got)
	}
	other, err := dialFrom(t, "127.0.0.3", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if code := exchange(t, other, "OTHER"); code != "AA" {
		t.Errorf("another source: %q, want AA", code)
	}
	// A slot freed by the source is its own again.
	held[0].Close()
	eventually(t, "the slot to be freed", func() bool { return counterValue(t, srv.m.connections) == 3 })
	again, err := dialFrom(t, "127.0.0.2", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if code := exchange(t, again, "AGAIN"); code != "AA" {
		t.Errorf("after a slot was freed: %q, want AA", code)
	}
}

// When anyone may fill the unreserved slots, registered senders (addresses inside a credential's
// range) still get the reserved ones.
func TestReservedConnections(t *testing.T) {
	senders := &rangedSenders{ranges: []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}}
	srv := startServer(t, Options{Senders: senders, MaxConnections: 6, ReservedConnections: 2, MaxConnectionsPerSource: -1})
	// Four unknown connections from two addresses take the unreserved slots, idle.
	for i := range 4 {
		if _, err := dialFrom(t, []string{"127.0.0.2", "127.0.0.3"}[i%2], srv.addr); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "four connections", func() bool { return counterValue(t, srv.m.connections) == 4 })
	refused, err := dialFrom(t, "127.0.0.4", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	expectClosed(t, refused, 5*time.Second)
	if got := counterValue(t, srv.m.rejected.WithLabelValues(rejectReserved)); got != 1 {
		t.Errorf("reserved rejections = %v, want 1", got)
	}
	for i := range 2 {
		c, err := dialFrom(t, "127.0.0.5", srv.addr)
		if err != nil {
			t.Fatal(err)
		}
		if code := exchange(t, c, "KNOWN"+string(rune('0'+i))); code != "AA" {
			t.Fatalf("known sender's connection %d: %q, want AA", i, code)
		}
	}
	full, err := dialFrom(t, "127.0.0.5", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	expectClosed(t, full, 5*time.Second) // MaxConnections still holds
}

// A connection must send HL7 within the handshake timeout; silence, junk and frames that are
// not HL7 do not keep it open, while a message that has started arriving gets its read timeout.
func TestHandshakeTimeout(t *testing.T) {
	const hs = 300 * time.Millisecond
	o := Options{HandshakeTimeout: hs, IdleTimeout: time.Minute, ReadTimeout: time.Minute, MaxJunkFrames: -1}
	t.Run("silent", func(t *testing.T) {
		srv := startServer(t, o)
		c := dialRaw(t, srv.addr)
		if d := expectClosed(t, c, 5*time.Second); d < hs/2 || d > 10*hs {
			t.Errorf("closed after %v, want about %v", d, hs)
		}
		eventually(t, "the close counted", func() bool {
			return counterValue(t, srv.m.closed.WithLabelValues(closedHandshake)) == 1
		})
	})
	t.Run("frames that are not HL7", func(t *testing.T) {
		srv := startServer(t, o)
		c := dialRaw(t, srv.addr)
		go func() {
			for range 50 {
				if _, err := c.Write(frame([]byte("GET / HTTP/1.1"))); err != nil {
					return
				}
				time.Sleep(hs / 6)
			}
		}()
		if d := expectClosed(t, c, 5*time.Second); d > 10*hs {
			t.Errorf("closed after %v", d)
		}
	})
	t.Run("known sender may wait", func(t *testing.T) {
		known := o
		known.Senders = &rangedSenders{ranges: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
		srv := startServer(t, known)
		c := dialRaw(t, srv.addr)
		time.Sleep(3 * hs)
		if code := exchange(t, c, "LATE"); code != "AA" {
			t.Errorf("a registered sender's first message after %v: %q, want AA", 3*hs, code)
		}
	})
	t.Run("a message arriving slowly", func(t *testing.T) {
		srv := startServer(t, o)
		c := dialRaw(t, srv.addr)
		m := frame(vxu("SLOW"))
		if _, err := c.Write(m[:10]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * hs)
		if _, err := c.Write(m[10:]); err != nil {
			t.Fatal(err)
		}
		if a := readACKs(t, c, hl7.NewFrameReader(c, 0), 1); len(a) != 1 {
			t.Fatal("no ACK")
		}
		// Identified now: the handshake timeout no longer applies, the idle timeout does.
		time.Sleep(2 * hs)
		if code := exchange(t, c, "AFTER"); code != "AA" {
			t.Errorf("after the handshake: %q, want AA", code)
		}
	})
}

// A junk frame does not reset the idle timeout: a connection that sends a valid message and then
// only frames that are not HL7 is closed when it has been idle for IdleTimeout.
func TestJunkFramesAreNotActivity(t *testing.T) {
	const idle = 400 * time.Millisecond
	srv := startServer(t, Options{IdleTimeout: idle, MaxJunkFrames: -1})
	c := dialRaw(t, srv.addr)
	if code := exchange(t, c, "1"); code != "AA" {
		t.Fatalf("first message: %q", code)
	}
	start := time.Now()
	go func() { // 10 s of junk frames, 20 per idle timeout
		for range 200 {
			if _, err := c.Write(frame([]byte("\x00\x01junk"))); err != nil {
				return
			}
			time.Sleep(idle / 8)
		}
	}()
	expectClosed(t, c, 8*time.Second)
	if d := time.Since(start); d > 5*idle {
		t.Errorf("closed %v after the last valid message, idle timeout %v", d, idle)
	}
}

// Noise gets a few answers, not one per stray 0x0B: after MaxJunkFrames frames in a row that are
// not HL7, the connection is closed.
func TestJunkFramesClose(t *testing.T) {
	t.Run("junk frames", func(t *testing.T) {
		srv := startServer(t, Options{MaxJunkFrames: 3})
		c := dialRaw(t, srv.addr)
		var all []byte
		all = append(all, frame(vxu("1"))...)
		all = append(all, frame([]byte("junk"))...)
		all = append(all, frame(vxu("2"))...) // a valid frame resets the count
		for range 10 {
			all = append(all, frame([]byte("junk"))...)
		}
		if _, err := c.Write(all); err != nil {
			t.Fatal(err)
		}
		fr := hl7.NewFrameReader(c, 0)
		acks := readACKs(t, c, fr, 5)
		if code, id := msa(t, acks[2]); code != "AA" || id != "2" {
			t.Errorf("third ACK %s %s, want AA 2", code, id)
		}
		expectClosed(t, c, 5*time.Second)
		eventually(t, "the close counted as junk", func() bool {
			return counterValue(t, srv.m.closed.WithLabelValues(closedJunk)) == 1
		})
	})
	t.Run("2 MB of random bytes", func(t *testing.T) {
		srv := startServer(t, Options{MaxJunkFrames: 3})
		c := dialRaw(t, srv.addr)
		noise := make([]byte, 2<<20)
		_, _ = rand.Read(noise)
		go func() { _, _ = c.Write(noise) }()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		fr := hl7.NewFrameReader(c, 0)
		n := 0
		for {
			if _, err := fr.ReadFrame(); err != nil {
				break
			}
			n++
		}
		if n > 3 {
			t.Errorf("%d ACKs to 2 MB of noise, want at most 3", n)
		}
		t.Logf("%d ACKs to 2 MB of random bytes", n)
	})
}

// switchSenders knows the test site until revoke is called, and counts lookups.
type switchSenders struct {
	revoked atomic.Bool
	n       atomic.Int64
}

func (s *switchSenders) SOAPCredential(context.Context, string) (*ingest.SOAPCredential, error) {
	return nil, ingest.ErrUnknownSender
}

func (s *switchSenders) MLLPSender(context.Context, netip.Addr, string) (*ingest.Sender, error) {
	s.n.Add(1)
	if s.revoked.Load() {
		return nil, ingest.ErrUnknownSender
	}
	return testSite, nil
}

// A credential revoked while its connection is open stops working within SenderTTL, without a
// reconnect; and within the TTL the lookups are shared, not one per message.
func TestSenderRecheckedOnOpenConnection(t *testing.T) {
	const ttl = time.Second
	st := &testStarter{}
	senders := &switchSenders{}
	srv := startServer(t, Options{Starter: st, Senders: senders, SenderTTL: ttl})
	c := dialRaw(t, srv.addr)
	second := dialRaw(t, srv.addr)
	for i := range 10 {
		exchange(t, c, "A"+string(rune('0'+i)))
		exchange(t, second, "B"+string(rune('0'+i)))
	}
	if n := senders.n.Load(); n > 3 {
		t.Errorf("%d lookups for 20 messages within the TTL, want 1 (or a few on a slow machine)", n)
	}
	senders.revoked.Store(true)
	time.Sleep(ttl + 100*time.Millisecond)
	exchange(t, c, "REVOKED")
	envs := st.envelopes()
	if len(envs) != 21 {
		t.Fatalf("%d envelopes, want 21", len(envs))
	}
	if envs[0].Sender == nil || envs[19].Sender == nil {
		t.Error("messages before the revocation had no sender")
	}
	if envs[20].Sender != nil {
		t.Error("a message after the revocation (and the TTL) still carried the revoked sender")
	}
}

// The frame reader returns exactly what hl7.FrameReader does, over every way the bytes can be
// split across reads.
func TestFrameReaderMatchesHL7(t *testing.T) {
	big := frame(bigVXU("BIG", 300<<10)) // spans chunks
	streams := [][]byte{
		frame(vxu("1")),
		append(append([]byte("junk\r\n"), frame(vxu("2"))...), "tail"...),
		bytes.Join([][]byte{frame(vxu("1")), big, frame(vxu("3"))}, nil),
		append(big, frame(vxu("4"))...),
		{0x0B, 0x0B, 0x1C, 0x1C, 0x0D, 0x0D, 0x0B},
		append(frame(vxu("5")), "\x0bMSH|partial"...),
	}
	for i, s := range streams {
		for _, max := range []int{100, 64 << 10, 1 << 20} {
			for _, step := range []int{1, 7, 4096, len(s)} {
				compareFrameReaders(t, s, max, step)
				if t.Failed() {
					t.Fatalf("stream %d, max %d, step %d", i, max, step)
				}
			}
		}
	}
}

// stepReader returns at most step bytes per Read.
type stepReader struct {
	b    []byte
	step int
}

func (r *stepReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.b)
	r.b = r.b[n:]
	return n, nil
}

func compareFrameReaders(t testing.TB, data []byte, max, step int) {
	t.Helper()
	alloc := newChunkAlloc(nil)
	ours := newFrameReader(&stepReader{b: data, step: step}, max, alloc)
	ref := hl7.NewFrameReader(&stepReader{b: data, step: step}, max)
	for n := 0; ; n++ {
		a, errA := ours.ReadFrame()
		b, errB := ref.ReadFrame()
		if !bytes.Equal(a, b) || !sameFrameError(errA, errB) {
			t.Fatalf("frame %d: ours %.60q %v; hl7 %.60q %v", n, a, errA, b, errB)
		}
		if ours.Skipped() != ref.Skipped() {
			t.Fatalf("frame %d: skipped %d, hl7 %d", n, ours.Skipped(), ref.Skipped())
		}
		if errA != nil && !isTooLarge(errA) {
			break
		}
	}
	if h := alloc.Held(); h != 0 {
		t.Fatalf("%d bytes of chunks still held at the end of the stream", h)
	}
}

func isTooLarge(err error) bool {
	var tl *hl7.FrameTooLargeError
	return errors.As(err, &tl)
}

func sameFrameError(a, b error) bool {
	var ta, tb *hl7.FrameTooLargeError
	if errors.As(a, &ta) || errors.As(b, &tb) {
		// hl7.FrameReader keeps what its buffer held of the head; ours keeps the first 4 KiB.
		return errors.As(a, &ta) && errors.As(b, &tb) && ta.Size == tb.Size && ta.Limit == tb.Limit &&
			bytes.HasPrefix(ta.Head, tb.Head) && len(ta.Head) == min(ta.Size, maxHead)
	}
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return errors.Is(a, b) || errors.Is(b, a)
}

// MaxMemory bounds what the messages in flight cost on all connections together: a second
// connection's message waits until the first one's answer frees the memory.
func TestMaxMemory(t *testing.T) {
	gate := make(chan struct{})
	var started atomic.Int32
	st := &testStarter{respond: func(n int, env ingest.Envelope) ingest.Pending {
		started.Add(1)
		if n == 0 {
			return gatedPending{gate: gate, ack: testACK(env)}
		}
		return ready(testACK(env))
	}}
	// Each message costs 1028 + 1028 + 100 = 2156: one fits in 3000, two do not.
	srv := startServer(t, Options{Starter: st, MaxMessageSize: 2048, ProcessingFactor: 1, ACKReserve: 100, MaxMemory: 3000})
	a, b := dialRaw(t, srv.addr), dialRaw(t, srv.addr)
	if _, err := a.Write(frame(bigVXU("A", 900))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the first message", func() bool { return started.Load() == 1 })
	if _, err := b.Write(frame(bigVXU("B", 900))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if n := started.Load(); n != 1 {
		t.Fatalf("%d messages started while the first held the memory, want 1", n)
	}
	close(gate)
	readACKs(t, a, hl7.NewFrameReader(a, 0), 1)
	readACKs(t, b, hl7.NewFrameReader(b, 0), 1)
	eventually(t, "the memory to be given back", func() bool { return srv.memory.held() == 0 })
}

// A range registered after the server started is known at once after RefreshSourceRanges.
func TestRefreshSourceRanges(t *testing.T) {
	senders := &rangedSenders{}
	srv := startServer(t, Options{Senders: senders, SenderTTL: time.Hour})
	if srv.known.contains(netip.MustParseAddr("127.0.0.9")) {
		t.Fatal("known before any range was registered")
	}
	senders.setRanges(netip.MustParsePrefix("127.0.0.0/8"))
	srv.RefreshSourceRanges(context.Background())
	if !srv.known.contains(netip.MustParseAddr("127.0.0.9")) {
		t.Error("not known after the refresh")
	}
}

// With TLS client certificates, a connection that presents a verified certificate gets a
// reserved slot when only reserved slots are left; one without a certificate does not.
func TestReservedConnectionsVerifiedCertificate(t *testing.T) {
	pki := newTestPKI(t)
	client := pki.issue(t, pkix.Name{CommonName: "ehr-gateway"}, x509.ExtKeyUsageClientAuth)
	srv := startServer(t, Options{MaxConnections: 3, ReservedConnections: 2, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{pki.server},
		ClientCAs:    pki.pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
		MinVersion:   tls.VersionTLS12,
	}})
	ctx := context.Background()
	dial := func(certs []tls.Certificate) (string, *Client) {
		cl, err := Dial(ctx, srv.addr, &tls.Config{RootCAs: pki.pool, Certificates: certs}, WithTimeout(5*time.Second))
		if err != nil {
			return "dial: " + err.Error(), nil
		}
		a, err := cl.Send(ctx, vxu("R"))
		if err != nil {
			cl.Close()
			return "send: " + err.Error(), nil
		}
		code, _ := msa(t, a)
		return code, cl
	}
	// The one unreserved slot.
	if code, cl := dial(nil); code != "AA" {
		t.Fatalf("first connection: %s", code)
	} else {
		defer cl.Close()
	}
	if code, cl := dial(nil); cl != nil {
		cl.Close()
		t.Errorf("a connection without a certificate got a reserved slot: %s", code)
	}
	if code, cl := dial([]tls.Certificate{client}); code != "AA" {
		t.Errorf("a connection with a verified certificate: %s, want AA in a reserved slot", code)
	} else {
		defer cl.Close()
	}
	eventually(t, "the refusal counted", func() bool {
		return counterValue(t, srv.m.rejected.WithLabelValues(rejectReserved)) == 1
	})
}

// The torture run's attack: 1,100 idle connections from anyone. With the default limits, the
// registered sender still connects and is answered while they are open, and the idle ones are
// gone after the handshake timeout.
func TestIdleFloodDoesNotLockOutSenders(t *testing.T) {
	const flood = 1100
	const hs = 500 * time.Millisecond
	senders := &rangedSenders{ranges: []netip.Prefix{netip.MustParsePrefix("127.0.0.5/32")}}
	srv := startServer(t, Options{Senders: senders, HandshakeTimeout: hs})
	var refused atomic.Int32 // by the kernel (backlog), not by the server
	var wg sync.WaitGroup
	for i := range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := dialFrom(t, fmt.Sprintf("127.1.%d.%d", i/250, 1+i%250), srv.addr); err != nil {
				refused.Add(1)
			}
		}()
	}
	wg.Wait()
	start := time.Now()
	c, err := dialFrom(t, "127.0.0.5", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	if code := exchange(t, c, "LEGIT"); code != "AA" {
		t.Fatalf("registered sender during the flood: %q, want AA", code)
	}
	t.Logf("registered sender answered %v into a flood of %d idle connections (%v refused by the server, %d by the kernel)",
		time.Since(start), flood, counterValue(t, srv.m.rejected), refused.Load())
	if got := counterValue(t, srv.m.rejected.WithLabelValues(rejectReserved)); got == 0 {
		t.Error("no connection of the flood was kept out of the reserved slots")
	}
	for deadline := time.Now().Add(30 * time.Second); counterValue(t, srv.m.connections) > 1; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%v connections still open 30 s after a flood with a %v handshake timeout", counterValue(t, srv.m.connections), hs)
		}
	}
}

func TestLogEvery(t *testing.T) {
	var l logEvery
	t0 := time.Unix(1000, 0)
	if n, ok := l.note(t0); !ok || n != 1 {
		t.Fatalf("first event: %d %v", n, ok)
	}
	for i := range 5 {
		if _, ok := l.note(t0.Add(time.Duration(i) * 100 * time.Millisecond)); ok {
			t.Fatal("logged twice within a second")
		}
	}
	if n, ok := l.note(t0.Add(time.Second)); !ok || n != 6 {
		t.Errorf("a second later: %d %v, want 6 true", n, ok)
	}
}
