package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
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

// TestRowColumnsMatchPgx: a batch row's columns carry each value in the bytes pgx would send for
// it alone (dates and timestamps around PostgreSQL's epoch, before 1970, in other zones, with
// nanoseconds; bytea of any bytes and sizes; NULLs), so the server reads what a plain parameter
// would have given it.
func TestRowColumnsMatchPgx(t *testing.T) {
	m := pgtype.NewMap()
	r := rand.New(rand.NewPCG(3, 5))
	times := edgeTimes(false)
	for _, t0 := range edgeTimes(true)[:10] {
		for _, z := range testZones {
			times = append(times, t0.In(z))
		}
	}
	for range 200 {
		times = append(times, randomTime(r))
	}
	// payload is the one column of a one-row array: after the record's column count, its OID and
	// length, the value's bytes (nil for NULL).
	payload := func(add func(*rowArray)) (oid uint32, b []byte) {
		var a rowArray
		a.begin(1)
		add(&a)
		a.end()
		col := a.buf[8:]
		oid, n := binary.BigEndian.Uint32(col), int32(binary.BigEndian.Uint32(col[4:]))
		if n < 0 {
			return oid, nil
		}
		return oid, col[8 : 8+n]
	}
	check := func(what string, oid uint32, value any, add func(*rowArray)) {
		t.Helper()
		want, err := m.Encode(oid, pgtype.BinaryFormatCode, value, make([]byte, 0, 8)) // nil only for NULL
		if err != nil {
			t.Fatalf("%s: pgx: %v", what, err)
		}
		gotOID, got := payload(add)
		if gotOID != oid || !bytes.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("%s %v: OID %d %x, pgx OID %d %x", what, value, gotOID, got, oid, want)
		}
	}
	for _, x := range times {
		check("date", pgtype.DateOID, x, func(a *rowArray) { a.date(&x) })
		check("timestamptz", pgtype.TimestamptzOID, x, func(a *rowArray) { a.timestamptz(x) })
	}
	check("date NULL", pgtype.DateOID, nil, func(a *rowArray) { a.date(nil) })
	for _, b := range [][]byte{{}, {0}, {0xff, 0, 0x80}, bytes.Repeat([]byte{0x5c}, 100000)} {
		check("bytea", pgtype.ByteaOID, b, func(a *rowArray) { a.bytea(b) })
	}
	check("bytea NULL", pgtype.ByteaOID, nil, func(a *rowArray) { a.bytea(nil) })
	for _, s := range []string{"", "NULL", "Müller", "😀", strings.Repeat("x", 70000)} {
		check("text", pgtype.TextOID, s, func(a *rowArray) { a.text(s) })
		check("text NULL", pgtype.TextOID, nil, func(a *rowArray) { a.textPtr(nil) })
	}
	for _, x := range []int64{math.MinInt64, -1, 0, 1, math.MaxInt64} {
		check("int8", pgtype.Int8OID, x, func(a *rowArray) { a.int8(x) })
		check("int8 NULL", pgtype.Int8OID, nil, func(a *rowArray) { a.int8Ptr(nil) })
	}
	for _, xs := range [][]int64{{}, {1, -2, math.MaxInt64}} {
		check("bigint[]", pgtype.Int8ArrayOID, xs, func(a *rowArray) { a.int8s(xs) })
	}
	for _, xs := range [][]int16{{}, {1, -2, math.MaxInt16}} {
		check("smallint[]", pgtype.Int2ArrayOID, xs, func(a *rowArray) { a.int2s(xs) })
	}
	for _, xs := range [][]string{{}, {"I:pd1-12-recorded", "", "é"}} {
		check("text[]", pgtype.TextArrayOID, xs, func(a *rowArray) { a.texts(xs) })
	}
}
