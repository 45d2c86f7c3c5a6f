package stats

// TwoProportionZ is the pooled two-proportion z-test (two-sided): x1 of n1
// against x2 of n2, as Evidently's z_stat_test and statsmodels'
// proportions_ztest. When the pooled proportion is 0 or 1 the statistic is 0
// and the p-value 1.
func TwoProportionZ(x1, n1, x2, n2 int64) (TestResult, error) { panic("not implemented") }

// NormalSF is the standard normal survival function (scipy.stats.norm.sf).
func NormalSF(z float64) float64 { panic("not implemented") }
