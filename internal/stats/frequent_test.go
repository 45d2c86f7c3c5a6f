package stats

import (
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// checkFrequentGuarantees fails t unless f honours its documented guarantees
// against the exact counts truth.
func checkFrequentGuarantees(t *testing.T, name string, f *FrequentItems, truth map[string]int64) {
	t.Helper()
	var total int64
	for _, c := range truth {
		total += c
	}
	if f.Total() != total {
		t.Errorf("%s: Total() = %d, want %d", name, f.Total(), total)
	}
	delta := f.MaxError()
	if f.Exact() != (delta == 0) {
		t.Errorf("%s: Exact() = %v with MaxError() = %d", name, f.Exact(), delta)
	}
	if bound := total / int64(f.Limit()+1); delta > bound {
		t.Errorf("%s: MaxError() = %d, want ≤ Total/(limit+1) = %d", name, delta, bound)
	}
	items := f.Items()
	if len(items) > f.Limit() {
		t.Errorf("%s: %d items, limit %d", name, len(items), f.Limit())
	}
	var reported int64
	tracked := map[string]bool{}
	for _, it := range items {
		tracked[it.Value] = true
		reported += it.Count
		tc := truth[it.Value]
		if it.Count < tc || it.Count > tc+delta {
			t.Errorf("%s: %q reported %d, true %d, want within [true, true+%d]", name, it.Value, it.Count, tc, delta)
		}
		if got := f.Count(it.Value); got != it.Count {
			t.Errorf("%s: Count(%q) = %d, Items says %d", name, it.Value, got, it.Count)
		}
		lo, hi := f.CountBounds(it.Value)
		if lo > tc || hi < tc {
			t.Errorf("%s: CountBounds(%q) = [%d, %d], true %d", name, it.Value, lo, hi, tc)
		}
	}
	if reported > total {
		t.Errorf("%s: reported counts sum to %d, above Total %d", name, reported, total)
	}
	for v, c := range truth {
		if c > delta && !tracked[v] {
			t.Errorf("%s: %q has true count %d > MaxError %d but is not tracked", name, v, c, delta)
		}
		if !tracked[v] && f.Count(v) != 0 {
			t.Errorf("%s: Count(%q) = %d for an untracked value", name, v, f.Count(v))
		}
	}
	if !slices.IsSortedFunc(items, func(a, b ItemCount) int {
		if a.Count != b.Count {
			return int(b.Count - a.Count)
		}
		return strings.Compare(a.Value, b.Value)
	}) {
		t.Errorf("%s: Items() not sorted by count desc, value asc", name)
	}
	if f.Exact() {
		if len(items) != len(truth) {
			t.Errorf("%s: exact with %d items, %d distinct values", name, len(items), len(truth))
		}
	}
}

// zipfStream returns n values drawn from a Zipf law over a large domain, and
// weights between 1 and maxW.
func zipfStream(seed uint64, n int, s float64, domain uint64, maxW int) ([]string, []int64) {
	r := rand.New(rand.NewPCG(seed, 17))
	z := rand.NewZipf(r, s, 1, domain)
	vals := make([]string, n)
	ws := make([]int64, n)
	for i := range vals {
		vals[i] = "v" + strconv.FormatUint(z.Uint64(), 10)
		ws[i] = int64(1 + r.IntN(maxW))
	}
	return vals, ws
}

func TestFrequentItemsExactUnderLimit(t *testing.T) {
	f := NewFrequentItems(5)
	truth := map[string]int64{}
	for i, v := range []string{"b", "a", "c", "a", "b", "a", "e", "d", "b"} {
		n := int64(1 + i%2)
		f.Add(v, n)
		truth[v] += n
	}
	f.Add("ignored", 0)
	f.Add("ignored", -3)
	checkFrequentGuarantees(t, "five values", f, truth)
	if !f.Exact() {
		t.Fatal("Exact() = false with 5 distinct values and limit 5")
	}
	want := []ItemCount{{"a", 6}, {"b", 3}, {"d", 2}, {"c", 1}, {"e", 1}}
	if got := f.Items(); !slices.Equal(got, want) {
		t.Errorf("Items() = %v, want %v", got, want)
	}
	f.Add("f", 1)
	if f.Exact() {
		t.Error("Exact() = true after a sixth distinct value with limit 5")
	}
}

func TestFrequentItemsApproximateGuarantees(t *testing.T) {
	for _, tc := range []struct {
		limit  int
		skew   float64
		domain uint64
		maxW   int
	}{
		{10, 1.2, 1000, 1},
		{100, 1.1, 1 << 20, 1},
		{100, 1.5, 1 << 20, 5},
		{1000, 1.05, 1 << 24, 3},
	} {
		vals, ws := zipfStream(uint64(tc.limit), 100000, tc.skew, tc.domain, tc.maxW)
		f := NewFrequentItems(tc.limit)
		truth := map[string]int64{}
		for i, v := range vals {
			f.Add(v, ws[i])
			truth[v] += ws[i]
		}
		name := "limit " + strconv.Itoa(tc.limit) + " skew " + strconv.FormatFloat(tc.skew, 'g', -1, 64)
		checkFrequentGuarantees(t, name, f, truth)
		t.Logf("%s: %d distinct, MaxError %d (Total/(limit+1) = %d), top %v", name, len(truth), f.MaxError(), f.Total()/int64(tc.limit+1), f.Items()[:3])
	}
}

func TestFrequentItemsAddBytesEqualsAdd(t *testing.T) {
	vals, ws := zipfStream(3, 50000, 1.1, 5000, 2)
	a, b := NewFrequentItems(200), NewFrequentItems(200)
	for i, v := range vals {
		a.Add(v, ws[i])
		b.AddBytes([]byte(v), ws[i])
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Error("AddBytes and Add built different counters")
	}
}

func TestFrequentItemsAddTrackedDoesNotAllocate(t *testing.T) {
	f := NewFrequentItems(0)
	b := []byte("airport-SFO")
	f.AddBytes(b, 1)
	f.Add("airport-JFK", 1)
	s := "airport-JFK"
	if got := testing.AllocsPerRun(1000, func() { f.AddBytes(b, 1) }); got != 0 {
		t.Errorf("AddBytes of a tracked value: %v allocations, want 0", got)
	}
	if got := testing.AllocsPerRun(1000, func() { f.Add(s, 2) }); got != 0 {
		t.Errorf("Add of a tracked value: %v allocations, want 0", got)
	}
}

func TestFrequentItemsMerge(t *testing.T) {
	// Exact + exact whose union fits stays exact.
	a, b := NewFrequentItems(10), NewFrequentItems(10)
	truth := map[string]int64{}
	for i := range 30 {
		v := strconv.Itoa(i % 7)
		a.Add(v, 1)
		b.Add(strconv.Itoa(i%5+3), 2)
		truth[v]++
		truth[strconv.Itoa(i%5+3)] += 2
	}
	a.Merge(b)
	checkFrequentGuarantees(t, "exact merge", a, truth)
	if !a.Exact() {
		t.Error("merge of exact counters with 8 values under limit 10 is not exact")
	}

	// Many partitions, exact and approximate, merged sequentially and as a tree.
	for _, limit := range []int{20, 300} {
		vals, ws := zipfStream(uint64(limit)+1, 100000, 1.1, 1<<18, 3)
		truth := map[string]int64{}
		var parts []*FrequentItems
		r := rand.New(rand.NewPCG(9, 9))
		for start := 0; start < len(vals); {
			size := min(len(vals)-start, []int{0, 3, 50, 2000, 10000}[r.IntN(5)])
			p := NewFrequentItems(limit)
			for i := start; i < start+size; i++ {
				p.Add(vals[i], ws[i])
				truth[vals[i]] += ws[i]
			}
			parts = append(parts, p)
			start += size
		}
		seq := NewFrequentItems(limit)
		for _, p := range parts {
			seq.Merge(p)
		}
		checkFrequentGuarantees(t, "sequential merge, limit "+strconv.Itoa(limit), seq, truth)
		for len(parts) > 1 {
			var next []*FrequentItems
			for i := 0; i+1 < len(parts); i += 2 {
				m := parts[i].Clone()
				m.Merge(parts[i+1])
				next = append(next, m)
			}
			if len(parts)%2 == 1 {
				next = append(next, parts[len(parts)-1])
			}
			parts = next
		}
		checkFrequentGuarantees(t, "tree merge, limit "+strconv.Itoa(limit), parts[0], truth)
	}

	// Self merge doubles; an empty receiver takes the other's limit.
	c := NewFrequentItems(3)
	c.Add("x", 2)
	c.Merge(c)
	if got := c.Count("x"); got != 4 {
		t.Errorf("self merge: Count(x) = %d, want 4", got)
	}
	d := NewFrequentItems(0)
	d.Merge(c)
	if got := d.Limit(); got != 3 {
		t.Errorf("empty receiver: Limit() = %d after merging limit 3, want 3", got)
	}
	d.Merge(nil)
	d.Merge(NewFrequentItems(7))
	if got := d.Total(); got != 4 {
		t.Errorf("Total() = %d after merging nil and empty, want 4", got)
	}
}

func TestFrequentItemsZeroValue(t *testing.T) {
	var f FrequentItems
	if f.Limit() != DefaultFrequentLimit || !f.Exact() || f.Total() != 0 || len(f.Items()) != 0 || f.Count("a") != 0 {
		t.Errorf("zero value: Limit %d, Exact %v, Total %d, Items %v", f.Limit(), f.Exact(), f.Total(), f.Items())
	}
	f.Add("a", 3)
	f.AddBytes([]byte("b"), 1)
	if got := f.Items(); !slices.Equal(got, []ItemCount{{"a", 3}, {"b", 1}}) {
		t.Errorf("Items() = %v", got)
	}
}

func frequentForJSON() map[string]*FrequentItems {
	out := map[string]*FrequentItems{"empty": NewFrequentItems(0)}
	exact := NewFrequentItems(10)
	exact.Add("x", 5)
	exact.Add("", 2)
	exact.Add("ünïcode \"quoted\"\n", 1)
	out["exact"] = exact
	approx := NewFrequentItems(50)
	vals, ws := zipfStream(4, 20000, 1.2, 1<<16, 2)
	for i, v := range vals {
		approx.Add(v, ws[i])
	}
	out["approximate"] = approx
	return out
}

func TestFrequentItemsJSONRoundTrip(t *testing.T) {
	more, _ := zipfStream(5, 5000, 1.2, 1<<16, 1)
	for name, f := range frequentForJSON() {
		b, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		var back FrequentItems
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: unmarshal %s: %v", name, b, err)
		}
		if !slices.Equal(back.Items(), f.Items()) || back.Total() != f.Total() || back.MaxError() != f.MaxError() || back.Limit() != f.Limit() {
			t.Errorf("%s: round trip changed the counter", name)
		}
		if b2, _ := json.Marshal(&back); string(b2) != string(b) {
			t.Errorf("%s: re-marshal differs:\n%s\n%s", name, b, b2)
		}
		orig := f.Clone()
		for _, v := range more {
			orig.Add(v, 1)
			back.Add(v, 1)
		}
		if !slices.Equal(back.Items(), orig.Items()) || back.MaxError() != orig.MaxError() {
			t.Errorf("%s: restored counter diverged after more values", name)
		}
	}
}

func TestFrequentItemsUnmarshalInvalid(t *testing.T) {
	for _, in := range []string{
		``, `null`, `{}`, `[]`,
		`{"limit":0,"total":0,"max_error":0,"items":[]}`,
		`{"limit":16777217,"total":0,"max_error":0,"items":[]}`,
		`{"limit":5,"total":-1,"max_error":0,"items":[]}`,
		`{"limit":5,"total":1,"max_error":2,"items":[]}`,
		`{"limit":1,"total":2,"max_error":0,"items":[{"value":"a","count":1},{"value":"b","count":1}]}`,
		`{"limit":5,"total":2,"max_error":0,"items":[{"value":"a","count":1},{"value":"a","count":1}]}`,
		`{"limit":5,"total":3,"max_error":0,"items":[{"value":"a","count":2}]}`,
		`{"limit":5,"total":10,"max_error":2,"items":[{"value":"a","count":2}]}`,
		`{"limit":5,"total":10,"max_error":2,"items":[{"value":"a","count":12}]}`,
		`{"limit":5,"total":1,"max_error":0,"items":[{"value":"a","count":0}]}`,
		`{"limit":5,"total":9223372036854775807,"max_error":1,"items":[{"value":"a","count":9223372036854775807},{"value":"b","count":9223372036854775807}]}`,
		`{"limit":5,"total":0,"max_error":0,"items":[],"extra":1}`,
		`{"limit":5,"total":0,"max_error":0,"items":[{"value":1,"count":1}]}`,
		`{"limit":5,"total":0,"max_error":0,"items":[]} {}`,
	} {
		var f FrequentItems
		if err := json.Unmarshal([]byte(in), &f); err == nil {
			t.Errorf("Unmarshal(%s) succeeded, want an error", in)
		}
	}
}

func FuzzFrequentItemsUnmarshalJSON(f *testing.F) {
	for _, fi := range frequentForJSON() {
		b, _ := json.Marshal(fi)
		f.Add(b)
	}
	f.Add([]byte(`{"limit":2,"total":10,"max_error":3,"items":[{"value":"a","count":6},{"value":"b","count":4}]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var fi FrequentItems
		if err := json.Unmarshal(in, &fi); err != nil {
			return
		}
		b, err := json.Marshal(&fi)
		if err != nil {
			t.Fatal(err)
		}
		var back FrequentItems
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal of own output %s: %v", b, err)
		}
		if b2, _ := json.Marshal(&back); string(b2) != string(b) {
			t.Fatalf("round trip changed %s to %s", b, b2)
		}
		var sum int64
		for _, it := range fi.Items() {
			if it.Count <= fi.MaxError() || it.Count > fi.Total() {
				t.Fatalf("item %v with MaxError %d, Total %d", it, fi.MaxError(), fi.Total())
			}
			sum += it.Count - fi.MaxError()
		}
		if sum > fi.Total() {
			t.Fatalf("counts sum to %d above Total %d", sum, fi.Total())
		}
		if fi.Total() < 1<<40 {
			fi.Add("x", 3)
			fi.Merge(&back)
			if len(fi.Items()) > fi.Limit() {
				t.Fatalf("%d items above limit %d", len(fi.Items()), fi.Limit())
			}
		}
	})
}
