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

// Bounds of what is remembered: values shorter than minClean cost less to check than to look up;
// longer than maxClean are not worth a key.
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

// cleanFields is the set of field values found clean, keyed by cleanKey. Every message reads it
// (a score of look-ups each), from every connection at once; it changes rarely (traffic repeats a
// few hundred values). Readers therefore take no lock: they read a published map that is never
// written again, through an atomic pointer. New values wait in pending, under a mutex, and are
// published with a fresh copy of the map — at once while the set is small, then in batches, so
// that copying costs a few insertions per value. A value not yet published is only checked once
// more: findings are the same either way.
type cleanFields struct {
	pub     atomic.Pointer[map[string]struct{}]
	mu      sync.Mutex
	pending map[string]struct{} // added, not yet published
}

// cleanKey is the key of field n of a segment of definition def, of data type dt (0 unless the
// message chose it), written with delimiters d: those, then the field's bytes.
func cleanKey(buf *[maxClean + cleanHead]byte, def segRef, n int, dt dtRef, d hl7.Delimiters, raw []byte) []byte {
	k := append(buf[:0], byte(def), byte(n), byte(dt), byte(dt>>8), d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent)
	return append(k, raw...)
}

func (c *cleanFields) has(key []byte) bool {
	m := c.pub.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[string(key)]
	return ok
}

// publishSmall is the size below which every new value is published at once.
const publishSmall = 1024

func (c *cleanFields) add(key []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var old map[string]struct{}
	if p := c.pub.Load(); p != nil {
		old = *p
	}
	if _, ok := old[string(key)]; ok {
		return
	}
	if c.pending == nil {
		c.pending = map[string]struct{}{}
	}
	c.pending[string(key)] = struct{}{}
	if len(old) >= publishSmall && len(c.pending) < len(old)/8 {
		return
	}
	// Publish: the set starts over when it would pass maxCleanFields, so that memory stays
	// bounded whatever is sent.
	size := len(old) + len(c.pending)
	if size > maxCleanFields {
		old, size = nil, len(c.pending)
	}
	m := make(map[string]struct{}, size)
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
func (c *cleanFields) sizes() (published, pending int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.pub.Load(); p != nil {
		published = len(*p)
	}
	return published, len(c.pending)
}
