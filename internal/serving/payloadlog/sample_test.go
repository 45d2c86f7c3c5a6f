package payloadlog

import (
	"math"
	"strconv"
	"testing"
)

// TestKeepMatchesLogger checks that Keep makes the choice a Logger with
// the same SampleRate makes, and keeps about rate of the ids.
func TestKeepMatchesLogger(t *testing.T) {
	for _, rate := range []float64{0.01, 0.1, 0.5, 0.9} {
		l := New(newMemSink(), Config{SampleRate: rate, Logger: quiet()})
		kept := 0
		const n = 20000
		for i := range n {
			id := "req-" + strconv.Itoa(i)
			got := Keep(id, rate)
			if want := l.Wants(id); got != want {
				t.Fatalf("rate %v, id %s: Keep = %v, Logger.Wants = %v", rate, id, got, want)
			}
			if got {
				kept++
			}
		}
		if share := float64(kept) / n; math.Abs(share-rate) > 0.02 {
			t.Errorf("rate %v: kept %.3f of the ids", rate, share)
		}
	}
	for _, c := range []struct {
		id   string
		rate float64
		want bool
	}{
		{"a", 1, true}, {"a", 2, true}, {"a", 0, false}, {"a", -1, false}, {"a", math.NaN(), false}, {"", 0.5, true},
	} {
		if got := Keep(c.id, c.rate); got != c.want {
			t.Errorf("Keep(%q, %v) = %v, want %v", c.id, c.rate, got, c.want)
		}
	}
}
