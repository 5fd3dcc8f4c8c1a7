package ingest

import (
	"bytes"
	"crypto/sha256"

	"github.com/vaxgate/vaxgate/hl7"
)

// ContentDigest identifies a message's content for resend detection (SPEC §2.6): a message from
// the same site, in the same environment, with the same MSH-10 and the same digest as one already
// accepted is a resend, answered with the original ACK; the same MSH-10 with another digest is
// another message, processed and warned (0357 code 205).
//
// The digest is SHA-256 over the message's segments as received, each followed by CR, with what
// a resend may legitimately change left out:
//   - MSH-7 (date/time of message): interface engines stamp it again when they resend;
//   - segment terminators (CR, LF or CRLF) and blank lines: a message relayed through another
//     transport or engine may have them rewritten.
//
// Everything else counts, MSH-3..MSH-6, MSH-11 and MSH-12 included: a message whose content
// differs by a byte is another message, and processing it is safe (RXA-21 identity rules decide
// what it updates), whereas answering it as a resend would drop it.
func ContentDigest(m *hl7.Message) []byte { return contentDigest(m, nil) }

// contentDigest is ContentDigest appended to dst: the pipeline gives it room for the digest in the
// memory of its record, so that the digest costs no allocation of its own.
//
// The bytes hashed are written in runs of the message's own contiguous bytes: a segment that ends
// in a single CR, followed by the next segment, continues the run, so that a message with CR
// terminators (nearly every one) is hashed in two or three writes rather than two per segment.
func contentDigest(m *hl7.Message, dst []byte) []byte {
	h := sha256.New()
	data := m.Bytes()
	fs := m.Delimiters().Field
	run, runEnd := 0, 0 // data[run:runEnd] is to be hashed next
	for i := 0; i < m.NumSegments(); i++ {
		seg := m.Segment(i)
		raw := seg.Raw()
		start := seg.Offset()
		end := start + len(raw)
		if i == 0 && seg.Is("MSH") {
			before, after := withoutMSH7(raw, fs)
			h.Write(before)
			start = end - len(after) // after is the end of raw
		}
		if end < len(data) && data[end] == '\r' {
			// The segment's rest and its CR are data[start:end+1].
			if runEnd > run && runEnd == start {
				runEnd = end + 1
				continue
			}
			h.Write(data[run:runEnd])
			run, runEnd = start, end+1
			continue
		}
		h.Write(data[run:runEnd])
		run, runEnd = 0, 0
		h.Write(data[start:end])
		h.Write([]byte{'\r'})
	}
	h.Write(data[run:runEnd])
	return h.Sum(dst)
}

// RawContentDigest is ContentDigest of a raw message; nil when it cannot be parsed.
func RawContentDigest(raw []byte) []byte {
	m, err := hl7.Parse(raw)
	if err != nil {
		return nil
	}
	return ContentDigest(m)
}

// withoutMSH7 splits an MSH segment around the content of MSH-7: before ends with the separator
// that opens MSH-7, after starts with the one that closes it (empty when MSH-7 is the last field).
// MSH-1 is the separator after "MSH", so MSH-7 follows the sixth separator.
func withoutMSH7(raw []byte, fs byte) (before, after []byte) {
	pos, n := 0, 0
	for n < 6 {
		i := bytes.IndexByte(raw[pos:], fs)
		if i < 0 {
			return raw, nil // no MSH-7
		}
		pos += i + 1
		n++
	}
	end := bytes.IndexByte(raw[pos:], fs)
	if end < 0 {
		return raw[:pos], nil
	}
	return raw[:pos], raw[pos+end:]
}
