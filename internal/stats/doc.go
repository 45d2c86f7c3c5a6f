// Package stats holds mloop's pure statistics: mergeable sketches that
// summarise a column in bounded memory (quantiles, distinct counts, frequent
// values, moments) and the two-sample tests and distances that drift
// detection uses (Kolmogorov–Smirnov, chi-squared, Jensen–Shannon, PSI,
// Wasserstein, two-proportion z-test).
//
// The package does no I/O and imports nothing from mloop, so every statistic
// is tested on its own: the tests and distances against golden values that
// testdata/gen_golden.py computes with scipy (Debian's python3-scipy), the
// sketches against exact answers on real and synthetic data.
package stats
