package store_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// TestArrayRoundTrip sends every array case of the fast path (arrays.go) through a connection of
// the store's pool to the real PostgreSQL, beside the same elements encoded by pgx: the server
// finds the two arrays identical (IS NOT DISTINCT FROM), and reads back the values sent — NULLs
// and all, dates as the day each time had in its own zone, times to the microsecond.
func TestArrayRoundTrip(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := storetest.New(t)
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	sqlType := map[uint32]string{pgtype.TextArrayOID: "text[]", pgtype.Int8ArrayOID: "bigint[]", pgtype.Int4ArrayOID: "int4[]",
		pgtype.BoolArrayOID: "bool[]", pgtype.DateArrayOID: "date[]", pgtype.TimestamptzArrayOID: "timestamptz[]",
		pgtype.ByteaArrayOID: "bytea[]"}
	cases := store.ArrayCases(7)
	if len(cases) < 70 {
		t.Fatalf("only %d cases", len(cases))
	}
	for i, c := range cases {
		if !store.PlansFastArray(conn.Conn().TypeMap(), c.OID, c.Fast) {
			t.Fatalf("%s: the pool's connection does not encode %T with the fast path", c.Name, c.Fast)
		}
		typ := sqlType[c.OID]
		got := reflect.New(reflect.TypeOf(c.Plain))
		var same, null bool
		if err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT $1::%[1]s IS NOT DISTINCT FROM $2::%[1]s, $1::%[1]s IS NULL, $1::%[1]s`, typ),
			c.Fast, c.Plain).Scan(&same, &null, got.Interface()); err != nil {
			t.Fatalf("case %d %s %v: %v", i, c.Name, c.Plain, err)
		}
		if !same {
			t.Errorf("case %d %s: the server reads the fast path's array differently from pgx's: %v", i, c.Name, c.Plain)
		}
		if wantNull := reflect.ValueOf(c.Plain).IsNil(); null != wantNull {
			t.Errorf("case %d %s: NULL array %v, want %v", i, c.Name, null, wantNull)
		}
		if g, w := elements(c.Name, got.Elem().Interface()), elements(c.Name, c.Plain); !slices.Equal(g, w) {
			t.Errorf("case %d %s: read back\n%q\nwant\n%q", i, c.Name, g, w)
		}
	}
}

// elements renders a slice's elements for comparison: NULL, text and bytes as they are, dates as
// the day in the time's own zone, timestamps in UTC to the microsecond (the precision PostgreSQL
// keeps; pgx truncates).
func elements(name string, slice any) []string {
	v := reflect.ValueOf(slice)
	out := make([]string, v.Len())
	for i := range out {
		e := v.Index(i)
		if (e.Kind() == reflect.Pointer || e.Kind() == reflect.Slice) && e.IsNil() {
			out[i] = "NULL"
			continue
		}
		if e.Kind() == reflect.Pointer {
			e = e.Elem()
		}
		switch x := e.Interface().(type) {
		case time.Time:
			if name == "timestamptz" {
				out[i] = x.Truncate(time.Microsecond).UTC().Format(time.RFC3339Nano)
			} else {
				y, m, d := x.Date()
				out[i] = fmt.Sprintf("%d-%02d-%02d", y, m, d)
			}
		case []byte:
			out[i] = fmt.Sprintf("%x", x)
		default:
			out[i] = fmt.Sprint(x)
		}
	}
	return out
}
