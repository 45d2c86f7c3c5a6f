package protocol

import (
	"math"
	"slices"

	"github.com/mloop/mloop/internal/serving"
)

// rowForm is how a row of a row-oriented body is written.
type rowForm uint8

const (
	formNone   rowForm = iota
	formList           // [v, v, …] by position
	formRecord         // {"feature": v, …} by name
	formScalar         // v, for a model of one feature
)

func (f rowForm) String() string {
	switch f {
	case formList:
		return "a list"
	case formRecord:
		return "an object"
	}
	return "a single value"
}

// rowReader reads a JSON list of rows (KServe V1 "instances", MLflow
// "dataframe_records", "dataframe_split" data, …) into a batch.
type rowReader struct {
	s        *scanner
	what     string // where the rows are, for messages: "instances"
	features []serving.Feature
	maxRows  int
	lists    bool  // rows may be lists (by position) or, for one feature, scalars
	records  bool  // rows may be objects keyed by feature name
	cols     []int // for lists: the feature of each position, -1 to ignore; nil for the model's order
	form     rowForm
	values   []float32
	rows     int
	seen     []bool // for records: features that appeared in some row
}

// read consumes the list of rows at the scanner's position.
func (r *rowReader) read() (serving.Batch, error) {
	s, f := r.s, len(r.features)
	if s.peek() != '[' {
		if err := s.skip(); err != nil {
			return serving.Batch{}, err
		}
		return serving.Batch{}, invalid("%s must be a list of rows", r.what)
	}
	over := false
	err := s.array(func(i int) error {
		r.rows = i + 1
		if over || r.maxRows > 0 && i >= r.maxRows {
			over = true // count the rest for the message
			return s.skip()
		}
		form := formScalar
		switch s.peek() {
		case '[':
			form = formList
		case '{':
			form = formRecord
		}
		switch {
		case form == formRecord && !r.records:
			return invalid("%s row %d is an object; send each row as a list of %s", r.what, i, featureList(r.features))
		case form != formRecord && !r.lists:
			return invalid("%s row %d is %s; send each row as an object keyed by feature name", r.what, i, form)
		case form == formScalar && r.width() != 1:
			_, k, start, err := s.value()
			if err != nil {
				return err
			}
			return invalid("%s row %d is %s, not a row; the model takes %s", r.what, i, s.describe(k, start), featureList(r.features))
		case r.form != formNone && form != r.form:
			return invalid("%s row %d is %s, but row 0 is %s; send every row the same way", r.what, i, form, r.form)
		}
		r.form = form
		row := len(r.values)
		r.values = slices.Grow(r.values, f)[:row+f]
		switch form {
		case formRecord:
			return r.record(i, r.values[row:])
		case formList:
			return r.list(i, r.values[row:])
		}
		return r.cell(i, r.column(0), r.values[row:])
	})
	if err != nil {
		return serving.Batch{}, err
	}
	switch {
	case over:
		return serving.Batch{}, tooMany(r.rows, r.maxRows)
	case r.rows == 0:
		return serving.Batch{}, invalid("%s has no rows", r.what)
	}
	if r.form == formRecord {
		if missing := missingFeatures(r.features, r.seen); missing != "" {
			return serving.Batch{}, invalid("%s has no value for feature %s in any row; the model takes %s", r.what, missing, featureList(r.features))
		}
	}
	return serving.Batch{Rows: r.rows, Cols: f, Values: r.values}, nil
}

// width is how many values a list row holds.
func (r *rowReader) width() int {
	if r.cols != nil {
		return len(r.cols)
	}
	return len(r.features)
}

// column returns the feature at position j of a list row, or -1.
func (r *rowReader) column(j int) int {
	if r.cols != nil {
		return r.cols[j]
	}
	return j
}

// list reads row i written as a list into dst.
func (r *rowReader) list(i int, dst []float32) error {
	s, n := r.s, 0
	err := s.array(func(j int) error {
		n = j + 1
		if j >= r.width() {
			return s.skip() // counted for the message below
		}
		return r.cell(i, r.column(j), dst)
	})
	if err != nil {
		return err
	}
	if n != r.width() {
		if r.cols != nil {
			return invalid("%s row %d has %d values, but there are %d columns", r.what, i, n, len(r.cols))
		}
		return invalid("%s row %d has %d values; the model takes %s", r.what, i, n, featureList(r.features))
	}
	return nil
}

// record reads row i written as an object into dst: absent features are
// missing values, unknown keys are ignored.
func (r *rowReader) record(i int, dst []float32) error {
	if r.seen == nil {
		r.seen = make([]bool, len(r.features))
	}
	for c := range dst {
		dst[c] = float32(math.NaN())
	}
	s, hint := r.s, 0
	return s.object(func(key []byte, esc bool) error {
		c := featureIndex(r.features, key, esc, hint)
		if c < 0 {
			return s.skip()
		}
		hint = c + 1
		r.seen[c] = true
		return r.cell(i, c, dst)
	})
}

// cell reads the value of feature c (ignored when c < 0) of row i into dst.
func (r *rowReader) cell(i, c int, dst []float32) error {
	s := r.s
	if c < 0 {
		return s.skip()
	}
	v, k, start, err := s.value()
	if err != nil {
		return err
	}
	if k == kArray || k == kObject {
		if err := s.skip(); err != nil {
			return err
		}
	}
	x, problem := convert(s, start, v, k, datatype{}, r.features[c].Type)
	if problem != "" {
		return invalid("%s row %d (feature %s): %s", r.what, i, quoteName(r.features[c].Name), problem)
	}
	dst[c] = x
	return nil
}

// readColumns reads an object of feature columns ({"a": [1, 2], "b": [3,
// 4]}, MLflow's "inputs" as a dict) into a batch. Keys that name no feature
// are ignored; every feature is required. A column may be a single value
// for a one-row batch.
func readColumns(s *scanner, what string, features []serving.Feature, maxRows int) (serving.Batch, error) {
	f := len(features)
	starts := make([]int, f)
	for i := range starts {
		starts[i] = -1
	}
	err := s.object(func(key []byte, esc bool) error {
		c := featureIndex(features, key, esc, -1)
		if c < 0 {
			return s.skip()
		}
		start, err := s.span()
		starts[c] = start
		return err
	})
	if err != nil {
		return serving.Batch{}, err
	}
	seen := make([]bool, f)
	for c, start := range starts {
		seen[c] = start >= 0
	}
	if missing := missingFeatures(features, seen); missing != "" {
		return serving.Batch{}, invalid("%s has no column for feature %s; the model takes %s", what, missing, featureList(features))
	}
	// Every column was scanned once already, so counting cannot fail.
	count := func(start int) int {
		cs := scanner{b: s.b, i: start}
		if cs.peek() != '[' {
			return 1
		}
		n := 0
		_ = cs.array(func(int) error { n++; return cs.skip() })
		return n
	}
	n := count(starts[0])
	for c := 1; c < f; c++ {
		if m := count(starts[c]); m != n {
			return serving.Batch{}, invalid("%s column %s has %d values, but column %s has %d; every column needs one value per row",
				what, quoteName(features[c].Name), m, quoteName(features[0].Name), n)
		}
	}
	switch {
	case n == 0:
		return serving.Batch{}, invalid("%s has no rows", what)
	case maxRows > 0 && n > maxRows:
		return serving.Batch{}, tooMany(n, maxRows)
	}
	b := serving.Batch{Rows: n, Cols: f, Values: make([]float32, n*f)}
	for c, start := range starts {
		cs := scanner{b: s.b, i: start}
		put := func(i int) error {
			v, k, vstart, err := cs.value()
			if err != nil {
				return err
			}
			if k == kArray || k == kObject {
				if err := cs.skip(); err != nil {
					return err
				}
			}
			x, problem := convert(&cs, vstart, v, k, datatype{}, features[c].Type)
			if problem != "" {
				return invalid("%s column %s row %d: %s", what, quoteName(features[c].Name), i, problem)
			}
			b.Values[i*f+c] = x
			return nil
		}
		if cs.peek() != '[' {
			err = put(0)
		} else {
			err = cs.array(put)
		}
		if err != nil {
			return serving.Batch{}, err
		}
	}
	return b, nil
}
