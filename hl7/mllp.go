package hl7

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
)

// MLLP (Minimal Lower Layer Protocol) frames each message as
// 0x0B message 0x1C 0x0D.
const (
	FrameStart = 0x0B // VT: start block
	FrameEnd   = 0x1C // FS: end block, followed by CR
)

// DefaultMaxFrameSize is the frame size limit used when NewFrameReader is
// given a limit <= 0.
const DefaultMaxFrameSize = 4 << 20

// maxHead is how much of an oversize frame FrameTooLargeError keeps.
const maxHead = 4 << 10

// ErrPartialFrame is returned by ReadFrame when the stream ends inside a
// frame. It wraps io.ErrUnexpectedEOF.
var ErrPartialFrame = fmt.Errorf("hl7: stream ended inside an MLLP frame: %w", io.ErrUnexpectedEOF)

// ErrFrameContent is returned by WriteFrame for a message that contains a
// framing byte (0x0B or 0x1C), which would corrupt the stream.
var ErrFrameContent = errors.New("hl7: message contains an MLLP framing byte")

// A FrameTooLargeError reports a frame larger than the reader's limit. The
// frame has been consumed (without being kept), so the next ReadFrame reads
// the frame after it. Head holds its first bytes (at most 4 KiB), usually
// enough to read MSH and answer with an AR; it is valid until the next call
// to ReadFrame.
type FrameTooLargeError struct {
	Size  int // size of the frame content in bytes
	Limit int // the reader's limit
	Head  []byte
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("hl7: MLLP frame of %d bytes exceeds the limit of %d bytes", e.Size, e.Limit)
}

// A FrameReader reads MLLP frames from a stream, typically a TCP connection.
// Its memory use is bounded by the frame size limit, whatever the sender
// does.
//
// It is lenient where senders are known to be sloppy: bytes outside frames
// (noise, keep-alive newlines, a stray CR) are skipped and counted (Skipped).
// A frame ends at 0x1C; the CR that should follow is consumed when it comes,
// but ReadFrame does not wait for it, so a sender that omits it is answered
// too, and a stream that ends right after 0x1C ends cleanly. A 0x0B inside a
// frame is part of the content (the parser will then reject the message).
type FrameReader struct {
	r   io.Reader
	max int

	buf    []byte
	r0, w  int  // unread bytes are buf[r0:w]
	in     bool // inside a frame: its content starts at buf[r0]
	seen   int  // bytes of the current frame's content already searched for 0x1C
	drop   bool // discarding the rest of an oversize frame
	size   int  // bytes of the oversize frame seen so far
	head   []byte
	skipCR bool // a frame just ended at 0x1C: a CR that follows belongs to it

	skipped int64
	eof     bool
	rerr    error // read error held back while buffered bytes were handled
}

// NewFrameReader returns a FrameReader reading from r that refuses frames
// larger than maxSize bytes (DefaultMaxFrameSize if maxSize <= 0).
func NewFrameReader(r io.Reader, maxSize int) *FrameReader {
	if maxSize <= 0 {
		maxSize = DefaultMaxFrameSize
	}
	return &FrameReader{r: r, max: maxSize}
}

// Skipped returns the number of bytes skipped outside frames so far.
func (fr *FrameReader) Skipped() int64 { return fr.skipped }

// Buffered returns the number of bytes read from the stream but not yet
// returned in a frame or skipped.
func (fr *FrameReader) Buffered() int { return fr.w - fr.r0 }

// ReadFrame returns the content of the next frame, without the framing bytes.
// The slice is valid until the next call.
//
// At the end of the stream it returns io.EOF, or ErrPartialFrame if the stream
// ended inside a frame (the partial frame is dropped). A frame larger than the
// limit gives a *FrameTooLargeError once the frame has ended, and the reader
// can go on with the next frame. Other read errors (a deadline, say) are
// returned as they are; the bytes read so far are kept, so ReadFrame may be
// called again.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	for {
		if fr.skipCR && fr.r0 < fr.w {
			if fr.buf[fr.r0] == '\r' {
				fr.r0++
			}
			fr.skipCR = false
		}
		data := fr.buf[fr.r0:fr.w]
		switch {
		case fr.drop:
			if i := bytes.IndexByte(data, FrameEnd); i >= 0 {
				fr.size += i
				fr.r0 += i + 1
				fr.endFrame()
				fr.drop = false
				return nil, &FrameTooLargeError{Size: fr.size, Limit: fr.max, Head: fr.head}
			}
			fr.size += len(data)
			fr.r0, fr.w = 0, 0
		case fr.in:
			if i := bytes.IndexByte(data[fr.seen:], FrameEnd); i >= 0 {
				n := fr.seen + i
				fr.r0 += n + 1
				fr.endFrame()
				fr.in = false
				if n > fr.max {
					return nil, &FrameTooLargeError{Size: n, Limit: fr.max, Head: data[:min(n, maxHead)]}
				}
				return data[:n], nil
			}
			fr.seen = len(data)
			if len(data) > fr.max {
				// Too large: keep the head for the caller's answer and
				// discard the rest as it comes, so memory stays bounded.
				fr.head = append(fr.head[:0], data[:min(len(data), maxHead)]...)
				fr.size = len(data)
				fr.in, fr.drop = false, true
				fr.r0, fr.w = 0, 0
				continue
			}
		default:
			if i := bytes.IndexByte(data, FrameStart); i >= 0 {
				fr.skipped += int64(i)
				fr.r0 += i + 1
				fr.in, fr.seen = true, 0
				continue
			}
			fr.skipped += int64(len(data))
			fr.r0, fr.w = 0, 0
		}
		if err := fr.fill(); err != nil {
			if err == io.EOF && (fr.in || fr.drop) {
				fr.in, fr.drop = false, false
				fr.r0, fr.w = 0, 0
				return nil, ErrPartialFrame
			}
			return nil, err
		}
	}
}

// endFrame consumes the CR after 0x1C, or remembers to consume it when it
// arrives: waiting for it here could block on a sender that never sends it.
func (fr *FrameReader) endFrame() {
	if fr.r0 < fr.w {
		if fr.buf[fr.r0] == '\r' {
			fr.r0++
		}
		return
	}
	fr.skipCR = true
}

// fill reads more bytes into the buffer, making room first. It returns nil
// when it read something.
func (fr *FrameReader) fill() error {
	if fr.rerr != nil {
		err := fr.rerr
		fr.rerr = nil
		return err
	}
	if fr.eof {
		return io.EOF
	}
	if fr.buf == nil {
		fr.buf = make([]byte, min(fr.max+1, 16<<10))
	}
	if fr.r0 > 0 && (fr.w == len(fr.buf) || fr.r0 > len(fr.buf)/2) {
		// Move the unread bytes to the front (the previous frame, which
		// the caller may no longer use, is overwritten here).
		fr.w = copy(fr.buf, fr.buf[fr.r0:fr.w])
		fr.r0 = 0
	}
	if fr.w == len(fr.buf) {
		// The frame in progress fills the buffer: grow it, up to the limit
		// plus the end byte. (A frame past the limit is never buffered:
		// ReadFrame switches to discarding it first.)
		nb := make([]byte, min(2*len(fr.buf), fr.max+1))
		fr.w = copy(nb, fr.buf[:fr.w])
		fr.buf = nb
	}
	for range 100 {
		n, err := fr.r.Read(fr.buf[fr.w:])
		if n < 0 || n > len(fr.buf)-fr.w {
			return errors.New("hl7: reader returned an invalid count")
		}
		fr.w += n
		if err == io.EOF {
			fr.eof = true
		} else if err != nil {
			if n > 0 {
				fr.rerr = err
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
		if fr.eof {
			return io.EOF
		}
	}
	return io.ErrNoProgress
}

// AppendFrame appends msg wrapped in an MLLP frame to dst.
func AppendFrame(dst, msg []byte) []byte {
	dst = append(dst, FrameStart)
	dst = append(dst, msg...)
	return append(dst, FrameEnd, '\r')
}

var (
	frameStart = []byte{FrameStart}
	frameEnd   = []byte{FrameEnd, '\r'}
)

// WriteFrame writes msg to w as one MLLP frame, in a single write when w is
// a network connection. A message containing 0x0B or 0x1C is refused with
// ErrFrameContent: the receiver would cut it in the wrong place.
func WriteFrame(w io.Writer, msg []byte) error {
	if bytes.IndexByte(msg, FrameStart) >= 0 || bytes.IndexByte(msg, FrameEnd) >= 0 {
		return ErrFrameContent
	}
	bufs := net.Buffers{frameStart, msg, frameEnd}
	_, err := bufs.WriteTo(w)
	return err
}
