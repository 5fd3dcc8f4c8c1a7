package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
	"github.com/vaxgate/vaxgate/registry"
	"github.com/vaxgate/vaxgate/report"
)

// The group commit's defaults (WriterOptions; serve's store.max_batch, store.max_delay and
// store.shards).
const (
	DefaultMaxBatch = 256
	// DefaultMaxDelay: a batch of fewer than MaxBatch/8 records waits this long for company.
	// 2ms before: make bench's alternated quick runs at 500µs gave more messages per second in
	// every phase that waits (one connection, 16, and 64 sending one message at a time), with no
	// larger CPU cost per message; a commit's own write takes longer than that wait anyway.
	DefaultMaxDelay = 500 * time.Microsecond
	DefaultShards   = 2
)

// WriterOptions bound the group commit.
type WriterOptions struct {
	MaxBatch int // records per transaction at most (default DefaultMaxBatch)
	// MaxDelay is how long a batch waits for more records once it has one (default
	// DefaultMaxDelay), unless MaxBatch/8 or more were already queued: those are written at once.
	MaxDelay time.Duration
	// Shards is the number of concurrent writers. Records of one patient always go to the same
	// shard, so that messages about one patient are applied in the order they were started.
	Shards     int
	Logger     *zap.Logger
	Registerer prometheus.Registerer
	// Codes maps vaccines to vaccine groups for merging reports of the same dose (default: the
	// code sets embedded in the binary).
	Codes *codes.Set
	// OutageWait is how long a record is held, unanswered, while the database is unavailable
	// (default 30 s; negative: not held at all). Its transaction is tried again as the database
	// comes back; a record still not written when its wait ends is answered ingest.ErrUnavailable,
	// which transports turn into no ACK at all (see there).
	OutageWait time.Duration
	// StatsInterval is how often the writer checks the statistics of the tables it reads by key,
	// analyses those that have doubled, and decides whether its plans are kept (planstats.go;
	// default 2 s; negative: never, the look-ups are planned for every batch).
	StatsInterval time.Duration
}

// DefaultOutageWait is WriterOptions.OutageWait's default.
const DefaultOutageWait = 30 * time.Second

// Writer persists ingest records with group commit: records that arrive within MaxDelay of each
// other (up to MaxBatch) are written in one transaction, and each record's Pending is released
// only when that transaction has committed. Statements are pipelined (pipeTx) and the batch's
// reads are done up front, together (begin, prefetch): a batch costs a few round trips, however
// many records it has, and none per statement. Its records are applied in Go (package registry),
// and each table is then written with one statement for the whole batch (persist.go), whatever
// number of rows and records it has. One bad record does not fail its
// batch-mates: when the batch fails (a bad record, a transient conflict with a concurrent batch:
// deadlock, serialization failure, racing insert), it is written again in halves, down to the bad
// record alone (see flush), in order.
//
// A database that is unavailable (connections refused or lost, shutting down, starting up: see
// unavailable) is not a bad record: the batch is held and tried again until it is written or its
// records' OutageWait has passed (writeHeld), and a commit whose outcome is unknown (the
// connection lost after the COMMIT was sent) is settled by looking for the batch's archive rows
// once the database answers again (resolve) — never answered "nothing was stored" by guess.
type Writer struct {
	db     *DB
	reg    *registry.Registry
	o      WriterOptions
	log    *zap.Logger
	shards []chan *job
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool
	stop   chan struct{} // closed by Close: held records stop waiting for the database

	down    atomic.Bool  // the last attempt found the database unavailable
	generic atomic.Bool  // the writer's statements run on kept plans (planstats.go)
	downAt  atomic.Int64 // when it was found so (UnixNano)

	// The statistics' own clock (planstats.go): the records this writer has committed, the count
	// at which keepStatistics checks before its next tick (statsWake), and, per keyed table, the
	// count when the writer last analysed it (keepStatistics' goroutine only).
	committed  atomic.Int64
	statsDue   atomic.Int64
	statsWake  chan struct{}
	analysedAt map[string]int64

	batchSize  prometheus.Histogram
	commitTime prometheus.Histogram
	queueDepth prometheus.GaugeFunc
	failures   *prometheus.CounterVec
	resends    prometheus.Counter
	available  prometheus.Gauge
	plansKept  prometheus.Gauge
	analyses   prometheus.Counter
}

type job struct {
	rec  *ingest.Record
	done chan struct{}
	ack  []byte
	err  error
	// queued is when Commit queued the record: its OutageWait counts from there.
	queued time.Time
	// answered: done is closed. Only the shard's goroutine answers its jobs.
	answered bool
	// content is what the reports read from the record's raw message, read as it was committed;
	// facts: its archive row gets facts columns (facts.go).
	content report.Content
	facts   bool
}

// answer sets the job's answer and releases its waiter, once: a later answer is ignored.
func (j *job) answer(ack []byte, err error) {
	if j.answered {
		return
	}
	j.answered = true
	j.ack, j.err = ack, err
	close(j.done)
}

// Ready reports whether the job is answered, without waiting (ingest.Readier): the MLLP writer
// sends the ACKs a group commit releases together in one write.
func (j *job) Ready() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

func (j *job) Wait(ctx context.Context) ([]byte, error) {
	select {
	case <-j.done:
		return j.ack, j.err
	case <-ctx.Done():
		return nil, fmt.Errorf("store: waiting for commit: %w", ctx.Err())
	}
}

// ErrWriterClosed is the answer to records committed after Close.
var ErrWriterClosed = errors.New("store: writer closed")

// NewWriter starts the writer's shards; Close stops them.
func (db *DB) NewWriter(o WriterOptions) (*Writer, error) {
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.Shards <= 0 {
		o.Shards = DefaultShards
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Codes == nil {
		o.Codes = codes.Default()
	}
	if o.OutageWait == 0 {
		o.OutageWait = DefaultOutageWait
	}
	if o.StatsInterval == 0 {
		o.StatsInterval = DefaultStatsInterval
	}
	w := &Writer{db: db, o: o, log: o.Logger, reg: registry.New(o.Codes), stop: make(chan struct{}),
		statsWake: make(chan struct{}, 1), analysedAt: map[string]int64{}}
	w.statsDue.Store(math.MaxInt64) // keepStatistics sets it at its first check
	for i := 0; i < o.Shards; i++ {
		w.shards = append(w.shards, make(chan *job, o.MaxBatch*4))
	}
	w.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vaxgate_store_batch_size", Help: "Records per group-commit transaction.",
		Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024},
	})
	w.commitTime = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "vaxgate_store_batch_seconds", Help: "Time to write and commit one group-commit transaction.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	})
	w.queueDepth = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vaxgate_store_queue_depth", Help: "Records waiting for a group commit.",
	}, func() float64 {
		n := 0
		for _, s := range w.shards {
			n += len(s)
		}
		return float64(n)
	})
	w.failures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "vaxgate_store_failures_total",
		Help: "Write failures, by stage: batch (written again in halves), record (answered with an error), unavailable (records held past the outage wait: not answered), commit_unknown (commits whose outcome had to be looked up).",
	}, []string{"stage"})
	w.available = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vaxgate_store_database_available", Help: "1 when the writer's last attempt reached the database, 0 while it is unavailable (records are held).",
	})
	w.available.Set(1)
	w.resends = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vaxgate_resends_total", Help: "Messages recognised as resends (same sender, control ID and content) and answered with the original ACK.",
	})
	w.plansKept = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "vaxgate_store_plans_kept", Help: "1 when the writer's statements run on plans kept per connection, 0 while its look-ups are planned for every batch (the tables' statistics describe too few rows yet).",
	})
	w.analyses = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vaxgate_store_analyze_total", Help: "ANALYZE runs the writer made on the tables it reads by key (each time one had doubled, had rows but no column statistics, or, while its statistics were young, the records committed had doubled).",
	})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{w.batchSize, w.commitTime, w.queueDepth, w.failures, w.resends, w.available, w.plansKept, w.analyses} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("store: register writer metrics: %w", err)
			}
		}
	}
	for _, s := range w.shards {
		w.wg.Add(1)
		go w.run(s)
	}
	if o.StatsInterval > 0 {
		w.wg.Add(1)
		go w.keepStatistics()
	}
	return w, nil
}

// Commit queues rec for the next group commit. It blocks only when the shard's queue is full,
// which is the back-pressure that keeps memory bounded.
func (w *Writer) Commit(rec *ingest.Record) ingest.Pending {
	j := &job{rec: rec, done: make(chan struct{}), queued: time.Now()}
	j.facts = readContent(rec, &j.content)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		j.err = ErrWriterClosed
		close(j.done)
		return j
	}
	w.shards[w.shardOf(rec)] <- j
	return j
}

func (w *Writer) shardOf(rec *ingest.Record) int {
	if len(w.shards) == 1 {
		return 0
	}
	// FNV-1a over the organization and the patient's identifier (or the control ID), piece by
	// piece: no string is built for it.
	h := newPieceHash()
	if rec.Sender != nil {
		h.addInt(rec.Sender.OrganizationID)
	}
	if rec.VXU != nil {
		id := rec.VXU.Patient.PrimaryID()
		h.add(id.Value)
		h.add(id.Authority)
		h.add(id.Type)
	} else {
		h.add(rec.ControlID)
	}
	x := uint32(h)
	// FNV-1a's low bits barely mix; fold the high half in before taking the modulus.
	x ^= x >> 16
	x *= 0x45d9f3b
	x ^= x >> 16
	return int(x % uint32(len(w.shards)))
}

// Close stops accepting records, writes what is queued and waits for the shards to finish. Records
// held for an unavailable database are answered ingest.ErrUnavailable at once.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.stop)
		for _, s := range w.shards {
			close(s)
		}
	}
	w.mu.Unlock()
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("store: close writer: %w", ctx.Err())
	}
}

func (w *Writer) run(in chan *job) {
	defer w.wg.Done()
	batch := make([]*job, 0, w.o.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		j, ok := <-in
		if !ok {
			return
		}
		batch = append(batch[:0], j)
		// What queued while the last batch was written goes at once, without waiting for more,
		// when it is a batch worth writing: the database is not left idle for MaxDelay after every
		// batch under a steady load. Fewer records than that wait up to MaxDelay for others
		// (group commit), as a single record does.
	drain:
		for len(batch) < w.o.MaxBatch {
			select {
			case j, ok := <-in:
				if !ok {
					break drain
				}
				batch = append(batch, j)
			default:
				break drain
			}
		}
		if len(batch) >= max(w.o.MaxBatch/8, 2) {
			w.flush(batch)
			continue
		}
		timer.Reset(w.o.MaxDelay)
	collect:
		for len(batch) < w.o.MaxBatch {
			select {
			case j, ok := <-in:
				if !ok {
					break collect
				}
				batch = append(batch, j)
			case <-timer.C:
				break collect
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		w.flush(batch)
	}
}

// flush writes one batch and answers every job. The batch is first written whole, in one
// transaction without savepoints (see writeBatch). If that fails — one bad record, a conflict with
// a concurrent batch — nothing of it was committed, and it is written again in two halves, each
// whole, recursively, down to single records (writeAlone, which retries transient failures): one
// bad record costs its batch-mates about log2(batch) extra transactions, never an error, and
// records keep their order (a patient's messages are applied as they were started). An unavailable
// database is waited for instead (writeHeld).
func (w *Writer) flush(batch []*job) {
	start := time.Now()
	w.write(batch)
	w.batchSize.Observe(float64(len(batch)))
	w.commitTime.Observe(time.Since(start).Seconds())
	for _, j := range batch {
		// Every path above answers its records; should one not have been, nobody can say whether
		// it was stored, and it is not answered at all.
		if !j.answered {
			j.answer(nil, fmt.Errorf("store: record left unanswered: %w", ingest.ErrUnavailable))
		}
	}
}

func (w *Writer) write(batch []*job) {
	batch = unanswered(batch)
	if len(batch) == 0 {
		return
	}
	err := w.writeHeld(batch)
	if err == nil {
		return
	}
	if len(batch) == 1 {
		w.writeAlone(batch[0], err)
		return
	}
	w.failures.WithLabelValues("batch").Inc()
	w.log.Warn("batch failed, writing it again in halves", zap.Int("records", len(batch)), zap.Error(err))
	half := len(batch) / 2
	w.write(batch[:half])
	w.write(batch[half:])
}

// unanswered returns the jobs of batch not answered yet (a new slice).
func unanswered(batch []*job) []*job {
	out := make([]*job, 0, len(batch))
	for _, j := range batch {
		if !j.answered {
			out = append(out, j)
		}
	}
	return out
}

// errAnswered says that writeBatch answered every record itself (past their outage wait, while
// the outcome of its commit was still unknown).
var errAnswered = errors.New("store: records answered as unavailable")

// writeHeld writes batch in one transaction, holding it through a database outage: while the
// database is unavailable the transaction is tried again (backing off up to a second), until the
// OutageWait of its oldest record has passed: then its records are answered ingest.ErrUnavailable
// (no ACK; their senders send them again). It returns nil once every record is answered, or the error of a failure
// that is not the database's unavailability (a bad record, a conflict), for the caller to isolate.
func (w *Writer) writeHeld(batch []*job) error {
	backoff := 50 * time.Millisecond
	for {
		err := w.writeBatch(batch)
		switch {
		case err == nil:
			w.setAvailable(true, nil)
			return nil
		case errors.Is(err, errAnswered):
			return nil
		case !unavailable(err):
			w.setAvailable(true, nil) // the server answered
			return err
		}
		w.setAvailable(false, err)
		if batch = w.expire(batch, err); len(batch) == 0 {
			return nil
		}
		if !w.pause(batch, backoff) {
			w.expire(batch, err) // closing: answers them all
			return nil
		}
		backoff = min(2*backoff, time.Second)
	}
}

// pause waits for backoff, or until the first record's outage wait ends, or Close. It reports
// false when interrupted by Close.
func (w *Writer) pause(batch []*job, backoff time.Duration) bool {
	d := backoff
	for _, j := range batch {
		d = min(d, max(time.Until(j.queued.Add(w.o.OutageWait)), 0))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.stop:
		return false
	}
}

// expire ends the hold of batch when the outage wait of its oldest record has passed (or the writer
// is closing, or OutageWait is negative): every record of it is answered ingest.ErrUnavailable, and
// expire returns nothing; otherwise it returns batch. A batch is held and let go as a whole, in
// queue order: its later records, written once the database is back, would otherwise be stored
// ahead of an earlier one that its sender will send again (a patient's messages are applied in
// the order they were started).
func (w *Writer) expire(batch []*job, cause error) []*job {
	now := time.Now()
	closing := false
	select {
	case <-w.stop:
		closing = true
	default:
	}
	over := closing || w.o.OutageWait < 0
	for _, j := range batch {
		over = over || now.Sub(j.queued) >= w.o.OutageWait
	}
	if !over {
		return batch
	}
	for _, j := range batch {
		j.answer(nil, fmt.Errorf("store: %w (waited %s): %v", ingest.ErrUnavailable, now.Sub(j.queued).Round(time.Millisecond), cause))
	}
	w.failures.WithLabelValues("unavailable").Add(float64(len(batch)))
	w.log.Warn("database unavailable past the outage wait: records not answered", zap.Int("records", len(batch)),
		zap.Duration("outage_wait", w.o.OutageWait), zap.Bool("closing", closing), zap.Error(cause))
	return nil
}

// setAvailable records whether the database answered the last attempt, for the log and the
// vaxgate_store_database_available gauge.
func (w *Writer) setAvailable(ok bool, cause error) {
	if ok {
		if w.down.CompareAndSwap(true, false) {
			w.available.Set(1)
			w.log.Info("database available again", zap.Duration("outage", time.Since(time.Unix(0, w.downAt.Load()))))
		}
		return
	}
	if w.down.CompareAndSwap(false, true) {
		w.downAt.Store(time.Now().UnixNano())
		w.available.Set(0)
		w.log.Error("database unavailable: holding records unanswered, retrying", zap.Duration("outage_wait", w.o.OutageWait), zap.Error(cause))
	}
}

// attemptTimeout bounds one attempt at writing batch: 30 s, but while the database is unavailable
// no longer than its records still wait (at least 5 s), so that a database that hangs rather than
// refuses does not keep them much past their wait.
func (w *Writer) attemptTimeout(batch []*job) time.Duration {
	const normal = 30 * time.Second
	if !w.down.Load() {
		return normal
	}
	var latest time.Time
	for _, j := range batch {
		if d := j.queued.Add(w.o.OutageWait); d.After(latest) {
			latest = d
		}
	}
	return min(normal, max(time.Until(latest), 5*time.Second))
}

// writeBatch writes batch in one transaction, its statements pipelined (pipeTx), and answers each
// job only once the transaction has committed. Any error fails the whole batch: without a
// savepoint per record (two round trips each) a failed statement aborts the transaction. When the
// commit's outcome is unknown, it is looked up (resolve): a batch that was stored is answered as
// stored.
//
// Round trips: one for everything the batch reads (begin), one for its writes and the commit;
// none per record.
func (w *Writer) writeBatch(batch []*job) error {
	ctx, cancel := context.WithTimeout(context.Background(), w.attemptTimeout(batch))
	defer cancel()
	recs := make([]*ingest.Record, len(batch))
	for i, j := range batch {
		recs[i] = j.rec
	}
	acks := make([][]byte, len(batch))
	var ids []int64 // the archive rows' ids, drawn before the commit
	resends := 0
	err := w.inTx(ctx, func(ptx *pipeTx) error {
		pre, view, err := w.begin(ctx, ptx, recs)
		if err != nil {
			return err
		}
		ids = pre.ids
		st := stagedBatch{messages: make([]archiveRow, 0, len(batch))}
		for i, j := range batch {
			out, resend, err := w.apply(view, ptx, &st, j.rec, pre.of(i))
			if err != nil {
				return err
			}
			acks[i] = out
			if resend {
				resends++
			}
		}
		// The batch's rows, in their final state, one statement per table (persist.go).
		view.Merge()
		if err := intakeFacts(st.messages, batch); err != nil {
			return err
		}
		if err := writeMessages(ctx, ptx, st.messages); err != nil {
			return err
		}
		return writeRegistry(ctx, ptx, view)
	})
	var unknown *commitUnknownError
	if errors.As(err, &unknown) {
		switch w.resolve(batch, ids, unknown) {
		case committed:
			err = nil
		case unresolved:
			return errAnswered
		case notCommitted:
			return err // the database's unavailability: tried again (writeHeld)
		}
	}
	if err != nil {
		return err
	}
	for i, j := range batch {
		j.answer(acks[i], nil)
	}
	w.resends.Add(float64(resends))
	w.countCommitted(len(batch))
	return nil
}

// inTx runs fn in a transaction on a connection of the pool and commits it (beginOn: its BEGIN and
// COMMIT travel with the statements around them). If fn or the commit fails, it rolls back. A
// commit whose outcome is unknown is a *commitUnknownError.
func (w *Writer) inTx(ctx context.Context, fn func(*pipeTx) error) error {
	c, err := w.db.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: acquire connection: %w", err)
	}
	// Released last: if the transaction is still open then (the rollback failed too), the pool
	// closes the connection rather than hand it out again.
	defer c.Release()
	if err := registerRowTypes(ctx, c.Conn()); err != nil {
		return err
	}
	tx := beginOn(c.Conn())
	err = fn(tx)
	if err == nil {
		if err = tx.Commit(ctx); err == nil {
			return nil
		}
		if commitOutcomeUnknown(err) {
			err = &commitUnknownError{err: err}
		}
	}
	rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = tx.Tx.Rollback(rctx) // outside a transaction (BEGIN never sent, or COMMIT failed) only a warning
	return err
}

// commitUnknownError is a commit that was sent (in whole or in part) and whose answer was lost:
// the transaction may have committed or not.
type commitUnknownError struct{ err error }

func (e *commitUnknownError) Error() string {
	return "store: commit outcome unknown: " + e.err.Error()
}

func (e *commitUnknownError) Unwrap() error { return e.err }

// commitOutcomeUnknown reports a commit error after which the transaction may have committed: the
// connection failed (lost, timed out) once the COMMIT may have reached the server. An error the
// server reported (a failed statement, the transaction rolled back, the server terminating the
// session before the COMMIT was read) means it did not commit; so does an error before anything
// was sent.
func commitOutcomeUnknown(err error) bool {
	var pg *pgconn.PgError
	if errors.As(err, &pg) || errors.Is(err, pgx.ErrTxCommitRollback) {
		return false
	}
	return !pgconn.SafeToRetry(err)
}

// resolution is what resolve found out about a commit whose outcome was unknown.
type resolution int

const (
	notCommitted resolution = iota // nothing of the batch is stored: write it again
	committed                      // the batch is stored: answer its records
	unresolved                     // not found out within the records' wait: they were answered ErrUnavailable
)

// resolve finds out whether the batch whose commit outcome is unknown was stored, by looking for
// its archive rows (their ids were drawn before the commit; a transaction commits all of them or
// none), trying again while the database is unavailable. If the outage wait of its oldest record
// passes first, its records are answered ingest.ErrUnavailable: never "nothing was stored" for a
// batch that may have been.
func (w *Writer) resolve(batch []*job, ids []int64, cause error) resolution {
	w.failures.WithLabelValues("commit_unknown").Inc()
	w.log.Warn("commit outcome unknown: looking for the batch's archive rows", zap.Int("records", len(batch)), zap.Error(cause))
	backoff := 50 * time.Millisecond
	for {
		n, err := w.countArchived(ids)
		if err == nil {
			w.setAvailable(true, nil)
			switch n {
			case len(ids):
				w.log.Info("commit outcome found: the batch was stored", zap.Int("records", len(batch)))
				return committed
			case 0:
				w.log.Info("commit outcome found: the batch was not stored; writing it again", zap.Int("records", len(batch)))
				return notCommitted
			}
			// A transaction cannot commit in part: something else is wrong. Answer nothing.
			w.log.Error("commit outcome unclear: only part of the batch's archive rows exist; its records are not answered",
				zap.Int("records", len(ids)), zap.Int("found", n))
			for _, j := range batch {
				j.answer(nil, fmt.Errorf("store: %w: commit outcome unclear", ingest.ErrUnavailable))
			}
			return unresolved
		}
		if unavailable(err) {
			w.setAvailable(false, err)
		}
		if batch = w.expire(batch, cause); len(batch) == 0 {
			return unresolved
		}
		w.pause(batch, backoff)
		backoff = min(2*backoff, time.Second)
	}
}

// countArchived counts the archive rows among ids.
func (w *Writer) countArchived(ids []int64) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var n int
	if err := w.db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE id = ANY($1::bigint[])`, ids).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: look for a batch's archive rows: %w", err)
	}
	return n, nil
}

// begin does, at the start of a batch's transaction and in two round trips, everything its records
// read: it takes the advisory locks of their linking blocks, looks up the answers already stored
// for their control IDs (precheck), reads, with row locks, the registry rows they may read or
// update (prefetch: the patients in the first round trip, the vaccinations of their registry
// patients in the second) and, with the second, draws the ids of the rows they are expected to
// insert (drawIDs: as many as the first round trip says they may need).
//
// The statements of a batch run on plans kept per connection once the tables' statistics can be
// trusted, and the look-ups are planned for every batch until then (see planstats.go).
func (w *Writer) begin(ctx context.Context, tx *pipeTx, recs []*ingest.Record) (*batchCheck, *registry.View, error) {
	generic := w.generic.Load()
	mode := planGeneric
	if !generic {
		mode = planCustom
	}
	if err := lockLinkKeys(ctx, tx, recs, mode); err != nil {
		return nil, nil, err
	}
	pre, err := precheck(ctx, tx, recs)
	if err != nil {
		return nil, nil, err
	}
	view, counts, err := prefetch(ctx, tx, recs)
	if err != nil {
		return nil, nil, err
	}
	tx.ctx = ctx
	if err := pre.queueExact(ctx, tx, recs); err != nil {
		return nil, nil, err
	}
	if err := drawIDs(ctx, tx, counts); err != nil {
		return nil, nil, err
	}
	if !generic {
		// The writes that follow keep their plans (cheap to execute, costly to plan each time).
		if _, err := tx.Exec(ctx, writerPlanWrites); err != nil {
			return nil, nil, fmt.Errorf("store: plan settings: %w", err)
		}
	}
	if err := tx.Flush(ctx); err != nil {
		return nil, nil, err
	}
	return pre, view, nil
}

// writeAttempts bounds writeAlone's retries of transient failures.
const writeAttempts = 5

// writeAlone writes one record in a transaction of its own after its first attempt failed with
// err, retrying transient failures (a conflict with a concurrent batch: the retry reads what that
// batch committed). Any other failure is the record's own: it is answered with the error.
func (w *Writer) writeAlone(j *job, err error) {
	for attempt := 1; ; attempt++ {
		if !transient(err) || attempt == writeAttempts {
			w.failures.WithLabelValues("record").Inc()
			w.log.Error("record not stored", zap.String("control_id", j.rec.ControlID),
				zap.String("site", siteCode(j.rec.Sender)), zap.Int("attempts", attempt), zap.Error(err))
			j.answer(nil, fmt.Errorf("store: write record: %w", err))
			return
		}
		time.Sleep(time.Duration(attempt*attempt) * 5 * time.Millisecond)
		if err = w.writeHeld([]*job{j}); err == nil {
			return
		}
	}
}

// unavailable reports an error that says the database cannot be used now, rather than that a
// record is bad: no connection (refused, lost, timed out), the server shutting down, starting up
// or out of resources (SQLSTATE classes 08 and 53, 57P01–57P03), or a commit whose outcome is
// unknown. A record's own data error (a constraint, a type, a value too large for an index) is
// not one: the record is isolated and answered as today.
func unavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) {
		return true
	}
	var pg *pgconn.PgError
	if errors.As(err, &pg) {
		switch {
		case strings.HasPrefix(pg.Code, "08"), strings.HasPrefix(pg.Code, "53"),
			pg.Code == "57P01", pg.Code == "57P02", pg.Code == "57P03":
			return true
		}
		return false
	}
	var unknown *commitUnknownError
	var ne net.Error
	return errors.As(err, &unknown) || errors.As(err, &ne) || pgconn.Timeout(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, context.DeadlineExceeded)
}

// transient reports the errors a concurrent transaction causes, which the same write retried
// alone does not meet again: deadlock, serialization failure, and a unique violation from an
// insert racing another shard's (the retry finds the row).
func transient(err error) bool {
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return false
	}
	switch pg.Code {
	case "40001", "40P01", "23505":
		return true
	}
	return false
}

func siteCode(s *ingest.Sender) string {
	if s == nil {
		return ""
	}
	return s.SiteCode
}

// resendKeyOf identifies what a resend repeats: sender site, environment, control ID and content
// (ingest.ContentDigest). Without the digest it names the control ID's use (batchCheck.used).
type resendKeyOf struct {
	site    int64
	env     string
	control string
	digest  string
}

// resendKeyFor is the resend key of rec, a record precheck looks up (prechecks: it has a site, an
// environment and a control ID).
func resendKeyFor(rec *ingest.Record) resendKeyOf {
	return resendKeyOf{site: rec.Sender.SiteID, env: rec.Env, control: rec.ControlID, digest: string(rec.Digest)}
}

func (k resendKeyOf) controlOnly() resendKeyOf {
	k.digest = ""
	return k
}

type originalACK struct {
	ack  []byte
	code string
	// legacy: found by the digest of its raw message (archived before digests).
	legacy bool
}

// batchCheck is what precheck found for a batch: an archive row id for each record, and the
// answers already stored for its resend keys (and, as apply goes, those of its own records).
type batchCheck struct {
	ids       []int64 // by record
	lookup    []bool  // by record: whether an original may answer it (prechecks)
	originals map[resendKeyOf]originalACK
	// used holds the control IDs (controlOnly keys) an accepted message already holds: another
	// message under one of them is warned (0357 code 205).
	used map[resendKeyOf]bool
	// exact lists the records (by index) whose control ID is used by more stored messages than
	// precheck reads, none of them with the record's content: queueExact looks them up by it.
	exact []int
}

// prechecked is one record's part of a batchCheck.
type prechecked struct {
	id     int64
	lookup bool
	batch  *batchCheck
}

func (b *batchCheck) of(i int) prechecked {
	return prechecked{id: b.ids[i], lookup: b.lookup[i], batch: b}
}

// precheck queues, for the records of a batch, the allocation of their archive rows' ids (in
// order) and, for every one that has a control ID from a known site, the look-up of the accepted
// messages already stored under its control ID (site, environment, control ID): whether one has
// the same content (content digest: its ACK answers a resend) and whether one has other content
// (the control ID is used: the new message is warned, 0357 code 205). One query for the batch
// instead of statements per record, each waiting for its answer; the answers are there once the
// queue has been sent. The batch holds the advisory locks of its records' control IDs
// (lockLinkKeys) from before this look-up until it commits, so a concurrent batch with the same
// control ID waits and then sees this one's rows (and a racing insert that still fails, with a
// unique violation, is written again alone and finds the original).
//
// One probe of the control ID per record answers both questions: it reads at most two of the
// messages stored under it. Only a control ID already used by two or more other messages can
// leave the first question open; those records are looked up again by content in the next round
// trip (queueExact, before their records are applied).
//
// An original archived before content digests existed (content_digest null) is compared by the
// digest of its raw message, computed here.
func precheck(ctx context.Context, tx *pipeTx, recs []*ingest.Record) (*batchCheck, error) {
	b := &batchCheck{ids: make([]int64, len(recs)), lookup: make([]bool, len(recs)),
		originals: make(map[resendKeyOf]originalACK, len(recs)), used: make(map[resendKeyOf]bool, len(recs))}
	if len(recs) == 0 {
		return b, nil
	}
	keys := controlKeys(recs, b.lookup, nil)
	err := tx.QueueQuery(ctx, `
		SELECT k.i, k.id, o.ack, o.ack_code, o.content_digest, o.raw
		FROM (SELECT u.site, u.env, u.control, u.i, nextval('messages_id_seq') AS id
			FROM unnest($1::batch_control_id[]) WITH ORDINALITY AS u(site, env, control, digest, i)) k
		LEFT JOIN LATERAL (
			SELECT m.ack, m.ack_code, m.content_digest, CASE WHEN m.content_digest IS NULL THEN m.raw END AS raw
			FROM messages m
			WHERE m.site_id = k.site AND m.env = k.env::char(1) AND m.control_id = k.control AND m.resend_key
			LIMIT 2) o ON true
		ORDER BY k.i`, func(rows pgx.Rows) error {
		return b.readStored(recs, rows, true)
	}, &keys)
	if err != nil {
		return nil, fmt.Errorf("store: look up resends: %w", err)
	}
	return b, nil
}

// controlKeys are the batch_control_id rows of recs: a row per record, or, with only, per record
// only[i] marks (NULL site: nothing to look up; its row still draws its archive id). lookup, when
// not nil, is set for the records that are looked up (prechecks).
func controlKeys(recs []*ingest.Record, lookup, only []bool) rowArray {
	var keys rowArray
	for i, rec := range recs {
		if only != nil && !only[i] {
			continue
		}
		keys.begin(4)
		if prechecks(rec) {
			if lookup != nil {
				lookup[i] = true
			}
			keys.int8(rec.Sender.SiteID)
			keys.text(rec.Env)
			keys.text(rec.ControlID)
			keys.bytea(rec.Digest)
		} else {
			keys.int8Ptr(nil)
			keys.text("")
			keys.text("")
			keys.bytea(nil)
		}
		keys.end()
	}
	return keys
}

// readStored reads the stored messages precheck (first: with the archive ids, by record) or
// queueExact found: for each, whether it is the original of its record (same content) or another
// message under the same control ID. Rows are scanned into the same variables row after row: one
// allocation of each per batch, not per row (pgx gives each row's bytes a slice of their own).
func (b *batchCheck) readStored(recs []*ingest.Record, rows pgx.Rows, first bool) error {
	var i, id int64
	var ack, digest, raw []byte
	var code pgtype.Text
	dest := []any{&i, &id, &ack, &code, &digest, &raw}
	if !first {
		dest = []any{&i, &ack, &code, &digest, &raw}
	}
	seen := make([]uint8, len(recs)) // stored messages read, by record (first: at most 2)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		r := int(i - 1)
		if !first {
			r = b.exact[r]
		}
		if first {
			b.ids[r] = id
		}
		rec := recs[r]
		if !b.lookup[r] || !code.Valid {
			continue
		}
		seen[r]++
		key := resendKeyFor(rec)
		if digest == nil {
			digest = ingest.RawContentDigest(raw) // archived before digests
		}
		if !bytes.Equal(digest, rec.Digest) {
			b.used[key.controlOnly()] = true
			continue
		}
		// The original. One archived with its digest is preferred to a copy of it archived before
		// digests (read first, when both are: exact orders them so).
		if o, ok := b.originals[key]; !ok || o.legacy {
			b.originals[key] = originalACK{ack: ack, code: code.String, legacy: raw != nil}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if first {
		for r, n := range seen {
			if n >= 2 && !b.hasOriginal(recs[r]) {
				b.exact = append(b.exact, r)
			}
		}
	}
	return nil
}

// hasOriginal reports whether an original of rec was found.
func (b *batchCheck) hasOriginal(rec *ingest.Record) bool {
	_, ok := b.originals[resendKeyFor(rec)]
	return ok
}

// queueExact queues, for the records whose control ID precheck found used by two messages or more
// with other content (b.exact), the look-up of a message with their own content, by content
// digest (or, archived before digests, compared by its raw message's). Its answer comes with the
// next round trip, before the batch's records are applied.
func (b *batchCheck) queueExact(ctx context.Context, tx *pipeTx, recs []*ingest.Record) error {
	if len(b.exact) == 0 {
		return nil
	}
	only := make([]bool, len(recs))
	for _, r := range b.exact {
		only[r] = true
	}
	keys := controlKeys(recs, nil, only)
	err := tx.QueueQuery(ctx, `
		SELECT k.i, o.ack, o.ack_code, o.content_digest, o.raw
		FROM unnest($1::batch_control_id[]) WITH ORDINALITY AS k(site, env, control, digest, i)
		JOIN LATERAL (
			SELECT m.ack, m.ack_code, m.content_digest, CASE WHEN m.content_digest IS NULL THEN m.raw END AS raw
			FROM messages m
			WHERE m.site_id = k.site AND m.env = k.env::char(1) AND m.control_id = k.control AND m.resend_key
				AND (m.content_digest = k.digest OR m.content_digest IS NULL)
			ORDER BY m.content_digest IS NULL
			LIMIT 1) o ON true
		ORDER BY k.i`, func(rows pgx.Rows) error {
		return b.readStored(recs, rows, false)
	}, &keys)
	if err != nil {
		return fmt.Errorf("store: look up resends by content: %w", err)
	}
	return nil
}

// prechecks reports a record precheck covers: one from a known site with a control ID, that is
// either a resend key or a message an original may answer (not the archive entry of a message
// that failed to commit).
func prechecks(rec *ingest.Record) bool {
	return rec.Sender != nil && rec.ControlID != "" && rec.Env != "" && (rec.ResendKey || !internalFailure(rec))
}

// apply applies one record to the batch: its archive row (staged in st), and the registry
// content when there is some (applied to view, written with the batch). It returns the ACK to
// send: the record's own, or for a resend the one stored with the original.
func (w *Writer) apply(view *registry.View, ids registry.IDs, st *stagedBatch, rec *ingest.Record, pre prechecked) (out []byte, resend bool, err error) {
	var siteID, credID *int64
	if rec.Sender != nil {
		siteID, credID = &rec.Sender.SiteID, &rec.Sender.CredentialID
		if rec.Sender.CredentialID == 0 {
			credID = nil
		}
	}
	var env *string
	if rec.Env != "" {
		env = &rec.Env
	}
	resendKey := rec.ResendKey && siteID != nil && rec.ControlID != "" && env != nil
	if !pre.lookup && resendKey {
		return nil, false, errors.New("store: record was not prechecked")
	}
	row := archiveRow{id: pre.id, env: env, site: siteID, cred: credID, transport: string(rec.Transport),
		control: rec.ControlID, facility: rec.Facility, mtype: rec.MessageType, received: rec.ReceivedAt,
		raw: rec.Raw, digest: rec.Digest, charset: charsetArg(rec)}
	// Records without a sender or control ID to answer by, and archive entries of messages that
	// failed to commit, are archived as they are.
	var key resendKeyOf
	var o originalACK
	var found bool
	if pre.lookup {
		key = resendKeyFor(rec)
		o, found = pre.batch.originals[key]
	}
	if found {
		// A resend: answer with the original ACK, archive this copy, change nothing else. The same
		// goes for a copy of an accepted message that would now be rejected (its site passed the
		// header checks, but validation or code sets changed since): the data of the original is
		// stored, and the sender must not be told otherwise.
		row.ack, row.code, row.findings, row.resendKey = o.ack, o.code, "[]", false
		st.messages = append(st.messages, row)
		return o.ack, true, nil
	}
	// What the registry holds may add findings to the ACK (rec.Amend): a control ID already used
	// by another message, found now, and unknown keys, found as the content is applied (the
	// archive row is written with the batch, after).
	answer, code, findings := rec.ACK, rec.ACKCode, rec.Findings
	var extra []ack.Finding
	amend := func(more ...ack.Finding) {
		extra = append(extra, more...)
		answer, code = rec.Amend(extra)
		findings = append(rec.Findings[:len(rec.Findings):len(rec.Findings)], extra...)
	}
	if resendKey && pre.lookup && rec.Amend != nil && pre.batch.used[key.controlOnly()] {
		amend(reusedControlID(rec.ControlID))
	}
	if resendKey && rec.VXU != nil {
		unknown, err := w.reg.Apply(view, ids, rec, pre.id)
		if err != nil {
			return nil, false, fmt.Errorf("store: %w", err)
		}
		if len(unknown) > 0 && rec.Amend != nil {
			amend(unknown...)
		}
	}
	archived, err := archiveFindings(findings)
	if err != nil {
		return nil, false, err
	}
	row.ack, row.code, row.findings, row.resendKey = answer, code, string(archived.listed), resendKey
	if siteID != nil {
		row.keys = findingKeysOf(findings) // its facts' (facts.go)
	}
	row.more, row.moreCount = archived.more, int32(archived.moreCount)
	st.messages = append(st.messages, row)
	if !resendKey {
		return answer, false, nil // a rejected message: archived, nothing else
	}
	// A copy later in this batch is a resend of this one, and another message under its control
	// ID is warned.
	pre.batch.originals[key] = originalACK{ack: answer, code: code}
	pre.batch.used[key.controlOnly()] = true
	return answer, false, nil
}

// charsetArg is messages.charset for rec: the fallback character set that decoded part of its
// raw message, NULL when none did (ingest.DecodeArchived reads it back the same way).
func charsetArg(rec *ingest.Record) *string {
	if rec.Charset == "" {
		return nil
	}
	return &rec.Charset
}

// reusedControlID is the warning for a message whose control ID the site already used for another
// message (SPEC §2.6): it was processed like any other.
func reusedControlID(control string) ack.Finding {
	return ack.Finding{
		Rule: "msh-10-control-id-reused", Location: ack.Location{Segment: "MSH", Sequence: 1, Field: 10},
		Code: ack.CodeDuplicateKey, Severity: ack.Warning, App: ack.AppInvalidValue,
		Text: fmt.Sprintf("Control ID %q (MSH-10) was already used by your site for a different message. "+
			"This message was processed and stored like any other; give every message a control ID of its own "+
			"(a resend must repeat the original message exactly, except MSH-7).", control),
	}
}

// internalFailure reports the archive entry of a message that failed to commit (the pipeline
// archives it after answering AR): it records what was answered, not a resend.
func internalFailure(rec *ingest.Record) bool {
	for _, f := range rec.Findings {
		if f.Code == ack.CodeInternalError {
			return true
		}
	}
	return false
}
