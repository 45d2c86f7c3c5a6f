package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// FrequentItems counts text values: exactly while the number of distinct
// values stays within its limit, then approximately (the heavy hitters are
// kept with bounded over-estimation, see MaxError). Mergeable.
//
// While at most limit distinct values were seen, every count is exact. The
// first value beyond the limit turns the counter into a Misra–Gries summary
// of limit counters: when a new value finds every counter taken, the
// smallest amount d present among the counters and the newcomer is taken
// from all of them (counters that reach zero are freed) and added to
// MaxError. Merging follows Agarwal et al. ("Mergeable summaries", 2012):
// counters are added, and when more than limit remain the (limit+1)-th
// largest is taken from all of them.
//
// Guarantees, with Δ = MaxError():
//   - every reported count c of a value with true count t has t ≤ c ≤ t + Δ
//     (reported counts are the summary's lower bounds plus Δ, so they
//     over-estimate as Space-Saving counts do);
//   - every value whose true count exceeds Δ is tracked;
//   - Δ ≤ Total/(limit+1) when every merged counter had the same limit, so
//     every value with true count above Total/(limit+1) is tracked.
//
// Adding a value that is already tracked costs one map lookup and one
// increment. The zero value is an empty counter with DefaultFrequentLimit.
// A FrequentItems is not safe for concurrent use.
type FrequentItems struct {
	limit int
	total int64
	delta int64            // MaxError
	index map[string]int32 // value → position in items
	items []freqEntry
}

// freqEntry is a tracked value and its lower-bound count.
type freqEntry struct {
	value string
	count int64
}

// maxFrequentLimit bounds the limit so that positions fit an int32.
const maxFrequentLimit = 1 << 24

// NewFrequentItems returns an empty counter that counts up to limit distinct
// values exactly (DefaultFrequentLimit when limit <= 0; at most 2^24).
func NewFrequentItems(limit int) *FrequentItems {
	f := &FrequentItems{}
	f.init(limit)
	return f
}

func (f *FrequentItems) init(limit int) {
	if limit <= 0 {
		limit = DefaultFrequentLimit
	}
	f.limit = min(limit, maxFrequentLimit)
	f.index = make(map[string]int32)
}

// ready initializes a zero-value counter.
func (f *FrequentItems) ready() {
	if f.index == nil {
		f.init(f.limit)
	}
}

// Limit returns how many values the counter tracks.
func (f *FrequentItems) Limit() int {
	if f.limit == 0 {
		return DefaultFrequentLimit
	}
	return f.limit
}

// Add counts n more occurrences of value; n <= 0 adds nothing.
func (f *FrequentItems) Add(value string, n int64) {
	if n <= 0 {
		return
	}
	if i, ok := f.index[value]; ok {
		f.total += n
		f.items[i].count += n
		return
	}
	f.ready()
	f.total += n
	f.insert(value, n)
}

// AddBytes counts n more occurrences of the value spelled by b; it does not
// allocate when the value is already tracked.
func (f *FrequentItems) AddBytes(b []byte, n int64) {
	if n <= 0 {
		return
	}
	if i, ok := f.index[string(b)]; ok {
		f.total += n
		f.items[i].count += n
		return
	}
	f.ready()
	f.total += n
	f.insert(string(b), n)
}

// insert starts counting an untracked value seen n times.
func (f *FrequentItems) insert(value string, n int64) {
	if len(f.items) >= f.limit {
		d := n
		for _, e := range f.items {
			d = min(d, e.count)
		}
		f.delta += d
		n -= d
		f.subtract(d)
		if n == 0 {
			return
		}
	}
	f.index[value] = int32(len(f.items))
	f.items = append(f.items, freqEntry{value, n})
}

// subtract takes d from every counter and frees those that reach zero
// (moving the last counter into the freed place, so only two map writes
// happen per freed counter).
func (f *FrequentItems) subtract(d int64) {
	for i := 0; i < len(f.items); {
		f.items[i].count -= d
		if f.items[i].count > 0 {
			i++
			continue
		}
		delete(f.index, f.items[i].value)
		last := len(f.items) - 1
		if i != last {
			f.items[i] = f.items[last] // not yet decremented: visited next
			f.index[f.items[i].value] = int32(i)
		}
		f.items[last] = freqEntry{}
		f.items = f.items[:last]
	}
}

// Merge adds o's counts to f. The result keeps f's limit (an empty f takes
// o's); it stays exact while both are exact and their union of values fits
// the limit.
func (f *FrequentItems) Merge(o *FrequentItems) {
	if o == nil || o.total == 0 {
		return
	}
	if o == f {
		o = f.Clone()
	}
	f.ready()
	if f.total == 0 && len(f.items) == 0 {
		f.limit = o.Limit()
	}
	f.total += o.total
	f.delta += o.delta
	for _, e := range o.items {
		if i, ok := f.index[e.value]; ok {
			f.items[i].count += e.count
			continue
		}
		f.index[e.value] = int32(len(f.items))
		f.items = append(f.items, freqEntry{e.value, e.count})
	}
	if len(f.items) > f.limit {
		counts := make([]int64, len(f.items))
		for i, e := range f.items {
			counts[i] = e.count
		}
		slices.Sort(counts)
		d := counts[len(counts)-1-f.limit] // the (limit+1)-th largest
		f.delta += d
		f.subtract(d)
	}
}

// Clone returns an independent copy of f.
func (f *FrequentItems) Clone() *FrequentItems {
	c := &FrequentItems{limit: f.limit, total: f.total, delta: f.delta, items: slices.Clone(f.items)}
	c.index = make(map[string]int32, len(f.items))
	for i, e := range f.items {
		c.index[e.value] = int32(i)
	}
	return c
}

// Exact reports whether every count is exact (the limit was never exceeded).
func (f *FrequentItems) Exact() bool { return f.delta == 0 }

// Total returns the number of occurrences added.
func (f *FrequentItems) Total() int64 { return f.total }

// Len returns the number of tracked values.
func (f *FrequentItems) Len() int { return len(f.items) }

// Items returns the tracked values by descending count (ties by value).
func (f *FrequentItems) Items() []ItemCount {
	out := make([]ItemCount, len(f.items))
	for i, e := range f.items {
		out[i] = ItemCount{Value: e.value, Count: e.count + f.delta}
	}
	slices.SortFunc(out, func(a, b ItemCount) int {
		switch {
		case a.Count > b.Count:
			return -1
		case a.Count < b.Count:
			return 1
		}
		return strings.Compare(a.Value, b.Value)
	})
	return out
}

// Count returns value's (estimated) count; 0 when not tracked.
func (f *FrequentItems) Count(value string) int64 {
	if i, ok := f.index[value]; ok {
		return f.items[i].count + f.delta
	}
	return 0
}

// CountBounds returns bounds on value's true count: lower ≤ true ≤ upper.
// An untracked value has bounds 0 and MaxError.
func (f *FrequentItems) CountBounds(value string) (lower, upper int64) {
	if i, ok := f.index[value]; ok {
		return f.items[i].count, f.items[i].count + f.delta
	}
	return 0, f.delta
}

// MaxError returns the largest amount by which any reported count may exceed
// the true count (0 while Exact). It also bounds the true count of every
// value that is not tracked.
func (f *FrequentItems) MaxError() int64 { return f.delta }

// frequentJSON is the wire form of a FrequentItems: the limit, the total,
// MaxError and the tracked values with their reported counts, as Items
// returns them.
type frequentJSON struct {
	Limit    int         `json:"limit"`
	Total    int64       `json:"total"`
	MaxError int64       `json:"max_error"`
	Items    []ItemCount `json:"items"`
}

// MarshalJSON encodes the counter so that UnmarshalJSON restores it exactly.
func (f *FrequentItems) MarshalJSON() ([]byte, error) {
	items := f.Items()
	return json.Marshal(frequentJSON{Limit: f.Limit(), Total: f.total, MaxError: f.delta, Items: items})
}

// UnmarshalJSON decodes a counter written by MarshalJSON; invalid input is an error.
func (f *FrequentItems) UnmarshalJSON(b []byte) error {
	var w frequentJSON
	if err := decodeStrict(b, &w); err != nil {
		return fmt.Errorf("decode frequent items: %w", err)
	}
	t, err := frequentFromJSON(&w)
	if err != nil {
		return fmt.Errorf("decode frequent items: %w", err)
	}
	*f = *t
	return nil
}

// frequentFromJSON validates a decoded counter and builds it.
func frequentFromJSON(w *frequentJSON) (*FrequentItems, error) {
	if w.Limit < 1 || w.Limit > maxFrequentLimit {
		return nil, fmt.Errorf("limit %d outside [1, %d]", w.Limit, maxFrequentLimit)
	}
	if w.Total < 0 || w.MaxError < 0 || w.MaxError > w.Total {
		return nil, fmt.Errorf("total %d and max error %d inconsistent", w.Total, w.MaxError)
	}
	if len(w.Items) > w.Limit {
		return nil, fmt.Errorf("%d items above limit %d", len(w.Items), w.Limit)
	}
	f := NewFrequentItems(w.Limit)
	f.total, f.delta = w.Total, w.MaxError
	f.items = make([]freqEntry, 0, len(w.Items))
	var sum uint64
	for _, it := range w.Items {
		lower := it.Count - w.MaxError
		if lower < 1 {
			return nil, fmt.Errorf("item %q: count %d not above max error %d", it.Value, it.Count, w.MaxError)
		}
		if _, dup := f.index[it.Value]; dup {
			return nil, fmt.Errorf("item %q listed twice", it.Value)
		}
		var carry uint64
		sum, carry = bits.Add64(sum, uint64(lower), 0)
		if carry != 0 || sum > math.MaxInt64 {
			return nil, errors.New("counts overflow")
		}
		f.index[it.Value] = int32(len(f.items))
		f.items = append(f.items, freqEntry{it.Value, lower})
	}
	if w.MaxError == 0 && int64(sum) != w.Total {
		return nil, fmt.Errorf("exact counts sum to %d, total is %d", sum, w.Total)
	}
	if w.MaxError > 0 && int64(sum) > w.Total-w.MaxError {
		return nil, fmt.Errorf("counts sum to %d, above total %d minus max error %d", sum, w.Total, w.MaxError)
	}
	return f, nil
}
