//go:build amd64 && !purego

package hl7

import "golang.org/x/sys/cpu"

// haveSIMD reports whether scanBlocksSIMD may be called.
var haveSIMD = cpu.X86.HasAVX2

// scanBlocksAVX2 is in scan_amd64.s.
//
//go:noescape
func scanBlocksAVX2(data *byte, nblocks int, fs byte, lines, seps *uint64)

func scanBlocksSIMD(data *byte, nblocks int, fs byte, lines, seps *uint64) {
	scanBlocksAVX2(data, nblocks, fs, lines, seps)
}
