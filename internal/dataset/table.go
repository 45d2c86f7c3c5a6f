package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// Table is a dataset loaded in memory column by column, for the statistics
// that need every value (exact drift). Only non-null values are kept, so
// the columns of a table with nulls are not aligned row by row.
type Table struct {
	Rows    int64
	Columns []*TableColumn
}

// TableColumn is one loaded column. Numeric, timestamp (microseconds since
// the Unix epoch) and boolean (0 or 1) columns fill Values. String columns
// fill Text, or dictionary-encode their values in Codes and Dict (value i is
// Dict[Codes[i]]), which LoadTable does while a column has at most 2^20
// distinct values: 4 bytes a value instead of 16, and nothing for the
// garbage collector to scan. Nulls counts the missing values, NonFinite the
// NaN and ±Inf values of a numeric column, which Values leaves out.
type TableColumn struct {
	Name      string
	Type      Type
	Values    []float64
	Text      []string
	Codes     []uint32
	Dict      []string
	Nulls     int64
	NonFinite int64
}

// Count returns the number of values the column holds.
func (c *TableColumn) Count() int {
	switch {
	case c.Type != TypeString:
		return len(c.Values)
	case c.Dict != nil:
		return len(c.Codes)
	}
	return len(c.Text)
}

// String returns value i of a string column.
func (c *TableColumn) String(i int) string {
	if c.Dict != nil {
		return c.Dict[c.Codes[i]]
	}
	return c.Text[i]
}

// Column returns the named column, or nil.
func (t *Table) Column(name string) *TableColumn {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// LoadOptions say what LoadTable reads.
type LoadOptions struct {
	// Columns to load, in this order; every file must have them. Empty
	// means every column of every file, in order of first appearance; a
	// column some file lacks is null in that file's rows.
	Columns []string
	// Types fixes the type of text columns (CSV, TSV): pass the reference
	// profile's types so that both sides of a comparison parse alike. A text
	// column without a type here gets the type ParseText infers from all of
	// its values, as the profiler infers it.
	Types map[string]Type
	// ReadOptions are passed to OpenFile; Columns replaces their Columns,
	// and their Name is used only when there is one file.
	ReadOptions ReadOptions
}

// LoadTable reads every file (the files of one dataset version, say) into one
// table of the requested columns, reading only those columns where the
// format allows (Parquet). Text values follow the profiler's rules: null
// tokens (IsNullToken) are nulls except in string columns; a column typed
// integer takes integers, float takes integers and floats, boolean and
// timestamp their own values; a value that does not fit is an *InputError
// naming the file, line or row, and column, as is a column whose values mix
// types when its type is inferred.
func LoadTable(ctx context.Context, files []string, opts LoadOptions) (*Table, error) {
	if len(files) == 0 {
		return nil, errors.New("load table: no files")
	}
	l := &tableLoader{opts: opts, byName: map[string]*columnLoader{}, multi: len(files) > 1}
	for _, name := range opts.Columns {
		if _, dup := l.byName[name]; dup {
			return nil, fmt.Errorf("load table: column %q listed twice", name)
		}
		l.add(name)
	}
	for _, f := range files {
		if err := l.loadFile(ctx, f); err != nil {
			return nil, err
		}
	}
	t := &Table{Rows: l.rows}
	for _, c := range l.cols {
		c.col.Nulls += l.rows - c.rows // rows of files without the column
		if err := c.finish(); err != nil {
			return nil, fmt.Errorf("load table: %w", err)
		}
		t.Columns = append(t.Columns, c.col)
	}
	return t, nil
}

type tableLoader struct {
	opts   LoadOptions
	cols   []*columnLoader
	byName map[string]*columnLoader
	rows   int64
	multi  bool // more than one file
}

func (l *tableLoader) add(name string) *columnLoader {
	c := &columnLoader{col: &TableColumn{Name: name}, forced: l.opts.Types[name]}
	c.col.Type = c.forced
	l.cols = append(l.cols, c)
	l.byName[name] = c
	return c
}

// loadFile appends one file's rows.
func (l *tableLoader) loadFile(ctx context.Context, file string) (err error) {
	ro := l.opts.ReadOptions
	ro.Columns = l.opts.Columns
	if l.multi {
		ro.Name = "" // a display name stands for one file only
	}
	r, err := OpenFile(ctx, file, ro)
	if err != nil {
		return fmt.Errorf("load table: %w", err)
	}
	defer func() {
		if cerr := r.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("load table: close %s: %w", file, cerr)
		}
	}()
	fileCols := r.Columns()
	targets := make([]*columnLoader, len(fileCols))
	for i, fc := range fileCols {
		c := l.byName[fc.Name]
		if c == nil {
			if len(l.opts.Columns) > 0 {
				continue // not asked for
			}
			c = l.add(fc.Name)
		}
		if err := c.startFile(l.rows, fc.Type); err != nil {
			return fmt.Errorf("load table: %s: %w", file, err)
		}
		targets[i] = c
	}
	name := ro.Name
	if name == "" {
		name = file
	}
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("load table: %s: %w", file, err)
		}
		b, err := r.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("load table: %w", err)
		}
		for i, c := range targets {
			if c == nil {
				continue
			}
			if err := c.append(name, b, &b.Cols[i]); err != nil {
				return fmt.Errorf("load table: %w", err)
			}
		}
		l.rows += int64(b.Rows)
	}
	for _, c := range targets {
		if c != nil {
			c.rows = l.rows
		}
	}
	return nil
}

// Value classes of text, as ParseText sees them.
const (
	tcInt uint8 = iota
	tcFloat
	tcBool
	tcTimestamp
	tcString
	tcCount
)

var textClassOf = map[Type]uint8{TypeInteger: tcInt, TypeFloat: tcFloat, TypeBoolean: tcBool, TypeTimestamp: tcTimestamp, TypeString: tcString}

// firstOf locates the first value of a class, for errors.
type firstOf struct {
	file      string
	line, row int64
	value     string
	seen      bool
	order     int64
}

// columnLoader accumulates one column.
type columnLoader struct {
	col    *TableColumn
	forced Type  // LoadOptions.Types
	rows   int64 // table rows this column covers (files without it add nulls)

	// Text values of a column whose type is not known yet, parsed as they
	// came: their text, their number (integers, floats, booleans 0/1 and
	// timestamps), their class, and the first value of every class.
	pendText  []string
	pendNum   []float64
	pendClass []uint8
	first     [tcCount]firstOf

	// Dictionary of a string column.
	dict *stringCounter
}

// startFile prepares for a file whose column has the declared type (""
// for text). Rows of earlier files without this column become nulls. A
// file's own type wins over LoadOptions.Types (which is for text); integer
// and float files together make a float column; other differences between
// files are errors.
func (c *columnLoader) startFile(rowsBefore int64, declared Type) error {
	c.col.Nulls += rowsBefore - c.rows
	c.rows = rowsBefore
	switch {
	case declared == "" || declared == c.col.Type:
		return nil
	case c.col.Type == "":
		c.col.Type = declared
		return c.flushPending()
	case c.col.Count() == 0 && c.col.Nulls == 0:
		c.col.Type = declared // nothing loaded yet under the forced type
		return nil
	case isNumber(c.col.Type) && isNumber(declared):
		c.col.Type = TypeFloat // floats hold integers too
		return nil
	}
	return fmt.Errorf("column %q is %s here but %s in earlier files", c.col.Name, declared, c.col.Type)
}

func isNumber(t Type) bool { return t == TypeInteger || t == TypeFloat }

// append adds one batch's values.
func (c *columnLoader) append(file string, b *Batch, v *ColumnValues) error {
	n := b.Rows
	null := v.Null
	switch v.Kind {
	case KindInt, KindTimestamp:
		if c.col.Type == TypeString {
			return c.kindError(file, b, "integer")
		}
		vals := growValues(c.col.Values, n)
		for i, x := range v.Int[:n] {
			if null != nil && null[i] {
				c.col.Nulls++
				continue
			}
			vals = append(vals, float64(x))
		}
		c.col.Values = vals
	case KindFloat:
		if c.col.Type == TypeString {
			return c.kindError(file, b, "float")
		}
		vals := growValues(c.col.Values, n)
		for i, x := range v.Float[:n] {
			if null != nil && null[i] {
				c.col.Nulls++
				continue
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				c.col.NonFinite++
				continue
			}
			vals = append(vals, x)
		}
		c.col.Values = vals
	case KindBool:
		if c.col.Type == TypeString {
			return c.kindError(file, b, "boolean")
		}
		for i, x := range v.Bool[:n] {
			if null != nil && null[i] {
				c.col.Nulls++
				continue
			}
			f := 0.0
			if x {
				f = 1
			}
			c.col.Values = append(c.col.Values, f)
		}
	case KindText:
		if c.col.Type == TypeString {
			if c.col.Text == nil {
				c.col.Codes = growValues(c.col.Codes, n)
			}
			for i, s := range v.Text[:n] {
				if null != nil && null[i] {
					c.col.Nulls++
					continue
				}
				c.addString(s)
			}
			return nil
		}
		for i, s := range v.Text[:n] {
			if (null != nil && null[i]) || IsNullToken(s) {
				c.col.Nulls++
				continue
			}
			if err := c.addText(file, b, i, s); err != nil {
				return err
			}
		}
	default:
		return &InputError{File: file, Row: b.FirstRow, Column: c.col.Name, Msg: fmt.Sprintf("unknown value kind %d", v.Kind)}
	}
	return nil
}

// growValues returns x with room for n more values, doubling its capacity
// when it must grow (append's growth of large slices, 1.25×, copies a
// column several times over while it loads).
func growValues[T any](x []T, n int) []T {
	if cap(x)-len(x) >= n {
		return x
	}
	out := make([]T, len(x), max(2*cap(x), len(x)+n, 1024))
	copy(out, x)
	return out
}

func (c *columnLoader) kindError(file string, b *Batch, what string) error {
	return &InputError{File: file, Row: b.FirstRow, Column: c.col.Name, Msg: fmt.Sprintf("%s values in a string column", what)}
}

// maxDict bounds the dictionary of a string column: past it (a column of
// mostly unique values) the column switches to Text.
var maxDict = 1 << 20

// addString keeps a string value, detached from the reader's buffers
// (batches may reuse them) and dictionary-encoded while the dictionary is
// small enough.
func (c *columnLoader) addString(s string) {
	col := c.col
	if col.Text == nil && c.dict == nil {
		c.dict = &stringCounter{}
	}
	if c.dict != nil {
		code := c.dict.index(s)
		if len(c.dict.names) <= maxDict {
			col.Codes = append(col.Codes, uint32(code))
			col.Dict = c.dict.names
			return
		}
		// Too many distinct values: decode and keep plain strings.
		col.Text = make([]string, len(col.Codes), 2*len(col.Codes))
		for i, code := range col.Codes {
			col.Text[i] = col.Dict[code]
		}
		c.dict, col.Codes, col.Dict = nil, nil, nil
	}
	col.Text = append(col.Text, strings.Clone(s))
}

// position returns the line and row of a batch's i-th row.
func position(b *Batch, i int) (line, row int64) {
	if b.Lines != nil && i < len(b.Lines) {
		line = b.Lines[i]
	}
	return line, b.FirstRow + int64(i)
}

// addText adds a non-null text value of a non-string column.
func (c *columnLoader) addText(file string, b *Batch, i int, s string) error {
	v := ParseText(s)
	class := textClassOf[v.Type]
	if c.col.Type != "" {
		x, ok := accept(c.col.Type, class, v)
		if !ok {
			line, row := position(b, i)
			return c.typeError(file, line, row, s, c.col.Type)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			c.col.NonFinite++
			return nil
		}
		c.col.Values = append(c.col.Values, x)
		return nil
	}
	if f := &c.first[class]; !f.seen {
		line, row := position(b, i)
		*f = firstOf{file: file, line: line, row: row, value: strings.Clone(s), seen: true, order: int64(len(c.pendText))}
	}
	var x float64
	switch class {
	case tcInt:
		x = float64(v.Int)
	case tcFloat:
		x = v.Float
	case tcBool:
		if v.Bool {
			x = 1
		}
	case tcTimestamp:
		x = float64(v.Micros)
	}
	c.pendText = append(c.pendText, strings.Clone(s))
	c.pendNum = append(c.pendNum, x)
	c.pendClass = append(c.pendClass, class)
	return nil
}

// accept converts a parsed text value to a column of type t, as the
// profiler accepts it: integer columns take integers, float columns
// integers and floats, boolean and timestamp columns their own values.
func accept(t Type, class uint8, v TextValue) (float64, bool) {
	switch {
	case t == TypeInteger && class == tcInt, t == TypeFloat && class == tcInt:
		return float64(v.Int), true
	case t == TypeFloat && class == tcFloat:
		return v.Float, true
	case t == TypeBoolean && class == tcBool:
		if v.Bool {
			return 1, true
		}
		return 0, true
	case t == TypeTimestamp && class == tcTimestamp:
		return float64(v.Micros), true
	}
	return 0, false
}

func (c *columnLoader) typeError(file string, line, row int64, value string, t Type) error {
	a := "a"
	if t == TypeInteger {
		a = "an"
	}
	e := &InputError{File: file, Line: line, Row: row, Column: c.col.Name, Msg: fmt.Sprintf("value %q is not %s %s", value, a, t)}
	if line > 0 {
		e.Row = 0
	}
	return e
}

// inferType decides the type of a text column from its values' classes, as
// the profiler does: integers alone are integer, integers and floats float,
// booleans boolean, timestamps timestamp, no parsable value string; any
// other mix is an error at the first value outside the largest group.
func (c *columnLoader) inferType() (Type, error) {
	var counts [tcCount]int
	for _, k := range c.pendClass {
		counts[k]++
	}
	groups := map[string]int{}
	groupOf := func(k uint8) string {
		switch k {
		case tcInt, tcFloat:
			return "numeric"
		case tcBool:
			return "boolean"
		case tcTimestamp:
			return "timestamp"
		}
		return "string"
	}
	for k, n := range counts {
		if n > 0 {
			groups[groupOf(uint8(k))] += n
		}
	}
	switch {
	case len(groups) == 0:
		return TypeString, nil
	case len(groups) == 1:
		for g := range groups {
			switch g {
			case "numeric":
				if counts[tcFloat] > 0 {
					return TypeFloat, nil
				}
				return TypeInteger, nil
			case "boolean":
				return TypeBoolean, nil
			case "timestamp":
				return TypeTimestamp, nil
			}
		}
		return TypeString, nil
	}
	major := ""
	for g, n := range groups {
		if major == "" || n > groups[major] || (n == groups[major] && g < major) {
			major = g
		}
	}
	var off *firstOf
	for k := range c.first {
		f := &c.first[k]
		if f.seen && groupOf(uint8(k)) != major && (off == nil || f.order < off.order) {
			off = f
		}
	}
	e := &InputError{File: off.file, Line: off.line, Row: off.row, Column: c.col.Name,
		Msg: fmt.Sprintf("mixed types: value %q does not fit the column's %d %s values; declare the column's type", off.value, groups[major], major)}
	if e.Line > 0 {
		e.Row = 0
	}
	return "", e
}

// flushPending converts the values held for inference once the type is
// known.
func (c *columnLoader) flushPending() error {
	if len(c.pendText) == 0 {
		return nil
	}
	text, nums, classes := c.pendText, c.pendNum, c.pendClass
	c.pendText, c.pendNum, c.pendClass = nil, nil, nil
	if c.col.Type == TypeString {
		for _, s := range text {
			c.addString(s)
		}
		return nil
	}
	for i, k := range classes {
		ok := false
		switch c.col.Type {
		case TypeInteger:
			ok = k == tcInt
		case TypeFloat:
			ok = k == tcInt || k == tcFloat
		case TypeBoolean:
			ok = k == tcBool
		case TypeTimestamp:
			ok = k == tcTimestamp
		}
		if !ok {
			f := c.first[k]
			return c.typeError(f.file, f.line, f.row, f.value, c.col.Type)
		}
		x := nums[i]
		if math.IsNaN(x) || math.IsInf(x, 0) {
			c.col.NonFinite++
			continue
		}
		c.col.Values = append(c.col.Values, x)
	}
	return nil
}

// finish infers the type of a text-only column and converts its values.
func (c *columnLoader) finish() error {
	if c.col.Type == "" {
		t, err := c.inferType()
		if err != nil {
			return err
		}
		c.col.Type = t
	}
	if err := c.flushPending(); err != nil {
		return err
	}
	c.dict = nil
	c.col.Values = slices.Clip(c.col.Values)
	c.col.Text = slices.Clip(c.col.Text)
	c.col.Codes = slices.Clip(c.col.Codes)
	return nil
}
