package mllp

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// goldenStreamDigest is the digest of the bytes the server wrote back for goldenStream, recorded
// from the code before the issue #19 CPU work (fewer reads and writes per message): however the
// server reads, batches and writes, a sender must receive exactly these bytes.
const goldenStreamDigest = "7272c80599e2346a33e012fb036668dd4b16348fbc448f60af98f79d3f323265"

// goldenStreamNow is every clock of the golden stream's pipeline.
var goldenStreamNow = time.Date(2026, 11, 1, 12, 34, 56, 0, time.UTC)

// goldenStream is what one sender writes on one connection: generated VXUs framed in every way
// the server must cope with (junk between frames, no CR after 0x1C, LF terminators, a 0x0B inside
// a frame, frames that are not HL7, oversize frames, messages the validator rejects) and a last
// frame that never ends.
func goldenStream() []byte {
	g := vxugen.New(vxugen.Options{Seed: 21, Facility: "CLINIC-A", ControlIDs: "GS", Patients: 200, Now: goldenStreamNow})
	r := rand.New(rand.NewPCG(21, 1))
	var out []byte
	for i := range 600 {
		m := g.Next()
		switch i % 13 {
		case 1:
			out = append(out, "junk \r\n"...)
		case 2:
			m = bytes.ReplaceAll(m, []byte("\r"), []byte("\n"))
		case 3:
			m = bytes.ReplaceAll(m, []byte("|20"), []byte("|99")) // AR with many ERR
		case 4:
			out = append(out, 0x0b)
			out = append(out, "not hl7 at all"...)
			out = append(out, 0x1c)
		case 5:
			m = append(bytes.Clone(m), "NTE|1||"+strings.Repeat("x", 9000)+"\r"...) // oversize
		case 6:
			m = bytes.Replace(m, []byte("PID|1"), []byte("PID|\x0b1"), 1)
		case 7:
			m = bytes.Replace(m, []byte("|P|2.5.1|"), []byte("|P|2.3|"), 1)
		}
		out = append(out, 0x0b)
		out = append(out, m...)
		out = append(out, 0x1c)
		if i%11 != 5 {
			out = append(out, '\r')
		}
		if r.IntN(50) == 0 {
			out = append(out, "\r\n"...)
		}
	}
	out = append(out, 0x0b)
	return append(out, "MSH|^~\\&|EHR|CLINIC-A|||2024||VXU^V04|UNFINISHED"...)
}

// ackIDs are the ACKs' own control IDs: they depend on when the builder was made.
var ackIDs = regexp.MustCompile(`VG[0-9a-z]+-[0-9]+`)

// TestGoldenStream: the bytes a sender receives for goldenStream, written in chunks of every
// size, are the bytes recorded before the issue #19 work: every ACK in order, framed the same,
// nothing more. The stream is sent three ways (one write, small random chunks, large random
// chunks); each must give the recorded bytes.
func TestGoldenStream(t *testing.T) {
	v, err := validate.New(validate.Options{Now: func() time.Time { return goldenStreamNow }})
	if err != nil {
		t.Fatal(err)
	}
	b := ack.NewBuilder([]string{"vaxgate"}, []string{"IIS"}, ack.DefaultPolicy)
	b.Now = func() time.Time { return goldenStreamNow }
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v, ACK: b,
		Now: func() time.Time { return goldenStreamNow }})
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, Options{Starter: p, ACK: b, MaxMessageSize: 8 << 10, MaxJunkFrames: 3})
	stream := goldenStream()
	for _, c := range []struct {
		name     string
		min, max int
	}{{"one write", len(stream), len(stream)}, {"small chunks", 1, 300}, {"large chunks", 1000, 40000}} {
		t.Run(c.name, func(t *testing.T) {
			conn := dialRaw(t, srv.addr)
			got := make(chan []byte, 1)
			go func() {
				_ = conn.SetReadDeadline(time.Now().Add(60 * time.Second))
				b, _ := io.ReadAll(conn)
				got <- b
			}()
			r := rand.New(rand.NewPCG(uint64(c.min), uint64(c.max)))
			for rest := stream; len(rest) > 0; {
				n := min(len(rest), c.min+r.IntN(c.max-c.min+1))
				if _, err := conn.Write(rest[:n]); err != nil {
					t.Fatalf("write: %v", err)
				}
				rest = rest[n:]
			}
			if err := conn.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			out := <-got
			// The stream is nothing but frames: 0x0B, an ACK, 0x1C, CR.
			frames := 0
			for rest := out; len(rest) > 0; frames++ {
				end := bytes.IndexByte(rest, 0x1c)
				if rest[0] != 0x0b || end < 0 || end+1 >= len(rest) || rest[end+1] != '\r' || !bytes.HasPrefix(rest[1:], []byte("MSH|")) {
					t.Fatalf("frame %d is not 0x0B ACK 0x1C CR: %q", frames, rest[:min(len(rest), 200)])
				}
				rest = rest[end+2:]
			}
			sum := sha256.Sum256(ackIDs.ReplaceAll(out, []byte("ACKID")))
			if s := hex.EncodeToString(sum[:]); s != goldenStreamDigest {
				t.Errorf("%d ACK frames, %d bytes, digest %s, want %s", frames, len(out), s, goldenStreamDigest)
			}
		})
	}
}
