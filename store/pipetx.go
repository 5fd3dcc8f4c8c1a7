package store

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pipeTx is a transaction that saves round trips: Exec does not wait for the server but queues the
// statement, and the queue goes out, in order and in one round trip (a pgx batch, i.e. the
// extended protocol's pipeline), with the next statement whose answer is needed — a Query or
// QueryRow — or at Commit. The server runs the statements in exactly the order they were issued,
// inside the same transaction, so what a query sees is what it would have seen without queueing.
//
// The cost is error attribution: a queued statement's error is returned by the call that sent it
// (the next query, or Commit), not by its Exec. The writer therefore treats any error inside a
// batch as the batch's, rolls it back and writes the records again in smaller transactions
// (Writer.flush). Exec returns an empty CommandTag: the write path reads only its error.
//
// Queries whose answers do not depend on each other can be queued too (QueueQuery): the writer
// queues all of a batch's look-ups and sends them together (Writer.begin, batchView), then writes
// every record's statements without waiting for any (inserts whose id is needed use ids drawn
// ahead, ids.go). A batch of any size costs a few round trips, not ~19 per message (savepoint,
// ~16 statements, release) as one statement at a time would.
//
// Rows for the append-only tables (appendOnly: reports, next of kin, observations — nothing in the
// write path reads them back or references them) go further: a plain INSERT ... VALUES ($1, ...)
// into one of them is not sent at all but kept, and all of a transaction's rows of each such table
// are written with one COPY when the transaction is flushed (or before any statement that names
// the table). Their parents (messages, patients, vaccinations) are inserted by earlier statements,
// so the foreign keys hold; COPY costs a fraction of a statement per row.
type pipeTx struct {
	pgx.Tx
	queued []queuedStmt
	copies []*copyBuf
	ids    map[string][]int64 // drawn ahead, by table (see drawIDs)
}

// appendOnly are the tables whose plain inserts are turned into COPY.
var appendOnly = map[string]bool{"patient_reports": true, "next_of_kin": true, "observations": true, "vaccination_reports": true}

// copyBuf holds the rows of one table for COPY.
type copyBuf struct {
	table string
	cols  []string
	rows  [][]any
}

// plainInsert matches INSERT INTO table (cols) VALUES ($1, ..., $n), nothing else.
var plainInsert = regexp.MustCompile(`(?s)^\s*INSERT INTO ([a-z_]+) \(([a-z_, \n\t]+)\)\s+VALUES \(([$0-9, \n\t]+)\)\s*$`)

// copyable caches asCopy's analysis per statement text (the write path has a handful).
var copyable sync.Map // string → copyPlan

type copyPlan struct {
	table string
	cols  []string
	ok    bool
}

// asCopy returns the table and columns of sql if its rows can be copied instead: a plain insert into
// an append-only table whose values are exactly its parameters, in order.
func asCopy(sql string, nargs int) (table string, cols []string, ok bool) {
	if p, hit := copyable.Load(sql); hit {
		p := p.(copyPlan)
		return p.table, p.cols, p.ok && len(p.cols) == nargs
	}
	table, cols, ok = parseCopy(sql)
	copyable.Store(sql, copyPlan{table: table, cols: cols, ok: ok})
	return table, cols, ok && len(cols) == nargs
}

func parseCopy(sql string) (table string, cols []string, ok bool) {
	m := plainInsert.FindStringSubmatch(sql)
	if m == nil || !appendOnly[m[1]] {
		return "", nil, false
	}
	for _, c := range strings.Split(m[2], ",") {
		cols = append(cols, strings.TrimSpace(c))
	}
	vals := strings.Split(m[3], ",")
	if len(vals) != len(cols) {
		return "", nil, false
	}
	for i, v := range vals {
		if strings.TrimSpace(v) != "$"+strconv.Itoa(i+1) {
			return "", nil, false
		}
	}
	return m[1], cols, true
}

type queuedStmt struct {
	sql  string
	args []any
	// read, when set, makes the statement a queued query: it reads the rows when they arrive.
	read func(pgx.Rows) error
}

func newPipeTx(tx pgx.Tx) *pipeTx { return &pipeTx{Tx: tx} }

// Exec queues sql, or keeps its row for COPY; its error, if any, comes with a later round trip.
func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if table, cols, ok := asCopy(sql, len(args)); ok {
		t.copyRow(table, cols, args)
		return pgconn.CommandTag{}, nil
	}
	if err := t.copyBefore(ctx, sql); err != nil {
		return pgconn.CommandTag{}, err
	}
	t.queued = append(t.queued, queuedStmt{sql: sql, args: args})
	return pgconn.CommandTag{}, nil
}

// QueueQuery queues a query whose rows are read, by read, when the queue is sent: several reads
// that do not depend on each other (a batch's look-ups) then cost one round trip together.
func (t *pipeTx) QueueQuery(ctx context.Context, sql string, read func(pgx.Rows) error, args ...any) error {
	if err := t.copyBefore(ctx, sql); err != nil {
		return err
	}
	t.queued = append(t.queued, queuedStmt{sql: sql, args: args, read: read})
	return nil
}

func (t *pipeTx) copyRow(table string, cols []string, args []any) {
	for _, c := range t.copies {
		if c.table == table && slicesEqual(c.cols, cols) {
			c.rows = append(c.rows, args)
			return
		}
	}
	t.copies = append(t.copies, &copyBuf{table: table, cols: cols, rows: [][]any{args}})
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// copyBefore writes the kept rows before a statement that names their table (which might read
// them): the write path has none, but order must hold whatever the SQL.
func (t *pipeTx) copyBefore(ctx context.Context, sql string) error {
	for _, c := range t.copies {
		if strings.Contains(sql, c.table) {
			return t.Flush(ctx)
		}
	}
	return nil
}

// send queues the pending statements (and extra, if any) into one batch and sends it; the caller
// reads extra's result, then closes the batch results.
func (t *pipeTx) send(ctx context.Context, extra *queuedStmt) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	for _, q := range t.queued {
		b.Queue(q.sql, q.args...)
	}
	n := len(t.queued)
	if extra != nil {
		b.Queue(extra.sql, extra.args...)
	}
	queued := t.queued
	defer func() { clear(queued); t.queued = queued[:0] }()
	br := t.Tx.SendBatch(ctx, b)
	for i := range queued[:n] {
		if err := queued[i].result(br); err != nil {
			br.Close()
			return nil, fmt.Errorf("store: queued statement: %w", err)
		}
	}
	return br, nil
}

// result reads q's answer from br: its rows for a queued query, else its command tag.
func (q *queuedStmt) result(br pgx.BatchResults) error {
	if q.read == nil {
		_, err := br.Exec()
		return err
	}
	rows, err := br.Query()
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := q.read(rows); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// Flush sends the queued statements, then copies the kept rows, and waits for the results.
func (t *pipeTx) Flush(ctx context.Context) error {
	if len(t.queued) > 0 {
		br, err := t.send(ctx, nil)
		if err != nil {
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
	}
	copies := t.copies
	t.copies = nil
	for _, c := range copies {
		if _, err := t.Tx.CopyFrom(ctx, pgx.Identifier{c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			return fmt.Errorf("store: copy into %s: %w", c.table, err)
		}
	}
	return nil
}

func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.copyBefore(ctx, sql); err != nil {
		return nil, err
	}
	if len(t.queued) == 0 {
		return t.Tx.Query(ctx, sql, args...)
	}
	br, err := t.send(ctx, &queuedStmt{sql: sql, args: args})
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

func (t *pipeTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if err := t.copyBefore(ctx, sql); err != nil {
		return errRow{err}
	}
	if len(t.queued) == 0 {
		return t.Tx.QueryRow(ctx, sql, args...)
	}
	br, err := t.send(ctx, &queuedStmt{sql: sql, args: args})
	if err != nil {
		return errRow{err}
	}
	return &batchRow{row: br.QueryRow(), br: br}
}

// The remaining ways to reach the server flush the queue first, so that order is kept.

func (t *pipeTx) Commit(ctx context.Context) error {
	if err := t.Flush(ctx); err != nil {
		return err
	}
	return t.Tx.Commit(ctx)
}

func (t *pipeTx) Begin(ctx context.Context) (pgx.Tx, error) {
	if err := t.Flush(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Begin(ctx)
}

func (t *pipeTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	if err := t.Flush(ctx); err != nil {
		return 0, err
	}
	return t.Tx.CopyFrom(ctx, table, cols, src)
}

func (t *pipeTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if err := t.Flush(ctx); err != nil {
		return errBatch{err: err, tx: t}
	}
	return t.Tx.SendBatch(ctx, b)
}

func (t *pipeTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	if err := t.Flush(ctx); err != nil {
		return nil, err
	}
	return t.Tx.Prepare(ctx, name, sql)
}

type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
}

func (r *batchRows) Close() {
	r.Rows.Close()
	if !r.closed {
		r.closed = true
		r.br.Close()
	}
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

type batchRow struct {
	row pgx.Row
	br  pgx.BatchResults
}

func (r *batchRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.br.Close(); err == nil && cerr != nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

type errBatch struct {
	err error
	tx  pgx.Tx
}

func (b errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b errBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b errBatch) QueryRow() pgx.Row                { return errRow{b.err} }
func (b errBatch) Tx() pgx.Tx                       { return b.tx }
func (b errBatch) Close() error                     { return b.err }
