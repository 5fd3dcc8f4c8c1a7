package validate

import (
	"slices"
	"sort"
)

// This file holds the types of the Z22 tables that gen/z22tables derives from the NIST profile
// (z22_tables.go) and the few lookups on them.

// usage is an HL7 conformance usage: R required, RE required but may be empty, C conditional,
// O optional, X not supported. Backward-compatible (B) elements are treated as O.
type usage uint8

const (
	uO usage = iota
	uR
	uRE
	uC
	uX
)

func (u usage) String() string {
	return [...]string{"O", "R", "RE", "C", "X"}[u]
}

type (
	segRef int8  // index in z22Segments
	dtRef  int16 // index in z22Datatypes; 0 = none ("varies")
	vsRef  int16 // index in z22ValueSets; 0 = not checkable from the profile
)

// structNode is a segment or a group of the message structure, in pre-order.
type structNode struct {
	seg      segRef // the segment (when group == "")
	group    string // group name, "" for a segment
	usage    usage
	min, max int // max -1 = unbounded
	parent   int // index of the enclosing group node, -1 at the top
	end      int // groups: index after the last descendant
}

// segDef is a segment of the profile.
type segDef struct {
	name, profile, desc string
	fields              []elemDef // fields[n-1] is field n
}

// elemDef is a field (min/max are its repetitions) or a component of a data type.
type elemDef struct {
	name           string
	usage          usage
	min, max       int // repetitions of a field; max -1 = unbounded (0 for components)
	minLen, maxLen int // -1 = no limit
	dt             dtRef
	vs             vsRef
}

// dtDef is a data type flavour of the profile: "CE_IZ" is a CE with the IZ guide's constraints.
type dtDef struct {
	id, base string
	comps    []elemDef // comps[n-1] is component n; none for a primitive type
}

// valueSet is a closed list of codes, sorted.
type valueSet struct {
	id, name string
	codes    []string
	// packed holds the codes as packCode makes them, sorted, when none is longer than
	// maxPacked (nearly every set: HL7 tables of short codes): a look-up compares integers in one
	// array, where comparing strings reads each code from where it is.
	packed []uint64
}

// maxPacked is the longest code packCode packs.
const maxPacked = 7

// packCode packs a code of at most maxPacked bytes into an integer: its length, then its bytes.
func packCode(code []byte) uint64 {
	k := uint64(len(code)) << 56
	for i, c := range code {
		k |= uint64(c) << (8 * i)
	}
	return k
}

// pack makes vs.packed, when every code fits.
func (vs *valueSet) pack() {
	p := make([]uint64, 0, len(vs.codes))
	for _, c := range vs.codes {
		if len(c) > maxPacked {
			return
		}
		p = append(p, packCode([]byte(c)))
	}
	slices.Sort(p)
	vs.packed = p
}

// valueSetsPacked packs the value sets once, at initialisation.
var valueSetsPacked = func() bool {
	for i := range z22ValueSets {
		z22ValueSets[i].pack()
	}
	usStates.pack()
	routes162.pack()
	return true
}()

// has reports whether code is in the value set. It does not allocate: the conversion in the
// comparison is done without a copy.
func (vs *valueSet) has(code []byte) bool {
	if vs.packed != nil {
		if len(code) > maxPacked {
			return false
		}
		k := packCode(code)
		p := vs.packed
		if len(p) <= 16 {
			for _, x := range p {
				if x == k {
					return true
				}
			}
			return false
		}
		i, ok := slices.BinarySearch(p, k)
		return ok && i >= 0
	}
	if len(vs.codes) <= 16 {
		// Most sets are small: comparing lengths first rejects nearly every code at once.
		for _, c := range vs.codes {
			if len(c) == len(code) && c == string(code) {
				return true
			}
		}
		return false
	}
	lo, hi := 0, len(vs.codes)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if vs.codes[m] < string(code) {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo < len(vs.codes) && vs.codes[lo] == string(code)
}

// hasString is has for a string.
func (vs *valueSet) hasString(code string) bool {
	i := sort.SearchStrings(vs.codes, code)
	return i < len(vs.codes) && vs.codes[i] == code
}

// segByName maps a segment name to its definition; -1 when the name is not part of Z22.
func segByName(name string) segRef {
	if len(name) != 3 {
		return -1
	}
	return segByKey(segNameKey(name[0], name[1], name[2]))
}

// segByBytes is segByName for a segment as it is in the message (its name is its first three
// bytes), without making the name a string: it runs for every segment of every message.
func segByBytes(raw []byte) segRef {
	if len(raw) < 3 {
		return -1
	}
	return segByKey(segNameKey(raw[0], raw[1], raw[2]))
}

// segSlot is a slot of segTable: a Z22 segment's name (segNameKey; 0: the slot is empty) and its
// definition.
type segSlot struct {
	key uint32
	def segRef
}

// segTable finds a segment's definition by its name in a multiplication and a load or two, where
// comparing the names of the definitions in turn took up to eighteen comparisons (OBX, the most
// frequent, is near the end): open addressing, at most a third full, so that a name that is not
// there meets an empty slot at once.
var segTable = func() (t [64]segSlot) {
	for i := range z22Segments {
		n := z22Segments[i].name
		k := segNameKey(n[0], n[1], n[2])
		h := segHash(k)
		for t[h].key != 0 {
			h = (h + 1) % uint32(len(t))
		}
		t[h] = segSlot{k, segRef(i)}
	}
	return t
}()

// segNameKey is the key of a segment name: its three bytes, never 0.
func segNameKey(a, b, c byte) uint32 { return 1<<24 | uint32(a)<<16 | uint32(b)<<8 | uint32(c) }

// segHash is the slot of segTable where a key's search starts.
func segHash(k uint32) uint32 { return (k * 0x9E3779B1) >> 26 }

func segByKey(k uint32) segRef {
	for h := segHash(k); ; h = (h + 1) % uint32(len(segTable)) {
		s := &segTable[h]
		if s.key == k {
			return s.def
		}
		if s.key == 0 {
			return -1
		}
	}
}

// fieldDef returns the definition of field n of seg, or nil.
func fieldDef(seg segRef, n int) *elemDef {
	if seg < 0 || int(seg) >= len(z22Segments) || n < 1 || n > len(z22Segments[seg].fields) {
		return nil
	}
	return &z22Segments[seg].fields[n-1]
}

// compDef returns the definition of component n of data type dt, or nil.
func compDef(dt dtRef, n int) *elemDef {
	if dt <= 0 || int(dt) >= len(z22Datatypes) || n < 1 || n > len(z22Datatypes[dt].comps) {
		return nil
	}
	return &z22Datatypes[dt].comps[n-1]
}
