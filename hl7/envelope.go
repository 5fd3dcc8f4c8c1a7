package hl7

import "bytes"

// EnvelopeSegment is a batch envelope segment (FHS or BHS) read with its own delimiters: like
// MSH, field 1 is the field separator and field 2 the encoding characters, and a sender's batch
// need not use |^~\&. Its answers (ACK envelopes, ACK files) echo its fields swapped.
type EnvelopeSegment struct {
	fields [][]byte // fields[i] is field i+1 (fields[0] the segment name)
	d      Delimiters
}

// ReadEnvelopeSegment splits seg (an FHS or BHS line, without its terminator). Encoding characters
// that are not valid delimiters are read as the standard ones; a nil or short seg has no fields.
func ReadEnvelopeSegment(seg []byte) EnvelopeSegment {
	e := EnvelopeSegment{d: DefaultDelimiters}
	if len(seg) < 4 {
		return e
	}
	if len(seg) >= 8 {
		c := Delimiters{Field: seg[3], Component: seg[4], Repetition: seg[5], Escape: seg[6], Subcomponent: seg[7]}
		if c.Validate() == nil {
			e.d = c
		}
	}
	e.fields = bytes.Split(seg, []byte{seg[3]})
	return e
}

// raw is field n (n >= 3), first repetition, still escaped.
func (e EnvelopeSegment) raw(n int) []byte {
	if n < 3 || n-1 >= len(e.fields) {
		return nil
	}
	f := e.fields[n-1]
	if i := bytes.IndexByte(f, e.d.Repetition); i >= 0 {
		f = f[:i]
	}
	return f
}

// Components returns field n's (n >= 3) first repetition as decoded components; nil when empty.
func (e EnvelopeSegment) Components(n int) []string {
	f := e.raw(n)
	if len(f) == 0 {
		return nil
	}
	parts := bytes.Split(f, []byte{e.d.Component})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = envelopeText(Unescape(nil, p, e.d))
	}
	return out
}

// Text returns field n's (n >= 3) first repetition, decoded (for control IDs: FHS-11, BHS-11).
func (e EnvelopeSegment) Text(n int) string { return envelopeText(Unescape(nil, e.raw(n), e.d)) }

func envelopeText(b []byte) string { return string(bytes.ToValidUTF8(b, []byte("\uFFFD"))) }
