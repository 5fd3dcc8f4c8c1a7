// Package pgembed starts and stops a private PostgreSQL server from the system's PostgreSQL server
// binaries, so that a newcomer's first `vaxgate serve`, and every test run, needs no database set-up.
//
// The server is a real PostgreSQL: initdb on first use, the same data directory reused on later
// starts. Its layout, inside Options.DataDir (which pgembed owns entirely):
//
//	pgdata/              the cluster (PGDATA), mode 0700
//	superuser.password   the generated password of the superuser "vaxgate", mode 0600
//	postgres.log         the server's log (never stdout; rotated once at 16 MiB)
//	pgembed.lock         flock held by the running Server, so a second Start fails clearly
//
// Connections: the server listens on 127.0.0.1 only, on a free TCP port chosen at each start (or
// Options.Port), with unix sockets disabled. TCP was chosen over a unix socket in a private directory
// because socket paths are limited to about 100 bytes (deep temp and data dirs overflow it) and a
// socket directory must also be reachable by the server's user when running as root; a free loopback
// port is always available. Other local users can reach the port, so authentication is always
// scram-sha-256 with a random password, never trust.
//
// Root: initdb and postgres refuse to run as root, so when the effective user is root they run as
// the "postgres" system user (or "nobody" if there is none), and the data directory is chowned to it.
//
// The postgres process is placed in its own process group (a terminal's Ctrl-C goes to vaxgate, which
// drains and then stops the database in order) and, on Linux, receives SIGINT (fast shutdown) if the
// process that started it dies without calling Stop.
package pgembed

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.uber.org/zap"
)

// ErrNotFound is returned by FindBinaries when no PostgreSQL server binaries are installed. Its
// message is the one line to show the user.
var ErrNotFound = errors.New(`PostgreSQL server binaries not found: install them with "apt-get install postgresql" (or set VAXGATE_PG_BINDIR)`)

// BinDirEnv names the environment variable that points FindBinaries at a PostgreSQL bin directory.
const BinDirEnv = "VAXGATE_PG_BINDIR"

// Options configure Start.
type Options struct {
	// DataDir holds the cluster, its password, its log and its lock (see the package doc). Required.
	DataDir string
	// BinDir is the directory of initdb and postgres; empty means FindBinaries.
	BinDir string
	// Port to listen on at 127.0.0.1; 0 chooses a free one at each start.
	Port int
	// Logger receives pgembed's own events (never the password); nil means no logging.
	Logger *zap.Logger
	// Database is the application database, created if absent; default "vaxgate".
	Database string
	// Settings are extra postgresql.conf settings passed on the server's command line, overriding
	// pgembed's defaults. Tests use them to trade durability for speed, e.g. fsync=off,
	// synchronous_commit=off, full_page_writes=off (with fsync=off, initdb skips its final sync too).
	// listen_addresses, port and unix_socket_directories are managed by pgembed and cannot be set.
	Settings map[string]string
}

// defaultSettings suit a private development or test server. Durability settings (fsync,
// synchronous_commit, full_page_writes) keep PostgreSQL's safe defaults: an ACK promises the data is
// on disk.
var defaultSettings = map[string]string{
	// 512MB, not PostgreSQL's stock 128MB: under a steady intake load a 128MB pool is too small for
	// the pages each batch dirties (the archive's newest pages, the registry tables' and their
	// indexes'), and the backends, not the background writer, write most evicted dirty pages
	// themselves (pg_stat_bgwriter.buffers_backend) and read pages back from the OS cache. Measured
	// with make bench (64 connections, 40,000 messages): PostgreSQL CPU per message from
	// 251 to 181 and 227 µs (two runs; 64 connections sending one message at a time: 525 to 463 and
	// 414 µs). The memory is touched only as the database grows (tests set their own).
	"shared_buffers":  "512MB",
	"max_connections": "100",
	// JIT compilation costs more than it saves on the short queries of an intake engine.
	"jit": "off",
	// A new WAL segment is otherwise written full of zeros (16 MB) while commits wait: under a
	// steady load of VXU (about 11 kB of WAL each when this was measured, ~4 kB since the lean
	// schema) that was a 60 ms stall of every writer every two seconds, until segments are
	// recycled. Off, the file is created at its size without writing it; durability is unchanged
	// (commits still flush and fsync the WAL they wrote). Measured with make bench: p99 ACK
	// latency at 850 msg/s from 78 ms to 28 ms.
	"wal_init_zero": "off",
	// max_wal_size, checkpoint_timeout and wal_buffers keep PostgreSQL's defaults (1GB, 5min, 4MB
	// here): a checkpoint comes after ~530 MB of WAL, about 80,000 VXU at ~6.5 kB of WAL each
	// (measured then; ~130,000 at today's ~4 kB);
	// full-page images were under 0.1% of the WAL records of a make bench run, no WAL buffer ever
	// filled (pg_stat_wal), and 8GB/15min/16MB measured no lower CPU per message. Larger values
	// would only lengthen crash recovery (up to max_wal_size of WAL replayed at start).
	// Full-page images compressed with lz4. The first change of a page after each checkpoint logs
	// the whole page: rare in make bench's short phases (above), but once a registry's tables
	// outgrow a checkpoint's worth of WAL they were a fifth of it, and lz4 cuts them to a third.
	// Measured with make bench-long (500,000 messages, two alternated pairs): WAL 4,956 to 4,322
	// bytes per message, PostgreSQL's CPU per message over serve's 1.73 and 1.67 to 1.61 and
	// 1.58. A server built without lz4 refuses the value: pgembed then starts it without (launch).
	"wal_compression": "lz4",
	// terse: leave DETAIL/CONTEXT (which can quote row values, i.e. patient data) out of the log.
	"log_error_verbosity": "terse",
	"log_line_prefix":     "%m [%p] ",
	"logging_collector":   "off",
	"log_destination":     "stderr",
}

// optionalDefaults are the defaultSettings a server may not support (a build without lz4):
// when the server refuses one at start, pgembed starts it again without it, at PostgreSQL's own
// default. A value the caller set itself is never dropped.
var optionalDefaults = []string{"wal_compression"}

// managedSettings are set by pgembed itself.
var managedSettings = map[string]bool{"listen_addresses": true, "port": true, "unix_socket_directories": true}

// FindBinaries returns the directory holding the PostgreSQL server binaries (initdb and postgres):
// $VAXGATE_PG_BINDIR if set, else `pg_config --bindir`, else the newest /usr/lib/postgresql/*/bin,
// else the directory of an initdb found in PATH. It returns ErrNotFound when there are none.
func FindBinaries() (string, error) {
	if dir := os.Getenv(BinDirEnv); dir != "" {
		if !hasServerBinaries(dir) {
			return "", fmt.Errorf("pgembed: %s=%s does not contain initdb and postgres", BinDirEnv, dir)
		}
		return dir, nil
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	if dir := newestDebianBinDir("/usr/lib/postgresql"); dir != "" {
		return dir, nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if dir := filepath.Dir(p); hasServerBinaries(dir) {
			return dir, nil
		}
	}
	return "", ErrNotFound
}

// newestDebianBinDir returns root/<version>/bin with the highest version having the server binaries.
func newestDebianBinDir(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	type cand struct {
		v   float64
		dir string
	}
	var cands []cand
	for _, e := range entries {
		v, err := strconv.ParseFloat(e.Name(), 64) // "15", "9.6"
		if err != nil {
			continue
		}
		if dir := filepath.Join(root, e.Name(), "bin"); hasServerBinaries(dir) {
			cands = append(cands, cand{v, dir})
		}
	}
	if len(cands) == 0 {
		return ""
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].v > cands[j].v })
	return cands[0].dir
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

// binaryMajorVersion returns the major version of the postgres binary ("15" for 15.4, "9.6" for 9.6.24).
func binaryMajorVersion(binDir string) (string, error) {
	out, err := exec.Command(filepath.Join(binDir, "postgres"), "--version").Output()
	if err != nil {
		return "", fmt.Errorf("pgembed: %s --version: %w", filepath.Join(binDir, "postgres"), err)
	}
	// "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
	f := strings.Fields(string(out))
	if len(f) < 3 {
		return "", fmt.Errorf("pgembed: unexpected postgres --version output %q", out)
	}
	parts := strings.Split(f[2], ".")
	if len(parts) >= 2 && parts[0] == "9" {
		return parts[0] + "." + parts[1], nil
	}
	return strings.TrimRightFunc(parts[0], func(r rune) bool { return r < '0' || r > '9' }), nil
}

// childEnv is the environment of initdb and postgres: ours without libpq's PG* variables (which
// could point them elsewhere) and with the C locale, so that messages are in English and parseable.
func childEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PG") || strings.HasPrefix(k, "LC_") || k == "LANG" || k == "LANGUAGE" || k == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C", "HOME="+home)
}

// lastLines returns the last n lines of b, indented for an error message.
func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n\t")
}
