//go:build race

package hub

// raceEnabled: the race detector's sync.Pool drops items at random, so
// allocation counts do not hold under it.
const raceEnabled = true
