package validate

import (
	"sync"
	"sync/atomic"

	"github.com/vaxgate/vaxgate/hl7"
)

// The elements pass checks each field against the profile from its bytes alone: its segment's
// definition, its number, its data type (for OBX-5, the one OBX-2 names), the delimiters and the
// validator's limits decide what it finds, nothing else of the message. Traffic repeats most
// fields exactly (the sending application and facility, a site's providers and products, code
// triplets, value types), so a Validator remembers the field values in which the pass found
// nothing at all and does not walk them again (values of the data types that repeat: see repeats).
// Only values without a single problem are kept
// (whatever severity a sender gives it, even off): a value with one is checked every time, so
// every finding is made as before.

// Bounds of what is remembered: values shorter than minClean are keyed as integers (shortKey),
// whatever their data type; longer than maxClean are not worth a key.
const (
	minClean       = 6
	maxClean       = 160
	maxCleanFields = 16384 // then the set starts over: memory stays bounded whatever is sent
	cleanHead      = 9     // the key's bytes before the field's
)

// repeats reports, by data type, whether values of the type repeat across messages: codes, coded
// elements, providers, organizations. Names, addresses, telephone numbers, identifiers, dates and
// free text are mostly a patient's or a message's own: remembering them would only fill the set.
var repeats = func() (t [numDatatypes]bool) {
	for i := range z22Datatypes {
		switch z22Datatypes[i].base {
		case "XPN", "XAD", "SAD", "XTN", "CX", "EI", "TS", "DTM", "DT", "ST", "TX", "FT", "NM", "SI":
		default:
			t[i] = true
		}
	}
	return t
}()

// cleanFields is the set of field values found clean, keyed by cleanKey, and the set of short
// values (fewer than minClean bytes, of any data type) found clean, keyed by shortKey: a short
// value costs little to check, but a message has dozens (set IDs, codes of table 0396, status
// codes), and one look-up in a table of integers costs less.
type cleanFields struct {
	long  cowSet[string]
	short cowSet[uint64]
	segs  cowSet[string] // the remembered values of a whole segment (see elements)
	// structs holds the sequences of segment definitions found in order (structureOnce).
	structs cowSet[string]
}

// cleanKey is the key of field n of a segment of definition def, of data type dt (0 unless the
// message chose it), written with delimiters d: those, then the field's bytes.
func cleanKey(buf *[maxClean + cleanHead]byte, def segRef, n int, dt dtRef, d hl7.Delimiters, raw []byte) []byte {
	k := append(buf[:0], byte(def), byte(n), byte(dt), byte(dt>>8), d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent)
	return append(k, raw...)
}

// shortKey is the key of a value of 1 to 5 bytes of field n (< 256) of a segment of definition
// def, written with the default delimiters (the caller checks them), of the field's own data
// type: definition, number, length, bytes.
func shortKey(def segRef, n int, raw []byte) uint64 {
	k := uint64(def)<<56 | uint64(n)<<48 | uint64(len(raw))<<40
	for i, c := range raw {
		k |= uint64(c) << (8 * i)
	}
	return k
}

func (c *cleanFields) has(key []byte) bool { return hasBytes(&c.long, key) }
func (c *cleanFields) add(key []byte)      { c.long.add(string(key)) }

// sizes returns how many long values are published and how many wait (for tests).
func (c *cleanFields) sizes() (published, pending int) { return c.long.sizes() }

// cowSet is a set every message reads (a score of look-ups each), from every connection at once,
// and that changes rarely (traffic repeats a few hundred values). Readers therefore take no lock:
// they read a published map that is never written again, through an atomic pointer. New values
// wait in pending, under a mutex, and are published with a fresh copy of the map — at once while
// the set is small, then in batches, so that copying costs a few insertions per value. A value
// not yet published is only checked once more: findings are the same either way.
type cowSet[K comparable] struct {
	pub     atomic.Pointer[map[K]struct{}]
	mu      sync.Mutex
	pending map[K]struct{} // added, not yet published
}

func (c *cowSet[K]) has(key K) bool {
	m := c.pub.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[key]
	return ok
}

// hasBytes is has for a key given as bytes, without making it a string (the map index converts it
// in place; through has's parameter it would be copied to the heap for every look-up).
func hasBytes(c *cowSet[string], key []byte) bool {
	m := c.pub.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[string(key)]
	return ok
}

// publishSmall is the size below which every new value is published at once.
const publishSmall = 1024

// add adds key. (A string key made from bytes is copied only here, when it is added.)
func (c *cowSet[K]) add(key K) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[K]struct{}
	if p := c.pub.Load(); p != nil {
		old = *p
	}
	if _, ok := old[key]; ok {
		return
	}
	if c.pending == nil {
		c.pending = map[K]struct{}{}
	}
	c.pending[key] = struct{}{}
	if len(old) >= publishSmall && len(c.pending) < len(old)/8 {
		return
	}
	// Publish: the set starts over when it would pass maxCleanFields, so that memory stays
	// bounded whatever is sent.
	size := len(old) + len(c.pending)
	if size > maxCleanFields {
		old, size = nil, len(c.pending)
	}
	m := make(map[K]struct{}, size)
	for k := range old {
		m[k] = struct{}{}
	}
	for k := range c.pending {
		m[k] = struct{}{}
	}
	clear(c.pending)
	c.pub.Store(&m)
}

// sizes returns how many values are published and how many wait (for tests).
func (c *cowSet[K]) sizes() (published, pending int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pub.Load(); p != nil {
		published = len(*p)
	}
	return published, len(c.pending)
}
