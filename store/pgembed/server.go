//go:build unix

package pgembed

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
)

const (
	superuser    = "vaxgate"
	pgdataName   = "pgdata"
	passwordName = "superuser.password"
	logName      = "postgres.log"
	lockName     = "pgembed.lock"
	maxLogSize   = 16 << 20
)

// ErrInUse is returned by Start when another process runs the private server of the data dir.
// Attach connects to that server instead.
var ErrInUse = errors.New("already in use by another server")

// Server is a running private PostgreSQL server. Stop it when done.
type Server struct {
	dir      string // Options.DataDir, absolute
	pgdata   string
	database string
	password string
	port     int
	log      *zap.Logger

	lock *os.File // flock held while the server runs
	logf *os.File // the server's stdout and stderr

	cmd     *exec.Cmd
	done    chan struct{} // closed when the postgres process has exited
	waitErr error         // the process's exit status, valid after done is closed

	stopMu  sync.Mutex
	stopped bool
}

// account is the user the server runs as when we are root.
type account struct {
	name     string
	uid, gid uint32
	groups   []uint32
}

// Start starts the server, creating the cluster on first use, and returns when it accepts
// connections and the application database exists. ctx bounds the start-up only.
func Start(ctx context.Context, o Options) (_ *Server, err error) {
	if o.DataDir == "" {
		return nil, errors.New("pgembed: Options.DataDir is required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Database == "" {
		o.Database = "vaxgate"
	}
	for k := range o.Settings {
		if managedSettings[k] {
			return nil, fmt.Errorf("pgembed: setting %s is managed by pgembed", k)
		}
	}
	dir, err := filepath.Abs(o.DataDir)
	if err != nil {
		return nil, fmt.Errorf("pgembed: data dir: %w", err)
	}
	if o.BinDir == "" {
		if o.BinDir, err = FindBinaries(); err != nil {
			return nil, err
		}
	} else if !hasServerBinaries(o.BinDir) {
		return nil, fmt.Errorf("pgembed: %s does not contain initdb and postgres", o.BinDir)
	}
	acct, err := serverAccount()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dir, acct); err != nil {
		return nil, err
	}
	lock, err := lockDir(dir, acct)
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, pgdata: filepath.Join(dir, pgdataName), database: o.Database, log: o.Logger, lock: lock}
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	if s.logf, err = openLog(filepath.Join(dir, logName), acct); err != nil {
		return nil, err
	}

	t0 := time.Now()
	if err := s.ensureCluster(o, acct); err != nil {
		return nil, err
	}
	if err := s.clearStalePid(ctx, 10*time.Second); err != nil {
		return nil, err
	}
	if err := s.launch(ctx, o, acct); err != nil {
		return nil, err
	}
	if err := s.ensureDatabase(ctx); err != nil {
		s.stopProcess(context.Background())
		return nil, err
	}
	s.log.Info("pgembed: PostgreSQL started", zap.String("data_dir", dir), zap.Int("port", s.port),
		zap.Int("pid", s.cmd.Process.Pid), zap.Duration("elapsed", time.Since(t0)))
	go s.watch()
	return s, nil
}

// Attach returns a connection URL for database on the private server that another process (a
// running `vaxgate serve`) started on dataDir: the port comes from PostgreSQL's own postmaster.pid,
// the credentials from the data dir's password file, so whoever can read the data dir can
// administer the database beside the running server. It checks that the server answers. The URL
// contains the password: do not log it.
func Attach(ctx context.Context, dataDir, database string) (string, error) {
	if database == "" {
		database = "vaxgate"
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return "", fmt.Errorf("pgembed: data dir: %w", err)
	}
	pidFile := filepath.Join(dir, pgdataName, "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return "", fmt.Errorf("pgembed: no running server on %s (read %s: %w)", dir, pidFile, err)
	}
	// postmaster.pid: pid, data dir, start time, port, socket dir, listen address, ...
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return "", fmt.Errorf("pgembed: %s is incomplete: the server is still starting", pidFile)
	}
	port, err := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err != nil || port <= 0 || port > 65535 {
		return "", fmt.Errorf("pgembed: %s names no port", pidFile)
	}
	pw, err := readPassword(filepath.Join(dir, passwordName))
	if err != nil {
		return "", fmt.Errorf("pgembed: read the superuser password: %w", err)
	}
	s := &Server{password: pw, port: port}
	u := s.AdminURL(database)
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, u)
	if err != nil {
		return "", fmt.Errorf("pgembed: the server running on %s does not answer on port %d: %w", dir, port, err)
	}
	_ = conn.Close(cctx)
	return u, nil
}

// URL returns a pgx connection URL, with the superuser's credentials, for the application database.
// It contains the password: do not log it.
func (s *Server) URL() string { return s.AdminURL(s.database) }

// AdminURL returns a pgx connection URL, with the superuser's credentials, for database db
// (for example "postgres", to create or drop databases).
func (s *Server) AdminURL(db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(superuser, s.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port returns the TCP port the server listens on at 127.0.0.1.
func (s *Server) Port() int { return s.port }

// DataDir returns the absolute data directory.
func (s *Server) DataDir() string { return s.dir }

// Done is closed when the server process has exited, whether through Stop or not.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop shuts the server down (fast shutdown: open transactions are rolled back, committed data is
// checkpointed) and waits for it to exit. If ctx ends first, it falls back to an immediate shutdown
// (crash recovery at the next start) and returns ctx's error. Stop is idempotent.
func (s *Server) Stop(ctx context.Context) error {
	s.stopMu.Lock()
	defer s.stopMu.Unlock()
	if s.stopped {
		return nil
	}
	s.stopped = true
	var err error
	select {
	case <-s.done:
		if s.waitErr != nil {
			err = fmt.Errorf("pgembed: server had exited: %w", s.waitErr)
		}
	default:
		err = s.stopProcess(ctx)
	}
	s.release()
	if err == nil {
		s.log.Info("pgembed: PostgreSQL stopped", zap.String("data_dir", s.dir))
	}
	return err
}

// stopProcess signals a fast shutdown and waits; when ctx ends, an immediate one, then a kill.
func (s *Server) stopProcess(ctx context.Context) error {
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
	}
	_ = s.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	return fmt.Errorf("pgembed: stop: fast shutdown did not finish, forced an immediate shutdown: %w", ctx.Err())
}

// release closes the log and releases the lock.
func (s *Server) release() {
	if s.logf != nil {
		s.logf.Close()
		s.logf = nil
	}
	if s.lock != nil {
		s.lock.Close() // closing the descriptor releases the flock
		s.lock = nil
	}
}

// watch reports a server that exits without being asked to.
func (s *Server) watch() {
	<-s.done
	s.stopMu.Lock()
	stopped := s.stopped
	s.stopMu.Unlock()
	if !stopped {
		s.log.Error("pgembed: PostgreSQL exited unexpectedly; see its log",
			zap.String("log", filepath.Join(s.dir, logName)), zap.Error(s.waitErr))
	}
}

// serverAccount returns the user to run PostgreSQL as: nil (ourselves) unless we are root.
func serverAccount() (*account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		a := &account{name: name, uid: uint32(uid), gid: uint32(gid)}
		if gids, err := u.GroupIds(); err == nil {
			for _, g := range gids {
				if n, err := strconv.ParseUint(g, 10, 32); err == nil {
					a.groups = append(a.groups, uint32(n))
				}
			}
		}
		return a, nil
	}
	return nil, errors.New(`pgembed: PostgreSQL refuses to run as root and there is no "postgres" or "nobody" user to run it as: create one (useradd --system postgres) or run vaxgate as a normal user`)
}

// prepareDir creates the data dir and makes sure the server's user owns it and can reach it.
func prepareDir(dir string, acct *account) error {
	// Parents are created traversable: a 0700 parent owned by root would lock the server's user out.
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("pgembed: create data dir: %w", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("pgembed: create data dir: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("pgembed: data dir: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("pgembed: data dir %s is not a directory", dir)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if acct == nil {
		if int(st.Uid) != os.Geteuid() {
			return fmt.Errorf("pgembed: data dir %s belongs to uid %d, not to you (uid %d): use another data dir, or run as root", dir, st.Uid, os.Geteuid())
		}
		return nil
	}
	if err := checkReachable(dir, acct); err != nil {
		return err
	}
	if st.Uid != acct.uid {
		// First start as root, or a directory left by another user: hand everything to the server's user.
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(acct.uid), int(acct.gid))
		})
		if err != nil {
			return fmt.Errorf("pgembed: give data dir to user %s: %w", acct.name, err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pgembed: data dir: %w", err)
	}
	return nil
}

// checkReachable reports, in one line, a parent of dir that the server's user cannot traverse.
func checkReachable(dir string, acct *account) error {
	for p := filepath.Dir(dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pgembed: data dir: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		perm := fi.Mode().Perm()
		var ok bool
		switch {
		case st.Uid == acct.uid:
			ok = perm&0o100 != 0
		case st.Gid == acct.gid || contains(acct.groups, st.Gid):
			ok = perm&0o010 != 0
		default:
			ok = perm&0o001 != 0
		}
		if !ok {
			return fmt.Errorf("pgembed: PostgreSQL runs as user %q (it refuses root) and cannot reach data dir %s because %s is not traversable (mode %v): use a data dir elsewhere, or chmod o+x %s",
				acct.name, dir, p, perm, p)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func contains(s []uint32, v uint32) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// lockDir takes the data dir's lock, so that two servers never share a data dir.
func lockDir(dir string, acct *account) (*os.File, error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgembed: lock data dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			owner, _ := os.ReadFile(path)
			return nil, fmt.Errorf("pgembed: data dir %s is %w (process %s): stop it first, or use another data dir",
				dir, ErrInUse, strings.TrimSpace(string(owner)))
		}
		return nil, fmt.Errorf("pgembed: lock data dir: %w", err)
	}
	if acct != nil {
		_ = f.Chown(int(acct.uid), int(acct.gid))
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// openLog opens the server log for appending, rotating it once when it has grown large.
func openLog(path string, acct *account) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > maxLogSize {
		_ = os.Rename(path, path+".1")
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("pgembed: open server log: %w", err)
	}
	if acct != nil {
		_ = f.Chown(int(acct.uid), int(acct.gid))
	}
	return f, nil
}

// ensureCluster runs initdb on first use and reads the superuser password.
func (s *Server) ensureCluster(o Options, acct *account) error {
	pwPath := filepath.Join(s.dir, passwordName)
	pw, pwErr := readPassword(pwPath)
	if _, err := os.Stat(filepath.Join(s.pgdata, "PG_VERSION")); err == nil {
		if pwErr != nil {
			return fmt.Errorf("pgembed: the cluster in %s exists but its superuser password cannot be read (%v): restore %s, or remove %s to start afresh (this deletes its data)",
				s.pgdata, pwErr, pwPath, s.dir)
		}
		s.password = pw
		return checkVersion(s.pgdata, o.BinDir)
	}

	// First use (or an initdb that was interrupted: initdb removes its own failures, a killed one may not).
	if err := os.RemoveAll(s.pgdata); err != nil {
		return fmt.Errorf("pgembed: remove incomplete cluster: %w", err)
	}
	if pwErr != nil {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("pgembed: generate password: %w", err)
		}
		pw = hex.EncodeToString(b[:])
		if err := writePassword(pwPath, pw, acct); err != nil {
			return err
		}
	}
	s.password = pw
	args := []string{
		"--pgdata=" + s.pgdata,
		"--username=" + superuser,
		"--pwfile=" + pwPath,
		"--encoding=UTF8",
		"--locale=C",
		"--auth=scram-sha-256",
	}
	if o.Settings["fsync"] == "off" {
		args = append(args, "--no-sync")
	}
	s.log.Info("pgembed: creating PostgreSQL cluster", zap.String("data_dir", s.pgdata))
	cmd := exec.Command(filepath.Join(o.BinDir, "initdb"), args...)
	var out bytes.Buffer
	cmd.Dir = s.dir
	cmd.Env = childEnv(s.dir)
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = sysProcAttr(acct, false)
	err := cmd.Run()
	_, _ = s.logf.Write(out.Bytes())
	if err != nil {
		return fmt.Errorf("pgembed: initdb: %w:\n\t%s", err, lastLines(out.Bytes(), 10))
	}
	return nil
}

func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSpace(string(b))
	if pw == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		_ = os.Chmod(path, 0o600)
	}
	return pw, nil
}

func writePassword(path, pw string, acct *account) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("pgembed: write password file: %w", err)
	}
	if acct != nil {
		// initdb, running as the server's user, reads it.
		if err := f.Chown(int(acct.uid), int(acct.gid)); err != nil {
			f.Close()
			return fmt.Errorf("pgembed: write password file: %w", err)
		}
	}
	if _, err := f.WriteString(pw + "\n"); err != nil {
		f.Close()
		return fmt.Errorf("pgembed: write password file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pgembed: write password file: %w", err)
	}
	return nil
}

// checkVersion turns a cluster/binaries version mismatch into a one-line answer.
func checkVersion(pgdata, binDir string) error {
	b, err := os.ReadFile(filepath.Join(pgdata, "PG_VERSION"))
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	bin, err := binaryMajorVersion(binDir)
	if err != nil {
		return err
	}
	if data := strings.TrimSpace(string(b)); data != bin {
		return fmt.Errorf("pgembed: the cluster in %s was created by PostgreSQL %s but the binaries in %s are PostgreSQL %s: set %s to PostgreSQL %s's bin directory, or move the data dir away to start afresh",
			pgdata, data, binDir, bin, BinDirEnv, data)
	}
	return nil
}

// clearStalePid removes a postmaster.pid left by a server that no longer runs (killed, or the
// machine restarted), so that PostgreSQL does not refuse to start, possibly because its pid now
// belongs to an unrelated process.
func (s *Server) clearStalePid(ctx context.Context, wait time.Duration) error {
	path := filepath.Join(s.pgdata, "postmaster.pid")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("pgembed: read postmaster.pid: %w", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err == nil && pid > 0 && isPostgres(pid, s.pgdata) {
		// We hold the lock, so no Server owns it: an orphan shutting down after its parent died,
		// or a server started by hand. Give the first kind time (wait) to finish.
		s.log.Info("pgembed: waiting for a previous PostgreSQL to exit", zap.Int("pid", pid))
		deadline := time.Now().Add(wait)
		for isPostgres(pid, s.pgdata) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pgembed: a PostgreSQL server (pid %d) not started by this process is running on %s: stop it (kill -INT %d) and retry", pid, s.pgdata, pid)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("pgembed: waiting for PostgreSQL pid %d to exit: %w", pid, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
		if _, err := os.Stat(path); err != nil {
			return nil // it shut down cleanly
		}
	}
	s.log.Warn("pgembed: removing stale postmaster.pid", zap.String("data_dir", s.pgdata), zap.Int("pid", pid))
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgembed: remove stale postmaster.pid: %w", err)
	}
	return nil
}

// launch starts postgres and waits until it accepts connections, retrying when the chosen port was
// taken in the meantime or the shared memory of a just-killed server is still attached.
func (s *Server) launch(ctx context.Context, o Options, acct *account) error {
	settings := map[string]string{}
	for k, v := range defaultSettings {
		settings[k] = v
	}
	for k, v := range o.Settings {
		settings[k] = v
	}
	settings["listen_addresses"] = "127.0.0.1"
	settings["unix_socket_directories"] = ""

	const attempts = 20
	for attempt := 1; ; attempt++ {
		port := o.Port
		if port == 0 {
			var err error
			if port, err = freePort(); err != nil {
				return err
			}
		}
		keys := make([]string, 0, len(settings))
		for k := range settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		args := []string{"-D", s.pgdata, "-c", "port=" + strconv.Itoa(port)}
		for _, k := range keys {
			args = append(args, "-c", k+"="+settings[k])
		}
		logStart, _ := s.logf.Seek(0, io.SeekEnd)
		if err := s.spawn(filepath.Join(o.BinDir, "postgres"), args, acct); err != nil {
			return err
		}
		s.port = port
		err := s.waitReady(ctx)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errExited) {
			s.stopProcess(context.Background())
			return err
		}
		tail := s.logSince(logStart)
		retry := false
		if k := refusedDefault(tail, o.Settings, settings); k != "" {
			s.log.Info("pgembed: the server refuses a default setting; starting it with PostgreSQL's own",
				zap.String("setting", k), zap.String("value", settings[k]))
			delete(settings, k)
			retry = true
		}
		switch {
		case strings.Contains(tail, "Address already in use") && o.Port == 0:
			retry = true
		case strings.Contains(tail, "pre-existing shared memory block"):
			// The backends of a killed postmaster are still exiting.
			retry = true
			time.Sleep(250 * time.Millisecond)
		}
		if !retry || attempt == attempts {
			return fmt.Errorf("pgembed: PostgreSQL failed to start (%v); last lines of %s:\n\t%s",
				s.waitErr, filepath.Join(s.dir, logName), lastLines([]byte(tail), 15))
		}
		s.log.Info("pgembed: retrying PostgreSQL start", zap.Int("attempt", attempt))
	}
}

var errExited = errors.New("postgres exited")

// refusedDefault returns the optional default (optionalDefaults) that the server's log tail says
// it refused, when the caller did not set it (given) and it is still among settings; else "".
func refusedDefault(tail string, given, settings map[string]string) string {
	for _, k := range optionalDefaults {
		if _, set := given[k]; set {
			continue
		}
		if _, ok := settings[k]; ok && strings.Contains(tail, `invalid value for parameter "`+k+`"`) {
			return k
		}
	}
	return ""
}

// spawn starts postgres from a goroutine locked to its OS thread: on Linux the parent-death signal
// is tied to the thread that forked, which must therefore live as long as the server.
func (s *Server) spawn(path string, args []string, acct *account) error {
	cmd := exec.Command(path, args...)
	cmd.Dir = s.pgdata
	cmd.Env = childEnv(s.pgdata)
	cmd.Stdout = s.logf
	cmd.Stderr = s.logf
	cmd.SysProcAttr = sysProcAttr(acct, true)
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		// Never unlocked: the thread ends with this goroutine, after postgres has exited.
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		s.waitErr = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("pgembed: start postgres: %w", err)
	}
	s.cmd = cmd
	s.done = done
	return nil
}

// waitReady polls until the server accepts an authenticated connection, exits, or ctx ends.
func (s *Server) waitReady(ctx context.Context) error {
	cfg, err := pgconn.ParseConfig(s.AdminURL("postgres"))
	if err != nil {
		return fmt.Errorf("pgembed: %w", err)
	}
	cfg.ConnectTimeout = 2 * time.Second
	next := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.done:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("pgembed: waiting for PostgreSQL to accept connections: %w", ctx.Err())
		default:
		}
		conn, err := pgconn.ConnectConfig(ctx, cfg)
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "28P01" {
			return fmt.Errorf("pgembed: the superuser password in %s does not match the cluster's", filepath.Join(s.dir, passwordName))
		}
		if time.Now().After(next) {
			s.log.Info("pgembed: still waiting for PostgreSQL (crash recovery?)", zap.String("log", filepath.Join(s.dir, logName)))
			next = time.Now().Add(15 * time.Second)
		}
		select {
		case <-s.done:
			return errExited
		case <-ctx.Done():
			return fmt.Errorf("pgembed: waiting for PostgreSQL to accept connections: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// logSince returns what the server wrote to its log after offset (at most the last 64 KiB).
func (s *Server) logSince(offset int64) string {
	f, err := os.Open(filepath.Join(s.dir, logName))
	if err != nil {
		return ""
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > 64<<10 {
		offset = fi.Size() - 64<<10
	}
	b, _ := io.ReadAll(io.NewSectionReader(f, offset, 1<<62))
	return string(b)
}

// ensureDatabase creates the application database if it does not exist.
func (s *Server) ensureDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, s.AdminURL("postgres"))
	if err != nil {
		return fmt.Errorf("pgembed: connect: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", s.database).Scan(&exists); err != nil {
		return fmt.Errorf("pgembed: look up database %s: %w", s.database, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{s.database}.Sanitize()); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
			return nil
		}
		return fmt.Errorf("pgembed: create database %s: %w", s.database, err)
	}
	s.log.Info("pgembed: created database", zap.String("database", s.database))
	return nil
}

// freePort asks the kernel for a free loopback port. Another process may take it before postgres
// binds it; launch then retries with another.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgembed: find a free port: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port, nil
}

// sysProcAttr runs the process as acct (if any) and, for the server, in its own process group so
// that a terminal's Ctrl-C reaches vaxgate only, which then stops the server in order.
func sysProcAttr(acct *account, server bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if acct != nil {
		a.Credential = &syscall.Credential{Uid: acct.uid, Gid: acct.gid, Groups: acct.groups}
	}
	if server {
		a.Setpgid = true
		setParentDeathSignal(a)
	}
	return a
}
