package protocol

import "github.com/mloop/mloop/internal/serving"

// DecodeKServeV1 reads a KServe V1 prediction request, {"instances": […]},
// for a model that takes features. Each instance is one row: a list of
// len(features) values in the model's order, or an object keyed by feature
// name (absent features are missing values, unknown keys are ignored, and a
// feature absent from every row is an error); a model of one feature also
// takes bare values. Every instance must be written the same way. Other
// top-level keys are ignored.
//
// Missing values are null and NaN; booleans read as 1 and 0; Infinity and
// -Infinity as ±Inf. Categorical features take non-negative integer codes
// only. Errors are EBADREQUEST for a body that is not JSON and EINVALID for
// one that does not fit the model or has more than maxRows rows
// (DefaultMaxRows when maxRows <= 0); messages name the row and feature.
func DecodeKServeV1(body []byte, features []serving.Feature, maxRows int) (serving.Batch, error) {
	if len(features) == 0 {
		return serving.Batch{}, noFeatures()
	}
	s := scanner{b: body}
	if s.peek() != '{' {
		if err := s.skip(); err != nil {
			return serving.Batch{}, err
		}
		return serving.Batch{}, invalid(`the body must be a JSON object: {"instances": [[…], …]}`)
	}
	instances := -1
	err := s.object(func(key []byte, esc bool) error {
		if !keyIs(key, esc, "instances") {
			return s.skip()
		}
		start, err := s.span()
		instances = start
		return err
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return serving.Batch{}, err
	}
	if instances < 0 {
		return serving.Batch{}, invalid(`the body has no "instances"; send {"instances": [[…], …]} with rows of %s`, featureList(features))
	}
	r := rowReader{
		s:        &scanner{b: body, i: instances},
		what:     "instances",
		features: features,
		maxRows:  rowLimit(maxRows),
		lists:    true,
		records:  true,
	}
	return r.read()
}

// EncodeKServeV1 writes a KServe V1 prediction response for rows rows of
// outputs values each: {"predictions": [p, …]} when outputs is 1, else
// {"predictions": [[p, …], …]}. NaN and ±Inf become null. preds must hold
// rows×outputs values; anything else is a programming error and panics.
func EncodeKServeV1(preds []float32, rows, outputs int) []byte {
	return encodePredictions(preds, rows, outputs)
}
