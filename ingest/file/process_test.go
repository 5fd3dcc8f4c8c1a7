package file

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// echo is a Starter that answers every message AA without a database, or fails to commit the
// messages whose control ID is in fail (an internal failure, as the pipeline reports it).
type echo struct {
	mu      sync.Mutex
	started []string
	fail    map[string]bool
	cancel  func()
	after   int // cancel after this many Starts (when cancel is set)
}

type answer struct {
	ack []byte
	err error
}

func (a answer) Wait(context.Context) ([]byte, error) { return a.ack, a.err }

func (e *echo) Start(_ context.Context, env ingest.Envelope) ingest.Pending {
	m, err := hl7.Parse(env.Payload)
	h := ack.RecoverHeader(env.Payload)
	if err == nil {
		h = ack.HeaderOf(m)
	}
	e.mu.Lock()
	e.started = append(e.started, h.ControlID)
	if e.cancel != nil && len(e.started) == e.after {
		e.cancel()
	}
	fail := e.fail[h.ControlID]
	e.mu.Unlock()
	b := ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy)
	if fail {
		return answer{ack: b.Reject(h, ack.Finding{Code: ack.CodeInternalError, Severity: ack.Error, Text: "internal"}),
			err: errors.New("database unreachable")}
	}
	return answer{ack: b.Build(h, ack.AA, nil)}
}

// memSink keeps the answers in memory, with Sync/size semantics like a file's.
type memSink struct {
	buf    bytes.Buffer
	synced int64
	begun  int
	done   bool
}

func (s *memSink) Begin(Envelope, []byte) error { s.begun++; return nil }
func (s *memSink) Answer(a *Answer) error {
	s.buf.WriteString(a.Outcome.ControlID + " " + a.Outcome.Code + "\n")
	return nil
}
func (s *memSink) Finish(*State) error  { s.done = true; return nil }
func (s *memSink) Sync() (int64, error) { s.synced = int64(s.buf.Len()); return s.synced, nil }

// reopen is what a restart does: keep what the checkpoint covers.
func (s *memSink) reopen(st *State) { s.buf.Truncate(int(st.Out)) }

func ids(n int) (string, []string) {
	var b strings.Builder
	var out []string
	for i := range n {
		id := "M" + string(rune('A'+i/26)) + string(rune('A'+i%26))
		out = append(out, id)
		b.WriteString("MSH|^~\\&|EHR|FAC-A|||20240101||VXU^V04^VXU_V04|" + id + "|P|2.5.1\nPID|1\n")
	}
	return b.String(), out
}

// A message that cannot be committed stops the file at a checkpoint (to be retried) MaxFailures-1
// times; the next time it is answered AR (internal error) and the file goes on.
func TestProcessInternalFailureRetried(t *testing.T) {
	in, want := ids(10)
	st := &State{}
	sink := &memSink{}
	e := &echo{fail: map[string]bool{want[4]: true}}
	o := Options{MaxFailures: 3, Window: 2}
	for attempt := 1; attempt <= 2; attempt++ {
		sink.reopen(st)
		err := Process(context.Background(), Job{Starter: e, Input: strings.NewReader(in), State: st, Sink: sink}, o)
		if !errors.Is(err, ErrNotCommitted) {
			t.Fatalf("attempt %d: err = %v, want ErrNotCommitted", attempt, err)
		}
		if st.Messages != 4 || st.Failures != attempt || st.Done {
			t.Fatalf("attempt %d: state %+v", attempt, st)
		}
	}
	sink.reopen(st)
	if err := Process(context.Background(), Job{Starter: e, Input: strings.NewReader(in), State: st, Sink: sink}, o); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(sink.buf.String()), "\n")
	if len(got) != 10 || got[4] != want[4]+" AR" || got[9] != want[9]+" AA" || !sink.done || sink.begun != 1 {
		t.Errorf("answers %q (begun %d, done %v)", got, sink.begun, sink.done)
	}
	if st.Rejected != 1 || st.Accepted != 9 || st.ByRule["207 Application internal error"] != 1 {
		t.Errorf("counts %+v", st)
	}
}

// Cancelled midway (a shutdown), Process answers what it started, checkpoints and returns
// ErrInterrupted; resumed, it answers the rest: every message once, in order.
func TestProcessInterruptAndResume(t *testing.T) {
	in, want := ids(300)
	ctx, cancel := context.WithCancel(context.Background())
	e := &echo{cancel: cancel, after: 120}
	st := &State{}
	sink := &memSink{}
	err := Process(ctx, Job{Starter: e, Input: strings.NewReader(in), State: st, Sink: sink}, Options{Window: 16})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("err = %v, want ErrInterrupted", err)
	}
	if st.Messages < 120 || st.Messages >= 300 || st.Done {
		t.Fatalf("interrupted state %+v", st)
	}
	sink.reopen(st)
	if err := Process(context.Background(), Job{Starter: &echo{}, Input: strings.NewReader(in), State: st, Sink: sink}, Options{}); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(sink.buf.String()), "\n")
	if len(got) != len(want) {
		t.Fatalf("%d answers, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i]+" AA" {
			t.Fatalf("answer %d = %q, want %q", i, got[i], want[i]+" AA")
		}
	}
	if st.Messages != 300 || !st.Done {
		t.Errorf("final state %+v", st)
	}
}

// The ACK file's envelope answers the input's: with the input's own delimiters read, sender and
// receiver swapped, the input's control IDs as references, written with the standard delimiters
// and the input's line ending; resumed, the file is cut back to the checkpoint.
func TestACKFileEnvelope(t *testing.T) {
	path := t.TempDir() + "/in.hl7.ack"
	st := &State{EOL: "\n"}
	a, err := OpenACKFile(path, st, ACKFileOptions{Application: []string{"vaxgate"}, Facility: []string{"IIS"}})
	if err != nil {
		t.Fatal(err)
	}
	env := Envelope{
		FHS: []byte(`FHS#^~\&#EHR#Clinic^X9^L#REG APP##20240101####F\F\1`), Files: 1,
		BHS: []byte(`BHS#^~\&#EHR#Clinic###20240101####B-1`), Batches: 1,
	}
	if err := a.Begin(env, []byte("\n")); err != nil {
		t.Fatal(err)
	}
	b := ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy)
	for _, id := range []string{"M1", "M2"} {
		ackMsg := b.Build(ack.Header{ControlID: id}, ack.AA, nil)
		if err := a.Answer(&Answer{ACK: ackMsg, Outcome: ReadOutcome(ackMsg)}); err != nil {
			t.Fatal(err)
		}
		st.count(ReadOutcome(ackMsg))
	}
	size, err := a.Sync()
	if err != nil {
		t.Fatal(err)
	}
	st.Out, st.Envelope, st.Begun = size, env, true
	// Written after the checkpoint, then lost in a crash: cut on reopening.
	_ = a.Answer(&Answer{ACK: b.Build(ack.Header{ControlID: "LOST"}, ack.AA, nil)})
	_, _ = a.Sync()
	a.Close()
	a, err = OpenACKFile(path, st, ACKFileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Finish(st); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Sync(); err != nil {
		t.Fatal(err)
	}
	a.Close()
	data, _ := os.ReadFile(path)
	segs := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if !strings.HasPrefix(segs[0], `FHS|^~\&|REG APP|IIS|EHR|Clinic^X9^L|`) || !strings.Contains(segs[0], "|ACK|VGF") || !strings.HasSuffix(segs[0], "|F#1") {
		t.Errorf("FHS = %q", segs[0])
	}
	if !strings.HasPrefix(segs[1], `BHS|^~\&|vaxgate|IIS|EHR|Clinic|`) || !strings.HasSuffix(segs[1], "|B-1") {
		t.Errorf("BHS = %q", segs[1])
	}
	if strings.Contains(string(data), "LOST") {
		t.Error("an answer written after the checkpoint survived the reopening")
	}
	if got := segs[len(segs)-2:]; got[0] != "BTS|2|AA 2, AE 0, AR 0" || got[1] != "FTS|1" {
		t.Errorf("trailer = %q", got)
	}
	if n := len(hl7.SplitMessages(data)); n != 2 {
		t.Errorf("%d ACKs, want 2", n)
	}
}
