package file

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// ErrNotHL7 is returned by Splitter.Next when the input does not start like HL7: its first
// non-blank line is not an MSH, FHS or BHS segment, or it holds NUL bytes (a binary file).
var ErrNotHL7 = errors.New("not an HL7 v2 file")

// A Message is one message of a file, as Splitter.Next returns it.
type Message struct {
	// Data is the message with every segment terminated by CR, LF and CRLF normalised, blank lines
	// and leading spaces dropped. It is a new slice, owned by the caller. For a message larger than
	// the limit it is only the head (the MSH segment, itself cut at the limit).
	Data []byte
	// Start is the offset in the input of the message's first byte; End the offset just after its
	// last line terminator, where reading resumes for the next message.
	Start, End int64
	// TooLarge is the size of a message (bytes as received) that exceeded the limit; 0 otherwise.
	TooLarge int
}

// Envelope is what a Splitter saw of a batch envelope: the first FHS and BHS segments (without
// terminator) and how many of each. A file of plain concatenated messages has none.
type Envelope struct {
	FHS, BHS []byte
	Files    int // FHS segments
	Batches  int // BHS segments
}

// Batch reports whether the input was wrapped in FHS or BHS.
func (e *Envelope) Batch() bool { return e.Files > 0 || e.Batches > 0 }

// Splitter reads HL7 messages one at a time from a stream: FHS/BHS batches or plain concatenated
// messages, with segments ending in CR, LF or CRLF. It holds one message at a time (and one read
// buffer), never the whole input: a line or message over the limit is skipped, not buffered, and
// reported by its size. It never panics on any input.
type Splitter struct {
	r   io.Reader
	max int

	buf      []byte
	pos, end int   // unread bytes are buf[pos:end]
	off      int64 // input offset of buf[pos]
	eof      bool

	started bool // a first line was seen (or reading resumed mid-file)
	pend    []byte
	pendAt  int64
	pendLen int
	hasPend bool

	env Envelope
	// EOL is the first line terminator met in the input ("\r", "\n" or "\r\n"), so that answers
	// can be written the way the sender writes; nil until a line has ended.
	eol []byte
}

// headLimit caps what is kept of an oversize line or message: enough for its MSH.
const headLimit = 4096

// chunk is the read size and the initial buffer.
const chunk = 64 << 10

// NewSplitter returns a Splitter reading r, which is positioned at offset in its input (0, or where
// a previous run stopped: a message boundary, Message.End). Messages larger than maxMessage bytes
// are reported with TooLarge.
func NewSplitter(r io.Reader, offset int64, maxMessage int) *Splitter {
	if maxMessage <= 0 {
		maxMessage = 4 << 20
	}
	return &Splitter{r: r, max: maxMessage, off: offset, started: offset > 0, buf: make([]byte, chunk)}
}

// Envelope returns the batch envelope seen so far.
func (s *Splitter) Envelope() Envelope { return s.env }

// EOL returns the first line terminator met, or nil.
func (s *Splitter) EOL() []byte { return s.eol }

// Offset returns the input offset of the next unread byte.
func (s *Splitter) Offset() int64 { return s.off }

// Next returns the next message, io.EOF after the last one, ErrNotHL7 (wrapped with the reason)
// when the input does not start like HL7, or the reader's error.
func (s *Splitter) Next() (Message, error) {
	var (
		m     Message
		open  bool
		size  int // bytes of the message as received, for TooLarge
		large bool
	)
	appendLine := func(line []byte, long int) {
		size += long + 1
		if large {
			return
		}
		if long > len(line) || len(m.Data)+len(line)+1 > s.max {
			large = true
			if len(m.Data) == 0 { // the MSH itself is too long: keep its head
				m.Data = append(m.Data, line[:min(len(line), headLimit)]...)
				m.Data = append(m.Data, '\r')
			} else if i := bytes.IndexByte(m.Data, '\r'); i >= 0 {
				m.Data = m.Data[: i+1 : i+1] // keep the MSH
			}
			return
		}
		m.Data = append(m.Data, line...)
		m.Data = append(m.Data, '\r')
	}
	finish := func() (Message, error) {
		if large {
			m.TooLarge = size
			m.Data = bytes.Clone(m.Data) // drop the spare capacity of the discarded part
		}
		return m, nil
	}
	for {
		var (
			line  []byte
			start int64
			long  int
			err   error
		)
		if s.hasPend {
			line, start, long, s.hasPend = s.pend, s.pendAt, s.pendLen, false
		} else {
			line, start, long, err = s.line()
			if errors.Is(err, io.EOF) {
				if open {
					m.End = s.off
					return finish()
				}
				return Message{}, io.EOF
			}
			if err != nil {
				return Message{}, err
			}
		}
		if !s.started {
			t := bytes.TrimLeft(bytes.TrimPrefix(line, utf8BOM), " \t")
			if len(t) == 0 {
				continue
			}
			if bytes.IndexByte(line, 0) >= 0 {
				return Message{}, fmt.Errorf("%w: its first line holds NUL bytes (a binary file?)", ErrNotHL7)
			}
			if k := segmentKind(t); k != "MSH" && k != "FHS" && k != "BHS" {
				return Message{}, fmt.Errorf("%w: it must start with an MSH, FHS or BHS segment, not %q", ErrNotHL7, printable(t))
			}
			s.started = true
			start += int64(len(line) - len(t))
			long -= len(line) - len(t)
			line = t
		} else {
			t := bytes.TrimLeft(line, " \t")
			start += int64(len(line) - len(t))
			long -= len(line) - len(t)
			line = t
		}
		if len(line) == 0 {
			continue
		}
		switch segmentKind(line) {
		case "MSH":
			if open {
				s.keep(line, start, long)
				m.End = start
				return finish()
			}
			open, m.Start = true, start
			appendLine(line, long)
		case "FHS", "BHS", "BTS", "FTS":
			if open {
				s.keep(line, start, long)
				m.End = start
				return finish()
			}
			s.envelope(line)
		default:
			if !open { // lines outside any MSH: a message of their own, which the pipeline rejects
				open, m.Start = true, start
			}
			appendLine(line, long)
		}
	}
}

// keep holds back a line that starts the next message or envelope segment, with its length as
// received (more than it holds for an oversize line, of which only the head is kept).
func (s *Splitter) keep(line []byte, at int64, length int) {
	s.pend = append(s.pend[:0], line...)
	s.pendAt, s.pendLen, s.hasPend = at, length, true
}

func (s *Splitter) envelope(line []byte) {
	keep := func() []byte { return bytes.Clone(line[:min(len(line), headLimit)]) }
	switch line[0] {
	case 'F':
		if line[1] == 'H' {
			s.env.Files++
			if s.env.FHS == nil {
				s.env.FHS = keep()
			}
		}
	case 'B':
		if line[1] == 'H' {
			s.env.Batches++
			if s.env.BHS == nil {
				s.env.BHS = keep()
			}
		}
	}
}

// line returns the next line without its terminator (CR or LF; the LF of a CRLF comes back as an
// empty line, which Next skips), the offset of its first byte, and its length as received. A line
// longer than the limit is returned cut to headLimit bytes, with its full length: the rest is read
// and discarded, never buffered.
func (s *Splitter) line() (line []byte, start int64, length int, err error) {
	start = s.off
	skipped := 0 // bytes of an oversize line already discarded
	var head []byte
	for {
		if i := indexEOL(s.buf[s.pos:s.end]); i >= 0 {
			if s.eol == nil {
				s.setEOL(i)
			}
			line = s.buf[s.pos : s.pos+i]
			s.pos += i + 1
			s.off += int64(i + 1)
			if skipped > 0 {
				return head, start, skipped + i, nil
			}
			return line, start, i, nil
		}
		if s.eof {
			if s.pos == s.end {
				if skipped > 0 {
					return head, start, skipped, nil
				}
				return nil, s.off, 0, io.EOF
			}
			n := s.end - s.pos
			line = s.buf[s.pos:s.end]
			s.off += int64(n)
			s.pos = s.end
			if skipped > 0 {
				return head, start, skipped + n, nil
			}
			return line, start, n, nil
		}
		if s.pos > 0 {
			n := copy(s.buf, s.buf[s.pos:s.end])
			s.pos, s.end = 0, n
		}
		if s.end == len(s.buf) {
			if len(s.buf) > s.max {
				// Over the limit without a terminator: keep the head, discard the rest.
				if head == nil {
					head = bytes.Clone(s.buf[:headLimit])
				}
				skipped += s.end
				s.off += int64(s.end)
				s.end = 0
			} else {
				s.buf = append(s.buf, make([]byte, min(len(s.buf), s.max+1-len(s.buf)+chunk))...)
				s.buf = s.buf[:cap(s.buf)]
			}
		}
		n, rerr := s.r.Read(s.buf[s.end:])
		s.end += n
		if errors.Is(rerr, io.EOF) {
			s.eof = true
		} else if rerr != nil {
			return nil, start, 0, fmt.Errorf("read input: %w", rerr)
		}
	}
}

// setEOL records the input's line terminator from the first line ending at buf[pos+i].
func (s *Splitter) setEOL(i int) {
	switch {
	case s.buf[s.pos+i] == '\n':
		s.eol = []byte("\n")
	case s.pos+i+1 < s.end && s.buf[s.pos+i+1] == '\n':
		s.eol = []byte("\r\n")
	case s.pos+i+1 < s.end || s.eof:
		s.eol = []byte("\r")
	}
}

// indexEOL returns the index of the first CR or LF in b, or -1.
func indexEOL(b []byte) int {
	for i, c := range b {
		if c == '\r' || c == '\n' {
			return i
		}
	}
	return -1
}

var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// segmentKind returns the name of line if it is MSH or a batch envelope segment: three letters
// followed by the end of the line or a field separator (anything but a letter or digit).
func segmentKind(line []byte) string {
	if len(line) < 3 || len(line) > 3 && isAlnum(line[3]) {
		return ""
	}
	switch string(line[:3]) {
	case "MSH", "FHS", "BHS", "BTS", "FTS":
		return string(line[:3])
	}
	return ""
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// printable returns the start of a line for a report: at most 20 bytes, control and non-ASCII
// bytes as dots.
func printable(b []byte) string {
	b = b[:min(len(b), 20)]
	out := make([]byte, len(b))
	for i, c := range b {
		if c < 0x20 || c >= 0x7f {
			c = '.'
		}
		out[i] = c
	}
	return string(out)
}
