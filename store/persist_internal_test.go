package store

import (
	"strings"
	"testing"
)

// TestRowArrayColumnCount: a row added with fewer or more columns than it declared is refused
// when the array is encoded (a statement would otherwise send PostgreSQL a malformed record).
func TestRowArrayColumnCount(t *testing.T) {
	for _, c := range []struct {
		name string
		add  func(*rowArray)
		want string
	}{
		{"exact", func(r *rowArray) { r.int8(1); r.text("x") }, ""},
		{"missing", func(r *rowArray) { r.int8(1) }, "1 columns missing"},
		{"extra", func(r *rowArray) { r.int8(1); r.text("x"); r.bool(true) }, "too many columns"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var r rowArray
			r.begin(2)
			c.add(&r)
			r.end()
			_, err := rowArrayPlan{elem: 1}.Encode(&r, nil)
			if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
				t.Fatalf("error %v, want %q", err, c.want)
			}
		})
	}
}
