package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// checkQuantileInvariants fails t when s's internal bookkeeping is
// inconsistent.
func checkQuantileInvariants(t testing.TB, s *QuantileSketch) {
	t.Helper()
	if s.k == 0 {
		return
	}
	var upN int64
	var sizeUp int
	for h := 1; h < len(s.levels); h++ {
		lv := s.levels[h]
		if !slices.IsSorted(lv) {
			t.Fatalf("level %d not sorted", h)
		}
		upN += int64(len(lv)) << h
		sizeUp += len(lv)
		for _, k := range lv {
			if k < s.keyMin || k > s.keyMax {
				t.Fatalf("level %d key outside [keyMin, keyMax]", h)
			}
		}
	}
	if upN != s.upN || sizeUp != s.sizeUp {
		t.Fatalf("upN, sizeUp = %d, %d; levels say %d, %d", s.upN, s.sizeUp, upN, sizeUp)
	}
	if s.sizeUp+s.l0n > s.capTot {
		t.Fatalf("retains %d values, capacity %d", s.sizeUp+s.l0n, s.capTot)
	}
	if s.l0lim != max(s.capTot-s.sizeUp, 0) || len(s.l0) < s.l0lim {
		t.Fatalf("l0lim %d, len(l0) %d, capTot %d, sizeUp %d", s.l0lim, len(s.l0), s.capTot, s.sizeUp)
	}
	if s.Count() > 0 {
		v := s.sorted()
		if got := v.cum[len(v.cum)-1]; got != s.Count() {
			t.Fatalf("weights sum to %d, Count() = %d", got, s.Count())
		}
		if !slices.IsSorted(v.vals) || v.vals[0] < v.min || v.vals[len(v.vals)-1] > v.max {
			t.Fatalf("view not sorted within [min, max]")
		}
	}
}

// exactCDF returns the fraction of sorted values ≤ x.
func exactCDF(sorted []float64, x float64) float64 {
	i, found := slices.BinarySearch(sorted, x)
	for found && i < len(sorted) && sorted[i] == x {
		i++
	}
	return float64(i) / float64(len(sorted))
}

// maxRankError returns the largest |s.CDF(x) − exact CDF(x)| over all x: both
// are step functions that change only at data values, so checking every
// distinct data value suffices.
func maxRankError(s *QuantileSketch, sorted []float64) float64 {
	vals, weights := s.Items()
	n := float64(len(sorted))
	j := 0
	var sketchCum, worst float64
	for i := 0; i < len(sorted); {
		x := sorted[i]
		for i < len(sorted) && sorted[i] == x {
			i++
		}
		for j < len(vals) && vals[j] <= x {
			sketchCum += weights[j]
			j++
		}
		worst = max(worst, math.Abs(sketchCum/n-float64(i)/n))
	}
	return worst
}

// distributions generate test data; each must be reproducible from its seed.
var distributions = []struct {
	name string
	gen  func(r *rand.Rand) float64
}{
	{"uniform", func(r *rand.Rand) float64 { return r.Float64() }},
	{"normal", func(r *rand.Rand) float64 { return 1e6 + 250*r.NormFloat64() }},
	{"cauchy", func(r *rand.Rand) float64 { return math.Tan(math.Pi * (r.Float64() - 0.5)) }},
	{"pareto", func(r *rand.Rand) float64 { return math.Pow(1-r.Float64(), -1/1.1) }},
	{"ties", func(r *rand.Rand) float64 { return float64(r.IntN(12)) }},
	{"delays", func(r *rand.Rand) float64 { // mostly small integers, a long right tail
		if r.IntN(10) < 6 {
			return float64(r.IntN(15) - 10)
		}
		return math.Round(r.ExpFloat64() * 40)
	}},
	{"sorted", nil}, // ascending input, generated in makeData
}

func makeData(name string, gen func(*rand.Rand) float64, n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	xs := make([]float64, n)
	for i := range xs {
		if gen == nil {
			xs[i] = float64(i) / 3
			continue
		}
		xs[i] = gen(r)
	}
	return xs
}

func TestQuantileSketchSmallIsExact(t *testing.T) {
	for _, n := range []int{1, 2, 3, 17, 100, DefaultQuantileK} {
		for _, d := range distributions {
			xs := makeData(d.name, d.gen, n, uint64(n))
			s := NewQuantileSketch(0)
			for _, x := range xs {
				s.Add(x)
			}
			checkQuantileInvariants(t, s)
			sorted := slices.Sorted(slices.Values(xs))
			if got := s.RankError(); got != 0 {
				t.Errorf("%s n=%d: RankError() = %v, want 0 for an exact sketch", d.name, n, got)
			}
			if got := maxRankError(s, sorted); got != 0 {
				t.Errorf("%s n=%d: max rank error = %v, want 0", d.name, n, got)
			}
			if got, want := s.Min(), sorted[0]; got != want {
				t.Errorf("%s n=%d: Min() = %v, want %v", d.name, n, got, want)
			}
			if got, want := s.Max(), sorted[n-1]; got != want {
				t.Errorf("%s n=%d: Max() = %v, want %v", d.name, n, got, want)
			}
			for _, q := range []float64{0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1} {
				// inverted CDF: the smallest value whose CDF reaches q.
				i := max(int(math.Ceil(q*float64(n)))-1, 0)
				if got, want := s.Quantile(q), sorted[i]; got != want {
					t.Errorf("%s n=%d: Quantile(%v) = %v, want %v", d.name, n, q, got, want)
				}
			}
			vals, weights := s.Items()
			uniq := slices.Compact(slices.Clone(sorted))
			if !slices.Equal(vals, uniq) {
				t.Errorf("%s n=%d: Items values = %v, want %v", d.name, n, vals, uniq)
			}
			for i, v := range vals {
				want := exactCDF(sorted, v) * float64(n)
				if i > 0 {
					want -= exactCDF(sorted, vals[i-1]) * float64(n)
				}
				if math.Abs(weights[i]-want) > 1e-9 {
					t.Errorf("%s n=%d: weight of %v = %v, want %v", d.name, n, v, weights[i], want)
					break
				}
			}
		}
	}
}

func TestQuantileSketchRankErrorWithinBound(t *testing.T) {
	sizes := []int{1000, 10000, 100000, 1000000}
	if testing.Short() {
		sizes = sizes[:3]
	}
	for _, n := range sizes {
		for _, d := range distributions {
			xs := makeData(d.name, d.gen, n, uint64(n)+7)
			s := NewQuantileSketch(0)
			for _, x := range xs {
				s.Add(x)
			}
			checkQuantileInvariants(t, s)
			sorted := slices.Sorted(slices.Values(xs))
			eps := s.RankError()
			got := maxRankError(s, sorted)
			t.Logf("%-8s n=%-8d max rank error %.5f (bound %.5f), %d values retained", d.name, n, got, eps, len(s.l0[:s.l0n])+s.sizeUp)
			if got > eps {
				t.Errorf("%s n=%d: max rank error %v, want ≤ RankError() %v", d.name, n, got, eps)
			}
			if s.Count() != int64(n) {
				t.Errorf("%s n=%d: Count() = %d", d.name, n, s.Count())
			}
			if got, want := s.Quantile(0), sorted[0]; got != want {
				t.Errorf("%s n=%d: Quantile(0) = %v, want min %v", d.name, n, got, want)
			}
			if got, want := s.Quantile(1), sorted[n-1]; got != want {
				t.Errorf("%s n=%d: Quantile(1) = %v, want max %v", d.name, n, got, want)
			}
			checkQuantiles(t, fmt.Sprintf("%s n=%d", d.name, n), s, sorted, eps)
		}
	}
}

// checkQuantiles fails t when a Quantile answer's true rank is more than eps
// away from the asked q.
func checkQuantiles(t *testing.T, name string, s *QuantileSketch, sorted []float64, eps float64) {
	t.Helper()
	n := float64(len(sorted))
	for _, q := range []float64{0.001, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 0.999} {
		v := s.Quantile(q)
		below := float64(slicesLowerBound(sorted, v)) / n // fraction < v
		upTo := exactCDF(sorted, v)                       // fraction ≤ v
		if upTo < q-eps || below > q+eps {
			t.Errorf("%s: Quantile(%v) = %v has true rank [%v, %v], want within %v of q", name, q, v, below, upTo, eps)
		}
	}
}

func slicesLowerBound(sorted []float64, x float64) int {
	i, _ := slices.BinarySearch(sorted, x)
	return i
}

func TestQuantileSketchMergeWithinBound(t *testing.T) {
	n := 300000
	if testing.Short() {
		n = 60000
	}
	for _, d := range distributions {
		xs := makeData(d.name, d.gen, n, 99)
		sorted := slices.Sorted(slices.Values(xs))
		// Unequal partitions, including an empty one and tiny ones.
		r := rand.New(rand.NewPCG(1, 1))
		var parts []*QuantileSketch
		for start := 0; start < n; {
			size := min(n-start, []int{0, 1, 150, 2000, 9000}[r.IntN(5)])
			p := NewQuantileSketch(0)
			p.AddSlice(xs[start : start+size])
			parts = append(parts, p)
			start += size
		}
		// Sequential merge.
		seq := NewQuantileSketch(0)
		for _, p := range parts {
			seq.Merge(p)
		}
		// Tree merge.
		level := parts
		for len(level) > 1 {
			var next []*QuantileSketch
			for i := 0; i < len(level); i += 2 {
				if i+1 == len(level) {
					next = append(next, level[i])
					continue
				}
				m := level[i].Clone()
				m.Merge(level[i+1])
				next = append(next, m)
			}
			level = next
		}
		for _, m := range []struct {
			name string
			s    *QuantileSketch
		}{{"sequential", seq}, {"tree", level[0]}} {
			checkQuantileInvariants(t, m.s)
			got, eps := maxRankError(m.s, sorted), m.s.RankError()
			t.Logf("%-8s %-10s merge of %d parts: max rank error %.5f (bound %.5f)", d.name, m.name, len(parts), got, eps)
			if got > eps {
				t.Errorf("%s %s merge: max rank error %v, want ≤ %v", d.name, m.name, got, eps)
			}
			if m.s.Count() != int64(n) {
				t.Errorf("%s %s merge: Count() = %d, want %d", d.name, m.name, m.s.Count(), n)
			}
			if m.s.Min() != sorted[0] || m.s.Max() != sorted[n-1] {
				t.Errorf("%s %s merge: Min, Max = %v, %v; want %v, %v", d.name, m.name, m.s.Min(), m.s.Max(), sorted[0], sorted[n-1])
			}
		}
	}
}

func TestQuantileSketchMergeSmallStaysExact(t *testing.T) {
	a, b := NewQuantileSketch(0), NewQuantileSketch(0)
	for i := range 50 {
		a.Add(float64(i))
		b.Add(float64(100 - i))
	}
	a.Merge(b)
	if got := a.RankError(); got != 0 {
		t.Errorf("RankError() = %v, want 0", got)
	}
	if got, want := a.CDF(50), 50.0/100; got != want {
		t.Errorf("CDF(50) = %v, want %v", got, want)
	}
	if got := a.Count(); got != 100 {
		t.Errorf("Count() = %d, want 100", got)
	}
}

func TestQuantileSketchMergeSelf(t *testing.T) {
	s := NewQuantileSketch(0)
	s.AddSlice(makeData("uniform", distributions[0].gen, 5000, 3))
	s.Merge(s)
	checkQuantileInvariants(t, s)
	if got := s.Count(); got != 10000 {
		t.Errorf("Count() after self merge = %d, want 10000", got)
	}
}

func TestQuantileSketchMergeDifferentK(t *testing.T) {
	xs := makeData("normal", distributions[1].gen, 100000, 5)
	sorted := slices.Sorted(slices.Values(xs))
	small, large := NewQuantileSketch(50), NewQuantileSketch(400)
	small.AddSlice(xs[:50000])
	large.AddSlice(xs[50000:])
	large.Merge(small)
	checkQuantileInvariants(t, large)
	if got := large.K(); got != 50 {
		t.Errorf("K() after merging k=50 into k=400 = %d, want 50", got)
	}
	if got, want := large.RankError(), KLLRankError(50); got != want {
		t.Errorf("RankError() = %v, want %v", got, want)
	}
	if got := maxRankError(large, sorted); got > large.RankError() {
		t.Errorf("max rank error %v, want ≤ %v", got, large.RankError())
	}
	empty := NewQuantileSketch(0)
	empty.Merge(NewQuantileSketch(64))
	if got := empty.K(); got != DefaultQuantileK {
		t.Errorf("K() after merging an empty sketch = %d, want %d", got, DefaultQuantileK)
	}
	empty.Merge(small)
	if got := empty.K(); got != 50 {
		t.Errorf("K() of an empty sketch after merging k=50 = %d, want 50", got)
	}
}

func TestQuantileSketchAddN(t *testing.T) {
	// Few values with large multiplicities: exact, since nothing compacts.
	s := NewQuantileSketch(0)
	s.AddN(3, 1000)
	s.AddN(1, 7)
	s.AddN(2, 1<<40)
	s.AddN(math.NaN(), 5)
	s.AddN(4, 0)
	checkQuantileInvariants(t, s)
	if got, want := s.Count(), int64(1007+1<<40); got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
	if got, want := s.CDF(1), 7/float64(1007+1<<40); got != want {
		t.Errorf("CDF(1) = %v, want %v", got, want)
	}
	if got, want := s.CDF(2.5), float64(7+1<<40)/float64(1007+1<<40); got != want {
		t.Errorf("CDF(2.5) = %v, want %v", got, want)
	}
	if got := s.Quantile(0.5); got != 2 {
		t.Errorf("Quantile(0.5) = %v, want 2", got)
	}
	// Many values with multiplicities: within the bound of the same data
	// added one by one.
	r := rand.New(rand.NewPCG(8, 8))
	var data []float64
	bulk := NewQuantileSketch(0)
	for range 3000 {
		x, n := math.Round(r.NormFloat64()*30), int64(r.IntN(60)+1)
		bulk.AddN(x, n)
		for range n {
			data = append(data, x)
		}
	}
	checkQuantileInvariants(t, bulk)
	slices.Sort(data)
	if got, want := bulk.Count(), int64(len(data)); got != want {
		t.Errorf("Count() = %d, want %d", got, want)
	}
	if got, eps := maxRankError(bulk, data), bulk.RankError(); got > eps {
		t.Errorf("AddN: max rank error %v, want ≤ %v", got, eps)
	}
}

func TestQuantileSketchAddSliceEqualsAdd(t *testing.T) {
	xs := makeData("pareto", distributions[3].gen, 50000, 11)
	xs[10], xs[2000] = math.NaN(), math.NaN()
	a, b := NewQuantileSketch(0), NewQuantileSketch(0)
	for _, x := range xs {
		a.Add(x)
	}
	b.AddSlice(xs[:777])
	b.AddSlice(xs[777:])
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("AddSlice and Add built different sketches:\n%.200s\n%.200s", ja, jb)
	}
	if got := a.Count(); got != 49998 {
		t.Errorf("Count() = %d, want 49998 (NaN ignored)", got)
	}
}

func TestQuantileSketchDeterministic(t *testing.T) {
	build := func() []byte {
		s := NewQuantileSketch(0)
		s.AddSlice(makeData("cauchy", distributions[2].gen, 200000, 4))
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	if a, b := build(), build(); string(a) != string(b) {
		t.Error("the same input built different sketches")
	}
}

func TestQuantileSketchEmptyAndSpecialValues(t *testing.T) {
	var zero QuantileSketch // the zero value is usable
	for name, got := range map[string]float64{
		"Min": zero.Min(), "Max": zero.Max(), "Quantile(0.5)": zero.Quantile(0.5), "CDF(1)": zero.CDF(1),
	} {
		if !math.IsNaN(got) {
			t.Errorf("empty %s = %v, want NaN", name, got)
		}
	}
	if v, w := zero.Items(); v != nil || w != nil {
		t.Errorf("empty Items() = %v, %v; want nil, nil", v, w)
	}
	zero.Add(math.NaN())
	if zero.Count() != 0 {
		t.Errorf("Count() after adding NaN = %d, want 0", zero.Count())
	}
	zero.Add(math.Inf(1))
	zero.Add(math.Copysign(0, -1))
	zero.Add(math.Inf(-1))
	zero.Add(5)
	if got := zero.Min(); !math.IsInf(got, -1) {
		t.Errorf("Min() = %v, want -Inf", got)
	}
	if got := zero.Max(); !math.IsInf(got, 1) {
		t.Errorf("Max() = %v, want +Inf", got)
	}
	if got := zero.CDF(0); got != 0.5 {
		t.Errorf("CDF(0) = %v, want 0.5", got)
	}
	if got := zero.CDF(math.Copysign(0, -1)); got != 0.5 {
		t.Errorf("CDF(-0) = %v, want 0.5 (−0 equals 0)", got)
	}
	if got := zero.Quantile(0.5); got != 0 || math.Signbit(got) {
		t.Errorf("Quantile(0.5) = %v, want +0", got)
	}
	for _, q := range []float64{-0.1, 1.1, math.NaN()} {
		if got := zero.Quantile(q); !math.IsNaN(got) {
			t.Errorf("Quantile(%v) = %v, want NaN", q, got)
		}
	}
	if got := zero.CDF(math.NaN()); !math.IsNaN(got) {
		t.Errorf("CDF(NaN) = %v, want NaN", got)
	}
	b, err := json.Marshal(&zero)
	if err != nil {
		t.Fatal(err)
	}
	var back QuantileSketch
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	if back.Max() != math.Inf(1) || back.CDF(0) != 0.5 {
		t.Errorf("round trip of %s: Max() = %v, CDF(0) = %v", b, back.Max(), back.CDF(0))
	}
}

func TestQuantileSketchConstantColumn(t *testing.T) {
	s := NewQuantileSketch(0)
	for range 100000 {
		s.Add(42)
	}
	checkQuantileInvariants(t, s)
	if got := s.Quantile(0.37); got != 42 {
		t.Errorf("Quantile(0.37) = %v, want 42", got)
	}
	if got := s.CDF(41.999); got != 0 {
		t.Errorf("CDF(41.999) = %v, want 0", got)
	}
	vals, weights := s.Items()
	if len(vals) != 1 || vals[0] != 42 || weights[0] != 100000 {
		t.Errorf("Items() = %v, %v; want [42], [100000]", vals, weights)
	}
}

// quantileSketchesForJSON returns sketches in various states.
func quantileSketchesForJSON() map[string]*QuantileSketch {
	out := map[string]*QuantileSketch{"empty": NewQuantileSketch(0), "k=8": NewQuantileSketch(8)}
	small := NewQuantileSketch(0)
	small.AddSlice([]float64{3, 1, 2, math.Inf(1), -1e300, 5e-324})
	out["small"] = small
	large := NewQuantileSketch(0)
	large.AddSlice(makeData("normal", distributions[1].gen, 123457, 6))
	out["large"] = large
	merged := NewQuantileSketch(100)
	merged.AddSlice(makeData("ties", distributions[4].gen, 30001, 7))
	merged.Merge(large)
	out["merged"] = merged
	out["k=8"].AddSlice(makeData("uniform", distributions[0].gen, 999, 8))
	return out
}

func TestQuantileSketchJSONRoundTrip(t *testing.T) {
	more := makeData("pareto", distributions[3].gen, 20000, 9)
	for name, s := range quantileSketchesForJSON() {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatalf("%s: marshal: %v", name, err)
		}
		var back QuantileSketch
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: unmarshal: %v", name, err)
		}
		checkQuantileInvariants(t, &back)
		b2, _ := json.Marshal(&back)
		if string(b) != string(b2) {
			t.Errorf("%s: re-marshal differs:\n%.300s\n%.300s", name, b, b2)
		}
		for _, q := range []float64{0, 0.1, 0.5, 0.9, 1} {
			if got, want := back.Quantile(q), s.Quantile(q); got != want && !(math.IsNaN(got) && math.IsNaN(want)) {
				t.Errorf("%s: Quantile(%v) = %v after round trip, want %v", name, q, got, want)
			}
		}
		if back.RankError() != s.RankError() || back.Count() != s.Count() || back.K() != s.K() {
			t.Errorf("%s: RankError, Count, K = %v, %d, %d after round trip; want %v, %d, %d",
				name, back.RankError(), back.Count(), back.K(), s.RankError(), s.Count(), s.K())
		}
		// The restored sketch continues exactly as the original would.
		orig := s.Clone()
		orig.AddSlice(more)
		back.AddSlice(more)
		j1, _ := json.Marshal(orig)
		j2, _ := json.Marshal(&back)
		if string(j1) != string(j2) {
			t.Errorf("%s: restored sketch diverged after more values", name)
		}
	}
}

func TestQuantileSketchJSONIsCompact(t *testing.T) {
	s := NewQuantileSketch(0)
	s.AddSlice(makeData("normal", distributions[1].gen, 1000000, 10))
	b, _ := json.Marshal(s)
	t.Logf("k=200, 10^6 values: %d bytes of JSON", len(b))
	if len(b) > 20000 {
		t.Errorf("JSON of a 10^6-value sketch is %d bytes, want ≤ 20000", len(b))
	}
}

func TestQuantileSketchUnmarshalInvalid(t *testing.T) {
	for _, in := range []string{
		``, `null`, `[]`, `{}`, `{"k":200}`,
		`{"k":4,"n":0,"rng":"0","levels":[[]]}`,
		`{"k":200,"n":-1,"rng":"0","levels":[[]]}`,
		`{"k":200,"n":0,"rng":"0","levels":[]}`,
		`{"k":200,"n":0,"rng":"zz","levels":[[]]}`,
		`{"k":200,"n":1,"rng":"0","levels":[[1]]}`,
		`{"k":200,"n":1,"min":2,"max":1,"rng":"0","levels":[[1]]}`,
		`{"k":200,"n":1,"min":1,"max":1,"rng":"0","levels":[[2]]}`,
		`{"k":200,"n":2,"min":1,"max":1,"rng":"0","levels":[[1]]}`,
		`{"k":200,"n":0,"min":1,"max":1,"rng":"0","levels":[[]]}`,
		`{"k":200,"n":4,"min":1,"max":2,"rng":"0","levels":[[],[2,1]]}`,
		`{"k":200,"n":1,"min":1,"max":1,"rng":"0","levels":[[null]]}`,
		`{"k":200,"n":1,"min":1,"max":1,"rng":"0","levels":[["1"]]}`,
		`{"k":200,"n":1,"min":1,"max":1,"rng":"0","levels":[[1e999]]}`,
		`{"k":200,"n":1,"min":"NaN","max":1,"rng":"0","levels":[[1]]}`,
		`{"k":200,"n":0,"rng":"0","levels":[[]],"extra":1}`,
		`{"k":200,"n":0,"rng":"0","levels":[[]]} x`,
		`{"k":8,"n":9,"min":1,"max":1,"rng":"0","levels":[[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]]}`,
		`{"k":200,"n":0,"rng":"0","levels":[[]` + strings.Repeat(",[]", 63) + `]}`,
		`{"k":200,"n":0,"min":1,"max":1,"rng":"0","levels":[[]` + strings.Repeat(",[]", 61) + `,[1,1]]}`,
	} {
		var s QuantileSketch
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("Unmarshal(%.80s) succeeded, want an error", in)
		}
		if err := s.UnmarshalJSON([]byte(in)); err == nil {
			t.Errorf("UnmarshalJSON(%.80s) succeeded, want an error", in)
		}
	}
}

func TestQuantileSketchConcurrentQueries(t *testing.T) {
	s := NewQuantileSketch(0)
	s.AddSlice(makeData("normal", distributions[1].gen, 100000, 12))
	done := make(chan float64)
	for g := range 4 {
		go func() {
			var sum float64
			for i := range 200 {
				sum += s.CDF(1e6+float64(i-100)) + s.Quantile(float64(i%4)/4) + float64(g-g)
			}
			done <- sum
		}()
	}
	want := <-done
	for range 3 {
		if got := <-done; got != want {
			t.Errorf("concurrent queries summed to %v and %v", got, want)
		}
	}
}

// TestQuantileRankErrorCalibration measures the distribution of the largest
// rank error over all x across independently seeded sketches of shuffled
// distinct values and checks that RankError's 99% bound holds: no more than
// 2% of the trials (the bound allows 1%) may exceed it.
func TestQuantileRankErrorCalibration(t *testing.T) {
	ks, trials, n := []int{50, 200, 800}, 400, 1<<15
	if testing.Short() {
		ks, trials = []int{200}, 100
	}
	for _, k := range ks {
		data := make([]float64, n)
		for i := range data {
			data[i] = float64(i)
		}
		sorted := slices.Clone(data)
		errs := make([]float64, trials)
		for tr := range trials {
			r := rand.New(rand.NewPCG(uint64(tr), uint64(k)))
			r.Shuffle(n, func(i, j int) { data[i], data[j] = data[j], data[i] })
			s := NewQuantileSketch(k)
			s.rng = splitmix64(uint64(tr)<<20|uint64(k)) | 1
			s.AddSlice(data)
			errs[tr] = maxRankError(s, sorted)
		}
		bound := KLLRankError(k)
		over := 0
		for _, e := range errs {
			if e > bound {
				over++
			}
		}
		slices.Sort(errs)
		t.Logf("k=%d, %d trials of n=%d: median %.5f, p99 %.5f, max %.5f; bound %.5f; %d over",
			k, trials, n, errs[trials/2], errs[trials*99/100], errs[trials-1], bound, over)
		if over*50 > trials {
			t.Errorf("k=%d: %d of %d trials exceed RankError %v, want ≤ 2%%", k, over, trials, bound)
		}
	}
}

func TestSort16(t *testing.T) {
	// 0-1 principle: a comparator network sorts every input if it sorts
	// every input of zeros and ones.
	for m := range 1 << 16 {
		var v [16]uint64
		for i := range v {
			v[i] = uint64(m>>i) & 1
		}
		sort16(&v)
		if !slices.IsSorted(v[:]) {
			t.Fatalf("sort16 left %v unsorted", v)
		}
	}
	r := rand.New(rand.NewPCG(2, 3))
	for range 1000 {
		var v [16]uint64
		for i := range v {
			v[i] = r.Uint64() >> r.IntN(64)
		}
		want := slices.Sorted(slices.Values(v[:]))
		sort16(&v)
		if !slices.Equal(v[:], want) {
			t.Fatalf("sort16 = %v, want %v", v, want)
		}
	}
}

func TestSortKeysAndMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 5))
	for _, n := range []int{0, 1, 2, 5, 31, 32, 33, 500} {
		v := make([]uint64, n)
		for i := range v {
			v[i] = r.Uint64N(20)
		}
		want := slices.Sorted(slices.Values(v))
		sortKeys(v)
		if !slices.Equal(v, want) {
			t.Errorf("sortKeys(n=%d) = %v, want %v", n, v, want)
		}
		w := make([]uint64, n/2+1)
		for i := range w {
			w[i] = r.Uint64N(20)
		}
		slices.Sort(w)
		got := mergeKeys(nil, v, w)
		if want := slices.Sorted(slices.Values(append(slices.Clone(v), w...))); !slices.Equal(got, want) {
			t.Errorf("mergeKeys = %v, want %v", got, want)
		}
	}
}

func TestFloatKeyPreservesOrder(t *testing.T) {
	xs := []float64{math.Inf(-1), -math.MaxFloat64, -1e10, -1, -math.SmallestNonzeroFloat64, 0,
		math.SmallestNonzeroFloat64, 1, 1.0000000000000002, 1e300, math.MaxFloat64, math.Inf(1)}
	for i := range xs {
		if got := keyFloat(floatKey(xs[i])); got != xs[i] {
			t.Errorf("keyFloat(floatKey(%v)) = %v", xs[i], got)
		}
		if i > 0 && floatKey(xs[i-1]) >= floatKey(xs[i]) {
			t.Errorf("floatKey(%v) ≥ floatKey(%v)", xs[i-1], xs[i])
		}
	}
	if floatKey(math.Copysign(0, -1)) != floatKey(0) {
		t.Error("floatKey(-0) != floatKey(0)")
	}
}

func FuzzQuantileSketchUnmarshalJSON(f *testing.F) {
	for _, s := range quantileSketchesForJSON() {
		b, _ := json.Marshal(s)
		f.Add(b)
	}
	f.Add([]byte(`{"k":8,"n":3,"min":1,"max":3,"rng":"5","levels":[[3,1],[2]]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var s QuantileSketch
		if err := json.Unmarshal(in, &s); err != nil {
			return
		}
		checkQuantileInvariants(t, &s)
		b, err := json.Marshal(&s)
		if err != nil {
			t.Fatalf("marshal after unmarshal: %v", err)
		}
		var back QuantileSketch
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal of own output %s: %v", b, err)
		}
		if b2, _ := json.Marshal(&back); string(b) != string(b2) {
			t.Fatalf("round trip changed %s to %s", b, b2)
		}
		prev := -1.0
		for _, x := range []float64{math.Inf(-1), -1, 0, 1, 2, 3, 1e9, math.Inf(1)} {
			c := s.CDF(x)
			if s.Count() > 0 && (c < prev || c < 0 || c > 1) {
				t.Fatalf("CDF(%v) = %v after %v", x, c, prev)
			}
			prev = c
		}
		_ = s.Quantile(0.5)
		n := s.Count()
		if n > math.MaxInt64/4 {
			return
		}
		s.AddSlice([]float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
		s.Merge(&back)
		checkQuantileInvariants(t, &s)
		if s.Count() != 2*n+17 {
			t.Fatalf("Count() = %d after adding 17 and merging a copy of %d", s.Count(), n)
		}
	})
}
