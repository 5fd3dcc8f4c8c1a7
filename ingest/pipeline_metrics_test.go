package ingest_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/validate"
)

// keepingCommitter answers every record with its own ACK and keeps the records.
type keepingCommitter struct{ recs []*ingest.Record }

func (c *keepingCommitter) Commit(rec *ingest.Record) ingest.Pending {
	c.recs = append(c.recs, rec)
	return ingest.DryRun{}.Commit(rec)
}

// The metrics a message updates are the same whether their children are resolved at the first
// message or looked up again: per transport, site and code, per environment, per severity, with
// unknown senders apart. Each record's Amend rebuilds its own ACK with the extra findings, from
// its own header and findings, however many records were prepared since.
func TestPipelineMetricsAndAmendPerMessage(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "vxu_basic.hl7"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := validate.New(validate.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	c := &keepingCommitter{}
	p, err := ingest.NewPipeline(ingest.Options{Committer: c, Validator: v, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	first := ack.RecoverHeader(raw).ControlID
	if first == "" {
		t.Fatal("testdata/vxu_basic.hl7 has no control ID")
	}
	var facility string
	if f := bytes.Split(bytes.SplitN(raw, []byte("\r"), 2)[0], []byte("|")); len(f) > 3 {
		facility = string(bytes.SplitN(f[3], []byte("^"), 2)[0])
	}
	s := &ingest.Sender{SiteCode: "S1", Status: ingest.SiteProduction, Facilities: []string{facility}}
	ctx := context.Background()
	const n = 3
	for i := range n {
		msg := bytes.Replace(raw, []byte("|"+first+"|"), []byte("|CTL-"+string(rune('A'+i))+"|"), 1)
		if _, err := p.Submit(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Sender: s, Payload: msg}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Submit(ctx, ingest.Envelope{Transport: ingest.TransportMLLP, Payload: raw}); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != n+1 {
		t.Fatalf("%d records committed, want %d", len(c.recs), n+1)
	}
	code := c.recs[0].ACKCode
	if code != ack.AA && code != ack.AE {
		t.Fatalf("testdata/vxu_basic.hl7 answered %s", code)
	}
	if got := metricValue(t, reg, "vaxgate_messages_total", "mllp", "S1", code); got != n {
		t.Errorf("vaxgate_messages_total{mllp,S1,%s} = %v, want %d", code, got, n)
	}
	if got := metricValue(t, reg, "vaxgate_messages_total", "mllp", "unknown", ack.AR); got != 1 {
		t.Errorf("vaxgate_messages_total{mllp,unknown,AR} = %v, want 1", got)
	}
	if got := seriesCount(t, reg, "vaxgate_site_last_message_timestamp_seconds"); got != 1 {
		t.Errorf("%d last-message series, want 1 (site S1, environment P; none for the unknown sender)", got)
	}
	if got := seriesCount(t, reg, "vaxgate_pipeline_seconds"); got != 1 {
		t.Errorf("%d pipeline duration series, want 1", got)
	}
	for i, rec := range c.recs[:n] {
		a, code := rec.Amend([]ack.Finding{{Rule: "control-id-reused", Location: ack.Location{Segment: "MSH", Sequence: 1, Field: 10},
			Code: ack.CodeAccepted, Severity: ack.Warning, Text: "extra"}})
		want := "CTL-" + string(rune('A'+i))
		m, err := hl7.Parse(a)
		if err != nil {
			t.Fatalf("record %d: amended ACK does not parse: %v", i, err)
		}
		if got := m.Get("MSA-2"); got != want {
			t.Errorf("record %d: amended ACK answers %q, want %q", i, got, want)
		}
		if code != ack.AE && code != ack.AA {
			t.Errorf("record %d: amended code %s", i, code)
		}
		if got := bytes.Count(a, []byte("\rERR|")); got != bytes.Count(rec.ACK, []byte("\rERR|"))+1 {
			t.Errorf("record %d: amended ACK has %d ERR, its own ACK %d: want one more", i, got, bytes.Count(rec.ACK, []byte("\rERR|")))
		}
	}
}

// metricValue is the value of the counter name whose label values are labels (in any order).
func metricValue(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			want := map[string]bool{}
			for _, l := range labels {
				want[l] = true
			}
			for _, l := range m.GetLabel() {
				if !want[l.GetValue()] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// seriesCount is the number of series of the metric name.
func seriesCount(t *testing.T, reg *prometheus.Registry, name string) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return len(mf.GetMetric())
		}
	}
	return 0
}
