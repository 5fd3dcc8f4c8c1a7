package vxugen_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

// TestMessagesAreAccepted: the benchmark counts every ACK other than AA, so the generated traffic
// must draw no warning or error from the validator (information findings are fine).
func TestMessagesAreAccepted(t *testing.T) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 3, ControlIDs: "T", Patients: 500, Now: time.Now()})
	for i := 0; i < 3000; i++ {
		rec := p.Evaluate(g.Next())
		if rec.ACKCode != ack.AA {
			for _, f := range rec.Findings {
				t.Logf("%s %s: %s", f.Severity, f.Rule, f.Text)
			}
			t.Fatalf("message %d answered %s", i, rec.ACKCode)
		}
	}
}

// TestDeterministic: the same seed sends the same traffic.
func TestDeterministic(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	a := vxugen.New(vxugen.Options{Seed: 9, ControlIDs: "D", Now: now})
	b := vxugen.New(vxugen.Options{Seed: 9, ControlIDs: "D", Now: now})
	for i := 0; i < 200; i++ {
		if x, y := a.Next(), b.Next(); !bytes.Equal(x, y) {
			t.Fatalf("message %d differs", i)
		}
	}
}

// TestNewPatients: with NewPatients every message is the first report of a patient of its own
// (a distinct PID-3), with one dose that is new (RXA-21 A), and is accepted.
func TestNewPatients(t *testing.T) {
	v, err := validate.New(validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: ingest.DryRun{}, Validator: v})
	if err != nil {
		t.Fatal(err)
	}
	g := vxugen.New(vxugen.Options{Seed: 5, ControlIDs: "N", Patients: 10, UpdateShare: 0.9, NewPatients: true, Now: time.Now()})
	seen := map[string]bool{}
	for i := 0; i < 2000; i++ {
		rec := p.Evaluate(g.Next())
		if rec.ACKCode != ack.AA {
			t.Fatalf("message %d answered %s", i, rec.ACKCode)
		}
		mrn := rec.VXU.Patient.PrimaryID().Value
		if seen[mrn] {
			t.Fatalf("message %d: patient %q sent before", i, mrn)
		}
		seen[mrn] = true
		if len(rec.VXU.Orders) != 1 || rec.VXU.Orders[0].ActionCode != "A" {
			t.Fatalf("message %d: want one new dose, got %d orders %+v", i, len(rec.VXU.Orders), rec.VXU.Orders)
		}
	}
}

// TestPatientID: PatientID names the patient of the message Next returned last (its PID-3.1), so
// that a load generator can count the reports of each patient; with NewPatients every message
// names a patient of its own.
func TestPatientID(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	for _, newPatients := range []bool{false, true} {
		g := vxugen.New(vxugen.Options{Seed: 5, ControlIDs: "P", Patients: 50, Now: now, NewPatients: newPatients})
		seen := map[string]int{}
		for i := 0; i < 200; i++ {
			msg := g.Next()
			m, err := hl7.Parse(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := g.PatientID(), m.Get("PID-3-1"); got != want || got == "" {
				t.Fatalf("new patients %v, message %d: PatientID %q, PID-3.1 %q", newPatients, i, got, want)
			}
			seen[g.PatientID()]++
		}
		if newPatients && len(seen) != 200 {
			t.Errorf("new patients: %d distinct patients in 200 messages, want 200", len(seen))
		}
		if !newPatients && len(seen) > 50 {
			t.Errorf("%d distinct patients from a population of 50", len(seen))
		}
	}
}

// TestOnePopulation: generators with different seeds (a load generator's connections) report one
// population: a patient identifier always names the same person, so a report of it from another
// connection is an update of that patient, not a different child under the same MRN. New
// patients, reported once each, stay different people across generators.
func TestOnePopulation(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	pid := func(raw []byte) (id string, demo string) {
		m, err := hl7.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		v := ingest.Decode(m)
		n := v.Patient.LegalName()
		return v.Patient.PrimaryID().Value, n.Family + "|" + n.Given + "|" + v.Patient.BirthDate + "|" + v.Patient.MotherMaiden.Family
	}
	seen := map[string]string{}
	shared := 0
	for seed := uint64(1); seed <= 4; seed++ {
		g := vxugen.New(vxugen.Options{Seed: seed, ControlIDs: "P", Patients: 50, Now: now})
		for i := 0; i < 100; i++ {
			id, demo := pid(g.Next())
			if prev, ok := seen[id]; ok {
				shared++
				if prev != demo {
					t.Fatalf("patient %s reported as two different people by generators of different seeds", id)
				}
			}
			seen[id] = demo
		}
	}
	if shared == 0 {
		t.Fatal("no patient was reported by two generators: the test proves nothing")
	}
	people := map[string]bool{}
	for seed := uint64(1); seed <= 4; seed++ {
		g := vxugen.New(vxugen.Options{Seed: seed, ControlIDs: "N" + string(rune('0'+seed)), NewPatients: true, Now: now})
		for i := 0; i < 20; i++ {
			_, demo := pid(g.Next())
			people[demo] = true
		}
	}
	if len(people) < 70 {
		t.Errorf("new patients of 4 generators: %d different people of 80", len(people))
	}
}
