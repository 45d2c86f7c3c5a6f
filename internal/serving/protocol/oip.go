package protocol

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mloop/mloop/internal/serving"
)

// OutputName is the name of the one output tensor EncodeOIP writes.
const OutputName = "predict"

// maxDims is the most dimensions a tensor shape may have here; the model
// takes tensors of one or two.
const maxDims = 4

// OIPRequest is what DecodeOIP reads from an Open Inference Protocol
// inference request besides the feature batch.
type OIPRequest struct {
	// ID is the request's "id", which the response echoes; "" when absent.
	ID string
	// Outputs names the outputs the client asked for in "outputs"; nil
	// when it named none, which means every output. The caller decides
	// what to do with names other than OutputName.
	Outputs []string
}

// oipInput is one entry of a request's "inputs" as first scanned: the data
// is kept as a position in the body and read once the shape and datatype
// (which may come after it) are known.
type oipInput struct {
	name     []byte // the name's text (a slice of the body when unescaped)
	ndims    int    // -1 when "shape" is absent
	shape    [maxDims]int
	dt       datatype
	dtName   string
	hasDT    bool
	data     int // offset of "data" in the body; -1 when absent
	hasName  bool
	manyDims int // the number of dimensions when more than maxDims
}

func (in *oipInput) shapeString() string {
	if in.manyDims > 0 {
		return fmt.Sprintf("of %d dimensions", in.manyDims)
	}
	var b strings.Builder
	b.WriteByte('[')
	for i := 0; i < in.ndims; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(in.shape[i]))
	}
	b.WriteByte(']')
	return b.String()
}

// DecodeOIP reads an Open Inference Protocol (KServe V2) REST inference
// request for a model that takes features, returning the request's id and
// requested outputs and the batch of rows to predict.
//
// The features arrive either as one 2-D input of shape [rows, len(features)]
// (any name; a model of one feature also takes one input of shape [rows]),
// or as one input per feature, named as the feature, of shape [rows] or
// [rows, 1], in any order; then every feature is required and an input that
// names no feature is an error. Datatypes FP16, FP32, FP64, INT8…INT64,
// UINT8…UINT64 and BOOL are read; data is row-major, flat or nested. A
// missing value is JSON null or the NaN literal Python's json module
// writes; both become NaN in the batch. Infinity and -Infinity are read as
// ±Inf. Categorical features take non-negative integer codes only.
//
// Errors are EBADREQUEST for a body that is not JSON and EINVALID for a
// request that does not fit the model (a wrong shape, a missing feature, a
// value that is not a number, more than maxRows rows, or DefaultMaxRows
// when maxRows <= 0);
// their messages name the input, the row and the feature.
func DecodeOIP(body []byte, features []serving.Feature, maxRows int) (*OIPRequest, serving.Batch, error) {
	if len(features) == 0 {
		return nil, serving.Batch{}, noFeatures()
	}
	maxRows = rowLimit(maxRows)
	req, inputs, err := scanOIP(body)
	if err != nil {
		return nil, serving.Batch{}, err
	}
	if len(inputs) == 0 {
		return nil, serving.Batch{}, invalid("the request has no inputs; send one input of shape [rows,%d] or one input per feature (the model takes %s)", len(features), featureList(features))
	}
	b, err := oipBatch(body, inputs, features, maxRows)
	if err != nil {
		return nil, serving.Batch{}, err
	}
	return req, b, nil
}

// scanOIP reads an OIP inference request's id, requested outputs and
// inputs (up to their data); no "inputs" at all reads as none.
func scanOIP(body []byte) (*OIPRequest, []oipInput, error) {
	s := scanner{b: body}
	req := &OIPRequest{}
	inputs := make([]oipInput, 0, 1)
	sawInputs := false
	if s.peek() != '{' {
		if err := s.skip(); err != nil {
			return nil, nil, err
		}
		return nil, nil, invalid("the body must be a JSON object with \"inputs\"")
	}
	err := s.object(func(key []byte, esc bool) error {
		switch {
		case keyIs(key, esc, "id"):
			if s.peek() != '"' {
				if err := s.skip(); err != nil {
					return err
				}
				return invalid("\"id\" must be a string")
			}
			id, err := s.text()
			req.ID = id
			return err
		case keyIs(key, esc, "inputs"):
			sawInputs = true
			inputs = inputs[:0]
			if s.peek() != '[' {
				if err := s.skip(); err != nil {
					return err
				}
				return invalid("\"inputs\" must be a list of tensors")
			}
			return s.array(func(i int) error {
				in, err := scanInput(&s, i)
				if err != nil {
					return err
				}
				inputs = append(inputs, in)
				return nil
			})
		case keyIs(key, esc, "outputs"):
			req.Outputs = req.Outputs[:0]
			if s.peek() != '[' {
				if err := s.skip(); err != nil {
					return err
				}
				return invalid("\"outputs\" must be a list of {\"name\": …} objects")
			}
			return s.array(func(i int) error {
				if s.peek() != '{' {
					if err := s.skip(); err != nil {
						return err
					}
					return invalid("outputs[%d] must be an object with a \"name\"", i)
				}
				return s.object(func(key []byte, esc bool) error {
					if !keyIs(key, esc, "name") {
						return s.skip()
					}
					if s.peek() != '"' {
						if err := s.skip(); err != nil {
							return err
						}
						return invalid("outputs[%d].name must be a string", i)
					}
					name, err := s.text()
					req.Outputs = append(req.Outputs, name)
					return err
				})
			})
		default: // "parameters" and extensions
			return s.skip()
		}
	})
	if err == nil {
		err = s.end()
	}
	if err != nil {
		return nil, nil, err
	}
	if !sawInputs {
		inputs = inputs[:0]
	}
	return req, inputs, nil
}

// scanInput reads the i-th element of "inputs" up to its data.
func scanInput(s *scanner, i int) (oipInput, error) {
	in := oipInput{ndims: -1, data: -1}
	if s.peek() != '{' {
		if err := s.skip(); err != nil {
			return in, err
		}
		return in, invalid("inputs[%d] must be an object with name, shape, datatype and data", i)
	}
	err := s.object(func(key []byte, esc bool) error {
		switch {
		case keyIs(key, esc, "name"):
			if s.peek() != '"' {
				if err := s.skip(); err != nil {
					return err
				}
				return invalid("inputs[%d].name must be a string", i)
			}
			raw, esc, err := s.str()
			if esc {
				raw = []byte(unquote(raw, true))
			}
			in.name, in.hasName = raw, true
			return err
		case keyIs(key, esc, "datatype"):
			if s.peek() != '"' {
				if err := s.skip(); err != nil {
					return err
				}
				return invalid("inputs[%d].datatype must be a string", i)
			}
			raw, esc, err := s.str()
			if err != nil {
				return err
			}
			in.hasDT = true
			in.dt = parseDatatype(raw)
			if in.dt.kind == dtUnknown || in.dt.kind == dtBytes {
				in.dtName = unquote(raw, esc)
			}
			return nil
		case keyIs(key, esc, "shape"):
			in.ndims, in.manyDims = 0, 0
			if s.peek() != '[' {
				if err := s.skip(); err != nil {
					return err
				}
				return invalid("inputs[%d].shape must be a list of integers", i)
			}
			return s.array(func(d int) error {
				v, k, start, err := s.value()
				if err != nil {
					return err
				}
				if k != kNumber || v != math.Trunc(v) || v < 0 || v > math.MaxInt32 {
					if k == kArray || k == kObject {
						if err := s.skip(); err != nil {
							return err
						}
					}
					return invalid("inputs[%d].shape: %s is not a dimension (a non-negative integer)", i, s.describe(k, start))
				}
				if d >= maxDims {
					in.manyDims = d + 1
					return nil
				}
				in.shape[d] = int(v)
				in.ndims = d + 1
				return nil
			})
		case keyIs(key, esc, "data"):
			start, err := s.span()
			in.data = start
			return err
		default: // "parameters"
			return s.skip()
		}
	})
	if err != nil {
		return in, err
	}
	name := func() string { return quoteName(string(in.name)) }
	switch {
	case !in.hasName:
		return in, invalid("inputs[%d] has no name", i)
	case in.ndims < 0:
		return in, invalid("input %s has no shape", name())
	case !in.hasDT:
		return in, invalid("input %s has no datatype", name())
	case in.dt.kind == dtBytes || in.dt.kind == dtUnknown:
		return in, invalid("input %s has datatype %s; send numbers as FP32, FP64, INT8…INT64, UINT8…UINT64 or BOOL", name(), quoteName(in.dtName))
	case in.data < 0:
		return in, invalid("input %s has no data", name())
	}
	return in, nil
}

// oipBatch lays the inputs out as a batch.
func oipBatch(body []byte, inputs []oipInput, features []serving.Feature, maxRows int) (serving.Batch, error) {
	f := len(features)
	shapeErr := func(in *oipInput) error {
		return invalid("input %s has shape %s; the model takes %s (send one input of shape [rows,%d] or one input of shape [rows] per feature)",
			quoteName(string(in.name)), in.shapeString(), featureList(features), f)
	}
	// One matrix of every feature.
	if len(inputs) == 1 {
		in := &inputs[0]
		matrix := in.manyDims == 0 && (in.ndims == 2 && in.shape[1] == f || f == 1 && in.ndims == 1)
		if !matrix && featureIndex(features, in.name, false, 0) < 0 {
			return serving.Batch{}, shapeErr(in)
		}
		if matrix {
			n := in.shape[0]
			if err := checkRows(n, maxRows, body, f); err != nil {
				return serving.Batch{}, err
			}
			b := serving.Batch{Rows: n, Cols: f, Values: make([]float32, n*f)}
			t := tensorFill{s: scanner{b: body, i: in.data}, in: in, dst: b.Values, features: features, f: f, w: f, total: n * f}
			return b, t.run()
		}
	}
	// One column per feature.
	n := -1
	var seenBuf [64]bool
	seen := seenBuf[:0]
	if f <= len(seenBuf) {
		seen = seenBuf[:f]
	} else {
		seen = make([]bool, f)
	}
	cols := make([]int, len(inputs))
	for i := range inputs {
		in := &inputs[i]
		col := featureIndex(features, in.name, false, i)
		if col < 0 {
			if len(inputs) == 1 {
				return serving.Batch{}, shapeErr(in)
			}
			return serving.Batch{}, invalid("input %s is not a feature of the model, which takes %s", quoteName(string(in.name)), featureList(features))
		}
		if seen[col] {
			return serving.Batch{}, invalid("input %s is sent twice", quoteName(string(in.name)))
		}
		seen[col] = true
		cols[i] = col
		if in.manyDims > 0 || !(in.ndims == 1 || in.ndims == 2 && in.shape[1] == 1) {
			return serving.Batch{}, invalid("input %s has shape %s; a per-feature input has shape [rows] or [rows,1]", quoteName(string(in.name)), in.shapeString())
		}
		if n < 0 {
			n = in.shape[0]
		} else if in.shape[0] != n {
			return serving.Batch{}, invalid("input %s has %d rows, but input %s has %d; every input needs the same number of rows",
				quoteName(string(in.name)), in.shape[0], quoteName(string(inputs[0].name)), n)
		}
	}
	if missing := missingFeatures(features, seen); missing != "" {
		return serving.Batch{}, invalid("the request has no input for feature %s; the model takes %s", missing, featureList(features))
	}
	if err := checkRows(n, maxRows, body, f); err != nil {
		return serving.Batch{}, err
	}
	b := serving.Batch{Rows: n, Cols: f, Values: make([]float32, n*f)}
	for i := range inputs {
		t := tensorFill{s: scanner{b: body, i: inputs[i].data}, in: &inputs[i], dst: b.Values, features: features, f: f, col0: cols[i], w: 1, total: n}
		if err := t.run(); err != nil {
			return serving.Batch{}, err
		}
	}
	return b, nil
}

// checkRows rejects empty batches, batches over maxRows rows, and shapes
// that claim more values than the body could hold.
func checkRows(n, maxRows int, body []byte, f int) error {
	switch {
	case n == 0:
		return invalid("the request has no rows")
	case n > maxRows:
		return tooMany(n, maxRows)
	case n > len(body)/(2*max(f, 1))+1:
		// Each value takes at least two bytes ("0,"): the shape lies.
		return invalid("the request's shape says %d rows, more than its data holds", n)
	}
	return nil
}

// tensorFill reads one input's data into its place in a batch: element k
// (row-major over the input's w columns) goes to row k/w, feature
// col0 + k%w.
type tensorFill struct {
	s        scanner
	in       *oipInput
	dst      []float32
	features []serving.Feature
	f        int // the batch's columns
	col0, w  int
	total    int // the values the input's shape holds
	k        int // values read so far
}

func (t *tensorFill) run() error {
	if t.s.peek() != '[' {
		return invalid("input %s: data must be a list", quoteName(string(t.in.name)))
	}
	if err := t.list(1); err != nil {
		return err
	}
	if t.k != t.total {
		return invalid("input %s has %d values; its shape %s needs %d", quoteName(string(t.in.name)), t.k, t.in.shapeString(), t.total)
	}
	return nil
}

// list reads one list of values at nesting depth (1 for data itself). Data
// is either flat (values only, in row-major order) or nested exactly as its
// shape: every list at depth d holds shape[d-1] elements, values only at the
// deepest level. Anything else would move values across rows.
func (t *tensorFill) list(depth int) error {
	s := &t.s
	n, lists := 0, -1 // lists: -1 unknown, 1 this list holds lists, 0 values
	err := s.array(func(int) error {
		n++
		isList := s.peek() == '['
		if lists == -1 {
			lists = 0
			if isList {
				lists = 1
			}
		}
		if isList != (lists == 1) {
			return invalid("input %s: data mixes lists and values in one list (at depth %d)", quoteName(string(t.in.name)), depth)
		}
		if isList {
			if t.in.ndims < 0 || depth >= t.in.ndims {
				return invalid("input %s: data is nested deeper than its shape %s", quoteName(string(t.in.name)), t.in.shapeString())
			}
			return t.list(depth + 1)
		}
		if depth > 1 && depth != t.in.ndims {
			return invalid("input %s: data nested %d deep does not follow its shape %s", quoteName(string(t.in.name)), depth, t.in.shapeString())
		}
		v, k, start, err := s.value()
		if err != nil {
			return err
		}
		if k == kObject {
			if err := s.skip(); err != nil {
				return err
			}
		}
		if t.k >= t.total {
			return invalid("input %s has more values than its shape %s holds (%d)", quoteName(string(t.in.name)), t.in.shapeString(), t.total)
		}
		row, c := t.k/t.w, t.col0+t.k%t.w
		x, problem := convert(s, start, v, k, t.in.dt, t.features[c].Type)
		if problem != "" {
			if t.w == 1 {
				return invalid("input %s row %d: %s", quoteName(string(t.in.name)), row, problem)
			}
			return invalid("input %s row %d (feature %s): %s", quoteName(string(t.in.name)), row, quoteName(t.features[c].Name), problem)
		}
		t.dst[row*t.f+c] = x
		t.k++
		return nil
	})
	if err != nil {
		return err
	}
	if (depth > 1 || lists == 1) && t.in.ndims > 0 && depth <= t.in.ndims && depth <= len(t.in.shape) && n != t.in.shape[depth-1] {
		return invalid("input %s: a list at depth %d holds %d elements; its shape %s wants %d", quoteName(string(t.in.name)), depth, n, t.in.shapeString(), t.in.shape[depth-1])
	}
	return nil
}
