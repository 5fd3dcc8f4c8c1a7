package hl7_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/vaxgate/vaxgate/hl7"
)

func Example() {
	data := []byte("MSH|^~\\&|EHR|Clinic|IIS|State|20240115||VXU^V04^VXU_V04|CTL-1|P|2.5.1\r" +
		"PID|1||MR-1^^^Clinic^MR||O\\T\\Brien^Seán^^^^^L||20230102|M\r" +
		"RXA|0|1|20240115||08^Hep B^CVX|0.5|mL^mL^UCUM\r")
	var m hl7.Message // reuse one Message per connection: no allocation per parse
	if err := m.Parse(data); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(m.Get("MSH-9-1"), m.Get("MSH-9-2"), m.Get("MSH-10"))

	pid, _ := m.Find("PID", 1)
	name := pid.Field(5)
	fmt.Printf("%s, %s (raw %s)\n", name.Component(1), name.Component(2), name.Component(1).Raw())

	for i := range m.NumSegments() {
		if s := m.Segment(i); s.Is("RXA") {
			fmt.Println("vaccine", s.Field(5).Component(1), "given", s.Field(3))
		}
	}
	// Output:
	// VXU V04 CTL-1
	// O&Brien, Seán (raw O\T\Brien)
	// vaccine 08 given 20240115
}

func ExampleParse_error() {
	_, err := hl7.Parse([]byte("MSH|^~\\&|EHR|||||||CTL-2\rPID|1\rnot a segment\r"))
	var pe *hl7.ParseError
	if errors.As(err, &pe) && errors.Is(err, hl7.ErrSegmentName) {
		fmt.Printf("segment index %d, byte %d: %v\n", pe.SegmentIndex, pe.Offset, pe.Err)
	}
	// Output:
	// segment index 2, byte 31: malformed segment name
}

func ExampleBuilder() {
	b := hl7.NewBuilder(hl7.DefaultDelimiters)
	b.Segment("MSH", hl7.Text("IIS"), hl7.Text("State"), hl7.Text("EHR"), hl7.Text("Clinic"),
		hl7.Text("20240115"), hl7.Value{}, hl7.Comps("ACK", "V04", "ACK"), hl7.Text("ACK-1"),
		hl7.Text("P"), hl7.Text("2.5.1"))
	b.Segment("MSA", hl7.Text("AE"), hl7.Text("CTL-1"))
	b.Segment("ERR", hl7.Value{}, hl7.Comps("PID", "1", "5"), hl7.Comps("101", "Required field missing", "HL70357"),
		hl7.Text("W"), hl7.Value{}, hl7.Value{}, hl7.Value{}, hl7.Text("Name & suffix missing | check ^"))
	fmt.Printf("%q\n", b.Bytes())
	// Output:
	// "MSH|^~\\&|IIS|State|EHR|Clinic|20240115||ACK^V04^ACK|ACK-1|P|2.5.1\rMSA|AE|CTL-1\rERR||PID^1^5|101^Required field missing^HL70357|W||||Name \\T\\ suffix missing \\F\\ check \\S\\\r"
}

func ExampleFrameReader() {
	var conn bytes.Buffer // stands for a net.Conn
	conn.WriteString("noise")
	_ = hl7.WriteFrame(&conn, []byte("MSH|^~\\&|A\r"))
	_ = hl7.WriteFrame(&conn, []byte("MSH|^~\\&|B\r"))

	fr := hl7.NewFrameReader(&conn, 4<<20)
	for {
		msg, err := fr.ReadFrame()
		var tooLarge *hl7.FrameTooLargeError
		switch {
		case err == io.EOF:
			fmt.Println("skipped", fr.Skipped(), "bytes")
			return
		case errors.As(err, &tooLarge):
			continue // answer AR from tooLarge.Head, then go on
		case err != nil:
			fmt.Println(err)
			return
		}
		m, _ := hl7.Parse(msg) // msg is valid until the next ReadFrame
		fmt.Println(m.Get("MSH-3"))
	}
	// Output:
	// A
	// B
	// skipped 5 bytes
}

func ExampleSplitBatch() {
	file := []byte("FHS|^~\\&\nBHS|^~\\&\nMSH|^~\\&|A\nPID|1\nMSH|^~\\&|B\nBTS|3\nFTS|1\n")
	b, err := hl7.SplitBatch(file)
	var count *hl7.BatchCountError
	if errors.As(err, &count) {
		fmt.Println("warning:", err)
	}
	for _, msg := range b.Messages {
		fmt.Printf("%q\n", msg)
	}
	// Output:
	// warning: hl7: BTS-1 declares "3" messages, found 2
	// "MSH|^~\\&|A\rPID|1\r"
	// "MSH|^~\\&|B\r"
}
