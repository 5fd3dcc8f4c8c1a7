package mllp

import (
	"sync"
	"sync/atomic"
)

// chunkSize is the unit in which frames larger than smallSize are held while they arrive.
const chunkSize = 256 << 10

// chunkKeep is how many free chunks the allocator keeps for the next large frames (4 MiB); the
// others go back to the operating system at once.
const chunkKeep = 16

// chunk is a piece of frame memory: mapped from the operating system where it can be (mapped
// true), from the Go heap otherwise.
type chunk struct {
	b      []byte
	mapped bool
}

// chunkAlloc hands out the chunks that frames being received are held in. Chunks are mapped
// directly from the operating system, outside the Go heap, so that when 250 connections drop
// their unfinished 4 MiB frames the memory is returned at once rather than after the next garbage
// collection and a scavenger's pace. Only a connection's reader goroutine touches its chunks, and
// it copies a frame out before it gives them back.
type chunkAlloc struct {
	mu    sync.Mutex
	free  []chunk
	held  atomic.Int64 // bytes of chunks in use
	gauge func(float64)
}

func newChunkAlloc(gauge func(float64)) *chunkAlloc {
	if gauge == nil {
		gauge = func(float64) {}
	}
	return &chunkAlloc{gauge: gauge}
}

func (a *chunkAlloc) get() chunk {
	a.gauge(float64(a.held.Add(chunkSize)))
	a.mu.Lock()
	if n := len(a.free); n > 0 {
		c := a.free[n-1]
		a.free[n-1] = chunk{}
		a.free = a.free[:n-1]
		a.mu.Unlock()
		return c
	}
	a.mu.Unlock()
	if b, ok := mapChunk(chunkSize); ok {
		return chunk{b: b, mapped: true}
	}
	return chunk{b: make([]byte, chunkSize)}
}

func (a *chunkAlloc) put(c chunk) {
	a.gauge(float64(a.held.Add(-chunkSize)))
	a.mu.Lock()
	if len(a.free) < chunkKeep {
		a.free = append(a.free, c)
		a.mu.Unlock()
		return
	}
	a.mu.Unlock()
	if c.mapped {
		unmapChunk(c.b)
	}
}

// Held returns the bytes of chunks in use.
func (a *chunkAlloc) Held() int64 { return a.held.Load() }
