package mllp

import (
	"bytes"
	"errors"
	"io"

	"github.com/vaxgate/vaxgate/hl7"
)

// Sizes of the memory a connection reads frames with. Only the frame being received grows, and
// only as far as it has actually arrived: a connection that announced a 4 MiB frame and sent
// 10 KB of it holds 10 KB, not 4 MiB.
const (
	readBufSize = 16 << 10 // read from the socket into this
	smallSize   = 32 << 10 // the first bytes of every frame (all of a typical VXU) go here
	maxHead     = 4 << 10  // what is kept of an oversize frame, to answer it
)

// frameReader reads MLLP frames the way hl7.FrameReader does (junk outside frames skipped and
// counted, a frame ends at 0x1C, the CR after it consumed when it comes, an oversize frame
// discarded as it streams in and reported with its head), but it gives every frame its own
// exactly-sized slice, and holds a frame being received in a small per-connection buffer and then
// in chunks from the server's chunk allocator, which returns them to the operating system at
// once when the frame ends or the connection goes. Memory therefore follows the bytes a sender
// has really sent, and an unfinished frame's memory is released when its connection ends, not
// whenever the garbage collector and the scavenger next run.
type frameReader struct {
	r     io.Reader
	max   int
	alloc *chunkAlloc

	rbuf  []byte
	r0, w int // unread bytes are rbuf[r0:w]
	eof   bool
	rerr  error // read error held back while buffered bytes were handled

	in     bool // inside a frame
	drop   bool // discarding the rest of an oversize frame
	size   int  // content bytes of the current frame so far
	small  []byte
	chunks []chunk // after small; every chunk but the last is full
	last   int     // bytes used in the last chunk
	head   []byte  // of an oversize frame
	skipCR bool    // a frame just ended at 0x1C: a CR that follows belongs to it

	skipped int64
}

func newFrameReader(r io.Reader, max int, alloc *chunkAlloc) *frameReader {
	return &frameReader{r: r, max: max, alloc: alloc}
}

// Skipped returns the number of bytes skipped outside frames so far.
func (fr *frameReader) Skipped() int64 { return fr.skipped }

// ReadFrame returns the content of the next frame in a new slice that the caller owns. At the
// end of the stream it returns io.EOF, or hl7.ErrPartialFrame when the stream ended inside a
// frame. A frame larger than the limit gives an *hl7.FrameTooLargeError (its Head is the
// caller's) once the frame has ended. Other read errors are returned as they are.
func (fr *frameReader) ReadFrame() ([]byte, error) {
	for {
		if fr.skipCR && fr.r0 < fr.w {
			if fr.rbuf[fr.r0] == '\r' {
				fr.r0++
			}
			fr.skipCR = false
		}
		data := fr.rbuf[fr.r0:fr.w]
		if fr.in || fr.drop {
			i := bytes.IndexByte(data, hl7.FrameEnd)
			if i < 0 {
				fr.add(data)
				fr.r0 = fr.w
			} else if fr.in && fr.size == 0 && i <= fr.max {
				// The whole frame is in the read buffer (a typical VXU is): copied once, straight
				// into its own slice, rather than into the frame buffer first and out again.
				out := make([]byte, i)
				copy(out, data)
				fr.size = i
				fr.r0 += i + 1
				fr.endFrame()
				fr.in = false
				return out, nil
			} else {
				fr.add(data[:i])
				fr.r0 += i + 1
				fr.endFrame()
				if fr.drop {
					fr.drop = false
					head := fr.head
					fr.head = nil
					return nil, &hl7.FrameTooLargeError{Size: fr.size, Limit: fr.max, Head: head}
				}
				fr.in = false
				return fr.take(), nil
			}
		} else {
			if i := bytes.IndexByte(data, hl7.FrameStart); i >= 0 {
				fr.skipped += int64(i)
				fr.r0 += i + 1
				fr.in, fr.size = true, 0
				continue
			}
			fr.skipped += int64(len(data))
			fr.r0 = fr.w
		}
		if err := fr.fill(); err != nil {
			if err == io.EOF && (fr.in || fr.drop) {
				fr.in, fr.drop = false, false
				fr.Release()
				return nil, hl7.ErrPartialFrame
			}
			return nil, err
		}
	}
}

// add appends content bytes of the current frame, switching to discarding once it is too large.
func (fr *frameReader) add(p []byte) {
	if fr.drop {
		if len(fr.head) < maxHead {
			fr.head = append(fr.head, p[:min(len(p), maxHead-len(fr.head))]...)
		}
		fr.size += len(p)
		return
	}
	if fr.size+len(p) > fr.max {
		// Keep the head to answer with, free the rest, discard what follows.
		head := make([]byte, 0, maxHead)
		head = append(head, fr.small[:min(len(fr.small), maxHead)]...)
		for i, c := range fr.chunks {
			if len(head) == maxHead {
				break
			}
			used := chunkSize
			if i == len(fr.chunks)-1 {
				used = fr.last
			}
			head = append(head, c.b[:min(used, maxHead-len(head))]...)
		}
		head = append(head, p[:min(len(p), maxHead-len(head))]...)
		fr.head = head
		fr.size += len(p)
		fr.drop, fr.in = true, false
		fr.Release()
		return
	}
	fr.size += len(p)
	if room := smallSize - len(fr.small); room > 0 {
		if fr.small == nil {
			fr.small = make([]byte, 0, smallSize)
		}
		n := min(room, len(p))
		fr.small = append(fr.small, p[:n]...)
		p = p[n:]
	}
	for len(p) > 0 {
		if len(fr.chunks) == 0 || fr.last == chunkSize {
			fr.chunks = append(fr.chunks, fr.alloc.get())
			fr.last = 0
		}
		n := copy(fr.chunks[len(fr.chunks)-1].b[fr.last:], p)
		fr.last += n
		p = p[n:]
	}
}

// take returns the frame just completed as one new slice and releases its chunks.
func (fr *frameReader) take() []byte {
	out := make([]byte, 0, fr.size)
	out = append(out, fr.small...)
	for i, c := range fr.chunks {
		used := chunkSize
		if i == len(fr.chunks)-1 {
			used = fr.last
		}
		out = append(out, c.b[:used]...)
	}
	fr.small = fr.small[:0]
	fr.Release()
	return out
}

// Release gives the chunks of a frame being received back to the allocator. The connection
// calls it when it ends; the reader calls it after every frame.
func (fr *frameReader) Release() {
	for _, c := range fr.chunks {
		fr.alloc.put(c)
	}
	clear(fr.chunks)
	fr.chunks = fr.chunks[:0]
	fr.last = 0
	fr.small = fr.small[:0]
}

// endFrame consumes the CR after 0x1C, or remembers to consume it when it arrives: waiting for
// it here could block on a sender that never sends it.
func (fr *frameReader) endFrame() {
	if fr.r0 < fr.w {
		if fr.rbuf[fr.r0] == '\r' {
			fr.r0++
		}
		return
	}
	fr.skipCR = true
}

// fill reads more bytes into the (empty) read buffer. It returns nil when it read something.
func (fr *frameReader) fill() error {
	if fr.rerr != nil {
		err := fr.rerr
		fr.rerr = nil
		return err
	}
	if fr.eof {
		return io.EOF
	}
	if fr.rbuf == nil {
		fr.rbuf = make([]byte, readBufSize)
	}
	fr.r0, fr.w = 0, 0
	for range 100 {
		n, err := fr.r.Read(fr.rbuf)
		if n < 0 || n > len(fr.rbuf) {
			return errors.New("mllp: reader returned an invalid count")
		}
		fr.w = n
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
