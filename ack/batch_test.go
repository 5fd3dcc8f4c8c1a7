package ack

import (
	"errors"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/hl7"
)

const batchIn = "FHS|^~\\&|EHR|FAC-A||STATE IIS|20240310||||F-77\r" +
	"BHS|^~\\&|EHR|FAC-A^1.2^ISO|IIS|STATE IIS|20240310||||B-12\r" +
	vxu + "BTS|1\rFTS|1\r"

func TestBatchEnvelope(t *testing.T) {
	in, err := hl7.SplitBatch([]byte(batchIn))
	if err != nil || len(in.Messages) != 1 {
		t.Fatalf("split: %v, %d messages", err, len(in.Messages))
	}
	b := newTestBuilder()
	h := BatchHeaderOf(in)
	m := mustParse(t, in.Messages[0])
	acks := [][]byte{b.Build(HeaderOf(m), AA, nil), b.Reject(HeaderOf(m), Finding{Code: CodeUnsupportedVersion, Severity: Error, Text: "2.4"})}
	acks[1] = acks[1][:len(acks[1])-1] // a missing final CR is added
	out := b.BatchEnvelope(h, acks)

	if strings.Contains(string(out), "\n") || !strings.HasSuffix(string(out), "\r") {
		t.Errorf("segments must end in CR only: %q", out)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\r"), "\r")
	if !strings.HasPrefix(lines[0], "FHS|^~\\&|IIS|STATE IIS|EHR|FAC-A^1.2^ISO|20240310101500-0500||||") || !strings.HasSuffix(lines[0], "|F-77") {
		t.Errorf("FHS = %q", lines[0])
	}
	if !strings.HasPrefix(lines[1], "BHS|^~\\&|IIS|STATE IIS|EHR|FAC-A^1.2^ISO|20240310101500-0500||||") || !strings.HasSuffix(lines[1], "|B-12") {
		t.Errorf("BHS = %q", lines[1])
	}
	if got := lines[len(lines)-2:]; got[0] != "BTS|2|AA 1, AE 0, AR 1" || got[1] != "FTS|1" {
		t.Errorf("trailer = %q", got)
	}
	back, err := hl7.SplitBatch(out)
	if err != nil {
		t.Fatalf("the answer's own counts disagree: %v", err)
	}
	if len(back.Messages) != 2 {
		t.Fatalf("%d ACKs in the envelope, want 2", len(back.Messages))
	}
	for i, want := range []string{AA, AR} {
		if a := mustParse(t, back.Messages[i]); a.Get("MSA-1") != want || a.Get("MSA-2") != "CTRL-9" {
			t.Errorf("ACK %d: MSA %q %q", i+1, a.Get("MSA-1"), a.Get("MSA-2"))
		}
	}
	// BHS-11 and FHS-11 are control IDs of their own.
	if f, bh := strings.Split(lines[0], "|")[10], strings.Split(lines[1], "|")[10]; f == "" || bh == "" || f == bh {
		t.Errorf("FHS-11 %q, BHS-11 %q", f, bh)
	}

	t.Run("BHS only", func(t *testing.T) {
		in, _ := hl7.SplitBatch([]byte("BHS|^~\\&|EHR|FAC-A|||20240310||||B-1\r" + vxu + "BTS|3\r"))
		h := BatchHeaderOf(in)
		h.Comment = "BTS-1 declared 3 messages, 1 found"
		out := string(b.BatchEnvelope(h, acks[:1]))
		if strings.Contains(out, "FHS") || strings.Contains(out, "FTS") || !strings.HasPrefix(out, "BHS|^~\\&|vaxgate|STATEIIS|EHR|FAC-A|") {
			t.Errorf("answer %q", out)
		}
		if !strings.HasSuffix(out, "\rBTS|1|AA 1, AE 0, AR 0; BTS-1 declared 3 messages, 1 found\r") {
			t.Errorf("trailer of %q", out)
		}
	})
	t.Run("other delimiters", func(t *testing.T) {
		in, _ := hl7.SplitBatch([]byte("BHS$%*!@$EHR$FAC%X$$$2024$$$$B|7\rBTS$0\r"))
		out := string(b.BatchEnvelope(BatchHeaderOf(in), nil))
		if !strings.HasPrefix(out, "BHS|^~\\&|vaxgate|STATEIIS|EHR|FAC^X|") || !strings.HasSuffix(out, "|B\\F\\7\rBTS|0|AA 0, AE 0, AR 0\r") {
			t.Errorf("answer %q", out)
		}
	})
}

// FuzzBatchEnvelope: whatever envelope a sender writes, the answer is a well-formed batch whose
// counts hold and whose ACKs parse.
func FuzzBatchEnvelope(f *testing.F) {
	f.Add([]byte(batchIn))
	f.Add([]byte("BHS$%*!@$EHR$FAC%X$$$2024$$$$B|7\rBTS$0\r"))
	f.Add([]byte("FHS|\rBHS|^^^^|\r" + vxu + "BTS|x\rFTS|\r"))
	f.Add([]byte("FHS"))
	b := newTestBuilder()
	a := b.Build(HeaderOf(mustParseF(f, []byte(vxu))), AA, nil)
	f.Fuzz(func(t *testing.T, raw []byte) {
		in, _ := hl7.SplitBatch(raw)
		out := b.BatchEnvelope(BatchHeaderOf(in), [][]byte{a, a})
		back, err := hl7.SplitBatch(out)
		var ce *hl7.BatchCountError
		if errors.As(err, &ce) || err != nil {
			t.Fatalf("answer's counts: %v\n%q", err, out)
		}
		if len(back.Messages) != 2 || back.BHS == nil || back.BTS == nil {
			t.Fatalf("answer %q", out)
		}
		for _, m := range back.Messages {
			if _, err := hl7.Parse(m); err != nil {
				t.Fatalf("ACK in the answer does not parse: %v", err)
			}
		}
	})
}

func mustParseF(f *testing.F, b []byte) *hl7.Message {
	m, err := hl7.Parse(b)
	if err != nil {
		f.Fatal(err)
	}
	return m
}
