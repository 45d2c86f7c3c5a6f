package stats

// JensenShannon is scipy.spatial.distance.jensenshannon(p, q, base): the
// Jensen–Shannon distance (square root of the divergence) between two
// non-negative vectors, each normalised to sum 1. base ≤ 0 means e.
func JensenShannon(p, q []float64, base float64) (float64, error) { panic("not implemented") }

// PSIEpsilon replaces empty-bin proportions in PSI so the logarithm stays
// finite (the value Evidently uses).
const PSIEpsilon = 0.0001

// PSI is the population stability index Σ (cur−ref)·ln(cur/ref) over bin
// proportions, where a proportion of 0 is replaced by PSIEpsilon. ref and cur
// are counts or proportions; each is normalised to sum 1 first.
func PSI(ref, cur []float64) (float64, error) { panic("not implemented") }

// Wasserstein is scipy.stats.wasserstein_distance(u, v, uWeights, vWeights):
// the first Wasserstein distance between two 1-D distributions. Nil weights
// mean equal weights.
func Wasserstein(u, v, uWeights, vWeights []float64) (float64, error) { panic("not implemented") }

// WassersteinSorted is Wasserstein for unweighted samples already sorted ascending.
func WassersteinSorted(u, v []float64) float64 { panic("not implemented") }
