// Package serving answers prediction requests: model runtimes (native
// XGBoost trees, a user process speaking the Open Inference Protocol), the
// protocols clients speak (OIP/KServe V2, KServe V1, MLflow scoring), and —
// as issue 5 grows — deployments with canary and shadow, payload logging
// and metrics.
//
// The hot path never waits on SQL or the artifact store: a runtime holds
// its model in memory and predicts a Batch of float32 features in place.
package serving

import (
	"context"

	"github.com/mloop/mloop"
)

// FeatureType is how a model reads a feature.
type FeatureType string

// Feature types: numeric values, or categories given by their integer code
// (as XGBoost's categorical splits read them).
const (
	Numeric     FeatureType = "numeric"
	Categorical FeatureType = "categorical"
)

// Feature is one input column of a model.
type Feature struct {
	// Name is the feature's name ("f3" when the model file names none).
	Name string `json:"name"`
	// Type is Numeric or Categorical.
	Type FeatureType `json:"type"`
}

// Batch is a row-major matrix of feature values: Rows rows of Cols values,
// NaN for a missing value. Values has Rows×Cols elements.
type Batch struct {
	Rows, Cols int
	Values     []float32
}

// Row returns row i's values.
func (b Batch) Row(i int) []float32 { return b.Values[i*b.Cols : (i+1)*b.Cols] }

// Check reports, as EINVALID, a batch whose Values do not hold exactly
// Rows×Cols elements, without computing a product that could overflow.
func (b Batch) Check() error {
	ok := b.Rows >= 0 && b.Cols >= 0
	if ok && b.Cols == 0 {
		ok = len(b.Values) == 0
	} else if ok {
		ok = len(b.Values)%b.Cols == 0 && len(b.Values)/b.Cols == b.Rows
	}
	if !ok {
		return mloop.Errorf(mloop.EINVALID, "a batch of %d rows of %d values holds %d values", b.Rows, b.Cols, len(b.Values))
	}
	return nil
}

// Predictor is a loaded model. Implementations are safe for concurrent use.
type Predictor interface {
	// Features returns the model's input columns in order.
	Features() []Feature
	// Outputs returns how many values the model predicts per row (1, or
	// the number of classes of a multi-class probability model).
	Outputs() int
	// Predict writes Outputs() values per row of b into out (row-major),
	// which has b.Rows×Outputs() elements. A batch whose Cols differs from
	// len(Features()) is EINVALID.
	Predict(ctx context.Context, b Batch, out []float32) error
}
