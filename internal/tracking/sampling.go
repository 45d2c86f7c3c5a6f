package tracking

import (
	"slices"
	"sort"
)

// Limits of GetMetricHistoryBulkInterval, as MLflow's REST handler.
const (
	// MaxBulkIntervalRuns is the largest number of run ids one request may name.
	MaxBulkIntervalRuns = 100
	// MaxBulkIntervalResults is the default and the largest number of steps
	// sampled per request (MLflow's MAX_RESULTS_PER_RUN).
	MaxBulkIntervalResults = 2500
)

// SampleSteps downsamples steps, a sorted list of distinct steps, to at most
// maxResults+1 steps within [start, end], as MLflow samples metric histories
// for its charts: when the range holds no more than maxResults steps they are
// all returned; otherwise maxResults steps are picked at evenly spaced
// positions starting with the first step of the range, and the last step of
// the range is always added. The result is sorted and distinct; it is empty
// when maxResults is not positive.
//
// MLflow (handlers.py, _get_sampled_steps_from_steps) compares the picked
// position with the number of steps in the range instead of with the end of
// the range, which drops every pick but the last when start lies past the
// first step; SampleSteps picks as that function intends.
func SampleSteps(steps []int64, start, end int64, maxResults int) []int64 {
	if maxResults <= 0 || start > end {
		return nil
	}
	lo := sort.Search(len(steps), func(i int) bool { return steps[i] >= start })
	hi := sort.Search(len(steps), func(i int) bool { return steps[i] > end })
	n := hi - lo
	if n <= maxResults {
		return slices.Clone(steps[lo:hi])
	}
	interval := float64(n) / float64(maxResults)
	out := make([]int64, 0, maxResults+1)
	for i := range maxResults {
		out = append(out, steps[lo+int(float64(i)*interval)])
	}
	if last := steps[hi-1]; out[len(out)-1] != last {
		out = append(out, last)
	}
	return out
}

// mergeSteps returns the sorted union of the given step lists without duplicates.
func mergeSteps(lists ...[]int64) []int64 {
	var all []int64
	for _, l := range lists {
		all = append(all, l...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}
