// Package parser compares vaxgate's HL7 parser with github.com/lenaten/hl7 on the shared VXU corpus,
// in the same `go test -bench` run, reading the fields the intake pipeline reads first: message
// type, control ID, sending facility, patient identifier, name (decoded), birth date and sex, and
// every RXA's date, vaccine code and manufacturer. One op is one message.
//
//	cd bench/parser && go test -run '^$' -bench Parse -benchmem
package parser

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	lenaten "github.com/lenaten/hl7"

	"github.com/vaxgate/vaxgate/hl7"
)

// corpus returns the shared VXU sample messages in wire format (CR between segments).
func corpus(tb testing.TB) [][]byte {
	files, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "corpus", "vxu", "*.hl7"))
	if len(files) == 0 {
		tb.Skip("../shared/corpus/vxu not found: the benchmark runs where the shared corpus is beside the repository")
	}
	var msgs [][]byte
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		raw = bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\r")), []byte("\n"), []byte("\r"))
		raw = bytes.TrimRight(raw, "\r")
		// Keep the messages lenaten can parse at all, so that both parsers do the same work.
		probe := make([]byte, len(raw), len(raw)+2)
		copy(probe, raw)
		if err := lenaten.NewMessage(probe).Parse(); err != nil {
			continue
		}
		msgs = append(msgs, raw)
	}
	if len(msgs) == 0 {
		tb.Fatal("no corpus message parses with lenaten/hl7")
	}
	return msgs
}

// readVaxgate reads the pipeline's first fields from a parsed message.
func readVaxgate(m *hl7.Message, buf []byte) (int, []byte) {
	sink := 0
	msh := m.Segment(0)
	sink += len(msh.Field(9).Component(1).Raw()) + len(msh.Field(9).Component(2).Raw())
	sink += len(msh.Field(10).Raw()) + len(msh.Field(4).Component(1).Raw())
	if pid, ok := m.Find("PID", 1); ok {
		sink += len(pid.Field(3).Component(1).Raw()) + len(pid.Field(7).Raw()) + len(pid.Field(8).Raw())
		buf = pid.Field(5).Component(1).AppendDecoded(buf[:0])
		buf = pid.Field(5).Component(2).AppendDecoded(buf)
		sink += len(buf)
	}
	for n := 1; ; n++ {
		rxa, ok := m.Find("RXA", n)
		if !ok {
			break
		}
		sink += len(rxa.Field(3).Raw()) + len(rxa.Field(5).Component(1).Raw()) + len(rxa.Field(17).Component(1).Raw())
	}
	return sink, buf
}

var lenatenPaths = []string{"MSH.9.0", "MSH.9.1", "MSH.10", "MSH.4.0", "PID.3.0", "PID.7", "PID.8", "PID.5.0", "PID.5.1"}

// readLenaten reads the same fields with lenaten's query paths (components numbered from 0).
func readLenaten(m *lenaten.Message) int {
	sink := 0
	for _, p := range lenatenPaths {
		v, _ := m.Find(p)
		sink += len(v)
	}
	rxas, _ := m.AllSegments("RXA")
	for _, s := range rxas {
		for _, p := range []string{"RXA.3", "RXA.5.0", "RXA.17.0"} {
			v, _ := s.Get(lenaten.NewLocation(p))
			sink += len(v)
		}
	}
	return sink
}

func BenchmarkParse(b *testing.B) {
	msgs := corpus(b)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	avg := int64(total / len(msgs))
	b.Logf("corpus: %d messages from ../shared/corpus/vxu, %d bytes on average", len(msgs), avg)

	// As the pipeline parses: one Message per worker, reused for every message.
	b.Run("vaxgate", func(b *testing.B) {
		b.SetBytes(avg)
		b.ReportAllocs()
		var m hl7.Message
		buf := make([]byte, 0, 256)
		sink, n := 0, 0
		for i := 0; b.Loop(); i++ {
			if err := m.Parse(msgs[i%len(msgs)]); err != nil {
				b.Fatal(err)
			}
			n, buf = readVaxgate(&m, buf)
			sink += n
		}
		_ = sink
	})

	// A fresh Message per message (hl7.Parse), for comparison.
	b.Run("vaxgate-fresh", func(b *testing.B) {
		b.SetBytes(avg)
		b.ReportAllocs()
		buf := make([]byte, 0, 256)
		sink, n := 0, 0
		for i := 0; b.Loop(); i++ {
			m, err := hl7.Parse(msgs[i%len(msgs)])
			if err != nil {
				b.Fatal(err)
			}
			n, buf = readVaxgate(m, buf)
			sink += n
		}
		_ = sink
	})

	// lenaten needs two bytes of spare capacity past the message (see the baselines README);
	// the copy that provides them is made once, outside the timed loop.
	padded := make([][]byte, len(msgs))
	for i, m := range msgs {
		padded[i] = make([]byte, len(m), len(m)+2)
		copy(padded[i], m)
	}
	b.Run("lenaten", func(b *testing.B) {
		b.SetBytes(avg)
		b.ReportAllocs()
		sink := 0
		for i := 0; b.Loop(); i++ {
			m := lenaten.NewMessage(padded[i%len(padded)])
			if err := m.Parse(); err != nil {
				b.Fatal(err)
			}
			sink += readLenaten(m)
		}
		_ = sink
	})
}

// TestSameFields checks that both parsers see the same values, so that the benchmark compares
// like with like (on ASCII fields: lenaten counts bytes of UTF-8 text wrongly and does not unescape).
func TestSameFields(t *testing.T) {
	for _, raw := range corpus(t) {
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		padded := make([]byte, len(raw), len(raw)+2)
		copy(padded, raw)
		l := lenaten.NewMessage(padded)
		if err := l.Parse(); err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"MSH.9.0": m.Segment(0).Field(9).Component(1).String(),
			"MSH.10":  m.Segment(0).Field(10).String(),
		}
		if pid, ok := m.Find("PID", 1); ok {
			want["PID.3.0"] = pid.Field(3).Component(1).String()
			want["PID.7"] = pid.Field(7).String()
		}
		for path, v := range want {
			got, _ := l.Find(path)
			if got != v {
				t.Errorf("%s: lenaten %q, vaxgate %q", path, got, v)
			}
		}
	}
}
