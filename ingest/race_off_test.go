//go:build !race

package ingest

// raceSlowdown is how much slower code runs under the race detector: time bounds are multiplied
// by it.
const raceSlowdown = 1
