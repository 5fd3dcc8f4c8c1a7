//go:build linux

package mllp

import "syscall"

// mapChunk maps n bytes of anonymous memory: pages become resident only as they are written,
// and unmapChunk returns them to the system at once.
func mapChunk(n int) ([]byte, bool) {
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, false
	}
	return b, true
}

func unmapChunk(b []byte) { _ = syscall.Munmap(b) }
