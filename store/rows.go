package store

import (
	"context"
	"database/sql/driver"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Rows as composite values.
//
// The writer sends a batch's rows of a table as one parameter: an array of the table's batch row
// type (migration 013: batch_vaccination, batch_patient, ...), read by the statement with
// unnest($1::batch_vaccination[]) AS u. PostgreSQL unnests such an array with one function call
// per row, the row's columns decoded once into one tuple; an array per column instead (unnest of
// 29 arrays) costs a function call, a stored tuple and a read-back per value — about six times
// the server's CPU for the same rows (see the migration).
//
// rowArray builds the array's elements in PostgreSQL's binary record format (a column count, then
// each column's type OID, length and bytes) as the rows are added, and is sent with a header that
// names the element type. That type's OID differs from database to database: each connection
// learns it from pg_type the first time the writer uses the connection (registerRowTypes), and the
// connection's type map then encodes a *rowArray sent as that array type (rowArrayCodec).

// rowTypes are the batch row types, by name, as migration 013 creates them.
var rowTypes = []string{"batch_registry_patient", "batch_patient", "batch_vaccination", "batch_sharing_change",
	"batch_message", "batch_facts", "batch_patient_key", "batch_link_block", "batch_order_number", "batch_registry_day", "batch_control_id", "batch_lock"}

// rowArray is an array of records: rows are added one at a time, each with begin, one call per
// column in the type's order, and end.
type rowArray struct {
	n     int    // rows
	buf   []byte // the elements: each its length, then its record
	start int    // where the row being added starts (its length word)
	cols  int    // columns the row being added declared, then counts down
	err   error  // a row added with the wrong number of columns: a programming error

	// pooled is where buf came from (rowBuffers), when it did.
	pooled *[]byte

	// copyFormat: the rows are tuples of COPY's binary format (copy.go) rather than elements of
	// an array of records: a row is its column count (16 bits) and its columns, each its length
	// and bytes, without type OIDs or a length of its own.
	copyFormat bool
}

// rowBuffers are batch rows' buffers, reused from batch to batch: a batch's arrays of rows are
// tens of kilobytes, grown row by row, and pgx copies them into buffers of its own when it sends
// them (pipeTx.send releases them then); a COPY stream of archive rows is hundreds (copyMessages
// releases it once copied). One that grew past maxKeptRowBuffer (a batch of very large messages)
// is left to the collector.
var rowBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxKeptRowBuffer = 8 << 20

// takeBuffer gives r a buffer from rowBuffers, unless it has one.
func (r *rowArray) takeBuffer() {
	if r.buf == nil {
		r.pooled = rowBuffers.Get().(*[]byte)
		r.buf = (*r.pooled)[:0]
	}
}

// release gives r's buffer back for other rows; r is empty after it.
func (r *rowArray) release() {
	if r.pooled != nil && cap(r.buf) <= maxKeptRowBuffer {
		*r.pooled = r.buf[:0]
		rowBuffers.Put(r.pooled)
	}
	*r = rowArray{copyFormat: r.copyFormat}
}

// begin starts a row of cols columns.
func (r *rowArray) begin(cols int) {
	r.takeBuffer()
	r.cols = cols
	r.n++
	if r.copyFormat {
		r.buf = binary.BigEndian.AppendUint16(r.buf, uint16(cols))
		return
	}
	r.start = len(r.buf)
	r.buf = append(r.buf, 0, 0, 0, 0) // its length, set by end
	r.buf = binary.BigEndian.AppendUint32(r.buf, uint32(cols))
}

// end ends the row begun last.
func (r *rowArray) end() {
	if r.cols != 0 && r.err == nil {
		r.err = fmt.Errorf("store: batch row %d: %d columns missing", r.n, r.cols)
	}
	if r.copyFormat {
		return
	}
	binary.BigEndian.PutUint32(r.buf[r.start:], uint32(len(r.buf)-r.start-4))
}

// column appends a column's type and length (-1: NULL); its bytes follow.
func (r *rowArray) column(oid uint32, n int) {
	if r.cols--; r.cols < 0 && r.err == nil {
		r.err = fmt.Errorf("store: batch row %d: too many columns", r.n)
	}
	if !r.copyFormat {
		r.buf = binary.BigEndian.AppendUint32(r.buf, oid)
	}
	r.buf = binary.BigEndian.AppendUint32(r.buf, uint32(int32(n)))
}

func (r *rowArray) text(s string) {
	r.column(pgtype.TextOID, len(s))
	r.buf = append(r.buf, s...)
}

func (r *rowArray) int8(x int64) {
	r.column(pgtype.Int8OID, 8)
	r.buf = putInt8(r.buf, x)
}

// int8OrNull is x, NULL when 0 (an id column whose zero means none).
func (r *rowArray) int8OrNull(x int64) {
	if x == 0 {
		r.column(pgtype.Int8OID, -1)
		return
	}
	r.int8(x)
}

// textPtr is *s, NULL when nil.
func (r *rowArray) textPtr(s *string) {
	if s == nil {
		r.column(pgtype.TextOID, -1)
		return
	}
	r.text(*s)
}

func (r *rowArray) int4(x int32) {
	r.column(pgtype.Int4OID, 4)
	r.buf = putInt4(r.buf, x)
}

// small is a count the tables keep as smallint (the report facts): a smallint in COPY's tuples,
// an integer in the batch row types (which declare integer: the statements' casts narrow it).
func (r *rowArray) small(x int16) {
	if !r.copyFormat {
		r.int4(int32(x))
		return
	}
	r.column(pgtype.Int2OID, 2)
	r.buf = binary.BigEndian.AppendUint16(r.buf, uint16(x))
}

// jsonText is a JSON document: a json column in COPY's tuples (its binary format is its text),
// text in the batch row types (which the statements cast).
func (r *rowArray) jsonText(s string) {
	if !r.copyFormat {
		r.text(s)
		return
	}
	r.column(pgtype.JSONOID, len(s))
	r.buf = append(r.buf, s...)
}

// timestamptz is t to the microsecond (truncated, as pgx sends it).
func (r *rowArray) timestamptz(t time.Time) {
	r.column(pgtype.TimestamptzOID, 8)
	r.buf = putTimestamptz(r.buf, t)
}

// null is a NULL column of type oid.
func (r *rowArray) null(oid uint32) { r.column(oid, -1) }

// texts is a text[] column (never NULL: an empty array for none).
func (r *rowArray) texts(ss []string) {
	n := arrayHeaderSize + 4*len(ss)
	for _, s := range ss {
		n += len(s)
	}
	r.column(pgtype.TextArrayOID, n)
	r.buf = appendArrayHeader(r.buf, pgtype.TextOID, len(ss))
	for _, s := range ss {
		r.buf = append(appendLen(r.buf, len(s)), s...)
	}
}

// int8Ptr is *x, NULL when nil.
func (r *rowArray) int8Ptr(x *int64) {
	if x == nil {
		r.column(pgtype.Int8OID, -1)
		return
	}
	r.int8(*x)
}

// bytea is b, NULL when nil.
func (r *rowArray) bytea(b []byte) {
	if b == nil {
		r.column(pgtype.ByteaOID, -1)
		return
	}
	r.column(pgtype.ByteaOID, len(b))
	r.buf = append(r.buf, b...)
}

func (r *rowArray) bool(x bool) {
	r.column(pgtype.BoolOID, 1)
	r.buf = putBool(r.buf, x)
}

// date is t's date in its own location (as pgx sends a time.Time as a date); nil is NULL.
func (r *rowArray) date(t *time.Time) {
	if t == nil {
		r.column(pgtype.DateOID, -1)
		return
	}
	r.column(pgtype.DateOID, 4)
	r.buf = putDate(r.buf, *t)
}

// int8s is a bigint[] column (never NULL: an empty array for none).
func (r *rowArray) int8s(xs []int64) {
	r.column(pgtype.Int8ArrayOID, arrayHeaderSize+12*len(xs))
	r.buf = appendArrayHeader(r.buf, pgtype.Int8OID, len(xs))
	for _, x := range xs {
		r.buf = putInt8(appendLen(r.buf, 8), x)
	}
}

// int2s is a smallint[] column (never NULL: an empty array for none).
func (r *rowArray) int2s(xs []int16) {
	r.column(pgtype.Int2ArrayOID, arrayHeaderSize+6*len(xs))
	r.buf = appendArrayHeader(r.buf, pgtype.Int2OID, len(xs))
	for _, x := range xs {
		r.buf = binary.BigEndian.AppendUint16(appendLen(r.buf, 2), uint16(x))
	}
}

// appendBinary appends the rows as a one-dimensional array of element type elem.
func (r *rowArray) appendBinary(buf []byte, elem uint32) []byte {
	buf = appendArrayHeader(grow(buf, arrayHeaderSize+len(r.buf)), elem, r.n)
	return append(buf, r.buf...)
}

// rowArrayPlan encodes a *rowArray as an array of elem (pgtype.EncodePlan).
type rowArrayPlan struct{ elem uint32 }

func (p rowArrayPlan) Encode(value any, buf []byte) ([]byte, error) {
	r := value.(*rowArray)
	if r.err != nil {
		return nil, r.err
	}
	return r.appendBinary(buf, p.elem), nil
}

// rowArrayCodec is the codec of a batch row type's array type: it encodes a *rowArray, in the
// binary format. The writer never reads these types back.
type rowArrayCodec struct{ elem uint32 }

func (c *rowArrayCodec) FormatSupported(format int16) bool { return format == pgtype.BinaryFormatCode }
func (c *rowArrayCodec) PreferredFormat() int16            { return pgtype.BinaryFormatCode }

func (c *rowArrayCodec) PlanEncode(_ *pgtype.Map, _ uint32, format int16, value any) pgtype.EncodePlan {
	if _, ok := value.(*rowArray); ok && format == pgtype.BinaryFormatCode {
		return rowArrayPlan{elem: c.elem}
	}
	return nil
}

func (c *rowArrayCodec) PlanScan(*pgtype.Map, uint32, int16, any) pgtype.ScanPlan { return nil }

var errRowsNotRead = errors.New("store: batch row types are written, never read")

func (c *rowArrayCodec) DecodeDatabaseSQLValue(*pgtype.Map, uint32, int16, []byte) (driver.Value, error) {
	return nil, errRowsNotRead
}

func (c *rowArrayCodec) DecodeValue(*pgtype.Map, uint32, int16, []byte) (any, error) {
	return nil, errRowsNotRead
}

// registerRowTypes registers, in conn's type map, the codecs of the batch row types' array types,
// once per connection (a connection may be older than the migration that created the types, so
// this is not done when it connects).
func registerRowTypes(ctx context.Context, conn *pgx.Conn) error {
	m := conn.TypeMap()
	if _, ok := m.TypeForName("_" + rowTypes[len(rowTypes)-1]); ok {
		return nil
	}
	rows, err := conn.Query(ctx, `SELECT t.typname::text, t.oid, t.typarray FROM unnest($1::text[]) AS n(name)
		JOIN pg_type t ON t.oid = to_regtype(n.name)`, rowTypes)
	if err != nil {
		return fmt.Errorf("store: look up batch row types: %w", err)
	}
	var name string
	var oid, array uint32
	found := 0
	_, err = pgx.ForEachRow(rows, []any{&name, &oid, &array}, func() error {
		m.RegisterType(&pgtype.Type{Name: "_" + name, OID: array, Codec: &rowArrayCodec{elem: oid}})
		found++
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: look up batch row types: %w", err)
	}
	if found != len(rowTypes) {
		return fmt.Errorf("store: %d of %d batch row types in the database: is its schema current?", found, len(rowTypes))
	}
	return nil
}

// The binary format's pieces, as pgx writes them.

// arrayHeaderSize is the size of a one-dimensional array's header: dimensions, NULL flag, element
// OID, length and lower bound.
const arrayHeaderSize = 20

// appendArrayHeader appends the header of a one-dimensional array of n elements of type elem,
// with lower bound 1 and no NULL element (the batch rows never hold one). An empty array is sent as
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

func appendLen(buf []byte, n int) []byte { return binary.BigEndian.AppendUint32(buf, uint32(int32(n))) }

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

// y2kUnix is 2000-01-01 00:00 UTC, PostgreSQL's epoch for dates and timestamps, in Unix seconds.
const y2kUnix = 946684800

// pgDate is t's date (in t's location) as PostgreSQL's binary date: days since 2000-01-01,
// computed as pgx computes it.
func pgDate(t time.Time) uint32 {
	y, m, d := t.Date()
	days := (time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() - y2kUnix) / 86400
	return uint32(int32(days))
}
