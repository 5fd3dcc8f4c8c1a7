package store

import (
	"context"
	"fmt"

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
// queues all of a batch's look-ups and sends them together (Writer.begin, prefetch), then writes
// every record's statements without waiting for any (inserts whose id is needed use ids drawn
// ahead, ids.go). A batch of any size costs a few round trips, not ~19 per message (savepoint,
// ~16 statements, release) as one statement at a time would.
//
// On a connection of its own (beginOn), the transaction's BEGIN goes out with its first statements
// and its COMMIT with its last: a whole batch of records then costs two round trips, one for its
// reads and one for its writes and commit.
type pipeTx struct {
	pgx.Tx
	queued []queuedStmt
	ids    map[string][]int64 // drawn ahead, by table (see drawIDs)
	// ctx is the batch's, for the ids drawn when those drawn ahead run out (takeID: the
	// registry's IDs.Next has no context of its own). Set by Writer.begin.
	ctx context.Context
}

type queuedStmt struct {
	sql  string
	args []any
	// read, when set, makes the statement a queued query: it reads the rows when they arrive.
	read func(pgx.Rows) error
}

// Exec queues sql; its error, if any, comes with a later round trip.
func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	t.queued = append(t.queued, queuedStmt{sql: sql, args: args})
	return pgconn.CommandTag{}, nil
}

// QueueQuery queues a query whose rows are read, by read, when the queue is sent: several reads
// that do not depend on each other (a batch's look-ups) then cost one round trip together.
func (t *pipeTx) QueueQuery(ctx context.Context, sql string, read func(pgx.Rows) error, args ...any) error {
	t.queued = append(t.queued, queuedStmt{sql: sql, args: args, read: read})
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
	// pgx has encoded every argument into its own buffers by now: the batch rows' buffers can
	// serve the next batch.
	for _, q := range queued {
		releaseRows(q.args)
	}
	if extra != nil {
		releaseRows(extra.args)
	}
	for i := range queued[:n] {
		if err := queued[i].result(br); err != nil {
			br.Close()
			return nil, fmt.Errorf("store: queued statement: %w", err)
		}
	}
	return br, nil
}

// releaseRows releases the batch rows among a statement's arguments (rowArray.release).
func releaseRows(args []any) {
	for _, a := range args {
		if r, ok := a.(*rowArray); ok {
			r.release()
		}
	}
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

// Flush sends the queued statements and waits for the results.
func (t *pipeTx) Flush(ctx context.Context) error {
	if len(t.queued) == 0 {
		return nil
	}
	br, err := t.send(ctx, nil)
	if err != nil {
		return err
	}
	return br.Close()
}

func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
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

// Commit sends what is queued, with the COMMIT (the transaction began with beginOn).
func (t *pipeTx) Commit(ctx context.Context) error {
	br, err := t.send(ctx, &queuedStmt{sql: "COMMIT"})
	if err != nil {
		return err
	}
	tag, err := br.Exec()
	cerr := br.Close()
	switch {
	case err != nil:
		return err
	case tag.String() != "COMMIT":
		return pgx.ErrTxCommitRollback // the transaction had failed
	}
	// The server said COMMIT: the transaction is durable, whatever happens to the connection
	// next (an error closing the batch, say the server terminating the session right after).
	_ = cerr
	return nil
}

// beginOn starts a transaction on c whose BEGIN is queued, to go out with the first statements.
// The caller commits it with Commit or ends it with Rollback, then releases c (which the pool
// closes if the transaction is still open).
func beginOn(c *pgx.Conn) *pipeTx {
	return &pipeTx{Tx: connTx{c}, queued: []queuedStmt{{sql: "BEGIN"}}}
}

// connTx is the pgx.Tx of a beginOn transaction: statements run on the connection, inside the
// transaction that the queued BEGIN opened.
type connTx struct{ c *pgx.Conn }

func (t connTx) Begin(ctx context.Context) (pgx.Tx, error) { return t.c.Begin(ctx) }
func (t connTx) Commit(ctx context.Context) error {
	tag, err := t.c.Exec(ctx, "COMMIT")
	if err == nil && tag.String() != "COMMIT" {
		err = pgx.ErrTxCommitRollback
	}
	return err
}
func (t connTx) Rollback(ctx context.Context) error {
	_, err := t.c.Exec(ctx, "ROLLBACK")
	return err
}
func (t connTx) CopyFrom(ctx context.Context, table pgx.Identifier, cols []string, src pgx.CopyFromSource) (int64, error) {
	return t.c.CopyFrom(ctx, table, cols, src)
}
func (t connTx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return t.c.SendBatch(ctx, b)
}
func (t connTx) LargeObjects() pgx.LargeObjects { return pgx.LargeObjects{} }
func (t connTx) Prepare(ctx context.Context, name, sql string) (*pgconn.StatementDescription, error) {
	return t.c.Prepare(ctx, name, sql)
}
func (t connTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	return t.c.Exec(ctx, sql, args...)
}
func (t connTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	return t.c.Query(ctx, sql, args...)
}
func (t connTx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return t.c.QueryRow(ctx, sql, args...)
}
func (t connTx) Conn() *pgx.Conn { return t.c }

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
