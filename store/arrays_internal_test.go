package store

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// arrayCase is one array parameter: the fast path's value and the same elements as the plain Go
// slice pgx encodes by itself (the reference).
type arrayCase struct {
	name  string
	oid   uint32 // the array type's OID
	fast  binaryArray
	plain any
}

// zones the dates and times of the cases are in: a date is taken in its time's own location.
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

// randomString is valid UTF-8 without NUL (PostgreSQL's text cannot hold it): ASCII, Latin,
// CJK, emoji, and the characters array literals quote.
func randomString(r *rand.Rand) string {
	alphabets := []string{"abcXYZ019", `{}",\ NULL'`, "éñüßøÅ", "日本語中文한국어", "😀🚀🇺🇸", "\t\r\n~|^&"}
	var b strings.Builder
	for range r.IntN(24) {
		a := []rune(alphabets[r.IntN(len(alphabets))])
		b.WriteRune(a[r.IntN(len(a))])
	}
	return b.String()
}

// arrayCases returns, for each slice type of arrays.go, its edge cases (nil, empty, one element,
// NULLs, extremes) and random slices from r. serverSafe keeps the values PostgreSQL accepts.
func arrayCases(r *rand.Rand, serverSafe bool) []arrayCase {
	var cs []arrayCase
	add := func(name string, oid uint32, fast binaryArray, plain any) {
		cs = append(cs, arrayCase{name: name, oid: oid, fast: fast, plain: plain})
	}
	strs := [][]string{nil, {}, {""}, {"a"}, {"NULL", "null", "", `"quoted"`, `back\slash`, "{braces}", "comma,here", " spaced "},
		{"Müller", "Ōsaka", "Zoë", "Nguyễn", "😀", "مرحبا", "日本"}, {strings.Repeat("x", 70000)}}
	if !serverSafe {
		strs = append(strs, []string{"nul\x00byte", string([]byte{0xff, 0xfe})}) // bytes as they are: the server refuses them
	}
	for range 20 {
		s := make([]string, r.IntN(40))
		for i := range s {
			s[i] = randomString(r)
		}
		strs = append(strs, s)
	}
	for _, s := range strs {
		add("text", pgtype.TextArrayOID, textArray(s), s)
	}

	ints := [][]int64{nil, {}, {0}, {math.MinInt64, -1, 0, 1, math.MaxInt64, math.MinInt32 - 1, math.MaxInt32 + 1}}
	for range 20 {
		s := make([]int64, r.IntN(40))
		for i := range s {
			s[i] = int64(r.Uint64())
		}
		ints = append(ints, s)
	}
	for _, s := range ints {
		add("int8", pgtype.Int8ArrayOID, int8Array(s), s)
	}

	int4s := [][]int32{nil, {}, {math.MinInt32, -1, 0, 1, math.MaxInt32}}
	for range 10 {
		s := make([]int32, r.IntN(40))
		for i := range s {
			s[i] = int32(r.Uint32())
		}
		int4s = append(int4s, s)
	}
	for _, s := range int4s {
		add("int4", pgtype.Int4ArrayOID, int4Array(s), s)
	}

	bools := [][]bool{nil, {}, {true}, {false}, {true, false, false, true}}
	for range 10 {
		s := make([]bool, r.IntN(40))
		for i := range s {
			s[i] = r.IntN(2) == 1
		}
		bools = append(bools, s)
	}
	for _, s := range bools {
		add("bool", pgtype.BoolArrayOID, boolArray(s), s)
	}

	return cs
}

// registeredMap is a type map as the pool's connections have it.
func registeredMap(t testing.TB) *pgtype.Map {
	t.Helper()
	m := pgtype.NewMap()
	if err := registerArrayCodecs(m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestArrayEncodingMatchesPgx: every slice type of arrays.go, for edge cases and random slices,
// encodes to the very bytes pgx's own codec writes for the same elements, appended after what the
// buffer already holds (the parameters before it), and a connection's map (registerArrayCodecs)
// picks the fast plan for it.
func TestArrayEncodingMatchesPgx(t *testing.T) {
	ref := pgtype.NewMap()
	m := registeredMap(t)
	prefix := []byte("earlier parameters")
	seen := map[string]int{}
	for _, c := range arrayCases(rand.New(rand.NewPCG(1, 2)), false) {
		seen[c.name]++
		want, err := ref.Encode(c.oid, pgtype.BinaryFormatCode, c.plain, bytes.Clone(prefix))
		if err != nil {
			t.Fatalf("%s: pgx: %v", c.name, err)
		}
		got := c.fast.appendBinary(bytes.Clone(prefix))
		if !bytes.Equal(got, want) {
			t.Fatalf("%s %v: fast path\n%x\npgx\n%x", c.name, c.plain, got, want)
		}
		viaMap, err := m.Encode(c.oid, pgtype.BinaryFormatCode, c.fast, bytes.Clone(prefix))
		if err != nil || !bytes.Equal(viaMap, want) {
			t.Fatalf("%s %v: through the connection's map: %x, %v; want %x", c.name, c.plain, viaMap, err, want)
		}
		if m.FormatCodeForOID(c.oid) != pgtype.BinaryFormatCode {
			t.Fatalf("%s: parameters of OID %d not sent in binary", c.name, c.oid)
		}
		if _, ok := m.PlanEncode(c.oid, pgtype.BinaryFormatCode, c.fast).(binaryArrayPlan); !ok {
			t.Fatalf("%s: the connection's map does not plan %T with the fast path", c.name, c.fast)
		}
	}
	for _, name := range []string{"text", "int8", "int4", "bool"} {
		if seen[name] < 10 {
			t.Errorf("only %d cases of %s", seen[name], name)
		}
	}
}

// TestArrayCodecDelegates: what the fast path does not cover goes to pgx's codec unchanged — other
// Go types, a slice type sent as another array type (pgx converts or refuses it, as before), the
// text format — and scanning arrays still works.
func TestArrayCodecDelegates(t *testing.T) {
	ref := pgtype.NewMap()
	m := registeredMap(t)
	if err := registerArrayCodecs(m); err != nil { // connections may be set up again: idempotent
		t.Fatal(err)
	}
	for _, c := range []struct {
		oid    uint32
		format int16
		value  any
	}{
		{pgtype.TextArrayOID, pgtype.BinaryFormatCode, []string{"a", "b"}},
		{pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, []int64{1, 2}},
		{pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, textArray{"12", "-3"}},
		{pgtype.Int8ArrayOID, pgtype.BinaryFormatCode, textArray{"twelve"}},
		{pgtype.Int4ArrayOID, pgtype.BinaryFormatCode, int8Array{1, math.MaxInt64}},
		{pgtype.Int4ArrayOID, pgtype.BinaryFormatCode, int8Array{1, -2}},
		{pgtype.TimestamptzArrayOID, pgtype.BinaryFormatCode, int8Array{7}},
		{pgtype.TextArrayOID, pgtype.TextFormatCode, textArray{"a b", "NULL", `x"y`}},
		{pgtype.Int8ArrayOID, pgtype.TextFormatCode, int8Array{7, -7}},
		{pgtype.BoolArrayOID, pgtype.TextFormatCode, boolArray{true, false}},
	} {
		want, wantErr := ref.Encode(c.oid, c.format, c.value, nil)
		got, err := m.Encode(c.oid, c.format, c.value, nil)
		if !bytes.Equal(got, want) || (err == nil) != (wantErr == nil) {
			t.Errorf("%T %v as OID %d format %d: got %x, %v; pgx: %x, %v", c.value, c.value, c.oid, c.format, got, err, want, wantErr)
		}
		if _, fast := m.PlanEncode(c.oid, c.format, c.value).(binaryArrayPlan); fast {
			t.Errorf("%T as OID %d format %d took the fast path", c.value, c.oid, c.format)
		}
	}
	// Scanning is pgx's.
	src, err := ref.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, []string{"x", "ÿ"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	if err := m.Scan(pgtype.TextArrayOID, pgtype.BinaryFormatCode, src, &got); err != nil || !reflect.DeepEqual(got, []string{"x", "ÿ"}) {
		t.Errorf("scan: %q, %v", got, err)
	}
}

// FuzzTextArrayEncoding: any strings (any bytes) encode as pgx encodes them.
func FuzzTextArrayEncoding(f *testing.F) {
	f.Add("a\x00b", "", "😀", true)
	f.Add("NULL", `{"}`, "\xff", false)
	ref := pgtype.NewMap()
	f.Fuzz(func(t *testing.T, a, b, c string, _ bool) {
		s := []string{a, b, c}
		want, err := ref.Encode(pgtype.TextArrayOID, pgtype.BinaryFormatCode, s, []byte{1})
		if err != nil {
			t.Fatal(err)
		}
		if got := textArray(s).appendBinary([]byte{1}); !bytes.Equal(got, want) {
			t.Fatalf("%q: %x, pgx %x", s, got, want)
		}
	})
}

// BenchmarkArrayEncoding compares the fast path with pgx's codec on key columns of a batch of 128
// messages (bigint and text, twice), appended one after another into a buffer that starts at 256
// bytes, as pgx's ExtendedQueryBuilder encodes a statement's parameters.
func BenchmarkArrayEncoding(b *testing.B) {
	const n = 128
	texts, ints := make([]string, n), make([]int64, n)
	for i := range n {
		texts[i] = strings.Repeat("x", i%20)
		ints[i] = int64(i) << 20
	}
	cols := []struct {
		oid         uint32
		fast, plain any
	}{
		{pgtype.Int8ArrayOID, int8Array(ints), ints},
		{pgtype.TextArrayOID, textArray(texts), texts},
		{pgtype.TextArrayOID, textArray(texts), texts},
		{pgtype.Int8ArrayOID, int8Array(ints), ints},
	}
	for _, v := range []struct {
		name string
		m    *pgtype.Map
		fast bool
	}{{"pgx", pgtype.NewMap(), false}, {"fast", registeredMap(b), true}} {
		b.Run(v.name, func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				buf := make([]byte, 0, 256)
				for _, c := range cols {
					val := c.plain
					if v.fast {
						val = c.fast
					}
					var err error
					if buf, err = v.m.Encode(c.oid, pgtype.BinaryFormatCode, val, buf); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
		})
	}
}
