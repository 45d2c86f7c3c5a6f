package stats

// DistinctCounter is a HyperLogLog sketch estimating the number of distinct
// values in a stream; mergeable; relative standard error about 1.04/√m with
// m registers. Small cardinalities are counted exactly (sparse form), so
// columns with few values report exact counts.
type DistinctCounter struct {
	// TODO(helper): implementation.
}

// NewDistinctCounter returns an empty counter.
func NewDistinctCounter() *DistinctCounter { panic("not implemented") }

// AddHash adds a value by its 64-bit hash (callers hash with Hash64/HashString).
func (c *DistinctCounter) AddHash(h uint64) { panic("not implemented") }

// AddString adds a text value.
func (c *DistinctCounter) AddString(s string) { panic("not implemented") }

// AddFloat adds a numeric value (0 and -0 count as one value).
func (c *DistinctCounter) AddFloat(x float64) { panic("not implemented") }

// Merge adds o's values to c.
func (c *DistinctCounter) Merge(o *DistinctCounter) { panic("not implemented") }

// Estimate returns the estimated number of distinct values.
func (c *DistinctCounter) Estimate() int64 { panic("not implemented") }

// MarshalJSON encodes the counter so that UnmarshalJSON restores it exactly.
func (c *DistinctCounter) MarshalJSON() ([]byte, error) { panic("not implemented") }

// UnmarshalJSON decodes a counter written by MarshalJSON; invalid input is an error.
func (c *DistinctCounter) UnmarshalJSON(b []byte) error { panic("not implemented") }
