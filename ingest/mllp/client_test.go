package mllp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net"
	"os"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

func TestClientSend(t *testing.T) {
	srv := startServer(t, Options{})
	ctx := context.Background()
	cl, err := Dial(ctx, srv.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, id := range []string{"1", "2", "REJECT-3"} {
		a, err := cl.Send(ctx, vxu(id))
		if err != nil {
			t.Fatal(err)
		}
		code, got := msa(t, a)
		want := "AA"
		if id == "REJECT-3" {
			want = "AR"
		}
		if got != id || code != want {
			t.Errorf("ACK for %s = %s %s", id, code, got)
		}
	}
	if _, err := cl.Send(ctx, []byte("MSH|^~\\&|\x1c|")); !errors.Is(err, hl7.ErrFrameContent) {
		t.Errorf("message with a framing byte: err = %v, want ErrFrameContent", err)
	}
	if _, err := cl.Send(ctx, vxu("4")); err != nil {
		t.Errorf("a refused message must not break the client: %v", err)
	}
}

func messages(ids ...string) iter.Seq[[]byte] {
	return func(yield func([]byte) bool) {
		for _, id := range ids {
			if !yield(vxu(id)) {
				return
			}
		}
	}
}

func TestClientSendPipelined(t *testing.T) {
	const n = 300
	// The pipeline answers out of order (each message waits a varying time), the server in order.
	st := &testStarter{respond: func(i int, env ingest.Envelope) ingest.Pending {
		g := make(chan struct{})
		time.AfterFunc(time.Duration((n-i)%7)*time.Millisecond, func() { close(g) })
		return gatedPending{gate: g, ack: testACK(env)}
	}}
	srv := startServer(t, Options{Starter: st})
	ctx := context.Background()
	cl, err := Dial(ctx, srv.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprint("P", i)
	}
	next := 0
	err = cl.SendPipelined(ctx, messages(ids...), 16, func(i int, a []byte, rtt time.Duration) {
		if i != next {
			t.Errorf("onAck(%d), want %d", i, next)
		}
		next++
		if _, id := msa(t, a); id != ids[i] {
			t.Errorf("ACK %d answers %q", i, id)
		}
		if rtt <= 0 {
			t.Errorf("rtt %v", rtt)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if next != n {
		t.Fatalf("%d ACKs, want %d", next, n)
	}
	// The client is still usable afterwards.
	if _, err := cl.Send(ctx, vxu("after")); err != nil {
		t.Fatal(err)
	}
}

// silentServer accepts connections, reads everything and never answers; closeAfter > 0 closes
// each connection after that many bytes instead.
func silentServer(t *testing.T, closeAfter int64) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if closeAfter > 0 {
					_, _ = io.CopyN(io.Discard, c, closeAfter)
					return
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return l.Addr().String()
}

func TestClientFailures(t *testing.T) {
	tests := []struct {
		name    string
		addr    func(t *testing.T) string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
		pipe    bool
		wantErr error
	}{
		{"no ACK within the timeout", func(t *testing.T) string { return silentServer(t, 0) }, 200 * time.Millisecond, nil, false, os.ErrDeadlineExceeded},
		{"context deadline", func(t *testing.T) string { return silentServer(t, 0) }, time.Minute,
			func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			}, false, context.DeadlineExceeded},
		{"context canceled", func(t *testing.T) string { return silentServer(t, 0) }, time.Minute,
			func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			}, false, context.Canceled},
		{"server closes", func(t *testing.T) string { return silentServer(t, 10) }, time.Minute, nil, false, nil}, // EOF or a reset
		{"pipelined: no ACK within the timeout", func(t *testing.T) string { return silentServer(t, 0) }, 200 * time.Millisecond, nil, true, os.ErrDeadlineExceeded},
		{"pipelined: context canceled", func(t *testing.T) string { return silentServer(t, 0) }, time.Minute,
			func() (context.Context, context.CancelFunc) {
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(100*time.Millisecond, cancel)
				return ctx, cancel
			}, true, context.Canceled},
		{"pipelined: server closes", func(t *testing.T) string { return silentServer(t, 10) }, time.Minute, nil, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				ctx, cancel = tt.ctx()
			}
			defer cancel()
			cl, err := Dial(context.Background(), tt.addr(t), nil, WithTimeout(tt.timeout))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			start := time.Now()
			if tt.pipe {
				err = cl.SendPipelined(ctx, messages("1", "2", "3"), 2, func(int, []byte, time.Duration) {
					t.Error("an ACK from a server that sends none")
				})
			} else {
				_, err = cl.Send(ctx, vxu("1"))
			}
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("failed after %v", d)
			}
			if _, err := cl.Send(context.Background(), vxu("2")); !errors.Is(err, ErrClientBroken) {
				t.Errorf("after a failure: err = %v, want ErrClientBroken", err)
			}
		})
	}
}

func TestDialFailure(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if _, err := Dial(context.Background(), addr, nil, WithTimeout(time.Second)); err == nil {
		t.Fatal("Dial to a closed port succeeded")
	}
	if _, err := Dial(context.Background(), addr, nil, WithTimeout(0)); err == nil {
		t.Fatal("Dial accepted a zero timeout")
	}
}
