package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"golang.org/x/term"

	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/file"
	"github.com/vaxgate/vaxgate/store"
)

func newPreloadCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "preload --site SITE FILE...",
		Short: "One-time historical backload of a site's files through the pipeline, with progress, resume and a rejects file",
		Long: `Backload a site's historical records: every message of each FILE (FHS/BHS batches or concatenated
messages, CR, LF or CRLF) goes through the same pipeline as MLLP and SOAP, as sent by SITE (MSH-4
must be one of its facilities). Patients first known from a backload get data sharing Unknown, as
for any report received before the site's go-live date. A site already live (in production past
its go-live date) is refused unless --confirm is given.

Progress is a bar with rate and ETA on a terminal, plain lines otherwise. Interrupted (Ctrl-C, a
crash), the same command resumes each file from its checkpoint (FILE.preload); messages processed
again are recognised as resends and not stored twice. At the end a summary counts the messages
accepted, accepted with warnings or errors, and rejected by rule; rejected messages are written, as
received, to FILE.rejects.hl7 (fix them and send them again) with the reasons in FILE.rejects.txt.

Exit status: 0 when every file was preloaded and nothing rejected, 1 when messages were rejected,
130 when interrupted (run the command again to resume).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			site, _ := cmd.Flags().GetString("site")
			if site == "" {
				return errors.New("preload: --site is required")
			}
			confirm, _ := cmd.Flags().GetBool("confirm")
			restart, _ := cmd.Flags().GetBool("restart")
			for _, f := range args {
				info, err := os.Stat(f)
				if err != nil {
					return fmt.Errorf("preload: %w", err)
				}
				if info.IsDir() {
					return fmt.Errorf("preload: %s is a directory", f)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return preload(ctx, c, preloadArgs{site: site, confirm: confirm, restart: restart, files: args},
				cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addCommonFlags(cmd.Flags())
	cmd.Flags().String("site", "", "the site code the files come from (required)")
	cmd.Flags().Bool("confirm", false, "preload even though the site is already live (its data is marked data sharing Unknown)")
	cmd.Flags().Bool("restart", false, "discard the checkpoints and rejects of an earlier run and start the files over")
	return cmd
}

type preloadArgs struct {
	site             string
	confirm, restart bool
	files            []string
}

func preload(ctx context.Context, c *config, a preloadArgs, stdout, stderr io.Writer) error {
	// Its progress and summary are for a person at a terminal: the log says only what goes wrong,
	// in the same console format, as vaxgate report's does.
	lc := *c
	lc.Log.Format = "console"
	if lc.Log.Level == "info" {
		lc.Log.Level = "warn"
	}
	log, err := newLogger(&lc)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	db, closeDB, err := database(ctx, c, log)
	if err != nil {
		return err
	}
	defer closeDB()
	sender, err := db.SiteSender(ctx, a.site)
	if errors.Is(err, ingest.ErrUnknownSender) {
		return fmt.Errorf("preload: site %s is not registered", a.site)
	}
	if err != nil {
		return err
	}
	if err := file.CheckPreload(sender, time.Now(), a.confirm); err != nil {
		return fmt.Errorf("preload: %w", err)
	}
	set, err := codeSet(ctx, db)
	if err != nil {
		return err
	}
	validator, err := newValidator(c, set)
	if err != nil {
		return err
	}
	writer, err := db.NewWriter(store.WriterOptions{
		MaxBatch: c.Store.MaxBatch, MaxDelay: c.Store.MaxDelay, Shards: c.Store.Shards, Codes: set,
		Logger: log, Registerer: prometheus.NewRegistry(),
	})
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := writer.Close(sctx); err != nil {
			log.Error("writer close", zap.Error(err))
		}
	}()
	pipeline, err := ingest.NewPipeline(ingest.Options{
		Committer: writer, Validator: validator, ACK: newACKBuilder(c),
		SharingPolicy: ingest.SharingPolicy(c.SharingPolicy), Logger: log,
	})
	if err != nil {
		return err
	}
	if sender.Status == ingest.SiteTesting {
		fmt.Fprintf(stderr, "preload: site %s is in testing: its messages (MSH-11 T) go to the test environment\n", a.site)
	}

	var total file.State
	var rejectFiles []string
	started := time.Now()
	answered := 0 // messages answered by this run (not counting an earlier, interrupted one)
	for _, name := range a.files {
		p := newProgress(stderr, name)
		res, err := file.PreloadFile(ctx, name, file.PreloadOptions{
			Starter: pipeline, Sender: sender, Restart: a.restart, Process: fileProcessOptions(c),
			Resume: p.resume, Progress: p.update,
		})
		if res != nil {
			if res.AlreadyDone {
				fmt.Fprintf(stderr, "preload: %s was preloaded already (%s); --restart to load it again\n", name, filepath.Base(name)+file.PreloadStateSuffix)
			}
		}
		if err == nil && res != nil && !res.AlreadyDone {
			p.done(res.State)
		} else if !(err == nil && res != nil) {
			p.stop()
		}
		if res != nil {
			if !res.AlreadyDone {
				answered += res.State.Messages - res.StartMessages
			}
			total.Add(res.State)
			if res.Rejects != "" && res.State.Rejected > 0 {
				rejectFiles = append(rejectFiles, res.Rejects)
			}
		}
		if errors.Is(err, file.ErrInterrupted) {
			printSummary(stdout, a.site, &total, rejectFiles, answered, time.Since(started))
			fmt.Fprintf(stderr, "preload: interrupted in %s; run the same command again to resume from the checkpoint\n", name)
			return exitError{130}
		}
		if errors.Is(err, file.ErrNotHL7) {
			return fmt.Errorf("preload: %s: %w", name, err)
		}
		if err != nil {
			return fmt.Errorf("preload: %s: %w (run the same command again to resume)", name, err)
		}
		log.Info("file preloaded", zap.String("site", a.site), zap.String("file", filepath.Base(name)),
			zap.Int("messages", res.State.Messages), zap.Int("rejected", res.State.Rejected))
	}
	printSummary(stdout, a.site, &total, rejectFiles, answered, time.Since(started))
	if total.Rejected > 0 {
		return exitError{1}
	}
	return nil
}

func printSummary(w io.Writer, site string, st *file.State, rejects []string, answered int, took time.Duration) {
	rate := 0.0
	if took > 0 {
		rate = float64(answered) / took.Seconds()
	}
	fmt.Fprintf(w, "preload %s: %d messages (%d in this run, %s, %.0f msg/s)\n", site, st.Messages, answered, took.Round(time.Second), rate)
	fmt.Fprintf(w, "  accepted                %10d\n", st.Accepted)
	fmt.Fprintf(w, "  accepted with warnings  %10d\n", st.Warnings)
	fmt.Fprintf(w, "  accepted with errors    %10d  (some vaccinations rejected, the rest stored)\n", st.Partial)
	fmt.Fprintf(w, "  rejected                %10d  (nothing stored)\n", st.Rejected)
	if rules := st.Rules(); len(rules) > 0 {
		fmt.Fprintln(w, "errors by rule (location, HL7 error code):")
		for _, r := range rules {
			fmt.Fprintf(w, "  %10d  %s\n", r.Count, r.Rule)
		}
	}
	for _, r := range rejects {
		fmt.Fprintf(w, "rejected messages: %s (reasons in %s)\n", r, r[:len(r)-len(file.PreloadRejectsSuffix)]+file.PreloadReportSuffix)
	}
}

// progress shows how a file goes: a bar with rate and ETA on a terminal, a line every 10 seconds
// otherwise.
type progress struct {
	w           io.Writer
	name        string
	bar         *progressbar.ProgressBar // nil when not a terminal
	start       time.Time
	startCount  int
	startOffset int64
	lastLine    time.Time
	size        int64
}

func newProgress(w io.Writer, name string) *progress {
	p := &progress{w: w, name: filepath.Base(name), start: time.Now(), lastLine: time.Now()}
	if info, err := os.Stat(name); err == nil {
		p.size = info.Size()
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p.bar = progressbar.NewOptions64(p.size,
			progressbar.OptionSetWriter(w),
			progressbar.OptionSetDescription(p.name),
			progressbar.OptionShowBytes(true),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetElapsedTime(true),
			progressbar.OptionSetWidth(30),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionShowDescriptionAtLineEnd(),
		)
	}
	return p
}

// resume starts the clock for the rate and says where an interrupted file resumes.
func (p *progress) resume(st *file.State) {
	p.start, p.startCount, p.startOffset = time.Now(), st.Messages, st.Offset
	if st.Messages > 0 {
		fmt.Fprintf(p.w, "preload %s: resuming after %d messages (%s)\n", p.name, st.Messages, p.percent(st.Offset))
	}
	if p.bar != nil {
		_ = p.bar.Set64(st.Offset)
	}
}

func (p *progress) update(st *file.State) {
	elapsed := time.Since(p.start).Seconds()
	rate := 0.0
	if elapsed > 0 {
		rate = float64(st.Messages-p.startCount) / elapsed
	}
	if p.bar != nil {
		p.bar.Describe(fmt.Sprintf("%s: %d messages, %.0f msg/s, %d rejected", p.name, st.Messages, rate, st.Rejected))
		_ = p.bar.Set64(st.Offset)
		return
	}
	if time.Since(p.lastLine) < 10*time.Second {
		return
	}
	p.lastLine = time.Now()
	fmt.Fprintf(p.w, "preload %s: %d messages, %s, %.0f msg/s, %d rejected%s\n",
		p.name, st.Messages, p.percent(st.Offset), rate, st.Rejected, p.eta(st.Offset, elapsed))
}

func (p *progress) percent(off int64) string {
	if p.size <= 0 {
		return "100%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(off)/float64(p.size))
}

// eta extrapolates the bytes read by this run.
func (p *progress) eta(off int64, elapsed float64) string {
	done := off - p.startOffset
	if done <= 0 || elapsed <= 0 {
		return ""
	}
	left := time.Duration(float64(p.size-off) / (float64(done) / elapsed) * float64(time.Second))
	return ", ETA " + left.Round(time.Second).String()
}

func (p *progress) done(st *file.State) {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.w)
		return
	}
	fmt.Fprintf(p.w, "preload %s: done, %d messages, %d rejected\n", p.name, st.Messages, st.Rejected)
}

func (p *progress) stop() {
	if p.bar != nil {
		_ = p.bar.Exit()
		fmt.Fprintln(p.w)
	}
}
