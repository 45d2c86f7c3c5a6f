package stats

// KSTwoSample is scipy.stats.ks_2samp(x, y, alternative="two-sided",
// method=method): the two-sample Kolmogorov–Smirnov statistic and p-value.
// NaNs are an error, as are empty samples. x and y are not modified.
func KSTwoSample(x, y []float64, method KSMethod) (TestResult, error) { panic("not implemented") }

// KSTwoSampleSorted is KSTwoSample for samples already sorted ascending
// (drift reuses sorted columns for several methods).
func KSTwoSampleSorted(x, y []float64, method KSMethod) (TestResult, error) { panic("not implemented") }

// KSPValue returns the two-sided p-value of statistic d for sample sizes n
// and m, as ks_2samp computes it with method (used when the statistic comes
// from sketches).
func KSPValue(d float64, n, m int64, method KSMethod) float64 { panic("not implemented") }
