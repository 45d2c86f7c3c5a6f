package protocol

import (
	"errors"

	"github.com/mloop/mloop/internal/serving"
)

// DecodeOIPTensors reads an Open Inference Protocol inference request for a
// model that declares no features (a process model, which judges the
// request itself), for the payload log: its inputs become a batch, either
// one 2-D input of shape [rows, cols] (or one input of shape [rows]: one
// column), or several inputs of shape [rows] or [rows, 1], taken as
// columns in their order. Values are read as DecodeOIP reads them
// (numeric features). Errors are those of DecodeOIP; when the body parses
// but its tensors do not fit, the OIPRequest is returned with the error,
// so that its id is known.
//
// Memory stays proportional to the body: a shape is checked against the
// length of its data before the batch is allocated, and the columns of a
// single matrix are not named (no per-column allocation).
func DecodeOIPTensors(body []byte, maxRows int) (*OIPRequest, serving.Batch, error) {
	req, inputs, err := scanOIP(body)
	if err != nil {
		return nil, serving.Batch{}, err
	}
	if len(inputs) == 0 {
		return req, serving.Batch{}, invalid("the request has no inputs")
	}
	if len(inputs) == 1 {
		b, err := matrixBatch(body, &inputs[0], rowLimit(maxRows))
		if err != nil {
			return req, serving.Batch{}, err
		}
		return req, b, nil
	}
	// Several inputs, one column each: as many features as inputs, which
	// the body holds.
	features := make([]serving.Feature, len(inputs))
	for i := range inputs {
		features[i] = serving.Feature{Name: string(inputs[i].name), Type: serving.Numeric}
	}
	b, err := oipBatch(body, inputs, features, rowLimit(maxRows))
	if err != nil {
		return req, serving.Batch{}, err
	}
	return req, b, nil
}

// matrixBatch reads a single input of shape [rows, cols] or [rows] as an
// anonymous matrix of numeric columns.
func matrixBatch(body []byte, in *oipInput, maxRows int) (serving.Batch, error) {
	if in.manyDims > 0 || in.ndims < 1 || in.ndims > 2 {
		return serving.Batch{}, invalid("input %s has shape %s; send one input of shape [rows,columns] or [rows], or one input of shape [rows] per column",
			quoteName(string(in.name)), in.shapeString())
	}
	rows, cols := in.shape[0], 1
	if in.ndims == 2 {
		cols = in.shape[1]
	}
	switch {
	case rows == 0 || cols == 0:
		return serving.Batch{}, invalid("the request has no rows")
	case rows > maxRows:
		return serving.Batch{}, tooMany(rows, maxRows)
	}
	// n values take at least 2n+1 bytes of data ("[", n digits, n-1
	// commas, "]"); rows and cols are at most 2^31-1, so their product
	// fits an int64.
	s := scanner{b: body, i: in.data}
	if err := s.skip(); err != nil {
		return serving.Batch{}, err
	}
	dataLen := int64(s.i - in.data)
	if n := int64(rows) * int64(cols); 2*n+1 > dataLen {
		return serving.Batch{}, invalid("input %s has shape %s, which its data cannot hold", quoteName(string(in.name)), in.shapeString())
	}
	b := serving.Batch{Rows: rows, Cols: cols, Values: make([]float32, rows*cols)}
	m := matrixFill{s: scanner{b: body, i: in.data}, in: in, dst: b.Values, cols: cols}
	if err := m.run(); err != nil {
		return serving.Batch{}, err
	}
	return b, nil
}

// matrixFill reads one input's data, row-major, into dst: as tensorFill
// with numeric columns that have no names.
type matrixFill struct {
	s    scanner
	in   *oipInput
	dst  []float32
	cols int
	k    int // values read so far
}

func (m *matrixFill) run() error {
	if m.s.peek() != '[' {
		return invalid("input %s: data must be a list", quoteName(string(m.in.name)))
	}
	if err := m.list(1); err != nil {
		return err
	}
	if m.k != len(m.dst) {
		return invalid("input %s has %d values; its shape %s needs %d", quoteName(string(m.in.name)), m.k, m.in.shapeString(), len(m.dst))
	}
	return nil
}

// list reads one list of values at nesting depth (1 for data itself), with
// the rules of tensorFill.list: data is flat, or nested exactly as its
// shape.
func (m *matrixFill) list(depth int) error {
	s := &m.s
	name := func() string { return quoteName(string(m.in.name)) }
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
			return invalid("input %s: data mixes lists and values in one list (at depth %d)", name(), depth)
		}
		if isList {
			if depth >= m.in.ndims {
				return invalid("input %s: data is nested deeper than its shape %s", name(), m.in.shapeString())
			}
			return m.list(depth + 1)
		}
		if depth > 1 && depth != m.in.ndims {
			return invalid("input %s: data nested %d deep does not follow its shape %s", name(), depth, m.in.shapeString())
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
		if m.k >= len(m.dst) {
			return invalid("input %s has more values than its shape %s holds (%d)", name(), m.in.shapeString(), len(m.dst))
		}
		x, problem := convert(s, start, v, k, m.in.dt, serving.Numeric)
		if problem != "" {
			if m.cols == 1 {
				return invalid("input %s row %d: %s", name(), m.k, problem)
			}
			return invalid("input %s row %d column %d: %s", name(), m.k/m.cols, m.k%m.cols, problem)
		}
		m.dst[m.k] = x
		m.k++
		return nil
	})
	if err != nil {
		return err
	}
	if (depth > 1 || lists == 1) && depth <= m.in.ndims && n != m.in.shape[depth-1] {
		return invalid("input %s: a list at depth %d holds %d elements; its shape %s wants %d", name(), depth, n, m.in.shapeString(), m.in.shape[depth-1])
	}
	return nil
}

// errFound stops a scan once what it looks for is found.
var errFound = errors.New("found")

// OIPRequestID returns the "id" of an Open Inference Protocol inference
// request body without reading its tensors (it allocates only the id), or
// "" when the body has none or is not a JSON object with a string "id"
// before any syntax error.
func OIPRequestID(body []byte) string {
	s := scanner{b: body}
	if s.peek() != '{' {
		return ""
	}
	var id string
	err := s.object(func(key []byte, esc bool) error {
		if !keyIs(key, esc, "id") {
			return s.skip()
		}
		if s.peek() != '"' {
			return errFound // not a string: no id
		}
		var err error
		if id, err = s.text(); err != nil {
			return err
		}
		return errFound
	})
	if err != nil && err != errFound {
		return ""
	}
	return id
}
