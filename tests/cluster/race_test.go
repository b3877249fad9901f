//go:build race

package cluster

// raceEnabled: the race detector slows the helper processes (built the same
// way) several times over, so the concurrency test uses fewer streams; CI
// also runs this package without it at full size.
const raceEnabled = true
