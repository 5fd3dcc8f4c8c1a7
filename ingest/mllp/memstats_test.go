package mllp

import "runtime"

// testingMem is the bytes allocated so far by the process.
type testingMem struct{ alloc uint64 }

func (m *testingMem) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.alloc = ms.TotalAlloc
}
