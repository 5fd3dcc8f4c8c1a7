package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/vaxgate/vaxgate/hl7"
	"github.com/vaxgate/vaxgate/ingest/vxugen"
)

type benchOptions struct {
	addr        string
	conns       int
	messages    int
	window      int
	rate        float64
	facility    string
	processing  string
	patients    int
	seed        uint64
	timeout     time.Duration
	verifyDB    string
	runID       string
	updateShare float64
	newPatients bool
	split       time.Duration
	// verifyRecords is the size of the read-back sample (bench_verify.go); 0 reads nothing back.
	verifyRecords int
	cpuProfile    string // file for a CPU profile of the run (not of the verification after it)
	verifyAfter   string // the verification waits until this file exists
}

func newBenchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench --addr HOST:PORT [--conns N] [--messages M] [--rate R]",
		Short: "Load generator: send realistic synthetic VXU over MLLP and report throughput and ACK latency",
		Long: `Generate realistic, varied, valid VXU messages (distinct patients and doses, some repeats and
updates), send them over N MLLP connections with pipelining, check every ACK, and print throughput,
ACK latency percentiles and the count of ACKs that are not AA. With --verify-db it then counts the
acknowledged messages of this run in the database: every AA or AE must be there. With
--verify-records N it then reads back, through the registry's read API, the records of a random
sample of N patients the run reported once and compares them field by field with what was sent
(differences name the sample and the field, never a value).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.addr == "" {
				return fmt.Errorf("bench: --addr HOST:PORT is required")
			}
			if o.conns < 1 || o.messages < 1 || o.window < 1 {
				return fmt.Errorf("bench: --conns, --messages and --window must be at least 1")
			}
			if o.verifyRecords < 0 {
				return fmt.Errorf("bench: --verify-records must be 0 or more")
			}
			if o.verifyRecords > 0 && o.verifyDB == "" {
				return fmt.Errorf("bench: --verify-records needs --verify-db (the engine's database)")
			}
			if o.runID == "" {
				o.runID = "B" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			stopProfile, err := startCPUProfile(o.cpuProfile)
			if err != nil {
				return err
			}
			res, err := runBench(cmd.Context(), o)
			if perr := stopProfile(); perr != nil && err == nil {
				err = perr
			}
			if err != nil {
				return err
			}
			res.print(cmd.OutOrStdout(), o)
			if err := waitForFile(cmd.Context(), o.verifyAfter, o.timeout); err != nil {
				return err
			}
			if o.verifyDB == "env" {
				// The URL holds a password: scripts pass it in the environment, not on the command
				// line, where every local user's ps would show it.
				o.verifyDB = os.Getenv("VAXGATE_DATABASE_URL")
			}
			if o.verifyDB != "" {
				stored, err := countStored(cmd.Context(), o.verifyDB, o.runID)
				if err != nil {
					return err
				}
				acked := res.codes["AA"] + res.codes["AE"]
				fmt.Fprintf(cmd.OutOrStdout(), "verify: %d acknowledged (AA/AE), %d stored in the database\n", acked, stored)
				if stored < acked {
					return fmt.Errorf("bench: %d acknowledged messages are missing from the database", acked-stored)
				}
			}
			if o.verifyRecords > 0 {
				// Bounded like the run: --timeout again.
				vctx, vcancel := context.WithTimeout(cmd.Context(), o.timeout)
				rr, err := verifyRecords(vctx, o, res, o.verifyDB)
				vcancel()
				rr.print(cmd.OutOrStdout())
				if err != nil {
					return err
				}
			}
			if res.failed > 0 {
				return exitError{1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.addr, "addr", "", "MLLP address of the engine (HOST:PORT)")
	f.IntVar(&o.conns, "conns", 16, "concurrent connections")
	f.IntVar(&o.messages, "messages", 10000, "messages in all")
	f.IntVar(&o.window, "window", 16, "messages in flight per connection (pipelining; at most 256 with --rate)")
	f.Float64Var(&o.rate, "rate", 0, "messages per second in all (0 = as fast as possible)")
	f.StringVar(&o.facility, "facility", "X68", "MSH-4 sending facility (must belong to the site the engine knows this sender as)")
	f.StringVar(&o.processing, "processing-id", "P", "MSH-11: P for a production site, T for a testing site")
	f.IntVar(&o.patients, "patients", 0, "patient population (default: messages/2)")
	f.Float64Var(&o.updateShare, "update-share", 0.05, "share of messages that update an earlier dose")
	f.Uint64Var(&o.seed, "seed", 1, "seed of the synthetic traffic")
	f.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	f.StringVar(&o.verifyDB, "verify-db", "", "PostgreSQL URL of the engine's database (\"env\": $VAXGATE_DATABASE_URL): check that every acknowledged message is stored")
	f.BoolVar(&o.newPatients, "new-patients", false, "every message the first report of a new patient, with one new dose (a registry filling up)")
	f.DurationVar(&o.split, "split", 0, "also print the rate of the first SPLIT of the run and of the rest (a slowdown as tables grow)")
	f.IntVar(&o.verifyRecords, "verify-records", 0, "after the run, read back the records of a random sample of this many patients (with --verify-db) and compare them field by field with what was sent")
	f.StringVar(&o.runID, "run-id", "", "prefix of this run's control IDs (default: unique)")
	f.StringVar(&o.verifyAfter, "verify-after", "", "before verifying, wait until this file exists (a measuring script's readings of the run come first)")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator during the run to this file (go tool pprof FILE)")
	return cmd
}

// waitForFile waits until path exists (none: at once), at most timeout.
func waitForFile(ctx context.Context, path string, timeout time.Duration) error {
	if path == "" {
		return nil
	}
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bench: %s did not appear within %s", path, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

type benchResult struct {
	elapsed time.Duration
	cpu     time.Duration // this process's CPU time until the last ACK (0: not known)
	sent    int
	codes   map[string]int
	failed  int // ACKs not AA/AE, or send errors
	errors  []string
	latency latencyHist // from the write of each message to the read of its ACK
	early   int         // ACKs read within the first --split of the run

	// For --verify-records: the generators' inputs, what each connection sent, and the source
	// address the engine saw.
	now       time.Time
	patients  int
	logs      []*sentLog
	localAddr netip.Addr
}

// benchGenerator is connection c's generator: the same options give the same messages, which
// --verify-records relies on to generate its sample again after the run.
func benchGenerator(o benchOptions, c, patients int, now time.Time) *vxugen.Generator {
	return vxugen.New(vxugen.Options{
		Seed: o.seed*1000003 + uint64(c), Facility: o.facility, ProcessingID: o.processing,
		ControlIDs: fmt.Sprintf("%s-%d", o.runID, c), Patients: patients, UpdateShare: o.updateShare, Now: now,
		NewPatients: o.newPatients,
	})
}

func runBench(ctx context.Context, o benchOptions) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	patients := o.patients
	if patients <= 0 {
		patients = max(o.messages/2, 1)
	}
	// With --rate, connection c sends its i-th message at start + (i*conns + c)/rate: a schedule
	// of its own, kept whatever the ACKs do. A connection whose ACK comes back after its next
	// send time sends at once (and keeps sending at once until it is on schedule again), so the
	// rate asked for is the rate sent whenever the connections can carry it, and a slow answer
	// shows as latency, not as fewer messages. (A shared ticker drops the ticks no connection is
	// free to take: at window 1 it sent far less than asked.)
	var interval time.Duration
	if o.rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.conns) / o.rate)
	}
	var (
		res  = &benchResult{codes: map[string]int{}}
		addr atomic.Pointer[netip.Addr]
	)
	now := time.Now()
	start := time.Now()
	res.now, res.patients = now, patients
	if o.verifyRecords > 0 {
		res.logs = make([]*sentLog, o.conns)
		for c := range res.logs {
			res.logs[c] = &sentLog{}
		}
	}
	var lanes []*benchLane
	for c := 0; c < o.conns; c++ {
		n := o.messages / o.conns
		if c < o.messages%o.conns {
			n++
		}
		if n == 0 {
			continue
		}
		l := &benchLane{c: c, n: n, codes: map[string]int{}}
		gen := benchGenerator(o, c, patients, now)
		var log *sentLog
		if res.logs != nil {
			log = res.logs[c]
		}
		l.sched = benchSchedule{first: start}
		if interval > 0 {
			l.sched = benchSchedule{first: start.Add(time.Duration(float64(time.Second) * float64(c) / o.rate)), interval: interval}
		}
		l.next = func(dst []byte) []byte {
			dst = gen.AppendNext(dst)
			if log != nil {
				log.sent(gen.PatientID())
			}
			return dst
		}
		l.onAck = func(i int, ack []byte, rtt time.Duration, at time.Time) {
			l.acks++
			l.lat.add(rtt)
			if o.split > 0 && at.Sub(start) <= o.split {
				l.early++
			}
			code := "??"
			if l.m.Parse(ack) == nil {
				code = l.m.Get("MSA-1")
			}
			if log != nil {
				log.acked(i, &l.m, code)
			}
			l.codes[code]++
			if code != "AA" && code != "AE" {
				l.failed++
			}
		}
		lanes = append(lanes, l)
	}
	// Without a schedule, all connections are driven by one goroutine on one epoll instance where
	// the system has it (bench_loop_linux.go); otherwise each by a goroutine of its own, which
	// writes and reads it in turn: a window so large that its messages and ACKs could fill both
	// ways' socket buffers would leave it and the server each waiting for the other to read.
	loop := interval == 0 && benchEventLoop && benchHasEventLoop
	if !loop && o.window > maxConnWindow {
		return nil, fmt.Errorf("bench: --window %d: at most %d with --rate (or on this system)", o.window, maxConnWindow)
	}
	if !loop || !runEventLoop(ctx, o, lanes, &addr) {
		var wg sync.WaitGroup
		for _, l := range lanes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l.err = sendConn(ctx, o, l.n, l.sched, l.next, &addr, l.onAck)
			}()
		}
		wg.Wait()
	}
	for _, l := range lanes {
		res.sent += l.acks
		res.latency.merge(&l.lat)
		res.early += l.early
		for k, v := range l.codes {
			res.codes[k] += v
		}
		res.failed += l.failed
		if l.err != nil {
			res.failed += l.n - l.acks
			res.errors = append(res.errors, fmt.Sprintf("connection %d: %v", l.c, l.err))
		}
	}
	res.elapsed = time.Since(start)
	if cpu, ok := processCPU(); ok {
		res.cpu = cpu
	}
	if a := addr.Load(); a != nil {
		res.localAddr = *a
	}
	return res, nil
}

// maxConnWindow is the largest window of a connection driven by a goroutine of its own
// (benchConn): its messages and ACKs fit in the socket buffers.
const maxConnWindow = 256

// benchEventLoop lets runBench drive the connections of a run without --rate from one event
// loop where the system has one (tests turn it off to run the portable path too).
var benchEventLoop = true

// benchLane is one connection's part of a run: its messages, its ACKs' tally, how it ended.
type benchLane struct {
	c, n  int // connection number, messages to send
	sched benchSchedule
	next  func([]byte) []byte                                      // appends the next message
	onAck func(i int, ack []byte, rtt time.Duration, at time.Time) // takes ACK i

	lat    latencyHist
	acks   int
	early  int // ACKs within the first --split
	codes  map[string]int
	failed int
	m      hl7.Message // each ACK parsed into it: its segments' memory is reused
	err    error
}

func sendConn(ctx context.Context, o benchOptions, n int, sched benchSchedule, next func([]byte) []byte,
	local *atomic.Pointer[netip.Addr], onAck func(int, []byte, time.Duration, time.Time)) error {
	c, err := dialBench(ctx, o.addr)
	if err != nil {
		return err
	}
	defer c.Close()
	a := localAddrOf(c.conn.LocalAddr())
	local.CompareAndSwap(nil, &a)
	return c.run(ctx, n, o.window, sched, next, onAck)
}

func (r *benchResult) print(w io.Writer, o benchOptions) {
	pct := r.latency.percentile
	rate := float64(r.sent) / r.elapsed.Seconds()
	fmt.Fprintf(w, "bench: %d messages over %d connections (window %d) in %.2fs: %.0f msg/s\n",
		r.sent, o.conns, o.window, r.elapsed.Seconds(), rate)
	fmt.Fprintf(w, "ack latency: p50 %s  p90 %s  p99 %s  max %s\n",
		pct(0.50).Round(10*time.Microsecond), pct(0.90).Round(10*time.Microsecond),
		pct(0.99).Round(10*time.Microsecond), pct(1).Round(10*time.Microsecond))
	if o.split > 0 && r.elapsed > o.split {
		fmt.Fprintf(w, "rate: first %s %.0f msg/s, then %.0f msg/s\n", o.split,
			float64(r.early)/o.split.Seconds(), float64(r.sent-r.early)/(r.elapsed-o.split).Seconds())
	}
	keys := make([]string, 0, len(r.codes))
	for k := range r.codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprint(w, "acks:")
	for _, k := range keys {
		fmt.Fprintf(w, " %s=%d", k, r.codes[k])
	}
	fmt.Fprintf(w, "  non-AA=%d  failed=%d\n", r.sent-r.codes["AA"], r.failed)
	if r.cpu > 0 {
		// The load generator's own cost, before any verification: what scripts bill to the client.
		fmt.Fprintf(w, "client cpu: %.2fs\n", r.cpu.Seconds())
	}
	for _, e := range r.errors {
		fmt.Fprintf(os.Stderr, "bench: %s\n", e)
	}
}

// startCPUProfile starts a CPU profile of this process into path ("": none); the function it
// returns stops it and closes the file.
func startCPUProfile(path string) (func() error, error) {
	if path == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("bench: --cpuprofile: %w", err)
		}
		return nil
	}, nil
}

// countStored counts this run's accepted messages in the engine's archive.
func countStored(ctx context.Context, url, runID string) (int, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("verify-db: connect: %w", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM messages WHERE control_id LIKE $1 || '-%' AND ack_code IN ('AA', 'AE') AND resend_key`,
		runID).Scan(&n); err != nil {
		return 0, fmt.Errorf("verify-db: count: %w", err)
	}
	return n, nil
}
