package file

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest"
)

// The files a preload keeps beside its input FILE.
const (
	PreloadStateSuffix   = ".preload"     // the checkpoint: where to resume
	PreloadRejectsSuffix = ".rejects.hl7" // the rejected messages, as received: fix and send again
	PreloadReportSuffix  = ".rejects.txt" // why each was rejected
)

// ErrSiteLive is returned by CheckPreload for a site already in production past its go-live date.
var ErrSiteLive = errors.New("the site is already live")

// CheckPreload says whether a site may be backloaded now. A backload is meant for data from before
// go-live: every patient it introduces gets data sharing Unknown. A site not yet onboarded cannot
// send at all; a site in production whose go-live date has passed (or that has none) is live, and
// is preloaded only when the operator confirms.
func CheckPreload(s *ingest.Sender, now time.Time, confirm bool) error {
	switch s.Status {
	case ingest.SiteTesting:
		return nil // its messages (MSH-11 T) go to the test environment
	case ingest.SiteProduction:
		if !s.GoLive.IsZero() && now.Before(s.GoLive) {
			return nil
		}
		if confirm {
			return nil
		}
		since := "it has no go-live date"
		if !s.GoLive.IsZero() {
			since = "it went live on " + s.GoLive.Format("2006-01-02")
		}
		return fmt.Errorf("%w: site %s is in production and %s; preloaded data is marked data sharing Unknown as a backload: run again with --confirm to preload anyway", ErrSiteLive, s.SiteCode, since)
	}
	return fmt.Errorf("site %s is %s: it is not onboarded for testing or production and cannot send messages yet", s.SiteCode, s.Status)
}

// PreloadOptions configure PreloadFile.
type PreloadOptions struct {
	Starter Starter
	Sender  *ingest.Sender
	// Restart discards a previous run's checkpoint and rejects and starts the file over.
	Restart bool
	Process Options
	// Resume, when not nil, is called with the state the file starts from (zero for a new one)
	// before any message is read; Progress after every checkpoint.
	Resume, Progress func(st *State)
}

// PreloadResult is where a file stands after PreloadFile.
type PreloadResult struct {
	State       *State
	Resumed     bool // a previous run was interrupted and this one carried on from its checkpoint
	AlreadyDone bool // a previous run finished the file: nothing was done
	// StartMessages is how many messages an earlier run had answered.
	StartMessages int
	Rejects       string
	Report        string
}

// ErrInputChanged is returned when a file to resume differs from the one the checkpoint was made for.
var ErrInputChanged = errors.New("the input changed since the interrupted preload")

// PreloadFile backloads one file through the pipeline (every message a backload: data sharing
// Unknown), resumable: it keeps a checkpoint FILE.preload beside the input, and writes the messages
// answered AR, as they were received, to FILE.rejects.hl7 and why to FILE.rejects.txt. Run again
// after an interruption, it carries on from the checkpoint; on a finished file it does nothing.
func PreloadFile(ctx context.Context, path string, o PreloadOptions) (*PreloadResult, error) {
	res := &PreloadResult{Rejects: path + PreloadRejectsSuffix, Report: path + PreloadReportSuffix}
	statePath := path + PreloadStateSuffix
	in, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if info.IsDir() {
		return nil, fmt.Errorf("%s is a directory", path)
	}
	if o.Restart {
		for _, p := range []string{statePath, res.Rejects, res.Report} {
			if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("restart %s: %w", path, err)
			}
		}
	}
	st, err := LoadState(statePath)
	if err != nil {
		return nil, err
	}
	res.State, res.StartMessages = st, st.Messages
	if st.Done {
		res.AlreadyDone = true
		return res, nil
	}
	if st.Begun || st.Offset > 0 {
		if st.InputSize != info.Size() || st.InputModTime != info.ModTime().UnixNano() {
			return nil, fmt.Errorf("%w: %s (run with --restart to start it over)", ErrInputChanged, path)
		}
		res.Resumed = true
	} else {
		st.InputSize, st.InputModTime = info.Size(), info.ModTime().UnixNano()
	}
	if o.Resume != nil {
		o.Resume(st)
	}
	sink, err := openRejects(res.Rejects, res.Report, st)
	if err != nil {
		return nil, err
	}
	err = Process(ctx, Job{
		Starter: o.Starter, Sender: o.Sender, Transport: ingest.TransportPreload, Backload: true,
		Input: in, State: st, Sink: sink, Progress: o.Progress,
		Save: func(st *State) error { return SaveState(statePath, st) },
	}, o.Process)
	if cerr := sink.close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return res, err
	}
	if st.Rejected == 0 { // nothing to fix: no empty files left behind
		_ = os.Remove(res.Rejects)
		_ = os.Remove(res.Report)
		res.Rejects, res.Report = "", ""
	}
	return res, nil
}

// rejects is the preload's Sink: the messages answered AR, as received (with the input's line
// terminator), and a report line for each saying why. Both files are cut back to the checkpoint
// when a run resumes (State.Out and State.Aux).
type rejects struct {
	st       *State
	msgs     *os.File
	rep      *os.File
	mw, rw   *bufio.Writer
	ms, rs   int64
	eol      []byte
	reported bool
}

func openRejects(msgsPath, repPath string, st *State) (*rejects, error) {
	open := func(p string, size int64) (*os.File, error) {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open rejects file: %w", err)
		}
		if err := f.Truncate(size); err != nil {
			f.Close()
			return nil, fmt.Errorf("truncate rejects file: %w", err)
		}
		if _, err := f.Seek(size, io.SeekStart); err != nil {
			f.Close()
			return nil, fmt.Errorf("seek rejects file: %w", err)
		}
		return f, nil
	}
	m, err := open(msgsPath, st.Out)
	if err != nil {
		return nil, err
	}
	r, err := open(repPath, st.Aux)
	if err != nil {
		m.Close()
		return nil, err
	}
	eol := []byte(st.EOL)
	if len(eol) == 0 {
		eol = []byte("\r")
	}
	return &rejects{st: st, msgs: m, rep: r, mw: bufio.NewWriter(m), rw: bufio.NewWriter(r), ms: st.Out, rs: st.Aux, eol: eol}, nil
}

func (r *rejects) Begin(_ Envelope, eol []byte) error {
	if len(eol) > 0 {
		r.eol = eol
	}
	return nil
}

func (r *rejects) Answer(a *Answer) error {
	if a.Outcome.Code != "AR" {
		return nil
	}
	id := a.Outcome.ControlID
	if id == "" {
		id = "(no MSH-10)"
	}
	var line strings.Builder
	fmt.Fprintf(&line, "%s\tinput bytes %d-%d\t", id, a.Message.Start, a.Message.End)
	if a.Message.TooLarge > 0 {
		fmt.Fprintf(&line, "too large (%d bytes): not copied to the rejects file; ", a.Message.TooLarge)
	} else {
		data := a.Message.Data
		if !bytes.Equal(r.eol, []byte("\r")) {
			data = bytes.ReplaceAll(data, []byte("\r"), r.eol)
		}
		n, err := r.mw.Write(data)
		r.ms += int64(n)
		if err != nil {
			return fmt.Errorf("write rejects file: %w", err)
		}
	}
	line.WriteString(errorTexts(a.ACK))
	line.WriteByte('\n')
	n, err := r.rw.WriteString(line.String())
	r.rs += int64(n)
	if err != nil {
		return fmt.Errorf("write rejects report: %w", err)
	}
	return nil
}

// errorTexts joins the errors an ACK names: location, HL7 code and the text for the sender.
func errorTexts(a []byte) string {
	m, err := hl7.Parse(a)
	if err != nil {
		return "rejected"
	}
	var out []string
	for i := 1; ; i++ {
		seg, ok := m.Find("ERR", i)
		if !ok {
			break
		}
		if seg.Field(4).String() != "E" {
			continue
		}
		loc := seg.Field(2).Component(1).String()
		if f := seg.Field(2).Component(3).String(); f != "" {
			loc += "-" + f
		}
		out = append(out, strings.TrimSpace(loc+" "+seg.Field(3).Component(1).String()+": "+seg.Field(8).String()))
	}
	if len(out) == 0 {
		return "rejected"
	}
	return strings.Join(out, " | ")
}

func (r *rejects) Finish(*State) error { return nil }

func (r *rejects) Sync() (int64, error) {
	for _, x := range []struct {
		w *bufio.Writer
		f *os.File
	}{{r.mw, r.msgs}, {r.rw, r.rep}} {
		if err := x.w.Flush(); err != nil {
			return 0, fmt.Errorf("write rejects: %w", err)
		}
		if err := x.f.Sync(); err != nil {
			return 0, fmt.Errorf("sync rejects: %w", err)
		}
	}
	r.st.Aux = r.rs
	return r.ms, nil
}

func (r *rejects) close() error {
	e1, e2 := r.msgs.Close(), r.rep.Close()
	if e1 != nil {
		return fmt.Errorf("close rejects file: %w", e1)
	}
	if e2 != nil {
		return fmt.Errorf("close rejects report: %w", e2)
	}
	return nil
}

// Rules returns the counts by rule of st, largest first.
func (st *State) Rules() []RuleCount {
	out := make([]RuleCount, 0, len(st.ByRule))
	for r, n := range st.ByRule {
		out = append(out, RuleCount{Rule: r, Count: n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Count != out[j].Count {
			return out[i].Count > out[j].Count
		}
		return out[i].Rule < out[j].Rule
	})
	return out
}

// RuleCount is one line of a summary by rule.
type RuleCount struct {
	Rule  string
	Count int
}

// Add adds the counts of o to st (for a summary of several files).
func (st *State) Add(o *State) {
	st.Messages += o.Messages
	st.Accepted += o.Accepted
	st.Warnings += o.Warnings
	st.Partial += o.Partial
	st.Rejected += o.Rejected
	for r, n := range o.ByRule {
		if st.ByRule == nil {
			st.ByRule = map[string]int{}
		}
		st.ByRule[r] += n
	}
}
