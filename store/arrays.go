package store

import (
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Array parameters, encoded without pgx's per-element machinery.
//
// The writer passes a batch's rows to PostgreSQL as arrays, one per column (persist.go, view.go:
// INSERT ... SELECT FROM unnest($1::bigint[], $2::text[], ...)), dozens of elements per message.
// pgx encodes a Go slice as an array through its generic ArrayCodec: each element is boxed into
// an interface (ArrayGetter.Index), checked for nil by reflection, its reflect.Type compared and
// then encoded by the element type's plan — an allocation and several indirect calls per element:
// about a tenth of vaxgate serve's CPU at 64 connections (pgx as a whole took a fifth).
//
// The slice types below (textArray, int8Array, ...) write PostgreSQL's binary array format
// straight from the typed slice: the header (one dimension, a NULL flag, the element type's OID,
// length and lower bound 1), then each element's length and bytes, in one pass, into a buffer
// grown at most once per array (grow). The connection's type map (registerArrayCodecs, called for every connection of the
// pool) wraps pgx's codecs of the array types they encode to: a value of one of these types sent
// as its own array type in binary gets that plan; anything else — other Go types, other
// parameter types, the text format — goes to pgx's codec unchanged. The bytes are pgx's own
// (TestArrayEncodingMatchesPgx): the server cannot tell the difference.

// binaryArray is a slice type that encodes itself as a PostgreSQL array of element type elemOID.
type binaryArray interface {
	// elemOID is the OID of the element type the slice encodes to.
	elemOID() uint32
	// appendBinary appends the slice in PostgreSQL's binary array format to buf; a nil slice is
	// SQL NULL (nil, as pgx's EncodePlan returns it).
	appendBinary(buf []byte) []byte
}

// The slice types of the writer's array parameters. A nil slice is SQL NULL, as it is for pgx; a
// nil element of a pointer slice is a NULL element.
type (
	textArray        []string     // text[]
	nullTextArray    []*string    // text[] with NULLs
	int8Array        []int64      // bigint[]
	nullInt8Array    []*int64     // bigint[] with NULLs
	int4Array        []int32      // int4[]
	boolArray        []bool       // bool[]
	dateArray        []time.Time  // date[]: the date of each time in its own location, as pgx takes it
	nullDateArray    []*time.Time // date[] with NULLs
	timestamptzArray []time.Time  // timestamptz[], to the microsecond (truncated, as pgx does)
	byteaArray       [][]byte     // bytea[]; a nil element is NULL
)

var (
	_ binaryArray = textArray(nil)
	_ binaryArray = nullTextArray(nil)
	_ binaryArray = int8Array(nil)
	_ binaryArray = nullInt8Array(nil)
	_ binaryArray = int4Array(nil)
	_ binaryArray = boolArray(nil)
	_ binaryArray = dateArray(nil)
	_ binaryArray = nullDateArray(nil)
	_ binaryArray = timestamptzArray(nil)
	_ binaryArray = byteaArray(nil)
)

func (textArray) elemOID() uint32        { return pgtype.TextOID }
func (nullTextArray) elemOID() uint32    { return pgtype.TextOID }
func (int8Array) elemOID() uint32        { return pgtype.Int8OID }
func (nullInt8Array) elemOID() uint32    { return pgtype.Int8OID }
func (int4Array) elemOID() uint32        { return pgtype.Int4OID }
func (boolArray) elemOID() uint32        { return pgtype.BoolOID }
func (dateArray) elemOID() uint32        { return pgtype.DateOID }
func (nullDateArray) elemOID() uint32    { return pgtype.DateOID }
func (timestamptzArray) elemOID() uint32 { return pgtype.TimestamptzOID }
func (byteaArray) elemOID() uint32       { return pgtype.ByteaOID }

// arrayHeaderSize is the size of a one-dimensional array's header: dimensions, NULL flag, element
// OID, length and lower bound.
const arrayHeaderSize = 20

// appendArrayHeader appends the header of a one-dimensional array of n elements of type elem,
// with lower bound 1 and no NULL (setHasNull sets the flag at start+4). An empty array is sent as
// pgx sends it: one dimension of length 0 (the server reads it as '{}').
func appendArrayHeader(buf []byte, elem uint32, n int) []byte {
	buf = binary.BigEndian.AppendUint32(buf, 1) // dimensions
	buf = binary.BigEndian.AppendUint32(buf, 0) // has NULL
	buf = binary.BigEndian.AppendUint32(buf, elem)
	buf = binary.BigEndian.AppendUint32(buf, uint32(int32(n)))
	return binary.BigEndian.AppendUint32(buf, 1) // lower bound
}

// grow makes room for n more bytes in buf. When it must reallocate, it at least doubles the
// buffer: pgx encodes a statement's parameters one after another into one buffer that starts at
// 256 bytes for every statement, and growing each array parameter to just its own size would copy
// everything before it again for every parameter after a large one (the batch's raw messages).
func grow(buf []byte, n int) []byte {
	if cap(buf)-len(buf) >= n {
		return buf
	}
	return slices.Grow(buf, len(buf)+n)
}

// setHasNull sets the NULL flag of the array header that starts at buf[start].
func setHasNull(buf []byte, start int) {
	binary.BigEndian.PutUint32(buf[start+4:], 1)
}

// nullElement is an element's length word for NULL (-1).
const nullElement = 0xFFFFFFFF

func appendLen(buf []byte, n int) []byte { return binary.BigEndian.AppendUint32(buf, uint32(int32(n))) }

func (a textArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	size := arrayHeaderSize + 4*len(a)
	for _, s := range a {
		size += len(s)
	}
	buf = appendArrayHeader(grow(buf, size), pgtype.TextOID, len(a))
	for _, s := range a {
		buf = append(appendLen(buf, len(s)), s...)
	}
	return buf
}

func (a nullTextArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	size := arrayHeaderSize + 4*len(a)
	for _, s := range a {
		if s != nil {
			size += len(*s)
		}
	}
	start := len(buf)
	buf = appendArrayHeader(grow(buf, size), pgtype.TextOID, len(a))
	for _, s := range a {
		if s == nil {
			buf = binary.BigEndian.AppendUint32(buf, nullElement)
			setHasNull(buf, start)
			continue
		}
		buf = append(appendLen(buf, len(*s)), *s...)
	}
	return buf
}

func (a int8Array) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+12*len(a)), pgtype.Int8OID, len(a))
	for _, x := range a {
		buf = binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(x))
	}
	return buf
}

func (a nullInt8Array) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	start := len(buf)
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+12*len(a)), pgtype.Int8OID, len(a))
	for _, x := range a {
		if x == nil {
			buf = binary.BigEndian.AppendUint32(buf, nullElement)
			setHasNull(buf, start)
			continue
		}
		buf = binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(*x))
	}
	return buf
}

func (a int4Array) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+8*len(a)), pgtype.Int4OID, len(a))
	for _, x := range a {
		buf = binary.BigEndian.AppendUint32(appendLen(buf, 4), uint32(x))
	}
	return buf
}

func (a boolArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+5*len(a)), pgtype.BoolOID, len(a))
	for _, x := range a {
		var b byte
		if x {
			b = 1
		}
		buf = append(appendLen(buf, 1), b)
	}
	return buf
}

// y2kUnix is 2000-01-01 00:00 UTC, PostgreSQL's epoch for dates and timestamps, in Unix seconds.
const y2kUnix = 946684800

// pgDate is t's date (in t's location) as PostgreSQL's binary date: days since 2000-01-01,
// computed as pgx computes it.
func pgDate(t time.Time) uint32 {
	y, m, d := t.Date()
	days := (time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() - y2kUnix) / 86400
	return uint32(int32(days))
}

func (a dateArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+8*len(a)), pgtype.DateOID, len(a))
	for i := range a {
		buf = binary.BigEndian.AppendUint32(appendLen(buf, 4), pgDate(a[i]))
	}
	return buf
}

func (a nullDateArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	start := len(buf)
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+8*len(a)), pgtype.DateOID, len(a))
	for _, t := range a {
		if t == nil {
			buf = binary.BigEndian.AppendUint32(buf, nullElement)
			setHasNull(buf, start)
			continue
		}
		buf = binary.BigEndian.AppendUint32(appendLen(buf, 4), pgDate(*t))
	}
	return buf
}

func (a timestamptzArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+12*len(a)), pgtype.TimestamptzOID, len(a))
	for i := range a {
		t := &a[i]
		us := t.Unix()*1000000 + int64(t.Nanosecond())/1000 - y2kUnix*1000000
		buf = binary.BigEndian.AppendUint64(appendLen(buf, 8), uint64(us))
	}
	return buf
}

func (a byteaArray) appendBinary(buf []byte) []byte {
	if a == nil {
		return nil
	}
	size := arrayHeaderSize + 4*len(a)
	for _, b := range a {
		size += len(b)
	}
	start := len(buf)
	buf = appendArrayHeader(grow(buf, size), pgtype.ByteaOID, len(a))
	for _, b := range a {
		if b == nil {
			buf = binary.BigEndian.AppendUint32(buf, nullElement)
			setHasNull(buf, start)
			continue
		}
		buf = append(appendLen(buf, len(b)), b...)
	}
	return buf
}

// binaryArrayPlan encodes a binaryArray (pgtype.EncodePlan).
type binaryArrayPlan struct{}

func (binaryArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	return value.(binaryArray).appendBinary(buf), nil
}

// arrayCodec is pgx's codec of an array type (embedded: scanning, formats, decoding), with the
// binary encoding of the binaryArray types of its element type in front.
type arrayCodec struct {
	pgtype.Codec
	elem uint32
}

// PlanEncode plans a binaryArray of this codec's element type in the binary format itself, and
// leaves everything else to pgx's codec.
func (c *arrayCodec) PlanEncode(m *pgtype.Map, oid uint32, format int16, value any) pgtype.EncodePlan {
	if a, ok := value.(binaryArray); ok && format == pgtype.BinaryFormatCode && a.elemOID() == c.elem {
		return binaryArrayPlan{}
	}
	return c.Codec.PlanEncode(m, oid, format, value)
}

// fastArrayTypes are the array types binaryArray values are sent as.
var fastArrayTypes = []string{"_text", "_int8", "_int4", "_bool", "_date", "_timestamptz", "_bytea"}

// registerArrayCodecs puts arrayCodec in front of pgx's codec of each of fastArrayTypes in m (a
// connection's type map).
func registerArrayCodecs(m *pgtype.Map) error {
	for _, name := range fastArrayTypes {
		t, ok := m.TypeForName(name)
		if !ok {
			return fmt.Errorf("store: array type %s is not known to pgx", name)
		}
		if _, done := t.Codec.(*arrayCodec); done {
			continue
		}
		ac, ok := t.Codec.(*pgtype.ArrayCodec)
		if !ok {
			return fmt.Errorf("store: array type %s has codec %T, not an array codec", name, t.Codec)
		}
		m.RegisterType(&pgtype.Type{Name: t.Name, OID: t.OID, Codec: &arrayCodec{Codec: ac, elem: ac.ElementType.OID}})
	}
	return nil
}
