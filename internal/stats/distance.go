package stats

import (
	"errors"
	"fmt"
	"math"
	"slices"
)

// JensenShannon is scipy.spatial.distance.jensenshannon(p, q, base): the
// Jensen–Shannon distance (square root of the divergence) between two
// non-negative vectors, each normalised to sum 1. base ≤ 0 means e.
//
// With m = (p+q)/2 the divergence is (Σ rel_entr(p, m) + Σ rel_entr(q, m))/2,
// where rel_entr(a, b) = a·ln(a/b) and 0 where a = 0, divided by ln(base).
// A divergence that rounds below zero is taken as 0 (scipy would return NaN).
// Mismatched lengths, empty, negative, non-finite or all-zero vectors and
// a base in (0, 1] are errors.
func JensenShannon(p, q []float64, base float64) (float64, error) {
	if err := checkDistribution("jensen-shannon", p, q); err != nil {
		return 0, err
	}
	if math.IsNaN(base) || (base > 0 && base <= 1) || math.IsInf(base, 0) {
		return 0, fmt.Errorf("jensen-shannon: invalid base %g (want > 1, or ≤ 0 for e)", base)
	}
	sp, sq := sum(p), sum(q)
	var left, right float64
	for i := range p {
		pi := p[i] / sp
		qi := q[i] / sq
		mi := (pi + qi) / 2
		left += relEntr(pi, mi)
		right += relEntr(qi, mi)
	}
	js := left + right
	if base > 0 {
		js /= math.Log(base)
	}
	return math.Sqrt(math.Max(js, 0) / 2), nil
}

// relEntr is scipy.special.rel_entr for a ≥ 0, b ≥ 0: a·ln(a/b), 0 when a is
// 0 and +Inf when only b is 0.
func relEntr(a, b float64) float64 {
	switch {
	case a > 0 && b > 0:
		return a * math.Log(a/b)
	case a == 0 && b >= 0:
		return 0
	}
	return math.Inf(1)
}

// checkDistribution validates two count or probability vectors of equal,
// non-zero length with non-negative, finite entries and a positive sum.
func checkDistribution(what string, p, q []float64) error {
	if len(p) != len(q) {
		return fmt.Errorf("%s: vectors have different lengths %d and %d", what, len(p), len(q))
	}
	if len(p) == 0 {
		return fmt.Errorf("%s: empty vectors", what)
	}
	for k, v := range [][]float64{p, q} {
		name := [...]string{"first", "second"}[k]
		s := 0.0
		for i, e := range v {
			switch {
			case math.IsNaN(e):
				return fmt.Errorf("%s: %s vector has NaN at index %d", what, name, i)
			case math.IsInf(e, 0):
				return fmt.Errorf("%s: %s vector has an infinite value at index %d", what, name, i)
			case e < 0:
				return fmt.Errorf("%s: %s vector has negative value %g at index %d", what, name, e, i)
			}
			s += e
		}
		if s == 0 {
			return fmt.Errorf("%s: %s vector sums to zero", what, name)
		}
		if math.IsInf(s, 0) {
			return fmt.Errorf("%s: %s vector sum overflows", what, name)
		}
	}
	return nil
}

func sum(v []float64) float64 {
	s := 0.0
	for _, e := range v {
		s += e
	}
	return s
}

// PSIEpsilon replaces empty-bin proportions in PSI so the logarithm stays
// finite (the value Evidently uses).
const PSIEpsilon = 0.0001

// PSI is the population stability index Σ (cur−ref)·ln(cur/ref) over bin
// proportions, where a proportion of 0 is replaced by PSIEpsilon. ref and cur
// are counts or proportions; each is normalised to sum 1 first (the
// replacement happens after normalising, and the result is not renormalised,
// as in Evidently's psi_stat_test). Mismatched lengths, empty, negative,
// non-finite or all-zero vectors are errors.
func PSI(ref, cur []float64) (float64, error) {
	if err := checkDistribution("psi", ref, cur); err != nil {
		return 0, err
	}
	sr, sc := sum(ref), sum(cur)
	psi := 0.0
	for i := range ref {
		r := ref[i] / sr
		c := cur[i] / sc
		if r == 0 {
			r = PSIEpsilon
		}
		if c == 0 {
			c = PSIEpsilon
		}
		psi += (c - r) * math.Log(c/r)
	}
	return psi, nil
}

// Wasserstein is scipy.stats.wasserstein_distance(u, v, uWeights, vWeights):
// the first Wasserstein distance between two 1-D distributions. Nil weights
// mean equal weights.
//
// It is ∫|U(t) − V(t)| dt for the two (weighted) empirical CDFs, summed over
// the gaps between consecutive pooled values. Empty samples, NaN or infinite
// values, weights whose length differs from their sample's, negative weights
// and weights that do not sum to a positive finite number are errors.
func Wasserstein(u, v, uWeights, vWeights []float64) (float64, error) {
	if err := checkWassersteinSample("u", u, uWeights); err != nil {
		return 0, err
	}
	if err := checkWassersteinSample("v", v, vWeights); err != nil {
		return 0, err
	}
	if uWeights == nil && vWeights == nil {
		us, vs := slices.Clone(u), slices.Clone(v)
		slices.Sort(us)
		slices.Sort(vs)
		return WassersteinSorted(us, vs), nil
	}
	us, uw := sortedWithWeights(u, uWeights)
	vs, vw := sortedWithWeights(v, vWeights)
	// uw and vw are now cumulative weights, normalised by their totals at
	// each step as scipy does (cumsum[idx] / cumsum[-1]).
	uTotal, vTotal := uw[len(uw)-1], vw[len(vw)-1]
	i, j := 0, 0
	n, m := len(us), len(vs)
	dist := 0.0
	prev := math.Min(us[0], vs[0])
	for i < n || j < m {
		var t float64
		if j >= m || (i < n && us[i] <= vs[j]) {
			t = us[i]
		} else {
			t = vs[j]
		}
		if t != prev {
			var uc, vc float64
			if i > 0 {
				uc = uw[i-1] / uTotal
			}
			if j > 0 {
				vc = vw[j-1] / vTotal
			}
			dist += math.Abs(uc-vc) * (t - prev)
			prev = t
		}
		for i < n && us[i] <= t {
			i++
		}
		for j < m && vs[j] <= t {
			j++
		}
	}
	return dist, nil
}

func checkWassersteinSample(name string, x, w []float64) error {
	if len(x) == 0 {
		return fmt.Errorf("wasserstein: %s is empty", name)
	}
	for i, e := range x {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return fmt.Errorf("wasserstein: %s has non-finite value %g at index %d", name, e, i)
		}
	}
	if w == nil {
		return nil
	}
	if len(w) != len(x) {
		return fmt.Errorf("wasserstein: %s has %d values but %d weights", name, len(x), len(w))
	}
	s := 0.0
	for i, e := range w {
		if math.IsNaN(e) {
			return fmt.Errorf("wasserstein: %s weights have NaN at index %d", name, i)
		}
		if e < 0 {
			return fmt.Errorf("wasserstein: %s weights have negative value %g at index %d", name, e, i)
		}
		s += e
	}
	if !(s > 0 && !math.IsInf(s, 0)) {
		return errors.New("wasserstein: " + name + " weights must sum to a positive finite number")
	}
	return nil
}

// sortedWithWeights returns x sorted ascending and the cumulative sums of
// the weights in that order.
func sortedWithWeights(x, w []float64) ([]float64, []float64) {
	idx := make([]int, len(x))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case x[a] < x[b]:
			return -1
		case x[a] > x[b]:
			return 1
		}
		return 0
	})
	xs := make([]float64, len(x))
	cum := make([]float64, len(x))
	c := 0.0
	for k, i := range idx {
		xs[k] = x[i]
		if w == nil {
			c++
		} else {
			c += w[i]
		}
		cum[k] = c
	}
	return xs, cum
}

// WassersteinSorted is Wasserstein for unweighted samples already sorted
// ascending. It is one O(n+m) merge that allocates nothing. Inputs must be
// non-empty, finite and sorted (this is not checked); it returns NaN for an
// empty sample.
func WassersteinSorted(u, v []float64) float64 {
	n, m := len(u), len(v)
	if n == 0 || m == 0 {
		return math.NaN()
	}
	fn, fm := float64(n), float64(m)
	i, j := 0, 0
	dist := 0.0
	prev := math.Min(u[0], v[0])
	for i < n || j < m {
		var t float64
		if j >= m || (i < n && u[i] <= v[j]) {
			t = u[i]
		} else {
			t = v[j]
		}
		if t != prev {
			// Between prev and t both CDFs are constant: i/n and j/m.
			dist += math.Abs(float64(i)/fn-float64(j)/fm) * (t - prev)
			prev = t
		}
		for i < n && u[i] <= t {
			i++
		}
		for j < m && v[j] <= t {
			j++
		}
	}
	return dist
}
