//go:build !linux

package mllp

// Elsewhere chunks come from the Go heap (mapChunk declines) and are freed by the collector.
func mapChunk(int) ([]byte, bool) { return nil, false }

func unmapChunk([]byte) {}
