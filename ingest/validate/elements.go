package validate

import (
	"bytes"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

// The elements pass walks every field, repetition, component and subcomponent of the Z22
// segments against the profile tables: usage (R missing, X valued), repetitions, lengths,
// primitive formats (dates, numbers), value sets, and the conditional predicates of the data
// types. It reports generic problems; problemRule turns the ones on important elements into the
// catalogue's specific rules.

// kind is the kind of a generic problem.
type kind uint8

const (
	kMissing      kind = iota // R element empty
	kCondMissing              // element required by a data type predicate is empty
	kNotSupported             // X element valued
	kRepeat                   // too many repetitions
	kLength                   // longer than the conformance length
	kFormat                   // not a valid date / number
	kPrecision                // valid date of the wrong precision for its flavour
	kValue                    // not in the bound value set
	kCodingSystem             // CE/CWE coding system not in table 0396
)

// target names an element a specific rule takes over from a generic one.
type target struct {
	seg      segRef
	field    int
	comp     int // 0: the field itself
	kind     kind
	firstRep bool // only in the first repetition
}

// specific maps generic problems on important elements to their own rules.
var specific = []struct {
	t    target
	rule *Rule
}{
	{target{segMSH, 7, 0, kMissing, false}, ruleMSH7Missing},
	{target{segMSH, 7, 0, kFormat, false}, ruleMSH7Invalid},
	{target{segMSH, 7, 0, kPrecision, false}, ruleMSH7Precision},
	{target{segMSH, 10, 0, kMissing, false}, ruleMSH10Missing},
	{target{segMSH, 15, 0, kMissing, false}, ruleMSH15Missing},
	{target{segMSH, 16, 0, kMissing, false}, ruleMSH16Missing},
	{target{segMSH, 21, 0, kMissing, false}, ruleMSH21Missing},
	{target{segPID, 3, 0, kMissing, false}, rulePID3Missing},
	{target{segPID, 3, 1, kMissing, true}, rulePID3Missing},
	{target{segPID, 5, 0, kMissing, false}, rulePID5Missing},
	{target{segPID, 5, 1, kMissing, true}, rulePID5Missing},
	{target{segPID, 5, 2, kMissing, true}, rulePID5GivenMissing},
	{target{segPID, 7, 0, kMissing, false}, rulePID7Missing},
	{target{segPID, 7, 0, kFormat, false}, rulePID7Invalid},
	{target{segPID, 7, 0, kPrecision, false}, rulePID7Invalid},
	{target{segPID, 8, 0, kMissing, false}, rulePID8Missing},
	{target{segPID, 8, 0, kValue, false}, rulePID8Value},
	{target{segPID, 10, 1, kValue, false}, ruleRaceValue},
	{target{segPID, 22, 1, kValue, false}, ruleEthnicityValue},
	{target{segPID, 6, 7, kMissing, false}, ruleNameTypeMissing},
	{target{segNK1, 2, 0, kMissing, false}, ruleNK1NameMissing},
	{target{segNK1, 2, 7, kMissing, false}, ruleNameTypeMissing},
	{target{segNK1, 3, 0, kMissing, false}, ruleNK1RelationshipMissing},
	{target{segNK1, 3, 1, kValue, false}, ruleNK1RelationshipValue},
	{target{segORC, 3, 0, kMissing, false}, ruleORC3Missing},
	{target{segRXA, 3, 0, kMissing, false}, ruleRXA3Missing},
	{target{segRXA, 3, 0, kFormat, false}, ruleRXA3Invalid},
	{target{segRXA, 3, 0, kPrecision, false}, ruleRXA3Invalid},
	{target{segRXA, 5, 0, kMissing, false}, ruleRXA5Missing},
	{target{segRXA, 5, 1, kMissing, false}, ruleRXA5Missing},
	{target{segRXA, 6, 0, kMissing, false}, ruleRXA6Missing},
	{target{segRXA, 6, 0, kFormat, false}, ruleRXA6Invalid},
	{target{segRXA, 16, 0, kFormat, false}, ruleRXA16Invalid},
	{target{segRXR, 1, 0, kMissing, false}, ruleRXR1Missing},
	{target{segRXR, 2, 1, kValue, false}, ruleSiteValue},
	{target{segOBX, 3, 1, kValue, false}, ruleOBX3Value},
}

// generic is the rule of each kind of problem that no specific rule takes.
func generic(k kind, comp int, dateType bool) *Rule {
	switch k {
	case kMissing:
		if comp > 0 {
			return ruleRequiredComponent
		}
		return ruleRequiredField
	case kCondMissing:
		return ruleConditionalComponent
	case kNotSupported:
		return ruleNotSupported
	case kRepeat:
		return ruleFieldRepeat
	case kLength:
		return ruleLength
	case kFormat:
		if dateType {
			return ruleDateInvalid
		}
		return ruleNumberInvalid
	case kPrecision:
		return ruleDatePrecision
	case kValue:
		return ruleCodeUnknown
	}
	return ruleCodingSystemUnknown
}

func problemRule(def segRef, loc ack.Location, k kind, dateType bool) *Rule {
	if def >= 0 && int(def) < len(specificBySeg) {
		// The entries of the segment only, in the order of specific: the first that matches wins.
		for _, i := range specificBySeg[def] {
			t := specific[i].t
			if t.field == loc.Field && t.comp == loc.Component && t.kind == k && (!t.firstRep || loc.Rep <= 1) {
				return specific[i].rule
			}
		}
	}
	return generic(k, loc.Component, dateType)
}

// specificBySeg[def] are the indices in specific of the entries of segment definition def, in
// order: a problem is looked up among its segment's few, not all of them.
var specificBySeg = func() (t [numSegDefs][]uint8) {
	for i, s := range specific {
		t[s.t.seg] = append(t[s.t.seg], uint8(i))
	}
	return t
}()

// semanticField reports fields whose values the semantic rules check with more knowledge than the
// profile's binding: the generic pass checks only their usage, lengths and formats.
func semanticField(def segRef, n int) bool {
	switch def {
	case segMSH:
		return n == 9 || n == 15 || n == 16 || n == 21 // type, acknowledgment types, profile
	case segRXA:
		return n == 5 || n == 9 || n == 17 || n == 18 || n == 20 || n == 21
	case segORC:
		return n == 1 // orc-1-value
	case segRXR:
		return n == 1
	case segOBX:
		return n == 5 || n == 11 // obx-11-value
	}
	return false
}

// lastRequired is, for each data type, the number of its last R component (0: none), so that
// value stops reading a short value once no required component can follow.
var lastRequired = func() (t [numDatatypes]int) {
	for i := range z22Datatypes {
		for k, c := range z22Datatypes[i].comps {
			if c.usage == uR {
				t[i] = k + 1
			}
		}
	}
	return t
}()

// lastRequiredField is, for each segment, the number of its last R field: past the last field
// a segment has, only required fields can give a finding.
var lastRequiredField = func() (t [numSegDefs]int) {
	for i := range z22Segments {
		for n, f := range z22Segments[i].fields {
			if f.usage == uR {
				t[i] = n + 1
			}
		}
	}
	return t
}()

// dtKind is what the elements pass does with a value of a data type, decided once from the
// type's base and flavour (comparing their names for every value cost more than the check).
type dtKind uint8

const (
	dkOther dtKind = iota // a primitive without a format, or a composite not below
	dkDTM                 // DTM
	dkDT                  // DT
	dkDTDay               // DT_D: a DT of day precision
	dkNM                  // NM
	dkSI                  // SI
	dkTS                  // TS of no particular precision
	dkTSNZ                // TS_NZ: at least a day
	dkTSZ                 // TS_Z: seconds and time zone
	dkTSM                 // TS_M: at least a month
)

// dtKinds is the dtKind of each data type; dtCoded says which are CE, CWE or CNE.
var dtKinds, dtCoded = func() (k [numDatatypes]dtKind, coded [numDatatypes]bool) {
	for i := range z22Datatypes {
		d := &z22Datatypes[i]
		switch d.base {
		case "DTM":
			k[i] = dkDTM
		case "DT":
			k[i] = dkDT
			if d.id == "DT_D" {
				k[i] = dkDTDay
			}
		case "NM":
			k[i] = dkNM
		case "SI":
			k[i] = dkSI
		case "TS":
			k[i] = dkTS
			switch d.id {
			case "TS_NZ":
				k[i] = dkTSNZ
			case "TS_Z":
				k[i] = dkTSZ
			case "TS_M":
				k[i] = dkTSM
			}
		case "CE", "CWE", "CNE":
			coded[i] = true
		}
	}
	return k, coded
}()

// elemCheck is what the elements pass reads of an element's definition, packed: the definitions
// (elemDef, with the element's name) are five times larger, and a message reads those of every
// field of its segments and every component of its values, each time from caches that the rest of
// the server's work has filled with other things. The definitions themselves are read only to
// name an element in a finding.
type elemCheck struct {
	maxLen int32 // -1: no limit
	max    int16 // repetitions; -1: unbounded
	dt     dtRef
	vs     vsRef
	usage  usage
}

// fieldChecks[def][n-1] is elemCheck of field n of segment definition def; compChecks[dt][k-1] of
// component k of data type dt.
var fieldChecks, compChecks = func() (f [numSegDefs][]elemCheck, c [numDatatypes][]elemCheck) {
	pack := func(e *elemDef) elemCheck {
		x := elemCheck{maxLen: int32(e.maxLen), max: int16(e.max), dt: e.dt, vs: e.vs, usage: e.usage}
		if int(x.maxLen) != e.maxLen || int(x.max) != e.max {
			panic("validate: a Z22 length or repetition count does not fit elemCheck")
		}
		return x
	}
	for i := range z22Segments {
		for n := range z22Segments[i].fields {
			f[i] = append(f[i], pack(&z22Segments[i].fields[n]))
		}
	}
	for i := range z22Datatypes {
		for k := range z22Datatypes[i].comps {
			c[i] = append(c[i], pack(&z22Datatypes[i].comps[k]))
		}
	}
	return f, c
}()

// fieldCheck returns elemCheck of field n of seg, or nil (as fieldDef).
func fieldCheck(seg segRef, n int) *elemCheck {
	if seg < 0 || int(seg) >= len(fieldChecks) || n < 1 || n > len(fieldChecks[seg]) {
		return nil
	}
	return &fieldChecks[seg][n-1]
}

// plainTypes are the primitive data types without a format to check (ST, IS, ID, TX, ...): a
// value of one with no value set has nothing to check but its length, which the caller checks.
var plainTypes = func() (t [numDatatypes]bool) {
	for i := range z22Datatypes {
		t[i] = len(z22Datatypes[i].comps) == 0 && dtKinds[i] == dkOther
	}
	return t
}()

// checked reports whether a value of data type dt bound to value set vs has anything to check
// beyond its length: skipping the others saves a call per component.
func checked(dt dtRef, vs vsRef) bool { return vs > 0 || !plainTypes[dt] }

// checkSig is what the elements pass's verdict on a field value depends on besides the value and
// the message's delimiters (see field): its usage, repetitions, length, the data type checked and
// the value set. Two fields of one message with the same signature and the same bytes are found
// clean or not alike (which rule reports a problem depends on the place; whether there is one
// does not).
type checkSig struct {
	usage       usage
	max, maxLen int
	dt          dtRef
	vs          vsRef
}

// memoEntry is a field of the message found clean: its signature and where its bytes are.
type memoEntry struct {
	sig checkSig
	sp  span
}

// seenClean reports whether a field of this message with signature sig and bytes raw was found
// clean.
func (r *run) seenClean(sig checkSig, raw []byte) bool {
	for _, e := range r.memo {
		if int(e.sp.end-e.sp.start) == len(raw) && e.sig == sig && bytes.Equal(r.data[e.sp.start:e.sp.end], raw) {
			return true
		}
	}
	return false
}

// maxReps bounds the repetitions checked in one field: a hostile message with thousands of
// repetitions costs a finding, not a finding per repetition.
const maxReps = 20

// elemCtx is where in the message the elements pass is.
type elemCtx struct {
	seg int    // segment index
	def segRef // segment definition
	loc ack.Location
}

// How the elements pass treats a field (fieldClass).
const (
	fcSkip   = iota // not checked here (MSH-1, 2, 9, 11, 12), or empty and not required
	fcDirect        // checked every time
	fcShort         // a short value: remembered across messages by shortKey
	fcLong          // a value of a type that repeats: remembered across messages by cleanKey
	fcMemo          // a value of the patient's or the message's own: remembered within the message
)

// fieldClass says how field n (at sp) of segment i, of definition def, is checked, and the data
// type its value is checked as when the message chooses it (OBX-5), else 0.
func (r *run) fieldClass(i int, def segRef, n int, sp span, fd *elemCheck, defaultDelims bool) (class int, dt dtRef) {
	if def == segMSH && (n <= 2 || n == 9 || n == 11 || n == 12) {
		return fcSkip, 0 // delimiters, MSH-9, MSH-11, MSH-12: the parser, header() and the pipeline
	}
	size := int(sp.end - sp.start)
	if size == 0 && (fd == nil || fd.usage != uR) {
		return fcSkip, 0 // empty and not required: most fields of most segments
	}
	if size < minClean && size > 0 && fd != nil && n < 256 && defaultDelims && !(def == segOBX && n == 5) {
		return fcShort, 0
	}
	if size < minClean || size > maxClean || fd == nil || fd.dt < 0 {
		return fcDirect, 0
	}
	typ := fd.dt
	if def == segOBX && n == 5 {
		dt = obxValueType(r.fld(i, 2))
		typ = dt
	}
	if !repeats[typ] {
		return fcMemo, dt
	}
	return fcLong, dt
}

// fieldClassOf is a field's class and data type (fieldClass), kept between the two loops of
// elements over a segment's fields for the fields the second one checks (x: the field's index in
// the segment's spans, its number less one).
type fieldClassOf struct {
	x     int32
	class uint8
	dt    dtRef
}

// maxSegKey bounds the key of a segment's remembered values (segKey).
const maxSegKey = 768

func (r *run) elements() {
	defaultDelims := r.d == hl7.DefaultDelimiters
	var key [maxClean + cleanHead]byte
	var segKey [maxSegKey]byte
	for i := range r.segs {
		def := r.segs[i].def
		if def < 0 {
			continue
		}
		sd := &z22Segments[def]
		c := elemCtx{seg: i, def: def, loc: ack.Location{Segment: sd.name, Sequence: r.segs[i].seq}}
		f0, last := int(r.segs[i].f0), int(r.segs[i].nf)
		spans := r.fields[f0 : f0+last]

		// The values of the segment that are remembered across messages (short values, values of
		// the types that repeat), together: when the segment's combination was found clean, one
		// look-up stands for all of them. (Its key: the definition and delimiters, then each such
		// field's number, length and bytes, and the type of OBX-5 when the message chooses it.)
		sk := append(segKey[:0], byte(def), r.d.Field, r.d.Component, r.d.Repetition, r.d.Escape, r.d.Subcomponent)
		r.classes = r.classes[:0]
		checks := fieldChecks[def]
		for x, sp := range spans {
			n := x + 1
			if sp.start == sp.end {
				// Empty (most fields of most segments): checked only when required, as
				// fieldClass says, and never part of the key.
				if x < len(checks) && checks[x].usage == uR && !(def == segMSH && (n <= 2 || n == 9 || n == 11 || n == 12)) {
					r.classes = append(r.classes, fieldClassOf{int32(x), fcDirect, 0})
				}
				continue
			}
			fd := fieldCheck(def, n)
			class, dt := r.fieldClass(i, def, n, sp, fd, defaultDelims)
			if class != fcSkip {
				r.classes = append(r.classes, fieldClassOf{int32(x), uint8(class), dt})
			}
			if class != fcShort && class != fcLong || sk == nil {
				continue
			}
			if len(sk)+int(sp.end-sp.start)+6 > len(segKey) {
				sk = nil // too long to be worth a key
				continue
			}
			sk = append(sk, byte(n), byte(n>>8), byte(dt), byte(dt>>8), byte(sp.end-sp.start), byte((sp.end-sp.start)>>8))
			sk = append(sk, r.data[sp.start:sp.end]...)
		}
		segHit := sk != nil && hasBytes(&r.v.clean.segs, sk)
		segClean := true // every remembered value of the segment found clean

		// One pass over the segment's fields, then the required fields past its last one.
		for _, cl := range r.classes {
			class, dt := int(cl.class), cl.dt
			if segHit && (class == fcShort || class == fcLong) {
				continue
			}
			x := int(cl.x)
			sp := spans[x]
			n := x + 1
			fd := fieldCheck(def, n)
			c.loc.Field, c.loc.Rep, c.loc.Component, c.loc.Sub = n, 0, 0, 0
			raw := r.data[sp.start:sp.end]
			switch class {
			case fcDirect:
				r.field(&c, n, raw)
			case fcShort:
				k := shortKey(def, n, raw)
				if r.v.clean.short.has(k) {
					continue // checked before, found clean
				}
				before := r.reports
				r.field(&c, n, raw)
				if r.reports == before {
					r.v.clean.short.add(k)
				} else {
					segClean = false
				}
			case fcMemo:
				// A patient's or a message's own value: not remembered across messages, but the
				// message may repeat it (the next of kin's address and telephone number are often
				// the patient's, the dates of a dose its observations').
				typ := fd.dt
				if def == segOBX && n == 5 {
					typ = dt
				}
				sig := checkSig{usage: fd.usage, max: int(fd.max), maxLen: int(fd.maxLen), dt: typ, vs: fd.vs}
				if semanticField(def, n) {
					sig.vs = 0
				}
				if r.seenClean(sig, raw) {
					continue
				}
				before := r.reports
				r.field(&c, n, raw)
				if r.reports == before {
					r.memo = append(r.memo, memoEntry{sig, sp})
				}
			case fcLong:
				k := cleanKey(&key, def, n, dt, r.d, raw)
				if r.v.clean.has(k) {
					continue // checked before, found clean
				}
				before := r.reports
				r.field(&c, n, raw)
				if r.reports == before {
					r.v.clean.add(k)
				} else {
					segClean = false
				}
			}
		}
		if !segHit && segClean && sk != nil && len(sk) > 6 {
			r.v.clean.segs.add(string(sk))
		}
		for n := last + 1; n <= lastRequiredField[def]; n++ {
			if def == segMSH && (n == 9 || n == 11 || n == 12) {
				continue
			}
			c.loc.Field, c.loc.Rep, c.loc.Component, c.loc.Sub = n, 0, 0, 0
			r.field(&c, n, nil)
		}
	}
}

// field checks field n (raw, as it is in the message) of the segment c is in.
func (r *run) field(c *elemCtx, n int, raw []byte) {
	fd, fc := fieldDef(c.def, n), fieldCheck(c.def, n) // fd: for the findings' names only
	if len(raw) == 0 {
		if fc != nil && fc.usage == uR {
			r.problem(c, kMissing, fd, nil, "", false)
		}
		return
	}
	if fd == nil {
		r.problem(c, kNotSupported, &elemDef{name: "field beyond the segment's definition"}, nil, "", false)
		return
	}
	if isNullBytes(raw) {
		// "" asks to delete a stored value: for a required field that is as good as missing.
		if fc.usage == uR {
			r.problem(c, kMissing, fd, nil, "", false)
		}
		return
	}
	if fc.usage == uX {
		r.problem(c, kNotSupported, fd, nil, "", false)
		return
	}
	dt := fc.dt
	if c.def == segOBX && n == 5 {
		dt = obxValueType(r.fld(c.seg, 2))
	}
	vs := fc.vs
	if semanticField(c.def, n) {
		vs = 0
	}
	d := r.d
	reps := 1 // a byte loop: fields are short
	for _, b := range raw {
		if b == d.Repetition {
			reps++
		}
	}
	single := reps == 1 // no repetition separator in raw
	if reps > r.v.maxReps {
		l := c.loc
		l.Rep = 0
		r.report(ruleRepetitionsLimit, c.seg, c.loc, args{at: locText(l), value: itoa(reps), detail: itoa(r.v.maxReps)})
	}
	if fmax := int(fc.max); fmax >= 0 && reps > fmax {
		c.loc.Rep = fmax + 1
		r.problemCount(c, kRepeat, fd, reps, itoa(fmax)+" repetition"+plural(fmax))
		c.loc.Rep = 0
		reps = min(reps, max(fmax, 1))
	}
	reps = min(reps, maxReps)
	for k := 1; k <= reps; k++ {
		var rep []byte
		if single {
			rep, raw = raw, nil // no separator to look for: cut's answer
		} else {
			rep, raw = cut(raw, d.Repetition)
		}
		if len(rep) == 0 {
			continue
		}
		c.loc.Rep = k
		if maxLen := int(fc.maxLen); maxLen > 0 && len(rep) > maxLen {
			r.problemCount(c, kLength, fd, len(rep), itoa(maxLen))
		}
		if dt > 0 && checked(dt, vs) {
			r.value(c, fd, dt, vs, rep, 1)
		}
	}
	c.loc.Rep = 0
}

// value checks one value of data type dt at depth 1 (a field repetition, split in components) or
// depth 2 (a component, split in subcomponents). el is the element it is the value of.
func (r *run) value(c *elemCtx, el *elemDef, dt dtRef, vs vsRef, v []byte, depth int) {
	checks := compChecks[dt] // what is checked of each component; the definitions name them
	sep := r.d.Component
	if depth > 1 {
		sep = r.d.Subcomponent
	}
	if len(checks) == 0 {
		first, _ := cut(v, sep)
		r.primitive(c, el, dt, vs, first)
		return
	}
	if dtKinds[dt] >= dkTS {
		// TS is DTM plus an unsupported degree of precision: checked as one date, reported
		// where the TS is.
		first, _ := cut(v, sep)
		r.timestamp(c, el, dt, first)
		return
	}
	rest := v
	last := lastRequired[dt]
	defs := z22Datatypes[dt].comps[:len(checks)]
	for k := 1; k <= len(checks); k++ {
		if rest == nil && k > last {
			break // nothing left to read and nothing left that is required
		}
		var part []byte
		part, rest = cut(rest, sep)
		cc := &checks[k-1]
		cd := &defs[k-1]
		// The location of the part; what is called below leaves c.loc as it found it, so only
		// the number set here is put back.
		saveComp, saveSub := c.loc.Component, c.loc.Sub
		if depth == 1 {
			c.loc.Component = k
		} else {
			c.loc.Sub = k
		}
		switch {
		case len(part) == 0:
			if cc.usage == uR {
				r.problem(c, kMissing, cd, nil, "", false)
			}
		case cc.usage == uX:
			if !isNullBytes(part) {
				r.problem(c, kNotSupported, cd, nil, "", false)
			}
		case isNullBytes(part):
		default:
			if maxLen := int(cc.maxLen); maxLen > 0 && len(part) > maxLen {
				r.problemCount(c, kLength, cd, len(part), itoa(maxLen))
			}
			if cc.dt > 0 && checked(cc.dt, cc.vs) {
				if depth == 1 {
					r.value(c, cd, cc.dt, cc.vs, part, 2)
				} else {
					// Below subcomponents there is nothing to split: check the primitive.
					r.primitive(c, cd, cc.dt, cc.vs, part)
				}
			}
		}
		c.loc.Component, c.loc.Sub = saveComp, saveSub
	}
	r.predicates(c, dt, v, sep)
	if vs > 0 && dtCoded[dt] {
		r.coded(c, el, vs, v, sep)
	}
}

// primitive checks a value of a primitive data type: dates, numbers, coded IDs.
func (r *run) primitive(c *elemCtx, el *elemDef, dt dtRef, vs vsRef, v []byte) {
	if len(v) == 0 || isNullBytes(v) {
		return
	}
	switch k := dtKinds[dt]; k {
	case dkDTM:
		if _, ok := parseDTM(v); !ok {
			r.problem(c, kFormat, el, v, "", true)
		}
	case dkDT, dkDTDay:
		t, ok := parseDTM(v)
		if !ok || t.digits > 8 || t.tz {
			r.problem(c, kFormat, el, v, "", true)
		} else if k == dkDTDay && t.digits != 8 {
			r.problem(c, kPrecision, el, v, "YYYYMMDD", true)
		}
	case dkNM:
		if !isNumber(v) {
			r.problem(c, kFormat, el, v, "", false)
		}
	case dkSI:
		if !isDigits(v) {
			r.problem(c, kFormat, el, v, "", false)
		}
	}
	if vs > 0 {
		if vs == vsHL70396IZ || vs == vsHL70396 {
			if !knownCodingSystem(v) {
				r.problem(c, kCodingSystem, el, v, "", false)
			}
		} else if !z22ValueSets[vs].has(v) {
			r.problem(c, kValue, el, v, vsText(vs), false)
		}
	}
}

// timestamp checks a TS value (its first component) and the precision its Z22 flavour asks for.
func (r *run) timestamp(c *elemCtx, el *elemDef, dt dtRef, v []byte) {
	if len(v) == 0 || isNullBytes(v) {
		return
	}
	t, ok := parseDTM(v)
	if !ok {
		r.problem(c, kFormat, el, v, "", true)
		return
	}
	switch dtKinds[dt] {
	case dkTSNZ:
		if t.digits < 8 {
			r.problem(c, kPrecision, el, v, "YYYYMMDD", true)
		}
	case dkTSZ:
		if t.digits < 14 || !t.tz {
			r.problem(c, kPrecision, el, v, "YYYYMMDDHHMMSS+/-ZZZZ", true)
		}
	case dkTSM:
		if t.digits < 6 {
			r.problem(c, kPrecision, el, v, "YYYYMM or YYYYMMDD", true)
		}
	}
}

// coded checks the identifier of a CE/CWE/CNE against its value set, or the alternate identifier
// when the first is not in it. Local codes (coding system 99zzz or L) are not checked: the profile
// leaves them to the sender's agreement with the registry.
func (r *run) coded(c *elemCtx, el *elemDef, vs vsRef, v []byte, sep byte) {
	code, rest := cut(v, sep)
	_, rest = cut(rest, sep)
	system, rest := cut(rest, sep)
	alt, rest := cut(rest, sep)
	_, rest = cut(rest, sep)
	altSystem, _ := cut(rest, sep)
	set := &z22ValueSets[vs]
	if len(code) == 0 || localSystem(system) || set.has(code) {
		return
	}
	if len(alt) > 0 && (localSystem(altSystem) || set.has(alt)) {
		return
	}
	save := c.loc
	if c.loc.Component == 0 {
		c.loc.Component = 1
	} else {
		c.loc.Sub = 1
	}
	r.problem(c, kValue, el, code, vsText(vs), false)
	c.loc = save
}

// problem reports a generic problem through its specific or generic rule; value is the value
// found (nil: none), quoted in the finding.
func (r *run) problem(c *elemCtx, k kind, el *elemDef, value []byte, detail string, dateType bool) {
	v := ""
	if value != nil {
		v = quote(value)
	}
	r.problemText(c, k, el, v, value != nil, detail, dateType)
}

// problemCount reports a problem of length or repetitions (kLength, kRepeat): the finding names
// the count n as it is, not quoted.
func (r *run) problemCount(c *elemCtx, k kind, el *elemDef, n int, detail string) {
	r.problemText(c, k, el, itoa(n), true, detail, false)
}

func (r *run) problemText(c *elemCtx, k kind, el *elemDef, value string, hasValue bool, detail string, dateType bool) {
	rule := problemRule(c.def, c.loc, k, dateType)
	a := args{name: el.name, detail: detail}
	if rule == ruleNameTypeMissing {
		a.value, a.detail = "L", "the legal name (L)"
		if c.def == segPID {
			a.value, a.detail = "M", "a maiden name (M)"
		}
	}
	if hasValue {
		a.value = value
	}
	if k == kRepeat {
		l := c.loc
		l.Rep = 0
		a.at = locText(l)
	}
	r.report(rule, c.seg, c.loc, a)
}

// obxValueType is the data type OBX-5 takes for the value type in OBX-2 (the profile's dynamic
// mapping); 0 leaves OBX-5 unchecked.
func obxValueType(vt []byte) dtRef {
	switch string(vt) {
	case "CE":
		return dtCEIZ
	case "CWE":
		return dtCWE
	case "CNE":
		return dtCNE
	case "DT":
		return dtDT
	case "DTM":
		return dtDTM
	case "TS":
		return dtTS
	case "NM":
		return dtNM
	case "ST":
		return dtST
	case "TX":
		return dtTX
	case "FT":
		return dtFT
	case "ID":
		return dtID
	case "IS":
		return dtIS
	case "SI":
		return dtSI
	}
	return 0
}

// cut splits b at the first sep.
func cut(b []byte, sep byte) (head, tail []byte) {
	// A plain loop: HL7 components are short, and for short slices it beats the call into
	// bytes.IndexByte.
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

func isNullBytes(b []byte) bool { return len(b) == 2 && b[0] == '"' && b[1] == '"' }

func isDigits(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// localSystem reports the coding systems of local codes: 99zzz and L.
func localSystem(s []byte) bool {
	return len(s) == 1 && s[0] == 'L' || len(s) >= 3 && s[0] == '9' && s[1] == '9'
}

// knownCodingSystem reports whether s names a coding system of HL7 table 0396 as the Z22 profile
// has it, including its patterns: HL7nnnn (HL7 tables), 99zzz (local), NCPDPnnnnsss, X12DEnnnn.
func knownCodingSystem(s []byte) bool {
	if z22ValueSets[vsHL70396IZ].has(s) || localSystem(s) {
		return true
	}
	switch {
	case len(s) == 7 && bytes.HasPrefix(s, []byte("HL7")) && isDigits(s[3:]):
		return true
	case len(s) > 5 && bytes.HasPrefix(s, []byte("NCPDP")) && isDigits(s[5:]):
		return true
	case len(s) > 5 && bytes.HasPrefix(s, []byte("X12DE")) && isDigits(s[5:]):
		return true
	}
	return false
}

// vsText names a value set for a finding: its codes when there are few, else its name.
func vsText(vs vsRef) string {
	set := &z22ValueSets[vs]
	if len(set.codes) <= 8 {
		s := set.name + " ("
		for i, c := range set.codes {
			if i > 0 {
				s += ", "
			}
			s += c
		}
		return s + ")"
	}
	return set.name + " (" + set.id + ")"
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
