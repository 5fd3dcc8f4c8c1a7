package mllp

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// bigVXU is a VXU of at least size bytes (NTE segments pad it).
func bigVXU(id string, size int) []byte {
	b := vxu(id)
	for len(b) < size {
		b = append(b, "NTE|1||"+strings.Repeat("x", 200)+"\r"...)
	}
	return b
}

func TestExchange(t *testing.T) {
	lf := bytes.ReplaceAll(vxu("LF1"), []byte("\r"), []byte("\n"))
	big := bigVXU("BIG", 5000)
	tests := []struct {
		name     string
		maxSize  int
		writes   [][]byte
		wantIDs  []string // MSA-2 of the ACKs, in order
		wantMSA1 []string
		payloads [][]byte // what the pipeline must have been given (nil: the messages of wantIDs)
		tooLarge []int
		junk     float64
	}{
		{
			name:    "one message",
			writes:  [][]byte{frame(vxu("1"))},
			wantIDs: []string{"1"},
		},
		{
			name:    "junk before the start block is skipped",
			writes:  [][]byte{[]byte("\r\n garbage \x00\xff"), frame(vxu("1")), []byte("\n"), frame(vxu("2"))},
			wantIDs: []string{"1", "2"},
			junk:    14, // the CR after each 0x1C belongs to its frame
		},
		{
			name:    "several frames in one write",
			writes:  [][]byte{bytes.Join([][]byte{frame(vxu("1")), frame(vxu("2")), frame(vxu("3"))}, nil)},
			wantIDs: []string{"1", "2", "3"},
		},
		{
			name:    "frame split over many writes",
			writes:  split(frame(vxu("1")), 7),
			wantIDs: []string{"1"},
		},
		{
			name:    "end block without CR",
			writes:  [][]byte{append(append([]byte{0x0B}, vxu("1")...), 0x1C), frame(vxu("2"))},
			wantIDs: []string{"1", "2"},
		},
		{
			name:     "LF segment separators are passed on as received",
			writes:   [][]byte{frame(lf)},
			wantIDs:  []string{"LF1"},
			payloads: [][]byte{lf},
		},
		{
			name:     "oversize frame then a good one on the same connection",
			maxSize:  1024,
			writes:   [][]byte{frame(big), frame(vxu("2"))},
			wantIDs:  []string{"BIG", "2"},
			wantMSA1: []string{"AR", "AA"},
			payloads: [][]byte{big, vxu("2")},
			tooLarge: []int{len(big), 0},
		},
		{
			name:     "empty frame is answered",
			writes:   [][]byte{{0x0B, 0x1C, 0x0D}, frame(vxu("2"))},
			wantIDs:  []string{"", "2"},
			payloads: [][]byte{nil, vxu("2")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &testStarter{}
			srv := startServer(t, Options{Starter: st, MaxMessageSize: tt.maxSize})
			c := dialRaw(t, srv.addr)
			for _, w := range tt.writes {
				if _, err := c.Write(w); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			acks := readACKs(t, c, hl7.NewFrameReader(c, 0), len(tt.wantIDs))
			for i, a := range acks {
				code, id := msa(t, a)
				if id != tt.wantIDs[i] {
					t.Errorf("ACK %d answers %q, want %q", i, id, tt.wantIDs[i])
				}
				want := "AA"
				if tt.wantMSA1 != nil {
					want = tt.wantMSA1[i]
				}
				if code != want {
					t.Errorf("ACK %d is %s, want %s", i, code, want)
				}
			}
			expectClosed(t, c, 5*time.Second)

			envs := st.envelopes()
			if len(envs) != len(tt.wantIDs) {
				t.Fatalf("pipeline got %d messages, want %d", len(envs), len(tt.wantIDs))
			}
			for i, env := range envs {
				want := tt.payloads
				var p []byte
				if want != nil {
					p = want[i]
				} else {
					p = vxu(tt.wantIDs[i])
				}
				tl := 0
				if tt.tooLarge != nil {
					tl = tt.tooLarge[i]
				}
				if tl > 0 {
					// An oversize frame is handed on as its head only.
					if len(env.Payload) == 0 || len(env.Payload) > 4096 || !bytes.HasPrefix(p, env.Payload) {
						t.Errorf("oversize payload %d: %d bytes, not a head of the message", i, len(env.Payload))
					}
				} else if !bytes.Equal(env.Payload, p) {
					t.Errorf("payload %d = %.60q..., want %.60q...", i, env.Payload, p)
				}
				if env.TooLarge != tl {
					t.Errorf("TooLarge %d = %d, want %d", i, env.TooLarge, tl)
				}
				if env.Transport != ingest.TransportMLLP || env.Sender != testSite || env.ReceivedAt.IsZero() ||
					!strings.HasPrefix(env.Remote, "127.0.0.1:") {
					t.Errorf("envelope %d = {%s %v %q %v}", i, env.Transport, env.Sender, env.Remote, env.ReceivedAt)
				}
			}
			if got := counterValue(t, srv.m.junk); got != tt.junk {
				t.Errorf("junk bytes = %v, want %v", got, tt.junk)
			}
			wantOK := float64(len(tt.wantIDs))
			for _, n := range tt.tooLarge {
				if n > 0 {
					wantOK--
				}
			}
			if got := counterValue(t, srv.m.frames.WithLabelValues(outcomeOK)); got != wantOK {
				t.Errorf("frames ok = %v, want %v", got, wantOK)
			}
			eventually(t, "ACK latency observed", func() bool { return counterValue(t, srv.m.ackSeconds) == float64(len(tt.wantIDs)) })
		})
	}
}

func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	return append(out, b)
}

// Pipelined messages whose commits complete in reverse order are still answered in order.
func TestPipelinedAnsweredInOrder(t *testing.T) {
	const n = 20
	gates := make([]chan struct{}, n)
	for i := range gates {
		gates[i] = make(chan struct{})
	}
	st := &testStarter{
		started: make(chan ingest.Envelope, n),
		respond: func(i int, env ingest.Envelope) ingest.Pending {
			return gatedPending{gate: gates[i], ack: testACK(env)}
		},
	}
	srv := startServer(t, Options{Starter: st})
	c := dialRaw(t, srv.addr)
	var all []byte
	for i := range n {
		all = append(all, frame(vxu(string(rune('A'+i))))...)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	for range n {
		<-st.started // every message reaches the pipeline before any is answered
	}
	for i := n - 1; i >= 0; i-- {
		close(gates[i])
		time.Sleep(time.Millisecond)
	}
	fr := hl7.NewFrameReader(c, 0)
	for i, a := range readACKs(t, c, fr, n) {
		if _, id := msa(t, a); id != string(rune('A'+i)) {
			t.Fatalf("ACK %d answers %q, want %q", i, id, string(rune('A'+i)))
		}
	}
}

// The window bounds the messages read and not answered, by count and by bytes.
func TestWindow(t *testing.T) {
	tests := []struct {
		name     string
		o        Options
		msgs     [][]byte
		inFlight int
	}{
		{"count", Options{MaxInFlight: 4}, repeat(vxu("W"), 10), 4},
		{"bytes", Options{MaxMessageSize: 2048, MaxInFlightBytes: 2100}, repeat(bigVXU("W", 900), 5), 1}, // 1028 bytes each, + processing + ACK reserve
		// The budget counts what a message costs, not only its bytes: 1028 + 1028 processing +
		// 100 ACK reserve = 2156 each, so two fit in 4400 and a third does not.
		{"cost", Options{MaxMessageSize: 2048, ProcessingFactor: 1, ACKReserve: 100, MaxInFlightBytes: 4400}, repeat(bigVXU("W", 900), 5), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gate := make(chan struct{})
			var started atomic.Int32
			st := &testStarter{respond: func(_ int, env ingest.Envelope) ingest.Pending {
				started.Add(1)
				return gatedPending{gate: gate, ack: testACK(env)}
			}}
			tt.o.Starter = st
			srv := startServer(t, tt.o)
			c := dialRaw(t, srv.addr)
			var all []byte
			for _, m := range tt.msgs {
				all = append(all, frame(m)...)
			}
			if _, err := c.Write(all); err != nil {
				t.Fatal(err)
			}
			defer func() {
				select {
				case <-gate:
				default:
					close(gate)
				}
			}()
			eventually(t, "the window to fill", func() bool { return int(started.Load()) >= tt.inFlight })
			time.Sleep(100 * time.Millisecond)
			if got := int(started.Load()); got != tt.inFlight {
				t.Fatalf("%d messages in flight, want at most %d", got, tt.inFlight)
			}
			close(gate)
			readACKs(t, c, hl7.NewFrameReader(c, 0), len(tt.msgs))
		})
	}
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

func TestPartialFrameThenEOF(t *testing.T) {
	srv := startServer(t, Options{})
	c := dialRaw(t, srv.addr)
	if _, err := c.Write(append(frame(vxu("1")), "\x0bMSH|^~\\&|EHR"...)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	readACKs(t, c, hl7.NewFrameReader(c, 0), 1)
	expectClosed(t, c, 5*time.Second)
	eventually(t, "the partial frame counted", func() bool {
		return counterValue(t, srv.m.frames.WithLabelValues(outcomePartial)) == 1
	})
}

func TestIdleTimeout(t *testing.T) {
	const idle = 150 * time.Millisecond
	t.Run("silent connection is closed", func(t *testing.T) {
		srv := startServer(t, Options{IdleTimeout: idle})
		c := dialRaw(t, srv.addr)
		if d := expectClosed(t, c, 5*time.Second); d < idle/2 {
			t.Errorf("closed after %v, before the idle timeout %v", d, idle)
		}
	})
	t.Run("junk is not activity", func(t *testing.T) {
		srv := startServer(t, Options{IdleTimeout: idle})
		c := dialRaw(t, srv.addr)
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(idle / 5):
					if _, err := c.Write([]byte("\n")); err != nil {
						return
					}
				}
			}
		}()
		expectClosed(t, c, 5*time.Second)
	})
	t.Run("not idle while a message is being committed", func(t *testing.T) {
		st := &testStarter{respond: func(_ int, env ingest.Envelope) ingest.Pending {
			gate := make(chan struct{})
			time.AfterFunc(4*idle, func() { close(gate) })
			return gatedPending{gate: gate, ack: testACK(env)}
		}}
		srv := startServer(t, Options{Starter: st, IdleTimeout: idle})
		c := dialRaw(t, srv.addr)
		if _, err := c.Write(frame(vxu("1"))); err != nil {
			t.Fatal(err)
		}
		readACKs(t, c, hl7.NewFrameReader(c, 0), 1)
		expectClosed(t, c, 5*time.Second) // and idle again afterwards
	})
}

func TestReadTimeout(t *testing.T) {
	const rt = 200 * time.Millisecond
	t.Run("trickled frame is cut off", func(t *testing.T) {
		srv := startServer(t, Options{ReadTimeout: rt, IdleTimeout: time.Minute})
		c := dialRaw(t, srv.addr)
		if _, err := c.Write(append(frame(vxu("1")), "\x0bMSH|"...)); err != nil {
			t.Fatal(err)
		}
		go func() {
			for range 100 {
				time.Sleep(rt / 8)
				if _, err := c.Write([]byte("x")); err != nil {
					return
				}
			}
		}()
		readACKs(t, c, hl7.NewFrameReader(c, 0), 1)
		if d := expectClosed(t, c, 5*time.Second); d > 10*rt {
			t.Errorf("closed after %v", d)
		}
		eventually(t, "the timeout counted", func() bool {
			return counterValue(t, srv.m.frames.WithLabelValues(outcomeTimeout)) == 1
		})
	})
	t.Run("time spent in the pipeline is not charged to the sender", func(t *testing.T) {
		st := &testStarter{respond: func(n int, env ingest.Envelope) ingest.Pending {
			if n == 0 {
				time.Sleep(3 * rt) // a slow Start: the reader is not reading meanwhile
			}
			return ready(testACK(env))
		}}
		srv := startServer(t, Options{Starter: st, ReadTimeout: rt, IdleTimeout: time.Minute})
		c := dialRaw(t, srv.addr)
		second := frame(vxu("2"))
		if _, err := c.Write(append(frame(vxu("1")), second[:20]...)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(rt * 3 / 2)
		if _, err := c.Write(second[20:]); err != nil {
			t.Fatal(err)
		}
		readACKs(t, c, hl7.NewFrameReader(c, 0), 2)
	})
}

func TestMaxConnections(t *testing.T) {
	srv := startServer(t, Options{MaxConnections: 2})
	var open []*net.TCPConn
	for i := range 2 {
		c := dialRaw(t, srv.addr)
		if _, err := c.Write(frame(vxu("1"))); err != nil {
			t.Fatal(err)
		}
		readACKs(t, c, hl7.NewFrameReader(c, 0), 1)
		open = append(open, c)
		_ = i
	}
	extra := dialRaw(t, srv.addr)
	expectClosed(t, extra, 5*time.Second)
	if got := counterValue(t, srv.m.rejected); got != 1 {
		t.Errorf("rejected = %v, want 1", got)
	}
	if got := counterValue(t, srv.m.connections); got != 2 {
		t.Errorf("open connections = %v, want 2", got)
	}
	open[0].Close()
	eventually(t, "a connection to close", func() bool { return counterValue(t, srv.m.connections) == 1 })
	c := dialRaw(t, srv.addr)
	if _, err := c.Write(frame(vxu("2"))); err != nil {
		t.Fatal(err)
	}
	readACKs(t, c, hl7.NewFrameReader(c, 0), 1)
}

func TestTLSClientCertificates(t *testing.T) {
	pki := newTestPKI(t)
	other := newTestPKI(t)
	clientName := pkix.Name{CommonName: "ehr-gateway", Organization: []string{"Clinic A"}, Country: []string{"US"}}
	client := pki.issue(t, clientName, x509.ExtKeyUsageClientAuth)
	foreign := other.issue(t, clientName, x509.ExtKeyUsageClientAuth)
	wantSubject := client.Leaf.Subject.String()

	tests := []struct {
		name        string
		certs       []tls.Certificate
		wantSubject string
		wantSender  bool
		wantErr     bool
	}{
		{"client certificate identifies the sender", []tls.Certificate{client}, wantSubject, true, false},
		{"no client certificate: unknown sender", nil, "", false, false},
		{"certificate from another CA is refused", []tls.Certificate{foreign}, "", false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &testStarter{}
			senders := &testSenders{known: func(_ netip.Addr, subject string) bool { return subject == wantSubject }}
			srv := startServer(t, Options{Starter: st, Senders: senders, TLSConfig: &tls.Config{
				Certificates: []tls.Certificate{pki.server},
				ClientCAs:    pki.pool,
				ClientAuth:   tls.VerifyClientCertIfGiven,
				MinVersion:   tls.VersionTLS12,
			}})
			ctx := context.Background()
			cl, err := Dial(ctx, srv.addr, &tls.Config{RootCAs: pki.pool, Certificates: tt.certs}, WithTimeout(5*time.Second))
			var a []byte
			if err == nil {
				defer cl.Close()
				a, err = cl.Send(ctx, vxu("T1"))
			}
			if tt.wantErr {
				if err == nil {
					t.Fatal("exchange succeeded, want a TLS failure")
				}
				if len(st.envelopes()) != 0 {
					t.Error("a message was read over a refused connection")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, id := msa(t, a); id != "T1" {
				t.Errorf("ACK answers %q", id)
			}
			_, subjects := senders.lookups()
			if len(subjects) != 1 || subjects[0] != tt.wantSubject {
				t.Errorf("Senders asked for subjects %q, want [%q]", subjects, tt.wantSubject)
			}
			envs := st.envelopes()
			if len(envs) != 1 || (envs[0].Sender != nil) != tt.wantSender {
				t.Errorf("envelopes %+v, want sender %v", envs, tt.wantSender)
			}
		})
	}
}

func TestUnknownSender(t *testing.T) {
	st := &testStarter{}
	senders := &testSenders{known: func(netip.Addr, string) bool { return false }}
	srv := startServer(t, Options{Starter: st, Senders: senders})
	c := dialRaw(t, srv.addr)
	if _, err := c.Write(append(frame(vxu("1")), frame(vxu("2"))...)); err != nil {
		t.Fatal(err)
	}
	readACKs(t, c, hl7.NewFrameReader(c, 0), 2)
	envs := st.envelopes()
	if len(envs) != 2 || envs[0].Sender != nil || envs[1].Sender != nil {
		t.Fatalf("envelopes %+v: want two, without sender", envs)
	}
	addrs, _ := senders.lookups()
	if len(addrs) != 1 || addrs[0] != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("Senders asked for %v, want one lookup of 127.0.0.1", addrs)
	}
}

// When the server cannot get an answer from the pipeline it still answers: an AR 207 that names
// the message's control ID.
func TestInternalFailureAnswersAR(t *testing.T) {
	tests := []struct {
		name    string
		senders *testSenders
		respond func(int, ingest.Envelope) ingest.Pending
	}{
		{"Wait returns no ACK", nil, func(int, ingest.Envelope) ingest.Pending {
			g := make(chan struct{})
			close(g)
			return gatedPending{gate: g, err: errors.New("commit failed")}
		}},
		{"Start panics", nil, func(int, ingest.Envelope) ingest.Pending { panic("bug") }},
		{"Wait panics", nil, func(int, ingest.Envelope) ingest.Pending { return panicPending{} }},
		{"Start returns nil", nil, func(int, ingest.Envelope) ingest.Pending { return nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Options{Starter: &testStarter{respond: tt.respond}}
			if tt.senders != nil {
				o.Senders = tt.senders
			}
			srv := startServer(t, o)
			c := dialRaw(t, srv.addr)
			if _, err := c.Write(append(frame(vxu("X1")), frame(vxu("X2"))...)); err != nil {
				t.Fatal(err)
			}
			for i, a := range readACKs(t, c, hl7.NewFrameReader(c, 0), 2) {
				code, id := msa(t, a)
				if code != "AR" || id != []string{"X1", "X2"}[i] || !bytes.Contains(a, []byte("207")) {
					t.Errorf("ACK %d = %q, want AR 207 for X%d", i, a, i+1)
				}
			}
			if got := counterValue(t, srv.m.internalErrors); got != 2 {
				t.Errorf("internal errors = %v, want 2", got)
			}
		})
	}
}

// An ACK that would break the framing is sent with its framing bytes replaced: the sender stays
// in step and gets every later ACK.
func TestACKWithFramingByte(t *testing.T) {
	st := &testStarter{respond: func(n int, env ingest.Envelope) ingest.Pending {
		a := testACK(env)
		if n == 0 {
			a = append(a, "NTE|\x1c\x0b\r"...)
		}
		return ready(a)
	}}
	srv := startServer(t, Options{Starter: st})
	c := dialRaw(t, srv.addr)
	if _, err := c.Write(append(frame(vxu("1")), frame(vxu("2"))...)); err != nil {
		t.Fatal(err)
	}
	acks := readACKs(t, c, hl7.NewFrameReader(c, 0), 2)
	if !bytes.HasSuffix(acks[0], []byte("NTE|??\r")) {
		t.Errorf("first ACK = %q", acks[0])
	}
	if _, id := msa(t, acks[1]); id != "2" {
		t.Errorf("second ACK answers %q", id)
	}
}

type panicPending struct{}

func (panicPending) Wait(context.Context) ([]byte, error) { panic("bug in Wait") }

func TestShutdown(t *testing.T) {
	t.Run("finishes the messages in flight", func(t *testing.T) {
		gate := make(chan struct{})
		st := &testStarter{started: make(chan ingest.Envelope, 10), respond: func(_ int, env ingest.Envelope) ingest.Pending {
			return gatedPending{gate: gate, ack: testACK(env)}
		}}
		srv := startServer(t, Options{Starter: st})
		c := dialRaw(t, srv.addr)
		third := frame(vxu("3"))
		if _, err := c.Write(bytes.Join([][]byte{frame(vxu("1")), frame(vxu("2")), third[:10]}, nil)); err != nil {
			t.Fatal(err)
		}
		<-st.started
		<-st.started
		// The server has read the start of the third frame (not a guess at how long that takes
		// on a loaded machine: Shutdown must find that frame being received).
		eventually(t, "the start of the third frame to be read", func() bool { return srv.receivingFrame() })

		done := make(chan error, 1)
		go func() { done <- srv.Shutdown(context.Background()) }()
		eventually(t, "the listener to close", func() bool {
			nc, err := net.DialTimeout("tcp", srv.addr, time.Second)
			if err == nil {
				nc.Close()
			}
			return err != nil
		})
		// The frame being received when Shutdown began is still read and answered.
		if _, err := c.Write(third[10:]); err != nil {
			t.Fatal(err)
		}
		<-st.started
		// A frame after it is not.
		_, _ = c.Write(frame(vxu("4")))
		select {
		case err := <-done:
			t.Fatalf("Shutdown returned %v before the messages in flight were answered", err)
		case <-time.After(100 * time.Millisecond):
		}
		close(gate)
		for i, a := range readACKs(t, c, hl7.NewFrameReader(c, 0), 3) {
			if _, id := msa(t, a); id != []string{"1", "2", "3"}[i] {
				t.Errorf("ACK %d answers %q", i, id)
			}
		}
		expectClosed(t, c, 5*time.Second)
		if err := <-done; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if n := len(st.envelopes()); n != 3 {
			t.Errorf("pipeline got %d messages, want 3", n)
		}
	})
	t.Run("gives up when its context ends", func(t *testing.T) {
		gate := make(chan struct{})
		defer close(gate)
		st := &testStarter{started: make(chan ingest.Envelope, 1), respond: func(_ int, env ingest.Envelope) ingest.Pending {
			return gatedPending{gate: gate, ack: testACK(env)}
		}}
		srv := startServer(t, Options{Starter: st})
		c := dialRaw(t, srv.addr)
		if _, err := c.Write(frame(vxu("1"))); err != nil {
			t.Fatal(err)
		}
		<-st.started
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Shutdown = %v, want DeadlineExceeded", err)
		}
		expectClosed(t, c, 5*time.Second)
	})
	t.Run("idle connections close at once", func(t *testing.T) {
		srv := startServer(t, Options{})
		c := dialRaw(t, srv.addr)
		if _, err := c.Write(frame(vxu("1"))); err != nil {
			t.Fatal(err)
		}
		readACKs(t, c, hl7.NewFrameReader(c, 0), 1)
		start := time.Now()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Shutdown took %v", d)
		}
		expectClosed(t, c, time.Second)
	})
}

// Oversize frames stream through without being buffered: the server allocates far less than it
// is sent, and the pipeline only ever sees the head.
func TestOversizeFramesMemoryBound(t *testing.T) {
	const limit = 64 << 10
	const size = 8 << 20
	const n = 8
	st := &testStarter{}
	srv := startServer(t, Options{Starter: st, MaxMessageSize: limit})
	huge := frame(bigVXU("HUGE", size))
	c := dialRaw(t, srv.addr)
	// Warm up the connection (buffers, goroutines) before measuring.
	if _, err := c.Write(frame(vxu("0"))); err != nil {
		t.Fatal(err)
	}
	fr := hl7.NewFrameReader(c, 0)
	readACKs(t, c, fr, 1)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range n {
		if _, err := c.Write(huge); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Write(frame(vxu("1"))); err != nil {
		t.Fatal(err)
	}
	acks := readACKs(t, c, fr, n+1)
	runtime.ReadMemStats(&after)

	t.Logf("allocated %d bytes", after.TotalAlloc-before.TotalAlloc)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 {
		t.Errorf("allocated %d bytes to receive %d bytes in frames over the %d-byte limit", alloc, n*len(huge), limit)
	}
	for i, a := range acks[:n] {
		if code, id := msa(t, a); code != "AR" || id != "HUGE" {
			t.Errorf("ACK %d = %s %s, want AR HUGE", i, code, id)
		}
	}
	if code, id := msa(t, acks[n]); code != "AA" || id != "1" {
		t.Errorf("last ACK = %s %s, want AA 1", code, id)
	}
	for _, env := range st.envelopes()[1 : n+1] {
		if env.TooLarge != len(huge)-3 || len(env.Payload) > limit {
			t.Errorf("oversize envelope: TooLarge %d (want %d), payload %d bytes", env.TooLarge, len(huge)-3, len(env.Payload))
		}
	}
	if got := counterValue(t, srv.m.frames.WithLabelValues(outcomeTooLarge)); got != n {
		t.Errorf("too_large frames = %v, want %d", got, n)
	}
}

// The server never hands the frame reader's buffer itself to the pipeline.
func TestPayloadIsCopied(t *testing.T) {
	st := &testStarter{}
	srv := startServer(t, Options{Starter: st})
	c := dialRaw(t, srv.addr)
	var all []byte
	for i := range 50 {
		all = append(all, frame(vxu(string(rune('a'+i%26))+"x"))...)
	}
	if _, err := c.Write(all); err != nil {
		t.Fatal(err)
	}
	readACKs(t, c, hl7.NewFrameReader(c, 0), 50)
	for i, env := range st.envelopes() {
		if want := vxu(string(rune('a'+i%26)) + "x"); !bytes.Equal(env.Payload, want) {
			t.Fatalf("payload %d was overwritten: %.40q", i, env.Payload)
		}
	}
}

func TestNewServerOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
	}{
		{"no starter", Options{Senders: &testSenders{}}},
		{"no senders", Options{Starter: &testStarter{}}},
		{"negative size", Options{Starter: &testStarter{}, Senders: &testSenders{}, MaxMessageSize: -1}},
		{"budget below message size", Options{Starter: &testStarter{}, Senders: &testSenders{}, MaxMessageSize: 100, MaxInFlightBytes: 50}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewServer(tt.o); err == nil {
				t.Fatal("NewServer accepted bad options")
			}
		})
	}
}
