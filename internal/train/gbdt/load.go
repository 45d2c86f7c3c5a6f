package gbdt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// LoadOptions say how data files become Data.
type LoadOptions struct {
	// Label is the label column; it is required.
	Label string
	// Features are the feature columns, in order; empty means every column
	// of the first file but the label and the weight column.
	Features []string
	// Categorical lists feature columns read as categories. A feature
	// column whose first value is text is categorical too. Categories whose
	// values are all integers from 0 to MaxCategory are their own codes;
	// others are coded by frequency (most frequent 0, ties by name) and
	// their names kept in Feature.Categories.
	Categorical []string
	// Weight names an optional column of row weights.
	Weight string
	// Objective says how labels are read: for MultiSoftprob, text labels
	// become class indices in name order (Data.Classes); other objectives
	// need numerical or boolean labels.
	Objective Objective
	// Like, for validation or test data, is the training data: its
	// features, category codes and classes are used (categories it has not
	// seen become missing values; classes it has not seen are an error).
	Like *Data
}

// Loader reads data files into Data, column by column, in memory. Null
// tokens (empty fields, NA, null, …; see dataset.IsNullToken) and nulls
// are missing values; booleans are 0 and 1. Timestamps are rejected:
// derive numerical features from them first.
type Loader struct {
	opts  LoadOptions
	cols  []*colLoader // features, then label, then weight
	label *colLoader
	wt    *colLoader
	rows  int
}

// colLoader accumulates one column.
type colLoader struct {
	name string
	cat  bool // categorical feature
	like *Feature
	// text is true once the column reads text (categories or text labels):
	// codes and dict hold it; otherwise vals holds numbers.
	text    bool
	decided bool
	pending int // missing values before the mode was decided
	vals    []float32
	codes   []int32 // -1 is missing
	dict    map[string]int32
	names   []string
	counts  []int
}

// NewLoader returns a Loader with opts.
func NewLoader(opts LoadOptions) (*Loader, error) {
	if opts.Label == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "no label column: name the column to predict")
	}
	if opts.Objective == "" {
		opts.Objective = BinaryLogistic
	}
	l := &Loader{opts: opts}
	if opts.Like != nil && len(opts.Features) == 0 {
		for _, f := range opts.Like.Features {
			l.opts.Features = append(l.opts.Features, f.Name)
		}
	}
	if err := l.setColumns(l.opts.Features); err != nil {
		return nil, err
	}
	return l, nil
}

// setColumns sets up the feature, label and weight columns.
func (l *Loader) setColumns(features []string) error {
	if len(features) == 0 {
		return nil // decided by the first file
	}
	if l.opts.Like != nil && len(features) != len(l.opts.Like.Features) {
		return mloop.Errorf(mloop.EINVALID, "%d features, the training data has %d", len(features), len(l.opts.Like.Features))
	}
	seen := map[string]bool{}
	for _, c := range l.opts.Categorical {
		if !slices.Contains(features, c) {
			return mloop.Errorf(mloop.EINVALID, "categorical column %q is not a feature; list it among the features", c)
		}
	}
	for j, f := range features {
		switch {
		case f == "":
			return mloop.Errorf(mloop.EINVALID, "feature %d has an empty name", j+1)
		case seen[f]:
			return mloop.Errorf(mloop.EINVALID, "feature %q is listed twice", f)
		case f == l.opts.Label:
			return mloop.Errorf(mloop.EINVALID, "the label %q cannot also be a feature", f)
		case f == l.opts.Weight && f != "":
			return mloop.Errorf(mloop.EINVALID, "the weight column %q cannot also be a feature", f)
		}
		seen[f] = true
		c := &colLoader{name: f, cat: slices.Contains(l.opts.Categorical, f)}
		if l.opts.Like != nil {
			lf := &l.opts.Like.Features[j]
			if lf.Name != f {
				return mloop.Errorf(mloop.EINVALID, "feature %d is %q, the training data's is %q", j+1, f, lf.Name)
			}
			c.like, c.cat = lf, lf.Categorical
		}
		l.cols = append(l.cols, c)
	}
	l.label = &colLoader{name: l.opts.Label}
	l.cols = append(l.cols, l.label)
	if l.opts.Weight != "" {
		if l.opts.Weight == l.opts.Label {
			return mloop.Errorf(mloop.EINVALID, "the weight column %q cannot be the label", l.opts.Weight)
		}
		l.wt = &colLoader{name: l.opts.Weight}
		l.cols = append(l.cols, l.wt)
	}
	return nil
}

// LoadFiles reads files (CSV, TSV, NDJSON or Parquet; see dataset.OpenFile)
// into Data.
func LoadFiles(ctx context.Context, files []string, opts LoadOptions) (*Data, error) {
	if len(files) == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "no data files")
	}
	l, err := NewLoader(opts)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := l.ReadFile(ctx, f); err != nil {
			return nil, err
		}
	}
	return l.Data()
}

// ReadFile reads one data file.
func (l *Loader) ReadFile(ctx context.Context, path string) error {
	var cols []string
	if len(l.cols) > 0 {
		for _, c := range l.cols {
			cols = append(cols, c.name)
		}
	}
	r, err := dataset.OpenFile(ctx, path, dataset.ReadOptions{Columns: cols})
	if err != nil {
		return err
	}
	defer r.Close()
	return l.Read(ctx, path, r)
}

// Read reads every batch of r, a reader of the file called name. Without
// Features, the columns of the first file read decide them.
func (l *Loader) Read(ctx context.Context, name string, r dataset.Reader) error {
	if len(l.cols) == 0 {
		var fs []string
		for _, c := range r.Columns() {
			if c.Name != l.opts.Label && c.Name != l.opts.Weight {
				fs = append(fs, c.Name)
			}
		}
		if len(fs) == 0 {
			return mloop.Errorf(mloop.EINVALID, "%s has no feature columns besides the label", name)
		}
		if err := l.setColumns(fs); err != nil {
			return err
		}
	}
	index := map[string]int{}
	for i, c := range r.Columns() {
		index[c.Name] = i
	}
	at := make([]int, len(l.cols))
	for k, c := range l.cols {
		i, ok := index[c.name]
		if !ok {
			return &dataset.InputError{File: name, Column: c.name, Msg: "no such column"}
		}
		at[k] = i
	}
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if l.rows+b.Rows > math.MaxInt32 {
			return mloop.Errorf(mloop.ETOOLARGE, "more than %d rows", math.MaxInt32)
		}
		for k, c := range l.cols {
			if err := c.add(name, b, &b.Cols[at[k]], c == l.label, l.opts.Like); err != nil {
				return err
			}
		}
		l.rows += b.Rows
	}
}

// inputError returns an error at row i of batch b.
func inputError(file string, b *dataset.Batch, i int, col, format string, args ...any) error {
	e := &dataset.InputError{File: file, Column: col, Msg: fmt.Sprintf(format, args...)}
	if b.Lines != nil {
		e.Line = b.Lines[i]
	} else {
		e.Row = b.FirstRow + int64(i)
	}
	return e
}

// decide sets the column's mode, filling in the missing values seen so far.
func (c *colLoader) decide(text bool) {
	c.decided, c.text = true, text
	for range c.pending {
		if text {
			c.codes = append(c.codes, -1)
		} else {
			c.vals = append(c.vals, float32(math.NaN()))
		}
	}
	c.pending = 0
}

func (c *colLoader) missing() {
	switch {
	case !c.decided:
		c.pending++
	case c.text:
		c.codes = append(c.codes, -1)
	default:
		c.vals = append(c.vals, float32(math.NaN()))
	}
}

func (c *colLoader) addText(s string) {
	if !c.decided {
		c.decide(true)
	}
	if c.dict == nil {
		c.dict = map[string]int32{}
	}
	code, ok := c.dict[s]
	if !ok {
		code = int32(len(c.names))
		c.dict[s] = code
		c.names = append(c.names, s)
		c.counts = append(c.counts, 0)
	}
	c.counts[code]++
	c.codes = append(c.codes, code)
}

func (c *colLoader) addNumber(v float64) {
	if !c.decided {
		c.decide(false)
	}
	c.vals = append(c.vals, float32(v))
}

// add appends column v of batch b.
func (c *colLoader) add(file string, b *dataset.Batch, v *dataset.ColumnValues, isLabel bool, like *Data) error {
	for i := range b.Rows {
		if v.Null != nil && v.Null[i] {
			c.missing()
			continue
		}
		switch v.Kind {
		case dataset.KindText:
			s := v.Text[i]
			if dataset.IsNullToken(s) {
				c.missing()
				continue
			}
			if c.cat || (c.decided && c.text) {
				if c.decided && !c.text {
					return inputError(file, b, i, c.name, "text %q in a column of numbers", s)
				}
				c.addText(s)
				continue
			}
			tv := dataset.ParseText(s)
			switch tv.Type {
			case dataset.TypeInteger:
				c.addNumber(float64(tv.Int))
			case dataset.TypeFloat:
				c.addNumber(tv.Float)
			case dataset.TypeBoolean:
				c.addNumber(boolFloat(tv.Bool))
			case dataset.TypeTimestamp:
				return inputError(file, b, i, c.name, "%q is a timestamp; derive numerical features from it (hour, weekday, …) and drop it from the features", s)
			default:
				if c.decided {
					hint := "; read the column as categories with --categorical " + c.name
					if isLabel {
						hint = ""
					}
					return inputError(file, b, i, c.name, "text %q in a column of numbers%s", s, hint)
				}
				if c.like != nil && !c.like.Categorical {
					return inputError(file, b, i, c.name, "text %q, but the feature is numerical in the training data", s)
				}
				c.cat = c.cat || !isLabel
				c.addText(s)
			}
		case dataset.KindInt, dataset.KindFloat, dataset.KindBool:
			var f float64
			switch v.Kind {
			case dataset.KindInt:
				f = float64(v.Int[i])
			case dataset.KindFloat:
				f = v.Float[i]
			default:
				f = boolFloat(v.Bool[i])
			}
			if c.cat || (c.decided && c.text) {
				c.addText(strconv.FormatFloat(f, 'g', -1, 64))
				continue
			}
			c.addNumber(f)
		case dataset.KindTimestamp:
			return inputError(file, b, i, c.name, "the column holds timestamps; derive numerical features from it (hour, weekday, …) and drop it from the features")
		default:
			return inputError(file, b, i, c.name, "unsupported value kind %d", v.Kind)
		}
	}
	return nil
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Data returns what was read.
func (l *Loader) Data() (*Data, error) {
	if l.rows == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "the data has no rows")
	}
	d := &Data{}
	for _, c := range l.cols {
		if !c.decided {
			c.decide(c.cat)
		}
	}
	for _, c := range l.cols {
		if c == l.label || c == l.wt {
			continue
		}
		f, col, err := c.feature()
		if err != nil {
			return nil, err
		}
		d.Features = append(d.Features, f)
		d.Columns = append(d.Columns, col)
	}
	labels, classes, err := l.labels()
	if err != nil {
		return nil, err
	}
	d.Labels, d.Classes = labels, classes
	if l.wt != nil {
		if l.wt.text {
			return nil, mloop.Errorf(mloop.EINVALID, "weight column %q holds text; weights must be numbers", l.wt.name)
		}
		for i, w := range l.wt.vals {
			if !(w >= 0) || math.IsInf(float64(w), 0) {
				return nil, mloop.Errorf(mloop.EINVALID, "weight column %q: row %d is %g; weights must be non-negative numbers", l.wt.name, i+1, w)
			}
		}
		d.Weights = l.wt.vals
	}
	return d, nil
}

// feature returns a feature column's description and values.
func (c *colLoader) feature() (Feature, []float32, error) {
	f := Feature{Name: c.name, Categorical: c.cat}
	if !c.text {
		if c.cat {
			// Categories given as numbers (Parquet integers) are codes.
			for i, v := range c.vals {
				if v == v && (v < 0 || v > MaxCategory || v != float32(math.Trunc(float64(v)))) {
					return f, nil, mloop.Errorf(mloop.EINVALID, "categorical column %q: row %d is %g; categories read as numbers must be integer codes from 0 to %d", c.name, i+1, v, MaxCategory)
				}
			}
		}
		for i, v := range c.vals {
			if math.IsInf(float64(v), 0) {
				return f, nil, mloop.Errorf(mloop.EINVALID, "column %q: row %d is %g; infinite values are not allowed (leave the value empty for missing)", c.name, i+1, v)
			}
		}
		return f, c.vals, nil
	}
	// Text: map dictionary codes to category codes.
	var code []float32 // dict code → category code (NaN: unknown)
	switch {
	case c.like != nil && c.like.Categories != nil:
		byName := map[string]int{}
		for i, s := range c.like.Categories {
			byName[s] = i
		}
		code = make([]float32, len(c.names))
		for i, s := range c.names {
			if k, ok := byName[s]; ok {
				code[i] = float32(k)
			} else {
				code[i] = float32(math.NaN())
			}
		}
		f.Categories = c.like.Categories
	default:
		// Integer categories are their own codes.
		code = make([]float32, len(c.names))
		ints := true
		for i, s := range c.names {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 || n > MaxCategory {
				ints = false
				break
			}
			code[i] = float32(n)
		}
		if c.like != nil && !ints {
			return f, nil, mloop.Errorf(mloop.EINVALID, "categorical column %q holds names, but the training data's categories are integer codes", c.name)
		}
		if !ints {
			order := FrequencyOrder(c.names, c.counts)
			if len(order) > MaxCategory+1 {
				return f, nil, mloop.Errorf(mloop.EINVALID, "categorical column %q has %d distinct values, more than %d", c.name, len(order), MaxCategory+1)
			}
			f.Categories = make([]string, len(order))
			for k, i := range order {
				code[i] = float32(k)
				f.Categories[k] = c.names[i]
			}
		}
	}
	col := make([]float32, len(c.codes))
	for i, k := range c.codes {
		if k < 0 {
			col[i] = float32(math.NaN())
		} else {
			col[i] = code[k]
		}
	}
	return f, col, nil
}

// labels returns the label values and, for text labels, the class names.
func (l *Loader) labels() ([]float32, []string, error) {
	c := l.label
	obj := l.opts.Objective
	if !c.text {
		for i, v := range c.vals {
			if v != v {
				return nil, nil, mloop.Errorf(mloop.EINVALID, "label column %q: row %d has no label; drop rows without a label", c.name, i+1)
			}
		}
		if l.opts.Like != nil && l.opts.Like.Classes != nil {
			return nil, nil, mloop.Errorf(mloop.EINVALID, "label column %q holds numbers, but the training labels are class names", c.name)
		}
		return c.vals, nil, nil
	}
	if obj != MultiSoftprob {
		return nil, nil, mloop.Errorf(mloop.EINVALID, "label column %q holds text (%q); %s needs numerical labels (0 or 1, true or false for binary:logistic); use multi:softprob for named classes", c.name, c.names[0], obj)
	}
	classes := slices.Clone(c.names)
	slices.Sort(classes)
	if l.opts.Like != nil {
		if l.opts.Like.Classes == nil {
			return nil, nil, mloop.Errorf(mloop.EINVALID, "label column %q holds text, but the training labels are numbers", c.name)
		}
		classes = l.opts.Like.Classes
	}
	byName := map[string]int{}
	for i, s := range classes {
		byName[s] = i
	}
	out := make([]float32, len(c.codes))
	for i, k := range c.codes {
		if k < 0 {
			return nil, nil, mloop.Errorf(mloop.EINVALID, "label column %q: row %d has no label; drop rows without a label", c.name, i+1)
		}
		idx, ok := byName[c.names[k]]
		if !ok {
			return nil, nil, mloop.Errorf(mloop.EINVALID, "label column %q: row %d is class %q, which the training data does not have", c.name, i+1, c.names[k])
		}
		out[i] = float32(idx)
	}
	return out, classes, nil
}

// FrequencyOrder returns the indices of names ordered as categories are
// coded: the most frequent first (counts[i] is how often names[i] was
// seen), ties by name, as examples/flights/features.py codes airports.
func FrequencyOrder(names []string, counts []int) []int {
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if counts[a] != counts[b] {
			return counts[b] - counts[a]
		}
		return cmp.Compare(names[a], names[b])
	})
	return order
}

// FrequencyCodes codes the categories counted in counts by FrequencyOrder:
// the most frequent is 0.
func FrequencyCodes(counts map[string]int) map[string]float32 {
	names := make([]string, 0, len(counts))
	for s := range counts {
		names = append(names, s)
	}
	n := make([]int, len(names))
	for i, s := range names {
		n[i] = counts[s]
	}
	codes := make(map[string]float32, len(names))
	for k, i := range FrequencyOrder(names, n) {
		codes[names[i]] = float32(k)
	}
	return codes
}
