package ingest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
)

func TestContentDigest(t *testing.T) {
	base, err := os.ReadFile(filepath.Join("testdata", "vxu_basic.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	d := RawContentDigest(base)
	if len(d) != 32 {
		t.Fatalf("digest %x", d)
	}
	same := map[string][]byte{
		"new MSH-7":      bytes.Replace(base, []byte("|20240310101500-0500|"), []byte("|20250101000000+0000|"), 1),
		"no MSH-7":       bytes.Replace(base, []byte("|20240310101500-0500|"), []byte("||"), 1),
		"CRLF":           bytes.ReplaceAll(base, []byte("\r"), []byte("\r\n")),
		"LF":             bytes.ReplaceAll(base, []byte("\r"), []byte("\n")),
		"blank lines":    bytes.ReplaceAll(base, []byte("\r"), []byte("\r\r")),
		"no final CR":    bytes.TrimRight(base, "\r\n"),
		"leading blanks": append([]byte("\r\n"), base...),
	}
	for name, msg := range same {
		if !bytes.Equal(RawContentDigest(msg), d) {
			t.Errorf("%s: digest changed; a resend may change that", name)
		}
	}
	differ := map[string][]byte{
		"MSH-6":         bytes.Replace(base, []byte("|STATEIIS|"), []byte("|OTHERIIS|"), 1),
		"MSH-8":         bytes.Replace(base, []byte("-0500||VXU"), []byte("-0500|X|VXU"), 1),
		"a name":        bytes.Replace(base, []byte("Jürgen"), []byte("Jurgen"), 1),
		"a lot":         bytes.Replace(base, []byte("LOT123A"), []byte("LOT123B"), 1),
		"trailing pipe": bytes.Replace(base, []byte("^HL70163"), []byte("^HL70163|"), 1),
	}
	for name, msg := range differ {
		if bytes.Equal(msg, base) {
			t.Fatalf("%s: edit did not apply", name)
		}
		if bytes.Equal(RawContentDigest(msg), d) {
			t.Errorf("%s: same digest for another message", name)
		}
	}
	if RawContentDigest([]byte("not HL7")) != nil {
		t.Error("digest of an unparseable message")
	}
	// MSH-7 as the last field, and an MSH shorter than that.
	short := RawContentDigest([]byte("MSH|^~\\&|A|B|C|D|2024"))
	if !bytes.Equal(short, RawContentDigest([]byte("MSH|^~\\&|A|B|C|D|2025"))) || bytes.Equal(short, RawContentDigest([]byte("MSH|^~\\&|A|B|C|E|2024"))) {
		t.Error("MSH-7 as the last field")
	}
	if RawContentDigest([]byte("MSH|^~\\&|A")) == nil {
		t.Error("a short MSH has a digest")
	}
}

// FuzzPipelineStart: whatever a transport hands over — a message, a batch, junk, nothing — the
// pipeline answers with an ACK (or a batch of ACKs) that parses, and never panics.
func FuzzPipelineStart(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "vxu_basic.hl7")); err == nil {
		f.Add(b)
		f.Add(append(append([]byte("FHS|^~\\&|A|B\rBHS|^~\\&\r"), b...), "BTS|1\rFTS|1\r"...))
	}
	f.Add([]byte(""))
	f.Add([]byte(" \r\n"))
	f.Add([]byte("BHS|\rjunk\rMSH|^~\\&|A|B|||2024||QBP^Q11|1|P|2.5.1\rBTS|x\r"))
	f.Add([]byte("MSH|^~\\&|A||||2024||VXU^V04|1|D|2.5.1\r"))
	p, err := NewPipeline(Options{Committer: DryRun{}})
	if err != nil {
		f.Fatal(err)
	}
	sender := &Sender{SiteCode: "S", Status: SiteProduction, Facilities: []string{"B"}}
	f.Fuzz(func(t *testing.T, payload []byte) {
		out, err := p.Start(context.Background(), Envelope{Transport: TransportMLLP, Sender: sender, Payload: payload}).Wait(context.Background())
		if err != nil && !strings.Contains(err.Error(), ErrEmptyMessage.Error()) {
			t.Fatalf("error %v", err)
		}
		if payloadKind(payload) == payloadBatch {
			b, err := hl7.SplitBatch(out)
			if err != nil || b.BHS == nil || b.BTS == nil {
				t.Fatalf("batch answer %q (%v)", out, err)
			}
			for _, m := range b.Messages {
				checkACK(t, m)
			}
			return
		}
		checkACK(t, out)
	})
}

func checkACK(t *testing.T, out []byte) {
	t.Helper()
	a, err := hl7.Parse(out)
	if err != nil {
		t.Fatalf("ACK does not parse: %v\n%q", err, out)
	}
	if !bytes.HasPrefix(out, []byte("MSH|^~\\&|")) || a.Get("MSH-9") != "ACK" {
		t.Fatalf("ACK %q", out)
	}
	switch a.Get("MSA-1") {
	case ack.AA, ack.AE, ack.AR:
	default:
		t.Fatalf("MSA-1 %q", a.Get("MSA-1"))
	}
}
