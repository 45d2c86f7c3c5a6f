package stats

// This file declares the two-sample tests and distances; implementations live
// in ks.go, chi2.go, distance.go and ztest.go.

// TestResult is a test statistic and its p-value.
type TestResult struct {
	Statistic float64 `json:"statistic"`
	PValue    float64 `json:"p_value"`
}

// KSMethod selects how KSTwoSample computes its p-value, as scipy's
// ks_2samp(method=…).
type KSMethod string

// KS methods.
const (
	KSAuto  KSMethod = "auto"  // exact when max(n, m) ≤ 10000, asymptotic otherwise
	KSExact KSMethod = "exact" // exact distribution of the statistic
	KSAsymp KSMethod = "asymp" // asymptotic (kstwo) distribution
)

// Chi2Result is chi2_contingency's answer.
type Chi2Result struct {
	Statistic float64     `json:"statistic"`
	PValue    float64     `json:"p_value"`
	DoF       int         `json:"dof"`
	Expected  [][]float64 `json:"expected"`
}
