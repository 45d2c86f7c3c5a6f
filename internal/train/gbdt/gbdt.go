// Package gbdt is mloop's built-in trainer: histogram gradient-boosted
// decision trees in pure Go, written as XGBoost JSON models that XGBoost
// (1.7 and later) and mloop's native runtime (internal/serving/xgboost)
// load and predict alike.
//
// The algorithm is XGBoost's "hist" tree method, grown depth-wise: feature
// values are bucketed once into at most MaxBins quantile bins; each tree is
// grown level by level from histograms of first and second order gradients
// (built for the smaller child, the larger one by subtraction), split gain
// and leaf weights are XGBoost's (G²/(H+λ), −G/(H+λ)·eta), missing values
// learn a default direction by trying them on both sides of every split,
// and categorical features are split by XGBoost's partition method: the
// node's categories are sorted by their gradient statistics and the best
// prefix of that order (at most MaxCatThreshold categories from either end)
// goes right. Splits that gain less than Gamma are pruned afterwards, as
// XGBoost's pruner does.
//
// A split's condition means what it means to XGBoost: a value x goes left
// when x < condition, a category goes right when it is in the split's set,
// a missing value follows the default direction. The trainer's own
// predictions (Model.Predict) follow the same float32 arithmetic as the
// runtime, so both give the same numbers.
package gbdt

import (
	"math"
	"runtime"
	"time"

	"github.com/mloop/mloop"
)

// Objective is a learning task, named as XGBoost names it.
type Objective string

// Objectives.
const (
	// BinaryLogistic is binary classification with log loss; labels are 0
	// or 1 and predictions are probabilities of class 1.
	BinaryLogistic Objective = "binary:logistic"
	// MultiSoftprob is multi-class classification with softmax; labels are
	// class indices 0 … NumClass−1 and predictions NumClass probabilities.
	MultiSoftprob Objective = "multi:softprob"
	// RegSquaredError is regression with squared error.
	RegSquaredError Objective = "reg:squarederror"
)

// Limits on what the trainer accepts.
const (
	// MaxBinsLimit is the largest MaxBins, and MaxCategory the largest
	// category code of a categorical feature: bins are 16-bit.
	MaxBinsLimit = 1 << 15
	MaxCategory  = 1<<16 - 2
	// MaxClasses is the largest NumClass.
	MaxClasses = 1 << 12
)

// Config holds the hyperparameters of Train. Start from DefaultConfig: a
// zero NumTrees, MaxDepth, LearningRate, MaxBins, MaxCatThreshold,
// Subsample or ColsampleByTree means its default, but zero is a valid
// Lambda, MinChildWeight and Gamma.
type Config struct {
	// Objective is the learning task (default BinaryLogistic).
	Objective Objective
	// NumClass is the number of classes of MultiSoftprob (at least 2).
	NumClass int
	// NumTrees is the number of boosting rounds (default 100); a
	// multi-class model has NumClass trees per round.
	NumTrees int
	// MaxDepth is the depth of the deepest leaf (default 6).
	MaxDepth int
	// LearningRate shrinks every leaf (XGBoost's eta, default 0.3).
	LearningRate float64
	// MinChildWeight is the least hessian sum a child may have (default 1).
	MinChildWeight float64
	// Lambda is the L2 regularization of leaf weights (default 1).
	Lambda float64
	// Gamma is the least loss reduction a split must bring (default 0).
	Gamma float64
	// MaxBins is the most bins a numerical feature is bucketed into
	// (default 256).
	MaxBins int
	// MaxCatThreshold bounds how many categories a partition split may
	// enumerate from either end of the sorted order (XGBoost's
	// max_cat_threshold, default 64).
	MaxCatThreshold int
	// Subsample is the share of rows each tree sees (default 1).
	Subsample float64
	// ColsampleByTree is the share of features each tree may split on
	// (default 1).
	ColsampleByTree float64
	// Seed seeds row and feature sampling.
	Seed uint64
	// EarlyStoppingRounds stops training when the validation metric has
	// not improved for this many rounds, and keeps the trees up to the best
	// round; 0 disables it. It needs validation data.
	EarlyStoppingRounds int
	// Threads is the number of goroutines that build histograms and
	// partition rows (default GOMAXPROCS).
	Threads int
	// Progress, when set, is called after every ProgressEvery rounds
	// (default 1) and after the last round. The training metric is
	// computed for those rounds only: it costs about as much as a
	// gradient pass.
	Progress      func(Progress)
	ProgressEvery int
}

// DefaultConfig returns XGBoost's defaults for binary classification.
func DefaultConfig() Config {
	return Config{
		Objective:       BinaryLogistic,
		NumTrees:        100,
		MaxDepth:        6,
		LearningRate:    0.3,
		MinChildWeight:  1,
		Lambda:          1,
		MaxBins:         256,
		MaxCatThreshold: 64,
		Subsample:       1,
		ColsampleByTree: 1,
	}
}

// Progress reports the end of a boosting round.
type Progress struct {
	// Round is the number of rounds done, of Rounds.
	Round, Rounds int
	// Elapsed is the time since training started.
	Elapsed time.Duration
	// Metric names the objective's evaluation metric (logloss, mlogloss or
	// rmse); Train and Valid are its values on the training and validation
	// data after this round (Valid is NaN without validation data).
	Metric       string
	Train, Valid float64
}

// WithDefaults returns c with its zero fields that have defaults filled in
// (see Config), or an EINVALID error naming the first value out of range.
func (c Config) WithDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Objective == "" {
		c.Objective = d.Objective
	}
	if c.NumTrees == 0 {
		c.NumTrees = d.NumTrees
	}
	if c.MaxDepth == 0 {
		c.MaxDepth = d.MaxDepth
	}
	if c.LearningRate == 0 {
		c.LearningRate = d.LearningRate
	}
	if c.MaxBins == 0 {
		c.MaxBins = d.MaxBins
	}
	if c.MaxCatThreshold == 0 {
		c.MaxCatThreshold = d.MaxCatThreshold
	}
	if c.Subsample == 0 {
		c.Subsample = d.Subsample
	}
	if c.ColsampleByTree == 0 {
		c.ColsampleByTree = d.ColsampleByTree
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 1
	}
	if c.Threads <= 0 {
		c.Threads = runtime.GOMAXPROCS(0)
	}
	bad := func(format string, args ...any) (Config, error) {
		return c, mloop.Errorf(mloop.EINVALID, format, args...)
	}
	finite := func(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }
	switch c.Objective {
	case BinaryLogistic, RegSquaredError:
		if c.NumClass > 1 {
			return bad("objective %s does not take num_class (%d); use %s for several classes", c.Objective, c.NumClass, MultiSoftprob)
		}
		c.NumClass = 0
	case MultiSoftprob:
		if c.NumClass < 2 || c.NumClass > MaxClasses {
			return bad("objective %s needs num_class from 2 to %d, got %d", c.Objective, MaxClasses, c.NumClass)
		}
	default:
		return bad("objective %q is not supported; use %s, %s or %s", c.Objective, BinaryLogistic, MultiSoftprob, RegSquaredError)
	}
	switch {
	case c.NumTrees < 1 || c.NumTrees > 1_000_000:
		return bad("num_trees must be from 1 to 1000000, got %d", c.NumTrees)
	case c.MaxDepth < 1 || c.MaxDepth > 30:
		return bad("max_depth must be from 1 to 30, got %d", c.MaxDepth)
	case !finite(c.LearningRate) || c.LearningRate <= 0 || c.LearningRate > 1:
		return bad("learning_rate must be in (0, 1], got %g", c.LearningRate)
	case !finite(c.MinChildWeight) || c.MinChildWeight < 0:
		return bad("min_child_weight must be at least 0, got %g", c.MinChildWeight)
	case !finite(c.Lambda) || c.Lambda < 0:
		return bad("lambda must be at least 0, got %g", c.Lambda)
	case !finite(c.Gamma) || c.Gamma < 0:
		return bad("gamma must be at least 0, got %g", c.Gamma)
	case c.MaxBins < 2 || c.MaxBins > MaxBinsLimit:
		return bad("max_bins must be from 2 to %d, got %d", MaxBinsLimit, c.MaxBins)
	case c.MaxCatThreshold < 1:
		return bad("max_cat_threshold must be at least 1, got %d", c.MaxCatThreshold)
	case !finite(c.Subsample) || c.Subsample <= 0 || c.Subsample > 1:
		return bad("subsample must be in (0, 1], got %g", c.Subsample)
	case !finite(c.ColsampleByTree) || c.ColsampleByTree <= 0 || c.ColsampleByTree > 1:
		return bad("colsample_bytree must be in (0, 1], got %g", c.ColsampleByTree)
	case c.EarlyStoppingRounds < 0:
		return bad("early_stopping_rounds must be at least 0, got %d", c.EarlyStoppingRounds)
	}
	return c, nil
}

// groups returns the number of margins per row.
func (c Config) groups() int {
	if c.Objective == MultiSoftprob {
		return c.NumClass
	}
	return 1
}

// Feature is one input column of the data.
type Feature struct {
	// Name is the column's name.
	Name string `json:"name"`
	// Categorical marks a categorical feature: its values are category
	// codes, non-negative integers up to MaxCategory.
	Categorical bool `json:"categorical,omitempty"`
	// Categories names the codes of a categorical feature read from text:
	// code i stands for Categories[i]. It is nil when the data's values are
	// the codes themselves.
	Categories []string `json:"categories,omitempty"`
}

// Data is a training or validation set held column by column.
type Data struct {
	// Features describes the columns, in order.
	Features []Feature
	// Columns holds one slice of Rows values per feature; NaN is missing.
	Columns [][]float32
	// Labels holds one label per row: 0 or 1 (binary), a class index
	// (multi-class) or the target (regression).
	Labels []float32
	// Weights, when not nil, holds a non-negative weight per row.
	Weights []float32
	// Classes names the class indices of a multi-class label read from
	// text: class i is Classes[i]. Nil otherwise.
	Classes []string
}

// FromRows returns Data holding rows, a row-major matrix of len(features)
// values per row (NaN is missing), with the given labels and optional
// weights.
func FromRows(features []Feature, rows []float32, labels, weights []float32) (*Data, error) {
	nf := len(features)
	if nf == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "no features: give at least one")
	}
	if len(rows)%nf != 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "the matrix holds %d values, not a multiple of %d features", len(rows), nf)
	}
	n := len(rows) / nf
	d := &Data{Features: features, Columns: make([][]float32, nf), Labels: labels, Weights: weights}
	for j := range d.Columns {
		col := make([]float32, n)
		for i := range col {
			col[i] = rows[i*nf+j]
		}
		d.Columns[j] = col
	}
	return d, nil
}

// Rows returns the number of rows.
func (d *Data) Rows() int { return len(d.Labels) }

// NumClasses returns the classes of a multi-class label: the class names
// read (Classes), else the largest label + 1.
func (d *Data) NumClasses() int {
	if d.Classes != nil {
		return len(d.Classes)
	}
	hi := float32(-1)
	for _, y := range d.Labels {
		hi = max(hi, y)
	}
	return int(hi) + 1
}

// check validates the data for the objective; features must be the
// training data's when train is not nil.
func (d *Data) check(cfg Config, what string, train *Data) error {
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, what+": "+format, args...)
	}
	if d == nil {
		return bad("no data")
	}
	n := len(d.Labels)
	if n == 0 {
		return bad("no rows")
	}
	if n > math.MaxInt32 {
		return bad("%d rows, more than %d", n, math.MaxInt32)
	}
	if len(d.Features) == 0 {
		return bad("no features: give at least one")
	}
	if len(d.Columns) != len(d.Features) {
		return bad("%d columns for %d features", len(d.Columns), len(d.Features))
	}
	if train != nil && len(d.Features) != len(train.Features) {
		return bad("%d features, the training data has %d", len(d.Features), len(train.Features))
	}
	seen := map[string]bool{}
	for j, f := range d.Features {
		if f.Name == "" {
			return bad("feature %d has no name", j)
		}
		if seen[f.Name] {
			return bad("feature %q appears twice", f.Name)
		}
		seen[f.Name] = true
		if train != nil && (train.Features[j].Name != f.Name || train.Features[j].Categorical != f.Categorical) {
			return bad("feature %d is %q, the training data's is %q (features must match in name, order and type)", j, f.Name, train.Features[j].Name)
		}
		col := d.Columns[j]
		if len(col) != n {
			return bad("feature %q has %d values for %d labels; every column needs one value per label", f.Name, len(col), n)
		}
		for i, v := range col {
			switch {
			case v != v:
			case math.IsInf(float64(v), 0):
				return bad("feature %q row %d is %g; use NaN for a missing value", f.Name, i+1, v)
			case f.Categorical && (v < 0 || v > MaxCategory || v != float32(math.Trunc(float64(v)))):
				return bad("categorical feature %q row %d is %g; categories are integer codes from 0 to %d", f.Name, i+1, v, MaxCategory)
			}
		}
	}
	if d.Weights != nil {
		if len(d.Weights) != n {
			return bad("%d weights for %d labels", len(d.Weights), n)
		}
		for i, w := range d.Weights {
			if !(w >= 0) || math.IsInf(float64(w), 0) {
				return bad("weight of row %d is %g; weights must be finite and non-negative", i+1, w)
			}
		}
	}
	for i, y := range d.Labels {
		if y != y || math.IsInf(float64(y), 0) {
			return bad("label of row %d is %g; drop rows without a label", i+1, y)
		}
		switch cfg.Objective {
		case BinaryLogistic:
			if y != 0 && y != 1 {
				return bad("label of row %d is %g; %s needs labels 0 or 1", i+1, y, cfg.Objective)
			}
		case MultiSoftprob:
			if y < 0 || y >= float32(cfg.NumClass) || y != float32(math.Trunc(float64(y))) {
				return bad("label of row %d is %g; %s with num_class %d needs class indices 0 to %d", i+1, y, cfg.Objective, cfg.NumClass, cfg.NumClass-1)
			}
		}
	}
	return nil
}
