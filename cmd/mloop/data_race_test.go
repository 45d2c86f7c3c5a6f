//go:build race

package main

// raceEnabled reports whether the race detector is on: tests that push real
// data take a smaller sample then, since it makes them ten times slower.
const raceEnabled = true
