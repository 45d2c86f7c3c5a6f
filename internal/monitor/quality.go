package monitor

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/stats"
)

// Task is what a model predicts, which decides its quality metrics.
type Task string

// Tasks.
const (
	// Binary classifiers predict the probability of class 1 (one output).
	Binary Task = "binary"
	// Multiclass classifiers predict one probability per class (several
	// outputs), or the class index itself (multi:softmax, one output).
	Multiclass Task = "multiclass"
	// Regression models predict a number.
	Regression Task = "regression"
)

// TaskOf returns the task of a model from its objective (XGBoost's names)
// and its outputs per row: binary:* is Binary; multi:* or more than one
// output Multiclass; anything else (reg:*, count:*, survival:*, or an
// unknown objective with one output) Regression.
func TaskOf(objective string, outputs int) Task {
	switch {
	case outputs > 1 || strings.HasPrefix(objective, "multi:"):
		return Multiclass
	case strings.HasPrefix(objective, "binary:"):
		return Binary
	}
	return Regression
}

// AUCBins is the number of equal-width score bins over [0, 1] in which a
// binary classifier's quality counts positives and negatives for ROC AUC.
// Scores falling in the same bin count as ties (half a correctly ordered
// pair), so the AUC is exact up to the ties the binning adds: Metrics
// reports that bound as "auc_max_error", Σ_b pos_b·neg_b / (2·P·N), which
// is about 0.0005 or less for scores spread over the range.
const AUCBins = 1000

// maxClasses bounds the class index of a multiclass label or prediction.
const maxClasses = 1024

// logLossEps clips probabilities to [eps, 1−eps] before taking logarithms.
const logLossEps = 1e-15

// Quality is the mergeable state of live quality: the counts from which
// Metrics computes accuracy, precision, recall, F1, ROC AUC and log loss
// (binary), accuracy, log loss and macro F1 (multiclass), or RMSE, MAE and
// R² (regression). Quality of two sets of labels merges (Merge) into the
// quality of their union, exactly.
type Quality struct {
	Task Task `json:"task"`
	// Labels is the number of labelled predictions.
	Labels int64 `json:"labels"`

	// Binary: the confusion counts at threshold 0.5, the score histograms
	// of the positives and negatives (AUCBins bins each), and the sum of
	// the per-label log losses.
	TP, FP, TN, FN int64
	Pos, Neg       []int64
	// LogLossSum is the sum of −log p(true class), binary and multiclass;
	// LogLossLabels the labels that had probabilities (multi:softmax
	// predicts classes only, so it has none).
	LogLossSum    float64
	LogLossLabels int64

	// Multiclass: the confusion matrix, Classes×Classes, row = true class.
	Classes   int
	Confusion []int64

	// Regression: sums of squared and absolute errors and the moments of
	// the targets (for R²'s total sum of squares).
	SumSqErr  float64
	SumAbsErr float64
	Target    stats.Moments
}

// NewQuality returns empty quality for a task.
func NewQuality(t Task) *Quality {
	q := &Quality{Task: t}
	if t == Binary {
		q.Pos, q.Neg = make([]int64, AUCBins), make([]int64, AUCBins)
	}
	return q
}

// validLabel reports, as EINVALID, a label value the task cannot take.
func validLabel(t Task, y float64, classes int) error {
	switch t {
	case Binary:
		if y != 0 && y != 1 {
			return mloop.Errorf(mloop.EINVALID, "label %v of a binary classifier: want 0 or 1", y)
		}
	case Multiclass:
		if y != math.Trunc(y) || y < 0 || y >= maxClasses || (classes > 1 && y >= float64(classes)) {
			return mloop.Errorf(mloop.EINVALID, "label %v of a multiclass classifier: want a class index from 0 to %d", y, max(classes, maxClasses)-1)
		}
	default:
		if math.IsNaN(y) || math.IsInf(y, 0) {
			return mloop.Errorf(mloop.EINVALID, "label %v of a regression model: want a finite number", y)
		}
	}
	return nil
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

func clipProb(p float64) float64 {
	if !(p >= logLossEps) { // also NaN
		return logLossEps
	}
	return min(p, 1-logLossEps)
}

// add adds one labelled prediction; pred holds the model's outputs for the
// row. margin says binary outputs are raw margins (binary:logitraw).
func (q *Quality) add(y float64, pred []float32, margin bool) {
	q.Labels++
	switch q.Task {
	case Binary:
		p := float64(pred[0])
		if margin {
			p = sigmoid(p)
		}
		pc := clipProb(p)
		pos := y == 1
		bin := int(pc * AUCBins)
		bin = min(max(bin, 0), AUCBins-1)
		switch {
		case pos && p >= 0.5:
			q.TP++
		case pos:
			q.FN++
		case p >= 0.5:
			q.FP++
		default:
			q.TN++
		}
		if pos {
			q.Pos[bin]++
			q.LogLossSum -= math.Log(pc)
		} else {
			q.Neg[bin]++
			q.LogLossSum -= math.Log(1 - pc)
		}
		q.LogLossLabels++
	case Multiclass:
		yi := int(y)
		var pi int
		if len(pred) == 1 {
			pi = int(pred[0])
			if float64(pred[0]) != float64(pi) || pi < 0 || pi >= maxClasses {
				pi = -1
			}
		} else {
			// Probabilities: the predicted class is the most probable
			// (the first of equals, as numpy's argmax).
			best := float32(math.Inf(-1))
			var sum float64
			for k, v := range pred {
				if v > best {
					best, pi = v, k
				}
				sum += float64(v)
			}
			if yi < len(pred) {
				p := float64(pred[yi])
				if sum > 0 {
					p /= sum // sklearn normalises each row
				}
				q.LogLossSum -= math.Log(clipProb(p))
				q.LogLossLabels++
			}
		}
		need := max(yi+1, pi+1, len(pred))
		if len(pred) == 1 && q.Classes < 2 {
			need = max(need, 2)
		}
		q.grow(need)
		if pi >= 0 {
			q.Confusion[yi*q.Classes+pi]++
		} else {
			// An unreadable class prediction is wrong: count it against
			// another class (never correct).
			q.Confusion[yi*q.Classes+(yi+1)%q.Classes]++
		}
	default:
		e := float64(pred[0]) - y
		q.SumSqErr += e * e
		q.SumAbsErr += math.Abs(e)
		q.Target.Add(y)
	}
}

// grow makes the confusion matrix at least k×k.
func (q *Quality) grow(k int) {
	if k <= q.Classes {
		return
	}
	c := make([]int64, k*k)
	for i := range q.Classes {
		copy(c[i*k:i*k+q.Classes], q.Confusion[i*q.Classes:(i+1)*q.Classes])
	}
	q.Classes, q.Confusion = k, c
}

// Merge adds o's labels to q. Quality of different tasks does not merge
// (EINVALID); nil o is no change.
func (q *Quality) Merge(o *Quality) error {
	if o == nil {
		return nil
	}
	if o.Task != q.Task {
		return mloop.Errorf(mloop.EINVALID, "quality of a %s model cannot merge with quality of a %s model", o.Task, q.Task)
	}
	if q.Task == Binary && (len(o.Pos) != len(q.Pos) || len(o.Neg) != len(q.Neg)) {
		return mloop.Errorf(mloop.EINVALID, "binary quality with %d score bins cannot merge with %d", len(o.Pos), len(q.Pos))
	}
	q.Labels += o.Labels
	q.TP += o.TP
	q.FP += o.FP
	q.TN += o.TN
	q.FN += o.FN
	for i := range o.Pos {
		q.Pos[i] += o.Pos[i]
		q.Neg[i] += o.Neg[i]
	}
	q.LogLossSum += o.LogLossSum
	q.LogLossLabels += o.LogLossLabels
	if o.Classes > 0 {
		q.grow(o.Classes)
		for i := range o.Classes {
			for j := range o.Classes {
				q.Confusion[i*q.Classes+j] += o.Confusion[i*o.Classes+j]
			}
		}
	}
	q.SumSqErr += o.SumSqErr
	q.SumAbsErr += o.SumAbsErr
	q.Target.Merge(o.Target)
	return nil
}

// Clone returns a deep copy of q.
func (q *Quality) Clone() *Quality {
	c := *q
	c.Pos = append([]int64(nil), q.Pos...)
	c.Neg = append([]int64(nil), q.Neg...)
	c.Confusion = append([]int64(nil), q.Confusion...)
	return &c
}

// Metric names.
const (
	MetricAccuracy    = "accuracy"
	MetricPrecision   = "precision"
	MetricRecall      = "recall"
	MetricF1          = "f1"
	MetricROCAUC      = "roc_auc"
	MetricAUCMaxError = "auc_max_error"
	MetricLogLoss     = "log_loss"
	MetricMacroF1     = "macro_f1"
	MetricRMSE        = "rmse"
	MetricMAE         = "mae"
	MetricR2          = "r2"
)

// Metrics computes the quality metrics, as scikit-learn defines them: for
// binary classifiers accuracy, precision, recall and F1 of class 1 at
// threshold 0.5 (0 when undefined, as sklearn's zero_division), ROC AUC
// (from the score histograms; only with both classes) with its error bound
// auc_max_error, and log loss (probabilities clipped to [1e-15, 1−1e-15]);
// for multiclass accuracy, macro F1 (over the classes that occur as label
// or prediction) and log loss (when the model predicts probabilities); for
// regression RMSE, MAE and R² (only with a non-constant target). No labels,
// no metrics; a metric that is not finite (an infinite prediction) is left
// out.
func (q *Quality) Metrics() map[string]float64 {
	m := map[string]float64{}
	if q == nil || q.Labels == 0 {
		return m
	}
	n := float64(q.Labels)
	div := func(a, b int64) float64 {
		if b == 0 {
			return 0
		}
		return float64(a) / float64(b)
	}
	if q.LogLossLabels > 0 {
		m[MetricLogLoss] = q.LogLossSum / float64(q.LogLossLabels)
	}
	switch q.Task {
	case Binary:
		m[MetricAccuracy] = float64(q.TP+q.TN) / n
		p, r := div(q.TP, q.TP+q.FP), div(q.TP, q.TP+q.FN)
		m[MetricPrecision], m[MetricRecall] = p, r
		m[MetricF1] = div(2*q.TP, 2*q.TP+q.FP+q.FN)
		var P, N int64
		for i := range q.Pos {
			P += q.Pos[i]
			N += q.Neg[i]
		}
		if P > 0 && N > 0 {
			var below, ordered, ties float64
			for i := range q.Pos {
				pos, neg := float64(q.Pos[i]), float64(q.Neg[i])
				ordered += pos * below
				ties += pos * neg
				below += neg
			}
			pn := float64(P) * float64(N)
			m[MetricROCAUC] = (ordered + ties/2) / pn
			m[MetricAUCMaxError] = ties / 2 / pn
		}
	case Multiclass:
		k := q.Classes
		var correct int64
		var f1sum float64
		var present int
		for c := range k {
			tp := q.Confusion[c*k+c]
			correct += tp
			var row, col int64
			for j := range k {
				row += q.Confusion[c*k+j]
				col += q.Confusion[j*k+c]
			}
			if row == 0 && col == 0 {
				continue
			}
			present++
			f1sum += div(2*tp, row+col)
		}
		m[MetricAccuracy] = float64(correct) / n
		if present > 0 {
			m[MetricMacroF1] = f1sum / float64(present)
		}
	default:
		m[MetricRMSE] = math.Sqrt(q.SumSqErr / n)
		m[MetricMAE] = q.SumAbsErr / n
		if q.Target.M2 > 0 {
			m[MetricR2] = 1 - q.SumSqErr/q.Target.M2
		}
	}
	// An infinite prediction makes an error sum infinite: such a metric
	// is left out rather than reported (JSON cannot carry it).
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(m, k)
		}
	}
	return m
}

// qualityJSON is Quality's stored form: score histograms as sparse
// [bin, count] pairs, and the metrics for readers that do not merge.
type qualityJSON struct {
	Task          Task               `json:"task"`
	Labels        int64              `json:"labels"`
	TP            int64              `json:"tp,omitempty"`
	FP            int64              `json:"fp,omitempty"`
	TN            int64              `json:"tn,omitempty"`
	FN            int64              `json:"fn,omitempty"`
	Bins          int                `json:"bins,omitempty"`
	Pos           [][2]int64         `json:"pos,omitempty"`
	Neg           [][2]int64         `json:"neg,omitempty"`
	LogLossSum    float64            `json:"log_loss_sum,omitempty"`
	LogLossLabels int64              `json:"log_loss_labels,omitempty"`
	Classes       int                `json:"classes,omitempty"`
	Confusion     []int64            `json:"confusion,omitempty"`
	SumSqErr      float64            `json:"sum_sq_err,omitempty"`
	SumAbsErr     float64            `json:"sum_abs_err,omitempty"`
	Target        *stats.Moments     `json:"target,omitempty"`
	Metrics       map[string]float64 `json:"metrics"`
}

func sparse(xs []int64) [][2]int64 {
	var out [][2]int64
	for i, x := range xs {
		if x != 0 {
			out = append(out, [2]int64{int64(i), x})
		}
	}
	return out
}

// MarshalJSON writes the state and, under "metrics", Metrics().
func (q *Quality) MarshalJSON() ([]byte, error) {
	j := qualityJSON{Task: q.Task, Labels: q.Labels, TP: q.TP, FP: q.FP, TN: q.TN, FN: q.FN,
		LogLossSum: q.LogLossSum, LogLossLabels: q.LogLossLabels, Classes: q.Classes, Confusion: q.Confusion,
		SumSqErr: q.SumSqErr, SumAbsErr: q.SumAbsErr, Metrics: q.Metrics()}
	if q.Task == Binary {
		j.Bins, j.Pos, j.Neg = len(q.Pos), sparse(q.Pos), sparse(q.Neg)
	}
	if q.Task == Regression {
		t := q.Target
		j.Target = &t
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads MarshalJSON's form, checking its consistency; the
// metrics are recomputed, not read.
func (q *Quality) UnmarshalJSON(b []byte) error {
	var j qualityJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	switch j.Task {
	case Binary, Multiclass, Regression:
	default:
		return fmt.Errorf("quality: unknown task %q", j.Task)
	}
	if j.Labels < 0 || j.TP < 0 || j.FP < 0 || j.TN < 0 || j.FN < 0 || j.LogLossLabels < 0 {
		return fmt.Errorf("quality: negative count")
	}
	*q = Quality{Task: j.Task, Labels: j.Labels, TP: j.TP, FP: j.FP, TN: j.TN, FN: j.FN,
		LogLossSum: j.LogLossSum, LogLossLabels: j.LogLossLabels, SumSqErr: j.SumSqErr, SumAbsErr: j.SumAbsErr}
	if j.Task == Binary {
		if j.Bins != AUCBins {
			return fmt.Errorf("quality: %d score bins, want %d", j.Bins, AUCBins)
		}
		q.Pos, q.Neg = make([]int64, AUCBins), make([]int64, AUCBins)
		for _, side := range []struct {
			dst []int64
			src [][2]int64
		}{{q.Pos, j.Pos}, {q.Neg, j.Neg}} {
			for _, p := range side.src {
				if p[0] < 0 || p[0] >= AUCBins || p[1] < 0 {
					return fmt.Errorf("quality: score bin %d count %d out of range", p[0], p[1])
				}
				side.dst[p[0]] += p[1]
			}
		}
	}
	if j.Classes < 0 || j.Classes > maxClasses || len(j.Confusion) != j.Classes*j.Classes {
		return fmt.Errorf("quality: %d classes with a confusion matrix of %d counts", j.Classes, len(j.Confusion))
	}
	q.Classes, q.Confusion = j.Classes, j.Confusion
	if j.Target != nil {
		q.Target = *j.Target
	}
	return nil
}

// AddLabel adds one labelled prediction: y the label, pred the model's
// outputs for the row (a probability of class 1 for Binary). A label the
// task cannot take is EINVALID and changes nothing.
func (q *Quality) AddLabel(y float64, pred []float32) error {
	if len(pred) == 0 {
		return mloop.Errorf(mloop.EINVALID, "a labelled prediction needs its outputs")
	}
	classes := 0
	if len(pred) > 1 {
		classes = len(pred)
	}
	if err := validLabel(q.Task, y, classes); err != nil {
		return err
	}
	q.add(y, pred, false)
	return nil
}
