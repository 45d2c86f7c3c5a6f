package protocol

import (
	"github.com/mloop/mloop/internal/serving"
)

// mlflowFormats are the keys of MLflow's scoring format, one of which a body
// holds.
const mlflowFormats = `"dataframe_split", "dataframe_records", "instances" or "inputs"`

// DecodeMLflow reads a body in MLflow's scoring-server format (what
// /invocations takes as application/json) for a model that takes features.
// The body holds exactly one of:
//
//   - "dataframe_split": {"columns": [names], "data": [[row], …]} (pandas'
//     split orient; "index" is ignored; without "columns", rows are in the
//     model's feature order);
//   - "dataframe_records": [{"feature": value, …}, …];
//   - "instances": a list of rows, each a list in feature order or an object
//     keyed by feature name;
//   - "inputs": the same as "instances", or an object of columns
//     {"feature": [values], …}.
//
// An optional "params" key is accepted and ignored: the native runtimes
// take no inference parameters. Any other key is an error, as in MLflow.
//
// Columns are matched to features by name. As MLflow's schema enforcement
// does, columns that name no feature are ignored, and every feature is
// required: a named column must be present (in dataframe_records and
// object rows, a feature absent from some rows is a missing value there, as
// pandas reads it, but one absent from every row is an error).
//
// Missing values are null and NaN; booleans read as 1 and 0; Infinity and
// -Infinity as ±Inf. Categorical features take non-negative integer codes
// only (MLflow's string categories are not mapped). Errors are EBADREQUEST
// for a body that is not JSON and EINVALID for one that does not fit the
// model or has more than maxRows rows (DefaultMaxRows when maxRows <= 0);
// messages name the part of the body, the row and the feature.
func DecodeMLflow(body []byte, features []serving.Feature, maxRows int) (serving.Batch, error) {
	if len(features) == 0 {
		return serving.Batch{}, noFeatures()
	}
	maxRows = rowLimit(maxRows)
	s := scanner{b: body}
	if s.peek() != '{' {
		if err := s.skip(); err != nil {
			return serving.Batch{}, err
		}
		return serving.Batch{}, invalid("the body must be a JSON object with one of %s", mlflowFormats)
	}
	format, start := "", -1
	err := s.object(func(key []byte, esc bool) error {
		name := unquote(key, esc)
		switch name {
		case "params":
			return s.skip()
		case "dataframe_split", "dataframe_records", "instances", "inputs":
			if format != "" && format != name {
				return invalid("the body has both %q and %q; send one of %s", format, name, mlflowFormats)
			}
			format = name
			var err error
			start, err = s.span()
			return err
		}
		if err := s.skip(); err != nil {
			return err
		}
		return invalid("the body has an unknown key %s; send one of %s (and optionally \"params\")", quoteName(name), mlflowFormats)
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return serving.Batch{}, err
	}
	if format == "" {
		return serving.Batch{}, invalid("the body has none of %s", mlflowFormats)
	}
	vs := &scanner{b: body, i: start}
	r := rowReader{s: vs, what: format, features: features, maxRows: maxRows}
	switch format {
	case "dataframe_split":
		return decodeSplit(vs, features, maxRows)
	case "dataframe_records":
		r.records = true
		if vs.peek() != '[' {
			return serving.Batch{}, invalid(`dataframe_records must be a list of objects: [{"feature": value, …}, …]`)
		}
	case "inputs":
		if vs.peek() == '{' {
			return readColumns(vs, format, features, maxRows)
		}
		r.lists, r.records = true, true
	case "instances":
		r.lists, r.records = true, true
	}
	return r.read()
}

// decodeSplit reads MLflow's "dataframe_split" object.
func decodeSplit(s *scanner, features []serving.Feature, maxRows int) (serving.Batch, error) {
	if s.peek() != '{' {
		return serving.Batch{}, invalid(`dataframe_split must be an object: {"columns": […], "data": [[…], …]}`)
	}
	var cols []int
	data := -1
	err := s.object(func(key []byte, esc bool) error {
		switch {
		case keyIs(key, esc, "columns"):
			if s.peek() != '[' {
				if err := s.skip(); err != nil {
					return err
				}
				return invalid("dataframe_split columns must be a list of names")
			}
			cols = make([]int, 0, len(features))
			seen := make([]bool, len(features))
			return s.array(func(j int) error {
				if s.peek() != '"' {
					_, k, start, err := s.value()
					if err != nil {
						return err
					}
					if k == kArray || k == kObject {
						if err := s.skip(); err != nil {
							return err
						}
					}
					return invalid("dataframe_split column %d: %s is not a column name", j, s.describe(k, start))
				}
				raw, esc, err := s.str()
				if err != nil {
					return err
				}
				c := featureIndex(features, raw, esc, j)
				if c >= 0 {
					if seen[c] {
						return invalid("dataframe_split has column %s twice", quoteName(features[c].Name))
					}
					seen[c] = true
				}
				cols = append(cols, c)
				return nil
			})
		case keyIs(key, esc, "data"):
			var err error
			data, err = s.span()
			return err
		default: // "index"
			return s.skip()
		}
	})
	if err != nil {
		return serving.Batch{}, err
	}
	if cols != nil {
		seen := make([]bool, len(features))
		for _, c := range cols {
			if c >= 0 {
				seen[c] = true
			}
		}
		if missing := missingFeatures(features, seen); missing != "" {
			return serving.Batch{}, invalid("dataframe_split has no column for feature %s; the model takes %s", missing, featureList(features))
		}
	}
	if data < 0 {
		return serving.Batch{}, invalid(`dataframe_split has no "data"`)
	}
	r := rowReader{
		s:        &scanner{b: s.b, i: data},
		what:     "dataframe_split data",
		features: features,
		maxRows:  maxRows,
		lists:    true,
		cols:     cols,
	}
	return r.read()
}

// EncodeMLflow writes the response of MLflow's scoring server for rows rows
// of outputs values each: {"predictions": [p, …]} when outputs is 1, else
// {"predictions": [[p, …], …]}. NaN and ±Inf become null. preds must hold
// rows×outputs values; anything else is a programming error and panics.
func EncodeMLflow(preds []float32, rows, outputs int) []byte {
	return encodePredictions(preds, rows, outputs)
}
