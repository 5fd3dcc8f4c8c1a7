package hl7

import (
	"errors"
	"strings"
	"testing"
)

func TestSplitMessages(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"blank", "\n\r\n  \n", nil},
		{"one LF", "MSH|a\nPID|1\n", []string{"MSH|a\rPID|1\r"}},
		{"two CRLF", "MSH|a\r\nPID|1\r\nMSH|b\r\nPID|2", []string{"MSH|a\rPID|1\r", "MSH|b\rPID|2\r"}},
		{"CR and blank lines", "\r\rMSH|a\r\rPID|1\r\r\rMSH|b\r", []string{"MSH|a\rPID|1\r", "MSH|b\r"}},
		{"indented", "  MSH|a\n\tPID|1\n", []string{"MSH|a\rPID|1\r"}},
		{"envelope dropped", "FHS|^~\\&\nBHS|^~\\&\nMSH|a\nBTS|1\nFTS|1\n", []string{"MSH|a\r"}},
		{"BOM", "\xEF\xBB\xBFMSH|a\n", []string{"MSH|a\r"}},
		{"alt delimiters", "MSH$%*!@$a\nPID$1\nMSH#^~\\&#b\n", []string{"MSH$%*!@$a\rPID$1\r", "MSH#^~\\&#b\r"}},
		{"lines before MSH kept apart", "PID|orphan\nMSH|a\n", []string{"PID|orphan\r", "MSH|a\r"}},
		{"MSHX is not MSH", "MSH|a\nMSHX|b\n", []string{"MSH|a\rMSHX|b\r"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitMessages([]byte(tt.in))
			var gs []string
			for _, m := range got {
				gs = append(gs, string(m))
			}
			if !equalStrings(gs, tt.want) {
				t.Errorf("got %q, want %q", gs, tt.want)
			}
			// The messages are independent slices: appending to one does
			// not overwrite the next.
			if len(got) > 1 {
				_ = append(got[0], "XXXX"...)
				if string(got[1]) != tt.want[1] {
					t.Errorf("append to message 0 changed message 1")
				}
			}
		})
	}
}

func TestSplitBatch(t *testing.T) {
	b, err := SplitBatch(readFixture(t, "batch_two.hl7"))
	if err != nil {
		t.Fatalf("err %v", err)
	}
	if len(b.Messages) != 2 || string(b.BTS) != "BTS|2" || string(b.FTS) != "FTS|1" ||
		!strings.HasPrefix(string(b.FHS), "FHS|^~\\&|BATCHEHR") || !strings.HasPrefix(string(b.BHS), "BHS|") {
		t.Fatalf("batch %q %q %q %q, %d messages", b.FHS, b.BHS, b.BTS, b.FTS, len(b.Messages))
	}
	for i, id := range []string{"B-1", "B-2"} {
		m := mustParse(t, b.Messages[i])
		if m.Get("MSH-10") != id || m.NumSegments() != 3 {
			t.Errorf("message %d: %q, %d segments", i, m.Get("MSH-10"), m.NumSegments())
		}
	}

	tests := []struct {
		name string
		in   string
		msgs int
		errs []BatchCountError
	}{
		{"no envelope", "MSH|a\nMSH|b\n", 2, nil},
		{"count ok", "BHS|^~\\&\nMSH|a\nBTS|1\n", 1, nil},
		{"count empty", "BHS|^~\\&\nMSH|a\nBTS||x\n", 1, nil},
		{"count mismatch", "BHS|^~\\&\nMSH|a\nBTS|3|\n", 1, []BatchCountError{{"BTS", "3", 1}}},
		{"count not a number", "BHS|^~\\&\nMSH|a\nBTS|one\n", 1, []BatchCountError{{"BTS", "one", 1}}},
		{"two batches", "FHS|^~\\&\nBHS|^~\\&\nMSH|a\nBTS|1\nBHS|^~\\&\nMSH|b\nMSH|c\nBTS|2\nFTS|2\n", 3, nil},
		{"two batches wrong", "FHS|^~\\&\nBHS|^~\\&\nMSH|a\nBTS|2\nBHS|^~\\&\nMSH|b\nBTS|1\nFTS|1\n", 2,
			[]BatchCountError{{"BTS", "2", 1}, {"FTS", "1", 2}}},
		{"other separator", "BHS$%*!@\nMSH$%*!@\nBTS$1$\n", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := SplitBatch([]byte(tt.in))
			if b == nil || len(b.Messages) != tt.msgs {
				t.Fatalf("batch %v", b)
			}
			var got []BatchCountError
			if err != nil {
				var errs []error
				if j, ok := err.(interface{ Unwrap() []error }); ok {
					errs = j.Unwrap()
				} else {
					errs = []error{err}
				}
				for _, e := range errs {
					var ce *BatchCountError
					if !errors.As(e, &ce) {
						t.Fatalf("error %T %v", e, e)
					}
					got = append(got, *ce)
					if !strings.Contains(ce.Error(), ce.Segment+"-1") {
						t.Errorf("Error() = %q", ce.Error())
					}
				}
			}
			if len(got) != len(tt.errs) {
				t.Fatalf("errors %v, want %v", got, tt.errs)
			}
			for i := range got {
				if got[i] != tt.errs[i] {
					t.Errorf("error %d = %+v, want %+v", i, got[i], tt.errs[i])
				}
			}
		})
	}
}
