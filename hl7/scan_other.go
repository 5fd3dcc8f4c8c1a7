//go:build !amd64 || purego

package hl7

const haveSIMD = false

func scanBlocksSIMD(data *byte, nblocks int, fs byte, lines, seps *uint64) {
	panic("hl7: no SIMD scanner on this platform")
}
