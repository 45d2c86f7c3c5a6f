package stats

// FrequentItems counts text values: exactly while the number of distinct
// values stays within its limit, then approximately (the heavy hitters are
// kept with bounded over-estimation, see MaxError). Mergeable.
type FrequentItems struct {
	// TODO(helper): implementation.
}

// NewFrequentItems returns an empty counter that counts up to limit distinct
// values exactly (DefaultFrequentLimit when limit <= 0).
func NewFrequentItems(limit int) *FrequentItems { panic("not implemented") }

// Add counts n more occurrences of value.
func (f *FrequentItems) Add(value string, n int64) { panic("not implemented") }

// Merge adds o's counts to f.
func (f *FrequentItems) Merge(o *FrequentItems) { panic("not implemented") }

// Exact reports whether every count is exact (the limit was never exceeded).
func (f *FrequentItems) Exact() bool { panic("not implemented") }

// Total returns the number of occurrences added.
func (f *FrequentItems) Total() int64 { panic("not implemented") }

// Items returns the tracked values by descending count (ties by value).
func (f *FrequentItems) Items() []ItemCount { panic("not implemented") }

// Count returns value's (estimated) count; 0 when not tracked.
func (f *FrequentItems) Count(value string) int64 { panic("not implemented") }

// MaxError returns the largest amount by which any reported count may exceed
// the true count (0 while Exact).
func (f *FrequentItems) MaxError() int64 { panic("not implemented") }

// MarshalJSON encodes the counter so that UnmarshalJSON restores it exactly.
func (f *FrequentItems) MarshalJSON() ([]byte, error) { panic("not implemented") }

// UnmarshalJSON decodes a counter written by MarshalJSON; invalid input is an error.
func (f *FrequentItems) UnmarshalJSON(b []byte) error { panic("not implemented") }
