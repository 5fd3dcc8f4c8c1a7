package ingest_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// TestParsedMessagesReused: the pipeline parses into reused hl7.Messages; nothing a record keeps
// may point into one, or a later message would change an earlier record. Messages are evaluated
// from several goroutines at once (run with -race), and every record must still hold its own
// message's control ID, patient and dose, read after all the others were parsed.
func TestParsedMessagesReused(t *testing.T) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	const workers, each = 4, 150
	type result struct {
		raw []byte
		rec *ingest.Record
	}
	out := make([][]result, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			g := vxugen.New(vxugen.Options{Seed: uint64(w + 1), ControlIDs: "R" + string(rune('A'+w)), NewPatients: true, Now: time.Now()})
			for i := 0; i < each; i++ {
				raw := g.Next()
				out[w] = append(out[w], result{raw: raw, rec: p.Evaluate(raw)})
			}
		}(w)
	}
	wg.Wait()
	// Each record against its own message decoded again, alone, now.
	for w := range out {
		for i, r := range out[w] {
			again := p.Evaluate(r.raw)
			if r.rec.ControlID != again.ControlID || r.rec.Facility != again.Facility || r.rec.MessageType != again.MessageType {
				t.Fatalf("worker %d message %d: header %q %q %q, want %q %q %q", w, i,
					r.rec.ControlID, r.rec.Facility, r.rec.MessageType, again.ControlID, again.Facility, again.MessageType)
			}
			if r.rec.VXU == nil || again.VXU == nil {
				t.Fatalf("worker %d message %d: not accepted", w, i)
			}
			a, b := r.rec.VXU.Patient, again.VXU.Patient
			if a.PrimaryID() != b.PrimaryID() || a.LegalName() != b.LegalName() || a.BirthDate != b.BirthDate {
				t.Fatalf("worker %d message %d: patient %+v, want %+v", w, i, a.PrimaryID(), b.PrimaryID())
			}
			if len(r.rec.VXU.Orders) != len(again.VXU.Orders) || r.rec.VXU.Orders[0].CVX != again.VXU.Orders[0].CVX ||
				r.rec.VXU.Orders[0].AdministeredAt != again.VXU.Orders[0].AdministeredAt {
				t.Fatalf("worker %d message %d: orders differ", w, i)
			}
			if string(r.rec.ACK) == "" || r.rec.ACKCode != again.ACKCode {
				t.Fatalf("worker %d message %d: ACK %q", w, i, r.rec.ACKCode)
			}
		}
	}
}

// BenchmarkEvaluate: one message through every check of the pipeline (parse, header checks,
// validation, decoding, ACK), without a database.
func BenchmarkEvaluate(b *testing.B) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		b.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 3, ControlIDs: "B", Now: time.Now()})
	msgs := make([][]byte, 256)
	for i := range msgs {
		msgs[i] = g.Next()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Evaluate(msgs[i%len(msgs)])
	}
}

// TestRecordOwnsItsStrings: a record's header strings and decoded values share one copy of the
// message, never the payload itself: a transport that reuses its read buffer once the message is
// answered cannot change a record still waiting for its commit.
func TestRecordOwnsItsStrings(t *testing.T) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 9, ControlIDs: "OWN", NewPatients: true, Now: time.Now()})
	for range 20 {
		raw := g.Next()
		rec := p.Evaluate(raw)
		again := p.Evaluate(append([]byte(nil), raw...))
		for i := range raw {
			raw[i] = 'x' // the buffer reused for the next message
		}
		if rec.VXU == nil || rec.ControlID != again.ControlID || rec.Facility != again.Facility || rec.MessageType != again.MessageType ||
			rec.VXU.Patient.PrimaryID() != again.VXU.Patient.PrimaryID() || rec.VXU.Patient.LegalName() != again.VXU.Patient.LegalName() ||
			rec.VXU.Orders[0].CVX != again.VXU.Orders[0].CVX || rec.ACKCode != again.ACKCode {
			t.Fatalf("record changed with its payload's buffer: %q %q %q", rec.ControlID, rec.Facility, rec.MessageType)
		}
	}
}

// TestOwnedPayloadShared: a payload the transport hands over for good (Envelope.Owned, as MLLP
// does) is what the record's strings are read from, without a copy; the record is the one a
// copied payload gives.
func TestOwnedPayloadShared(t *testing.T) {
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}})
	if err != nil {
		t.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 5, ControlIDs: "OWNED", Facility: "X68", Now: time.Now()})
	sender := &ingest.Sender{SiteCode: "S", Status: ingest.SiteProduction, Facilities: []string{"X68"}}
	ctx := context.Background()
	for range 20 {
		raw := g.Next()
		owned := ingest.Envelope{Transport: ingest.TransportMLLP, Sender: sender, Payload: raw, Owned: true}
		copied := owned
		copied.Owned = false
		a, err := p.Start(ctx, owned).Wait(ctx)
		b, err2 := p.Start(ctx, copied).Wait(ctx)
		if err != nil || err2 != nil || !bytes.Equal(ackBody(a), ackBody(b)) {
			t.Fatalf("owned and copied payloads answered differently: %v %v\n%q\n%q", err, err2, a, b)
		}
	}
	// The record's control ID is a substring of the payload itself.
	raw := g.Next()
	rec := p.Evaluate(raw) // Evaluate copies (file transport)
	st := rec.ControlID
	if inside(raw, st) {
		t.Errorf("a copied payload's record reads from the payload itself")
	}
	c := &capture{}
	p2, err := ingest.NewPipeline(ingest.Options{Committer: c})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p2.Start(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Sender: sender, Payload: raw, Owned: true}).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if c.rec == nil || c.rec.ControlID != st || !inside(raw, c.rec.ControlID) || c.rec.VXU == nil || !inside(raw, c.rec.VXU.Patient.PrimaryID().Value) {
		t.Errorf("an owned payload's record does not read from the payload")
	}
}

// capture is a committer that keeps the last record and answers with its ACK.
type capture struct{ rec *ingest.Record }

func (c *capture) Commit(rec *ingest.Record) ingest.Pending {
	c.rec = rec
	return ingest.DryRun{}.Commit(rec)
}

// inside reports whether s's bytes lie inside b's memory.
func inside(b []byte, s string) bool {
	if len(s) == 0 || len(b) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&b[0]))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

// ackBody is an ACK without its MSH (whose control ID and time are the builder's own).
func ackBody(a []byte) []byte {
	if i := bytes.IndexByte(a, '\r'); i >= 0 {
		return a[i:]
	}
	return a
}
