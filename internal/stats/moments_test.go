package stats

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactMoments computes mean and population variance in two passes with
// 256-bit arithmetic, as the reference.
func exactMoments(xs []float64) (mean, variance float64) {
	prec := uint(256)
	sum := new(big.Float).SetPrec(prec)
	for _, x := range xs {
		sum.Add(sum, new(big.Float).SetPrec(prec).SetFloat64(x))
	}
	n := new(big.Float).SetPrec(prec).SetInt64(int64(len(xs)))
	m := new(big.Float).SetPrec(prec).Quo(sum, n)
	ss := new(big.Float).SetPrec(prec)
	for _, x := range xs {
		d := new(big.Float).SetPrec(prec).SetFloat64(x)
		d.Sub(d, m)
		d.Mul(d, d)
		ss.Add(ss, d)
	}
	ss.Quo(ss, n)
	mean, _ = m.Float64()
	variance, _ = ss.Float64()
	return mean, variance
}

func momentsRelErr(got, want float64) float64 {
	if want == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-want) / math.Abs(want)
}

func TestMomentsKnownValues(t *testing.T) {
	var m Moments
	for _, x := range []float64{2, 4, 4, 4, 5, 5, 7, 9} {
		m.Add(x)
	}
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"Mean", m.Mean, 5},
		{"Variance", m.Variance(), 4},
		{"Std", m.Std(), 2},
		{"SampleStd", m.SampleStd(), math.Sqrt(32.0 / 7)},
		{"Min", m.Min, 2},
		{"Max", m.Max, 9},
	} {
		if momentsRelErr(c.got, c.want) > 1e-15 {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if m.N != 8 {
		t.Errorf("N = %d, want 8", m.N)
	}
}

func TestMomentsEmptyAndSingle(t *testing.T) {
	var m Moments
	if !math.IsNaN(m.Variance()) || !math.IsNaN(m.Std()) || !math.IsNaN(m.SampleStd()) {
		t.Errorf("empty: Variance, Std, SampleStd = %v, %v, %v; want NaN", m.Variance(), m.Std(), m.SampleStd())
	}
	m.Add(-3)
	if m.Variance() != 0 || m.Std() != 0 || !math.IsNaN(m.SampleStd()) || m.Min != -3 || m.Max != -3 || m.Mean != -3 {
		t.Errorf("one value: %+v, Variance %v, SampleStd %v", m, m.Variance(), m.SampleStd())
	}
}

// TestMomentsLargeOffset checks numerical stability: values 10^9 + noise,
// where the textbook Σx² − (Σx)²/n formula loses every significant digit.
func TestMomentsLargeOffset(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, noise := range []float64{1, 1e-3} {
		xs := make([]float64, 50000)
		for i := range xs {
			xs[i] = 1e9 + noise*r.NormFloat64()
		}
		mean, variance := exactMoments(xs)
		var m Moments
		for _, x := range xs {
			m.Add(x)
		}
		if e := momentsRelErr(m.Mean, mean); e > 1e-15 {
			t.Errorf("noise %v: Mean = %v, want %v (relative error %.2g)", noise, m.Mean, mean, e)
		}
		if e := momentsRelErr(m.Variance(), variance); e > 1e-12 {
			t.Errorf("noise %v: Variance = %v, want %v (relative error %.2g)", noise, m.Variance(), variance, e)
		}
		// The same data merged from partitions (Chan et al.).
		var merged Moments
		for start := 0; start < len(xs); start += 7919 {
			var p Moments
			for _, x := range xs[start:min(start+7919, len(xs))] {
				p.Add(x)
			}
			merged.Merge(p)
		}
		if merged.N != int64(len(xs)) {
			t.Errorf("merged N = %d, want %d", merged.N, len(xs))
		}
		if e := momentsRelErr(merged.Variance(), variance); e > 1e-12 {
			t.Errorf("noise %v: merged Variance = %v, want %v (relative error %.2g)", noise, merged.Variance(), variance, e)
		}
		if e := momentsRelErr(merged.Mean, mean); e > 1e-15 {
			t.Errorf("noise %v: merged Mean = %v, want %v", noise, merged.Mean, mean)
		}
		// For contrast, the one-pass sum-of-squares formula.
		var s, ss float64
		for _, x := range xs {
			s += x
			ss += x * x
		}
		n := float64(len(xs))
		naive := (ss - s*s/n) / n
		t.Logf("noise %v: exact variance %.6g, Welford %.6g (rel. error %.1g), merged %.6g, naive Σx² formula %.6g",
			noise, variance, m.Variance(), momentsRelErr(m.Variance(), variance), merged.Variance(), naive)
	}
}

func TestMomentsMergeEqualsSequential(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	xs := make([]float64, 10001)
	for i := range xs {
		xs[i] = r.ExpFloat64()*100 - 30
	}
	var all Moments
	for _, x := range xs {
		all.Add(x)
	}
	var a, b, empty Moments
	for _, x := range xs[:3000] {
		a.Add(x)
	}
	for _, x := range xs[3000:] {
		b.Add(x)
	}
	var m Moments
	m.Merge(empty)
	m.Merge(a)
	m.Merge(empty)
	m.Merge(b)
	if m.N != all.N || m.Min != all.Min || m.Max != all.Max {
		t.Errorf("merged N, Min, Max = %d, %v, %v; want %d, %v, %v", m.N, m.Min, m.Max, all.N, all.Min, all.Max)
	}
	if momentsRelErr(m.Mean, all.Mean) > 1e-13 || momentsRelErr(m.M2, all.M2) > 1e-12 {
		t.Errorf("merged Mean, M2 = %v, %v; want %v, %v", m.Mean, m.M2, all.Mean, all.M2)
	}
	_, variance := exactMoments(xs)
	if momentsRelErr(m.Variance(), variance) > 1e-12 || momentsRelErr(all.Variance(), variance) > 1e-12 {
		t.Errorf("Variance merged %v, sequential %v; want %v", m.Variance(), all.Variance(), variance)
	}
	if got, want := m.SampleStd(), math.Sqrt(variance*float64(len(xs))/float64(len(xs)-1)); momentsRelErr(got, want) > 1e-12 {
		t.Errorf("SampleStd() = %v, want %v", got, want)
	}
}
