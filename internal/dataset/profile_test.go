package dataset

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/mloop/mloop/internal/realdata"
	"github.com/mloop/mloop/internal/stats"
)

// textBatches splits text rows (header first) into batches of at most size
// rows, as a CSV reader delivers them: line 1 is the header.
func textBatches(rows [][]string, size int) ([]Column, []*Batch) {
	cols := make([]Column, len(rows[0]))
	for i, name := range rows[0] {
		cols[i] = Column{Name: name}
	}
	var bs []*Batch
	data := rows[1:]
	for start := 0; start < len(data); start += size {
		end := min(start+size, len(data))
		b := &Batch{Rows: end - start, FirstRow: int64(start + 1), Cols: make([]ColumnValues, len(cols))}
		for i := start; i < end; i++ {
			b.Lines = append(b.Lines, int64(i+2))
		}
		for c := range cols {
			cv := ColumnValues{Kind: KindText}
			for i := start; i < end; i++ {
				cv.Text = append(cv.Text, data[i][c])
			}
			b.Cols[c] = cv
		}
		bs = append(bs, b)
	}
	return cols, bs
}

// profileText profiles text rows (header first) in batches of size rows.
func profileText(rows [][]string, size int, opts ProfileOptions) (*Profile, error) {
	cols, bs := textBatches(rows, size)
	p := NewProfiler("test.csv", cols, opts)
	for _, b := range bs {
		if err := p.Add(b); err != nil {
			return nil, err
		}
	}
	return p.Finish()
}

// column builds text rows of one column named c.
func column(values ...string) [][]string {
	rows := [][]string{{"c"}}
	for _, v := range values {
		rows = append(rows, []string{v})
	}
	return rows
}

func mustProfileText(t testing.TB, rows [][]string, size int, opts ProfileOptions) *Profile {
	t.Helper()
	p, err := profileText(rows, size, opts)
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	return p
}

func TestProfileInfersTextTypes(t *testing.T) {
	tests := []struct {
		name   string
		values []string
		want   Type
	}{
		{"integers", []string{"12", "-7", "0", "", "300"}, TypeInteger},
		{"integers and floats", []string{"1", "2.5", "", "-3e2", "4"}, TypeFloat},
		{"floats with NaN", []string{"1.5", "NaN", "2"}, TypeFloat},
		{"booleans", []string{"true", "false", "", "true"}, TypeBoolean},
		{"dates", []string{"2012-01-01", "2012-01-02", "", "2015-12-31"}, TypeTimestamp},
		{"words", []string{"sun", "rain", "", "fog"}, TypeString},
		{"only nulls", []string{"", "", ""}, TypeString},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1, 2, 100} {
				p := mustProfileText(t, column(tt.values...), size, ProfileOptions{})
				if got := p.Columns[0].Type; got != tt.want {
					t.Errorf("batch size %d: type got %s, want %s", size, got, tt.want)
				}
				nulls := int64(0)
				for _, v := range tt.values {
					if IsNullToken(v) {
						nulls++
					}
				}
				c := p.Columns[0]
				if c.Nulls != nulls || c.Count != int64(len(tt.values))-nulls {
					t.Errorf("batch size %d: count, nulls got %d, %d, want %d, %d", size, c.Count, c.Nulls, int64(len(tt.values))-nulls, nulls)
				}
			}
		})
	}
}

func TestProfileMixedTypesNameTheMinority(t *testing.T) {
	tests := []struct {
		name     string
		values   []string
		wantLine int64
		wantVal  string
	}{
		// Line 1 is the header, so the i-th value is on line i+2.
		{"word among numbers", []string{"12", "7", "abc", "9"}, 4, `"abc"`},
		{"number among words", []string{"abc", "def", "12", "ghi", "7"}, 4, `"12"`},
		{"first word wins", []string{"1", "2", "3", "x", "4", "y", "5"}, 5, `"x"`},
		{"timestamp among integers", []string{"2012", "2013", "2014-01-01"}, 4, `"2014-01-01"`},
		{"boolean among words", []string{"yes-ish", "true", "other", "more"}, 3, `"true"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, size := range []int{1, 3, 100} {
				_, err := profileText(column(tt.values...), size, ProfileOptions{})
				var ie *InputError
				if !errors.As(err, &ie) {
					t.Fatalf("batch size %d: error got %v, want *InputError", size, err)
				}
				if ie.File != "test.csv" || ie.Line != tt.wantLine || ie.Column != "c" {
					t.Errorf("batch size %d: got file %q line %d column %q, want test.csv line %d column c", size, ie.File, ie.Line, ie.Column, tt.wantLine)
				}
				for _, want := range []string{tt.wantVal, "--type c=string"} {
					if !strings.Contains(ie.Msg, want) {
						t.Errorf("batch size %d: message %q does not contain %s", size, ie.Msg, want)
					}
				}
			}
		})
	}
}

func TestProfileForcedTypes(t *testing.T) {
	mixed := column("12", "7", "", "abc", "NA")
	p := mustProfileText(t, mixed, 2, ProfileOptions{Types: map[string]Type{"c": TypeString}})
	c := p.Columns[0]
	if c.Type != TypeString || c.Distinct != 3 || *c.MinLength != 1 || *c.MaxLength != 3 || c.Count != 3 || c.Nulls != 2 {
		t.Errorf("forced string: got type %s distinct %d lengths %d..%d count %d nulls %d, want string 3 1..3 3 2",
			c.Type, c.Distinct, *c.MinLength, *c.MaxLength, c.Count, c.Nulls)
	}
	if _, err := profileText(mixed, 2, ProfileOptions{Types: map[string]Type{"c": "decimal"}}); err == nil || !strings.Contains(err.Error(), `unknown type "decimal"`) {
		t.Errorf("forced unknown type: error got %v, want unknown type", err)
	}
	p = mustProfileText(t, column("1", "2.5"), 2, ProfileOptions{Types: map[string]Type{"c": TypeFloat}})
	if got := p.Columns[0].Type; got != TypeFloat {
		t.Errorf("forced float: type got %s, want float", got)
	}
	_, err := profileText(column("1", "2", "2.5", "3"), 2, ProfileOptions{Types: map[string]Type{"c": TypeInteger}})
	var ie *InputError
	if !errors.As(err, &ie) || ie.Line != 4 || !strings.Contains(ie.Msg, `"2.5"`) {
		t.Errorf("forced integer with 2.5 on line 4: got %v", err)
	}
}

// refStats holds exact statistics of a slice of finite values.
type refStats struct {
	sorted    []float64
	mean, std float64
}

func newRefStats(xs []float64) refStats {
	s := slices.Clone(xs)
	slices.Sort(s)
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	mean := sum / float64(len(s))
	ss := 0.0
	for _, x := range s {
		ss += (x - mean) * (x - mean)
	}
	return refStats{sorted: s, mean: mean, std: math.Sqrt(ss / float64(len(s)))}
}

// rankRange returns the fractions of values < x and ≤ x.
func (r refStats) rankRange(x float64) (float64, float64) {
	lo, _ := slices.BinarySearch(r.sorted, x)
	hi := lo
	for hi < len(r.sorted) && r.sorted[hi] == x {
		hi++
	}
	n := float64(len(r.sorted))
	return float64(lo) / n, float64(hi) / n
}

// checkQuantiles checks that every reported quantile's rank is within eps
// of the quantile asked for.
func checkQuantiles(t *testing.T, c *ColumnProfile, ref refStats, eps float64) {
	t.Helper()
	for _, pq := range ProfileQuantiles {
		got, ok := c.Quantiles[pq.Key]
		if !ok {
			t.Errorf("%s: quantile %s missing", c.Name, pq.Key)
			continue
		}
		lo, hi := ref.rankRange(got)
		if pq.Q < lo-eps || pq.Q > hi+eps {
			t.Errorf("%s: %s got %g with rank in [%.4f, %.4f], want within %.4f of %g", c.Name, pq.Key, got, lo, hi, eps, pq.Q)
		}
	}
}

func closeRel(a, b, tol float64) bool {
	return math.Abs(a-b) <= tol*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func TestProfileNumericStatistics(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var vals []string
	var finite []float64
	nulls, nans, infs := 0, 0, 0
	for i := range 20000 {
		switch {
		case i%97 == 0:
			vals = append(vals, "")
			nulls++
		case i%331 == 0:
			vals = append(vals, "NaN")
			nans++
		case i%1009 == 0:
			vals = append(vals, "-Inf")
			infs++
		default:
			x := math.Round(r.NormFloat64()*1000) / 100
			vals = append(vals, strconv.FormatFloat(x, 'f', -1, 64))
			finite = append(finite, x)
		}
	}
	p := mustProfileText(t, column(vals...), 4096, ProfileOptions{})
	c := p.Columns[0]
	ref := newRefStats(finite)
	if c.Type != TypeFloat {
		t.Fatalf("type got %s, want float", c.Type)
	}
	if p.Rows != 20000 || c.Nulls != int64(nulls) || c.NaN != int64(nans) || c.Inf != int64(infs) || c.Count != int64(20000-nulls) {
		t.Errorf("rows, count, nulls, nan, inf got %d %d %d %d %d, want 20000 %d %d %d %d", p.Rows, c.Count, c.Nulls, c.NaN, c.Inf, 20000-nulls, nulls, nans, infs)
	}
	if *c.Min != ref.sorted[0] || *c.Max != ref.sorted[len(ref.sorted)-1] {
		t.Errorf("min, max got %g %g, want %g %g", *c.Min, *c.Max, ref.sorted[0], ref.sorted[len(ref.sorted)-1])
	}
	if !closeRel(*c.Mean, ref.mean, 1e-12) || !closeRel(*c.Std, ref.std, 1e-12) {
		t.Errorf("mean, std got %.15g %.15g, want %.15g %.15g", *c.Mean, *c.Std, ref.mean, ref.std)
	}
	checkQuantiles(t, c, ref, c.QuantileSketch.RankError())
	if c.Frequent != nil || c.Top != nil {
		t.Errorf("float column has frequent values %v, want none", c.Top)
	}
	distinct := int64(len(slices.Compact(slices.Clone(ref.sorted))))
	if d := math.Abs(float64(c.Distinct-distinct)) / float64(distinct); d > 0.05 {
		t.Errorf("distinct got %d, want %d within 5%%", c.Distinct, distinct)
	}
	h := c.Histogram
	if len(h.Counts) != DefaultHistogramBins || len(h.Edges) != DefaultHistogramBins+1 || h.Edges[0] != *c.Min || h.Edges[DefaultHistogramBins] != *c.Max {
		t.Fatalf("histogram got %d bins edges %g..%g, want %d bins from min to max", len(h.Counts), h.Edges[0], h.Edges[len(h.Edges)-1], DefaultHistogramBins)
	}
	total := 0.0
	eps := c.QuantileSketch.RankError() * float64(len(finite))
	for i, n := range h.Counts {
		total += n
		var exact int
		for _, x := range finite {
			if (x > h.Edges[i] || i == 0 && x == h.Edges[0]) && x <= h.Edges[i+1] {
				exact++
			}
		}
		if math.Abs(n-float64(exact)) > 2*eps+1 {
			t.Errorf("histogram bin %d got %g, want %d within %g", i, n, exact, 2*eps+1)
		}
	}
	if total != float64(len(finite)) {
		t.Errorf("histogram total got %g, want %d", total, len(finite))
	}
}

func TestProfileTypedColumns(t *testing.T) {
	cols := []Column{{"i", TypeInteger}, {"f", TypeFloat}, {"b", TypeBoolean}, {"ts", TypeTimestamp}, {"s", TypeString}}
	base := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	b := &Batch{Rows: 6, FirstRow: 1, Cols: []ColumnValues{
		{Kind: KindInt, Int: []int64{3, 1, 3, 0, 7, 3}, Null: []bool{false, false, false, true, false, false}},
		{Kind: KindFloat, Float: []float64{0.5, math.NaN(), math.Inf(1), 2.5, -1, 0}},
		{Kind: KindBool, Bool: []bool{true, false, true, true, false, false}, Null: []bool{false, false, false, false, false, true}},
		{Kind: KindTimestamp, Int: []int64{base, base + 60e6, base + 120e6, base, base, base}},
		{Kind: KindText, Text: []string{"JFK", "SEA", "JFK", "", "héllo", "JFK"}, Null: []bool{false, false, false, true, false, false}},
	}}
	p := NewProfiler("t.parquet", cols, ProfileOptions{})
	if err := p.Add(b); err != nil {
		t.Fatal(err)
	}
	prof, err := p.Finish()
	if err != nil {
		t.Fatal(err)
	}
	i := prof.Column("i")
	if i.Type != TypeInteger || i.Count != 5 || i.Nulls != 1 || *i.Min != 1 || *i.Max != 7 || *i.Mean != 17.0/5 || i.Distinct != 3 {
		t.Errorf("integer column got %s count %d nulls %d min %g max %g mean %g distinct %d, want integer 5 1 1 7 3.4 3",
			i.Type, i.Count, i.Nulls, *i.Min, *i.Max, *i.Mean, i.Distinct)
	}
	if want := []stats.ItemCount{{Value: "3", Count: 3}, {Value: "1", Count: 1}, {Value: "7", Count: 1}}; !slices.Equal(i.Top, want) {
		t.Errorf("integer top got %v, want %v", i.Top, want)
	}
	f := prof.Column("f")
	if f.Count != 6 || f.NaN != 1 || f.Inf != 1 || *f.Min != -1 || *f.Max != 2.5 || *f.Mean != 0.5 || f.Moments.N != 4 || f.Frequent != nil {
		t.Errorf("float column got count %d nan %d inf %d min %g max %g mean %g n %d frequent %v, want 6 1 1 -1 2.5 0.5 4 nil",
			f.Count, f.NaN, f.Inf, *f.Min, *f.Max, *f.Mean, f.Moments.N, f.Frequent)
	}
	bl := prof.Column("b")
	if bl.Count != 5 || *bl.Mean != 0.6 || bl.Distinct != 2 || bl.Histogram != nil {
		t.Errorf("boolean column got count %d mean %g distinct %d histogram %v, want 5 0.6 2 nil", bl.Count, *bl.Mean, bl.Distinct, bl.Histogram)
	}
	if want := []stats.ItemCount{{Value: "true", Count: 3}, {Value: "false", Count: 2}}; !slices.Equal(bl.Top, want) {
		t.Errorf("boolean top got %v, want %v", bl.Top, want)
	}
	ts := prof.Column("ts")
	if ts.Type != TypeTimestamp || *ts.Min != float64(base) || *ts.Max != float64(base+120e6) || ts.Distinct != 3 || ts.Frequent != nil {
		t.Errorf("timestamp column got %s min %g max %g distinct %d, want timestamp %d %d 3", ts.Type, *ts.Min, *ts.Max, ts.Distinct, base, base+120e6)
	}
	s := prof.Column("s")
	if s.Count != 5 || s.Nulls != 1 || s.Distinct != 3 || *s.MinLength != 3 || *s.MaxLength != 5 || s.Moments != nil {
		t.Errorf("string column got count %d nulls %d distinct %d lengths %d..%d, want 5 1 3 3..5 (runes)", s.Count, s.Nulls, s.Distinct, *s.MinLength, *s.MaxLength)
	}
	if s.Top[0] != (stats.ItemCount{Value: "JFK", Count: 3}) {
		t.Errorf("string top got %v, want JFK×3 first", s.Top)
	}
}

// TestProfileKeepsNoBatchMemory checks that string values are copied: the
// batch's backing memory is reused by readers.
func TestProfileKeepsNoBatchMemory(t *testing.T) {
	buf := []byte("aaabbb")
	b := &Batch{Rows: 2, FirstRow: 1, Cols: []ColumnValues{{Kind: KindText,
		Text: []string{unsafeString(buf[:3]), unsafeString(buf[3:])}}}}
	p := NewProfiler("t", []Column{{"s", TypeString}}, ProfileOptions{})
	if err := p.Add(b); err != nil {
		t.Fatal(err)
	}
	copy(buf, "xxxxxx")
	prof, err := p.Finish()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range prof.Columns[0].Top {
		got = append(got, it.Value)
	}
	if want := []string{"aaa", "bbb"}; !slices.Equal(got, want) {
		t.Errorf("top values got %q, want %q", got, want)
	}
}

// unsafeString aliases b's bytes, as fast readers do.
func unsafeString(b []byte) string { return unsafe.String(&b[0], len(b)) }

func TestProfileFrequentLimitBoundsMemory(t *testing.T) {
	var vals []string
	for i := range 5000 {
		vals = append(vals, "id-"+strconv.Itoa(i))
	}
	p := mustProfileText(t, column(vals...), 1000, ProfileOptions{FrequentLimit: 100})
	c := p.Columns[0]
	if c.Frequent.Exact() || len(c.Frequent.Items()) > 100 {
		t.Errorf("frequent got exact %v with %d items, want inexact with at most 100", c.Frequent.Exact(), len(c.Frequent.Items()))
	}
	if d := math.Abs(float64(c.Distinct)-5000) / 5000; d > 0.05 {
		t.Errorf("distinct got %d, want 5000 within 5%%", c.Distinct)
	}
}

// syntheticRows returns text rows with an integer, a float, a categorical and
// a sparse column, for merge tests.
func syntheticRows(seed uint64, n int) [][]string {
	r := rand.New(rand.NewPCG(seed, 7))
	rows := [][]string{{"id", "x", "cat", "sparse"}}
	cats := []string{"red", "green", "blue", "violet"}
	for i := range n {
		sparse := ""
		if r.IntN(10) == 0 {
			sparse = strconv.Itoa(r.IntN(5))
		}
		rows = append(rows, []string{
			strconv.Itoa(r.IntN(1000)),
			strconv.FormatFloat(r.ExpFloat64()*10, 'g', 6, 64),
			cats[r.IntN(len(cats))] + strings.Repeat("!", i%3),
			sparse,
		})
	}
	return rows
}

func TestProfileMergeOfHalvesMatchesWhole(t *testing.T) {
	rows := syntheticRows(3, 30000)
	whole := mustProfileText(t, rows, 4096, ProfileOptions{})
	first := mustProfileText(t, rows[:15001], 4096, ProfileOptions{})
	second := mustProfileText(t, append([][]string{rows[0]}, rows[15001:]...), 4096, ProfileOptions{})
	secondJSON, _ := json.Marshal(second)
	if err := first.Merge(second); err != nil {
		t.Fatal(err)
	}
	if after, _ := json.Marshal(second); string(after) != string(secondJSON) {
		t.Error("merge modified its argument")
	}
	if first.Rows != whole.Rows {
		t.Errorf("rows got %d, want %d", first.Rows, whole.Rows)
	}
	for _, w := range whole.Columns {
		g := first.Column(w.Name)
		if g.Type != w.Type || g.Count != w.Count || g.Nulls != w.Nulls || g.Distinct != w.Distinct ||
			!slices.Equal(g.Top, w.Top) || !eqPtr(g.Min, w.Min) || !eqPtr(g.Max, w.Max) ||
			!eqPtr(g.MinLength, w.MinLength) || !eqPtr(g.MaxLength, w.MaxLength) {
			t.Errorf("%s: merged got type %s count %d nulls %d distinct %d top %v, want %s %d %d %d %v",
				w.Name, g.Type, g.Count, g.Nulls, g.Distinct, g.Top, w.Type, w.Count, w.Nulls, w.Distinct, w.Top)
		}
		if w.Mean != nil && (!closeRel(*g.Mean, *w.Mean, 1e-12) || !closeRel(*g.Std, *w.Std, 1e-12)) {
			t.Errorf("%s: merged mean, std got %g %g, want %g %g", w.Name, *g.Mean, *g.Std, *w.Mean, *w.Std)
		}
		if w.QuantileSketch != nil {
			var xs []float64
			ci := slices.Index(rows[0], w.Name)
			for _, r := range rows[1:] {
				if x, err := strconv.ParseFloat(r[ci], 64); err == nil {
					xs = append(xs, x)
				}
			}
			checkQuantiles(t, g, newRefStats(xs), g.QuantileSketch.RankError())
		}
	}
}

func eqPtr[T comparable](a, b *T) bool {
	return (a == nil) == (b == nil) && (a == nil || *a == *b)
}

func TestProfileMergeTypesAndMissingColumns(t *testing.T) {
	ints := mustProfileText(t, [][]string{{"a", "only_left"}, {"1", "x"}, {"2", "y"}}, 10, ProfileOptions{})
	floats := mustProfileText(t, [][]string{{"a", "only_right"}, {"2.5", "7"}}, 10, ProfileOptions{})
	if err := ints.Merge(floats); err != nil {
		t.Fatal(err)
	}
	a := ints.Column("a")
	if a.Type != TypeFloat || a.Count != 3 || *a.Max != 2.5 || a.Frequent != nil {
		t.Errorf("integer+float got %s count %d max %g frequent %v, want float 3 2.5 nil", a.Type, a.Count, *a.Max, a.Frequent)
	}
	if l, r := ints.Column("only_left"), ints.Column("only_right"); l.Nulls != 1 || l.Count != 2 || r.Nulls != 2 || r.Count != 1 {
		t.Errorf("one-sided columns got left %d/%d right %d/%d nulls/count, want 1/2 and 2/1", l.Nulls, l.Count, r.Nulls, r.Count)
	}
	strs := mustProfileText(t, [][]string{{"a"}, {"abc"}}, 10, ProfileOptions{})
	before, _ := json.Marshal(ints)
	err := ints.Merge(strs)
	if err == nil || !strings.Contains(err.Error(), `"a"`) {
		t.Errorf("float+string merge error got %v, want one naming column a", err)
	}
	if after, _ := json.Marshal(ints); string(after) != string(before) {
		t.Error("failed merge changed the profile")
	}
	twice := mustProfileText(t, [][]string{{"a"}, {"1"}, {"3"}}, 10, ProfileOptions{})
	if err := twice.Merge(twice); err != nil || twice.Rows != 4 || twice.Columns[0].Count != 4 || *twice.Columns[0].Mean != 2 || twice.Columns[0].Top[0].Count != 2 {
		t.Errorf("self merge got %v rows %d count %d, want 4 rows of mean 2 with each value twice", err, twice.Rows, twice.Columns[0].Count)
	}
	empty := mustProfileText(t, [][]string{{"a"}, {""}}, 10, ProfileOptions{})
	if err := empty.Merge(strs); err != nil || empty.Column("a").Type != TypeString || empty.Column("a").Nulls != 1 {
		t.Errorf("all-null column merged with strings got %v, want string with 1 null", err)
	}
}

func TestProfileJSONRoundTrip(t *testing.T) {
	rows := syntheticRows(5, 5000)
	p := mustProfileText(t, rows, 1024, ProfileOptions{})
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var restored Profile
	if err := json.Unmarshal(data, &restored); err != nil {
		t.Fatal(err)
	}
	if again, _ := json.Marshal(&restored); string(again) != string(data) {
		t.Error("JSON of the restored profile differs from the original's")
	}
	other := mustProfileText(t, syntheticRows(6, 3000), 1024, ProfileOptions{})
	orig := mustProfileText(t, rows, 1024, ProfileOptions{})
	if err := orig.Merge(other); err != nil {
		t.Fatal(err)
	}
	if err := restored.Merge(other); err != nil {
		t.Fatal(err)
	}
	for _, o := range orig.Columns {
		r := restored.Column(o.Name)
		if r.Count != o.Count || r.Distinct != o.Distinct || !slices.Equal(r.Top, o.Top) || !eqPtr(r.Min, o.Min) || !eqPtr(r.Max, o.Max) {
			t.Errorf("%s: restored+merged got count %d distinct %d min %v, want %d %d %v", o.Name, r.Count, r.Distinct, r.Min, o.Count, o.Distinct, o.Min)
		}
		if o.Mean != nil && !closeRel(*r.Mean, *o.Mean, 1e-12) {
			t.Errorf("%s: mean got %g, want %g", o.Name, *r.Mean, *o.Mean)
		}
		for k, q := range o.Quantiles {
			eps := o.QuantileSketch.RankError()
			if rq := r.Quantiles[k]; math.Abs(o.QuantileSketch.CDF(rq)-o.QuantileSketch.CDF(q)) > 2*eps {
				t.Errorf("%s: %s got %g, want %g within rank error", o.Name, k, rq, q)
			}
		}
	}
}

func TestProfileParallelMatchesSequential(t *testing.T) {
	rows := syntheticRows(9, 40000)
	par := mustProfileText(t, rows, 8192, ProfileOptions{})
	cols, bs := textBatches(rows, 8192)
	sp := NewProfiler("test.csv", cols, ProfileOptions{})
	sp.workers = 1
	for _, b := range bs {
		if err := sp.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	seq, err := sp.Finish()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range seq.Columns {
		p := par.Column(s.Name)
		if p.Type != s.Type || p.Count != s.Count || p.Distinct != s.Distinct || !slices.Equal(p.Top, s.Top) || !eqPtr(p.Mean, s.Mean) {
			t.Errorf("%s: parallel got %s %d %d, sequential %s %d %d", s.Name, p.Type, p.Count, p.Distinct, s.Type, s.Count, s.Distinct)
		}
	}
}

func TestProfileSeattleWeather(t *testing.T) {
	path := realdata.Path(t, "seattle-weather.csv")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	r, err := OpenFile(context.Background(), path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := ProfileReader(context.Background(), path, r, ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantTypes := map[string]Type{"date": TypeTimestamp, "precipitation": TypeFloat, "temp_max": TypeFloat,
		"temp_min": TypeFloat, "wind": TypeFloat, "weather": TypeString}
	if p.Rows != int64(len(records)-1) {
		t.Errorf("rows got %d, want %d", p.Rows, len(records)-1)
	}
	for ci, name := range records[0] {
		c := p.Column(name)
		if c == nil || c.Type != wantTypes[name] {
			t.Errorf("column %s: got %+v, want type %s", name, c, wantTypes[name])
			continue
		}
		if c.Type != TypeFloat {
			continue
		}
		var xs []float64
		for _, rec := range records[1:] {
			x, err := strconv.ParseFloat(rec[ci], 64)
			if err != nil {
				t.Fatal(err)
			}
			xs = append(xs, x)
		}
		ref := newRefStats(xs)
		if !closeRel(*c.Mean, ref.mean, 1e-12) || !closeRel(*c.Std, ref.std, 1e-12) || *c.Min != ref.sorted[0] {
			t.Errorf("%s: mean, std, min got %g %g %g, want %g %g %g", name, *c.Mean, *c.Std, *c.Min, ref.mean, ref.std, ref.sorted[0])
		}
		checkQuantiles(t, c, ref, c.QuantileSketch.RankError())
	}
	w := p.Column("weather")
	var got []string
	for _, it := range w.Top {
		got = append(got, it.Value)
	}
	slices.Sort(got)
	if want := []string{"drizzle", "fog", "rain", "snow", "sun"}; !slices.Equal(got, want) || w.Distinct != 5 {
		t.Errorf("weather values got %v (distinct %d), want %v", got, w.Distinct, want)
	}
}

// BenchmarkProfileFlights profiles the 3M-row flights Parquet file; it
// reports the CPU seconds per profile (user+system, both cores) next to the
// wall time, and the CPU spent reading alone.
func BenchmarkProfileFlights(b *testing.B) {
	path := realdata.Path(b, "flights-3m.parquet")
	ctx := context.Background()
	b.Run("read", func(b *testing.B) {
		start := cpuTime()
		for b.Loop() {
			r, err := OpenFile(ctx, path, ReadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := r.Next(ctx); err != nil {
					if errors.Is(err, io.EOF) {
						break
					}
					b.Fatal(err)
				}
			}
			r.Close()
		}
		b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
	})
	b.Run("read+profile", func(b *testing.B) {
		start := cpuTime()
		for b.Loop() {
			r, err := OpenFile(ctx, path, ReadOptions{})
			if err != nil {
				b.Fatal(err)
			}
			p, err := ProfileReader(ctx, path, r, ProfileOptions{})
			r.Close()
			if err != nil {
				b.Fatal(err)
			}
			if p.Rows != 3_000_000 {
				b.Fatalf("rows got %d, want 3000000", p.Rows)
			}
		}
		b.ReportMetric((cpuTime()-start).Seconds()/float64(b.N), "cpu-s/op")
	})
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// FuzzInferType feeds random fields through the profiler: it never panics,
// and a type it infers agrees with ParseText on every value.
func FuzzInferType(f *testing.F) {
	for _, s := range []string{"1\n2\n3", "1\n2.5", "true\nfalse\n", "2012-01-01\n\n2013-02-03", "a\nb", "12\n7\nabc",
		"NaN\n1", "inf\n-inf", "\xff\xfe", "1e400\n1", "0x10\n1", " 1\n2", "-0\n0", "null\nNA\n"} {
		f.Add(s, uint8(2))
	}
	f.Fuzz(func(t *testing.T, s string, size uint8) {
		values := strings.Split(s, "\n")
		rows := column(values...)
		p, err := profileText(rows, int(size%8)+1, ProfileOptions{})
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Column != "c" || ie.Line < 2 || !strings.Contains(ie.Msg, "--type c=string") {
				t.Fatalf("error got %v, want an *InputError on a data line of column c with advice", err)
			}
			return
		}
		c := p.Columns[0]
		var n int64
		for _, v := range values {
			if IsNullToken(v) {
				continue
			}
			n++
			got := ParseText(v).Type
			ok := false
			switch c.Type {
			case TypeInteger:
				ok = got == TypeInteger
			case TypeFloat:
				ok = got == TypeInteger || got == TypeFloat
			case TypeBoolean, TypeTimestamp:
				ok = got == c.Type
			case TypeString:
				ok = classOf(got) == classString
			}
			if !ok {
				t.Fatalf("column inferred %s but ParseText(%q) is %q", c.Type, v, got)
			}
		}
		if c.Count != n || p.Rows != int64(len(values)) {
			t.Fatalf("count, rows got %d %d, want %d %d", c.Count, p.Rows, n, len(values))
		}
	})
}

// TestProfileLongValuesStayBounded checks that long free text is counted
// under short stand-in keys: equal values still count together, and the
// profile's JSON stays small.
func TestProfileLongValuesStayBounded(t *testing.T) {
	const rows = 2000
	var b strings.Builder
	b.WriteString("id,text\n")
	for i := range rows {
		// 20 KB per value, 1000 distinct values each seen twice.
		fmt.Fprintf(&b, "%d,%s%d\n", i, strings.Repeat("lorem ipsum ", 1700), i%1000)
	}
	path := filepath.Join(t.TempDir(), "long.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := OpenFile(context.Background(), path, ReadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p, err := ProfileReader(context.Background(), path, r, ProfileOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := p.Column("text")
	if !c.Frequent.Exact() || c.Distinct != 1000 || len(c.Top) == 0 || c.Top[0].Count != 2 {
		t.Fatalf("got exact %v, distinct %d, top %v; want exact counts of 1000 values seen twice", c.Frequent.Exact(), c.Distinct, c.Top)
	}
	if k := c.Top[0].Value; len(k) > 100 || !strings.Contains(k, "…sha256:") {
		t.Errorf("got top key of %d bytes %q, want a short stand-in", len(k), k)
	}
	js, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) > 300_000 {
		t.Errorf("got a %d-byte profile for 40 MB of long text, want it small", len(js))
	}
}
