package hl7

import (
	"errors"
	"fmt"
)

// Errors reported by Parse, always wrapped in a *ParseError that says where.
var (
	// ErrEmpty: the input holds no segment at all (only blank lines or nothing).
	ErrEmpty = errors.New("empty message")
	// ErrNoMSH: the first segment is not MSH.
	ErrNoMSH = errors.New("message does not start with an MSH segment")
	// ErrBadDelimiters: MSH-1 or MSH-2 is missing, too short or too long, or
	// holds characters that cannot be delimiters or that repeat.
	ErrBadDelimiters = errors.New("invalid delimiters in MSH-1/MSH-2")
	// ErrSegmentName: a segment does not start with three characters [A-Z0-9]
	// followed by the field separator or the end of the segment.
	ErrSegmentName = errors.New("malformed segment name")
	// ErrTooLarge: the message is larger than this package can index (4 GiB).
	ErrTooLarge = errors.New("message too large")
	// ErrUnknownCharset: MSH-18 names a character set this package cannot
	// decode. Parse does not fail for it (see Message.CharsetError).
	ErrUnknownCharset = errors.New("unknown or unsupported character set")
)

// A ParseError reports where a message could not be read: the segment (its
// name as far as it could be read, and its 0-based position among the
// segments), the HL7 field number (0 when the problem is not in a field) and
// the byte offset in the input.
type ParseError struct {
	Segment      string // segment name, or the bytes found where one was expected
	SegmentIndex int    // 0-based position of the segment in the message
	Field        int    // HL7 field number, 0 if not about a field
	Offset       int    // byte offset in the parsed data
	Err          error  // one of the Err* sentinels, possibly wrapped
}

func (e *ParseError) Error() string {
	if e.Field > 0 {
		return fmt.Sprintf("hl7: segment %q at index %d, field %d, byte %d: %v", e.Segment, e.SegmentIndex, e.Field, e.Offset, e.Err)
	}
	return fmt.Sprintf("hl7: segment %q at index %d, byte %d: %v", e.Segment, e.SegmentIndex, e.Offset, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// errorf wraps sentinel with a formatted detail, keeping errors.Is working.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: %s", sentinel, fmt.Sprintf(format, args...))
}
