package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/realdata"
	"github.com/mloop/mloop/internal/stats"
)

// numCol returns a float column.
func numCol(name string, vals []float64) *TableColumn {
	return &TableColumn{Name: name, Type: TypeFloat, Values: vals}
}

// textCol returns a string column.
func textCol(name string, vals []string) *TableColumn {
	return &TableColumn{Name: name, Type: TypeString, Text: vals}
}

func driftTable(cols ...*TableColumn) *Table {
	t := &Table{Columns: cols}
	if len(cols) > 0 {
		t.Rows = int64(cols[0].Count())
	}
	return t
}

func normalSample(seed uint64, n int, mean, sd float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([]float64, n)
	for i := range out {
		out[i] = mean + sd*r.NormFloat64()
	}
	return out
}

// categorical draws n values from names with the given weights.
func categoricalSample(seed uint64, n int, names []string, weights []float64) []string {
	r := rand.New(rand.NewPCG(seed, 2))
	var total float64
	for _, w := range weights {
		total += w
	}
	out := make([]string, n)
	for i := range out {
		u := r.Float64() * total
		k := 0
		for k < len(weights)-1 && u >= weights[k] {
			u -= weights[k]
			k++
		}
		out[i] = names[k]
	}
	return out
}

func mustDrift(t *testing.T, ref, cur *Table, opts DriftOptions) *DriftReport {
	t.Helper()
	rep, err := DriftTables(ref, cur, opts)
	if err != nil {
		t.Fatalf("DriftTables: %v", err)
	}
	return rep
}

func mustColumn(t *testing.T, rep *DriftReport, name string) *ColumnDrift {
	t.Helper()
	c := rep.Column(name)
	if c == nil {
		t.Fatalf("report has no column %q", name)
	}
	return c
}

func mustResult(t *testing.T, c *ColumnDrift, m Method) *MethodResult {
	t.Helper()
	r := c.Result(m)
	if r == nil {
		t.Fatalf("column %q has no %s result (methods %v)", c.Column, m, c.Results)
	}
	return r
}

func TestDriftTablesIdenticalNoDrift(t *testing.T) {
	x := normalSample(1, 3000, 10, 2)
	cats := categoricalSample(2, 3000, []string{"a", "b", "c"}, []float64{5, 3, 2})
	flags := make([]float64, 3000)
	for i := range flags {
		flags[i] = float64(i % 3 / 2)
	}
	mk := func() *Table {
		return driftTable(numCol("x", slices.Clone(x)), textCol("c", slices.Clone(cats)),
			&TableColumn{Name: "flag", Type: TypeBoolean, Values: slices.Clone(flags)})
	}
	for _, methods := range [][]Method{nil, Methods} {
		rep := mustDrift(t, mk(), mk(), DriftOptions{Methods: methods})
		if rep.DatasetDrift || rep.Drifted != 0 {
			t.Errorf("methods %v: got dataset drift %v with %d drifted columns, want none", methods, rep.DatasetDrift, rep.Drifted)
		}
		for _, c := range rep.Columns {
			for _, r := range c.Results {
				if r.Drift {
					t.Errorf("methods %v: column %s %s: got drift (statistic %g), want none", methods, c.Column, r.Method, r.Statistic)
				}
				switch r.Method {
				case MethodKS, MethodPSI, MethodJensenShannon, MethodWasserstein:
					if r.Statistic != 0 {
						t.Errorf("column %s %s: got statistic %g on identical data, want 0", c.Column, r.Method, r.Statistic)
					}
				}
				if r.PValue != nil && *r.PValue < 0.999999 {
					t.Errorf("column %s %s: got p-value %g on identical data, want 1", c.Column, r.Method, *r.PValue)
				}
			}
		}
	}
}

func TestDriftTablesDefaultMethods(t *testing.T) {
	// Evidently's defaults: p-value tests up to 1000 reference values,
	// distances beyond; low-cardinality numbers are treated as categories.
	small, large := 800, 5000
	cases := []struct {
		name string
		ref  *TableColumn
		want Method
	}{
		{"numeric small", numCol("v", normalSample(3, small, 0, 1)), MethodKS},
		{"numeric large", numCol("v", normalSample(3, large, 0, 1)), MethodWasserstein},
		{"few numbers small", numCol("v", cycleValues(small, 1, 2, 3)), MethodChiSquare},
		{"two numbers small", numCol("v", cycleValues(small, 1, 2)), MethodZTest},
		{"few numbers large", numCol("v", cycleValues(large, 1, 2, 3, 4, 5)), MethodJensenShannon},
		{"strings small", textCol("v", categoricalSample(4, small, []string{"a", "b", "c"}, []float64{1, 1, 1})), MethodChiSquare},
		{"two strings small", textCol("v", categoricalSample(4, small, []string{"a", "b"}, []float64{1, 1})), MethodZTest},
		{"strings large", textCol("v", categoricalSample(4, large, []string{"a", "b"}, []float64{1, 1})), MethodJensenShannon},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := mustDrift(t, driftTable(tc.ref), driftTable(tc.ref), DriftOptions{})
			c := mustColumn(t, rep, "v")
			if c.Method != tc.want || len(c.Results) != 1 || c.Results[0].Method != tc.want {
				t.Errorf("got method %s (results %d), want %s", c.Method, len(c.Results), tc.want)
			}
		})
	}
}

func cycleValues(n int, vals ...float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = vals[i%len(vals)]
	}
	return out
}

func TestDriftTablesShiftedNormal(t *testing.T) {
	for _, n := range []int{500, 5000} {
		ref := driftTable(numCol("x", normalSample(5, n, 0, 1)))
		cur := driftTable(numCol("x", normalSample(6, n, 0.5, 1)))
		rep := mustDrift(t, ref, cur, DriftOptions{Methods: []Method{MethodKS, MethodWasserstein, MethodPSI, MethodJensenShannon, MethodChiSquare}})
		c := mustColumn(t, rep, "x")
		if !c.Drift || !rep.DatasetDrift {
			t.Errorf("n=%d: got column drift %v, dataset drift %v, want both", n, c.Drift, rep.DatasetDrift)
		}
		ks := mustResult(t, c, MethodKS)
		if !ks.Drift || *ks.PValue > 1e-4 || ks.Statistic < 0.1 {
			t.Errorf("n=%d: ks got statistic %g p %g, want a detected shift (D > 0.1, p < 1e-4)", n, ks.Statistic, *ks.PValue)
		}
		w := mustResult(t, c, MethodWasserstein)
		// The distance between N(0,1) and N(0.5,1) is 0.5, normed by ≈1.
		if w.Distance == nil || math.Abs(*w.Distance-0.5) > 0.15 || math.Abs(w.Statistic-0.5) > 0.15 || !w.Drift {
			t.Errorf("n=%d: wasserstein got %g (distance %v), want ≈0.5 and drift", n, w.Statistic, w.Distance)
		}
		psi := mustResult(t, c, MethodPSI)
		if len(psi.BinEdges) != len(psi.RefCounts)+1 || len(psi.RefCounts) != len(psi.CurCounts) {
			t.Errorf("n=%d: psi got %d edges for %d/%d counts, want one more edge than counts", n, len(psi.BinEdges), len(psi.RefCounts), len(psi.CurCounts))
		}
		if sumOf(psi.RefCounts) != float64(n) || sumOf(psi.CurCounts) != float64(n) {
			t.Errorf("n=%d: psi counts sum to %g and %g, want %d each", n, sumOf(psi.RefCounts), sumOf(psi.CurCounts), n)
		}
		// Sturges: ceil(log2(2n) + 1) bins (the ratio rounds at most an ulp).
		if want := int(math.Ceil(math.Log2(float64(2*n)) + 1)); len(psi.RefCounts) != want {
			t.Errorf("n=%d: got %d bins, want Sturges' %d", n, len(psi.RefCounts), want)
		}
	}
}

func sumOf(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}

func TestDriftTablesNewCategory(t *testing.T) {
	names := []string{"BOS", "JFK", "SFO"}
	ref := driftTable(textCol("origin", categoricalSample(7, 4000, names, []float64{1, 1, 1})))
	cur := driftTable(textCol("origin", categoricalSample(8, 4000, append(names, "ZZZ"), []float64{1, 1, 1, 1})))
	rep := mustDrift(t, ref, cur, DriftOptions{Methods: []Method{MethodJensenShannon, MethodChiSquare, MethodPSI, MethodZTest}})
	c := mustColumn(t, rep, "origin")
	if !c.Drift || c.Method != MethodJensenShannon {
		t.Errorf("got drift %v by %s, want drift by jensenshannon", c.Drift, c.Method)
	}
	js := mustResult(t, c, MethodJensenShannon)
	if want := []string{"BOS", "JFK", "SFO", "ZZZ"}; !slices.Equal(js.Categories, want) {
		t.Errorf("got categories %v, want %v", js.Categories, want)
	}
	if js.RefCounts[3] != 0 || js.CurCounts[3] < 800 {
		t.Errorf("got ZZZ counts ref %g cur %g, want 0 and about 1000", js.RefCounts[3], js.CurCounts[3])
	}
	for _, m := range []Method{MethodChiSquare, MethodPSI} {
		if r := mustResult(t, c, m); !r.Drift {
			t.Errorf("%s: got no drift (statistic %g), want drift", m, r.Statistic)
		}
	}
	z := mustResult(t, c, MethodZTest)
	if z.Categories[0] != "BOS" || !strings.Contains(z.Note, "BOS") {
		t.Errorf("ztest got categories %v note %q, want the share of BOS", z.Categories, z.Note)
	}
}

func TestDriftShareAndThresholds(t *testing.T) {
	// Four columns, one of them shifted by 0.3 standard deviations.
	mk := func(seed uint64, shift float64) *Table {
		return driftTable(
			numCol("a", normalSample(seed, 3000, shift, 1)),
			numCol("b", normalSample(seed+10, 3000, 0, 1)),
			numCol("c", normalSample(seed+20, 3000, 0, 1)),
			numCol("d", normalSample(seed+30, 3000, 0, 1)))
	}
	ref, cur := mk(100, 0), mk(200, 0.3)
	cases := []struct {
		name        string
		opts        DriftOptions
		drifted     int
		datasetWant bool
	}{
		{"defaults", DriftOptions{}, 1, false},
		{"share reached", DriftOptions{DriftShare: 0.25}, 1, true},
		{"threshold above the shift", DriftOptions{Thresholds: map[Method]float64{MethodWasserstein: 0.5}}, 0, false},
		// Below the noise, the KS significance gate keeps the three
		// unshifted columns from drifting.
		{"threshold below the noise", DriftOptions{Thresholds: map[Method]float64{MethodWasserstein: 0.0001}, DriftShare: 1}, 1, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := mustDrift(t, ref, cur, tc.opts)
			if rep.Drifted != tc.drifted || rep.DatasetDrift != tc.datasetWant {
				t.Errorf("got %d drifted, dataset drift %v; want %d, %v", rep.Drifted, rep.DatasetDrift, tc.drifted, tc.datasetWant)
			}
			if want := float64(tc.drifted) / 4; rep.Share != want {
				t.Errorf("got share %g, want %g", rep.Share, want)
			}
			if c := mustColumn(t, rep, "a"); c.Results[0].Threshold != tc.opts.threshold(MethodWasserstein) {
				t.Errorf("got threshold %g, want %g", c.Results[0].Threshold, tc.opts.threshold(MethodWasserstein))
			}
		})
	}
	if _, err := DriftTables(ref, cur, DriftOptions{DriftShare: 1.5}); err == nil {
		t.Errorf("drift_share 1.5: got no error, want one")
	}
	if _, err := DriftTables(ref, cur, DriftOptions{Thresholds: map[Method]float64{MethodKS: -1}}); err == nil {
		t.Errorf("negative threshold: got no error, want one")
	}
}

func TestDriftMethodOverride(t *testing.T) {
	ref := driftTable(numCol("x", normalSample(9, 2000, 0, 1)), textCol("s", categoricalSample(9, 2000, []string{"a", "b", "c"}, []float64{1, 2, 3})))
	cur := driftTable(numCol("x", normalSample(10, 2000, 0, 1)), textCol("s", categoricalSample(10, 2000, []string{"a", "b", "c"}, []float64{1, 2, 3})))

	rep := mustDrift(t, ref, cur, DriftOptions{Methods: []Method{MethodKS, MethodPSI}})
	x := mustColumn(t, rep, "x")
	if x.Method != MethodKS || len(x.Results) != 2 || x.Results[1].Method != MethodPSI {
		t.Errorf("x: got method %s and %d results, want ks then psi", x.Method, len(x.Results))
	}
	s := mustColumn(t, rep, "s")
	if s.Method != MethodPSI || len(s.Results) != 1 || !strings.Contains(s.Note, "skipped ks (needs a numeric column") {
		t.Errorf("s: got method %s, %d results, note %q; want psi alone and a note that ks was skipped", s.Method, len(s.Results), s.Note)
	}

	rep = mustDrift(t, ref, cur, DriftOptions{Methods: []Method{MethodPSI}, ColumnMethods: map[string][]Method{"x": {MethodChiSquare}}})
	if got := mustColumn(t, rep, "x").Method; got != MethodChiSquare {
		t.Errorf("column methods: got %s for x, want chisquare", got)
	}
	if _, err := DriftTables(ref, cur, DriftOptions{ColumnMethods: map[string][]Method{"s": {MethodWasserstein}}}); err == nil || !strings.Contains(err.Error(), `"s"`) {
		t.Errorf("wasserstein on a string column: got error %v, want one naming the column", err)
	}
	if _, err := DriftTables(ref, cur, DriftOptions{ColumnMethods: map[string][]Method{"x": {MethodZTest}}}); err == nil || !strings.Contains(err.Error(), "at most 2 distinct values") {
		t.Errorf("ztest on a continuous column: got error %v, want one", err)
	}
	if _, err := DriftTables(ref, cur, DriftOptions{ColumnMethods: map[string][]Method{"nope": {MethodKS}}}); err == nil {
		t.Errorf("methods for a missing column: got no error, want one")
	}
	if _, err := DriftTables(ref, cur, DriftOptions{Columns: []string{"x", "missing"}}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("unknown column: got error %v, want one naming it", err)
	}
	rep = mustDrift(t, ref, cur, DriftOptions{Columns: []string{"s"}})
	if len(rep.Columns) != 1 || rep.Columns[0].Column != "s" {
		t.Errorf("columns [s]: got %d columns, want only s", len(rep.Columns))
	}
}

func TestDriftEmptyColumns(t *testing.T) {
	ref := driftTable(numCol("x", normalSample(11, 100, 0, 1)), numCol("y", normalSample(12, 100, 0, 1)))
	cur := driftTable(&TableColumn{Name: "x", Type: TypeFloat, Nulls: 100}, numCol("y", normalSample(13, 100, 0, 1)))
	rep := mustDrift(t, ref, cur, DriftOptions{})
	x := mustColumn(t, rep, "x")
	if !x.Drift || len(x.Results) != 0 || !strings.Contains(x.Note, "current data has no non-null values") {
		t.Errorf("got drift %v, %d results, note %q; want drift, no results and a note", x.Drift, len(x.Results), x.Note)
	}
	if x.CurCount != 0 || x.RefCount != 100 {
		t.Errorf("got counts %d/%d, want 100/0", x.RefCount, x.CurCount)
	}
	// An all-null column loaded from text has type string; it still
	// compares with a numeric reference.
	nullText := mustDrift(t, ref, driftTable(&TableColumn{Name: "x", Type: TypeString, Nulls: 100}, numCol("y", normalSample(14, 100, 0, 1))), DriftOptions{})
	if c := mustColumn(t, nullText, "x"); !c.Drift || c.Type != TypeFloat {
		t.Errorf("all-null text column: got drift %v, type %s; want drift and the reference's float type", c.Drift, c.Type)
	}
	both := mustDrift(t, driftTable(&TableColumn{Name: "x", Type: TypeFloat}), driftTable(&TableColumn{Name: "x", Type: TypeFloat}), DriftOptions{})
	if c := mustColumn(t, both, "x"); c.Drift || c.Note == "" {
		t.Errorf("both empty: got drift %v note %q, want no drift and a note", c.Drift, c.Note)
	}
}

func TestDriftTypeMismatch(t *testing.T) {
	ref := driftTable(numCol("x", []float64{1, 2, 3}))
	cur := driftTable(textCol("x", []string{"a", "b"}))
	if _, err := DriftTables(ref, cur, DriftOptions{}); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("got error %v, want a type mismatch naming x", err)
	}
	intRef := driftTable(&TableColumn{Name: "x", Type: TypeInteger, Values: []float64{1, 2, 3, 4, 5, 6}})
	if _, err := DriftTables(intRef, driftTable(numCol("x", []float64{1.5, 2, 3, 4, 5, 6})), DriftOptions{}); err != nil {
		t.Errorf("integer against float: got %v, want them compared", err)
	}
}

func TestDefaultMethodMatchesEvidently(t *testing.T) {
	cases := []struct {
		kind    columnKind
		ref, nv int64
		want    Method
	}{
		{kindNumeric, 1000, 6, MethodKS},
		{kindNumeric, 1000, 5, MethodChiSquare},
		{kindNumeric, 1000, 2, MethodZTest},
		{kindNumeric, 1001, 6, MethodWasserstein},
		{kindNumeric, 1001, 5, MethodJensenShannon},
		{kindTimestamp, 10, 100, MethodKS},
		{kindCategorical, 1000, 3, MethodChiSquare},
		{kindCategorical, 1000, 2, MethodZTest},
		{kindCategorical, 1000, 1, MethodZTest},
		{kindCategorical, 1001, 50, MethodJensenShannon},
		{kindBoolean, 5000, 2, MethodJensenShannon},
	}
	for _, tc := range cases {
		if got := defaultMethod(tc.kind, tc.ref, tc.nv); got != tc.want {
			t.Errorf("defaultMethod(%d, ref %d, %d values) = %s, want %s", tc.kind, tc.ref, tc.nv, got, tc.want)
		}
	}
}

func TestParseMethods(t *testing.T) {
	got, err := ParseMethods(" KS, js,chi2 ,psi,wasserstein_norm,z,ks")
	want := []Method{MethodKS, MethodJensenShannon, MethodChiSquare, MethodPSI, MethodWasserstein, MethodZTest}
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("got %v, %v; want %v", got, err, want)
	}
	if got, err := ParseMethods("  "); got != nil || err != nil {
		t.Errorf("blank: got %v, %v; want nil, nil", got, err)
	}
	_, err = ParseMethods("ks,anderson")
	if err == nil || !strings.Contains(err.Error(), "anderson") || !strings.Contains(err.Error(), "jensenshannon") {
		t.Errorf("unknown: got %v, want an error naming it and listing the valid methods", err)
	}
}

func TestHistogramEdgesAndCounts(t *testing.T) {
	// Edges as np.histogram_bin_edges(bins="sturges"): ceil(ptp/width) bins
	// with width = ptp/(log2(n)+1), linspace edges, the last exactly hi.
	cases := []struct {
		lo, hi float64
		n      int64
		bins   int
		want   int
	}{
		{0, 10, 1000, 0, 11},      // log2(1000)+1 = 10.97
		{0, 10, 1024, 0, 11},      // exactly 11
		{-3, 7, 1_000_000, 0, 21}, // 20.93
		{5, 5, 10, 0, 1},          // empty range: one bin over [4.5, 5.5]
		{0, 1, 10, 4, 4},
	}
	for _, tc := range cases {
		e := histogramEdges(tc.lo, tc.hi, tc.n, tc.bins)
		if len(e) != tc.want+1 {
			t.Errorf("edges(%g, %g, %d, %d): got %d bins, want %d", tc.lo, tc.hi, tc.n, tc.bins, len(e)-1, tc.want)
			continue
		}
		lo, hi := tc.lo, tc.hi
		if lo == hi {
			lo, hi = lo-0.5, hi+0.5
		}
		if e[0] != lo || e[len(e)-1] != hi {
			t.Errorf("edges(%g, %g): got ends %g, %g, want %g, %g", tc.lo, tc.hi, e[0], e[len(e)-1], lo, hi)
		}
	}
	// Counts: [a, b) bins, the last one closed, against a direct count.
	vals := []float64{0, 0, 1, 2, 2, 2.5, 3, 4, 4}
	edges := []float64{0, 1, 2, 3, 4}
	got := histogramSorted(vals, edges)
	want := make([]float64, 4)
	for _, v := range vals {
		for i := range 4 {
			if v >= edges[i] && (v < edges[i+1] || (i == 3 && v == edges[4])) {
				want[i]++
				break
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("histogramSorted: got %v, want %v", got, want)
	}
}

func TestSortedCopy(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	gens := map[string]func() float64{
		"normal":     func() float64 { return r.NormFloat64() * 1e3 },
		"small ints": func() float64 { return float64(r.IntN(2000) - 1000) },
		"wide ints":  func() float64 { return float64(r.Int64N(1<<40) - 1<<39) },
		"mixed": func() float64 {
			return []float64{math.Inf(-1), math.Inf(1), math.Copysign(0, -1), 0, 1e-310, -1e300}[r.IntN(6)] + float64(r.IntN(3))
		},
		"timestamps µs": func() float64 { return float64(978307200000000 + r.Int64N(1e12)) },
	}
	for name, gen := range gens {
		for _, n := range []int{0, 1, 100, 5000, 70000} {
			x := make([]float64, n)
			for i := range x {
				x[i] = gen()
			}
			orig := slices.Clone(x)
			got := sortedCopy(x)
			want := slices.Clone(x)
			slices.Sort(want)
			if !slices.Equal(x, orig) {
				t.Fatalf("%s n=%d: input modified", name, n)
			}
			if !slices.Equal(got, want) { // -0 == 0, so the sign of zero may differ
				t.Errorf("%s n=%d: got a different order than slices.Sort", name, n)
			}
		}
	}
}

func TestDriftReportOutput(t *testing.T) {
	ref := driftTable(numCol("delay", normalSample(31, 2000, 0, 1)), textCol("origin", categoricalSample(31, 2000, []string{"a", "b"}, []float64{1, 1})))
	cur := driftTable(numCol("delay", normalSample(32, 2000, 1, 1)), textCol("origin", categoricalSample(32, 2000, []string{"a", "b"}, []float64{1, 1})))
	rep := mustDrift(t, ref, cur, DriftOptions{Methods: []Method{MethodWasserstein, MethodKS, MethodPSI}})
	var buf bytes.Buffer
	if err := rep.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{"COLUMN", "P-VALUE", "delay", "origin", "wasserstein*", "DATASET DRIFT (exact): 1 of 2 columns drifted"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Mode    string `json:"mode"`
		Columns []struct {
			Results []map[string]any `json:"results"`
		} `json:"columns"`
		DatasetDrift *bool `json:"dataset_drift"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if raw.Mode != "exact" || raw.DatasetDrift == nil || len(raw.Columns) != 2 {
		t.Fatalf("json: got %s", b)
	}
	w, ks, psi := raw.Columns[0].Results[0], raw.Columns[0].Results[1], raw.Columns[0].Results[2]
	if _, ok := w["distance"]; !ok {
		t.Errorf("wasserstein json lacks distance: %v", w)
	}
	if _, ok := w["p_value"]; ok {
		t.Errorf("wasserstein json has a p_value: %v", w)
	}
	if _, ok := ks["p_value"]; !ok {
		t.Errorf("ks json lacks p_value: %v", ks)
	}
	for _, k := range []string{"bin_edges", "ref_counts", "cur_counts", "threshold", "drift", "statistic"} {
		if _, ok := psi[k]; !ok {
			t.Errorf("psi json lacks %s: %v", k, psi)
		}
	}
}

// profileOf profiles a table whose columns are complete (no nulls, equal
// lengths) with the real profiler, in batches as a reader would send them.
func profileOf(t *testing.T, tab *Table) *Profile {
	t.Helper()
	cols := make([]Column, len(tab.Columns))
	for i, c := range tab.Columns {
		cols[i] = Column{Name: c.Name, Type: c.Type}
		if c.Count() != int(tab.Rows) || c.Nulls > 0 {
			t.Fatalf("profileOf: column %q has %d values for %d rows", c.Name, c.Count(), tab.Rows)
		}
	}
	p := NewProfiler("test", cols, ProfileOptions{})
	const batch = 65536
	for start := 0; start < int(tab.Rows); start += batch {
		end := min(start+batch, int(tab.Rows))
		b := &Batch{Rows: end - start, FirstRow: int64(start) + 1, Cols: make([]ColumnValues, len(cols))}
		for i, c := range tab.Columns {
			cv := &b.Cols[i]
			switch c.Type {
			case TypeString:
				cv.Kind = KindText
				for j := start; j < end; j++ {
					cv.Text = append(cv.Text, c.String(j))
				}
			case TypeFloat:
				cv.Kind, cv.Float = KindFloat, c.Values[start:end]
			case TypeBoolean:
				cv.Kind = KindBool
				for _, v := range c.Values[start:end] {
					cv.Bool = append(cv.Bool, v != 0)
				}
			default: // integer, timestamp
				cv.Kind = KindInt
				if c.Type == TypeTimestamp {
					cv.Kind = KindTimestamp
				}
				for _, v := range c.Values[start:end] {
					cv.Int = append(cv.Int, int64(v))
				}
			}
		}
		if err := p.Add(b); err != nil {
			t.Fatalf("profile: %v", err)
		}
	}
	prof, err := p.Finish()
	if err != nil {
		t.Fatalf("profile: %v", err)
	}
	return prof
}

// profileErrors compares a profile-based report with the exact one on the
// same data, failing where a difference exceeds the bound DriftProfiles
// documents, and logs every difference.
func profileErrors(t *testing.T, exact, approx *DriftReport, refProf, curProf *Profile) {
	t.Helper()
	for _, ec := range exact.Columns {
		pc := approx.Column(ec.Column)
		if pc == nil {
			t.Errorf("profile report lacks column %q", ec.Column)
			continue
		}
		if pc.RefCount != ec.RefCount || pc.CurCount != ec.CurCount {
			t.Errorf("%s: profile counts %d/%d, exact %d/%d", ec.Column, pc.RefCount, pc.CurCount, ec.RefCount, ec.CurCount)
		}
		rp, cp := refProf.Column(ec.Column), curProf.Column(ec.Column)
		var er, ecur float64
		if rp.QuantileSketch != nil {
			er, ecur = rp.QuantileSketch.RankError(), cp.QuantileSketch.RankError()
		}
		for _, e := range ec.Results {
			p := pc.Result(e.Method)
			if p == nil {
				t.Errorf("%s: profile report lacks %s", ec.Column, e.Method)
				continue
			}
			diff := math.Abs(p.Statistic - e.Statistic)
			t.Logf("%-9s %-13s exact %-12.6g profile %-12.6g |diff| %.3g  drift %v/%v", ec.Column, e.Method, e.Statistic, p.Statistic, diff, e.Drift, p.Drift)
			// Per-value counts are exact for strings, booleans and integer
			// columns (exact frequent counts); numeric bins come from sketches.
			exactCounts := len(e.BinEdges) == 0 && ec.Type != TypeFloat && ec.Type != TypeTimestamp
			switch e.Method {
			case MethodKS:
				if bound := er + ecur; diff > bound {
					t.Errorf("%s ks: statistic %g from profiles, %g exact: off by %g, more than ε_ref+ε_cur = %g", ec.Column, p.Statistic, e.Statistic, diff, bound)
				}
			case MethodWasserstein:
				lo := min(rp.QuantileSketch.Min(), cp.QuantileSketch.Min())
				hi := max(rp.QuantileSketch.Max(), cp.QuantileSketch.Max())
				bound := (er + ecur) * (hi - lo)
				if d := math.Abs(*p.Distance - *e.Distance); d > bound {
					t.Errorf("%s wasserstein: distance %g from profiles, %g exact: off by %g, more than (ε_ref+ε_cur)·range = %g", ec.Column, *p.Distance, *e.Distance, d, bound)
				}
				t.Logf("%-9s wasserstein raw distance exact %.6g profile %.6g (bound ±%.3g)", ec.Column, *e.Distance, *p.Distance, bound)
			case MethodZTest:
				if exactCounts && (diff > 1e-9*math.Abs(e.Statistic) || !slices.Equal(p.RefCounts, e.RefCounts)) {
					t.Errorf("%s ztest: got %g (counts %v) from exact counts, want %g (%v)", ec.Column, p.Statistic, p.RefCounts, e.Statistic, e.RefCounts)
				}
			case MethodPSI, MethodJensenShannon, MethodChiSquare:
				if !slices.Equal(p.BinEdges, e.BinEdges) || !slices.Equal(p.Categories, e.Categories) {
					t.Errorf("%s %s: profile bins %v %v, exact %v %v", ec.Column, e.Method, p.BinEdges, p.Categories, e.BinEdges, e.Categories)
					continue
				}
				if exactCounts {
					if !slices.Equal(p.RefCounts, e.RefCounts) || !slices.Equal(p.CurCounts, e.CurCounts) {
						t.Errorf("%s %s: exact frequent counts should give the exact counts: got %v / %v, want %v / %v", ec.Column, e.Method, p.RefCounts, p.CurCounts, e.RefCounts, e.CurCounts)
					}
					if diff > 1e-9*math.Abs(e.Statistic) {
						t.Errorf("%s %s: got %g from exact counts, want %g", ec.Column, e.Method, p.Statistic, e.Statistic)
					}
					continue
				}
				for side, counts := range [][2][]float64{{p.RefCounts, e.RefCounts}, {p.CurCounts, e.CurCounts}} {
					eps, n := er, float64(ec.RefCount)
					if side == 1 {
						eps, n = ecur, float64(ec.CurCount)
					}
					var cumP, cumE, worst float64
					for i := range counts[0] {
						cumP += counts[0][i]
						cumE += counts[1][i]
						if d := math.Abs(cumP - cumE); d > worst {
							worst = d
						}
						if d := math.Abs(counts[0][i] - counts[1][i]); d > math.Ceil(2*eps*n) {
							t.Errorf("%s %s: bin %d count %g from profile, %g exact: off by more than 2εn = %g", ec.Column, e.Method, i, counts[0][i], counts[1][i], 2*eps*n)
						}
					}
					if worst > math.Ceil(eps*n) {
						t.Errorf("%s %s: cumulative counts off by %g, more than εn = %g", ec.Column, e.Method, worst, eps*n)
					}
				}
			}
		}
	}
}

func TestDriftProfilesWithinBoundsSynthetic(t *testing.T) {
	mk := func(seed uint64, n int, shift float64, cats []string) *Table {
		r := rand.New(rand.NewPCG(seed, 3))
		ints := make([]float64, n)
		low := make([]float64, n)
		flags := make([]float64, n)
		for i := range ints {
			ints[i] = math.Round(50 + 20*shift + 15*r.NormFloat64())
			low[i] = float64(r.IntN(8))
			if r.Float64() < 0.3+shift/4 {
				flags[i] = 1
			}
		}
		tab := driftTable(
			numCol("x", normalSample(seed, n, shift, 1+shift/2)),
			&TableColumn{Name: "minutes", Type: TypeInteger, Values: ints},
			&TableColumn{Name: "level", Type: TypeInteger, Values: low},
			&TableColumn{Name: "flag", Type: TypeBoolean, Values: flags},
			textCol("city", categoricalSample(seed, n, cats, []float64{5, 4, 3, 2, 1, 1, 1})),
		)
		return tab
	}
	cities := []string{"ams", "ber", "cdg", "dub", "fco", "lhr", "mad"}
	ref := mk(41, 120_000, 0, cities)
	cur := mk(42, 90_000, 0.2, append(cities[:6:6], "osl"))
	refProf, curProf := profileOf(t, ref), profileOf(t, cur)
	for _, methods := range [][]Method{nil, Methods} {
		exact := mustDrift(t, ref, cur, DriftOptions{Methods: methods})
		approx, err := DriftProfiles(refProf, curProf, DriftOptions{Methods: methods})
		if err != nil {
			t.Fatalf("DriftProfiles: %v", err)
		}
		if approx.Mode != "profile" {
			t.Errorf("got mode %q, want profile", approx.Mode)
		}
		profileErrors(t, exact, approx, refProf, curProf)
		for _, ec := range exact.Columns {
			if pc := approx.Column(ec.Column); pc.Method != ec.Method {
				t.Errorf("%s: profile chose %s, exact %s", ec.Column, pc.Method, ec.Method)
			}
		}
	}
}

func TestDriftDictionaryCodes(t *testing.T) {
	// A dictionary shared by both sides (as when both are slices of one
	// load) with an entry neither side uses, a separate dictionary, and
	// plain text: the counts must not depend on the encoding.
	dict := []string{"c", "a", "unused", "b"}
	encoded := func(codes []uint32, d []string) *TableColumn {
		return &TableColumn{Name: "s", Type: TypeString, Codes: codes, Dict: d}
	}
	plain := func(c *TableColumn) *TableColumn {
		out := textCol("s", nil)
		for i := range c.Count() {
			out.Text = append(out.Text, c.String(i))
		}
		return out
	}
	ref := encoded([]uint32{0, 1, 1, 3, 3, 3}, dict)
	for _, cur := range []*TableColumn{
		encoded([]uint32{1, 1, 1, 0}, dict),
		encoded([]uint32{0, 0, 0, 1}, []string{"a", "c"}),
		textCol("s", []string{"c", "d", "a"}),
	} {
		got := countCategories(ref, cur)
		want := countCategories(plain(ref), plain(cur))
		if !slices.Equal(got.Categories, want.Categories) || !slices.Equal(got.Ref, want.Ref) || !slices.Equal(got.Cur, want.Cur) {
			t.Errorf("from codes: got %v %v %v, from text: %v %v %v", got.Categories, got.Ref, got.Cur, want.Categories, want.Ref, want.Cur)
		}
		if slices.Contains(got.Categories, "unused") {
			t.Errorf("got categories %v, want the unused dictionary entry left out", got.Categories)
		}
	}
	want := []float64{2, 3, 1} // a, b, c
	if got := countCategories(ref, ref); !slices.Equal(got.Ref, want) {
		t.Errorf("got counts %v for a, b, c, want %v", got.Ref, want)
	}
	bad := encoded([]uint32{0, 9}, dict)
	if _, err := DriftTables(driftTable(bad), driftTable(ref), DriftOptions{}); err == nil {
		t.Errorf("a code beyond the dictionary: got no error, want one")
	}
}

func FuzzParseMethods(f *testing.F) {
	for _, s := range []string{"ks", "ks,psi", " JS , chi2 ", "", ",", "ks,,psi", "wasserstein_norm,z", "nope"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := ParseMethods(s)
		if err != nil {
			if ms != nil {
				t.Errorf("ParseMethods(%q): got methods %v with error %v", s, ms, err)
			}
			return
		}
		seen := map[Method]bool{}
		for _, m := range ms {
			if !slices.Contains(Methods, m) || seen[m] {
				t.Errorf("ParseMethods(%q): got invalid or repeated method %q", s, m)
			}
			seen[m] = true
		}
		// The canonical names parse back to the same list.
		names := make([]string, len(ms))
		for i, m := range ms {
			names[i] = string(m)
		}
		again, err := ParseMethods(strings.Join(names, ","))
		if err != nil || !slices.Equal(again, ms) {
			t.Errorf("ParseMethods(%q) = %v; reparsed %v, %v", s, ms, again, err)
		}
	})
}

var flights struct {
	once     sync.Once
	jan, jun *Table
	err      error
}

// flightsJanJune loads the delay, distance and origin of January and June
// 2001 from flights-3m.parquet (about 500,000 flights each).
func flightsJanJune(t *testing.T) (jan, jun *Table) {
	t.Helper()
	flightsPath := realdata.Path(t, "flights-3m.parquet")
	flights.once.Do(func() {
		tab, err := LoadTable(context.Background(), []string{flightsPath}, LoadOptions{Columns: []string{"date", "delay", "distance", "origin"}})
		if err != nil {
			flights.err = err
			return
		}
		flights.jan, flights.err = monthOf(tab, time.January)
		if flights.err == nil {
			flights.jun, flights.err = monthOf(tab, time.June)
		}
	})
	if flights.err != nil {
		t.Fatalf("load flights: %v", flights.err)
	}
	return flights.jan, flights.jun
}

// monthOf returns the delay, distance and origin of the rows of one month;
// the table must have no nulls, so that its columns are aligned.
func monthOf(tab *Table, m time.Month) (*Table, error) {
	date := tab.Column("date")
	src := []*TableColumn{tab.Column("delay"), tab.Column("distance"), tab.Column("origin")}
	out := &Table{}
	for _, c := range append(src, date) {
		if c == nil || c.Nulls > 0 || c.Count() != int(tab.Rows) {
			return nil, os.ErrInvalid
		}
	}
	for _, c := range src {
		out.Columns = append(out.Columns, &TableColumn{Name: c.Name, Type: c.Type, Dict: c.Dict})
	}
	for i, us := range date.Values {
		if time.UnixMicro(int64(us)).UTC().Month() != m {
			continue
		}
		out.Rows++
		for j, c := range src {
			if c.Dict != nil {
				out.Columns[j].Codes = append(out.Columns[j].Codes, c.Codes[i])
			} else {
				out.Columns[j].Values = append(out.Columns[j].Values, c.Values[i])
			}
		}
	}
	return out, nil
}

// checkDecisions verifies that every decision in a report follows from its
// statistics: p-value tests drift when p < threshold, distances when the
// statistic reaches it, a column as its first method, the dataset when the
// drifted share reaches drift_share.
func checkDecisions(t *testing.T, rep *DriftReport) {
	t.Helper()
	drifted := 0
	for _, c := range rep.Columns {
		for _, r := range c.Results {
			want := r.Statistic >= r.Threshold
			if r.Method == MethodWasserstein && strings.Contains(r.Note, "not significant") {
				want = false // the significance gate held it back
			}
			if r.Method.isPValue() {
				want = *r.PValue < r.Threshold
			}
			if r.Drift != want {
				t.Errorf("%s %s: got drift %v for statistic %g (p %v) and threshold %g", c.Column, r.Method, r.Drift, r.Statistic, r.PValue, r.Threshold)
			}
		}
		if len(c.Results) > 0 && (c.Drift != c.Results[0].Drift || c.Method != c.Results[0].Method) {
			t.Errorf("%s: got column drift %v by %s, want its first result's", c.Column, c.Drift, c.Method)
		}
		if c.Drift {
			drifted++
		}
	}
	share := float64(drifted) / float64(len(rep.Columns))
	if rep.Drifted != drifted || rep.Share != share || rep.DatasetDrift != (share >= rep.DriftShare) {
		t.Errorf("got %d drifted, share %g, dataset drift %v; want %d, %g, %v", rep.Drifted, rep.Share, rep.DatasetDrift, drifted, share, share >= rep.DriftShare)
	}
}

// TestDriftFlightsJanuaryJune is the acceptance test on real data: January
// against June 2001, about 500,000 flights each. What the data shows:
//
//   - delay: June's delays are longer and more spread out (mean 9.0 against
//     6.3 minutes, standard deviation 36.6 against 30.9); the normed
//     Wasserstein distance is 0.0875, a visible shift that stays below
//     Evidently's 0.1 threshold, and the KS test finds it beyond any doubt
//     (D = 0.025, p ≈ 1e-141);
//   - distance: the route mix barely moves (normed Wasserstein 0.025, KS
//     D = 0.009), yet with half a million flights a side even that is
//     "significant" (p ≈ 2e-17) — why Evidently uses distances, not
//     p-values, for large samples;
//   - origin: the airports' shares shift a little (Jensen–Shannon 0.037);
//     chi-squared calls it significant (p = 0), again from sample size.
//
// So the default methods (distances, as the reference has more than 1000
// rows) report no column drifted and no dataset drift, the largest shift
// being delay's; the p-value tests flag every column.
func TestDriftFlightsJanuaryJune(t *testing.T) {
	jan, jun := flightsJanJune(t)
	if jan.Rows < 400_000 || jun.Rows < 400_000 {
		t.Fatalf("got %d January and %d June flights, want about 500,000 each", jan.Rows, jun.Rows)
	}

	def := mustDrift(t, jan, jun, DriftOptions{})
	var buf bytes.Buffer
	if err := def.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	t.Logf("default methods:\n%s", buf.String())
	checkDecisions(t, def)
	delay, distance, origin := mustColumn(t, def, "delay"), mustColumn(t, def, "distance"), mustColumn(t, def, "origin")
	for c, want := range map[*ColumnDrift]Method{delay: MethodWasserstein, distance: MethodWasserstein, origin: MethodJensenShannon} {
		if c.Method != want {
			t.Errorf("%s: got default method %s, want %s", c.Column, c.Method, want)
		}
	}
	dw, sw := delay.Results[0].Statistic, distance.Results[0].Statistic
	if !(dw > 0.05 && dw < 0.1) || !(sw < 0.05) || dw < 2*sw {
		t.Errorf("normed Wasserstein: got delay %g, distance %g; want delay in (0.05, 0.1), distance below 0.05 and less than half of delay's", dw, sw)
	}
	if js := origin.Results[0].Statistic; !(js > 0.01 && js < 0.1) {
		t.Errorf("origin: got Jensen–Shannon %g, want a small shift in (0.01, 0.1)", js)
	}
	// Only delay changed materially (its mean rose from 6.3 to 9.0 minutes,
	// its 99th percentile from 130 to 166): the defaults flag it alone, and
	// one column of three is below the dataset drift share.
	if !delay.Drift || distance.Drift || origin.Drift {
		t.Errorf("default methods: got drift delay %v, distance %v, origin %v; want delay only", delay.Drift, distance.Drift, origin.Drift)
	}
	if def.Drifted != 1 || def.DatasetDrift {
		t.Errorf("default methods: got %d drifted columns, dataset drift %v; want 1 and no dataset drift", def.Drifted, def.DatasetDrift)
	}

	all := mustDrift(t, jan, jun, DriftOptions{Methods: Methods})
	buf.Reset()
	if err := all.WriteText(&buf); err != nil {
		t.Fatal(err)
	}
	t.Logf("all methods:\n%s", buf.String())
	checkDecisions(t, all)
	dks := mustResult(t, mustColumn(t, all, "delay"), MethodKS)
	sks := mustResult(t, mustColumn(t, all, "distance"), MethodKS)
	if !(*dks.PValue < 1e-100) || !(*sks.PValue < 1e-10) || !(dks.Statistic > 2*sks.Statistic) || !(sks.Statistic < 0.01) {
		t.Errorf("ks: got delay D %g p %g, distance D %g p %g; want both tiny p-values, delay's D more than twice distance's, distance's below 0.01",
			dks.Statistic, *dks.PValue, sks.Statistic, *sks.PValue)
	}
	for _, c := range all.Columns {
		if r := mustResult(t, &c, MethodChiSquare); !(*r.PValue < 1e-50) {
			t.Errorf("%s: got chi-squared p %g, want < 1e-50 at this sample size", c.Column, *r.PValue)
		}
		for _, m := range []Method{MethodJensenShannon, MethodPSI} {
			if r := mustResult(t, &c, m); r.Drift {
				t.Errorf("%s %s: got drift at %g, want the distance below its threshold", c.Column, m, r.Statistic)
			}
		}
		if c.Result(MethodZTest) != nil && c.Type != TypeString {
			t.Errorf("%s: got a ztest result on a numeric column with many values, want it skipped", c.Column)
		}
	}
	if !all.DatasetDrift || all.Drifted != 3 {
		t.Errorf("all methods (ks or chisquare first): got %d drifted, dataset drift %v; want all 3", all.Drifted, all.DatasetDrift)
	}
}

// TestDriftProfilesFlightsWithinBounds compares drift from the two months'
// profiles with the exact drift, within the bounds DriftProfiles documents,
// and logs every difference.
func TestDriftProfilesFlightsWithinBounds(t *testing.T) {
	jan, jun := flightsJanJune(t)
	pj, pu := profileOf(t, jan), profileOf(t, jun)
	for _, methods := range [][]Method{nil, Methods} {
		exact := mustDrift(t, jan, jun, DriftOptions{Methods: methods})
		approx, err := DriftProfiles(pj, pu, DriftOptions{Methods: methods})
		if err != nil {
			t.Fatalf("DriftProfiles: %v", err)
		}
		checkDecisions(t, approx)
		profileErrors(t, exact, approx, pj, pu)
	}
}

func TestDriftProfilesInexactFrequent(t *testing.T) {
	// Frequent-items sketches limited to 3 exact values, fed 6: the
	// comparison pools what they stopped tracking and says so.
	mk := func(counts map[string]int64) *ColumnProfile {
		f := stats.NewFrequentItems(3)
		d := stats.NewDistinctCounter()
		var n int64
		for _, v := range slices.Sorted(maps.Keys(counts)) {
			f.Add(v, counts[v])
			d.AddString(v)
			n += counts[v]
		}
		return &ColumnProfile{Name: "s", Type: TypeString, Count: n, Frequent: f, DistinctSketch: d, Distinct: d.Estimate()}
	}
	ref := &Profile{Rows: 2000, Columns: []*ColumnProfile{mk(map[string]int64{"a": 900, "b": 500, "c": 300, "d": 200, "e": 60, "f": 40})}}
	cur := &Profile{Rows: 2000, Columns: []*ColumnProfile{mk(map[string]int64{"a": 400, "b": 500, "c": 300, "d": 500, "e": 200, "f": 100})}}
	if ref.Columns[0].Frequent.Exact() {
		t.Fatal("the test needs an inexact frequent-items sketch")
	}
	rep, err := DriftProfiles(ref, cur, DriftOptions{Methods: []Method{MethodJensenShannon, MethodChiSquare}})
	if err != nil {
		t.Fatal(err)
	}
	js := mustResult(t, mustColumn(t, rep, "s"), MethodJensenShannon)
	if !slices.Contains(js.Categories, OtherCategory) || !strings.Contains(js.Note, "approximate") {
		t.Errorf("got categories %v, note %q; want %s pooled and a note", js.Categories, js.Note, OtherCategory)
	}
	if sumOf(js.RefCounts) != 2000 || sumOf(js.CurCounts) != 2000 {
		t.Errorf("got totals %g and %g, want 2000 each (pooled counts keep the totals)", sumOf(js.RefCounts), sumOf(js.CurCounts))
	}
	if !js.Drift {
		t.Errorf("got Jensen–Shannon %g without drift, want the shift from a to d and e detected", js.Statistic)
	}
}

// TestDriftReportsUnmatchedColumns checks that a renamed column is listed on
// both sides rather than silently left out, in both modes.
func TestDriftReportsUnmatchedColumns(t *testing.T) {
	ref := driftTable(numCol("a", normalSample(1, 500, 0, 1)), numCol("old", normalSample(2, 500, 0, 1)))
	cur := driftTable(numCol("a", normalSample(3, 500, 0, 1)), numCol("new", normalSample(4, 500, 0, 1)))
	exact := mustDrift(t, ref, cur, DriftOptions{})
	approx, err := DriftProfiles(profileOf(t, ref), profileOf(t, cur), DriftOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rep := range []*DriftReport{exact, approx} {
		if len(rep.Columns) != 1 || !slices.Equal(rep.OnlyInReference, []string{"old"}) || !slices.Equal(rep.OnlyInCurrent, []string{"new"}) {
			t.Errorf("%s: got %d compared, only in reference %v, only in current %v; want 1, [old], [new]", rep.Mode, len(rep.Columns), rep.OnlyInReference, rep.OnlyInCurrent)
		}
		var buf bytes.Buffer
		if err := rep.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "only in the reference: old") || !strings.Contains(buf.String(), "only in the current data: new") {
			t.Errorf("%s: got text\n%s\nwant both unmatched columns named", rep.Mode, buf.String())
		}
	}
}
