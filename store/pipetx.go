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
// are written with a few multi-row inserts (rowChunks rows each) queued when the transaction is
// flushed (or before any statement that names the table). Their parents (messages, patients,
// vaccinations) are inserted by earlier statements, so the foreign keys hold. (COPY would cost two
// round trips per table: it cannot be pipelined.)
//
// On a connection of its own (beginOn), the transaction's BEGIN goes out with its first statements
// and its COMMIT with its last: a whole batch of records then costs two round trips, one for its
// reads and one for its writes and commit.
type pipeTx struct {
	pgx.Tx
	queued []queuedStmt
	kept   []*keptRows
	ids    map[string][]int64 // drawn ahead, by table (see drawIDs)
}

// appendOnly are the tables whose plain inserts are kept and written together.
var appendOnly = map[string]bool{"patient_reports": true, "next_of_kin": true, "observations": true, "vaccination_reports": true}

// keptRows holds the kept rows of one table.
type keptRows struct {
	table string
	cols  []string
	rows  [][]any
}

// plainInsert matches INSERT INTO table (cols) VALUES ($1, ..., $n), nothing else.
var plainInsert = regexp.MustCompile(`(?s)^\s*INSERT INTO ([a-z_]+) \(([a-z_, \n\t]+)\)\s+VALUES \(([$0-9, \n\t]+)\)\s*$`)

// keepable caches asKept's analysis per statement text (the write path has a handful).
var keepable sync.Map // string → keepPlan

type keepPlan struct {
	table string
	cols  []string
	ok    bool
}

// asKept returns the table and columns of sql if its rows can be kept instead: a plain insert into
// an append-only table whose values are exactly its parameters, in order.
func asKept(sql string, nargs int) (table string, cols []string, ok bool) {
	if p, hit := keepable.Load(sql); hit {
		p := p.(keepPlan)
		return p.table, p.cols, p.ok && len(p.cols) == nargs
	}
	table, cols, ok = parseKept(sql)
	keepable.Store(sql, keepPlan{table: table, cols: cols, ok: ok})
	return table, cols, ok && len(cols) == nargs
}

func parseKept(sql string) (table string, cols []string, ok bool) {
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

// Exec queues sql, or keeps its row (appendOnly tables); its error, if any, comes with a later round trip.
func (t *pipeTx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if table, cols, ok := asKept(sql, len(args)); ok {
		t.keep(table, cols, args)
		return pgconn.CommandTag{}, nil
	}
	if err := t.flushKeptBefore(ctx, sql); err != nil {
		return pgconn.CommandTag{}, err
	}
	t.queued = append(t.queued, queuedStmt{sql: sql, args: args})
	return pgconn.CommandTag{}, nil
}

// QueueQuery queues a query whose rows are read, by read, when the queue is sent: several reads
// that do not depend on each other (a batch's look-ups) then cost one round trip together.
func (t *pipeTx) QueueQuery(ctx context.Context, sql string, read func(pgx.Rows) error, args ...any) error {
	if err := t.flushKeptBefore(ctx, sql); err != nil {
		return err
	}
	t.queued = append(t.queued, queuedStmt{sql: sql, args: args, read: read})
	return nil
}

func (t *pipeTx) keep(table string, cols []string, args []any) {
	for _, c := range t.kept {
		if c.table == table && slicesEqual(c.cols, cols) {
			c.rows = append(c.rows, args)
			return
		}
	}
	t.kept = append(t.kept, &keptRows{table: table, cols: cols, rows: [][]any{args}})
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

// flushKeptBefore writes the kept rows before a statement that names their table (which might read
// them): the write path has none, but order must hold whatever the SQL.
func (t *pipeTx) flushKeptBefore(ctx context.Context, sql string) error {
	for _, c := range t.kept {
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

// Flush sends the queued statements, and the kept rows after them, and waits for the results.
func (t *pipeTx) Flush(ctx context.Context) error {
	t.queueKept()
	if len(t.queued) == 0 {
		return nil
	}
	br, err := t.send(ctx, nil)
	if err != nil {
		return err
	}
	return br.Close()
}

// rowChunks are the sizes of the multi-row inserts of kept rows, largest first: a few statement
// texts per table (each prepared once per connection), a few statements per batch.
var rowChunks = []int{256, 64, 16, 4, 1}

// multiInserts caches the multi-row insert texts, by table, columns and rows.
var multiInserts sync.Map // string → string

func multiInsert(table string, cols []string, rows int) string {
	key := table + "(" + strings.Join(cols, ",") + ")" + strconv.Itoa(rows)
	if q, ok := multiInserts.Load(key); ok {
		return q.(string)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
	n := 0
	for r := 0; r < rows; r++ {
		if r > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for c := range cols {
			if c > 0 {
				b.WriteString(", ")
			}
			n++
			b.WriteString("$" + strconv.Itoa(n))
		}
		b.WriteByte(')')
	}
	q := b.String()
	multiInserts.Store(key, q)
	return q
}

// queueKept queues the kept rows as multi-row inserts, after the statements already queued.
func (t *pipeTx) queueKept() {
	kept := t.kept
	t.kept = nil
	for _, c := range kept {
		rows := c.rows
		for len(rows) > 0 {
			n := rowChunks[len(rowChunks)-1]
			for _, size := range rowChunks {
				if size <= len(rows) {
					n = size
					break
				}
			}
			args := make([]any, 0, n*len(c.cols))
			for _, r := range rows[:n] {
				args = append(args, r...)
			}
			t.queued = append(t.queued, queuedStmt{sql: multiInsert(c.table, c.cols, n), args: args})
			rows = rows[n:]
		}
	}
}

func (t *pipeTx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := t.flushKeptBefore(ctx, sql); err != nil {
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
	if err := t.flushKeptBefore(ctx, sql); err != nil {
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

// Commit sends what is queued and kept, with the COMMIT (the transaction began with beginOn).
func (t *pipeTx) Commit(ctx context.Context) error {
	t.queueKept()
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
