package codes

import (
	"errors"
	"fmt"
)

// ParseError says what is wrong with a file and where. Line is 1-based; 0 means the file as a
// whole. Import returns a ParseError for a file it cannot use, and lists one in ImportReport for
// every line it skipped or read only in part.
type ParseError struct {
	File string
	Line int
	Err  error
}

func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("codes: %s:%d: %v", e.File, e.Line, e.Err)
	}
	return fmt.Sprintf("codes: %s: %v", e.File, e.Err)
}

func (e *ParseError) Unwrap() error { return e.Err }

// Errors callers may test for with errors.Is.
var (
	// ErrUnrecognized: the content is not one of the supported CDC code-set files.
	ErrUnrecognized = errors.New("not a supported CDC code-set file")
	// ErrFormat: a snapshot is malformed or of an unsupported version.
	ErrFormat = errors.New("malformed code snapshot")
)
