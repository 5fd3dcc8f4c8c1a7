package hl7

import (
	"testing"
)

// TestNoAllocations pins the zero-copy promises: reusing a Message to parse
// allocates nothing, and reading positions allocates nothing.
func TestNoAllocations(t *testing.T) {
	full := readFixture(t, "vxu_full.hl7")
	latin := readFixture(t, "vxu_latin1.hl7")
	var m Message
	for _, data := range [][]byte{full, latin} {
		if err := m.Parse(data); err != nil { // warm the tables
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { _ = m.Parse(data) }); n != 0 {
			t.Errorf("Message.Parse allocates %v times per run", n)
		}
	}
	if err := m.Parse(full); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 256)
	var sink int
	reads := testing.AllocsPerRun(100, func() {
		pid, _ := m.Find("PID", 1)
		sink += len(pid.Field(5).Rep(2).Component(1).Raw())
		sink += len(pid.Field(3).Component(4).Sub(2).Raw())
		sink += pid.Field(5).NumReps() + pid.Field(3).Component(4).NumSubs() + m.Count("OBX")
		rxa, _ := m.Find("RXA", 1)
		sink += len(rxa.Field(5).Component(1).Raw()) + rxa.NumFields()
		sink += len(rxa.Name()) + len(m.Segment(m.NumSegments()-1).Name()) // a Z segment too
		buf = pid.Field(5).Component(1).AppendDecoded(buf[:0])             // Müller
		buf = pid.Field(5).Rep(2).Component(1).AppendDecoded(buf)          // O\T\Brien
		buf = m.Segment(12).Field(3).AppendDecoded(buf)                    // NTE with \.br\ and \X41\
		sink += len(buf)
	})
	if reads != 0 {
		t.Errorf("field reads allocate %v times per run", reads)
	}
	if err := m.Parse(latin); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		pid, _ := m.Find("PID", 1)
		buf = pid.Field(5).Component(1).AppendDecoded(buf[:0])
	}); n != 0 {
		t.Errorf("Latin-1 AppendDecoded allocates %v times per run", n)
	}
	if n := testing.AllocsPerRun(100, func() { sink += len(m.Get("PID-5(2)-1")) }); n > 1 {
		t.Errorf("Get allocates %v times per run, want at most 1 (the string)", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecoderFor("8859/1") }); n != 0 {
		t.Errorf("DecoderFor allocates %v times", n)
	}
	_ = sink
}

// TestReset: Reset forgets the message (no bytes, no segments, the default delimiters and
// character set, as Parse(nil) leaves it) without allocating, and the Message parses the next one
// as a new Message would.
func TestReset(t *testing.T) {
	full := readFixture(t, "vxu_full.hl7")
	latin := readFixture(t, "vxu_latin1.hl7")
	var m Message
	if err := m.Parse(latin); err != nil {
		t.Fatal(err)
	}
	m.Reset()
	var empty Message
	_ = empty.Parse(nil)
	if m.Bytes() != nil || m.NumSegments() != 0 || m.Delimiters() != empty.Delimiters() ||
		m.Charset() != empty.Charset() || m.CharsetError() != nil || m.Get("MSH-10") != "" {
		t.Errorf("after Reset: %d bytes, %d segments, delimiters %v, charset %q", len(m.Bytes()), m.NumSegments(), m.Delimiters(), m.Charset())
	}
	if n := testing.AllocsPerRun(100, func() { m.Reset() }); n != 0 {
		t.Errorf("Reset allocates %v times per run", n)
	}
	if err := m.Parse(full); err != nil {
		t.Fatal(err)
	}
	fresh, err := Parse(full)
	if err != nil {
		t.Fatal(err)
	}
	if m.NumSegments() != fresh.NumSegments() || m.Get("PID-5-1") != fresh.Get("PID-5-1") || m.Charset() != fresh.Charset() {
		t.Errorf("parsed after Reset: %d segments, PID-5-1 %q, want %d, %q", m.NumSegments(), m.Get("PID-5-1"), fresh.NumSegments(), fresh.Get("PID-5-1"))
	}
}
