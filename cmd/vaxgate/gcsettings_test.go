package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

// TestApplyRuntime: runtime.gc_percent and runtime.memory_limit set the collector, GOGC and
// GOMEMLIMIT in the environment win over them, and settings that would let memory grow without
// bound, or mean nothing, are refused with one line.
func TestApplyRuntime(t *testing.T) {
	gc0, limit0 := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gc0)
		debug.SetMemoryLimit(limit0)
	})
	noEnv := func(string) string { return "" }
	for _, tc := range []struct {
		name      string
		c         runtimeConfig
		env       map[string]string
		preset    [2]int64 // what the runtime had (as GOGC and GOMEMLIMIT would have set it)
		gc        int
		limit     int64
		fromEnv   string
		wantError string
	}{
		{name: "defaults", c: runtimeConfig{GCPercent: defaultGCPercent, MemoryLimit: defaultMemoryLimit}, preset: [2]int64{100, math.MaxInt64},
			gc: defaultGCPercent, limit: orNoLimit(defaultMemoryLimit)},
		{name: "configured", c: runtimeConfig{GCPercent: 400, MemoryLimit: 512 << 20}, preset: [2]int64{100, math.MaxInt64},
			gc: 400, limit: 512 << 20},
		{name: "off below a limit", c: runtimeConfig{GCPercent: -1, MemoryLimit: 1 << 30}, preset: [2]int64{100, math.MaxInt64},
			gc: -1, limit: 1 << 30},
		{name: "GOGC wins", c: runtimeConfig{GCPercent: 400, MemoryLimit: 512 << 20}, env: map[string]string{"GOGC": "150"},
			preset: [2]int64{150, math.MaxInt64}, gc: 150, limit: 512 << 20, fromEnv: "GOGC"},
		{name: "GOMEMLIMIT wins", c: runtimeConfig{GCPercent: 400, MemoryLimit: 512 << 20}, env: map[string]string{"GOMEMLIMIT": "256MiB"},
			preset: [2]int64{100, 256 << 20}, gc: 400, limit: 256 << 20, fromEnv: "GOMEMLIMIT"},
		{name: "off without a limit", c: runtimeConfig{GCPercent: -1}, wantError: "needs runtime.memory_limit"},
		{name: "negative percent", c: runtimeConfig{GCPercent: -5}, wantError: "runtime.gc_percent must be"},
		{name: "negative limit", c: runtimeConfig{GCPercent: 100, MemoryLimit: -1}, wantError: "runtime.memory_limit must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.preset != [2]int64{} {
				debug.SetGCPercent(int(tc.preset[0]))
				debug.SetMemoryLimit(tc.preset[1])
			}
			getenv := noEnv
			if tc.env != nil {
				getenv = func(k string) string { return tc.env[k] }
			}
			s, err := applyRuntime(tc.c, getenv)
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) || strings.Contains(err.Error(), "\n") {
					t.Fatalf("error %v, want one line containing %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			gotGC := debug.SetGCPercent(tc.gc)
			gotLimit := debug.SetMemoryLimit(-1)
			if gotGC != tc.gc || gotLimit != tc.limit || s.GCPercent != tc.gc || s.MemoryLimit != tc.limit {
				t.Errorf("runtime has GOGC %d and limit %d (reported %d, %d), want %d and %d",
					gotGC, gotLimit, s.GCPercent, s.MemoryLimit, tc.gc, tc.limit)
			}
			if got := strings.Join(s.FromEnv, ","); got != tc.fromEnv {
				t.Errorf("from the environment: %q, want %q", got, tc.fromEnv)
			}
		})
	}
}

func orNoLimit(n int64) int64 {
	if n == 0 {
		return math.MaxInt64
	}
	return n
}

// TestRuntimeConfigKeys: the runtime.* keys are read from the file and the environment
// (VAXGATE_RUNTIME_*), with their defaults when absent.
func TestRuntimeConfigKeys(t *testing.T) {
	load := func(t *testing.T, yaml string) *config {
		t.Helper()
		var args []string
		if yaml != "" {
			file := filepath.Join(t.TempDir(), "vaxgate.yaml")
			if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			args = []string{"--config", file}
		}
		var got *config
		root := newRootCmd()
		root.AddCommand(&cobra.Command{Use: "probe", RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			got, err = loadConfig(cmd)
			return err
		}})
		root.SetArgs(append([]string{"probe"}, args...))
		if err := root.Execute(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if c := load(t, ""); c.Runtime.GCPercent != defaultGCPercent || c.Runtime.MemoryLimit != defaultMemoryLimit {
		t.Errorf("defaults: %+v", c.Runtime)
	}
	if c := load(t, "runtime:\n  gc_percent: 300\n  memory_limit: 805306368\n"); c.Runtime.GCPercent != 300 || c.Runtime.MemoryLimit != 768<<20 {
		t.Errorf("from the file: %+v", c.Runtime)
	}
	t.Setenv("VAXGATE_RUNTIME_GC_PERCENT", "250")
	if c := load(t, "runtime:\n  gc_percent: 300\n"); c.Runtime.GCPercent != 250 {
		t.Errorf("from the environment: %+v", c.Runtime)
	}
}

// TestHeapProfileRate: the heap is sampled at the runtime's rate only when the runtime profiles
// are served (http.pprof) or GODEBUG names a memprofilerate; otherwise not at all.
func TestHeapProfileRate(t *testing.T) {
	const goDefault = 512 * 1024
	for _, tc := range []struct {
		name    string
		served  bool
		godebug string
		current int
		want    int
	}{
		{name: "not served", current: goDefault, want: 0},
		{name: "served", served: true, current: goDefault, want: goDefault},
		{name: "GODEBUG wins", godebug: "gctrace=1, memprofilerate=1", current: 1, want: 1},
		{name: "GODEBUG off wins when served", served: true, godebug: "memprofilerate=0", current: 0, want: 0},
		{name: "other GODEBUG", godebug: "gctrace=1,madvdontneed=1", current: goDefault, want: 0},
		{name: "a look-alike key", godebug: "xmemprofilerate=5", current: goDefault, want: 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := heapProfileRate(tc.served, tc.godebug, tc.current); got != tc.want {
				t.Errorf("heapProfileRate(%v, %q, %d) = %d, want %d", tc.served, tc.godebug, tc.current, got, tc.want)
			}
		})
	}
}

// TestApplyHeapProfile: serve without http.pprof samples nothing; with it, the runtime's rate.
func TestApplyHeapProfile(t *testing.T) {
	rate := func() int {
		heapProfileMu.Lock()
		defer heapProfileMu.Unlock()
		return runtime.MemProfileRate
	}
	setRate := func(r int) {
		heapProfileMu.Lock()
		defer heapProfileMu.Unlock()
		runtime.MemProfileRate = r
	}
	rate0 := rate()
	t.Cleanup(func() { setRate(rate0) })
	noEnv := func(string) string { return "" }
	if got := applyHeapProfile(zap.NewNop(), false, noEnv); got != 0 || rate() != 0 {
		t.Errorf("without pprof: returned %d, runtime.MemProfileRate %d, want 0", got, rate())
	}
	setRate(rate0)
	if got := applyHeapProfile(zap.NewNop(), true, noEnv); got != rate0 || rate() != rate0 {
		t.Errorf("with pprof: returned %d, runtime.MemProfileRate %d, want %d", got, rate(), rate0)
	}
}
