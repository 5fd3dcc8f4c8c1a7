package store

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

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

// testZones are the zones the test times are in: a date is taken in its time's own location.
var testZones = []*time.Location{time.UTC, time.FixedZone("UTC-12", -12*3600), time.FixedZone("UTC+14", 14*3600),
	time.FixedZone("IST", 5*3600+1800), time.FixedZone("NPT", 5*3600+2700), time.FixedZone("odd", -(3*3600 + 7*60 + 13))}

// edgeTimes are times the date and timestamp encodings must get right: around PostgreSQL's epoch
// and Unix's, before 2000 and long before, far in the future, and sub-microsecond fractions
// (truncated, not rounded). serverSafe keeps them within PostgreSQL's ranges (timestamptz ends in
// 294276, dates begin in 4714 BC).
func edgeTimes(serverSafe bool) []time.Time {
	ts := []time.Time{
		time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999999500, time.UTC),
		time.Date(1900, 2, 28, 12, 0, 0, 1500, time.UTC),
		time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1582, 10, 10, 0, 0, 0, 0, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(2024, 2, 29, 23, 30, 0, 0, time.FixedZone("UTC-1", -3600)),
		time.Date(2024, 3, 1, 0, 30, 0, 0, time.FixedZone("UTC+14", 14*3600)),
		time.Date(294275, 12, 31, 0, 0, 0, 0, time.UTC),
		time.Date(-4712, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	if !serverSafe {
		ts = append(ts, time.Date(5874897, 12, 31, 0, 0, 0, 0, time.UTC), time.Date(-300000, 6, 1, 0, 0, 0, 0, time.UTC),
			time.Date(2_000_000_000, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	return ts
}

// randomTime is a time between 1800 and 2200, with nanoseconds, in one of testZones.
func randomTime(r *rand.Rand) time.Time {
	lo, hi := time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()/2, time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()/2
	return time.Unix(0, 2*(lo+r.Int64N(hi-lo))+r.Int64N(2)).In(testZones[r.IntN(len(testZones))])
}
