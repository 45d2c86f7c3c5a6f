package stats

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// DistinctCounter is a HyperLogLog sketch estimating the number of distinct
// values in a stream; mergeable; relative standard error about 1.04/√m with
// m registers. Small cardinalities are counted exactly (sparse form), so
// columns with few values report exact counts.
//
// Up to DistinctExactLimit distinct hashes are kept in a set and counted
// exactly (two different values collide only if their 64-bit hashes do,
// about once in 10^12 such sets; the set takes at most 64 KB). Past that
// the counter switches to 2^14 registers of 6 bits (precision 14, standard
// error 1.04/128 ≈ 0.81%; 16 KB, 12 KB packed in JSON), and
// Estimate uses Ertl's improved raw estimator ("New cardinality estimation
// algorithms for HyperLogLog sketches", 2017), which needs no empirical bias
// tables and stays unbiased from small to very large cardinalities.
// TestDistinctErrorProfile measures the relative error over 30 independent
// streams each of 5000, 12000, 30000, 10^5 and 10^6 distinct values: the
// mean error stayed within ±0.1% (no bias in the mid range, where raw
// HyperLogLog needs corrections) and the RMS error between 0.57% and 0.86%.
//
// The zero value is an empty counter ready to use. A DistinctCounter is not
// safe for concurrent use.
type DistinctCounter struct {
	set     []uint64 // open-addressing table of exact hashes; 0 marks an empty slot
	setN    int      // hashes in set
	hasZero bool     // the hash 0 was added (it cannot live in set)
	regs    []uint8  // dense registers; nil while exact
}

const (
	// hllP is the precision: the number of hash bits that pick a register.
	hllP = 14
	// hllM is the number of registers.
	hllM = 1 << hllP
	// hllQ is the number of remaining hash bits; registers hold 0..hllQ+1.
	hllQ = 64 - hllP
)

// DistinctExactLimit is how many distinct values a DistinctCounter counts
// exactly before it switches to HyperLogLog registers.
const DistinctExactLimit = 4096

// NewDistinctCounter returns an empty counter.
func NewDistinctCounter() *DistinctCounter { return &DistinctCounter{} }

// Hash64 returns the 64-bit hash (xxHash64, seed 0) that DistinctCounter
// uses for b.
func Hash64(b []byte) uint64 { return xxhash.Sum64(b) }

// HashString returns the 64-bit hash (xxHash64, seed 0) that DistinctCounter
// uses for s; it equals Hash64([]byte(s)).
func HashString(s string) uint64 { return xxhash.Sum64String(s) }

// HashFloat returns the 64-bit hash that AddFloat uses for x: xxHash64 of
// the 8 little-endian bytes of x's bits, with 0 and −0 given the bits of 0
// and every NaN the bits of one canonical NaN.
func HashFloat(x float64) uint64 {
	u := math.Float64bits(x + 0) // x + 0 turns −0 into +0
	if x != x {
		u = 0x7ff8000000000001
	}
	return xxhash64Uint64(u)
}

// xxhash64Uint64 is xxHash64 (seed 0) of the 8 little-endian bytes of u,
// unrolled for that one input length.
func xxhash64Uint64(u uint64) uint64 {
	const (
		p1 uint64 = 11400714785074694791
		p2 uint64 = 14029467366897019727
		p3 uint64 = 1609587929392839161
		p4 uint64 = 9650029242287828579
		p5 uint64 = 2870177450012600261
	)
	h := p5 + 8
	k1 := bits.RotateLeft64(u*p2, 31) * p1
	h ^= k1
	h = bits.RotateLeft64(h, 27)*p1 + p4
	h ^= h >> 33
	h *= p2
	h ^= h >> 29
	h *= p3
	h ^= h >> 32
	return h
}

// AddHash adds a value by its 64-bit hash (callers hash with Hash64/HashString).
func (c *DistinctCounter) AddHash(h uint64) {
	if c.regs != nil {
		c.addDense(h)
		return
	}
	c.addExact(h)
}

// addExact adds h to the exact set, switching to registers past the limit.
func (c *DistinctCounter) addExact(h uint64) {
	if h == 0 {
		if c.hasZero {
			return
		}
		c.hasZero = true
	} else if c.setInsert(h) {
		c.setN++
	} else {
		return
	}
	if c.exactCount() > DistinctExactLimit {
		c.toDense()
	}
}

// exactCount is the number of distinct hashes held while exact.
func (c *DistinctCounter) exactCount() int64 {
	n := int64(c.setN)
	if c.hasZero {
		n++
	}
	return n
}

// addDense updates the register that h selects.
func (c *DistinctCounter) addDense(h uint64) {
	idx := h >> hllQ
	// The sentinel bit caps the run of zeros at hllQ, so rho ≤ hllQ+1.
	rho := uint8(bits.LeadingZeros64(h<<hllP|1<<(hllP-1)) + 1)
	if rho > c.regs[idx] {
		c.regs[idx] = rho
	}
}

// setInsert adds h (non-zero) to the exact set and reports whether it was new.
func (c *DistinctCounter) setInsert(h uint64) bool {
	if (c.setN+1)*4 > len(c.set)*3 {
		c.growSet()
	}
	mask := uint64(len(c.set) - 1)
	i := (h * 0x9e3779b97f4a7c15) >> 32 & mask
	for {
		switch c.set[i] {
		case 0:
			c.set[i] = h
			return true
		case h:
			return false
		}
		i = (i + 1) & mask
	}
}

// growSet doubles the exact set's table.
func (c *DistinctCounter) growSet() {
	old := c.set
	c.set = make([]uint64, max(16, 2*len(old)))
	mask := uint64(len(c.set) - 1)
	for _, h := range old {
		if h == 0 {
			continue
		}
		i := (h * 0x9e3779b97f4a7c15) >> 32 & mask
		for c.set[i] != 0 {
			i = (i + 1) & mask
		}
		c.set[i] = h
	}
}

// toDense moves the exact set into registers.
func (c *DistinctCounter) toDense() {
	c.regs = make([]uint8, hllM)
	for _, h := range c.set {
		if h != 0 {
			c.addDense(h)
		}
	}
	if c.hasZero {
		c.addDense(0)
	}
	c.set, c.setN, c.hasZero = nil, 0, false
}

// AddString adds a text value.
func (c *DistinctCounter) AddString(s string) { c.AddHash(xxhash.Sum64String(s)) }

// AddBytes adds a text value given as bytes; it counts as the same value as
// AddString(string(b)).
func (c *DistinctCounter) AddBytes(b []byte) { c.AddHash(xxhash.Sum64(b)) }

// AddFloat adds a numeric value (0 and -0 count as one value, as do all NaNs).
func (c *DistinctCounter) AddFloat(x float64) { c.AddHash(HashFloat(x)) }

// Exact reports whether Estimate is an exact count (the counter has not
// switched to registers).
func (c *DistinctCounter) Exact() bool { return c.regs == nil }

// Merge adds o's values to c.
func (c *DistinctCounter) Merge(o *DistinctCounter) {
	if o == nil || o == c {
		return
	}
	if o.regs == nil {
		for _, h := range o.set {
			if h != 0 {
				c.AddHash(h)
			}
		}
		if o.hasZero {
			c.AddHash(0)
		}
		return
	}
	if c.regs == nil {
		c.toDense()
	}
	for i, r := range o.regs {
		if r > c.regs[i] {
			c.regs[i] = r
		}
	}
}

// Clone returns an independent copy of c.
func (c *DistinctCounter) Clone() *DistinctCounter {
	return &DistinctCounter{set: slices.Clone(c.set), setN: c.setN, hasZero: c.hasZero, regs: slices.Clone(c.regs)}
}

// Estimate returns the estimated number of distinct values.
func (c *DistinctCounter) Estimate() int64 {
	if c.regs == nil {
		return c.exactCount()
	}
	var hist [hllQ + 2]int
	for _, r := range c.regs {
		hist[r]++
	}
	return int64(math.Round(ertlEstimate(hist[:])))
}

// ertlEstimate is Ertl's improved raw estimator for a register histogram
// hist[0..q+1] of m registers:
//
//	m²/(2 ln 2) / (m·σ(C₀/m) + Σ_{k=1..q} C_k·2^−k + m·τ(1 − C_{q+1}/m)·2^−q)
//
// evaluated, as in the paper, by halving from the top.
func ertlEstimate(hist []int) float64 {
	q := len(hist) - 2
	m := 0
	for _, c := range hist {
		m += c
	}
	fm := float64(m)
	z := fm * ertlTau(1-float64(hist[q+1])/fm)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + float64(hist[k]))
	}
	z += fm * ertlSigma(float64(hist[0])/fm)
	return fm * fm / (2 * math.Ln2) / z
}

// ertlSigma is σ(x) = x + Σ_{k≥1} x^(2^k)·2^(k−1).
func ertlSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y += y
		if z == prev {
			return z
		}
	}
}

// ertlTau is τ(x) = (1 − x − Σ_{k≥1} (1 − x^(2^−k))²·2^−k)/3.
func ertlTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
}

// distinctJSON is the wire form of a DistinctCounter: the precision and
// either the exact hashes (sorted, 8 little-endian bytes each, base64) or the
// registers (6 bits each, packed four to three bytes, base64).
type distinctJSON struct {
	P         int     `json:"p"`
	Hashes    *string `json:"hashes,omitempty"`
	Registers *string `json:"registers,omitempty"`
}

// MarshalJSON encodes the counter so that UnmarshalJSON restores it exactly.
func (c *DistinctCounter) MarshalJSON() ([]byte, error) {
	w := distinctJSON{P: hllP}
	if c.regs == nil {
		hs := make([]uint64, 0, c.setN+1)
		if c.hasZero {
			hs = append(hs, 0)
		}
		for _, h := range c.set {
			if h != 0 {
				hs = append(hs, h)
			}
		}
		slices.Sort(hs)
		raw := make([]byte, 8*len(hs))
		for i, h := range hs {
			binary.LittleEndian.PutUint64(raw[8*i:], h)
		}
		s := base64.StdEncoding.EncodeToString(raw)
		w.Hashes = &s
	} else {
		raw := make([]byte, hllM/4*3)
		for i := 0; i < hllM; i += 4 {
			v := uint32(c.regs[i]) | uint32(c.regs[i+1])<<6 | uint32(c.regs[i+2])<<12 | uint32(c.regs[i+3])<<18
			j := i / 4 * 3
			raw[j], raw[j+1], raw[j+2] = byte(v), byte(v>>8), byte(v>>16)
		}
		s := base64.StdEncoding.EncodeToString(raw)
		w.Registers = &s
	}
	return json.Marshal(w)
}

// UnmarshalJSON decodes a counter written by MarshalJSON; invalid input is an error.
func (c *DistinctCounter) UnmarshalJSON(b []byte) error {
	var w distinctJSON
	if err := decodeStrict(b, &w); err != nil {
		return fmt.Errorf("decode distinct counter: %w", err)
	}
	t, err := distinctFromJSON(&w)
	if err != nil {
		return fmt.Errorf("decode distinct counter: %w", err)
	}
	*c = *t
	return nil
}

// distinctFromJSON validates a decoded counter and builds it.
func distinctFromJSON(w *distinctJSON) (*DistinctCounter, error) {
	if w.P != hllP {
		return nil, fmt.Errorf("precision %d, want %d", w.P, hllP)
	}
	if (w.Hashes == nil) == (w.Registers == nil) {
		return nil, errors.New("want exactly one of hashes and registers")
	}
	c := &DistinctCounter{}
	if w.Hashes != nil {
		raw, err := base64.StdEncoding.Strict().DecodeString(*w.Hashes)
		if err != nil {
			return nil, fmt.Errorf("hashes: %w", err)
		}
		if len(raw)%8 != 0 || len(raw)/8 > DistinctExactLimit {
			return nil, fmt.Errorf("hashes: %d bytes, want a multiple of 8 up to %d", len(raw), 8*DistinctExactLimit)
		}
		var prev uint64
		for i := 0; i < len(raw); i += 8 {
			h := binary.LittleEndian.Uint64(raw[i:])
			if i > 0 && h <= prev {
				return nil, fmt.Errorf("hashes: not strictly ascending at %d", i/8)
			}
			prev = h
			c.AddHash(h)
		}
		return c, nil
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(*w.Registers)
	if err != nil {
		return nil, fmt.Errorf("registers: %w", err)
	}
	if len(raw) != hllM/4*3 {
		return nil, fmt.Errorf("registers: %d bytes, want %d", len(raw), hllM/4*3)
	}
	c.regs = make([]uint8, hllM)
	for i := 0; i < hllM; i += 4 {
		j := i / 4 * 3
		v := uint32(raw[j]) | uint32(raw[j+1])<<8 | uint32(raw[j+2])<<16
		for d := range 4 {
			r := uint8(v >> (6 * d) & 63)
			if r > hllQ+1 {
				return nil, fmt.Errorf("registers: register %d is %d, above %d", i+d, r, hllQ+1)
			}
			c.regs[i+d] = r
		}
	}
	return c, nil
}
