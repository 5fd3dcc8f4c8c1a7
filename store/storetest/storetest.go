// Package storetest runs integration tests against a real PostgreSQL: no mocks. A test package
// calls Main from its TestMain; each test then gets its own fresh, migrated database from New.
//
// The server is set up by the first New of a test binary (binaries, runs and fuzz workers that need
// no database start none). With VAXGATE_TEST_DATABASE_URL set, it is that server: its role must be
// allowed to CREATE DATABASE; each test binary creates a template and per-test databases there and
// drops them when done. Otherwise it is a private server started with pgembed in a temporary
// directory (in memory when /dev/shm is large enough), with fsync off for speed, removed at the
// end. Missing PostgreSQL binaries fail the tests loudly, with the one-line install hint: never a
// skip, since CI must not pass by silently not testing.
//
// Speed: the migrations are applied once per test binary, into a template database; each New is a
// CREATE DATABASE … TEMPLATE (a copy of a few megabytes), and the drop runs in the background.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vaxgate/vaxgate/store"
	"github.com/vaxgate/vaxgate/store/pgembed"
)

// DatabaseURLEnv names the environment variable pointing the tests at an existing server.
const DatabaseURLEnv = "VAXGATE_TEST_DATABASE_URL"

// settings are the private test server's postgresql.conf settings: durability traded for speed
// (a crashed test server is thrown away anyway), and room for parallel tests' pools.
var settings = map[string]string{
	"fsync":              "off",
	"synchronous_commit": "off",
	"full_page_writes":   "off",
	"shared_buffers":     "64MB",
	"max_connections":    "300",
	"wal_level":          "minimal",
	"max_wal_senders":    "0",
}

// harness is the server shared by the tests of one test binary. It is package state by necessity:
// TestMain and the tests share nothing else. It is set up on the first New, so that test binaries
// (or runs, or fuzz workers) that need no database do not start a server.
type harness struct {
	mu       sync.Mutex
	ready    bool
	setupErr error
	stop     func() // stops the private server, if one was started

	adminURL string        // connects to a maintenance database of the server
	admin    *pgxpool.Pool // CREATE and DROP DATABASE
	force    bool          // DROP DATABASE … WITH (FORCE) is available (PostgreSQL 13+)
	// copyClause is appended to CREATE DATABASE … TEMPLATE: on the private server (fsync off, so
	// checkpoints are cheap) copying files is about twice as fast as PostgreSQL 15's default of
	// WAL-logging every block.
	copyClause string

	template    string
	templateErr error

	drops sync.WaitGroup // per-test databases being dropped in the background
}

var current *harness

// Main is for TestMain: it runs the tests, providing the server (see the package doc) from the
// first New on, then drops what the tests left, stops the private server, and exits with the tests'
// exit code.
func Main(m *testing.M) {
	os.Exit(run(m))
}

// Run is Main without the exit: it returns the tests' exit code, for a TestMain with clean-up of
// its own to do after the server is gone.
func Run(m *testing.M) int { return run(m) }

func run(m *testing.M) int {
	h := &harness{}
	current = h
	code := m.Run()
	current = nil
	h.close()
	return code
}

// setup connects to the external server or starts the private one. Called with h.mu held.
func (h *harness) setup(ctx context.Context) error {
	if h.ready || h.setupErr != nil {
		return h.setupErr
	}
	h.setupErr = func() error {
		private := false
		if u := os.Getenv(DatabaseURLEnv); u != "" {
			h.adminURL = u
		} else {
			private = true
			srv, stop, err := startPrivate(ctx)
			if err != nil {
				return err
			}
			h.stop = stop
			h.adminURL = srv.AdminURL("postgres")
		}
		admin, err := pgxpool.New(ctx, h.adminURL)
		if err == nil {
			err = admin.Ping(ctx)
		}
		if err != nil {
			if admin != nil {
				admin.Close()
			}
			return fmt.Errorf("connect to the test server: %w", err)
		}
		h.admin = admin
		var version int
		if err := admin.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
			return fmt.Errorf("server version: %w", err)
		}
		h.force = version >= 130000
		if private && version >= 150000 {
			h.copyClause = " STRATEGY = FILE_COPY"
		}
		return nil
	}()
	h.ready = h.setupErr == nil
	return h.setupErr
}

// close waits for the background drops, drops the template and stops the private server.
func (h *harness) close() {
	h.drops.Wait()
	if h.template != "" && h.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := h.drop(ctx, h.template); err != nil {
			fmt.Fprintf(os.Stderr, "storetest: drop template database: %v\n", err)
		}
	}
	if h.admin != nil {
		h.admin.Close()
	}
	if h.stop != nil {
		h.stop()
	}
}

// startPrivate starts a throw-away server in a temporary directory, in memory when possible: the
// server's files are scratch, and CREATE DATABASE on a busy disk is several times slower.
func startPrivate(ctx context.Context) (*pgembed.Server, func(), error) {
	dir, err := os.MkdirTemp(scratchDir(), "vaxgate-test-pg-")
	if err != nil {
		return nil, nil, err
	}
	srv, err := pgembed.Start(ctx, pgembed.Options{DataDir: dir, Settings: settings})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return srv, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := srv.Stop(sctx); err != nil {
			fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
		}
		os.RemoveAll(dir)
	}, nil
}

// New returns a fresh, migrated database of its own for this test, dropped when the test ends.
func New(t testing.TB) *store.DB {
	t.Helper()
	u := NewURL(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, u)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	t.Cleanup(db.Close) // runs before NewURL's drop
	return db
}

// NewURL is New returning the database's URL (with credentials) instead of a connection.
func NewURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := harnessFor(ctx, t)
	tmpl, err := h.templateDB(ctx)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return h.create(ctx, t, "TEMPLATE "+pgx.Identifier{tmpl}.Sanitize()+h.copyClause)
}

// NewEmptyURL returns the URL of a fresh database without any schema (not migrated), dropped when
// the test ends: for tests of migrations themselves.
func NewEmptyURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return harnessFor(ctx, t).create(ctx, t, "")
}

// harnessFor returns the harness, set up; it fails the test (never skips it) when there is no
// server to test against.
func harnessFor(ctx context.Context, t testing.TB) *harness {
	t.Helper()
	h := current
	if h == nil {
		t.Fatal("storetest: no test server: call storetest.Main(m) from this package's TestMain")
	}
	h.mu.Lock()
	err := h.setup(ctx)
	h.mu.Unlock()
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return h
}

// create creates a uniquely named database and schedules its drop.
func (h *harness) create(ctx context.Context, t testing.TB, clause string) string {
	t.Helper()
	name := "vaxgate_test_" + randomSuffix()
	if _, err := h.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()+" "+clause); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		// Dropped in the background, overlapping the next test; Main waits for the drops.
		h.drops.Add(1)
		go func() {
			defer h.drops.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := h.drop(ctx, name); err != nil {
				fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
			}
		}()
	})
	u, err := withDatabase(h.adminURL, name)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return u
}

// templateDB creates and migrates the template database on first use.
func (h *harness) templateDB(ctx context.Context) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.template != "" || h.templateErr != nil {
		return h.template, h.templateErr
	}
	h.templateErr = func() error {
		name := "vaxgate_template_" + randomSuffix()
		if _, err := h.admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return fmt.Errorf("create template database: %w", err)
		}
		h.template = name
		u, err := withDatabase(h.adminURL, name)
		if err != nil {
			return err
		}
		db, err := store.Open(ctx, u)
		if err != nil {
			return err
		}
		err = db.Migrate(ctx)
		db.Close()
		if err != nil {
			return fmt.Errorf("migrate the template database: %w", err)
		}
		// No connections to it from now on (not even autovacuum's): CREATE DATABASE … TEMPLATE
		// fails while the template has any.
		if _, err := h.admin.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" WITH ALLOW_CONNECTIONS false"); err != nil {
			return fmt.Errorf("seal template database: %w", err)
		}
		return nil
	}()
	if h.templateErr != nil {
		return "", h.templateErr
	}
	return h.template, nil
}

func (h *harness) drop(ctx context.Context, name string) error {
	sql := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
	if h.force {
		sql += " WITH (FORCE)"
	}
	if _, err := h.admin.Exec(ctx, sql); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// withDatabase returns connString (a URL or a key=value DSN) pointing at database db.
func withDatabase(connString, db string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			return "", errors.New("invalid " + DatabaseURLEnv + " URL")
		}
		u.Path = "/" + db
		u.RawPath = ""
		return u.String(), nil
	}
	return connString + " dbname=" + db, nil // the last dbname wins
}

func randomSuffix() string {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}
