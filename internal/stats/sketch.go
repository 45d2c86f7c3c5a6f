package stats

// This file declares the sketch API; implementations live in quantile.go,
// distinct.go, frequent.go and moments.go.

// DefaultQuantileK is the KLL accuracy parameter used when none is given.
const DefaultQuantileK = 200

// DefaultFrequentLimit is how many distinct values FrequentItems counts
// exactly before it switches to approximate counting.
const DefaultFrequentLimit = 1000

// ItemCount is a value and how many times it was seen.
type ItemCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}
