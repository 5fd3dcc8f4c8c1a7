//go:build race

package validate

// raceEnabled: the race detector is on (sync.Pool then drops items at random: allocation counts
// mean nothing).
const raceEnabled = true
