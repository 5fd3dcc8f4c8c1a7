package storetest

import (
	"os"
	"syscall"
)

// scratchDir returns /dev/shm (memory) when it is writable and has at least 1 GiB free (Docker's
// default of 64 MiB is too small), else the temporary directory.
func scratchDir() string {
	const shm = "/dev/shm"
	var st syscall.Statfs_t
	if err := syscall.Statfs(shm, &st); err != nil || st.Bavail*uint64(st.Bsize) < 1<<30 {
		return os.TempDir()
	}
	if syscall.Access(shm, 0o7) != nil { // rwx
		return os.TempDir()
	}
	return shm
}
