package stats

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestHashFloatIsXXHashOfCanonicalBits(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	xs := []float64{0, 1, -1, math.Inf(1), math.Inf(-1), math.MaxFloat64, math.SmallestNonzeroFloat64, 1e-300}
	for range 1000 {
		xs = append(xs, math.Float64frombits(r.Uint64()))
	}
	for _, x := range xs {
		if x != x {
			continue
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(x))
		if got, want := HashFloat(x), xxhash.Sum64(b[:]); got != want {
			t.Errorf("HashFloat(%v) = %x, want xxhash %x", x, got, want)
		}
	}
	if HashFloat(math.Copysign(0, -1)) != HashFloat(0) {
		t.Error("HashFloat(-0) != HashFloat(0)")
	}
	nan1, nan2 := math.Float64frombits(0x7ff8000000000123), math.Float64frombits(0xfff0000000000001)
	if HashFloat(nan1) != HashFloat(nan2) || HashFloat(nan1) != HashFloat(math.NaN()) {
		t.Error("NaNs with different payloads hash differently")
	}
	if got, want := HashString("abc"), Hash64([]byte("abc")); got != want {
		t.Errorf("HashString = %x, Hash64 = %x", got, want)
	}
}

func TestDistinctCounterExactWhileSmall(t *testing.T) {
	for _, n := range []int{0, 1, 2, 100, 1000, DistinctExactLimit} {
		c := NewDistinctCounter()
		f := NewDistinctCounter()
		for i := range n {
			for range 1 + i%3 { // duplicates do not count
				c.AddString("v" + strconv.Itoa(i))
				f.AddFloat(float64(i) - 0.5)
			}
		}
		if got := c.Estimate(); got != int64(n) {
			t.Errorf("strings: Estimate() = %d, want %d", got, n)
		}
		if got := f.Estimate(); got != int64(n) {
			t.Errorf("floats: Estimate() = %d, want %d", got, n)
		}
		if !c.Exact() || !f.Exact() {
			t.Errorf("n=%d: Exact() = %v, %v; want true", n, c.Exact(), f.Exact())
		}
	}
	var z DistinctCounter // zero value
	z.AddFloat(0)
	z.AddFloat(math.Copysign(0, -1))
	z.AddFloat(math.NaN())
	z.AddFloat(-math.NaN())
	z.AddHash(0)
	z.AddHash(0)
	z.AddBytes([]byte("x"))
	z.AddString("x")
	if got := z.Estimate(); got != 4 {
		t.Errorf("Estimate() = %d, want 4 (0, NaN, hash 0, \"x\")", got)
	}
}

func TestDistinctCounterAccuracy(t *testing.T) {
	for _, n := range []int{DistinctExactLimit + 1, 10000, 100000, 300000, 1000000} {
		c := NewDistinctCounter()
		for i := range n {
			c.AddString("user-" + strconv.Itoa(i))
			if i%2 == 0 {
				c.AddString("user-" + strconv.Itoa(i)) // duplicates
			}
		}
		got := c.Estimate()
		rel := float64(got-int64(n)) / float64(n)
		t.Logf("n=%d: estimate %d (%+.3f%%)", n, got, 100*rel)
		if math.Abs(rel) > 0.03 {
			t.Errorf("n=%d: Estimate() = %d, relative error %.4f, want within 3%%", n, got, rel)
		}
		if c.Exact() {
			t.Errorf("n=%d: Exact() = true above the exact limit", n)
		}
	}
}

// TestDistinctErrorProfile measures bias and spread of the relative error
// over independent streams (different value offsets) at several
// cardinalities: the standard error of precision 14 is 1.04/128 ≈ 0.81%.
func TestDistinctErrorProfile(t *testing.T) {
	trials := 30
	sizes := []int{5000, 12000, 30000, 100000, 1000000}
	if testing.Short() {
		trials, sizes = 10, sizes[:4]
	}
	for _, n := range sizes {
		var sum, sumSq float64
		for tr := range trials {
			c := NewDistinctCounter()
			base := float64(tr) * 1e7
			for i := range n {
				c.AddFloat(base + float64(i))
			}
			rel := float64(c.Estimate()-int64(n)) / float64(n)
			sum += rel
			sumSq += rel * rel
		}
		mean := sum / float64(trials)
		rms := math.Sqrt(sumSq / float64(trials))
		t.Logf("n=%-8d %d trials: mean relative error %+.3f%%, RMS %.3f%%", n, trials, 100*mean, 100*rms)
		if rms > 0.0125 {
			t.Errorf("n=%d: RMS relative error %.4f, want ≤ 1.25%% (standard error 0.81%%)", n, rms)
		}
	}
}

func TestDistinctCounterMergeIsUnion(t *testing.T) {
	build := func(lo, hi int) *DistinctCounter {
		c := NewDistinctCounter()
		for i := lo; i < hi; i++ {
			c.AddFloat(float64(i))
		}
		return c
	}
	for _, tc := range []struct {
		name           string
		a0, a1, b0, b1 int
		union          int
		exact          bool
	}{
		{"exact+exact", 0, 1000, 500, 2000, 2000, true},
		{"exact+exact overflows", 0, 3000, 2000, 6000, 6000, false},
		{"exact+dense", 0, 1000, 500, 80000, 80000, false},
		{"dense+exact", 0, 80000, 79000, 81000, 81000, false},
		{"dense+dense", 0, 600000, 400000, 1000000, 1000000, false},
	} {
		a, b := build(tc.a0, tc.a1), build(tc.b0, tc.b1)
		bEst := b.Estimate()
		a.Merge(b)
		got := a.Estimate()
		if b.Estimate() != bEst {
			t.Errorf("%s: Merge modified its argument", tc.name)
		}
		if tc.exact {
			if got != int64(tc.union) || !a.Exact() {
				t.Errorf("%s: Estimate() = %d, Exact() = %v; want %d, true", tc.name, got, a.Exact(), tc.union)
			}
			continue
		}
		if rel := math.Abs(float64(got-int64(tc.union))) / float64(tc.union); rel > 0.03 {
			t.Errorf("%s: Estimate() = %d, want %d within 3%%", tc.name, got, tc.union)
		}
		// Merging equals adding everything to one counter.
		whole := build(min(tc.a0, tc.b0), max(tc.a1, tc.b1))
		if whole.Estimate() != got {
			t.Errorf("%s: merged estimate %d, one counter over the union %d", tc.name, got, whole.Estimate())
		}
	}
	c := build(0, 10000)
	before := c.Estimate()
	c.Merge(c)
	c.Merge(nil)
	c.Merge(NewDistinctCounter())
	if c.Estimate() != before {
		t.Errorf("self/nil/empty merge changed the estimate from %d to %d", before, c.Estimate())
	}
}

func TestDistinctCounterJSONRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 3000, DistinctExactLimit, 50000, 2000000} {
		c := NewDistinctCounter()
		for i := range n {
			c.AddFloat(float64(i))
		}
		if n == 1 {
			c.AddHash(0)
		}
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var back DistinctCounter
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("n=%d: unmarshal: %v", n, err)
		}
		if back.Estimate() != c.Estimate() || back.Exact() != c.Exact() {
			t.Errorf("n=%d: Estimate, Exact = %d, %v after round trip; want %d, %v", n, back.Estimate(), back.Exact(), c.Estimate(), c.Exact())
		}
		b2, _ := json.Marshal(&back)
		if string(b) != string(b2) {
			t.Errorf("n=%d: re-marshal differs", n)
		}
		if n >= 50000 && len(b) > 16500 {
			t.Errorf("n=%d: dense JSON is %d bytes, want ≤ 16500", n, len(b))
		}
		c.AddString("more")
		back.AddString("more")
		if back.Estimate() != c.Estimate() {
			t.Errorf("n=%d: diverged after one more value", n)
		}
	}
}

func TestDistinctCounterUnmarshalInvalid(t *testing.T) {
	regs := strings.Repeat("A", hllM/4*3/3*4)
	for _, in := range []string{
		``, `null`, `{}`, `{"p":14}`, `{"p":12,"hashes":""}`,
		`{"p":14,"hashes":"","registers":""}`,
		`{"p":14,"hashes":"!!"}`,
		`{"p":14,"hashes":"AAAA"}`,                                          // 3 bytes
		`{"p":14,"hashes":"AQAAAAAAAAABAAAAAAAAAA=="}`,                      // duplicate hash 1
		`{"p":14,"hashes":"AgAAAAAAAAABAAAAAAAAAA=="}`,                      // not ascending
		`{"p":14,"registers":"AAAA"}`,                                       // too short
		`{"p":14,"registers":"` + "/" + regs[1:] + `"}`,                     // register 63 > 51
		`{"p":14,"registers":"` + regs + `","extra":true}`,                  // unknown field
		`{"p":14,"registers":"` + regs + `"}{}`,                             // trailing data
		`{"p":14,"hashes":"` + ascendingHashes(DistinctExactLimit+1) + `"}`, // too many
	} {
		var c DistinctCounter
		if err := json.Unmarshal([]byte(in), &c); err == nil {
			t.Errorf("Unmarshal(%.60s) succeeded, want an error", in)
		}
	}
	var ok DistinctCounter
	if err := json.Unmarshal([]byte(`{"p":14,"registers":"`+regs+`"}`), &ok); err != nil {
		t.Errorf("all-zero registers: %v", err)
	}
	if err := json.Unmarshal([]byte(`{"p":14,"hashes":"`+ascendingHashes(DistinctExactLimit)+`"}`), &ok); err != nil {
		t.Errorf("%d hashes: %v", DistinctExactLimit, err)
	}
	if got := ok.Estimate(); got != DistinctExactLimit || !ok.Exact() {
		t.Errorf("Estimate(), Exact() = %d, %v; want %d, true", got, ok.Exact(), DistinctExactLimit)
	}
}

// ascendingHashes returns the base64 encoding of the hashes 1..n.
func ascendingHashes(n int) string {
	raw := make([]byte, 8*n)
	for i := range n {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(i+1))
	}
	return base64.StdEncoding.EncodeToString(raw)
}

func FuzzDistinctCounterUnmarshalJSON(f *testing.F) {
	for _, n := range []int{0, 5, 5000} {
		c := NewDistinctCounter()
		for i := range n {
			c.AddFloat(float64(i))
		}
		b, _ := json.Marshal(c)
		f.Add(b)
	}
	f.Add([]byte(`{"p":14,"hashes":"AQAAAAAAAAA="}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		var c DistinctCounter
		if err := json.Unmarshal(in, &c); err != nil {
			return
		}
		est := c.Estimate()
		if est < 0 {
			t.Fatalf("Estimate() = %d", est)
		}
		b, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		var back DistinctCounter
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("unmarshal of own output: %v", err)
		}
		if back.Estimate() != est {
			t.Fatalf("Estimate %d after round trip, want %d", back.Estimate(), est)
		}
		back.Merge(&c)
		if back.Estimate() != est {
			t.Fatalf("merging a copy changed the estimate from %d to %d", est, back.Estimate())
		}
		c.AddString("x")
	})
}
