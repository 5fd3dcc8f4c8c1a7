package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
)

// WriterOptions bound the group commit.
type WriterOptions struct {
	MaxBatch int           // records per transaction at most (default 256)
	MaxDelay time.Duration // how long a batch waits for more records once it has one (default 2ms)
	// Shards is the number of concurrent writers. Records of one patient always go to the same
	// shard, so that messages about one patient are applied in the order they were started.
	Shards     int
	Logger     *zap.Logger
	Registerer prometheus.Registerer
	// Codes maps vaccines to vaccine groups for merging reports of the same dose (default: the
	// code sets embedded in the binary).
	Codes *codes.Set
}

// Writer persists ingest records with group commit: records that arrive within MaxDelay of each
// other (up to MaxBatch) are written in one transaction, and each record's Pending is released
// only when that transaction has committed. One bad record does not fail its batch-mates: it is
// rolled back to its own savepoint and answered with an error. When the batch itself fails (its
// commit, its connection, or a record hit a transient conflict with a concurrent batch: deadlock,
// serialization failure, racing insert), every record of it is written again alone, in order.
type Writer struct {
	db     *DB
	reg    *registry
	o      WriterOptions
	log    *zap.Logger
	shards []chan *job
	wg     sync.WaitGroup
	mu     sync.RWMutex
	closed bool

	batchSize  prometheus.Histogram
	commitTime prometheus.Histogram
	queueDepth prometheus.GaugeFunc
	failures   *prometheus.CounterVec
	resends    prometheus.Counter
}

type job struct {
	rec  *ingest.Record
	done chan struct{}
	ack  []byte
	err  error
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
		o.MaxBatch = 256
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 2 * time.Millisecond
	}
	if o.Shards <= 0 {
		o.Shards = 2
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Codes == nil {
		o.Codes = codes.Default()
	}
	w := &Writer{db: db, o: o, log: o.Logger, reg: &registry{codes: o.Codes}}
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
		Name: "vaxgate_store_failures_total", Help: "Records that could not be stored, by stage.",
	}, []string{"stage"})
	w.resends = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vaxgate_resends_total", Help: "Messages recognised as resends (same sender and control ID) and answered with the original ACK.",
	})
	if o.Registerer != nil {
		for _, c := range []prometheus.Collector{w.batchSize, w.commitTime, w.queueDepth, w.failures, w.resends} {
			if err := o.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("store: register writer metrics: %w", err)
			}
		}
	}
	for _, s := range w.shards {
		w.wg.Add(1)
		go w.run(s)
	}
	return w, nil
}

// Commit queues rec for the next group commit. It blocks only when the shard's queue is full,
// which is the back-pressure that keeps memory bounded.
func (w *Writer) Commit(rec *ingest.Record) ingest.Pending {
	j := &job{rec: rec, done: make(chan struct{})}
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
	h := fnv.New32a()
	if rec.Sender != nil {
		fmt.Fprint(h, rec.Sender.OrganizationID, "|")
	}
	if rec.VXU != nil {
		id := rec.VXU.Patient.PrimaryID()
		h.Write([]byte(id.Value + "|" + id.Authority + "|" + id.Type))
	} else {
		h.Write([]byte(rec.ControlID))
	}
	// FNV-1a's low bits barely mix; fold the high half in before taking the modulus.
	x := h.Sum32()
	x ^= x >> 16
	x *= 0x45d9f3b
	x ^= x >> 16
	return int(x % uint32(len(w.shards)))
}

// Close stops accepting records, writes what is queued and waits for the shards to finish.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
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

// flush writes one batch in one transaction and releases every job. If the batch fails as a
// whole, its records are written again one by one (writeAlone), so that a conflict with a
// concurrent batch or a lost connection costs latency, not an AR.
func (w *Writer) flush(batch []*job) {
	start := time.Now()
	if err := w.writeBatch(batch); err != nil {
		w.failures.WithLabelValues("batch").Inc()
		w.log.Warn("batch failed, writing its records one by one", zap.Int("records", len(batch)), zap.Error(err))
		var down error
		for _, j := range batch {
			if down != nil {
				// The database is unreachable: answer at once rather than time out record by record.
				j.ack, j.err = nil, fmt.Errorf("store: commit batch: %w", down)
				w.failures.WithLabelValues("commit").Inc()
				continue
			}
			j.ack, j.err = w.writeAlone(j.rec)
			if unreachable(j.err) {
				down = j.err
			}
		}
	}
	w.batchSize.Observe(float64(len(batch)))
	w.commitTime.Observe(time.Since(start).Seconds())
	for _, j := range batch {
		close(j.done)
	}
}

func (w *Writer) writeBatch(batch []*job) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	recs := make([]*ingest.Record, len(batch))
	for i, j := range batch {
		recs[i] = j.rec
	}
	return pgx.BeginFunc(ctx, w.db.Pool, func(tx pgx.Tx) error {
		if err := lockLinkKeys(ctx, tx, recs); err != nil {
			return err
		}
		for _, j := range batch {
			j.ack, j.err = w.applyIsolated(ctx, tx, j.rec)
			if j.err != nil && (transient(j.err) || tx.Conn().IsClosed()) {
				// Retrying the record inside this transaction could meet the same conflict
				// again, and deferring it would reorder it after later records of its patient.
				return j.err
			}
		}
		return nil
	})
}

// writeAttempts bounds writeAlone's retries of transient failures.
const writeAttempts = 5

// writeAlone writes one record in a transaction of its own, retrying transient failures.
func (w *Writer) writeAlone(rec *ingest.Record) ([]byte, error) {
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		var out []byte
		var resend bool
		err := pgx.BeginFunc(ctx, w.db.Pool, func(tx pgx.Tx) error {
			if err := lockLinkKeys(ctx, tx, []*ingest.Record{rec}); err != nil {
				return err
			}
			var err error
			out, resend, err = w.apply(ctx, tx, rec)
			return err
		})
		cancel()
		if err == nil {
			if resend {
				w.resends.Inc()
			}
			return out, nil
		}
		if !transient(err) || attempt == writeAttempts {
			w.failures.WithLabelValues("record").Inc()
			w.log.Error("record not stored", zap.String("control_id", rec.ControlID),
				zap.String("site", siteCode(rec.Sender)), zap.Int("attempts", attempt), zap.Error(err))
			return nil, fmt.Errorf("store: write record: %w", err)
		}
		time.Sleep(time.Duration(attempt*attempt) * 5 * time.Millisecond)
	}
}

// unreachable reports an error that says the database could not be reached or did not answer.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || pgconn.Timeout(err)
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

// applyIsolated applies one record inside its own savepoint, so that its failure leaves the rest of
// the batch intact.
func (w *Writer) applyIsolated(ctx context.Context, tx pgx.Tx, rec *ingest.Record) ([]byte, error) {
	var out []byte
	var resend bool
	err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
		var err error
		out, resend, err = w.apply(ctx, sp, rec)
		return err
	})
	if err != nil {
		w.failures.WithLabelValues("record").Inc()
		w.log.Error("record not stored", zap.String("control_id", rec.ControlID),
			zap.String("site", siteCode(rec.Sender)), zap.Error(err))
		return nil, err
	}
	if resend {
		w.resends.Inc()
	}
	return out, nil
}

func siteCode(s *ingest.Sender) string {
	if s == nil {
		return ""
	}
	return s.SiteCode
}

// apply writes one record: the archive entry, and the registry content when there is some. It
// returns the ACK to send: the record's own, or for a resend the one stored with the original.
func (w *Writer) apply(ctx context.Context, tx pgx.Tx, rec *ingest.Record) (ack []byte, resend bool, err error) {
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
	findings, jerr := json.Marshal(findingsJSON(rec))
	if jerr != nil {
		return nil, false, fmt.Errorf("store: encode findings: %w", jerr)
	}
	resendKey := rec.ResendKey && siteID != nil && rec.ControlID != "" && env != nil
	var msgID int64
	var original []byte
	var code string
	if !resendKey && env != nil && siteID != nil && rec.ControlID != "" && !internalFailure(rec) {
		// A copy of an accepted message that would now be rejected (its site passed the header
		// checks, but validation or code sets changed since) still gets the original answer: the
		// data of the original is stored, and the sender must not be told otherwise.
		err = tx.QueryRow(ctx, `SELECT ack, ack_code FROM messages
			WHERE site_id = $1 AND env = $2 AND control_id = $3 AND resend_key`, siteID, env, rec.ControlID).Scan(&original, &code)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, false, fmt.Errorf("store: look for the original of a rejected message: %w", err)
		}
	} else {
		err = tx.QueryRow(ctx, `
			INSERT INTO messages (env, site_id, credential_id, transport, control_id, sending_facility,
				message_type, received_at, raw, ack, ack_code, findings, resend_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
			ON CONFLICT (site_id, env, control_id) WHERE resend_key AND site_id IS NOT NULL DO NOTHING
			RETURNING id`,
			env, siteID, credID, string(rec.Transport), rec.ControlID, rec.Facility, rec.MessageType,
			rec.ReceivedAt, rec.Raw, rec.ACK, rec.ACKCode, findings, resendKey).Scan(&msgID)
		if errors.Is(err, pgx.ErrNoRows) {
			if err := tx.QueryRow(ctx, `SELECT ack, ack_code FROM messages
				WHERE site_id = $1 AND env = $2 AND control_id = $3 AND resend_key`, siteID, env, rec.ControlID).Scan(&original, &code); err != nil {
				return nil, false, fmt.Errorf("store: read original of resend: %w", err)
			}
		} else if err != nil {
			return nil, false, fmt.Errorf("store: archive message: %w", err)
		}
	}
	if original != nil {
		// A resend: answer with the original ACK, archive this copy, change nothing else.
		if _, err := tx.Exec(ctx, `
			INSERT INTO messages (env, site_id, credential_id, transport, control_id, sending_facility,
				message_type, received_at, raw, ack, ack_code, findings, resend_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, '[]', false)`,
			env, siteID, credID, string(rec.Transport), rec.ControlID, rec.Facility, rec.MessageType,
			rec.ReceivedAt, rec.Raw, original, code); err != nil {
			return nil, false, fmt.Errorf("store: archive resend: %w", err)
		}
		return original, true, nil
	}
	if msgID == 0 {
		// Not a resend after all: archive the rejected message.
		if err := tx.QueryRow(ctx, `
			INSERT INTO messages (env, site_id, credential_id, transport, control_id, sending_facility,
				message_type, received_at, raw, ack, ack_code, findings, resend_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, false)
			RETURNING id`,
			env, siteID, credID, string(rec.Transport), rec.ControlID, rec.Facility, rec.MessageType,
			rec.ReceivedAt, rec.Raw, rec.ACK, rec.ACKCode, findings).Scan(&msgID); err != nil {
			return nil, false, fmt.Errorf("store: archive message: %w", err)
		}
	}
	if rec.VXU != nil && rec.Sender != nil && resendKey {
		if err := w.reg.storeVXU(ctx, tx, rec, msgID); err != nil {
			return nil, false, err
		}
	}
	return rec.ACK, false, nil
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

type findingJSON struct {
	Rule     string `json:"rule"`
	Location string `json:"location,omitempty"`
	Code     int    `json:"code"`
	Severity string `json:"severity"`
	App      int    `json:"app,omitempty"`
	Text     string `json:"text"`
	Group    int    `json:"group,omitempty"`
}

func findingsJSON(rec *ingest.Record) []findingJSON {
	out := make([]findingJSON, 0, len(rec.Findings))
	for _, f := range rec.Findings {
		loc := ""
		if f.Location.Segment != "" {
			loc = fmt.Sprintf("%s[%d]-%d.%d.%d", f.Location.Segment, f.Location.Sequence, f.Location.Field, f.Location.Component, f.Location.Sub)
		}
		out = append(out, findingJSON{Rule: f.Rule, Location: loc, Code: int(f.Code), Severity: string(f.Severity),
			App: int(f.App), Text: f.Text, Group: f.Group})
	}
	return out
}
