package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
)

// ackServer is a loopback MLLP server for the load generator's tests and benchmarks: it answers
// every frame with a small ACK (code from ackCode, AA by default) echoing MSH-10, writing the ACKs
// of the frames it has buffered together, as the engine does, and keeps what it received per
// connection when keep is set.
type ackServer struct {
	ln      net.Listener
	keep    bool
	ackCode func(controlID string) string
	delay   time.Duration // before each ACK (at window 1, a server that takes its time)
	pause   time.Duration // before reading anything (the sender's writes back up)
	// readBuffer, when positive, is the receive buffer size of the server's connections.
	readBuffer int

	mu       sync.Mutex
	frames   map[string][][]byte    // by control ID prefix (run ID and connection: "R-3")
	arrivals map[string][]time.Time // when each frame was read, by prefix
	wg       sync.WaitGroup
}

// startAckServer starts the server, configured by set before it accepts connections.
func startAckServer(tb testing.TB, keep bool, set ...func(*ackServer)) *ackServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &ackServer{ln: ln, keep: keep, frames: map[string][][]byte{}, arrivals: map[string][]time.Time{}}
	for _, f := range set {
		f(s)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.serve(c)
			}()
		}
	}()
	tb.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

func (s *ackServer) addr() string { return s.ln.Addr().String() }

func (s *ackServer) serve(c net.Conn) {
	defer c.Close()
	if s.readBuffer > 0 {
		_ = c.(*net.TCPConn).SetReadBuffer(s.readBuffer)
	}
	time.Sleep(s.pause)
	fr := hl7.NewFrameReader(c, 0)
	w := bufio.NewWriterSize(c, 64<<10)
	var ack []byte
	for {
		frame, err := fr.ReadFrame()
		if err != nil {
			return
		}
		at := time.Now()
		id := controlID(frame)
		if s.keep {
			prefix := id
			if i := strings.LastIndexByte(id, '-'); i >= 0 {
				prefix = id[:i]
			}
			s.mu.Lock()
			s.frames[prefix] = append(s.frames[prefix], bytes.Clone(frame))
			s.arrivals[prefix] = append(s.arrivals[prefix], at)
			s.mu.Unlock()
		}
		code := "AA"
		if s.ackCode != nil {
			code = s.ackCode(id)
		}
		if s.delay > 0 {
			time.Sleep(s.delay)
		}
		ack = append(ack[:0], "MSH|^~\\&|vaxgate|IIS|vaxgate-bench|X68|20261101123456-0500||ACK^V04^ACK|A"...)
		ack = append(ack, id...)
		ack = append(ack, "|P|2.5.1\rMSA|"...)
		ack = append(ack, code...)
		ack = append(ack, '|')
		ack = append(ack, id...)
		ack = append(ack, '\r')
		if code == "AE" {
			ack = append(ack, "ERR||PID^1^7|101^Required field missing^HL70357|W\r"...)
		}
		w.Write(hl7.AppendFrame(nil, ack))
		if fr.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}

// controlID is MSH-10 of a frame.
func controlID(frame []byte) string {
	f := bytes.SplitN(frame, []byte("|"), 11)
	if len(f) < 11 {
		return ""
	}
	return string(f[9])
}

// TestBenchSendsTheGeneratorsMessages: what `vaxgate bench` writes on each connection is, byte
// for byte and in order, what that connection's generator makes (the golden test of vxugen holds
// the generator's bytes), with and without a rate and whatever the window.
func TestBenchSendsTheGeneratorsMessages(t *testing.T) { bothPaths(t, testBenchSends) }

// bothPaths runs a test of runBench with its event loop and with a goroutine per connection.
func bothPaths(t *testing.T, test func(t *testing.T)) {
	for _, loop := range []bool{true, false} {
		name := "goroutines"
		if loop {
			name = "event loop"
		}
		t.Run(name, func(t *testing.T) {
			was := benchEventLoop
			benchEventLoop = loop
			defer func() { benchEventLoop = was }()
			test(t)
		})
	}
}

func testBenchSends(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int
		rate   float64
	}{{"window 8", 8, 0}, {"window 1", 1, 0}, {"rated", 3, 4000}} {
		t.Run(tc.name, func(t *testing.T) {
			s := startAckServer(t, true)
			o := benchOptions{addr: s.addr(), conns: 3, messages: 301, window: tc.window, rate: tc.rate, facility: "X68",
				processing: "P", seed: 7, timeout: time.Minute, runID: "W", updateShare: 0.05}
			res, err := runBench(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			if res.failed != 0 || res.sent != o.messages || res.codes["AA"] != o.messages {
				t.Fatalf("%d sent, %d failed, codes %v: %v", res.sent, res.failed, res.codes, res.errors)
			}
			for c := 0; c < o.conns; c++ {
				gen := benchGenerator(o, c, max(o.messages/2, 1), res.now)
				got := s.received("W-" + string(rune('0'+c)))
				want := 101 - min(c, 1) // 301 over 3: 101, 100, 100
				if len(got) != want {
					t.Fatalf("connection %d: %d messages received, want %d", c, len(got), want)
				}
				for i, m := range got {
					if exp := gen.Next(); !bytes.Equal(m, exp) {
						t.Fatalf("connection %d, message %d: sent bytes differ from the generator's", c, i)
					}
				}
			}
		})
	}
}

func (s *ackServer) received(prefix string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames[prefix]
}

// TestBenchCountsAckCodes: every ACK is read and classified by MSA-1, AE counts as acknowledged,
// anything else fails the run, and the latency and --split counts cover every message.
func TestBenchCountsAckCodes(t *testing.T) { bothPaths(t, testBenchCountsAckCodes) }

func testBenchCountsAckCodes(t *testing.T) {
	s := startAckServer(t, false, func(s *ackServer) {
		s.ackCode = func(id string) string {
			switch {
			case strings.HasSuffix(id, "7"):
				return "AE"
			case strings.HasSuffix(id, "13"):
				return "AR"
			}
			return "AA"
		}
	})
	o := benchOptions{addr: s.addr(), conns: 4, messages: 400, window: 5, facility: "X68", processing: "P",
		seed: 2, timeout: time.Minute, runID: "C", split: time.Hour}
	res, err := runBench(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// Per connection, sequence numbers 1..100: 10 end in 7, 1 in 13 (13), and the rest AA.
	want := map[string]int{"AA": 4 * 89, "AE": 4 * 10, "AR": 4 * 1}
	if res.sent != 400 || res.failed != 4 || res.codes["AA"] != want["AA"] || res.codes["AE"] != want["AE"] || res.codes["AR"] != want["AR"] {
		t.Fatalf("sent %d, failed %d, codes %v, want %v", res.sent, res.failed, res.codes, want)
	}
	if res.latency.n != 400 || res.early != 400 || res.latency.max <= 0 || res.latency.max > time.Minute {
		t.Fatalf("latency samples %d (max %v), early %d", res.latency.n, res.latency.max, res.early)
	}
	var out bytes.Buffer
	res.print(&out, o)
	if !strings.Contains(out.String(), "acks: AA=356 AE=40 AR=4  non-AA=44  failed=4\n") {
		t.Fatalf("printed:\n%s", out.String())
	}
}

// TestBenchLatencyIsTheACKsTime: at window 1 against a server that takes 3 ms per message, the
// latency printed is that time, not less (the clock starts at the write) and not much more.
func TestBenchLatencyIsTheACKsTime(t *testing.T) { bothPaths(t, testBenchLatencyIsTheACKsTime) }

func testBenchLatencyIsTheACKsTime(t *testing.T) {
	s := startAckServer(t, false, func(s *ackServer) { s.delay = 3 * time.Millisecond })
	o := benchOptions{addr: s.addr(), conns: 2, messages: 100, window: 1, facility: "X68", processing: "P",
		seed: 2, timeout: time.Minute, runID: "L"}
	res, err := runBench(context.Background(), o)
	if err != nil || res.failed != 0 {
		t.Fatalf("%v %v", err, res.errors)
	}
	if p := res.latency.percentile(0); p < s.delay {
		t.Fatalf("smallest latency %v, below the server's %v", p, s.delay)
	}
	if p := res.latency.percentile(0.5); p > 10*s.delay {
		t.Fatalf("median latency %v for a server that takes %v", p, s.delay)
	}
}

// TestBenchRateSchedule: with --rate, connection c writes its message i no earlier than
// start + (i*conns + c)/rate, and the run keeps the rate asked for: it takes about messages/rate.
func TestBenchRateSchedule(t *testing.T) {
	s := startAckServer(t, true)
	o := benchOptions{addr: s.addr(), conns: 3, messages: 300, window: 2, rate: 1000, facility: "X68", processing: "P",
		seed: 4, timeout: time.Minute, runID: "S"}
	res, err := runBench(context.Background(), o)
	if err != nil || res.failed != 0 || res.sent != 300 {
		t.Fatalf("%v: %d sent, %v", err, res.sent, res.errors)
	}
	if res.elapsed < 290*time.Millisecond || res.elapsed > 3*time.Second {
		t.Fatalf("300 messages at 1000/s took %v", res.elapsed)
	}
	for c := 0; c < o.conns; c++ {
		arr := s.arrivalTimes("S-" + string(rune('0'+c)))
		if len(arr) != 100 {
			t.Fatalf("connection %d: %d messages", c, len(arr))
		}
		for i, at := range arr {
			due := res.now.Add(time.Duration(float64(time.Second) * float64(i*o.conns+c) / o.rate))
			if at.Before(due) {
				t.Fatalf("connection %d, message %d: arrived %v before it was due", c, i, due.Sub(at))
			}
		}
	}
}

func (s *ackServer) arrivalTimes(prefix string) []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arrivals[prefix]
}

// connRunner sends n messages over one connection to addr, as a connection of runBench does.
type connRunner func(ctx context.Context, addr string, n, window int, next func([]byte) []byte,
	onAck func(int, []byte, time.Duration, time.Time)) error

// connRunners are the two ways runBench drives a connection: a goroutine per connection (with a
// --rate, or where there is no event loop) and the event loop of all of them.
func connRunners(t *testing.T) map[string]connRunner {
	runners := map[string]connRunner{
		"goroutine": func(ctx context.Context, addr string, n, window int, next func([]byte) []byte,
			onAck func(int, []byte, time.Duration, time.Time)) error {
			bc, err := dialBench(ctx, addr)
			if err != nil {
				return err
			}
			defer bc.Close()
			return bc.run(ctx, n, window, benchSchedule{}, next, onAck)
		},
		"event loop": func(ctx context.Context, addr string, n, window int, next func([]byte) []byte,
			onAck func(int, []byte, time.Duration, time.Time)) error {
			l := &benchLane{n: n, next: next, onAck: onAck}
			var a atomic.Pointer[netip.Addr]
			if !runEventLoop(ctx, benchOptions{addr: addr, window: window}, []*benchLane{l}, &a) {
				t.Skip("no event loop on this system")
			}
			return l.err
		},
	}
	return runners
}

// TestBenchConnWindow: a connection never has more than its window of messages unanswered, and
// sends the next ones as soon as ACKs free their slots.
func TestBenchConnWindow(t *testing.T) {
	for name, run := range connRunners(t) {
		t.Run(name, func(t *testing.T) { testConnWindow(t, run) })
	}
}

func testConnWindow(t *testing.T, run connRunner) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const window, n = 4, 10
	seq := 0
	next := func(dst []byte) []byte {
		seq++
		return append(dst, "MSH|^~\\&|a|b|c|d|20261101||VXU^V04^VXU_V04|M-"+string(rune('0'+seq%10))+"|P|2.5.1"...)
	}
	done := make(chan error, 1)
	acks := 0
	go func() {
		done <- run(ctx, ln.Addr().String(), n, window, next, func(i int, _ []byte, _ time.Duration, _ time.Time) {
			if i != acks {
				t.Errorf("ACK %d given as %d", acks, i)
			}
			acks++
		})
	}()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	fr := hl7.NewFrameReader(sc, 0)
	read := func(k int) {
		t.Helper()
		for range k {
			if err := sc.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := fr.ReadFrame(); err != nil {
				t.Fatalf("reading a message: %v", err)
			}
		}
	}
	none := func() {
		t.Helper()
		_ = sc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		if _, err := fr.ReadFrame(); err == nil {
			t.Fatal("a message beyond the window was sent")
		}
	}
	answer := func(k int) {
		t.Helper()
		var b []byte
		for range k {
			b = hl7.AppendFrame(b, []byte("MSH|^~\\&|x|y|z|w|20261101||ACK|A1|P|2.5.1\rMSA|AA|M-1\r"))
		}
		if _, err := sc.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read(window)
	none()
	answer(2)
	read(2)
	none()
	answer(4)
	read(4)
	none()
	answer(4)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if acks != n || seq != n {
		t.Fatalf("%d messages, %d ACKs, want %d", seq, acks, n)
	}
}

// TestBenchConnEnds: a connection whose server stops answering fails with its context (no
// hang), one whose server hangs up fails at once, and an ACK for no message in flight is an
// error, not the next message's answer.
func TestBenchConnEnds(t *testing.T) {
	for name, run := range connRunners(t) {
		t.Run(name, func(t *testing.T) { testConnEnds(t, run) })
	}
}

func testConnEnds(t *testing.T, run connRunner) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	msg := func(dst []byte) []byte { return append(dst, "MSH|^~\\&|a|b|c|d|20261101||VXU^V04|M1|P|2.5.1"...) }
	nop := func(int, []byte, time.Duration, time.Time) {}
	accepted := make(chan net.Conn, 3)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	// Silent: ends with the context.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	err = run(ctx, addr, 5, 2, msg, nop)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(t0) > 5*time.Second {
		t.Fatalf("silent server: %v after %v", err, time.Since(t0))
	}
	(<-accepted).Close()

	// Hangs up after reading the first message.
	go func() {
		c := <-accepted
		_, _ = hl7.NewFrameReader(c, 0).ReadFrame()
		c.Close()
	}()
	t0 = time.Now()
	err = run(context.Background(), addr, 5, 2, msg, nop)
	if err == nil || time.Since(t0) > 5*time.Second {
		t.Fatalf("server hung up: %v after %v", err, time.Since(t0))
	}

	// Two ACKs for one message.
	go func() {
		c := <-accepted
		defer c.Close()
		if _, err := hl7.NewFrameReader(c, 0).ReadFrame(); err != nil {
			return
		}
		ack := hl7.AppendFrame(nil, []byte("MSH|^~\\&|x|y|z|w|20261101||ACK|A1|P|2.5.1\rMSA|AA|M1\r"))
		_, _ = c.Write(append(ack, ack...))
		time.Sleep(time.Second)
	}()
	err = run(context.Background(), addr, 2, 1, msg, nop)
	if err == nil || !strings.Contains(err.Error(), "no message in flight") {
		t.Fatalf("extra ACK: %v", err)
	}
}

// TestBenchEventLoopBackpressure: when the server reads slower than the event loop writes (a
// window larger than the socket buffers), the loop keeps the rest and writes it as the socket
// takes it, reading ACKs meanwhile, and every message still goes out whole and in order.
func TestBenchEventLoopBackpressure(t *testing.T) {
	was, wasBuf := benchEventLoop, benchSendBuffer
	benchEventLoop, benchSendBuffer = true, 32<<10
	defer func() { benchEventLoop, benchSendBuffer = was, wasBuf }()
	s := startAckServer(t, true, func(s *ackServer) {
		s.pause = 300 * time.Millisecond
		s.readBuffer = 32 << 10
	})
	o := benchOptions{addr: s.addr(), conns: 2, messages: 1200, window: 300, facility: "X68", processing: "P",
		seed: 5, timeout: time.Minute, runID: "P"}
	res, err := runBench(context.Background(), o)
	if err != nil || res.failed != 0 || res.sent != o.messages {
		t.Fatalf("%v: %d sent, %d failed: %v", err, res.sent, res.failed, res.errors)
	}
	for c := 0; c < o.conns; c++ {
		gen := benchGenerator(o, c, o.messages/2, res.now)
		got := s.received("P-" + string(rune('0'+c)))
		if len(got) != 600 {
			t.Fatalf("connection %d: %d messages", c, len(got))
		}
		for i, m := range got {
			if !bytes.Equal(m, gen.Next()) {
				t.Fatalf("connection %d, message %d differs", c, i)
			}
		}
	}
}

// BenchmarkBenchRun is runBench against a loopback server in this process (whose own cost is
// included: compare runs of this benchmark, and read `make bench`'s client column for the load
// generator alone), per message, with the event loop and with a goroutine per connection.
func BenchmarkBenchRun(b *testing.B) {
	s := startAckServer(b, false)
	for _, loop := range []bool{true, false} {
		for _, window := range []int{8, 1} {
			name := fmt.Sprintf("goroutines/window=%d", window)
			if loop {
				name = fmt.Sprintf("event_loop/window=%d", window)
			}
			b.Run(name, func(b *testing.B) {
				was := benchEventLoop
				benchEventLoop = loop
				defer func() { benchEventLoop = was }()
				o := benchOptions{addr: s.addr(), conns: 16, messages: max(b.N, 16), window: window, facility: "X68",
					processing: "P", seed: 1, timeout: time.Minute, runID: "B"}
				b.ReportAllocs()
				b.ResetTimer()
				res, err := runBench(context.Background(), o)
				if err != nil || res.failed != 0 {
					b.Fatalf("%v %v", err, res.errors)
				}
			})
		}
	}
}

// TestBenchWindowLimit: where a goroutine writes and reads a connection in turn (with --rate),
// a window whose messages and ACKs could fill the sockets' buffers is refused up front.
func TestBenchWindowLimit(t *testing.T) {
	o := benchOptions{addr: "127.0.0.1:1", conns: 1, messages: 10, window: maxConnWindow + 1, rate: 100,
		facility: "X68", processing: "P", seed: 1, timeout: time.Minute, runID: "X"}
	if _, err := runBench(context.Background(), o); err == nil || !strings.Contains(err.Error(), "--window") {
		t.Fatalf("window %d with --rate: %v", o.window, err)
	}
}
