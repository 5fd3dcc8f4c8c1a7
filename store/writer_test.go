package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// records makes n accepted records of distinct synthetic messages from one sender.
func records(t testing.TB, s *ingest.Sender, n int) []*ingest.Record {
	t.Helper()
	return recordsAbout(t, s, n, n, 5)
}

// recordsAbout makes n accepted records of distinct synthetic messages from one sender about a
// population of patients (vxugen's seed: seed).
func recordsAbout(t testing.TB, s *ingest.Sender, n, patients int, seed uint64) []*ingest.Record {
	t.Helper()
	gen := vxugen.New(vxugen.Options{Seed: seed, ControlIDs: "W", Patients: patients, Now: time.Now()})
	var out []*ingest.Record
	for i := 0; i < n; i++ {
		out = append(out, acceptedRecord(t, s, gen.Next()))
	}
	return out
}

// acceptedRecord is the record the pipeline makes of raw from s when it accepts it (AA).
func acceptedRecord(t testing.TB, s *ingest.Sender, raw []byte) *ingest.Record {
	t.Helper()
	m, err := hl7.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	h := ack.HeaderOf(m)
	return &ingest.Record{
		Transport: ingest.TransportMLLP, Sender: s, Env: "P", ControlID: h.ControlID, Facility: "X68",
		MessageType: "VXU^V04", ReceivedAt: time.Now(), Raw: raw,
		ACK: ack.NewBuilder([]string{"vaxgate"}, nil, ack.DefaultPolicy).Build(h, ack.AA, nil), ACKCode: ack.AA,
		ResendKey: true, Digest: ingest.ContentDigest(m), VXU: ingest.Decode(m),
	}
}

// TestBadRecordSparesItsBatch: a record that fails inside a group commit is answered with an error,
// and every other record of its batch is still stored and acknowledged (the batch is written again
// without it), in order.
func TestBadRecordSparesItsBatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db := storetest.New(t)
	s := &ingest.Sender{SiteCode: "SITE-W", Status: ingest.SiteProduction}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ('ORG-W', 'W') RETURNING id`).Scan(&s.OrganizationID); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status) VALUES ($1, 'SITE-W', 'W', 'production') RETURNING id`,
		s.OrganizationID).Scan(&s.SiteID); err != nil {
		t.Fatal(err)
	}
	// One shard and a long delay: the records below are written as one batch.
	w, err := db.NewWriter(store.WriterOptions{MaxBatch: 64, MaxDelay: 300 * time.Millisecond, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(ctx)
	recs := records(t, s, 20)
	bad := 7
	recs[bad].Env = "X" // violates messages' CHECK: the statement fails inside the batch
	dup := *recs[3]     // the same sender and control ID again, in the same batch: a resend
	dup.ACK = []byte("not the original ACK")
	recs = append(recs, &dup)
	pend := make([]ingest.Pending, len(recs))
	for i, r := range recs {
		pend[i] = w.Commit(r)
	}
	for i, p := range pend {
		got, err := p.Wait(ctx)
		switch {
		case i == bad:
			if err == nil {
				t.Errorf("bad record %d: no error", i)
			}
		case err != nil:
			t.Errorf("record %d: %v", i, err)
		case i == len(recs)-1:
			if string(got) != string(recs[3].ACK) {
				t.Errorf("resend in the same batch answered %q, want the original ACK", got)
			}
		case string(got) != string(recs[i].ACK):
			t.Errorf("record %d: ACK %q", i, got)
		}
	}
	var stored, vaccinations, reports int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE site_id = $1 AND resend_key`, s.SiteID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if want := len(recs) - 2; stored != want {
		t.Errorf("%d accepted messages stored, want %d", stored, want)
	}
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM vaccinations WHERE site_id = $1`, s.SiteID).Scan(&vaccinations); err != nil {
		t.Fatal(err)
	}
	// Reports of vaccinations are references to the site's archived messages.
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM vaccinations v, unnest(v.report_messages) AS r(id)
		JOIN messages m ON m.id = r.id WHERE m.site_id = $1`, s.SiteID).Scan(&reports); err != nil {
		t.Fatal(err)
	}
	if vaccinations == 0 || reports < vaccinations {
		t.Errorf("stored %d vaccinations and %d references to their reports", vaccinations, reports)
	}
	var resends int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM messages WHERE site_id = $1 AND NOT resend_key AND control_id = $2`,
		s.SiteID, recs[3].ControlID).Scan(&resends); err != nil {
		t.Fatal(err)
	}
	if resends != 1 {
		t.Errorf("the resend is archived %d times, want 1", resends)
	}
}
