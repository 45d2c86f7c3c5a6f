package stats

// Moments accumulates count, mean, variance, minimum and maximum of a stream
// of finite values in one pass with Welford's update, merged with Chan et al.'s
// parallel formula. The zero value is empty and ready to use.
type Moments struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean"`
	M2   float64 `json:"m2"` // sum of squared deviations from the mean
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// Add adds x (callers pass only finite values).
func (m *Moments) Add(x float64) { panic("not implemented") }

// Merge adds o's values to m.
func (m *Moments) Merge(o Moments) { panic("not implemented") }

// Variance returns the population variance (ddof=0, as numpy.std's default); NaN when empty.
func (m *Moments) Variance() float64 { panic("not implemented") }

// Std returns the population standard deviation; NaN when empty.
func (m *Moments) Std() float64 { panic("not implemented") }

// SampleStd returns the sample standard deviation (ddof=1); NaN when N < 2.
func (m *Moments) SampleStd() float64 { panic("not implemented") }
