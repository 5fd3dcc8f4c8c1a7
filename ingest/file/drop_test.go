package file_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/file"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/storetest"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	storetest.Main(m)
}

// engine is a real pipeline over a real PostgreSQL with one production site SITE-A (facility FAC-A).
type engine struct {
	db       *store.DB
	pipeline *ingest.Pipeline
	writer   *store.Writer
	site     int64
}

func newEngine(t *testing.T, db *store.DB, status string, goLive *time.Time) *engine {
	t.Helper()
	e, err := openEngine(context.Background(), db, store.WriterOptions{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if err := addSite(context.Background(), db, "SITE-A", "FAC-A", status, goLive); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(context.Background(), `SELECT id FROM sites WHERE code = 'SITE-A'`).Scan(&e.site); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = e.writer.Close(ctx)
	})
	return e
}

func openEngine(_ context.Context, db *store.DB, wo store.WriterOptions) (*engine, error) {
	writer, err := db.NewWriter(wo)
	if err != nil {
		return nil, err
	}
	v, err := validate.New(validate.Options{})
	if err != nil {
		return nil, err
	}
	p, err := ingest.NewPipeline(ingest.Options{Committer: writer, Validator: v, Registerer: prometheus.NewRegistry()})
	if err != nil {
		return nil, err
	}
	return &engine{db: db, pipeline: p, writer: writer}, nil
}

func addSite(ctx context.Context, db *store.DB, code, facility, status string, goLive *time.Time) error {
	var org, site int64
	if err := db.Pool.QueryRow(ctx, `INSERT INTO organizations (code, name) VALUES ($1, 'Org') RETURNING id`, "ORG-"+code).Scan(&org); err != nil {
		return err
	}
	if err := db.Pool.QueryRow(ctx, `INSERT INTO sites (organization_id, code, name, status, go_live_date) VALUES ($1, $2, 'Site', $3, $4) RETURNING id`,
		org, code, status, goLive).Scan(&site); err != nil {
		return err
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO site_facilities (facility_id, site_id) VALUES ($1, $2)`, facility, site)
	return err
}

// traffic returns n valid synthetic messages from FAC-A (segments end in CR).
func traffic(n int, prefix string) [][]byte {
	g := vxugen.New(vxugen.Options{Seed: 7, Facility: "FAC-A", ControlIDs: prefix, Patients: 1000})
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.Next()
	}
	return out
}

func join(msgs [][]byte, eol string) []byte {
	var b bytes.Buffer
	for _, m := range msgs {
		b.Write(bytes.ReplaceAll(bytes.TrimRight(m, "\r"), []byte("\r"), []byte(eol)))
		b.WriteString(eol)
	}
	return b.Bytes()
}

func service(t *testing.T, e *engine, root string, mod func(*file.ServiceOptions)) (*file.Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	o := file.ServiceOptions{
		Root: root, Starter: e.pipeline, Senders: e.db, Settle: time.Hour, Poll: 20 * time.Millisecond,
		Registerer: reg, Logger: zap.NewNop(),
	}
	if mod != nil {
		mod(&o)
	}
	s, err := file.NewService(o)
	if err != nil {
		t.Fatal(err)
	}
	return s, reg
}

// runUntil runs the service until cond holds (checked every 20 ms, for at most a minute).
func runUntil(t *testing.T, s *file.Service, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatal("condition not reached within a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

func write(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// lines splits an ACK file into segments.
func lines(data []byte, eol string) []string {
	return strings.Split(strings.TrimSuffix(string(data), eol), eol)
}

// TestDropBatchFile: the walk-through. A batch file (FHS/BHS, CRLF) dropped into SITE-A's inbox with
// a .done marker is picked up, every message answered in order in one ACK file in the outbox,
// wrapped in FHS/BHS with the counts, with the input's line endings; the input is archived. One
// message names a facility of another site (AR, nothing stored) and one is not a VXU (AR):
// neither stops the rest.
func TestDropBatchFile(t *testing.T) {
	db := storetest.New(t)
	e := newEngine(t, db, "production", nil)
	if err := addSite(context.Background(), db, "SITE-B", "FAC-B", "production", nil); err != nil {
		t.Fatal(err)
	}
	msgs := traffic(5, "DROP")
	foreign := bytes.Replace(traffic(1, "FOREIGN")[0], []byte("|FAC-A|"), []byte("|FAC-B|"), 1)
	all := [][]byte{msgs[0], msgs[1], foreign, msgs[2], []byte("MSH|^~\\&|EHR|FAC-A|||20240101||NOT^VXU|BAD-1|P|2.5.1\rPID|what\r"), msgs[3], msgs[4]}
	in := []byte("FHS|^~\\&|EHR|FAC-A|vaxgate|IIS|20240101||shots.hl7||F-77\r\nBHS|^~\\&|EHR|FAC-A|vaxgate|IIS|20240101||||B-77\r\n")
	in = append(in, join(all, "\r\n")...)
	in = append(in, "BTS|7\r\nFTS|1\r\n"...)
	root := t.TempDir()
	write(t, filepath.Join(root, "SITE-A", "inbox", "shots.hl7"), in)
	write(t, filepath.Join(root, "SITE-A", "inbox", "shots.hl7.done"), nil)
	// A file still being written under .tmp is left alone.
	write(t, filepath.Join(root, "SITE-A", "inbox", "next.hl7.tmp"), join(msgs, "\n"))

	s, reg := service(t, e, root, nil)
	ackPath := filepath.Join(root, "SITE-A", "outbox", "shots.hl7.ack")
	runUntil(t, s, func() bool { return exists(ackPath) })

	data, err := os.ReadFile(ackPath)
	if err != nil {
		t.Fatal(err)
	}
	segs := lines(data, "\r\n")
	if bytes.Contains(bytes.ReplaceAll(data, []byte("\r\n"), nil), []byte("\r")) {
		t.Error("ACK file mixes line endings: want CRLF, as the input")
	}
	if !strings.HasPrefix(segs[0], "FHS|^~\\&|vaxgate|IIS|EHR|FAC-A|") || !strings.HasSuffix(segs[0], "|F-77") {
		t.Errorf("FHS = %q", segs[0])
	}
	if !strings.HasPrefix(segs[1], "BHS|^~\\&|vaxgate|IIS|EHR|FAC-A|") || !strings.HasSuffix(segs[1], "|B-77") {
		t.Errorf("BHS = %q", segs[1])
	}
	if got := segs[len(segs)-2]; !strings.HasPrefix(got, "BTS|7|AA ") {
		t.Errorf("BTS = %q, want BTS|7|...", got)
	}
	if got := segs[len(segs)-1]; got != "FTS|1" {
		t.Errorf("FTS = %q", got)
	}
	// One ACK per message, in order, answering its control ID.
	acks := hl7.SplitMessages(data)
	if len(acks) != len(all) {
		t.Fatalf("%d ACKs, want %d", len(acks), len(all))
	}
	for i, a := range acks {
		o := file.ReadOutcome(a)
		wantID := ""
		if m, err := hl7.Parse(all[i]); err == nil {
			wantID = m.Get("MSH-10")
		}
		if o.ControlID != wantID {
			t.Errorf("ACK %d answers %q, want %q", i, o.ControlID, wantID)
		}
		want := map[int]string{2: "AR", 4: "AR"}[i]
		if want == "" && o.Code == "AR" || want != "" && o.Code != want {
			t.Errorf("ACK %d: %s %v", i, o.Code, o.Errors)
		}
	}
	if o := file.ReadOutcome(acks[2]); len(o.Errors) == 0 || !strings.HasPrefix(o.Errors[0], "MSH-4 ") {
		t.Errorf("foreign facility: errors %v, want MSH-4", o.Errors)
	}
	// Filed: archived, nothing left in the inbox or work folder but the .tmp file.
	if !exists(filepath.Join(root, "SITE-A", "archive", "shots.hl7")) {
		t.Error("input not archived")
	}
	for _, dir := range []string{"inbox", "work"} {
		ents, _ := os.ReadDir(filepath.Join(root, "SITE-A", dir))
		for _, en := range ents {
			if en.Name() != "next.hl7.tmp" {
				t.Errorf("%s still holds %s", dir, en.Name())
			}
		}
	}
	var stored, files int
	if err := db.Pool.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE resend_key), count(*) FROM messages WHERE transport = 'file' AND site_id = $1`, e.site).Scan(&stored, &files); err != nil {
		t.Fatal(err)
	}
	if stored != 5 || files != 7 {
		t.Errorf("archived %d messages of which %d accepted, want 7 and 5", files, stored)
	}
	if got := metric(t, reg, "vaxgate_file_files_picked_up_total", ""); got != 1 {
		t.Errorf("files picked up = %v", got)
	}
	if got := metric(t, reg, "vaxgate_file_messages_total", ""); got != 7 {
		t.Errorf("vaxgate_file_messages_total = %v, want 7", got)
	}
	// Every archived message of a known site has its report facts, as the summaries make them.
	if n := storetest.CheckFacts(t, db); n < 7 {
		t.Errorf("report facts of %d messages; want at least the file's 7", n)
	}
}

// A file of plain messages (no envelope) gets plain ACKs, with its line ending (LF).
func TestDropPlainFile(t *testing.T) {
	db := storetest.New(t)
	e := newEngine(t, db, "production", nil)
	root := t.TempDir()
	p := filepath.Join(root, "SITE-A", "inbox", "plain.txt")
	write(t, p, join(traffic(3, "PLAIN"), "\n"))
	old := time.Now().Add(-2 * time.Hour) // settled: unmodified for longer than the settle time
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	// Fresh and without .done: not settled yet, left in the inbox.
	fresh := filepath.Join(root, "SITE-A", "inbox", "fresh.txt")
	write(t, fresh, join(traffic(1, "FRESH"), "\n"))
	s, _ := service(t, e, root, nil)
	ackPath := filepath.Join(root, "SITE-A", "outbox", "plain.txt.ack")
	runUntil(t, s, func() bool { return exists(ackPath) })
	data, _ := os.ReadFile(ackPath)
	if bytes.Contains(data, []byte("\r")) || bytes.Contains(data, []byte("BHS")) {
		t.Errorf("plain input: ACK file should be LF-terminated ACKs without envelope:\n%q", data)
	}
	if n := len(hl7.SplitMessages(data)); n != 3 {
		t.Errorf("%d ACKs, want 3", n)
	}
	if !exists(fresh) {
		t.Error("a file modified within the settle time was taken")
	}
}

// Bad files: not HL7, too large, or in the folder of a site the registry does not know: moved to
// the error folder with a report saying why, counted; the next file is processed all the same.
func TestDropRefusedFiles(t *testing.T) {
	db := storetest.New(t)
	e := newEngine(t, db, "production", nil)
	root := t.TempDir()
	drop := func(site, name string, data []byte) {
		write(t, filepath.Join(root, site, "inbox", name), data)
		write(t, filepath.Join(root, site, "inbox", name+".done"), nil)
	}
	drop("SITE-A", "letter.txt", []byte("Dear registry,\nplease find our shots.\n"))
	drop("SITE-A", "scan.pdf", []byte("%PDF-1.4\x00\x01\x02"))
	drop("SITE-A", "huge.hl7", bytes.Repeat(join(traffic(1, "HUGE"), "\r"), 50))
	drop("SITE-A", "empty.hl7", []byte("\r\n\r\n"))
	drop("NO-SUCH-SITE", "x.hl7", join(traffic(1, "NOSITE"), "\r"))
	drop("SITE-A", "good.hl7", join(traffic(2, "GOOD"), "\r"))
	// A sub-folder of the root that is no site's and has no inbox is left as it is.
	if err := os.Mkdir(filepath.Join(root, "lost+found"), 0o755); err != nil {
		t.Fatal(err)
	}
	s, reg := service(t, e, root, func(o *file.ServiceOptions) { o.MaxFileSize = 20000 })
	runUntil(t, s, func() bool {
		return exists(filepath.Join(root, "SITE-A", "outbox", "good.hl7.ack")) &&
			exists(filepath.Join(root, "NO-SUCH-SITE", "error", "x.hl7.report.txt"))
	})
	for _, c := range []struct{ site, name, says string }{
		{"SITE-A", "letter.txt", "not HL7 v2: it must start with an MSH, FHS or BHS segment"},
		{"SITE-A", "scan.pdf", "not HL7 v2"},
		{"SITE-A", "huge.hl7", "larger than the 20000 bytes"},
		{"SITE-A", "empty.hl7", "holds no HL7 message"},
		{"NO-SUCH-SITE", "x.hl7", "not registered"},
	} {
		dir := filepath.Join(root, c.site, "error")
		if !exists(filepath.Join(dir, c.name)) {
			t.Errorf("%s not in the error folder", c.name)
		}
		rep, err := os.ReadFile(filepath.Join(dir, c.name+".report.txt"))
		if err != nil || !strings.Contains(string(rep), c.says) {
			t.Errorf("%s: report %q, want it to say %q", c.name, rep, c.says)
		}
		if exists(filepath.Join(root, c.site, "outbox", c.name+".ack")) {
			t.Errorf("%s: an ACK file for a refused file", c.name)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(root, "lost+found")); len(ents) != 0 {
		t.Errorf("folders created in a folder that is no site's: %v", ents)
	}
	for reason, want := range map[string]float64{"not_hl7": 3, "too_large": 1, "unknown_site": 1} {
		if got := metric(t, reg, "vaxgate_file_files_error_total", reason); got != want {
			t.Errorf("files in error %s = %v, want %v", reason, got, want)
		}
	}
}

// metric sums the samples of a counter (those with the label value, when not empty).
func metric(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label == "" || len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label {
				v += m.GetCounter().GetValue()
			}
		}
	}
	return v
}

// A site listed with folders of its own (no root): its inbox is watched, its answers written to its
// outbox, its input archived where configured.
func TestDropExplicitSiteFolders(t *testing.T) {
	db := storetest.New(t)
	e := newEngine(t, db, "production", nil)
	base := t.TempDir()
	site := file.Site{Code: "SITE-A", Inbox: filepath.Join(base, "land", "in"), Work: filepath.Join(base, "vg", "work"),
		Outbox: filepath.Join(base, "land", "out"), Archive: filepath.Join(base, "vg", "archive"), Errors: filepath.Join(base, "vg", "error")}
	write(t, filepath.Join(site.Inbox, "a.hl7"), join(traffic(2, "EXPL"), "\r"))
	write(t, filepath.Join(site.Inbox, "a.hl7.done"), nil)
	s, _ := service(t, e, "", func(o *file.ServiceOptions) { o.Sites = []file.Site{site} })
	runUntil(t, s, func() bool { return exists(filepath.Join(site.Outbox, "a.hl7.ack")) })
	if !exists(filepath.Join(site.Archive, "a.hl7")) {
		t.Error("input not archived in the configured archive folder")
	}
	if _, err := file.NewService(file.ServiceOptions{Starter: e.pipeline, Senders: e.db,
		Sites: []file.Site{{Code: "X", Inbox: "/in"}}}); err == nil {
		t.Error("a site with an inbox but no other folder was accepted")
	}
}
