package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ingest"
)

// The folders of a site, under its directory (Site.Dir).
const (
	InboxDir   = "inbox"   // the sender drops files here
	WorkDir    = "work"    // files being processed, with their checkpoints
	OutboxDir  = "outbox"  // one ACK file per input file: NAME.ack
	ArchiveDir = "archive" // inputs processed
	ErrorDir   = "error"   // inputs refused, each with NAME.report.txt
)

// File name conventions of the inbox: a file being written is named NAME.tmp (or NAME.part) and
// renamed to NAME when complete; or NAME is written and an empty NAME.done created when it is
// complete; or, failing both, a file is taken once it has not been modified for the settle time.
// Names starting with a dot are ignored. The outbox follows the same convention: NAME.ack.tmp is
// an ACK file being written, NAME.ack a complete one.
const (
	suffixTmp   = ".tmp"
	suffixPart  = ".part"
	suffixDone  = ".done"
	suffixState = ".state"
	suffixACK   = ".ack"
	suffixRep   = ".report.txt"
)

// Site is one site's drop folders.
type Site struct {
	Code string // the site code: the sender of every file in these folders
	// Inbox, Work, Outbox, Archive and Error are the folders; each defaults to the folder of that
	// name under Dir.
	Dir                                  string
	Inbox, Work, Outbox, Archive, Errors string
}

func (s *Site) fill() {
	def := func(p *string, name string) {
		if *p == "" {
			*p = filepath.Join(s.Dir, name)
		}
	}
	def(&s.Inbox, InboxDir)
	def(&s.Work, WorkDir)
	def(&s.Outbox, OutboxDir)
	def(&s.Archive, ArchiveDir)
	def(&s.Errors, ErrorDir)
}

// SiteSenders finds a site as the sender of its folder's files (the store implements it).
type SiteSenders interface {
	SiteSender(ctx context.Context, code string) (*ingest.Sender, error)
}

// ServiceOptions configure the drop-folder Service.
type ServiceOptions struct {
	// Root holds one sub-folder per site, named by its site code (Root/SITE/inbox, ...); sub-folders
	// appear at any time. Sites lists further sites with folders of their own. At least one is set.
	Root  string
	Sites []Site

	Starter Starter     // required
	Senders SiteSenders // required

	// Settle: a file without the .tmp/.done convention is taken once unmodified this long
	// (default 10 s). Poll: how often the inboxes are listed (default 2 s).
	Settle, Poll time.Duration
	// MaxFileSize: larger files are refused with a report, unread (default 1 GiB).
	MaxFileSize int64
	// Workers is how many files (of different sites) are processed at once (default 2).
	Workers int
	Process Options
	ACK     ACKFileOptions
	Logger  *zap.Logger
	// Registerer receives the vaxgate_file_* metrics when not nil.
	Registerer prometheus.Registerer
}

// Service watches the drop folders and processes what is dropped there.
type Service struct {
	o   ServiceOptions
	log *zap.Logger
	m   *metrics

	mu   sync.Mutex
	busy map[string]bool // site codes being worked on
	warn map[string]bool // root sub-folders already reported as unknown sites
}

// NewService checks the options and registers the metrics.
func NewService(o ServiceOptions) (*Service, error) {
	if o.Starter == nil || o.Senders == nil {
		return nil, errors.New("file: the drop-folder service needs the pipeline and the site lookup")
	}
	if o.Root == "" && len(o.Sites) == 0 {
		return nil, errors.New("file: no drop folder configured (file.root or file.sites)")
	}
	if o.Settle <= 0 {
		o.Settle = 10 * time.Second
	}
	if o.Poll <= 0 {
		o.Poll = 2 * time.Second
	}
	if o.MaxFileSize <= 0 {
		o.MaxFileSize = 1 << 30
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	for i := range o.Sites {
		if o.Sites[i].Code == "" {
			return nil, errors.New("file: a drop-folder site without a site code")
		}
		if o.Sites[i].Dir == "" && (o.Sites[i].Inbox == "" || o.Sites[i].Work == "" || o.Sites[i].Outbox == "" ||
			o.Sites[i].Archive == "" || o.Sites[i].Errors == "") {
			return nil, fmt.Errorf("file: site %s: set its dir, or all five folders", o.Sites[i].Code)
		}
		o.Sites[i].fill()
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	return &Service{o: o, log: o.Logger, m: m, busy: map[string]bool{}, warn: map[string]bool{}}, nil
}

// Run watches the folders until ctx is cancelled, then waits for the files being processed to stop
// at a checkpoint (every message started is answered); they are resumed by the next Run.
func (s *Service) Run(ctx context.Context) error {
	if s.o.Root != "" {
		if err := os.MkdirAll(s.o.Root, 0o755); err != nil {
			return fmt.Errorf("file: create drop-folder root: %w", err)
		}
	}
	sem := make(chan struct{}, s.o.Workers)
	var wg sync.WaitGroup
	defer wg.Wait()
	t := time.NewTicker(s.o.Poll)
	defer t.Stop()
	for {
		for _, site := range s.sites() {
			s.mu.Lock()
			if s.busy[site.Code] {
				s.mu.Unlock()
				continue
			}
			s.busy[site.Code] = true
			s.mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { s.mu.Lock(); delete(s.busy, site.Code); s.mu.Unlock() }()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-sem }()
				s.scanSite(ctx, site)
			}()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sites returns the configured sites and the site folders under Root.
func (s *Service) sites() []Site {
	out := append([]Site(nil), s.o.Sites...)
	if s.o.Root == "" {
		return out
	}
	entries, err := os.ReadDir(s.o.Root)
	if err != nil {
		s.mu.Lock()
		first := !s.warn[""]
		s.warn[""] = true
		s.mu.Unlock()
		if first { // once, not at every poll
			s.log.Error("list drop-folder root", zap.String("root", s.o.Root), zap.Error(err))
		}
		return out
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		site := Site{Code: e.Name(), Dir: filepath.Join(s.o.Root, e.Name())}
		site.fill()
		out = append(out, site)
	}
	return out
}

// scanSite resumes the files left in the site's work folder, then takes the inbox's ready files, one
// at a time, oldest first.
func (s *Service) scanSite(ctx context.Context, site Site) {
	sender, err := s.o.Senders.SiteSender(ctx, site.Code)
	if errors.Is(err, ingest.ErrUnknownSender) {
		sender = nil
		s.mu.Lock()
		first := !s.warn[site.Code]
		s.warn[site.Code] = true
		s.mu.Unlock()
		if first {
			s.log.Warn("drop folder of an unknown site: its files are refused", zap.String("site", site.Code))
		}
		if _, err := os.Stat(site.Inbox); err != nil {
			return // nothing dropped there: leave the folder as it is
		}
	} else if err != nil {
		s.log.Error("look up drop-folder site", zap.String("site", site.Code), zap.Error(err))
		return
	}
	for _, dir := range []string{site.Inbox, site.Work, site.Outbox, site.Archive, site.Errors} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			s.log.Error("create drop folder", zap.String("site", site.Code), zap.String("dir", dir), zap.Error(err))
			return
		}
	}
	// Files interrupted by a stop or a crash first, in the order they were taken.
	for _, name := range s.workFiles(site) {
		if ctx.Err() != nil {
			return
		}
		if !s.processFile(ctx, site, sender, name) {
			return
		}
	}
	for _, name := range s.readyFiles(site) {
		if ctx.Err() != nil {
			return
		}
		name, ok := s.pickUp(site, sender, name)
		if !ok {
			continue
		}
		if !s.processFile(ctx, site, sender, name) {
			return
		}
	}
}

// workFiles lists the inputs in the work folder, oldest first, and removes checkpoints left by a
// crash after their input was archived.
func (s *Service) workFiles(site Site) []string {
	entries, err := os.ReadDir(site.Work)
	if err != nil {
		s.log.Error("list work folder", zap.String("site", site.Code), zap.Error(err))
		return nil
	}
	var names []string
	inputs := map[string]bool{}
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasSuffix(n, suffixState) || strings.HasSuffix(n, suffixTmp) {
			continue
		}
		inputs[n] = true
		names = append(names, n)
	}
	for _, e := range entries {
		n := e.Name()
		if in, ok := strings.CutSuffix(n, suffixState); ok && !inputs[in] {
			_ = os.Remove(filepath.Join(site.Work, n))
		}
	}
	return byModTime(site.Work, names)
}

// readyFiles lists the inbox files that are complete: NAME with NAME.done beside it, or NAME not
// modified for the settle time; never NAME.tmp, NAME.part or dot files.
func (s *Service) readyFiles(site Site) []string {
	entries, err := os.ReadDir(site.Inbox)
	if err != nil {
		s.log.Error("list inbox", zap.String("site", site.Code), zap.Error(err))
		return nil
	}
	present := map[string]bool{}
	for _, e := range entries {
		present[e.Name()] = true
	}
	var names []string
	for _, e := range entries {
		n := e.Name()
		if e.IsDir() || strings.HasPrefix(n, ".") || strings.HasSuffix(n, suffixTmp) ||
			strings.HasSuffix(n, suffixPart) || strings.HasSuffix(n, suffixDone) {
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		if !present[n+suffixDone] {
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < s.o.Settle {
				continue
			}
		}
		names = append(names, n)
	}
	return byModTime(site.Inbox, names)
}

func byModTime(dir string, names []string) []string {
	mod := map[string]time.Time{}
	for _, n := range names {
		if info, err := os.Stat(filepath.Join(dir, n)); err == nil {
			mod[n] = info.ModTime()
		}
	}
	sort.SliceStable(names, func(i, j int) bool {
		a, b := mod[names[i]], mod[names[j]]
		if !a.Equal(b) {
			return a.Before(b)
		}
		return names[i] < names[j]
	})
	return names
}

// pickUp moves an inbox file into the work folder (an atomic rename: from then on the sender's
// folder no longer shows it), under a name no earlier file of the site used, or refuses it into
// the error folder when it is too large or its site is unknown. It returns the work name.
func (s *Service) pickUp(site Site, sender *ingest.Sender, name string) (string, bool) {
	src := filepath.Join(site.Inbox, name)
	info, err := os.Stat(src)
	if err != nil {
		return "", false // gone meanwhile
	}
	target := uniqueName(site, name)
	if err := os.Rename(src, filepath.Join(site.Work, target)); err != nil {
		s.log.Error("pick up file", zap.String("site", site.Code), zap.String("file", name), zap.Error(err))
		return "", false
	}
	_ = os.Remove(src + suffixDone)
	_ = syncDir(site.Work)
	s.m.pickedUp.Inc()
	s.log.Info("file picked up", zap.String("site", site.Code), zap.String("file", name),
		zap.String("work_name", target), zap.Int64("bytes", info.Size()))
	switch {
	case sender == nil:
		s.refuse(site, target, "unknown_site", fmt.Sprintf(
			"The folder belongs to site %s, which is not registered with the registry: nothing in the file was read or stored.", site.Code))
		return "", false
	case info.Size() > s.o.MaxFileSize:
		s.refuse(site, target, "too_large", fmt.Sprintf(
			"The file is %d bytes, larger than the %d bytes this registry accepts in one file: nothing in it was read or stored. Split it into smaller files and drop them again.",
			info.Size(), s.o.MaxFileSize))
		return "", false
	}
	return target, true
}

// uniqueName returns name, or name with a number before its extension, so that the work, archive,
// outbox and error folders never hold two files of that name.
func uniqueName(site Site, name string) string {
	taken := func(n string) bool {
		for _, p := range []string{
			filepath.Join(site.Work, n), filepath.Join(site.Archive, n), filepath.Join(site.Errors, n),
			filepath.Join(site.Outbox, n+suffixACK), filepath.Join(site.Outbox, n+suffixACK+suffixTmp),
		} {
			if _, err := os.Lstat(p); err == nil {
				return true
			}
		}
		return false
	}
	if strings.HasSuffix(name, suffixState) {
		name += ".in" // the work folder's checkpoints end in .state
	}
	if !taken(name) {
		return name
	}
	ext := filepath.Ext(name)
	base := strings.TrimSuffix(name, ext)
	for i := 2; ; i++ {
		n := base + "." + strconv.Itoa(i) + ext
		if !taken(n) {
			return n
		}
	}
}

// processFile processes work/name to its end and files it; false when the site's scan should stop
// (shutdown, or a failure that will be retried at the next scan).
func (s *Service) processFile(ctx context.Context, site Site, sender *ingest.Sender, name string) bool {
	if sender == nil {
		s.refuse(site, name, "unknown_site", fmt.Sprintf(
			"The folder belongs to site %s, which is not registered with the registry: nothing in the file was read or stored.", site.Code))
		return true
	}
	log := s.log.With(zap.String("site", site.Code), zap.String("file", name))
	input := filepath.Join(site.Work, name)
	statePath := input + suffixState
	ackTmp := filepath.Join(site.Outbox, name+suffixACK+suffixTmp)
	ackPath := filepath.Join(site.Outbox, name+suffixACK)
	st, err := LoadState(statePath)
	if err != nil {
		log.Error("read checkpoint", zap.Error(err))
		return false
	}
	if st.Offset > 0 && !st.Done {
		log.Info("resuming file", zap.Int64("offset", st.Offset), zap.Int("messages", st.Messages))
	}
	in, err := os.Open(input)
	if err != nil {
		log.Error("open file", zap.Error(err))
		return false
	}
	defer in.Close()
	if !st.Done {
		sink, err := OpenACKFile(ackTmp, st, s.o.ACK)
		if err != nil {
			log.Error("open ACK file", zap.Error(err))
			return false
		}
		counted := &countingSink{Sink: sink, m: s.m}
		err = Process(ctx, Job{
			Starter: s.o.Starter, Sender: sender, Transport: ingest.TransportFile, Input: in, State: st,
			Save: func(st *State) error { return SaveState(statePath, st) }, Sink: counted,
		}, s.o.Process)
		cerr := sink.Close()
		switch {
		case errors.Is(err, ErrNotHL7):
			_ = os.Remove(ackTmp)
			in.Close()
			s.refuse(site, name, "not_hl7", "The file is not HL7 v2: "+strings.TrimPrefix(err.Error(), ErrNotHL7.Error()+": ")+
				". Nothing in it was stored. A file must hold HL7 v2 messages (MSH segments), optionally in an FHS/BHS batch.")
			_ = os.Remove(statePath)
			return true
		case errors.Is(err, ErrInterrupted):
			log.Info("file interrupted; it resumes at the next start", zap.Int("messages", st.Messages))
			return false
		case err != nil:
			log.Error("file stopped; it is retried", zap.Int("messages", st.Messages), zap.Error(err))
			return false
		case cerr != nil:
			log.Error("close ACK file", zap.Error(cerr))
			return false
		}
	}
	// Done: publish the ACK file, archive the input, drop the checkpoint (each step is repeated
	// harmlessly after a crash between them).
	if _, err := os.Stat(ackTmp); err == nil {
		if err := os.Rename(ackTmp, ackPath); err != nil {
			log.Error("publish ACK file", zap.Error(err))
			return false
		}
		_ = syncDir(site.Outbox)
	}
	in.Close()
	if err := move(input, filepath.Join(site.Archive, name)); err != nil {
		log.Error("archive file", zap.Error(err))
		return false
	}
	_ = os.Remove(statePath)
	s.m.processed.Inc()
	log.Info("file processed", zap.Int("messages", st.Messages), zap.Int("accepted", st.Accepted),
		zap.Int("warnings", st.Warnings), zap.Int("partial", st.Partial), zap.Int("rejected", st.Rejected),
		zap.String("ack_file", filepath.Base(ackPath)))
	return true
}

// refuse moves work/name to the error folder with a report saying why.
func (s *Service) refuse(site Site, name, reason, why string) {
	log := s.log.With(zap.String("site", site.Code), zap.String("file", name), zap.String("reason", reason))
	dst := filepath.Join(site.Errors, name)
	if err := move(filepath.Join(site.Work, name), dst); err != nil {
		log.Error("move refused file to the error folder", zap.Error(err))
		return
	}
	report := fmt.Sprintf("File: %s\nSite: %s\nRefused: %s\nReason: %s\n\n%s\n",
		name, site.Code, time.Now().UTC().Format(time.RFC3339), reason, why)
	if err := writeAtomic(dst+suffixRep, []byte(report)); err != nil {
		log.Error("write refusal report", zap.Error(err))
	}
	s.m.errors.WithLabelValues(reason).Inc()
	log.Warn("file refused")
}

// move renames src to dst, or copies and removes it across file systems.
func move(src, dst string) error {
	if err := os.Rename(src, dst); err == nil {
		return syncDir(filepath.Dir(dst))
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("file: move %s: %w", filepath.Base(src), err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst+suffixTmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("file: move %s: %w", filepath.Base(src), err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("file: move %s: %w", filepath.Base(src), err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("file: move %s: %w", filepath.Base(src), err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("file: move %s: %w", filepath.Base(src), err)
	}
	if err := os.Rename(dst+suffixTmp, dst); err != nil {
		return fmt.Errorf("file: move %s: %w", filepath.Base(src), err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	if err := os.Remove(src); err != nil {
		return fmt.Errorf("file: move %s: %w", filepath.Base(src), err)
	}
	return nil
}

// countingSink counts the answers in the metrics as they are written.
type countingSink struct {
	Sink
	m *metrics
}

func (c *countingSink) Answer(a *Answer) error {
	if err := c.Sink.Answer(a); err != nil {
		return err
	}
	c.m.messages.WithLabelValues(a.Outcome.Code).Inc()
	return nil
}
