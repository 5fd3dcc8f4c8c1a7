package hl7

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// benchCorpus returns the VXU messages to benchmark on, in wire format: the
// shared public corpus when present, else this package's own fixtures.
func benchCorpus(b *testing.B) (msgs [][]byte, source string) {
	files, _ := filepath.Glob(filepath.Join(sharedDir, "corpus", "vxu", "*.hl7"))
	source = "../shared/corpus/vxu"
	if len(files) == 0 {
		files = []string{filepath.Join("testdata", "vxu_full.hl7"), filepath.Join("testdata", "vxu_altdelim.hl7"), filepath.Join("testdata", "vxu_latin1.hl7")}
		source = "testdata"
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, wire(raw))
	}
	return msgs, source
}

// BenchmarkParse parses each message of the VXU corpus in turn and reads the
// handful of fields a pipeline reads first (type, control ID, patient
// identifier, name, birth date, vaccine codes and dates); one op is one
// message. The baseline is a naive parser that splits everything into
// strings (github.com/lenaten/hl7, the baseline the spec names, cannot be
// fetched through the module proxy; see the package report).
func BenchmarkParse(b *testing.B) {
	msgs, source := benchCorpus(b)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	b.Logf("corpus: %d messages from %s, %d bytes on average", len(msgs), source, total/len(msgs))

	b.Run("vaxgate", func(b *testing.B) {
		b.SetBytes(int64(total / len(msgs)))
		b.ReportAllocs()
		var m Message
		buf := make([]byte, 0, 256)
		sink := 0
		for i := 0; b.Loop(); i++ {
			if err := m.Parse(msgs[i%len(msgs)]); err != nil {
				b.Fatal(err)
			}
			msh := m.Segment(0)
			sink += len(msh.Field(9).Component(1).Raw()) + len(msh.Field(9).Component(2).Raw()) + len(msh.Field(10).Raw())
			pid, _ := m.Find("PID", 1)
			sink += len(pid.Field(3).Component(1).Raw()) + len(pid.Field(7).Raw())
			buf = pid.Field(5).Component(1).AppendDecoded(buf[:0])
			buf = pid.Field(5).Component(2).AppendDecoded(buf)
			for n := 1; ; n++ {
				rxa, ok := m.Find("RXA", n)
				if !ok {
					break
				}
				sink += len(rxa.Field(3).Raw()) + len(rxa.Field(5).Component(1).Raw())
			}
			sink += len(buf)
		}
		_ = sink
	})

	b.Run("naive-split", func(b *testing.B) {
		b.SetBytes(int64(total / len(msgs)))
		b.ReportAllocs()
		sink := 0
		for i := 0; b.Loop(); i++ {
			segs := naiveParse(msgs[i%len(msgs)])
			msh := naiveFind(segs, "MSH", 1)
			// MSH-n is at index n-1 once "MSH" and MSH-1 are accounted for.
			sink += len(naiveComp(msh, 8, 1)) + len(naiveComp(msh, 8, 2)) + len(naiveComp(msh, 9, 1))
			pid := naiveFind(segs, "PID", 1)
			sink += len(naiveComp(pid, 3, 1)) + len(naiveComp(pid, 7, 1))
			sink += len(naiveComp(pid, 5, 1)) + len(naiveComp(pid, 5, 2))
			for n := 1; ; n++ {
				rxa := naiveFind(segs, "RXA", n)
				if rxa == nil {
					break
				}
				sink += len(naiveComp(rxa, 3, 1)) + len(naiveComp(rxa, 5, 1))
			}
		}
		_ = sink
	})
}

// naiveParse is the straightforward parser many integrations start with:
// split the message into segments, fields and components, all as strings.
func naiveParse(data []byte) [][][]string {
	text := strings.ReplaceAll(strings.ReplaceAll(string(data), "\r\n", "\r"), "\n", "\r")
	var segs [][][]string
	for _, line := range strings.Split(text, "\r") {
		if line == "" {
			continue
		}
		var fields [][]string
		for _, f := range strings.Split(line, "|") {
			fields = append(fields, strings.Split(f, "^"))
		}
		segs = append(segs, fields)
	}
	return segs
}

func naiveFind(segs [][][]string, name string, occurrence int) [][]string {
	for _, s := range segs {
		if len(s) > 0 && len(s[0]) > 0 && s[0][0] == name {
			occurrence--
			if occurrence == 0 {
				return s
			}
		}
	}
	return nil
}

func naiveComp(seg [][]string, field, comp int) string {
	if field >= len(seg) || comp > len(seg[field]) {
		return ""
	}
	return seg[field][comp-1]
}

// BenchmarkFieldRead reads positions and decodes two values from a parsed
// message: it must not allocate.
func BenchmarkFieldRead(b *testing.B) {
	m := mustParse(b, readFixture(b, "vxu_full.hl7"))
	buf := make([]byte, 0, 256)
	sink := 0
	b.ReportAllocs()
	for b.Loop() {
		pid, _ := m.Find("PID", 1)
		sink += len(pid.Field(3).Component(1).Raw())
		sink += len(pid.Field(3).Component(4).Sub(2).Raw())
		rxa, _ := m.Find("RXA", 1)
		sink += len(rxa.Field(5).Component(1).Raw()) + len(rxa.Field(17).Component(1).Raw())
		buf = pid.Field(5).Component(1).AppendDecoded(buf[:0])
		buf = pid.Field(5).Rep(2).Component(1).AppendDecoded(buf)
		sink += len(buf)
	}
	_ = sink
}

// BenchmarkFrameReader reads pipelined frames from memory.
func BenchmarkFrameReader(b *testing.B) {
	msgs, _ := benchCorpus(b)
	var stream []byte
	for _, m := range msgs {
		stream = AppendFrame(stream, m)
	}
	b.SetBytes(int64(len(stream)))
	b.ReportAllocs()
	r := &loopReader{data: stream}
	fr := NewFrameReader(r, 0)
	for b.Loop() {
		r.off = 0
		for range msgs {
			if _, err := fr.ReadFrame(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

type loopReader struct {
	data []byte
	off  int
}

func (r *loopReader) Read(p []byte) (int, error) {
	if r.off == len(r.data) {
		r.off = 0
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}
