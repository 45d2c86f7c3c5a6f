package stats

import "math"

// Moments accumulates count, mean, variance, minimum and maximum of a stream
// of finite values in one pass with Welford's update, merged with Chan et al.'s
// parallel formula. The zero value is empty and ready to use.
//
// Keeping the mean and the sum of squared deviations (rather than sums of x
// and x²) keeps the variance accurate when the values share a large offset,
// and the running mean carries a low-order correction (a second float64,
// updated by an error-free sum) so that its rounding at the scale of the
// offset does not leak into the deviations: TestMomentsLargeOffset checks
// 10^9 + noise of standard deviation 1 and 10^-3 against an exact two-pass
// computation. The correction is not part of the JSON form. Min and Max are
// meaningful only when N > 0.
type Moments struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean"`
	M2   float64 `json:"m2"` // sum of squared deviations from the mean
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`

	meanLo float64 // the mean is Mean + meanLo
}

// Add adds x (callers pass only finite values).
func (m *Moments) Add(x float64) {
	m.N++
	if m.N == 1 {
		m.Mean, m.meanLo, m.M2, m.Min, m.Max = x, 0, 0, x, x
		return
	}
	d := (x - m.Mean) - m.meanLo
	m.addToMean(d / float64(m.N))
	m.M2 += d * ((x - m.Mean) - m.meanLo)
	if x < m.Min {
		m.Min = x
	}
	if x > m.Max {
		m.Max = x
	}
}

// addToMean adds inc to the mean Mean + meanLo, keeping the rounding error
// of the high part in the low part (Knuth's TwoSum).
func (m *Moments) addToMean(inc float64) {
	t := m.meanLo + inc
	s := m.Mean + t
	bp := s - m.Mean
	m.meanLo = (m.Mean - (s - bp)) + (t - bp)
	m.Mean = s
}

// Merge adds o's values to m.
func (m *Moments) Merge(o Moments) {
	if o.N <= 0 {
		return
	}
	if m.N <= 0 {
		*m = o
		return
	}
	na, nb := float64(m.N), float64(o.N)
	n := na + nb
	d := (o.Mean - m.Mean) + (o.meanLo - m.meanLo)
	m.addToMean(d * (nb / n))
	m.M2 += o.M2 + d*d*(na*nb/n)
	m.N += o.N
	m.Min = min(m.Min, o.Min)
	m.Max = max(m.Max, o.Max)
}

// Variance returns the population variance (ddof=0, as numpy.std's default); NaN when empty.
func (m *Moments) Variance() float64 {
	if m.N <= 0 {
		return math.NaN()
	}
	return max(m.M2, 0) / float64(m.N)
}

// Std returns the population standard deviation; NaN when empty.
func (m *Moments) Std() float64 { return math.Sqrt(m.Variance()) }

// SampleStd returns the sample standard deviation (ddof=1); NaN when N < 2.
func (m *Moments) SampleStd() float64 {
	if m.N < 2 {
		return math.NaN()
	}
	return math.Sqrt(max(m.M2, 0) / float64(m.N-1))
}
