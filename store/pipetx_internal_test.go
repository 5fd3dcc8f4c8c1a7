package store

import (
	"fmt"
	"testing"
)

func TestAsKept(t *testing.T) {
	for _, c := range []struct {
		sql  string
		n    int
		want string
	}{
		{"INSERT INTO observations (patient_id, vaccination_id, message_id, set_id,\n\t\t\t\tvalue_type) VALUES ($1, $2, $3, $4, $5)", 5, "observations"},
		{`INSERT INTO patient_reports (patient_id, message_id, demographics)
		VALUES ($1, $2, $3)`, 3, "patient_reports"},
		{"INSERT INTO messages (a) VALUES ($1)", 1, ""},                            // not append-only
		{"INSERT INTO observations (a, b) VALUES ($2, $1)", 2, ""},                 // reordered
		{"INSERT INTO observations (a, b) VALUES ($1, now())", 1, ""},              // expression
		{"INSERT INTO observations (a) VALUES ($1) RETURNING id", 1, ""},           // returning
		{"INSERT INTO observations (a) VALUES ($1) ON CONFLICT DO NOTHING", 1, ""}, // conflict clause
	} {
		table, _, ok := asKept(c.sql, c.n)
		if ok != (c.want != "") || table != c.want {
			t.Errorf("asKept(%q) = %q, %v; want %q", c.sql, table, ok, c.want)
		}
	}
}

func TestExplicitID(t *testing.T) {
	for _, c := range []struct{ sql, want string }{
		{"INSERT INTO t (a, b) VALUES ($1, $2) RETURNING id", "INSERT INTO t (a, b, id) VALUES ($1, $2, $3)"},
		{"INSERT INTO t (a,\n\t\tb)\n\tVALUES ($1, $2) RETURNING id", "INSERT INTO t (a,\n\t\tb, id)\n\tVALUES ($1, $2, $3)"},
		{"INSERT INTO t (a) VALUES ($1) ON CONFLICT DO NOTHING RETURNING id", ""},
		{"INSERT INTO t (a) SELECT $1 RETURNING id", ""},
		{"INSERT INTO t (a) VALUES ($1)", ""},
	} {
		n := 3
		if c.want == "" {
			n = 2
		}
		got, ok := explicitID(c.sql, n)
		if ok != (c.want != "") || got != c.want {
			t.Errorf("explicitID(%q) = %q, %v; want %q", c.sql, got, ok, c.want)
		}
	}
}

// TestQueueKept: kept rows go out as multi-row inserts of the chunk sizes, every row once, in
// order, each statement with as many parameters as its placeholders.
func TestQueueKept(t *testing.T) {
	tx := &pipeTx{}
	for i := 0; i < 85; i++ {
		tx.keep("observations", []string{"a", "b"}, []any{i, -i})
	}
	tx.queueKept()
	var sizes []int
	next := 0
	for _, q := range tx.queued {
		rows := len(q.args) / 2
		sizes = append(sizes, rows)
		if want := multiInsert("observations", []string{"a", "b"}, rows); q.sql != want {
			t.Errorf("statement %q, want %q", q.sql, want)
		}
		for r := 0; r < rows; r++ {
			if q.args[2*r] != next || q.args[2*r+1] != -next {
				t.Fatalf("row %d of a %d-row insert is %v, want %d", r, rows, q.args[2*r:2*r+2], next)
			}
			next++
		}
	}
	if fmt.Sprint(sizes) != "[64 16 4 1]" || next != 85 || len(tx.kept) != 0 {
		t.Errorf("chunks %v covering %d rows, %d tables left; want [64 16 4 1] covering 85", sizes, next, len(tx.kept))
	}
	if got := multiInsert("t", []string{"a", "b"}, 2); got != "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)" {
		t.Errorf("multiInsert = %q", got)
	}
}
