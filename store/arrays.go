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
	textArray []string // text[]
	int8Array []int64  // bigint[]
	int4Array []int32  // int4[]
	boolArray []bool   // bool[]
)

var (
	_ binaryArray = textArray(nil)
	_ binaryArray = int8Array(nil)
	_ binaryArray = int4Array(nil)
	_ binaryArray = boolArray(nil)
)

func (textArray) elemOID() uint32 { return pgtype.TextOID }
func (int8Array) elemOID() uint32 { return pgtype.Int8OID }
func (int4Array) elemOID() uint32 { return pgtype.Int4OID }
func (boolArray) elemOID() uint32 { return pgtype.BoolOID }

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

// appendArray appends a as a one-dimensional array of element type elem: length is an element's
// size in bytes (-1 for NULL) and put appends its bytes. A nil slice is SQL NULL.
func appendArray[T any](buf []byte, elem uint32, a []T, length func(T) int, put func([]byte, T) []byte) []byte {
	if a == nil {
		return nil
	}
	size := arrayHeaderSize + 4*len(a)
	for _, x := range a {
		size += max(length(x), 0)
	}
	start := len(buf)
	buf = appendArrayHeader(grow(buf, size), elem, len(a))
	for _, x := range a {
		n := length(x)
		if n < 0 {
			buf = binary.BigEndian.AppendUint32(buf, nullElement)
			setHasNull(buf, start)
			continue
		}
		buf = put(appendLen(buf, n), x)
	}
	return buf
}

// Element lengths and writers of the array types.
func strLen(s string) int              { return len(s) }
func fixed[T any](n int) func(T) int   { return func(T) int { return n } }
func putStr(b []byte, s string) []byte { return append(b, s...) }
func putInt8(b []byte, x int64) []byte { return binary.BigEndian.AppendUint64(b, uint64(x)) }
func putInt4(b []byte, x int32) []byte { return binary.BigEndian.AppendUint32(b, uint32(x)) }
func putBool(b []byte, x bool) []byte {
	if x {
		return append(b, 1)
	}
	return append(b, 0)
}
func putDate(b []byte, t time.Time) []byte { return binary.BigEndian.AppendUint32(b, pgDate(t)) }
func putTimestamptz(b []byte, t time.Time) []byte {
	us := t.Unix()*1000000 + int64(t.Nanosecond())/1000 - y2kUnix*1000000
	return binary.BigEndian.AppendUint64(b, uint64(us))
}

func (a textArray) appendBinary(buf []byte) []byte {
	return appendArray(buf, pgtype.TextOID, a, strLen, putStr)
}
func (a int8Array) appendBinary(buf []byte) []byte {
	return appendArray(buf, pgtype.Int8OID, a, fixed[int64](8), putInt8)
}
func (a int4Array) appendBinary(buf []byte) []byte {
	return appendArray(buf, pgtype.Int4OID, a, fixed[int32](4), putInt4)
}
func (a boolArray) appendBinary(buf []byte) []byte {
	return appendArray(buf, pgtype.BoolOID, a, fixed[bool](1), putBool)
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
var fastArrayTypes = []string{"_text", "_int8", "_int4", "_bool"}

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
