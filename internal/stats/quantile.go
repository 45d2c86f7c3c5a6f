package stats

// QuantileSketch is a KLL sketch (Karnin, Lang, Liberty 2016): a mergeable
// summary of a stream of float64 values that answers rank and quantile
// queries with a bounded normalized rank error (see RankError) in memory
// that grows only with log(n). The zero value is not usable; call
// NewQuantileSketch.
type QuantileSketch struct {
	// TODO(helper): implementation.
}

// NewQuantileSketch returns an empty sketch with accuracy parameter k
// (DefaultQuantileK when k <= 0).
func NewQuantileSketch(k int) *QuantileSketch { panic("not implemented") }

// Add adds x to the sketch. NaN values are ignored (callers count them).
func (s *QuantileSketch) Add(x float64) { panic("not implemented") }

// Merge adds every value summarised by o to s. o is not modified.
func (s *QuantileSketch) Merge(o *QuantileSketch) { panic("not implemented") }

// Count returns how many values were added (including merged ones).
func (s *QuantileSketch) Count() int64 { panic("not implemented") }

// Min and Max return the exact smallest and largest values added; NaN when empty.
func (s *QuantileSketch) Min() float64 { panic("not implemented") }

// Max returns the exact largest value added; NaN when empty.
func (s *QuantileSketch) Max() float64 { panic("not implemented") }

// Quantile returns an approximate q-quantile (0 ≤ q ≤ 1); q=0 and q=1 return
// the exact minimum and maximum. NaN when empty.
func (s *QuantileSketch) Quantile(q float64) float64 { panic("not implemented") }

// CDF returns the approximate fraction of values ≤ x.
func (s *QuantileSketch) CDF(x float64) float64 { panic("not implemented") }

// Items returns the sketch's retained values in ascending order with their
// weights (the number of original values each stands for); the weights sum
// to Count. Drift computed from profiles uses them as a weighted sample.
func (s *QuantileSketch) Items() (values []float64, weights []float64) { panic("not implemented") }

// RankError returns the sketch's normalized rank error bound: with
// probability at least 99%, |CDF(x) − true CDF(x)| ≤ RankError() for all x.
func (s *QuantileSketch) RankError() float64 { panic("not implemented") }

// MarshalJSON encodes the sketch so that UnmarshalJSON restores it exactly.
func (s *QuantileSketch) MarshalJSON() ([]byte, error) { panic("not implemented") }

// UnmarshalJSON decodes a sketch written by MarshalJSON; invalid input is an error.
func (s *QuantileSketch) UnmarshalJSON(b []byte) error { panic("not implemented") }
