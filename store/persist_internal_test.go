package store

import "testing"

// TestInt64Array: a row's array travels as a PostgreSQL array literal.
func TestInt64Array(t *testing.T) {
	for _, c := range []struct {
		in   []int64
		want string
	}{{nil, "{}"}, {[]int64{7}, "{7}"}, {[]int64{1, -2, 9223372036854775807}, "{1,-2,9223372036854775807}"}} {
		if got := int64Array(c.in); got != c.want {
			t.Errorf("int64Array(%v) = %q, want %q", c.in, got, c.want)
		}
	}
}
