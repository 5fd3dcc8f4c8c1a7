package hl7

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// readAll reads frames until an error, returning the frames (copied), the
// errors met before the final one, and the final error.
func readAll(fr *FrameReader) (frames []string, errs []error, final error) {
	for range 1000 {
		f, err := fr.ReadFrame()
		switch {
		case err == nil:
			frames = append(frames, string(f))
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return frames, errs, err
		default:
			var tl *FrameTooLargeError
			if !errors.As(err, &tl) {
				return frames, errs, err
			}
			errs = append(errs, err)
		}
	}
	return frames, errs, errors.New("too many frames")
}

func frame(s string) string { return "\x0b" + s + "\x1c\r" }

func TestFrameReader(t *testing.T) {
	m1, m2, m3 := "MSH|one\rPID|1\r", "MSH|two\r", strings.Repeat("x", 5000)
	tests := []struct {
		name    string
		in      string
		frames  []string
		skipped int64
		final   error
	}{
		{"empty", "", nil, 0, io.EOF},
		{"one", frame(m1), []string{m1}, 0, io.EOF},
		{"pipelined", frame(m1) + frame(m2) + frame(m3), []string{m1, m2, m3}, 0, io.EOF},
		{"junk before", "junk\r\n" + frame(m1) + "\n\n" + frame(m2) + "zz", []string{m1, m2}, 6 + 2 + 2, io.EOF},
		{"no CR after end", "\x0b" + m1 + "\x1c" + "\x0b" + m2 + "\x1c", []string{m1, m2}, 0, io.EOF},
		{"LF after end", "\x0b" + m1 + "\x1c\n" + frame(m2), []string{m1, m2}, 1, io.EOF},
		{"empty frame", "\x0b\x1c\r" + frame(m1), []string{"", m1}, 0, io.EOF},
		{"partial", frame(m1) + "\x0bMSH|cut", []string{m1}, 0, ErrPartialFrame},
		{"only start", "\x0b", nil, 0, ErrPartialFrame},
		{"junk only", "hello", nil, 5, io.EOF},
		{"VT inside", "\x0bab\x0bcd\x1c\r", []string{"ab\x0bcd"}, 0, io.EOF},
	}
	readers := map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"half":     iotest.HalfReader,
		"data+EOF": iotest.DataErrReader,
	}
	for _, tt := range tests {
		for rname, wrap := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				fr := NewFrameReader(wrap(strings.NewReader(tt.in)), 1<<20)
				frames, errs, final := readAll(fr)
				if !equalStrings(frames, tt.frames) {
					t.Errorf("frames = %q, want %q", frames, tt.frames)
				}
				if len(errs) != 0 {
					t.Errorf("unexpected errors %v", errs)
				}
				if !errors.Is(final, tt.final) {
					t.Errorf("final error = %v, want %v", final, tt.final)
				}
				if fr.Skipped() != tt.skipped {
					t.Errorf("Skipped = %d, want %d", fr.Skipped(), tt.skipped)
				}
				// The end is sticky.
				if _, err := fr.ReadFrame(); err != io.EOF {
					t.Errorf("after the end: %v", err)
				}
			})
		}
	}
}

func TestPartialFrameWrapsUnexpectedEOF(t *testing.T) {
	if !errors.Is(ErrPartialFrame, io.ErrUnexpectedEOF) {
		t.Fatal("ErrPartialFrame must wrap io.ErrUnexpectedEOF")
	}
}

func TestFrameTooLarge(t *testing.T) {
	const limit = 1000
	big := "MSH|^~\\&|BIG|" + strings.Repeat("y", 9000)
	exact := strings.Repeat("e", limit)
	in := frame("small") + frame(big) + frame(exact) + frame(exact+"1") + frame("after")
	for rname, wrap := range map[string]func(io.Reader) io.Reader{
		"whole": func(r io.Reader) io.Reader { return r }, "one byte": iotest.OneByteReader, "half": iotest.HalfReader,
	} {
		t.Run(rname, func(t *testing.T) {
			fr := NewFrameReader(wrap(strings.NewReader(in)), limit)
			f, err := fr.ReadFrame()
			if err != nil || string(f) != "small" {
				t.Fatalf("first frame %q %v", f, err)
			}
			_, err = fr.ReadFrame()
			var tl *FrameTooLargeError
			if !errors.As(err, &tl) {
				t.Fatalf("want FrameTooLargeError, got %v", err)
			}
			if tl.Size != len(big) || tl.Limit != limit || !strings.HasPrefix(big, string(tl.Head)) || len(tl.Head) == 0 || len(tl.Head) > 4096 {
				t.Errorf("error %+v head %d bytes", tl, len(tl.Head))
			}
			if !strings.Contains(tl.Error(), "9013") {
				t.Errorf("Error() = %q", tl.Error())
			}
			if m, _ := Parse(tl.Head); m.Get("MSH-3") != "BIG" {
				t.Errorf("MSH not readable from Head")
			}
			f, err = fr.ReadFrame()
			if err != nil || string(f) != exact {
				t.Fatalf("frame at the limit: %d bytes, %v", len(f), err)
			}
			if _, err = fr.ReadFrame(); !errors.As(err, &tl) || tl.Size != limit+1 {
				t.Fatalf("limit+1: %v", err)
			}
			f, err = fr.ReadFrame()
			if err != nil || string(f) != "after" {
				t.Fatalf("frame after oversize %q %v", f, err)
			}
			if _, err = fr.ReadFrame(); err != io.EOF {
				t.Fatalf("end: %v", err)
			}
			if fr.Skipped() != 0 {
				t.Errorf("Skipped = %d", fr.Skipped())
			}
			if cap(fr.buf) > limit+1 {
				t.Errorf("buffer grew to %d, limit %d", cap(fr.buf), limit)
			}
		})
	}
	// Oversize and cut: a partial frame.
	fr := NewFrameReader(strings.NewReader("\x0b"+strings.Repeat("z", 5000)), 100)
	if _, err := fr.ReadFrame(); !errors.Is(err, ErrPartialFrame) {
		t.Fatalf("oversize partial: %v", err)
	}
}

// TestFrameMemoryBounded streams a huge frame through a small limit without
// holding it.
func TestFrameMemoryBounded(t *testing.T) {
	const size = 64 << 20
	r := io.MultiReader(strings.NewReader("\x0bMSH|"), io.LimitReader(repeatReader('a'), size), strings.NewReader("\x1c\r"+frame("ok")))
	fr := NewFrameReader(r, 64<<10)
	_, err := fr.ReadFrame()
	var tl *FrameTooLargeError
	if !errors.As(err, &tl) || tl.Size != size+4 {
		t.Fatalf("got %v", err)
	}
	if f, err := fr.ReadFrame(); err != nil || string(f) != "ok" {
		t.Fatalf("next frame %q %v", f, err)
	}
	if cap(fr.buf) > 64<<10+1 {
		t.Errorf("buffer %d", cap(fr.buf))
	}
}

type repeatReader byte

func (r repeatReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r)
	}
	return len(p), nil
}

// TestFrameReaderResumesAfterError: a read error (a deadline) in the middle
// of a frame is returned, and the frame is still read on the next call.
func TestFrameReaderResumesAfterError(t *testing.T) {
	errTimeout := errors.New("timeout")
	r := &scriptReader{steps: []step{{data: "\x0bMSH|pa"}, {err: errTimeout}, {data: "rt\x1c"}, {err: errTimeout}, {data: "\r" + frame("b")}}}
	fr := NewFrameReader(r, 100)
	if _, err := fr.ReadFrame(); err != errTimeout {
		t.Fatalf("want timeout, got %v", err)
	}
	f, err := fr.ReadFrame()
	if err != nil || string(f) != "MSH|part" {
		t.Fatalf("resumed frame %q %v", f, err)
	}
	if _, err := fr.ReadFrame(); err != errTimeout {
		t.Fatalf("want timeout, got %v", err)
	}
	if f, err := fr.ReadFrame(); err != nil || string(f) != "b" {
		t.Fatalf("frame b %q %v", f, err)
	}
	if fr.Skipped() != 0 {
		t.Errorf("Skipped = %d (the CR after 0x1C belongs to the frame)", fr.Skipped())
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("end %v", err)
	}
}

type step struct {
	data string
	err  error
}

type scriptReader struct{ steps []step }

func (s *scriptReader) Read(p []byte) (int, error) {
	if len(s.steps) == 0 {
		return 0, io.EOF
	}
	st := &s.steps[0]
	if st.err != nil {
		err := st.err
		s.steps = s.steps[1:]
		return 0, err
	}
	n := copy(p, st.data)
	st.data = st.data[n:]
	if st.data == "" {
		s.steps = s.steps[1:]
	}
	return n, nil
}

func TestFrameReaderNoProgress(t *testing.T) {
	fr := NewFrameReader(zeroReader{}, 0)
	if _, err := fr.ReadFrame(); err != io.ErrNoProgress {
		t.Fatalf("got %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }

func TestWriteFrame(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte("MSH|x\r")); err != nil {
		t.Fatal(err)
	}
	if err := WriteFrame(&buf, []byte("MSH|y\r")); err != nil {
		t.Fatal(err)
	}
	want := frame("MSH|x\r") + frame("MSH|y\r")
	if buf.String() != want {
		t.Fatalf("wrote %q", buf.String())
	}
	if got := string(AppendFrame([]byte("pre"), []byte("m"))); got != "pre"+frame("m") {
		t.Errorf("AppendFrame = %q", got)
	}
	fr := NewFrameReader(&buf, 0)
	frames, _, final := readAll(fr)
	if len(frames) != 2 || frames[1] != "MSH|y\r" || final != io.EOF {
		t.Errorf("read back %q %v", frames, final)
	}
	for _, bad := range []string{"a\x0bb", "a\x1cb"} {
		if err := WriteFrame(io.Discard, []byte(bad)); !errors.Is(err, ErrFrameContent) {
			t.Errorf("WriteFrame(%q) = %v", bad, err)
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
