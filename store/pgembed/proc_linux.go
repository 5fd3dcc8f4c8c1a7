package pgembed

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// setParentDeathSignal makes the kernel send postgres SIGINT (fast shutdown) if the thread that
// started it dies: a killed vaxgate does not leave an orphan server holding its data dir.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGINT }

// isPostgres reports whether pid is a live postgres process, running on pgdata as far as we can
// tell. A pid from an old postmaster.pid may have been reused by any process after a restart.
func isPostgres(pid int, pgdata string) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil {
		return false // no such process (or no /proc: then postgres itself checks the pid)
	}
	if strings.TrimSpace(string(comm)) != "postgres" {
		return false
	}
	// The postmaster's working directory is its data directory.
	cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
	if err != nil {
		return true // not allowed to look: assume the worst
	}
	want, err := filepath.EvalSymlinks(pgdata)
	if err != nil {
		want = pgdata
	}
	return cwd == want
}
