//go:build unix && !linux

package pgembed

import "syscall"

// setParentDeathSignal does nothing: only Linux has a parent-death signal.
func setParentDeathSignal(*syscall.SysProcAttr) {}

// isPostgres reports whether pid is alive; without /proc we cannot tell what it is, so a live
// process is taken to be the server.
func isPostgres(pid int, _ string) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || err == syscall.EPERM
}
