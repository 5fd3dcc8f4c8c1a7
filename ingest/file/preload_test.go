package file_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/file"
	"github.com/vaxgate/vaxgate/store/storetest"
)

// cancelAfter is the pipeline, cancelling ctx once n messages were started: an interruption midway.
type cancelAfter struct {
	file.Starter
	n      int64
	seen   atomic.Int64
	cancel func()
}

func (c *cancelAfter) Start(ctx context.Context, env ingest.Envelope) ingest.Pending {
	if c.seen.Add(1) == c.n {
		c.cancel()
	}
	return c.Starter.Start(ctx, env)
}

// TestPreloadResume: a preload interrupted midway and run again finishes the file from its
// checkpoint: every accepted message stored once, every rejected message once in the rejects file
// (as received) with its reason in the report, patients marked data sharing Unknown (backload),
// and the archive says "preload". Run a third time, it does nothing.
func TestPreloadResume(t *testing.T) {
	db := storetest.New(t)
	goLive := time.Now().AddDate(0, 1, 0) // not live yet
	e := newEngine(t, db, "production", &goLive)
	sender, err := db.SiteSender(context.Background(), "SITE-A")
	if err != nil {
		t.Fatal(err)
	}
	if err := file.CheckPreload(sender, time.Now(), false); err != nil {
		t.Fatalf("a site before go-live: %v", err)
	}
	msgs := traffic(3000, "PRE")
	// Every 500th message names a facility that is not the site's: rejected.
	var bad []string
	for i := 250; i < len(msgs); i += 500 {
		msgs[i] = bytes.Replace(msgs[i], []byte("|FAC-A|"), []byte("|FAC-X|"), 1)
		m, _ := hl7.Parse(msgs[i])
		bad = append(bad, m.Get("MSH-10"))
	}
	path := filepath.Join(t.TempDir(), "history.hl7")
	write(t, path, join(msgs, "\n"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := file.PreloadOptions{Starter: &cancelAfter{Starter: e.pipeline, n: 1300, cancel: cancel}, Sender: sender,
		Process: file.Options{CheckpointMessages: 100}}
	res, err := file.PreloadFile(ctx, path, o)
	if !errors.Is(err, file.ErrInterrupted) {
		t.Fatalf("first run: %v, want ErrInterrupted", err)
	}
	if res.State.Messages < 1300 || res.State.Done {
		t.Fatalf("first run state %+v", res.State)
	}
	// A state left by a crash has the same effect: cut back to the checkpoint on reopening. Here
	// the rejects file holds exactly what the checkpoint says.
	o.Starter = e.pipeline
	res, err = file.PreloadFile(context.Background(), path, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Resumed || res.StartMessages < 1300 {
		t.Errorf("second run did not resume: %+v", res)
	}
	st := res.State
	if !st.Done || st.Messages != 3000 || st.Rejected != len(bad) || st.Accepted+st.Warnings+st.Partial != 3000-len(bad) {
		t.Errorf("final state: %d messages, %d accepted, %d warnings, %d partial, %d rejected",
			st.Messages, st.Accepted, st.Warnings, st.Partial, st.Rejected)
	}
	if st.ByRule["MSH-4 204 Unknown key identifier"] != len(bad) {
		t.Errorf("by rule: %v", st.ByRule)
	}
	rej, err := os.ReadFile(res.Rejects)
	if err != nil {
		t.Fatal(err)
	}
	got := hl7.SplitMessages(rej)
	if len(got) != len(bad) {
		t.Fatalf("%d messages in the rejects file, want %d", len(got), len(bad))
	}
	for i, m := range got {
		p, err := hl7.Parse(m)
		if err != nil || p.Get("MSH-10") != bad[i] {
			t.Errorf("reject %d: %v %q, want %s", i, err, p.Get("MSH-10"), bad[i])
		}
	}
	if bytes.Contains(rej, []byte("\r")) {
		t.Error("rejects file: the input's LF line endings were not kept")
	}
	rep, _ := os.ReadFile(res.Report)
	if n := strings.Count(string(rep), "\n"); n != len(bad) || !strings.Contains(string(rep), bad[0]+"\t") ||
		!strings.Contains(string(rep), "MSH-4 204: Sending facility") {
		t.Errorf("report (%d lines):\n%s", n, rep)
	}

	var accepted, reports, notUnknown, transport int
	if err := db.Pool.QueryRow(context.Background(), `
		SELECT (SELECT count(*) FROM messages WHERE resend_key),
		       (SELECT count(*) FROM patients, unnest(report_messages)),
		       (SELECT count(*) FROM registry_patients WHERE sharing <> 'U'),
		       (SELECT count(*) FROM messages WHERE transport <> 'preload')`).Scan(&accepted, &reports, &notUnknown, &transport); err != nil {
		t.Fatal(err)
	}
	if want := 3000 - len(bad); accepted != want || reports != want {
		t.Errorf("%d accepted archive rows, %d patient reports; want %d each (each message stored once)", accepted, reports, want)
	}
	if notUnknown != 0 {
		t.Errorf("%d registry patients of a backload with data sharing other than Unknown", notUnknown)
	}
	if transport != 0 {
		t.Errorf("%d archived messages not marked transport preload", transport)
	}
	// Each archived message once with its report facts, as the summaries make them.
	if n := storetest.CheckFacts(t, db); n != 3000 {
		t.Errorf("report facts of %d messages; want 3000", n)
	}

	res, err = file.PreloadFile(context.Background(), path, o)
	if err != nil || !res.AlreadyDone {
		t.Errorf("third run: %v, already done %v", err, res != nil && res.AlreadyDone)
	}
	// The input changed under an interrupted preload: refused.
	st2 := &file.State{Offset: 10, Begun: true, InputSize: 1}
	if err := file.SaveState(path+file.PreloadStateSuffix, st2); err != nil {
		t.Fatal(err)
	}
	if _, err := file.PreloadFile(context.Background(), path, o); !errors.Is(err, file.ErrInputChanged) {
		t.Errorf("changed input: %v, want ErrInputChanged", err)
	}
}

// A live site (production past its go-live date, or without one) is preloaded only when confirmed;
// a site not onboarded never.
func TestCheckPreload(t *testing.T) {
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	past, future := now.AddDate(0, -1, 0), now.AddDate(0, 1, 0)
	for _, c := range []struct {
		status  ingest.SiteStatus
		goLive  time.Time
		confirm bool
		ok      bool
	}{
		{ingest.SiteProduction, future, false, true},
		{ingest.SiteProduction, past, false, false},
		{ingest.SiteProduction, past, true, true},
		{ingest.SiteProduction, time.Time{}, false, false},
		{ingest.SiteTesting, time.Time{}, false, true},
		{ingest.SiteRegistered, future, true, false},
	} {
		err := file.CheckPreload(&ingest.Sender{SiteCode: "S", Status: c.status, GoLive: c.goLive}, now, c.confirm)
		if (err == nil) != c.ok {
			t.Errorf("%s go-live %v confirm %v: %v", c.status, c.goLive.Format("2006-01-02"), c.confirm, err)
		}
		if err != nil && c.status == ingest.SiteProduction && !strings.Contains(err.Error(), "--confirm") {
			t.Errorf("the refusal does not say how to confirm: %v", err)
		}
	}
}
