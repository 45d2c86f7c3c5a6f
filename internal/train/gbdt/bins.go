package gbdt

import (
	"cmp"
	"context"
	"math"
	"slices"
)

// missingBin marks a missing value in the binned matrix.
const missingBin = math.MaxUint16

// binner maps feature values to histogram bins. A numerical feature's bin
// is the number of its cuts at or below the value (XGBoost's upper_bound),
// so bin(v) ≤ i exactly when v < cuts[i]: a split after bin i has the
// condition cuts[i]. A categorical feature's bin is its category code.
type binner struct {
	nbins  []int       // bins per feature
	offset []int       // first histogram slot of each feature
	total  int         // histogram slots
	cuts   [][]float32 // numerical features: ascending cut values, one per bin
	minVal []float32   // numerical features: a condition below every value
	cats   [][]uint16  // categorical features: the codes present, ascending
	isCat  []bool      // whether each feature is categorical
}

// newBinner computes the bins of every feature of d: at most maxBins
// weighted quantile bins for numerical features (each distinct value its
// own bin when there are at most maxBins of them), a bin per category code
// for categorical ones.
func newBinner(ctx context.Context, d *Data, maxBins, threads int) (*binner, error) {
	nf := len(d.Features)
	b := &binner{
		nbins:  make([]int, nf),
		offset: make([]int, nf),
		cuts:   make([][]float32, nf),
		minVal: make([]float32, nf),
		cats:   make([][]uint16, nf),
		isCat:  make([]bool, nf),
	}
	err := parallelFor(ctx, nf, threads, func(j int) {
		if d.Features[j].Categorical {
			b.isCat[j] = true
			b.cats[j], b.nbins[j] = presentCategories(d.Columns[j])
			return
		}
		b.cuts[j], b.minVal[j] = quantileCuts(d.Columns[j], d.Weights, maxBins)
		b.nbins[j] = len(b.cuts[j])
	})
	if err != nil {
		return nil, err
	}
	for j, n := range b.nbins {
		b.offset[j] = b.total
		b.total += n
	}
	return b, nil
}

// presentCategories returns the category codes present in col and the
// number of bins they need (the largest code + 1).
func presentCategories(col []float32) ([]uint16, int) {
	seen := make([]bool, MaxCategory+1)
	hi := -1
	for _, v := range col {
		if v == v {
			c := int(v)
			seen[c] = true
			hi = max(hi, c)
		}
	}
	var codes []uint16
	for c := 0; c <= hi; c++ {
		if seen[c] {
			codes = append(codes, uint16(c))
		}
	}
	return codes, hi + 1
}

// quantileCuts returns the cut values of a numerical column and the
// condition that sends every value right. With at most maxBins distinct
// values every value but the smallest is a cut; otherwise cuts are placed
// at the k/maxBins quantiles of the (weighted) values. The last cut is
// above the largest value, as XGBoost's: max + |max| + 1e-5.
func quantileCuts(col, weights []float32, maxBins int) ([]float32, float32) {
	type vw struct{ v, w float32 }
	var vals []vw
	for i, v := range col {
		if v != v {
			continue
		}
		w := float32(1)
		if weights != nil {
			w = weights[i]
		}
		vals = append(vals, vw{v, w})
	}
	if len(vals) == 0 {
		return nil, 0
	}
	slices.SortFunc(vals, func(a, b vw) int { return cmp.Compare(a.v, b.v) })
	lo, hi := vals[0].v, vals[len(vals)-1].v
	var cuts []float32
	distinct := 1
	for i := 1; i < len(vals) && distinct <= maxBins; i++ {
		if vals[i].v != vals[i-1].v {
			distinct++
		}
	}
	if distinct <= maxBins {
		for i := 1; i < len(vals); i++ {
			if vals[i].v != vals[i-1].v {
				cuts = append(cuts, vals[i].v)
			}
		}
	} else {
		var total float64
		for _, x := range vals {
			total += float64(x.w)
		}
		var cum float64
		i := 0
		for k := 1; k < maxBins; k++ {
			target := total * float64(k) / float64(maxBins)
			for i < len(vals)-1 && cum+float64(vals[i].w) < target {
				cum += float64(vals[i].w)
				i++
			}
			v := vals[i].v
			if v > lo && (len(cuts) == 0 || v > cuts[len(cuts)-1]) {
				cuts = append(cuts, v)
			}
		}
	}
	last := hi + (float32(math.Abs(float64(hi))) + 1e-5)
	if len(cuts) == 0 || last > cuts[len(cuts)-1] {
		cuts = append(cuts, last)
	}
	minVal := lo - (float32(math.Abs(float64(lo))) + 1e-5)
	return cuts, minVal
}

// bin returns the bin of value v of feature j (missingBin for NaN).
func (b *binner) bin(j int, v float32) uint16 {
	if v != v {
		return missingBin
	}
	if b.isCat[j] {
		return uint16(v)
	}
	cuts := b.cuts[j]
	// upper_bound: the first cut greater than v.
	lo, hi := 0, len(cuts)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if cuts[m] <= v {
			lo = m + 1
		} else {
			hi = m
		}
	}
	if lo >= len(cuts) {
		lo = len(cuts) - 1
	}
	return uint16(lo)
}

// binRows returns the row-major binned matrix of d.
func (b *binner) binRows(ctx context.Context, d *Data, threads int) ([]uint16, error) {
	n, nf := d.Rows(), len(d.Features)
	out := make([]uint16, n*nf)
	const chunk = 1 << 14
	err := parallelFor(ctx, (n+chunk-1)/chunk, threads, func(c int) {
		end := min((c+1)*chunk, n)
		for j := range nf {
			col := d.Columns[j]
			for i := c * chunk; i < end; i++ {
				out[i*nf+j] = b.bin(j, col[i])
			}
		}
	})
	return out, err
}
