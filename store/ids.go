package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/vaxgate/vaxgate/ingest"
)

// Ids drawn ahead. Inserting a row whose id the next statements need (a patient, its registry
// patient, a vaccination, a sharing change) would cost a round trip each (INSERT ... RETURNING id).
// The writer draws ids for a whole batch from the tables' sequences in one query (drawIDs), and
// insertID then inserts with an explicit id, queued like any other statement of a pipeTx. Unused
// ids leave gaps, as rolled-back inserts always did. Within a batch ids follow the order records
// are applied in, as before; across concurrent batches, as before, they do not follow commit order.

// idTables are the tables whose ids are drawn ahead, with their sequences.
var idTables = []struct{ table, seq string }{
	{"registry_patients", "registry_patients_id_seq"},
	{"patients", "patients_id_seq"},
	{"sharing_changes", "sharing_changes_id_seq"},
	{"vaccinations", "vaccinations_id_seq"},
}

// drawIDs queues the drawing, for recs, of as many ids as their registry content can use: one
// registry patient, one patient and one sharing change per record, one vaccination per order.
// They are there once the queue has been sent.
func drawIDs(ctx context.Context, tx *pipeTx, recs []*ingest.Record) error {
	var people, orders int
	for _, rec := range recs {
		if rec.VXU != nil && rec.Sender != nil && rec.ResendKey {
			people++
			orders += len(rec.VXU.Orders)
		}
	}
	if people == 0 {
		return nil
	}
	counts := []int{people, people, people, orders}
	var sql strings.Builder
	sql.WriteString("SELECT ")
	for i, t := range idTables {
		if i > 0 {
			sql.WriteString(", ")
		}
		// Counts as parameters: one statement text, prepared once per connection.
		fmt.Fprintf(&sql, "ARRAY(SELECT nextval('%s') FROM generate_series(1, $%d::int))", t.seq, i+1)
	}
	args := make([]any, len(counts))
	for i, n := range counts {
		args[i] = n
	}
	// Queued: the ids arrive with the batch's other look-ups (see Writer.begin).
	err := tx.QueueQuery(ctx, sql.String(), func(rows pgx.Rows) error {
		got := make([][]int64, len(idTables))
		dest := make([]any, len(got))
		for i := range got {
			dest[i] = &got[i]
		}
		if !rows.Next() {
			return errors.New("no row")
		}
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		tx.ids = map[string][]int64{}
		for i, t := range idTables {
			tx.ids[t.table] = got[i]
		}
		return nil
	}, args...)
	if err != nil {
		return fmt.Errorf("store: draw ids: %w", err)
	}
	return nil
}

func (t *pipeTx) takeID(table string) (int64, bool) {
	ids := t.ids[table]
	if len(ids) == 0 {
		return 0, false
	}
	t.ids[table] = ids[1:]
	return ids[0], true
}

// insertID runs sql, an INSERT ... VALUES (...) RETURNING id into table, and returns the id. In a
// pipeTx holding ids drawn ahead for table it inserts with one of those instead, without waiting.
func insertID(ctx context.Context, tx pgx.Tx, table, sql string, args ...any) (int64, error) {
	if p, ok := tx.(*pipeTx); ok {
		if q, ok := explicitID(sql, len(args)+1); ok {
			if id, ok := p.takeID(table); ok {
				_, err := tx.Exec(ctx, q, append(args[:len(args):len(args)], id)...)
				return id, err
			}
		}
	}
	var id int64
	err := tx.QueryRow(ctx, sql, args...).Scan(&id)
	return id, err
}

// explicitIDs caches explicitID's rewrites.
var explicitIDs sync.Map // string → string ("" when sql has not the expected form)

// explicitID rewrites "INSERT INTO t (cols) VALUES (vals) RETURNING id" into
// "INSERT INTO t (cols, id) VALUES (vals, $param)".
func explicitID(sql string, param int) (string, bool) {
	key := sql + "\x00" + strconv.Itoa(param)
	if q, ok := explicitIDs.Load(key); ok {
		return q.(string), q.(string) != ""
	}
	q, err := rewriteExplicitID(sql, param)
	if err != nil {
		q = ""
	}
	explicitIDs.Store(key, q)
	return q, q != ""
}

func rewriteExplicitID(sql string, param int) (string, error) {
	s := strings.TrimSpace(sql)
	body, ok := strings.CutSuffix(s, "RETURNING id")
	if !ok {
		return "", errors.New("no RETURNING id")
	}
	body = strings.TrimSpace(body)
	vi := strings.Index(body, "VALUES (")
	if vi < 0 || strings.Count(body, "VALUES (") != 1 {
		return "", errors.New("no VALUES list")
	}
	v := strings.LastIndex(body[:vi], ")")
	if v < 0 {
		return "", errors.New("no column list")
	}
	if !strings.HasSuffix(body, ")") || strings.Contains(body, "ON CONFLICT") || strings.Contains(body, "SELECT") {
		return "", errors.New("not a plain VALUES list")
	}
	return body[:v] + ", id" + body[v:len(body)-1] + ", $" + strconv.Itoa(param) + ")", nil
}
