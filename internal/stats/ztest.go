package stats

import (
	"fmt"
	"math"
)

// TwoProportionZ is the pooled two-proportion z-test (two-sided): x1 of n1
// against x2 of n2, as Evidently's z_stat_test and statsmodels'
// proportions_ztest. When the pooled proportion is 0 or 1 the statistic is 0
// and the p-value 1.
//
// With p̂ = (x1+x2)/(n1+n2) the statistic is
// z = (x1/n1 − x2/n2) / √(p̂(1−p̂)(1/n1 + 1/n2)) and the p-value is
// 2·NormalSF(|z|) (Evidently computes 2·(1 − Φ(|z|)), which loses precision
// below about 1e-16). Non-positive sizes and counts outside [0, n] are errors.
func TwoProportionZ(x1, n1, x2, n2 int64) (TestResult, error) {
	if n1 <= 0 || n2 <= 0 {
		return TestResult{}, fmt.Errorf("two-proportion z-test: sample sizes must be positive, got %d and %d", n1, n2)
	}
	if x1 < 0 || x1 > n1 {
		return TestResult{}, fmt.Errorf("two-proportion z-test: count %d outside [0, %d]", x1, n1)
	}
	if x2 < 0 || x2 > n2 {
		return TestResult{}, fmt.Errorf("two-proportion z-test: count %d outside [0, %d]", x2, n2)
	}
	if x1+x2 == 0 || x1+x2 == n1+n2 {
		return TestResult{Statistic: 0, PValue: 1}, nil
	}
	fn1, fn2 := float64(n1), float64(n2)
	p1 := float64(x1) / fn1
	p2 := float64(x2) / fn2
	pooled := float64(x1+x2) / (fn1 + fn2)
	z := (p1 - p2) / math.Sqrt(pooled*(1-pooled)*(1/fn1+1/fn2))
	return TestResult{Statistic: z, PValue: math.Min(1, 2*NormalSF(math.Abs(z)))}, nil
}

// NormalSF is the standard normal survival function (scipy.stats.norm.sf),
// computed as Cephes' ndtr(−z): from erf near 0 and from erfc in the tails,
// so that it keeps full relative precision down to about 1e-308.
func NormalSF(z float64) float64 {
	if math.IsNaN(z) {
		return math.NaN()
	}
	x := -z * (1 / math.Sqrt2)
	a := math.Abs(x)
	if a < 1/math.Sqrt2 {
		return 0.5 + 0.5*math.Erf(x)
	}
	y := 0.5 * math.Erfc(a)
	if x > 0 {
		return 1 - y
	}
	return y
}
