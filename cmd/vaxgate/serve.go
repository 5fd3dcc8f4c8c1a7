package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/vaxgate/vaxgate/ack"
	"github.com/vaxgate/vaxgate/ingest"
	"github.com/vaxgate/vaxgate/ingest/codes"
	"github.com/vaxgate/vaxgate/ingest/mllp"
	"github.com/vaxgate/vaxgate/ingest/validate"
	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/pgembed"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the engine: MLLP listener, HTTP listener (SOAP, admin API, metrics, health)",
		Long: `Run the engine. Without a database URL it starts a private PostgreSQL of its own from the
system's server binaries, with its data under --data-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			demo, _ := cmd.Flags().GetBool("demo")
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return serve(ctx, c, demo, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addCommonFlags(cmd.Flags())
	cmd.Flags().String("mllp-addr", "", "MLLP listen address (env VAXGATE_MLLP_ADDR, default :2575)")
	cmd.Flags().String("http-addr", "", "HTTP listen address (env VAXGATE_HTTP_ADDR, default :8080)")
	cmd.Flags().Bool("demo", false, "create a demo site (if absent) whose sender credentials are printed, for trying vaxgate out")
	return cmd
}

// database opens the configured PostgreSQL, or starts the private one, and applies the schema.
// The returned function closes everything it opened.
func database(ctx context.Context, c *config, log *zap.Logger) (*store.DB, func(), error) {
	url := c.DatabaseURL
	var pg *pgembed.Server
	if url == "" {
		var err error
		pg, err = pgembed.Start(ctx, pgembed.Options{DataDir: c.DataDir, Logger: log})
		if err != nil {
			return nil, nil, err
		}
		url = pg.URL()
		log.Info("private PostgreSQL started", zap.String("data_dir", c.DataDir))
	}
	stopPG := func() {
		if pg != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := pg.Stop(sctx); err != nil {
				log.Error("stop private PostgreSQL", zap.Error(err))
			}
		}
	}
	db, err := store.Open(ctx, url)
	if err != nil {
		stopPG()
		return nil, nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		stopPG()
		return nil, nil, err
	}
	return db, func() { db.Close(); stopPG() }, nil
}

// codeSet is the embedded CDC snapshot, or the newest one imported with `vaxgate codes import`.
func codeSet(ctx context.Context, db *store.DB) (*codes.Set, error) {
	data, err := db.LatestCodeSnapshot(ctx)
	if err != nil {
		return nil, err
	}
	if data == nil {
		return codes.Default(), nil
	}
	set, err := codes.Unmarshal(data)
	if err != nil {
		return nil, fmt.Errorf("imported code sets: %w", err)
	}
	return set, nil
}

func newValidator(c *config, set *codes.Set) (*validate.Validator, error) {
	sev, err := severities(c.Validation.Severity)
	if err != nil {
		return nil, err
	}
	per := map[string]map[string]ack.Severity{}
	for site, m := range c.Validation.Senders {
		if per[site], err = severities(m); err != nil {
			return nil, err
		}
	}
	o := validate.Options{Codes: set, Severity: sev, SenderSeverity: per}
	inputOptions(c, &o)
	return validate.New(o)
}

func newACKBuilder(c *config) *ack.Builder {
	var fac []string
	if c.ACK.Facility != "" {
		fac = []string{c.ACK.Facility}
	}
	return ack.NewBuilder([]string{c.ACK.Application}, fac,
		ack.Policy{AcceptedERR: c.ACK.AcceptedERR, WarningsAE: c.ACK.WarningsAE})
}

func mllpTLS(c *config) (*tls.Config, error) {
	t := c.MLLP.TLS
	if t.Cert == "" && t.Key == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(t.Cert, t.Key)
	if err != nil {
		return nil, fmt.Errorf("mllp tls: %w", err)
	}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCA != "" {
		pem, err := os.ReadFile(t.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("mllp tls client CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mllp tls client CA %s: no certificates", t.ClientCA)
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

func serve(ctx context.Context, c *config, demo bool, stdout, stderr io.Writer) error {
	log, err := newLogger(c)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	gc, err := applyRuntime(c.Runtime, osGetenv)
	if err != nil {
		return err
	}
	logRuntime(log, gc)
	applyHeapProfile(log, c.HTTP.Pprof, osGetenv)

	// The listeners are bound first: an address already in use is the one error reported, before
	// a private PostgreSQL is created or started and before any background job runs. Until Serve,
	// the kernel queues the connections that arrive.
	mllpLn, err := net.Listen("tcp", c.MLLP.Addr)
	if err != nil {
		return fmt.Errorf("mllp listen %s: %w", c.MLLP.Addr, err)
	}
	defer mllpLn.Close() // closed already when served: Shutdown closes it
	httpLn, err := net.Listen("tcp", c.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", c.HTTP.Addr, err)
	}
	defer httpLn.Close()

	db, closeDB, err := database(ctx, c, log)
	if err != nil {
		return err
	}
	defer closeDB()
	// Background jobs end, and are waited for, before the database closes (deferred calls run in
	// reverse): a start that fails later, or a shutdown, is not followed by their errors against
	// a closed pool.
	jobsCtx, stopJobs := context.WithCancel(ctx)
	var jobs sync.WaitGroup
	defer func() {
		stopJobs()
		jobs.Wait()
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	set, err := codeSet(ctx, db)
	if err != nil {
		return err
	}
	validator, err := newValidator(c, set)
	if err != nil {
		return err
	}
	writer, err := db.NewWriter(store.WriterOptions{
		MaxBatch: c.Store.MaxBatch, MaxDelay: c.Store.MaxDelay, Shards: c.Store.Shards, Codes: set, OutageWait: c.Store.OutageWait,
		Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	ackBuilder := newACKBuilder(c)
	pipeline, err := ingest.NewPipeline(ingest.Options{
		Committer: writer, Validator: validator, ACK: ackBuilder,
		SharingPolicy: ingest.SharingPolicy(c.SharingPolicy), Logger: log, Registerer: reg,
	})
	if err != nil {
		return err
	}
	if localMailDrop(c) {
		fmt.Fprintf(stdout, "No smtp.addr: e-mails (invitations) are written to %s as .eml files.\n", c.SMTP.Dir)
	}
	adminSvc, err := newAdminService(c, db, log)
	if err != nil {
		return err
	}
	// Accounts unused for 90 days become Inactive Expired; ended sessions and invitations go.
	jobs.Go(func() { adminSvc.RunMaintenance(jobsCtx, time.Hour) })
	// Report summaries of recent messages, so that reports find them ready (package report).
	startReportSummaries(jobsCtx, &jobs, c, db, log)

	tlsCfg, err := mllpTLS(c)
	if err != nil {
		return err
	}
	mllpMax, httpMax := sizeConnectionCaps(c, log)
	mllpSrv, err := mllp.NewServer(mllp.Options{
		Starter: pipeline, Senders: db, TLSConfig: tlsCfg,
		MaxMessageSize: c.MLLP.MaxMessageSize, ReadTimeout: c.MLLP.ReadTimeout, IdleTimeout: c.MLLP.IdleTimeout,
		WriteTimeout: c.MLLP.WriteTimeout, MaxConnections: mllpMax, MaxInFlight: c.MLLP.MaxInFlight,
		MaxConnectionsPerSource: c.MLLP.MaxConnectionsPerSource, ReservedConnections: min(c.MLLP.ReservedConnections, mllpMax/2),
		HandshakeTimeout: c.MLLP.HandshakeTimeout, MaxJunkFrames: c.MLLP.MaxJunkFrames, SenderTTL: c.MLLP.SenderTTL,
		MaxInFlightBytes: c.MLLP.MaxInFlightBytes, MaxMemory: c.MLLP.MaxMemory,
		ProcessingFactor: c.MLLP.ProcessingFactor, ACKReserve: c.MLLP.ACKReserve,
		Logger: log, Registerer: reg, ACK: ackBuilder,
	})
	if err != nil {
		return err
	}
	mux, err := newHTTPMux(c, db, pipeline, adminSvc, reg, log)
	if err != nil {
		return err
	}
	limited, err := newConnLimiter(httpLn, httpMax, reg)
	if err != nil {
		return fmt.Errorf("http listener: %w", err)
	}
	httpSrv := newHTTPServer(c, mux, limited, log)

	errs := make(chan error, 2)
	go func() { errs <- mllpSrv.Serve(mllpLn) }()
	go func() { errs <- httpSrv.Serve(limited) }()
	{
		fc := *c
		fc.HTTP.Addr = httpLn.Addr().String()
		if err := ensureFirstAdmin(ctx, adminSvc, stdout, &fc); err != nil {
			stopServing(log, c, mllpSrv, httpSrv, writer)
			return err
		}
	}
	if demo {
		// Only now, with both listeners bound and serving, are the credentials worth printing;
		// they name the addresses actually bound.
		dc := *c
		dc.MLLP.Addr, dc.HTTP.Addr = mllpLn.Addr().String(), httpLn.Addr().String()
		if err := setUpDemo(ctx, adminSvc, stdout, &dc, log); err != nil {
			stopServing(log, c, mllpSrv, httpSrv, writer)
			return err
		}
		mllpSrv.RefreshSourceRanges(ctx) // the demo credentials' ranges get reserved slots now
	}
	// The drop folders start last, once the sites they name (the demo's too) exist.
	stopFiles, err := startFileDrop(ctx, c, db, pipeline, log, reg) // drop folders (file.*)
	if err != nil {
		stopServing(log, c, mllpSrv, httpSrv, writer)
		return err
	}
	log.Info("vaxgate serving", zap.String("mllp", mllpLn.Addr().String()), zap.String("http", httpLn.Addr().String()))
	fmt.Fprintf(stderr, "vaxgate: MLLP on %s, HTTP on %s (Ctrl-C stops)\n", mllpLn.Addr(), httpLn.Addr())

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errs:
		if errors.Is(serveErr, http.ErrServerClosed) {
			serveErr = nil
		}
	}
	stopServing(log, c, mllpSrv, httpSrv, writer, stopFiles)
	return serveErr
}

// shutdowner and flusher are what stopServing needs of the listeners and of the writer.
type (
	shutdowner interface{ Shutdown(context.Context) error }
	flusher    interface{ Close(context.Context) error }
)

// stopServing stops the listeners (MLLP and HTTP at the same time, within shutdown.timeout:
// messages already read are committed and answered), then gives the writer its own budget,
// shutdown.writer_timeout, to flush what it still holds. A connection stuck until the listeners'
// budget runs out therefore cannot take the writer's time. drains run between the two: other
// sources of messages (the drop folders) that must stop before the writer closes.
func stopServing(log *zap.Logger, c *config, mllpSrv, httpSrv shutdowner, writer flusher, drains ...func()) {
	log.Info("shutting down", zap.Duration("timeout", c.Shutdown.Timeout), zap.Duration("writer_timeout", c.Shutdown.WriterTimeout))
	lctx, cancel := context.WithTimeout(context.Background(), c.Shutdown.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	for name, s := range map[string]shutdowner{"mllp": mllpSrv, "http": httpSrv} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Shutdown(lctx); err != nil {
				log.Error(name+" shutdown", zap.Error(err))
			}
		}()
	}
	wg.Wait()
	for _, drain := range drains {
		drain() // e.g. the drop folders: files being processed stop at a checkpoint, every message started answered
	}
	wctx, wcancel := context.WithTimeout(context.Background(), c.Shutdown.WriterTimeout)
	defer wcancel()
	if err := writer.Close(wctx); err != nil {
		log.Error("writer close", zap.Error(err))
	}
}

// fileReserve is the file descriptors kept for everything but client connections: the database
// pool, log and data files, listeners, the private PostgreSQL's pipes.
const fileReserve = 128

// sizeConnectionCaps raises the open-file limit as far as it goes and returns the MLLP and HTTP
// connection caps, shrunk in proportion when together they would not fit under it: a listener
// that runs out of descriptors fails for the other one too (and for /readyz).
func sizeConnectionCaps(c *config, log *zap.Logger) (mllpMax, httpMax int) {
	mllpMax, httpMax = c.MLLP.MaxConnections, c.HTTP.MaxConnections
	if mllpMax <= 0 {
		mllpMax = mllp.DefaultMaxConnections
	}
	if httpMax <= 0 {
		httpMax = 512
	}
	limit, err := raiseFileLimit()
	if err != nil {
		log.Warn("could not raise the open-file limit", zap.Error(err))
	}
	m, h := fitConnectionCaps(limit, mllpMax, httpMax)
	if m != mllpMax || h != httpMax {
		log.Warn("connection caps lowered to fit the open-file limit (raise it with ulimit -n or LimitNOFILE)",
			zap.Uint64("nofile", limit), zap.Int("mllp_max_connections", m), zap.Int("http_max_connections", h))
	}
	return m, h
}

// fitConnectionCaps shrinks the two caps in proportion so that they and fileReserve fit under
// limit (0: unknown, left as they are); each keeps at least 16.
func fitConnectionCaps(limit uint64, mllpMax, httpMax int) (int, int) {
	if limit == 0 || uint64(mllpMax+httpMax+fileReserve) <= limit {
		return mllpMax, httpMax
	}
	avail := max(int(limit)-fileReserve, 32)
	m := max(avail*mllpMax/(mllpMax+httpMax), 16)
	return m, max(avail-m, 16)
}
