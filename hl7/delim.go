package hl7

import "fmt"

// Delimiters are the five separator characters of a message, read from MSH-1
// (field separator) and MSH-2 (component, repetition, escape and subcomponent
// characters, in that order).
type Delimiters struct {
	Field, Component, Repetition, Escape, Subcomponent byte
}

// DefaultDelimiters are the delimiters HL7 recommends and almost every sender
// uses: |^~\&.
var DefaultDelimiters = Delimiters{'|', '^', '~', '\\', '&'}

// validDelimiter reports whether c may serve as a delimiter. HL7 only asks for
// non-alphanumeric characters; this package also refuses control characters
// (CR and LF end segments, 0x0B and 0x1C frame MLLP), space, bytes outside
// ASCII (they would collide with multi-byte characters) and the double quote
// (it would make the HL7 null value "" ambiguous).
func validDelimiter(c byte) bool {
	return c > ' ' && c < 0x7f && c != '"' && !isAlnum(c)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// Validate reports whether d is a usable set of delimiters: five distinct
// printable ASCII punctuation characters other than the double quote. The
// error wraps ErrBadDelimiters.
func (d Delimiters) Validate() error {
	all := [5]byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent}
	for i, c := range all {
		if !validDelimiter(c) {
			return fmt.Errorf("%w: %q is not a valid delimiter", ErrBadDelimiters, c)
		}
		for _, o := range all[:i] {
			if o == c {
				return fmt.Errorf("%w: %q is used twice", ErrBadDelimiters, c)
			}
		}
	}
	return nil
}

// EncodingCharacters returns MSH-2 for d: component, repetition, escape and
// subcomponent characters.
func (d Delimiters) EncodingCharacters() string {
	return string([]byte{d.Component, d.Repetition, d.Escape, d.Subcomponent})
}

// String returns MSH-1 followed by MSH-2, for example "|^~\&".
func (d Delimiters) String() string {
	return string([]byte{d.Field, d.Component, d.Repetition, d.Escape, d.Subcomponent})
}

// isDelimiter reports whether c is one of the five delimiters of d.
func (d *Delimiters) isDelimiter(c byte) bool {
	return c == d.Field || c == d.Component || c == d.Repetition || c == d.Escape || c == d.Subcomponent
}
