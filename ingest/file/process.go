package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// Starter is the intake pipeline as this transport sees it (ingest.Pipeline implements it): Start
// hands a message to the committer in order, Wait returns its ACK once the records are committed.
type Starter interface {
	Start(ctx context.Context, env ingest.Envelope) ingest.Pending
}

// Outcome is what an ACK says of its message.
type Outcome struct {
	Code      string   // MSA-1: AA, AE or AR
	ControlID string   // MSA-2: the message's MSH-10
	Errors    []string // one key per ERR of severity E: location and HL7 error code ("RXA-5 103 Table value not found")
	Warnings  bool     // an ERR of severity W
}

// Answer is one message with its ACK, handed to a Sink in input order.
type Answer struct {
	Message Message
	ACK     []byte // segments end in CR
	Outcome Outcome
}

// A Sink writes the answers of one input somewhere durable: an ACK file (drop folders), a rejects
// file (preload). Process calls Begin once, before the first answer of the input (not again when
// resuming), Answer for each message in order, Finish after the last one, and Sync before every
// checkpoint: what Sync returns is the size of the output that the checkpoint covers, and Open
// (the sink's own) truncates its output to that size when a run resumes.
type Sink interface {
	Begin(env Envelope, eol []byte) error
	Answer(a *Answer) error
	Finish(st *State) error
	Sync() (size int64, err error)
}

// Options tune Process.
type Options struct {
	// MaxMessageSize: larger messages are answered AR without being buffered (default 4 MiB).
	MaxMessageSize int
	// Window is the number of messages in the pipeline at once (default 2048). Answers are taken
	// in input order, so messages done wait for the slowest before them: the window must be several
	// times store.max_batch × store.shards for the group commits to stay full.
	Window int
	// WindowBytes caps the bytes of the messages in the pipeline at once (default 64 MiB).
	WindowBytes int
	// CheckpointEvery: the answers are made durable and the state saved at least this often
	// (default 1 s), and at least every CheckpointMessages messages (default 10,000).
	CheckpointEvery    time.Duration
	CheckpointMessages int
	// MaxFailures is how many times a message whose records could not be committed (an internal
	// failure: the database unreachable, say) stops the file, to be retried later, before it is
	// answered AR like any other transport answers it and the file goes on (default 3).
	MaxFailures int
	// Now stamps ReceivedAt (default time.Now).
	Now func() time.Time
}

func (o *Options) defaults() {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = 4 << 20
	}
	if o.Window <= 0 {
		o.Window = 2048
	}
	if o.WindowBytes <= 0 {
		o.WindowBytes = 64 << 20
	}
	if o.CheckpointEvery <= 0 {
		o.CheckpointEvery = time.Second
	}
	if o.CheckpointMessages <= 0 {
		o.CheckpointMessages = 10000
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Job is one input to process.
type Job struct {
	Starter   Starter
	Sender    *ingest.Sender
	Transport ingest.Transport // default ingest.TransportFile
	// Backload marks every message as historical backload (preload): data sharing Unknown.
	Backload bool
	Input    io.ReadSeeker
	// State is where the input stands (zero for a new one); Process updates it as it goes.
	State *State
	// Save stores the state durably (after Sink.Sync); nil keeps it in memory only.
	Save func(*State) error
	Sink Sink
	// Progress, when not nil, is called after every checkpoint with the state.
	Progress func(*State)
}

// ErrInterrupted is returned by Process when its context was cancelled: every message started was
// answered and checkpointed, and a later Process with the saved state resumes after them.
var ErrInterrupted = errors.New("processing interrupted")

// ErrNotCommitted is returned by Process when a message could not be committed (an internal
// failure) fewer than MaxFailures times in a row: the file stops there, checkpointed, to be
// retried.
var ErrNotCommitted = errors.New("a message could not be committed")

type item struct {
	msg     Message
	pending ingest.Pending
	env     Envelope // the envelope seen before this message
	eol     []byte
	end     bool  // no more messages
	err     error // with end: why reading stopped (nil at the end of the input)
}

// Process streams the input from State.Offset through the pipeline, Window messages at a time, and
// hands each answer to the sink in input order. It returns nil when the input was finished (the
// sink's Finish was called and State.Done saved), ErrInterrupted when ctx was cancelled,
// ErrNotHL7 (wrapped) when the input does not start like HL7 (nothing was answered), or another
// error. Answers already synced and checkpointed stay valid whatever happens: a later Process with
// the saved state carries on after them, and messages processed again are resends.
func Process(ctx context.Context, j Job, o Options) error {
	o.defaults()
	st := j.State
	if st.Done {
		return nil
	}
	if j.Transport == "" {
		j.Transport = ingest.TransportFile
	}
	if _, err := j.Input.Seek(st.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("file: seek input to %d: %w", st.Offset, err)
	}
	sp := NewSplitter(j.Input, st.Offset, o.MaxMessageSize)

	items := make(chan item, o.Window)
	budget := newByteBudget(o.WindowBytes)
	stop := make(chan struct{}) // closed when the consumer gives up: the producer stops starting
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(items)
		for {
			select {
			case <-ctx.Done():
				items <- item{end: true, err: ErrInterrupted}
				return
			case <-stop:
				return
			default:
			}
			m, err := sp.Next()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				items <- item{end: true, err: err, env: sp.Envelope(), eol: sp.EOL()}
				return
			}
			if !budget.take(len(m.Data)) {
				return
			}
			env := ingest.Envelope{
				Transport: j.Transport, Sender: j.Sender, Payload: m.Data, ReceivedAt: o.Now(),
				TooLarge: m.TooLarge, Backload: j.Backload,
			}
			p := j.Starter.Start(ctx, env)
			select {
			case items <- item{msg: m, pending: p, env: sp.Envelope(), eol: sp.EOL()}:
			case <-stop:
				return
			}
		}
	}()
	err := consume(ctx, j, o, items, budget)
	close(stop)
	budget.close()
	// Let the producer see stop, then wait out what it already started (their answers are not
	// written: they are processed again, as resends, when the file is resumed).
	for it := range items {
		if it.pending != nil {
			_, _ = it.pending.Wait(context.WithoutCancel(ctx))
		}
	}
	wg.Wait()
	return err
}

func consume(ctx context.Context, j Job, o Options, items <-chan item, budget *byteBudget) error {
	st := j.State
	waitCtx := context.WithoutCancel(ctx) // messages started are finished, even on shutdown
	lastSave := time.Now()
	sinceSave := 0
	checkpoint := func() error {
		size, err := j.Sink.Sync()
		if err != nil {
			return fmt.Errorf("file: sync answers: %w", err)
		}
		st.Out = size
		if j.Save != nil {
			if err := j.Save(st); err != nil {
				return fmt.Errorf("file: save checkpoint: %w", err)
			}
		}
		lastSave, sinceSave = time.Now(), 0
		if j.Progress != nil {
			j.Progress(st)
		}
		return nil
	}
	begin := func(env Envelope, eol []byte) error {
		if st.Begun {
			return nil
		}
		st.Envelope, st.EOL, st.Begun = env, string(eol), true
		if st.EOL == "" {
			st.EOL = "\r"
		}
		if err := j.Sink.Begin(env, []byte(st.EOL)); err != nil {
			return fmt.Errorf("file: begin answers: %w", err)
		}
		return nil
	}
	for it := range items {
		if it.end {
			if it.err != nil {
				if errors.Is(it.err, ErrNotHL7) && !st.Begun {
					return it.err
				}
				if cerr := checkpoint(); cerr != nil {
					return cerr
				}
				return it.err
			}
			if !st.Begun && !it.env.Batch() && st.Messages == 0 {
				return fmt.Errorf("%w: it holds no HL7 message", ErrNotHL7)
			}
			if err := begin(it.env, it.eol); err != nil {
				return err
			}
			if err := j.Sink.Finish(st); err != nil {
				return fmt.Errorf("file: finish answers: %w", err)
			}
			st.Done = true
			return checkpoint()
		}
		if err := begin(it.env, it.eol); err != nil {
			return err
		}
		a, err := it.pending.Wait(waitCtx)
		budget.give(len(it.msg.Data))
		if err != nil {
			if st.FailedAt == it.msg.Start {
				st.Failures++
			} else {
				st.FailedAt, st.Failures = it.msg.Start, 1
			}
			if st.Failures < o.MaxFailures {
				if cerr := checkpoint(); cerr != nil {
					return cerr
				}
				return fmt.Errorf("%w (at offset %d): %w", ErrNotCommitted, it.msg.Start, err)
			}
			// Answered AR (internal error) by the pipeline: the sender sends it again.
		}
		ans := Answer{Message: it.msg, ACK: a, Outcome: ReadOutcome(a)}
		if err := j.Sink.Answer(&ans); err != nil {
			return fmt.Errorf("file: write answer: %w", err)
		}
		st.count(ans.Outcome)
		st.Offset = it.msg.End
		sinceSave++
		if sinceSave >= o.CheckpointMessages || time.Since(lastSave) >= o.CheckpointEvery {
			if err := checkpoint(); err != nil {
				return err
			}
		}
	}
	return checkpoint() // the producer stopped without an end item: only after stop
}

// ReadOutcome reads an ACK's code, control ID and errors.
func ReadOutcome(a []byte) Outcome {
	m, err := hl7.Parse(a)
	if err != nil {
		return Outcome{Code: "AR"}
	}
	o := Outcome{Code: m.Get("MSA-1"), ControlID: m.Get("MSA-2")}
	for i := 1; ; i++ {
		seg, ok := m.Find("ERR", i)
		if !ok {
			break
		}
		switch seg.Field(4).String() {
		case "E":
			loc := seg.Field(2)
			key := loc.Component(1).String()
			if f := loc.Component(3).String(); f != "" {
				key += "-" + f
			}
			if key != "" {
				key += " "
			}
			key += seg.Field(3).Component(1).String() + " " + seg.Field(3).Component(2).String()
			o.Errors = append(o.Errors, key)
		case "W":
			o.Warnings = true
		}
	}
	return o
}

// byteBudget limits the bytes of the messages in flight.
type byteBudget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	free   int
	max    int
	closed bool
}

func newByteBudget(n int) *byteBudget {
	b := &byteBudget{free: n, max: n}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// take waits until n bytes are free (a message larger than the whole budget waits for all of it);
// false when the budget was closed.
func (b *byteBudget) take(n int) bool {
	n = min(n, b.max)
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n && !b.closed {
		b.cond.Wait()
	}
	if b.closed {
		return false
	}
	b.free -= n
	return true
}

func (b *byteBudget) give(n int) {
	n = min(n, b.max)
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (b *byteBudget) close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cond.Broadcast()
}
