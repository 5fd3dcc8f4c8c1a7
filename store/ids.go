package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Ids drawn ahead. The registry gives new rows (a patient, its registry patient, a vaccination, a
// sharing change) their ids as it applies a batch's records, before anything is written; the
// writer draws ids for a whole batch from the tables' sequences in one query (drawIDs), and hands
// them out (pipeTx.Next, registry.IDs); the rows are then inserted with their ids, set-based. Unused
// ids leave gaps, as rolled-back inserts always did. Within a batch ids follow the order records
// are applied in, as before; across concurrent batches, as before, they do not follow commit order.

// idTables are the tables whose ids are drawn ahead, with their sequences.
var idTables = []struct{ table, seq string }{
	{"registry_patients", "registry_patients_id_seq"},
	{"patients", "patients_id_seq"},
	{"sharing_changes", "sharing_changes_id_seq"},
	{"vaccinations", "vaccinations_id_seq"},
}

// idCounts are the ids a batch is expected to use, by table, in idTables' order.
type idCounts [4]int

// drawIDs queues the drawing of counts ids from the tables' sequences, in one statement; they are
// there once the queue has been sent. counts is the batch's expectation (prefetch: a registry
// patient, a patient and a sharing change per sender patient not stored yet, a sharing change
// per stored one whose status a report may change, a vaccination per order): a batch that needs
// more draws them when it runs out (takeID), one round trip each time. Drawing an id for every
// record and table, as before, drew about three ids for each one used: a sequence call each,
// and a gap in the ids.
func drawIDs(ctx context.Context, tx *pipeTx, counts idCounts) error {
	if counts == (idCounts{}) {
		return nil
	}
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
		if tx.ids == nil {
			tx.ids = map[string][]int64{}
		}
		for i, t := range idTables {
			tx.ids[t.table] = append(tx.ids[t.table], got[i]...)
		}
		return nil
	}, args...)
	if err != nil {
		return fmt.Errorf("store: draw ids: %w", err)
	}
	return nil
}

// moreIDs is how many ids of a table a batch draws when it has used those drawn ahead.
const moreIDs = 16

func (t *pipeTx) takeID(table string) (int64, bool) {
	ids := t.ids[table]
	if len(ids) == 0 {
		// More than the batch was expected to use: draw some now (the registry applies records
		// between round trips, with nothing queued, so this round trip carries only the draw).
		var counts idCounts
		for i, x := range idTables {
			if x.table == table {
				counts[i] = moreIDs
			}
		}
		if t.ctx == nil || drawIDs(t.ctx, t, counts) != nil || t.Flush(t.ctx) != nil {
			return 0, false
		}
		if ids = t.ids[table]; len(ids) == 0 {
			return 0, false
		}
	}
	t.ids[table] = ids[1:]
	return ids[0], true
}

// Next hands out an id drawn ahead for a new row of table (registry.IDs).
func (t *pipeTx) Next(table string) (int64, bool) { return t.takeID(table) }
