package tracking

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// stepsRange returns the steps lo, lo+1, …, hi.
func stepsRange(lo, hi int64) []int64 {
	var out []int64
	for s := lo; s <= hi; s++ {
		out = append(out, s)
	}
	return out
}

func TestSampleSteps(t *testing.T) {
	tests := []struct {
		name       string
		steps      []int64
		start, end int64
		maxResults int
		want       []int64
	}{
		{"fewer steps than asked: all of them", stepsRange(0, 9), 0, 9, 20, stepsRange(0, 9)},
		{"exactly as many steps as asked", stepsRange(0, 9), 0, 9, 10, stepsRange(0, 9)},
		{"every other step, then the last", stepsRange(0, 9), 0, 9, 5, []int64{0, 2, 4, 6, 8, 9}},
		{"the range starts past the first step", stepsRange(0, 99), 50, 99, 10,
			[]int64{50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 99}},
		{"the range ends before the last step", stepsRange(0, 99), 0, 49, 5, []int64{0, 10, 20, 30, 40, 49}},
		{"uneven steps, fractional interval", []int64{1, 10, 100, 1000, 10000}, 0, 10000, 2, []int64{1, 100, 10000}},
		{"the last pick is the last step", stepsRange(0, 3), 0, 3, 3, []int64{0, 1, 2, 3}},
		{"negative steps", stepsRange(-10, -1), -10, -1, 2, []int64{-10, -5, -1}},
		{"no step in the range", stepsRange(0, 9), 20, 30, 5, nil},
		{"one step", []int64{7}, 0, 10, 1, []int64{7}},
		{"no steps at all", nil, 0, 10, 5, nil},
		{"start after end", stepsRange(0, 9), 5, 4, 5, nil},
		{"max results zero", stepsRange(0, 9), 0, 9, 0, nil},
		{"max results negative", stepsRange(0, 9), 0, 9, -1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SampleSteps(tt.steps, tt.start, tt.end, tt.maxResults)
			if !slices.Equal(got, tt.want) {
				t.Errorf("SampleSteps(%v, %d, %d, %d): got %v, want %v", tt.steps, tt.start, tt.end, tt.maxResults, got, tt.want)
			}
		})
	}
}

// TestSampleStepsProperties checks, on random inputs, what every sample must
// satisfy: sorted, distinct, within the range, drawn from the input, no
// larger than maxResults+1, and holding the first and last step of the range.
func TestSampleStepsProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2)) // fixed seed: the same inputs on every run
	for i := range 2000 {
		var steps []int64
		for range r.IntN(300) {
			steps = append(steps, r.Int64N(1000)-100)
		}
		slices.Sort(steps)
		steps = slices.Compact(steps)
		start := r.Int64N(1200) - 200
		end := start + r.Int64N(800)
		maxResults := 1 + r.IntN(50)

		got := SampleSteps(steps, start, end, maxResults)
		var inRange []int64
		for _, s := range steps {
			if start <= s && s <= end {
				inRange = append(inRange, s)
			}
		}
		switch {
		case !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got):
			t.Fatalf("case %d: got %v, want sorted distinct steps", i, got)
		case len(got) > maxResults+1:
			t.Fatalf("case %d: got %d steps, want at most %d", i, len(got), maxResults+1)
		case len(inRange) <= maxResults && !slices.Equal(got, inRange):
			t.Fatalf("case %d: got %v, want every step of the range %v", i, got, inRange)
		case len(inRange) > 0 && (got[0] != inRange[0] || got[len(got)-1] != inRange[len(inRange)-1]):
			t.Fatalf("case %d: got %v, want it to start at %d and end at %d", i, got, inRange[0], inRange[len(inRange)-1])
		}
		for _, s := range got {
			if _, found := slices.BinarySearch(inRange, s); !found {
				t.Fatalf("case %d: got step %d, which is not a logged step of [%d, %d]", i, s, start, end)
			}
		}
	}
}

func TestMergeSteps(t *testing.T) {
	got := mergeSteps([]int64{5, 1, 3}, nil, []int64{3, 9, 1}, []int64{-2})
	if want := []int64{-2, 1, 3, 5, 9}; !slices.Equal(got, want) {
		t.Errorf("mergeSteps: got %v, want %v", got, want)
	}
}

func BenchmarkSampleSteps(b *testing.B) {
	steps := stepsRange(0, 1_000_000)
	for b.Loop() {
		SampleSteps(steps, 1000, 900_000, MaxBulkIntervalResults)
	}
}
