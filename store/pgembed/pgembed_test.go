//go:build unix

package pgembed

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// fast are the settings tests use: durability is not what they test.
var fast = map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "shared_buffers": "32MB"}

// tempDir is like t.TempDir, but its parent is traversable by the server's user when running as
// root (t.TempDir's parent is 0700).
func tempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgembed-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "data")
}

// start starts a server, stopped when the test ends.
func start(t *testing.T, o Options) *Server {
	t.Helper()
	s := startNoCleanup(t, o)
	t.Cleanup(func() { s.Stop(context.Background()) })
	return s
}

func startNoCleanup(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Settings == nil {
		o.Settings = fast
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	s, err := Start(ctx, o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v", time.Since(t0))
	return s
}

func stop(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	t0 := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop took %v", time.Since(t0))
}

func execSQL(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func count(t *testing.T, url, sql string) int {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// TestLifecycle walks one cluster (initdb is most of a test's time) through first start, restarts,
// a second concurrent Start, a stale pid file, a killed server and a failed start.
func TestLifecycle(t *testing.T) {
	dir := tempDir(t)
	// synchronous_commit stays on: a commit must survive the kill below.
	settings := map[string]string{"fsync": "off", "shared_buffers": "32MB"}
	var s *Server // the current server, stopped at the end
	t.Cleanup(func() {
		if s != nil {
			s.Stop(context.Background())
		}
	})

	t.Run("first start creates the cluster", func(t *testing.T) {
		s = startNoCleanup(t, Options{DataDir: dir, Database: "app", Settings: settings})
		if !strings.Contains(s.URL(), "/app?") {
			t.Errorf("URL does not name database app")
		}
		execSQL(t, s.URL(), "CREATE TABLE kept (x int); INSERT INTO kept VALUES (1), (2)")
		if got := count(t, s.AdminURL("postgres"), "SELECT count(*) FROM pg_database WHERE datname = 'app'"); got != 1 {
			t.Errorf("database app: %d rows", got)
		}
		if got := count(t, s.URL(), "SELECT count(*) FROM pg_database WHERE datname = current_database() AND pg_encoding_to_char(encoding) = 'UTF8' AND datcollate = 'C'"); got != 1 {
			t.Error("database is not UTF8 with collation C")
		}
		// Loopback TCP only, no unix socket.
		if got := count(t, s.URL(), "SELECT count(*) WHERE current_setting('listen_addresses') = '127.0.0.1' AND current_setting('unix_socket_directories') = ''"); got != 1 {
			t.Error("listens elsewhere than 127.0.0.1 only")
		}
		// A wrong password is refused: scram-sha-256, not trust.
		bad := strings.Replace(s.URL(), s.password, "wrong", 1)
		if c, err := pgx.Connect(context.Background(), bad); err == nil {
			c.Close(context.Background())
			t.Error("connected with a wrong password")
		}
		fi, err := os.Stat(filepath.Join(dir, passwordName))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("password file mode %v, want 0600", fi.Mode().Perm())
		}
	})
	if s == nil {
		t.FailNow()
	}

	t.Run("as root, runs as the postgres user", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("not running as root")
		}
		acct, err := serverAccount()
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{dir, filepath.Join(dir, pgdataName), filepath.Join(dir, passwordName)} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if uid := fi.Sys().(*syscall.Stat_t).Uid; uid != acct.uid {
				t.Errorf("%s owned by uid %d, want %d (%s)", p, uid, acct.uid, acct.name)
			}
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
		if err != nil {
			t.Skip("no /proc")
		}
		if !strings.Contains(string(status), fmt.Sprintf("Uid:\t%d\t", acct.uid)) {
			t.Errorf("postmaster does not run as %s (uid %d)", acct.name, acct.uid)
		}
	})

	t.Run("second Start on the same dir fails", func(t *testing.T) {
		s2, err := Start(context.Background(), Options{DataDir: dir, Settings: settings})
		if err == nil {
			s2.Stop(context.Background())
		}
		if err == nil || !errors.Is(err, ErrInUse) || strings.Contains(err.Error(), "\n") {
			t.Fatalf("second Start: %v, want one line saying the dir is already in use", err)
		}
		// Another process attaches to the running server instead (vaxgate admin beside serve).
		u, err := Attach(context.Background(), dir, s.database)
		if err != nil {
			t.Fatalf("Attach to the running server: %v", err)
		}
		conn, err := pgx.Connect(context.Background(), u)
		if err != nil {
			t.Fatalf("connect with the attached URL: %v", err)
		}
		var db string
		if err := conn.QueryRow(context.Background(), "select current_database()").Scan(&db); err != nil || db != s.database {
			t.Errorf("attached to database %q (%v), want %s", db, err, s.database)
		}
		conn.Close(context.Background())
		if _, err := Attach(context.Background(), t.TempDir(), ""); err == nil || strings.Contains(err.Error(), "\n") {
			t.Errorf("Attach to a dir with no server: %v, want one line", err)
		}
		// And should one get past the lock, the running postmaster is recognised.
		s2 = &Server{dir: s.dir, pgdata: s.pgdata, log: s.log}
		err = s2.clearStalePid(context.Background(), 100*time.Millisecond)
		if err == nil || !strings.Contains(err.Error(), "not started by this process") {
			t.Fatalf("clearStalePid with a live postmaster: %v", err)
		}
	})

	t.Run("restart reuses the data, on a given port", func(t *testing.T) {
		pw := s.password
		stop(t, s)
		if err := s.Stop(context.Background()); err != nil {
			t.Errorf("second Stop: %v", err)
		}
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s = startNoCleanup(t, Options{DataDir: dir, Database: "app", Settings: settings, Port: port})
		if s.password != pw {
			t.Error("password changed across restarts")
		}
		if s.Port() != port || !strings.Contains(s.URL(), ":"+strconv.Itoa(port)+"/") {
			t.Errorf("port %d, want %d", s.Port(), port)
		}
		if got := count(t, s.URL(), "SELECT count(*) FROM kept"); got != 2 {
			t.Errorf("after restart: %d rows, want 2", got)
		}
	})

	t.Run("killed server", func(t *testing.T) {
		execSQL(t, s.URL(), "INSERT INTO kept VALUES (3)")
		pidFile := filepath.Join(dir, pgdataName, "postmaster.pid")
		if err := s.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-s.Done()
		if _, err := os.Stat(pidFile); err != nil {
			t.Fatalf("pid file of killed server: %v", err)
		}
		s.Stop(context.Background()) // releases the lock, as the death of its process would
		s = startNoCleanup(t, Options{DataDir: dir, Database: "app", Settings: settings})
		if got := count(t, s.URL(), "SELECT count(*) FROM kept"); got != 3 {
			t.Errorf("after crash recovery: %d rows, want 3", got)
		}
	})

	t.Run("stale pid file naming another live process", func(t *testing.T) {
		stop(t, s)
		// As after a reboot, when the pid has gone to an unrelated process (this test).
		pidFile := filepath.Join(dir, pgdataName, "postmaster.pid")
		if err := os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n%s\n", os.Getpid(), filepath.Join(dir, pgdataName))), 0o600); err != nil {
			t.Fatal(err)
		}
		s = startNoCleanup(t, Options{DataDir: dir, Database: "app", Settings: settings})
		stop(t, s)
	})

	t.Run("failed start shows the server log", func(t *testing.T) {
		bad := map[string]string{"fsync": "off", "shared_buffers": "lots"}
		_, err := Start(context.Background(), Options{DataDir: dir, Settings: bad})
		if err == nil {
			t.Fatal("Start with a bad setting succeeded")
		}
		if !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
			t.Errorf("error does not quote the server log: %v", err)
		}
		t.Log(err)
		// The lock was released: a corrected start works.
		s = startNoCleanup(t, Options{DataDir: dir, Database: "app", Settings: settings})
		stop(t, s)
	})
}

func TestManagedSettingsRejected(t *testing.T) {
	_, err := Start(context.Background(), Options{DataDir: tempDir(t), Settings: map[string]string{"port": "5432"}})
	if err == nil || !strings.Contains(err.Error(), "managed by pgembed") {
		t.Fatalf("err = %v", err)
	}
}

func TestFindBinaries(t *testing.T) {
	if strings.Contains(ErrNotFound.Error(), "\n") {
		t.Error("ErrNotFound is not one line")
	}
	t.Setenv(BinDirEnv, t.TempDir())
	if _, err := FindBinaries(); err == nil || !strings.Contains(err.Error(), BinDirEnv) {
		t.Errorf("empty %s: err = %v", BinDirEnv, err)
	}
	t.Setenv(BinDirEnv, "")
	dir, err := FindBinaries()
	if err != nil {
		t.Fatalf("FindBinaries: %v", err)
	}
	if !hasServerBinaries(dir) {
		t.Errorf("%s lacks the server binaries", dir)
	}
	t.Setenv(BinDirEnv, dir)
	if got, err := FindBinaries(); err != nil || got != dir {
		t.Errorf("with %s=%s: %q, %v", BinDirEnv, dir, got, err)
	}
}

func TestUnreachableDataDirWhenRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("not running as root")
	}
	parent := filepath.Dir(tempDir(t))
	private := filepath.Join(parent, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := Start(context.Background(), Options{DataDir: filepath.Join(private, "data"), Settings: fast})
	if err == nil || !strings.Contains(err.Error(), "not traversable") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v, want one line saying %s is not traversable", err, private)
	}
}

// TestOptionalDefaults: full-page images are compressed with lz4 where the server supports it,
// a server that refuses an optional default starts at PostgreSQL's own, and a value the caller
// set itself is never dropped.
func TestOptionalDefaults(t *testing.T) {
	dir := tempDir(t)
	// The values this server's build offers (pg_settings lists only those).
	lz4 := "SELECT count(*) FROM pg_settings WHERE name = 'wal_compression' AND 'lz4' = ANY(enumvals)"
	is := func(value string) string {
		return "SELECT count(*) FROM pg_settings WHERE name = 'wal_compression' AND setting = '" + value + "'"
	}

	t.Run("lz4 by default", func(t *testing.T) {
		s := startNoCleanup(t, Options{DataDir: dir})
		defer stop(t, s)
		want := "lz4"
		if count(t, s.URL(), lz4) == 0 {
			want = "off"
			t.Log("this PostgreSQL is built without lz4")
		}
		if count(t, s.URL(), is(want)) != 1 {
			t.Errorf("wal_compression is not %s", want)
		}
	})

	t.Run("a refused default is dropped", func(t *testing.T) {
		saved := defaultSettings["wal_compression"]
		defaultSettings["wal_compression"] = "no-such-method" // as lz4 is to a build without it
		t.Cleanup(func() { defaultSettings["wal_compression"] = saved })
		s := startNoCleanup(t, Options{DataDir: dir})
		defer stop(t, s)
		if count(t, s.URL(), is("off")) != 1 {
			t.Error("wal_compression is not PostgreSQL's default (off)")
		}
	})

	t.Run("a value the caller set is kept, even refused", func(t *testing.T) {
		_, err := Start(context.Background(), Options{DataDir: dir,
			Settings: map[string]string{"fsync": "off", "wal_compression": "no-such-method"}})
		if err == nil || !strings.Contains(err.Error(), `invalid value for parameter "wal_compression"`) {
			t.Fatalf("Start with the caller's refused value: err = %v", err)
		}
	})
}
