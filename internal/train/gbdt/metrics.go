package gbdt

import (
	"cmp"
	"math"
	"slices"

	"github.com/mloop/mloop"
)

// Evaluate returns the quality metrics of preds (as Model.Predict writes
// them, Outputs() values per row) against labels, weighted by weights when
// not nil: for binary:logistic auc (ROC AUC, left out when labels hold one
// class only), logloss and accuracy (probability > 0.5 is class 1); for
// multi:softprob mlogloss and accuracy (the most probable class); for
// reg:squarederror rmse, mae and r2 (left out when the labels do not vary).
// Every objective also reports rows.
func Evaluate(obj Objective, numClass int, labels, weights, preds []float32) (map[string]float64, error) {
	k := 1
	if obj == MultiSoftprob {
		k = numClass
		if k < 2 {
			return nil, mloop.Errorf(mloop.EINVALID, "multi:softprob needs num_class ≥ 2, got %d", numClass)
		}
	}
	n := len(labels)
	if len(preds) != n*k {
		return nil, mloop.Errorf(mloop.EINVALID, "%d predictions for %d labels × %d outputs", len(preds), n, k)
	}
	if weights != nil && len(weights) != n {
		return nil, mloop.Errorf(mloop.EINVALID, "%d weights for %d labels", len(weights), n)
	}
	if n == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "no rows to evaluate")
	}
	wt := func(i int) float64 {
		if weights == nil {
			return 1
		}
		return float64(weights[i])
	}
	out := map[string]float64{"rows": float64(n)}
	var wsum float64
	for i := range n {
		wsum += wt(i)
	}
	if wsum <= 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "the weights sum to %g; at least one row needs a positive weight", wsum)
	}
	switch obj {
	case BinaryLogistic:
		var ll, acc float64
		for i, y := range labels {
			p := float64(preds[i])
			ll += wt(i) * logloss(p, float64(y))
			if (p > 0.5) == (y == 1) {
				acc += wt(i)
			}
		}
		out["logloss"], out["accuracy"] = ll/wsum, acc/wsum
		if auc, ok := AUC(labels, weights, preds); ok {
			out["auc"] = auc
		}
	case MultiSoftprob:
		var ll, acc float64
		for i, y := range labels {
			row := preds[i*k : (i+1)*k]
			c := int(y)
			if c < 0 || c >= k {
				return nil, mloop.Errorf(mloop.EINVALID, "label of row %d is %g, outside 0 to %d", i+1, y, k-1)
			}
			ll += wt(i) * -math.Log(clampProb(float64(row[c])))
			best := 0
			for j, p := range row {
				if p > row[best] {
					best = j
				}
			}
			if best == c {
				acc += wt(i)
			}
		}
		out["mlogloss"], out["accuracy"] = ll/wsum, acc/wsum
	case RegSquaredError:
		var se, ae, mean float64
		for i, y := range labels {
			mean += wt(i) * float64(y)
		}
		mean /= wsum
		var ss float64
		for i, y := range labels {
			d := float64(preds[i]) - float64(y)
			se += wt(i) * d * d
			ae += wt(i) * math.Abs(d)
			ss += wt(i) * (float64(y) - mean) * (float64(y) - mean)
		}
		out["rmse"], out["mae"] = math.Sqrt(se/wsum), ae/wsum
		if ss > 0 {
			out["r2"] = 1 - se/ss
		}
	default:
		return nil, mloop.Errorf(mloop.EINVALID, "objective %q is not supported", obj)
	}
	return out, nil
}

// AUC returns the (weighted) area under the ROC curve of scores against
// 0/1 labels, ties counted as half; ok is false when the labels hold one
// class only.
func AUC(labels, weights, scores []float32) (auc float64, ok bool) {
	idx := make([]int32, len(labels))
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortFunc(idx, func(a, b int32) int { return cmp.Compare(scores[b], scores[a]) })
	var tp, fp, area float64
	for i := 0; i < len(idx); {
		// A run of equal scores moves the curve diagonally.
		var dtp, dfp float64
		j := i
		for ; j < len(idx) && scores[idx[j]] == scores[idx[i]]; j++ {
			w := 1.0
			if weights != nil {
				w = float64(weights[idx[j]])
			}
			if labels[idx[j]] == 1 {
				dtp += w
			} else {
				dfp += w
			}
		}
		area += dfp * (tp + dtp/2)
		tp += dtp
		fp += dfp
		i = j
	}
	if tp == 0 || fp == 0 {
		return math.NaN(), false
	}
	return area / (tp * fp), true
}
