package main

import (
	"fmt"
	"math"
	"os"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"

	"go.uber.org/zap"
)

// runtimeConfig tunes the Go garbage collector of serve (runtime.* keys). GOGC and GOMEMLIMIT in
// the environment, which the Go runtime reads itself, win over them.
type runtimeConfig struct {
	// GCPercent is the heap growth that triggers a collection (GOGC): a higher value collects less
	// often, spending less CPU per message for more memory; -1 turns collection off below
	// MemoryLimit (which must then be set).
	GCPercent int `mapstructure:"gc_percent"`
	// MemoryLimit is the soft limit of the Go heap and runtime, in bytes (GOMEMLIMIT): nearing it,
	// the collector runs as often as needed, whatever GCPercent says. 0: no limit.
	MemoryLimit int64 `mapstructure:"memory_limit"`
}

// gcSettings are the collector settings applyRuntime made, for the log.
type gcSettings struct {
	GCPercent   int   // -1: off
	MemoryLimit int64 // math.MaxInt64: none
	FromEnv     []string
}

// applyRuntime sets the collector as c says, except what GOGC or GOMEMLIMIT (getenv) already set.
func applyRuntime(c runtimeConfig, getenv func(string) string) (gcSettings, error) {
	if c.GCPercent < -1 {
		return gcSettings{}, fmt.Errorf("config: runtime.gc_percent must be -1 (off) or at least 0, not %d", c.GCPercent)
	}
	if c.MemoryLimit < 0 {
		return gcSettings{}, fmt.Errorf("config: runtime.memory_limit must be 0 (none) or a number of bytes, not %d", c.MemoryLimit)
	}
	envGC, envLimit := getenv("GOGC") != "", getenv("GOMEMLIMIT") != ""
	if c.GCPercent == -1 && c.MemoryLimit == 0 && !envLimit {
		return gcSettings{}, fmt.Errorf("config: runtime.gc_percent -1 (no collection) needs runtime.memory_limit, or the heap would grow without bound")
	}
	var s gcSettings
	if envGC {
		s.FromEnv = append(s.FromEnv, "GOGC")
		s.GCPercent = debug.SetGCPercent(-1) // read the runtime's value...
		debug.SetGCPercent(s.GCPercent)      // ...and put it back
	} else {
		debug.SetGCPercent(c.GCPercent)
		s.GCPercent = c.GCPercent
	}
	if envLimit {
		s.FromEnv = append(s.FromEnv, "GOMEMLIMIT")
		s.MemoryLimit = debug.SetMemoryLimit(-1) // a negative value only reads it
	} else {
		limit := c.MemoryLimit
		if limit == 0 {
			limit = math.MaxInt64
		}
		debug.SetMemoryLimit(limit)
		s.MemoryLimit = limit
	}
	return s, nil
}

// logRuntime logs the collector settings serve runs with.
func logRuntime(log *zap.Logger, s gcSettings) {
	limit := "none"
	if s.MemoryLimit != math.MaxInt64 {
		limit = fmt.Sprintf("%d MiB", s.MemoryLimit>>20)
	}
	log.Info("garbage collector", zap.Int("gc_percent", s.GCPercent), zap.String("memory_limit", limit),
		zap.Strings("from_environment", s.FromEnv))
}

// osGetenv is os.Getenv, replaced in tests.
var osGetenv = os.Getenv

// The defaults. Measured with make bench at 64 connections, the collector's background work took
// 12-15% of serve's CPU at Go's default GOGC of 100 and about 6.5% at 400 (RSS at the end ~90 MB
// instead of ~55 MB); at 800 it takes 3.5-5% (3.2-4.6 µs a message instead of 6.3-6.5 in the
// quick run, alternated), for an RSS of ~146 MB: most of what serve allocates (~33 KB a message)
// is garbage at once, so the collector's work per message falls with GOGC about in proportion,
// while the live heap stays ~15 MB. The memory limit keeps the worst case
// where it was: at the MLLP admission limit (mllp.max_memory, 1 GiB of messages in flight) GOGC
// 100 lets the heap reach about twice that, and the limit makes the collector run as often as
// needed there, whatever GOGC says.
const (
	defaultGCPercent   = 800
	defaultMemoryLimit = 2 << 30
)

// applyHeapProfile sets how often serve samples its allocations for the heap profile
// (runtime.MemProfileRate) and returns the rate set. The runtime samples one allocation per
// 512 KiB by default, recording its call stack; at the allocation rate of a busy serve (tens of
// KB per message) that cost 1-2% of serve's CPU in `make bench`'s profiles, for a profile that
// only the runtime profiles (http.pprof) can show. So the heap is sampled at Go's rate when they
// are served, and not at all otherwise. A memprofilerate in GODEBUG (getenv) wins, as GOGC does.
func applyHeapProfile(log *zap.Logger, served bool, getenv func(string) string) int {
	heapProfileMu.Lock()
	rate := heapProfileRate(served, getenv("GODEBUG"), runtime.MemProfileRate)
	runtime.MemProfileRate = rate
	heapProfileMu.Unlock()
	log.Debug("heap profile sampling", zap.Int("mem_profile_rate", rate), zap.Bool("pprof", served))
	return rate
}

// heapProfileMu serialises applyHeapProfile: tests run several servers in one process.
var heapProfileMu sync.Mutex

// heapProfileRate is the runtime.MemProfileRate applyHeapProfile sets, given whether the runtime
// profiles are served, GODEBUG and the rate the runtime has (Go's default, or GODEBUG's).
func heapProfileRate(served bool, godebug string, current int) int {
	for _, kv := range strings.Split(godebug, ",") {
		if k, _, _ := strings.Cut(strings.TrimSpace(kv), "="); k == "memprofilerate" {
			return current
		}
	}
	if served {
		return current
	}
	return 0
}
