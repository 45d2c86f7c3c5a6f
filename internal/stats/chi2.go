package stats

import (
	"errors"
	"fmt"
	"math"
)

// Chi2Contingency is scipy.stats.chi2_contingency(table, correction): the
// chi-squared test of homogeneity/independence on an r×c table of observed
// counts, with Yates' continuity correction when correction is set and the
// table has one degree of freedom. Expected frequencies are row sum × column
// sum / total. As in scipy, a table with a zero expected frequency (an empty
// row or column) is an error, and a table with one row or one column has zero
// degrees of freedom, statistic 0 and p-value 1. Empty, ragged, negative or
// NaN tables are errors.
func Chi2Contingency(table [][]float64, correction bool) (Chi2Result, error) {
	r := len(table)
	if r == 0 || len(table[0]) == 0 {
		return Chi2Result{}, errors.New("chi2 contingency: empty table")
	}
	c := len(table[0])
	for i, row := range table {
		if len(row) != c {
			return Chi2Result{}, fmt.Errorf("chi2 contingency: row %d has %d columns, want %d", i, len(row), c)
		}
		for j, v := range row {
			switch {
			case math.IsNaN(v):
				return Chi2Result{}, fmt.Errorf("chi2 contingency: NaN at row %d, column %d", i, j)
			case math.IsInf(v, 0):
				return Chi2Result{}, fmt.Errorf("chi2 contingency: infinite count at row %d, column %d", i, j)
			case v < 0:
				return Chi2Result{}, fmt.Errorf("chi2 contingency: negative count %g at row %d, column %d", v, i, j)
			}
		}
	}
	rowSums := make([]float64, r)
	colSums := make([]float64, c)
	total := 0.0
	for i, row := range table {
		for j, v := range row {
			rowSums[i] += v
			colSums[j] += v
		}
	}
	for _, s := range rowSums {
		total += s
	}
	expected := make([][]float64, r)
	for i := range expected {
		expected[i] = make([]float64, c)
		for j := range expected[i] {
			e := rowSums[i] * colSums[j] / total
			if e == 0 || math.IsNaN(e) {
				return Chi2Result{}, fmt.Errorf("chi2 contingency: expected frequency is zero at row %d, column %d (empty row or column)", i, j)
			}
			expected[i][j] = e
		}
	}
	dof := r*c - r - c + 1
	res := Chi2Result{DoF: dof, Expected: expected, PValue: 1}
	if dof == 0 {
		return res, nil
	}
	yates := dof == 1 && correction
	stat := 0.0
	for i, row := range table {
		for j, o := range row {
			e := expected[i][j]
			if yates {
				// Move o towards e by 0.5, but never past it (scipy gh-13875).
				diff := e - o
				o += math.Min(0.5, math.Abs(diff)) * sign(diff)
			}
			d := o - e
			stat += d * d / e
		}
	}
	res.Statistic = stat
	res.PValue = Chi2SF(stat, float64(dof))
	return res, nil
}

// sign is numpy's sign: −1, 0 or +1 (0 for ±0).
func sign(v float64) float64 {
	switch {
	case v > 0:
		return 1
	case v < 0:
		return -1
	}
	return 0
}

// Chi2SF is the chi-squared survival function with k degrees of freedom
// (scipy.stats.chi2.sf): Q(k/2, x/2), the regularized upper incomplete gamma
// function. It is 1 for x ≤ 0, 0 for x = +Inf, and NaN for k ≤ 0 or NaN
// arguments. Relative accuracy is about 1e-13 away from underflow; results
// below about 1e-308 underflow to 0 or a subnormal, as in scipy.
func Chi2SF(x float64, k float64) float64 {
	switch {
	case math.IsNaN(x) || math.IsNaN(k) || k <= 0:
		return math.NaN()
	case x <= 0:
		return 1
	case math.IsInf(x, 1):
		return 0
	}
	return gammaQ(k/2, x/2)
}
