package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"github.com/mloop/mloop/internal/stats"
)

// ProfileOptions tune profiling; zero values mean the defaults.
type ProfileOptions struct {
	QuantileK     int             // KLL accuracy parameter (stats.DefaultQuantileK)
	FrequentLimit int             // distinct values counted exactly (stats.DefaultFrequentLimit)
	HistogramBins int             // bins of the summary histogram (20)
	Types         map[string]Type // column types forced by the user (text formats)
	// Workers is how many goroutines Add spreads a batch's columns over
	// (GOMAXPROCS when zero); live monitoring uses one, so that it never
	// takes every CPU from the requests it watches.
	Workers int
}

// DefaultHistogramBins is the number of bins of a profile's histogram when
// ProfileOptions.HistogramBins is zero.
const DefaultHistogramBins = 20

// TopValues is how many of the most frequent values a column profile lists.
const TopValues = 20

// ProfileQuantiles are the quantiles every numeric column profile reports,
// keyed as in ColumnProfile.Quantiles.
var ProfileQuantiles = []struct {
	Key string
	Q   float64
}{
	{"p1", 0.01}, {"p5", 0.05}, {"p25", 0.25}, {"p50", 0.50},
	{"p75", 0.75}, {"p95", 0.95}, {"p99", 0.99},
}

func (o ProfileOptions) withDefaults() ProfileOptions {
	if o.QuantileK <= 0 {
		o.QuantileK = stats.DefaultQuantileK
	}
	if o.FrequentLimit <= 0 {
		o.FrequentLimit = stats.DefaultFrequentLimit
	}
	if o.HistogramBins <= 0 {
		o.HistogramBins = DefaultHistogramBins
	}
	return o
}

// Profile summarises a dataset version (or a file, or a monitoring window):
// per column statistics plus the mergeable sketches they came from, so that
// profiles of parts merge into the profile of the whole.
type Profile struct {
	Rows    int64            `json:"rows"`
	Columns []*ColumnProfile `json:"columns"`
}

// ColumnProfile is one column's statistics. Numeric fields are about the
// column's non-null values; for timestamps they are in microseconds since the
// Unix epoch, for booleans false=0 and true=1.
//
// Count includes NaN and infinite values, which are also counted in NaN and
// Inf; the moments, the quantile and distinct-count sketches and every
// summary derived from them (Min, Max, Mean, Std, Quantiles, Histogram) are
// about the finite values only.
type ColumnProfile struct {
	Name  string `json:"name"`
	Type  Type   `json:"type"`
	Count int64  `json:"count"` // non-null values
	Nulls int64  `json:"nulls"`
	NaN   int64  `json:"nan,omitempty"`
	Inf   int64  `json:"inf,omitempty"`

	// Summary values (recomputed from the sketches after a merge).
	Min       *float64           `json:"min,omitempty"`
	Max       *float64           `json:"max,omitempty"`
	Mean      *float64           `json:"mean,omitempty"`
	Std       *float64           `json:"std,omitempty"`       // population standard deviation
	Quantiles map[string]float64 `json:"quantiles,omitempty"` // "p1","p5","p25","p50","p75","p95","p99"
	Histogram *Histogram         `json:"histogram,omitempty"`
	Distinct  int64              `json:"distinct"`             // estimate; exact while the frequent counter is exact
	Top       []stats.ItemCount  `json:"top,omitempty"`        // most frequent values (up to 20)
	MinLength *int64             `json:"min_length,omitempty"` // strings
	MaxLength *int64             `json:"max_length,omitempty"`

	// Sketches, for merging and for drift from profiles. Numeric, timestamp
	// and boolean columns have Moments and Quantiles; string, boolean and
	// integer columns have Frequent; every column has DistinctSketch.
	Moments        *stats.Moments         `json:"moments,omitempty"`
	QuantileSketch *stats.QuantileSketch  `json:"quantile_sketch,omitempty"`
	Frequent       *stats.FrequentItems   `json:"frequent,omitempty"`
	DistinctSketch *stats.DistinctCounter `json:"distinct_sketch,omitempty"`
}

// Histogram is an equal-width histogram between the column's minimum and
// maximum; counts come from the quantile sketch and carry its rank error.
type Histogram struct {
	Edges  []float64 `json:"edges"`
	Counts []float64 `json:"counts"`
}

// Column returns the profile of the named column, or nil.
func (p *Profile) Column(name string) *ColumnProfile {
	for _, c := range p.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Profiler computes a Profile from batches in one pass, in memory bounded by
// the sketches' sizes whatever the number of rows.
//
// Columns whose type the file declares (Parquet, NDJSON) are profiled by the
// Kind of their values. Text columns (CSV, TSV) have their type inferred
// while streaming: each value is parsed with ParseText and the profiler keeps,
// per class of value (integer, float, boolean, timestamp, string), its count,
// where it was first seen, and the statistics the column would have if it
// turned out to be of that class; Finish decides:
//
//   - every non-null value an integer: integer;
//   - integers and floats: float;
//   - every value a boolean: boolean; every value a timestamp: timestamp;
//   - no value parses: string; no value at all: string.
//
// Any other mix (numbers and words, say) is an *InputError pointing at the
// first value of the minority class, so that a mostly numeric column blames
// its first word and a mostly textual one its first number.
// ProfileOptions.Types forces a column's type instead: every value must then
// parse as that type (any value is a string), and the first one that does
// not is the error.
//
// Add spreads the columns of each batch over GOMAXPROCS goroutines
// (ProfileOptions.Workers when set); every
// column's statistics are touched by one goroutine at a time, and Add returns
// only when the whole batch is profiled, as Batch's reuse requires.
type Profiler struct {
	file    string
	opts    ProfileOptions
	cols    []*colAcc
	rows    int64
	workers int
	err     error
}

// NewProfiler returns a profiler for a file with the given columns; file
// names the input in errors.
func NewProfiler(file string, cols []Column, opts ProfileOptions) *Profiler {
	opts = opts.withDefaults()
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	p := &Profiler{file: file, opts: opts, workers: workers}
	for _, c := range cols {
		// A declared type also applies to text values of that column.
		a := &colAcc{name: c.Name, declared: c.Type, forced: c.Type, file: file, opts: &p.opts}
		if t, ok := opts.Types[c.Name]; ok && c.Type == "" {
			a.forced = t
		}
		p.cols = append(p.cols, a)
	}
	return p
}

// parallelMinValues is the smallest batch (rows × columns) that Add spreads
// over several goroutines; smaller ones are not worth the synchronisation.
const parallelMinValues = 8192

// Add profiles one batch. Mixed types in a text column (values of a column
// that is mostly numeric failing to parse, say) are an *InputError naming the
// line and column: values that do not parse as a forced type are reported
// here, a mix of inferred classes by Finish, once the minority is known.
func (p *Profiler) Add(b *Batch) error {
	if p.err != nil {
		return p.err
	}
	if len(b.Cols) != len(p.cols) {
		p.err = &InputError{File: p.file, Row: b.FirstRow, Msg: fmt.Sprintf("batch has %d columns, the file has %d", len(b.Cols), len(p.cols))}
		return p.err
	}
	n := len(p.cols)
	workers := min(p.workers, n)
	if workers <= 1 || b.Rows*n < parallelMinValues {
		for i, a := range p.cols {
			if err := a.add(b, &b.Cols[i]); err != nil {
				p.err = err
				return err
			}
		}
	} else {
		errs := make([]error, n)
		var next atomic.Int32
		work := func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				errs[i] = p.cols[i].add(b, &b.Cols[i])
			}
		}
		var wg sync.WaitGroup
		for range workers - 1 {
			wg.Go(work)
		}
		work()
		wg.Wait()
		// The error of the leftmost column, so that the result does not
		// depend on scheduling.
		for _, err := range errs {
			if err != nil {
				p.err = err
				return err
			}
		}
	}
	p.rows += int64(b.Rows)
	return nil
}

// Finish returns the profile of everything added.
func (p *Profiler) Finish() (*Profile, error) {
	if p.err != nil {
		return nil, p.err
	}
	prof := &Profile{Rows: p.rows, Columns: make([]*ColumnProfile, 0, len(p.cols))}
	for _, a := range p.cols {
		c, err := a.finish()
		if err != nil {
			return nil, err
		}
		summarize(c, p.opts.HistogramBins)
		prof.Columns = append(prof.Columns, c)
	}
	return prof, nil
}

// ProfileReader profiles every batch of r.
func ProfileReader(ctx context.Context, file string, r Reader, opts ProfileOptions) (*Profile, error) {
	p := NewProfiler(file, r.Columns(), opts)
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("profile %s: %w", file, err)
		}
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if err := p.Add(b); err != nil {
			return nil, err
		}
	}
	return p.Finish()
}

// value classes of text values, in the order Finish reports them.
const (
	classInt = iota
	classFloat
	classBool
	classTimestamp
	classString
	nClasses
)

var classNames = [nClasses]string{"integer", "float", "boolean", "timestamp", "string"}

// classOf maps a parsed text value's type to its class.
func classOf(t Type) int {
	switch t {
	case TypeInteger:
		return classInt
	case TypeFloat:
		return classFloat
	case TypeBoolean:
		return classBool
	case TypeTimestamp:
		return classTimestamp
	}
	return classString
}

// classSeen is how many values of one class a text column had and where
// the first of them was.
type classSeen struct {
	count int64
	line  int64
	row   int64
	value string
}

// numAcc accumulates numeric values: moments, quantiles and distinct
// values of the finite ones, counts of NaN and infinities.
type numAcc struct {
	mom      stats.Moments
	qs       *stats.QuantileSketch
	hll      *stats.DistinctCounter
	nan, inf int64
	buf      []float64 // per batch scratch: the batch's finite values
}

func (a *numAcc) init(k int) {
	if a.qs == nil {
		a.qs = stats.NewQuantileSketch(k)
		a.hll = stats.NewDistinctCounter()
	}
}

// sketchMode says how addFinite feeds the quantile and distinct sketches.
type sketchMode uint8

const (
	sketchAll      sketchMode = iota // quantiles and distinct values
	sketchQuantile                   // quantiles only (the caller counts distinct values)
	sketchNone                       // neither (the caller feeds both)
)

// addFinite adds a batch's finite values: moments in two passes over the
// slice (exact mean first, then squared deviations, merged into the running
// moments with Chan et al.'s formula), then the sketches as mode says. Runs
// of equal consecutive values (sorted or clustered data, such as timestamps)
// enter the sketches once per run, with their length as weight.
func (a *numAcc) addFinite(xs []float64, mode sketchMode) {
	if len(xs) == 0 {
		return
	}
	sum, lo, hi := 0.0, xs[0], xs[0]
	runs := 1
	for i, x := range xs {
		sum += x
		lo = min(lo, x)
		hi = max(hi, x)
		if i > 0 && x != xs[i-1] {
			runs++
		}
	}
	mean := sum / float64(len(xs))
	m2 := 0.0
	for _, x := range xs {
		d := x - mean
		m2 += d * d
	}
	a.mom.Merge(stats.Moments{N: int64(len(xs)), Mean: mean, M2: m2, Min: lo, Max: hi})
	if mode == sketchNone {
		return
	}
	qs, hll := a.qs, a.hll
	if runs*4 <= len(xs) {
		start := 0
		for i := 1; i <= len(xs); i++ {
			if i < len(xs) && xs[i] == xs[start] {
				continue
			}
			qs.AddN(xs[start], int64(i-start))
			if mode == sketchAll {
				hll.AddFloat(xs[start])
			}
			start = i
		}
		return
	}
	qs.AddSlice(xs)
	if mode == sketchAll {
		for _, x := range xs {
			hll.AddFloat(x)
		}
	}
}

// addFloats adds a slice of values; null (when non-nil) marks values to
// skip; NaN and infinities are counted and left out.
func (a *numAcc) addFloats(xs []float64, null []bool) {
	buf := a.buf[:0]
	for i, x := range xs {
		if null != nil && null[i] {
			continue
		}
		if x-x != 0 { // NaN or ±Inf
			if x != x {
				a.nan++
			} else {
				a.inf++
			}
			continue
		}
		buf = append(buf, x)
	}
	a.addFinite(buf, sketchAll)
	a.buf = buf
}

// addInts adds a slice of integers (also timestamps in microseconds) and
// returns the non-null ones' minimum and maximum (ok false when none).
func (a *numAcc) addInts(xs []int64, null []bool, mode sketchMode) (lo, hi int64, ok bool) {
	buf := a.buf[:0]
	lo, hi = math.MaxInt64, math.MinInt64
	for i, v := range xs {
		if null != nil && null[i] {
			continue
		}
		lo = min(lo, v)
		hi = max(hi, v)
		buf = append(buf, float64(v))
	}
	a.addFinite(buf, mode)
	a.buf = buf
	return lo, hi, len(buf) > 0
}

// addRepeated adds n copies of x.
func (a *numAcc) addRepeated(x float64, n int64) {
	if x-x != 0 {
		if x != x {
			a.nan += n
		} else {
			a.inf += n
		}
		return
	}
	a.mom.Merge(stats.Moments{N: n, Mean: x, Min: x, Max: x})
	a.qs.AddN(x, n)
	a.hll.AddFloat(x)
}

// textEntry is one distinct text value of a batch: how often and where first.
type textEntry struct {
	s     string
	n     int64
	first int
}

// colAcc accumulates one column. The typed paths use num (integer and float
// kinds), ts (timestamps), bl (booleans) and, for integers, booleans and
// strings, freq and strHLL; text inference uses all of them at once, one per
// class, and keeps classes to decide at finish.
type colAcc struct {
	name     string
	declared Type // the file's type; "" for text
	forced   Type // ProfileOptions.Types
	file     string
	opts     *ProfileOptions

	count, nulls int64
	sawFloat     bool // an integer column received float values (NDJSON)

	num, ts, bl numAcc
	freq        *stats.FrequentItems
	strHLL      *stats.DistinctCounter
	minLen      int64
	maxLen      int64
	hasLen      bool

	classes [nClasses]classSeen

	// per batch scratch, reused
	intIndex   map[int64]int32
	intKeys    []int64
	intCounts  []int64
	txtIndex   map[string]int32
	shortIndex map[uint64]int32
	txtSeen    []textEntry
}

func (a *colAcc) initFreq() {
	if a.freq == nil {
		a.freq = stats.NewFrequentItems(a.opts.FrequentLimit)
		a.strHLL = stats.NewDistinctCounter()
	}
}

// rowPos returns the line and row of a batch's i-th row.
func rowPos(b *Batch, i int) (line, row int64) {
	row = b.FirstRow + int64(i)
	if b.Lines != nil && i < len(b.Lines) {
		line = b.Lines[i]
	}
	return line, row
}

func (a *colAcc) inputError(b *Batch, i int, msg string) error {
	line, row := rowPos(b, i)
	if line > 0 {
		row = 0
	}
	return &InputError{File: a.file, Line: line, Row: row, Column: a.name, Msg: msg}
}

// add profiles the column's values of one batch.
func (a *colAcc) add(b *Batch, cv *ColumnValues) error {
	rows := b.Rows
	nonNull := int64(rows)
	if cv.Null != nil {
		for _, isNull := range cv.Null[:rows] {
			if isNull {
				nonNull--
			}
		}
	}
	switch cv.Kind {
	case KindText:
		if a.forced != "" && !validType(a.forced) {
			return &InputError{File: a.file, Column: a.name,
				Msg: fmt.Sprintf("unknown type %q (want integer, float, boolean, string or timestamp)", a.forced)}
		}
		if a.forced == TypeString {
			// Text files spell nulls with tokens; typed files with Null.
			tokens := a.addStrings(cv.Text[:rows], cv.Null, a.declared == "")
			a.count += nonNull - tokens
			a.nulls += int64(rows) - nonNull + tokens
			return nil
		}
		return a.addText(b, cv)
	case KindInt:
		if a.declared != TypeInteger && a.declared != TypeFloat && a.declared != "" {
			return a.inputError(b, 0, fmt.Sprintf("integer values in a %s column", a.declared))
		}
		a.num.init(a.opts.QuantileK)
		if lo, hi, ok := a.num.addInts(cv.Int[:rows], cv.Null, sketchNone); ok {
			a.addIntFreq(cv.Int[:rows], cv.Null, lo, hi)
		}
	case KindFloat:
		if a.declared != TypeInteger && a.declared != TypeFloat && a.declared != "" {
			return a.inputError(b, 0, fmt.Sprintf("float values in a %s column", a.declared))
		}
		a.sawFloat = true
		a.num.init(a.opts.QuantileK)
		a.num.addFloats(cv.Float[:rows], cv.Null)
	case KindBool:
		if a.declared != TypeBoolean && a.declared != "" {
			return a.inputError(b, 0, fmt.Sprintf("boolean values in a %s column", a.declared))
		}
		a.addBools(cv.Bool[:rows], cv.Null)
	case KindTimestamp:
		if a.declared != TypeTimestamp && a.declared != "" {
			return a.inputError(b, 0, fmt.Sprintf("timestamp values in a %s column", a.declared))
		}
		a.ts.init(a.opts.QuantileK)
		a.ts.addInts(cv.Int[:rows], cv.Null, sketchAll)
	default:
		return a.inputError(b, 0, fmt.Sprintf("unknown value kind %d", cv.Kind))
	}
	a.count += nonNull
	a.nulls += int64(rows) - nonNull
	return nil
}

// denseIntRange is the widest range of a batch's integers that addIntFreq
// counts in an array rather than a map.
const denseIntRange = 1 << 16

// addIntFreq counts a batch's integers per distinct value first — in an
// array indexed by value when their range is small, else in a map — then
// feeds the frequent-items, distinct and quantile sketches once per
// distinct value, with its count as weight.
func (a *colAcc) addIntFreq(xs []int64, null []bool, lo, hi int64) {
	a.initFreq()
	var buf [24]byte
	add := func(v, n int64) {
		a.freq.AddBytes(strconv.AppendInt(buf[:0], v, 10), n)
		a.num.hll.AddFloat(float64(v))
		a.num.qs.AddN(float64(v), n)
	}
	if span := uint64(hi) - uint64(lo); hi >= lo && span < denseIntRange {
		counts := slices.Grow(a.intCounts[:0], int(span)+1)[:span+1]
		clear(counts)
		for i, v := range xs {
			if null != nil && null[i] {
				continue
			}
			counts[v-lo]++
		}
		for d, n := range counts {
			if n > 0 {
				add(lo+int64(d), n)
			}
		}
		a.intCounts = counts
		return
	}
	if a.intIndex == nil {
		a.intIndex = make(map[int64]int32)
	}
	idx, keys, counts := a.intIndex, a.intKeys[:0], a.intCounts[:0]
	for i, v := range xs {
		if null != nil && null[i] {
			continue
		}
		j, ok := idx[v]
		if !ok {
			j = int32(len(keys))
			idx[v] = j
			keys = append(keys, v)
			counts = append(counts, 0)
		}
		counts[j]++
	}
	for j, v := range keys {
		add(v, counts[j])
	}
	clear(idx)
	a.intKeys, a.intCounts = keys, counts
}

// addBools profiles booleans as 0 and 1.
func (a *colAcc) addBools(xs []bool, null []bool) {
	a.initFreq()
	a.bl.init(a.opts.QuantileK)
	var t, f int64
	for i, v := range xs {
		if null != nil && null[i] {
			continue
		}
		if v {
			t++
		} else {
			f++
		}
	}
	a.addBoolCounts(t, f)
}

func (a *colAcc) addBoolCounts(t, f int64) {
	if f > 0 {
		a.bl.mom.Merge(stats.Moments{N: f, Mean: 0, Min: 0, Max: 0})
		a.bl.qs.AddN(0, f)
		a.freq.Add("false", f)
		a.strHLL.AddString("false")
	}
	if t > 0 {
		a.bl.mom.Merge(stats.Moments{N: t, Mean: 1, Min: 1, Max: 1})
		a.bl.qs.AddN(1, t)
		a.freq.Add("true", t)
		a.strHLL.AddString("true")
	}
}

// groupText counts a batch's text values per distinct value, in order of
// first appearance; with skipNullTokens, values that IsNullToken are left
// out and their number returned.
func (a *colAcc) groupText(xs []string, null []bool, skipNullTokens bool) (entries []textEntry, nulls int64) {
	if a.txtIndex == nil {
		a.txtIndex = make(map[string]int32)
		a.shortIndex = make(map[uint64]int32)
	}
	idx, short, seen := a.txtIndex, a.shortIndex, a.txtSeen[:0]
	for i, s := range xs {
		if null != nil && null[i] {
			continue
		}
		var j int32
		var ok bool
		if len(s) < 8 {
			// Short values (codes, categories) are looked up by an integer
			// packing their bytes and length: cheaper to hash and compare.
			k := uint64(len(s)) << 56
			for b := 0; b < len(s); b++ {
				k |= uint64(s[b]) << (8 * b)
			}
			if j, ok = short[k]; !ok {
				j = int32(len(seen))
				short[k] = j
			}
		} else if j, ok = idx[s]; !ok {
			j = int32(len(seen))
			idx[s] = j
		}
		if !ok {
			seen = append(seen, textEntry{s: s, first: i})
		}
		seen[j].n++
	}
	clear(idx)
	clear(short)
	a.txtSeen = seen
	if !skipNullTokens {
		return seen, 0
	}
	out := seen[:0]
	for _, e := range seen {
		if IsNullToken(e.s) {
			nulls += e.n
			continue
		}
		out = append(out, e)
	}
	return out, nulls
}

// addStrings profiles values of a string column; with nullTokens, values
// that IsNullToken are nulls, and their number is returned.
func (a *colAcc) addStrings(xs []string, null []bool, nullTokens bool) (tokens int64) {
	a.initFreq()
	entries, tokens := a.groupText(xs, null, nullTokens)
	for _, e := range entries {
		a.addStringEntry(e.s, e.n)
	}
	return tokens
}

// MaxFrequentValueBytes bounds the size of a value kept by a profile's
// frequent-items counter. A longer value is counted under FrequentKey's
// stand-in (its first bytes and a hash), so a column of long free text keeps
// its profile small while equal values still count together.
const MaxFrequentValueBytes = 256

// FrequentKey returns the key under which a profile counts text value s:
// s itself, or for a value longer than MaxFrequentValueBytes its first 64
// bytes (cut at a rune boundary), "…" and the first 16 hex digits of its
// SHA-256.
func FrequentKey(s string) string {
	if len(s) <= MaxFrequentValueBytes {
		return s
	}
	cut := 64
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	sum := sha256.Sum256([]byte(s))
	return s[:cut] + "…sha256:" + hex.EncodeToString(sum[:8])
}

func (a *colAcc) addStringEntry(s string, n int64) {
	// Batches may reuse the memory behind their strings: a value the
	// counter starts tracking is copied.
	key := FrequentKey(s)
	if len(key) == len(s) && a.freq.Count(s) == 0 {
		key = strings.Clone(s)
	}
	a.freq.Add(key, n)
	a.strHLL.AddString(s)
	l := int64(utf8.RuneCountInString(s))
	if !a.hasLen {
		a.minLen, a.maxLen, a.hasLen = l, l, true
	} else {
		a.minLen = min(a.minLen, l)
		a.maxLen = max(a.maxLen, l)
	}
}

// addText profiles a text column whose type is inferred or forced to a
// non-string type.
func (a *colAcc) addText(b *Batch, cv *ColumnValues) error {
	rows := b.Rows
	entries, nullTokens := a.groupText(cv.Text[:rows], cv.Null, true)
	explicit := int64(0)
	if cv.Null != nil {
		for _, isNull := range cv.Null[:rows] {
			if isNull {
				explicit++
			}
		}
	}
	a.nulls += nullTokens + explicit
	a.initFreq()
	a.num.init(a.opts.QuantileK)
	a.ts.init(a.opts.QuantileK)
	a.bl.init(a.opts.QuantileK)
	var buf [24]byte
	for _, e := range entries {
		v := ParseText(e.s)
		class := classOf(v.Type)
		if a.forced != "" && !acceptsClass(a.forced, class) {
			return a.inputError(b, e.first, fmt.Sprintf("value %q is not %s %s; fix the value or declare the column's type with --type %s=string",
				e.s, article(a.forced), a.forced, a.name))
		}
		a.count += e.n
		// Batches come in order and entries in order of first appearance,
		// so a class's first entry is its first value.
		cs := &a.classes[class]
		if cs.count == 0 {
			line, row := rowPos(b, e.first)
			cs.line, cs.row, cs.value = line, row, strings.Clone(e.s)
		}
		cs.count += e.n
		switch class {
		case classInt:
			a.num.addRepeated(float64(v.Int), e.n)
			// Frequent integers are keyed by their canonical text ("7"
			// for "007"); AddBytes copies a key it starts tracking.
			a.freq.AddBytes(strconv.AppendInt(buf[:0], v.Int, 10), e.n)
		case classFloat:
			a.num.addRepeated(v.Float, e.n)
		case classBool:
			if v.Bool {
				a.addBoolCounts(e.n, 0)
			} else {
				a.addBoolCounts(0, e.n)
			}
		case classTimestamp:
			a.ts.addRepeated(float64(v.Micros), e.n)
		default:
			a.addStringEntry(e.s, e.n)
		}
	}
	return nil
}

// acceptsClass reports whether a value of the class is a valid value of a
// column of type t.
func acceptsClass(t Type, class int) bool {
	switch t {
	case TypeString:
		return true
	case TypeInteger:
		return class == classInt
	case TypeFloat:
		return class == classInt || class == classFloat
	case TypeBoolean:
		return class == classBool
	case TypeTimestamp:
		return class == classTimestamp
	}
	return false
}

func article(t Type) string {
	if t == TypeInteger {
		return "an"
	}
	return "a"
}

// inferType decides a text column's type from the classes of its values, or
// returns the *InputError for its first value of a minority class.
func (a *colAcc) inferType() (Type, error) {
	if a.forced != "" {
		return a.forced, nil
	}
	// Integers and floats are one group: numbers.
	groups := [nClasses]int64{}
	for c, cs := range a.classes {
		g := c
		if c == classFloat {
			g = classInt
		}
		groups[g] += cs.count
	}
	major, present := -1, 0
	for g, n := range groups {
		if n == 0 {
			continue
		}
		present++
		// The larger group is the majority; on a tie, the one seen first.
		if major < 0 || n > groups[major] || (n == groups[major] && a.firstRowOfGroup(g) < a.firstRowOfGroup(major)) {
			major = g
		}
	}
	if present == 0 {
		return TypeString, nil
	}
	if present > 1 {
		var off *classSeen
		offClass := -1
		for c := range a.classes {
			cs := &a.classes[c]
			g := c
			if c == classFloat {
				g = classInt
			}
			if cs.count == 0 || g == major {
				continue
			}
			if off == nil || cs.row < off.row {
				off, offClass = cs, c
			}
		}
		majorName := classNames[major]
		if major == classInt {
			majorName = "numeric"
			if a.classes[classFloat].count == 0 {
				majorName = "integer"
			}
		}
		row := off.row
		if off.line > 0 {
			row = 0
		}
		return "", &InputError{File: a.file, Line: off.line, Row: row, Column: a.name,
			Msg: fmt.Sprintf("mixed types: value %q is %s but %d of the column's %d values are %s; declare its type with --type %s=string",
				off.value, describeClass(offClass), groups[major], a.count, majorName, a.name)}
	}
	switch major {
	case classInt:
		if a.classes[classFloat].count > 0 {
			return TypeFloat, nil
		}
		return TypeInteger, nil
	case classBool:
		return TypeBoolean, nil
	case classTimestamp:
		return TypeTimestamp, nil
	}
	return TypeString, nil
}

func describeClass(c int) string {
	switch c {
	case classInt:
		return "an integer"
	case classFloat:
		return "a number"
	case classString:
		return "not a number, boolean or timestamp"
	}
	return "a " + classNames[c]
}

func (a *colAcc) firstRowOfGroup(g int) int64 {
	r := a.classes[g].row
	if g == classInt && a.classes[classFloat].count > 0 && (a.classes[classInt].count == 0 || a.classes[classFloat].row < r) {
		r = a.classes[classFloat].row
	}
	return r
}

// finish builds the column's profile (without summaries).
func (a *colAcc) finish() (*ColumnProfile, error) {
	t := a.declared
	if t == "" {
		var err error
		if t, err = a.inferType(); err != nil {
			return nil, err
		}
	} else if t == TypeInteger && a.sawFloat {
		t = TypeFloat
	}
	c := &ColumnProfile{Name: a.name, Type: t, Count: a.count, Nulls: a.nulls}
	numeric := func(acc *numAcc) {
		if acc.qs == nil {
			acc.init(a.opts.QuantileK)
		}
		m := acc.mom
		c.Moments = &m
		c.QuantileSketch = acc.qs
		c.DistinctSketch = acc.hll
		c.NaN, c.Inf = acc.nan, acc.inf
	}
	switch t {
	case TypeInteger, TypeFloat:
		numeric(&a.num)
		if t == TypeInteger {
			a.initFreq()
			c.Frequent = a.freq
		}
	case TypeTimestamp:
		numeric(&a.ts)
	case TypeBoolean:
		numeric(&a.bl)
		a.initFreq()
		c.Frequent = a.freq
		c.DistinctSketch = a.strHLL
	default: // string
		a.initFreq()
		c.Frequent = a.freq
		c.DistinctSketch = a.strHLL
		if a.hasLen {
			lo, hi := a.minLen, a.maxLen
			c.MinLength, c.MaxLength = &lo, &hi
		}
	}
	return c, nil
}

// summarize recomputes a column's summary fields from its sketches; bins is
// the histogram's number of bins.
func summarize(c *ColumnProfile, bins int) {
	c.Min, c.Max, c.Mean, c.Std = nil, nil, nil, nil
	c.Quantiles, c.Histogram, c.Top = nil, nil, nil
	if m := c.Moments; m != nil && m.N > 0 {
		lo, hi, mean, std := m.Min, m.Max, m.Mean, m.Std()
		c.Min, c.Max, c.Mean, c.Std = &lo, &hi, &mean, &std
	}
	if q := c.QuantileSketch; q != nil && q.Count() > 0 {
		c.Quantiles = make(map[string]float64, len(ProfileQuantiles))
		for _, pq := range ProfileQuantiles {
			c.Quantiles[pq.Key] = q.Quantile(pq.Q)
		}
		if c.Type != TypeBoolean {
			c.Histogram = sketchEqualWidth(q, bins)
		}
	}
	switch {
	case c.Frequent != nil && c.Frequent.Exact():
		items := c.Frequent.Items()
		c.Distinct = int64(len(items))
		c.Top = items[:min(len(items), TopValues)]
	case c.Frequent != nil:
		items := c.Frequent.Items()
		c.Top = items[:min(len(items), TopValues)]
		c.Distinct = c.DistinctSketch.Estimate()
	case c.DistinctSketch != nil:
		c.Distinct = c.DistinctSketch.Estimate()
	default:
		c.Distinct = 0
	}
	if c.Top != nil {
		c.Top = append([]stats.ItemCount(nil), c.Top...)
	}
}

// sketchEqualWidth estimates an equal-width histogram between the sketch's
// exact minimum and maximum from its CDF; the first bin includes the
// minimum, every bin its upper edge.
func sketchEqualWidth(q *stats.QuantileSketch, bins int) *Histogram {
	lo, hi := q.Min(), q.Max()
	n := float64(q.Count())
	if lo == hi {
		return &Histogram{Edges: []float64{lo, hi}, Counts: []float64{n}}
	}
	h := &Histogram{Edges: make([]float64, bins+1), Counts: make([]float64, bins)}
	w := (hi - lo) / float64(bins)
	for i := range h.Edges {
		h.Edges[i] = lo + w*float64(i)
	}
	h.Edges[bins] = hi
	// Rounding cumulative counts keeps the total exactly n.
	prev := 0.0
	for i := range bins {
		cum := n
		if i < bins-1 {
			cum = math.Round(n * q.CDF(h.Edges[i+1]))
		}
		h.Counts[i] = max(cum-prev, 0)
		prev = max(prev, cum)
	}
	return h
}

// Merge adds o (a profile of other rows with the same columns) to p. Columns
// present in only one side keep their statistics, and the missing side counts
// as nulls; incompatible types (string against numeric) are an error.
//
// Integer merged with float is float (the integer side's frequent counts
// are dropped, as float columns have none); a column with no non-null value
// on one side takes the other side's type. On error p is unchanged. o is
// never modified, and p shares none of o's sketches afterwards.
func (p *Profile) Merge(o *Profile) error {
	if o == nil {
		return nil
	}
	if o == p {
		self := &Profile{Rows: p.Rows}
		for _, c := range p.Columns {
			self.Columns = append(self.Columns, cloneColumn(c))
		}
		o = self
	}
	for _, oc := range o.Columns {
		if pc := p.Column(oc.Name); pc != nil {
			if _, err := mergedType(pc, oc); err != nil {
				return err
			}
		}
	}
	pRows := p.Rows
	for _, pc := range p.Columns {
		if o.Column(pc.Name) == nil {
			pc.Nulls += o.Rows
		}
	}
	for _, oc := range o.Columns {
		pc := p.Column(oc.Name)
		if pc == nil {
			cp := cloneColumn(oc)
			cp.Nulls += pRows
			summarize(cp, histogramBins(oc))
			p.Columns = append(p.Columns, cp)
			continue
		}
		if err := mergeColumn(pc, oc); err != nil {
			return err
		}
	}
	p.Rows += o.Rows
	return nil
}

// mergedType returns the type of two merged columns.
func mergedType(a, b *ColumnProfile) (Type, error) {
	switch {
	case a.Type == b.Type:
		return a.Type, nil
	case a.Count == 0:
		return b.Type, nil
	case b.Count == 0:
		return a.Type, nil
	case (a.Type == TypeInteger && b.Type == TypeFloat) || (a.Type == TypeFloat && b.Type == TypeInteger):
		return TypeFloat, nil
	}
	return "", fmt.Errorf("merge profiles: column %q is %s on one side and %s on the other", a.Name, a.Type, b.Type)
}

func histogramBins(c *ColumnProfile) int {
	if c.Histogram != nil && len(c.Histogram.Counts) > 1 {
		return len(c.Histogram.Counts)
	}
	return DefaultHistogramBins
}

// cloneColumn deep-copies a column profile's counts and sketches; the
// caller recomputes its summaries.
func cloneColumn(c *ColumnProfile) *ColumnProfile {
	cp := *c
	if c.Moments != nil {
		m := *c.Moments
		cp.Moments = &m
	}
	if c.QuantileSketch != nil {
		cp.QuantileSketch = c.QuantileSketch.Clone()
	}
	if c.Frequent != nil {
		cp.Frequent = c.Frequent.Clone()
	}
	if c.DistinctSketch != nil {
		cp.DistinctSketch = c.DistinctSketch.Clone()
	}
	if c.MinLength != nil {
		v := *c.MinLength
		cp.MinLength = &v
	}
	if c.MaxLength != nil {
		v := *c.MaxLength
		cp.MaxLength = &v
	}
	return &cp
}

// mergeColumn adds src's statistics to dst.
func mergeColumn(dst, src *ColumnProfile) error {
	t, err := mergedType(dst, src)
	if err != nil {
		return err
	}
	bins := histogramBins(dst)
	if dst.Histogram == nil {
		bins = histogramBins(src)
	}
	// A side with no values and another type: its sketches say nothing.
	if dst.Type != src.Type && dst.Count == 0 && src.Count > 0 {
		cp := cloneColumn(src)
		cp.Nulls += dst.Nulls
		*dst = *cp
		summarize(dst, bins)
		return nil
	}
	if dst.Type != src.Type && src.Count == 0 {
		dst.Nulls += src.Nulls
		return nil
	}
	dst.Type = t
	dst.Count += src.Count
	dst.Nulls += src.Nulls
	dst.NaN += src.NaN
	dst.Inf += src.Inf
	if src.Moments != nil {
		if dst.Moments == nil {
			dst.Moments = &stats.Moments{}
		}
		dst.Moments.Merge(*src.Moments)
	}
	switch {
	case src.QuantileSketch == nil:
	case dst.QuantileSketch == nil:
		dst.QuantileSketch = src.QuantileSketch.Clone()
	default:
		dst.QuantileSketch.Merge(src.QuantileSketch)
	}
	switch {
	case src.DistinctSketch == nil:
	case dst.DistinctSketch == nil:
		dst.DistinctSketch = src.DistinctSketch.Clone()
	default:
		dst.DistinctSketch.Merge(src.DistinctSketch)
	}
	switch {
	case t == TypeFloat:
		dst.Frequent = nil
	case src.Frequent == nil:
	case dst.Frequent == nil:
		dst.Frequent = src.Frequent.Clone()
	default:
		dst.Frequent.Merge(src.Frequent)
	}
	if src.MinLength != nil {
		if dst.MinLength == nil || *src.MinLength < *dst.MinLength {
			v := *src.MinLength
			dst.MinLength = &v
		}
	}
	if src.MaxLength != nil {
		if dst.MaxLength == nil || *src.MaxLength > *dst.MaxLength {
			v := *src.MaxLength
			dst.MaxLength = &v
		}
	}
	summarize(dst, bins)
	return nil
}

// Check reports the first inconsistency of a profile that did not come from
// this process (a client's push): a negative or mismatched count, a duplicate
// or unnamed column, an unknown type, or a numeric column without the sketch
// that validation and drift read. Profiles built by Profiler pass.
func (p *Profile) Check() error {
	if p.Rows < 0 {
		return fmt.Errorf("rows is negative (%d)", p.Rows)
	}
	seen := make(map[string]bool, len(p.Columns))
	for i, c := range p.Columns {
		if c == nil || c.Name == "" {
			return fmt.Errorf("column %d has no name", i+1)
		}
		if seen[c.Name] {
			return fmt.Errorf("column %q appears twice", c.Name)
		}
		seen[c.Name] = true
		switch c.Type {
		case TypeInteger, TypeFloat, TypeBoolean, TypeString, TypeTimestamp:
		default:
			return fmt.Errorf("column %q has unknown type %q", c.Name, c.Type)
		}
		if c.Count < 0 || c.Nulls < 0 || c.NaN < 0 || c.Inf < 0 {
			return fmt.Errorf("column %q has a negative count", c.Name)
		}
		if c.Count+c.Nulls != p.Rows {
			return fmt.Errorf("column %q counts %d values and %d nulls, not the profile's %d rows", c.Name, c.Count, c.Nulls, p.Rows)
		}
		if c.NaN+c.Inf > c.Count {
			return fmt.Errorf("column %q has more NaN and infinite values than values", c.Name)
		}
		finite := c.Count - c.NaN - c.Inf
		numeric := c.Type == TypeInteger || c.Type == TypeFloat || c.Type == TypeTimestamp
		if numeric && finite > 0 && c.QuantileSketch == nil {
			return fmt.Errorf("column %q (%s) has no quantile sketch", c.Name, c.Type)
		}
		if c.QuantileSketch != nil && numeric && c.QuantileSketch.Count() != finite {
			return fmt.Errorf("column %q: its quantile sketch holds %d values, not the %d finite ones", c.Name, c.QuantileSketch.Count(), finite)
		}
	}
	return nil
}
