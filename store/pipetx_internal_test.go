package store

import "testing"

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
