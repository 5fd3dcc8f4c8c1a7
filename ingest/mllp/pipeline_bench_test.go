package mllp

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// BenchmarkPipelineRoundTrip is vaxgate's own work per message outside the store, end to end over
// MLLP: the bench traffic (vxugen) on 8 loopback connections with 8 messages in flight each,
// through the real pipeline (parse, checks, validation, decoding, ACK) with a committer that
// answers at once. ns/op and allocs/op are per message; cpu-ns/op is the process's CPU time per
// message (client included), which a shared machine does not inflate as it does wall time.
func BenchmarkPipelineRoundTrip(b *testing.B) { pipelineRoundTrip(b, 8) }

// BenchmarkPipelineRoundTripWindow1 is BenchmarkPipelineRoundTrip with one message in flight per
// connection, as most EHR interfaces send: every message then pays its own reads, writes and
// goroutine hand-offs.
func BenchmarkPipelineRoundTripWindow1(b *testing.B) { pipelineRoundTrip(b, 1) }

// BenchmarkPipelineRoundTripGroupCommit is BenchmarkPipelineRoundTrip with a committer that
// answers as the store's writer does: in groups, every millisecond (the writer's MaxDelay is
// 2 ms), so that the ACKs of several messages of a connection are released together.
// syscalls/op counts the process's read and write system calls per message (client included).
func BenchmarkPipelineRoundTripGroupCommit(b *testing.B) {
	gc := newGroupCommitter(time.Millisecond)
	defer gc.close()
	pipelineRoundTripWith(b, 8, gc)
}

func pipelineRoundTrip(b *testing.B, window int) { pipelineRoundTripWith(b, window, ingest.DryRun{}) }

// groupCommitter answers the records committed to it in groups, every interval, with their own
// ACKs; its Pendings tell whether they are answered (ingest.Readier), as the store's do.
type groupCommitter struct {
	mu   sync.Mutex
	open []*groupPending
	stop chan struct{}
	done chan struct{}
}

type groupPending struct {
	ack      []byte
	answered chan struct{}
}

func (p *groupPending) Wait(ctx context.Context) ([]byte, error) {
	select {
	case <-p.answered:
		return p.ack, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *groupPending) Ready() bool {
	select {
	case <-p.answered:
		return true
	default:
		return false
	}
}

func newGroupCommitter(every time.Duration) *groupCommitter {
	g := &groupCommitter{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(g.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-g.stop:
				g.answer()
				return
			case <-t.C:
				g.answer()
			}
		}
	}()
	return g
}

func (g *groupCommitter) answer() {
	g.mu.Lock()
	open := g.open
	g.open = nil
	g.mu.Unlock()
	for _, p := range open {
		close(p.answered)
	}
}

func (g *groupCommitter) Commit(rec *ingest.Record) ingest.Pending {
	p := &groupPending{ack: rec.ACK, answered: make(chan struct{})}
	g.mu.Lock()
	g.open = append(g.open, p)
	g.mu.Unlock()
	return p
}

func (g *groupCommitter) close() {
	close(g.stop)
	<-g.done
}

// syscalls returns the read and write system calls the process has made (/proc/self/io), or
// false where that is not available.
func syscalls() (int64, bool) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return 0, false
	}
	var n int64
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok && (k == "syscr" || k == "syscw") {
			x, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, false
			}
			n += x
		}
	}
	return n, true
}

func pipelineRoundTripWith(b *testing.B, window int, committer ingest.Committer) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: committer, Validator: v})
	if err != nil {
		b.Fatal(err)
	}
	srv := startServer(b, Options{Starter: p})
	const conns = 8
	traffic := make([][][]byte, conns)
	for i := range traffic {
		g := vxugen.New(vxugen.Options{Seed: uint64(i + 1), Facility: "CLINIC-A", ControlIDs: "RT" + string(rune('A'+i)), Now: time.Now()})
		for range 256 {
			traffic[i] = append(traffic[i], g.Next())
		}
	}
	ctx := context.Background()
	clients := make([]*Client, conns)
	for i := range clients {
		if clients[i], err = Dial(ctx, srv.addr, nil); err != nil {
			b.Fatal(err)
		}
		defer clients[i].Close()
	}
	var ru0, ru1 syscall.Rusage
	b.ReportAllocs()
	b.ResetTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	sys0, sysOK := syscalls()
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i, cl := range clients {
		n := b.N / conns
		if i < b.N%conns {
			n++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := func(yield func([]byte) bool) {
				for k := range n {
					if !yield(traffic[i][k%len(traffic[i])]) {
						return
					}
				}
			}
			rejected := 0
			err := cl.SendPipelined(ctx, msgs, window, func(_ int, a []byte, _ time.Duration) {
				if bytes.Contains(a, []byte("\rMSA|AR|")) {
					rejected++
				}
			})
			if err == nil && rejected > 0 {
				err = fmt.Errorf("%d messages rejected: the benchmark measures accepted traffic", rejected)
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	sys1, _ := syscalls()
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	cpu := ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano()
	b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
	if sysOK {
		b.ReportMetric(float64(sys1-sys0)/float64(b.N), "syscalls/op")
	}
}

// TestACKBufferReuse: the writer reuses one frame buffer for a connection's ACKs, and ACKs are
// built in buffers of their own: pipelined messages whose ACKs alternate between long (many ERR
// segments) and short (AA) each get exactly their own ACK, nothing of the one before.
func TestACKBufferReuse(t *testing.T) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Options{Starter: p})
	g := vxugen.New(vxugen.Options{Seed: 4, Facility: "CLINIC-A", ControlIDs: "BUF", NewPatients: true, Now: time.Now()})
	var msgs [][]byte
	for i := range 64 {
		m := g.Next()
		if i%2 == 0 {
			// Dates that cannot be, in every RXA and OBX: an AE with many findings.
			m = bytes.ReplaceAll(m, []byte("|20"), []byte("|99"))
		}
		msgs = append(msgs, m)
	}
	ctx := context.Background()
	cl, err := Dial(ctx, srv.addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	acks := make([][]byte, len(msgs))
	err = cl.SendPipelined(ctx, func(yield func([]byte) bool) {
		for _, m := range msgs {
			if !yield(m) {
				return
			}
		}
	}, 16, func(i int, a []byte, _ time.Duration) { acks[i] = append([]byte(nil), a...) })
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range acks {
		want := fmt.Sprintf("BUF-%d", i+1)
		code, id := msa(t, a)
		errs := bytes.Count(a, []byte("\rERR|"))
		switch {
		case id != want:
			t.Fatalf("ACK %d answers %q, want %q", i, id, want)
		case i%2 == 0 && (code == "AA" || errs < 3):
			t.Fatalf("ACK %d (long): %s with %d ERR", i, code, errs)
		case i%2 == 1 && (code != "AA" || errs != 1 || len(a) > 400):
			t.Fatalf("ACK %d (short): %s with %d ERR, %d bytes:\n%q", i, code, errs, len(a), a)
		}
	}
}
