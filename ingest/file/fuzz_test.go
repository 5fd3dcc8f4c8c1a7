package file

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/vaxgate/vaxgate/hl7"
)

// FuzzSplitter: the splitter decodes files from outside. On any input and limit it never panics,
// its offsets are ordered and inside the input, no message holds more than the limit (an oversize
// one only its head), resuming at any message's End gives the rest, and on well-formed input it
// splits exactly as hl7.SplitMessages does.
func FuzzSplitter(f *testing.F) {
	f.Add([]byte(msg("A")+msg("B")), 0)
	f.Add([]byte("FHS|^~\\&|A\rBHS|^~\\&\r"+msg("C")+"BTS|1\rFTS|1\r"), 64)
	f.Add([]byte("\xEF\xBB\xBF\r\n MSH|^~\\&\r\nPID\r\n\r\nMSH|x\rjunk"), 10)
	f.Add([]byte("hello\x00"), 0)
	f.Fuzz(func(t *testing.T, data []byte, lim int) {
		limit := lim % (1 << 16)
		if limit < 0 {
			limit = -limit
		}
		var msgs []Message
		s := NewSplitter(iotest.HalfReader(bytes.NewReader(data)), 0, limit)
		eff := limit
		if eff <= 0 {
			eff = 4 << 20
		}
		for range len(data) + 2 {
			m, err := s.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrNotHL7) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if m.TooLarge == 0 && len(m.Data) > eff {
				t.Fatalf("message of %d bytes over the limit %d", len(m.Data), eff)
			}
			if m.TooLarge > 0 && len(m.Data) > max(eff, headLimit)+1 {
				t.Fatalf("head of an oversize message is %d bytes", len(m.Data))
			}
			if m.Start > m.End || m.End > int64(len(data)) || len(msgs) > 0 && m.Start < msgs[len(msgs)-1].End {
				t.Fatalf("offsets %d..%d out of order (input %d bytes)", m.Start, m.End, len(data))
			}
			msgs = append(msgs, m)
		}
		for i, m := range msgs {
			rest := NewSplitter(bytes.NewReader(data[m.End:]), m.End, limit)
			for k := i + 1; k < len(msgs); k++ {
				r, err := rest.Next()
				if err != nil || !bytes.Equal(r.Data, msgs[k].Data) || r.End != msgs[k].End {
					t.Fatalf("resuming after message %d: message %d differs (%v)", i, k, err)
				}
			}
			if _, err := rest.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("resuming after message %d: more messages than the first pass", i)
			}
		}
		if limit == 0 && bytes.HasPrefix(data, []byte("MSH")) && bytes.IndexByte(data, 0) < 0 {
			want := hl7.SplitMessages(data)
			if len(want) != len(msgs) {
				t.Fatalf("%d messages, hl7.SplitMessages finds %d", len(msgs), len(want))
			}
			for i := range want {
				if !bytes.Equal(want[i], msgs[i].Data) {
					t.Fatalf("message %d = %q, hl7.SplitMessages %q", i, msgs[i].Data, want[i])
				}
			}
		}
	})
}
