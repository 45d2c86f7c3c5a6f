package stats

// Chi2Contingency is scipy.stats.chi2_contingency(table, correction): the
// chi-squared test of homogeneity/independence on an r×c table of observed
// counts, with Yates' continuity correction when correction is set and the
// table has one degree of freedom. A table with a zero expected frequency or
// fewer than 2 rows or columns is an error.
func Chi2Contingency(table [][]float64, correction bool) (Chi2Result, error) {
	panic("not implemented")
}

// Chi2SF is the chi-squared survival function with k degrees of freedom
// (scipy.stats.chi2.sf).
func Chi2SF(x float64, k float64) float64 { panic("not implemented") }
