package file

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/vaxgate/vaxgate/hl7"
)

func splitAll(t testing.TB, r io.Reader, offset int64, max int) ([]Message, *Splitter, error) {
	t.Helper()
	s := NewSplitter(r, offset, max)
	var out []Message
	for range 100000 {
		m, err := s.Next()
		if errors.Is(err, io.EOF) {
			return out, s, nil
		}
		if err != nil {
			return out, s, err
		}
		out = append(out, m)
	}
	t.Fatal("splitter did not end")
	return nil, nil, nil
}

func msg(id string) string {
	return "MSH|^~\\&|EHR|FAC-A|vaxgate|REG|20240101||VXU^V04^VXU_V04|" + id + "|P|2.5.1\nPID|1||" + id + "^^^MR\nRXA|0|1|20240101|20240101|08^HepB^CVX|0.5\n"
}

func TestSplitterLineEndings(t *testing.T) {
	plain := msg("A1") + msg("A2") + "\n\n" + msg("A3")
	for name, eol := range map[string]string{"LF": "\n", "CR": "\r", "CRLF": "\r\n"} {
		t.Run(name, func(t *testing.T) {
			in := strings.ReplaceAll(plain, "\n", eol)
			msgs, s, err := splitAll(t, strings.NewReader(in), 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 3 {
				t.Fatalf("%d messages, want 3", len(msgs))
			}
			for i, m := range msgs {
				want := strings.ReplaceAll(msg("A"+string(rune('1'+i))), "\n", "\r")
				if string(m.Data) != want {
					t.Errorf("message %d = %q, want %q", i, m.Data, want)
				}
				// The offsets delimit the message in the input.
				again := hl7.SplitMessages([]byte(in[m.Start:m.End]))
				if len(again) != 1 || string(again[0]) != want {
					t.Errorf("message %d: input[%d:%d] = %q", i, m.Start, m.End, in[m.Start:m.End])
				}
			}
			if string(s.EOL()) != eol {
				t.Errorf("EOL = %q, want %q", s.EOL(), eol)
			}
			if msgs[2].End != int64(len(in)) {
				t.Errorf("last message ends at %d, input is %d bytes", msgs[2].End, len(in))
			}
			if env := s.Envelope(); env.Batch() {
				t.Errorf("plain messages seen as a batch: %+v", env)
			}
		})
	}
}

func TestSplitterBatch(t *testing.T) {
	in := "\xEF\xBB\xBF\n  FHS|^~\\&|EHR|FAC-A|vaxgate|REG|20240101||f.hl7||F-1\nBHS|^~\\&|EHR|FAC-A|vaxgate|REG|20240101||||B-1\n" +
		msg("B1") + msg("B2") + "BTS|2\nFTS|1\n"
	msgs, s, err := splitAll(t, strings.NewReader(in), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	env := s.Envelope()
	if !env.Batch() || env.Files != 1 || env.Batches != 1 ||
		!strings.HasPrefix(string(env.FHS), "FHS|") || !strings.HasPrefix(string(env.BHS), "BHS|") {
		t.Errorf("envelope = %+v", env)
	}
	if got := string(msgs[1].Data); strings.Contains(got, "BTS") {
		t.Errorf("trailer inside a message: %q", got)
	}
}

func TestSplitterNotHL7(t *testing.T) {
	for name, in := range map[string]string{
		"text":      "Dear registry,\nplease find our shots attached.\n",
		"binary":    "MSH\x00\x01\x02garbage",
		"csv":       "patient_id,first,last\n1,A,B\n",
		"PID first": "PID|1||123^^^MR\n",
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := splitAll(t, strings.NewReader(in), 0, 0)
			if !errors.Is(err, ErrNotHL7) {
				t.Fatalf("err = %v, want ErrNotHL7", err)
			}
		})
	}
	// Blank: no error from the splitter, no message either (Process reports it).
	msgs, _, err := splitAll(t, strings.NewReader("\n\r\n  \n"), 0, 0)
	if err != nil || len(msgs) != 0 {
		t.Errorf("blank input: %d messages, %v", len(msgs), err)
	}
}

// A message or a line over the limit is reported by its size with its MSH only, never buffered;
// the messages after it are intact.
func TestSplitterOversize(t *testing.T) {
	big := "MSH|^~\\&|EHR|FAC-A|vaxgate|REG|20240101||VXU^V04^VXU_V04|BIG|P|2.5.1\nOBX|1|ED|" + strings.Repeat("x", 300<<10) + "\nNTE|1\n"
	in := msg("S1") + big + msg("S2") + strings.Repeat("Z", 200<<10) // a last line without end, too long
	msgs, _, err := splitAll(t, iotest.HalfReader(strings.NewReader(in)), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(msgs) != 3 {
		t.Fatalf("%d messages, want 3", len(msgs))
	}
	if msgs[0].TooLarge != 0 {
		t.Errorf("first message marked too large")
	}
	b := msgs[1]
	if b.TooLarge != len(big) {
		t.Errorf("TooLarge = %d, want %d", b.TooLarge, len(big))
	}
	if !strings.HasPrefix(string(b.Data), "MSH|") || strings.Contains(string(b.Data), "OBX") || len(b.Data) > 1000 {
		t.Errorf("head of the large message = %q", b.Data[:min(len(b.Data), 100)])
	}
	if got := ReadControlID(b.Data); got != "BIG" {
		t.Errorf("head control ID %q", got)
	}
	if msgs[2].TooLarge == 0 {
		t.Errorf("message S2 with a 200 KiB trailing line not marked too large")
	}
	if msgs[2].End != int64(len(in)) {
		t.Errorf("last End = %d, want %d", msgs[2].End, len(in))
	}
}

// ReadControlID is MSH-10 of a message, for tests.
func ReadControlID(m []byte) string {
	p, err := hl7.Parse(m)
	if err != nil {
		return ""
	}
	return p.Get("MSH-10")
}

// Splitting again from any message's End gives the rest of the messages: what resuming relies on.
func TestSplitterResume(t *testing.T) {
	in := "BHS|^~\\&|EHR|FAC-A\r\n" + strings.ReplaceAll(msg("R1")+msg("R2")+msg("R3")+msg("R4"), "\n", "\r\n") + "BTS|4\r\n"
	all, _, err := splitAll(t, strings.NewReader(in), 0, 0)
	if err != nil || len(all) != 4 {
		t.Fatalf("%d messages, %v", len(all), err)
	}
	for i, m := range all {
		rest, _, err := splitAll(t, strings.NewReader(in[m.End:]), m.End, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(rest) != len(all)-i-1 {
			t.Fatalf("from message %d: %d messages, want %d", i, len(rest), len(all)-i-1)
		}
		for k, r := range rest {
			w := all[i+1+k]
			if !bytes.Equal(r.Data, w.Data) || r.Start != w.Start || r.End != w.End {
				t.Errorf("from message %d, message %d differs", i, k)
			}
		}
	}
}

// One byte at a time or in one read: the same messages.
func TestSplitterReadSizes(t *testing.T) {
	in := strings.Repeat(msg("X"), 50)
	a, _, err := splitAll(t, strings.NewReader(in), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := splitAll(t, iotest.OneByteReader(strings.NewReader(in)), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 50 || len(b) != 50 {
		t.Fatalf("%d and %d messages", len(a), len(b))
	}
	for i := range a {
		if !bytes.Equal(a[i].Data, b[i].Data) || a[i].End != b[i].End {
			t.Fatalf("message %d differs", i)
		}
	}
}

func TestSplitterReadError(t *testing.T) {
	r := io.MultiReader(strings.NewReader(msg("E1")), iotest.ErrReader(errors.New("disk gone")))
	_, _, err := splitAll(t, r, 0, 0)
	if err == nil || !strings.Contains(err.Error(), "disk gone") {
		t.Errorf("err = %v", err)
	}
}
