package monitor

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/stats"
)

// Label is the ground truth of one prediction.
type Label struct {
	// RequestID is the X-Request-Id of the request that was answered; for
	// row i of a request of several rows, "REQUEST_ID#i" (from 0).
	RequestID string `json:"request_id"`
	// Value is the class index (classifiers) or the target (regression).
	Value float64 `json:"value"`
	// Time is when the truth was known (zero: now); a label more than
	// Config.Horizon after its prediction is late.
	Time time.Time `json:"time,omitzero"`
}

// FeedbackResult counts labels by outcome.
type FeedbackResult struct {
	// Accepted labels joined a prediction.
	Accepted int64 `json:"accepted"`
	// Unknown labels name no tracked prediction: a wrong id, or one
	// evicted (older than twice the horizon, or beyond MaxTracked).
	Unknown int64 `json:"unknown"`
	// Duplicate labels name a prediction already labelled (the first label
	// counts).
	Duplicate int64 `json:"duplicate"`
	// Late labels came more than the horizon after their prediction.
	Late int64 `json:"late"`
	// Invalid labels have a value the model's task cannot take (a class
	// index out of range, a non-finite target) or no request id.
	Invalid int64 `json:"invalid"`
}

// Feedback outcomes, as the mloop_monitor_feedback_total label says them.
const (
	outcomeAccepted = iota
	outcomeUnknown
	outcomeDuplicate
	outcomeLate
	outcomeInvalid
	nOutcomes
)

var outcomeNames = [nOutcomes]string{"accepted", "unknown", "duplicate", "late", "invalid"}

// Feedback joins labels with the predictions they label and updates the
// live quality of their windows and model versions. Bad labels are counted
// in the result, never an error; only a monitor that is not open is
// (EUNAVAILABLE).
func (m *Monitor) Feedback(ctx context.Context, labels []Label) (FeedbackResult, error) {
	var res FeedbackResult
	if !m.opened.Load() {
		return res, mloop.Errorf(mloop.EUNAVAILABLE, "the monitor is not open")
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	now := m.cfg.Now()
	horizon := m.cfg.Horizon.Nanoseconds()
	var counts [nOutcomes]int64
	var unknown []Label
	f := &m.fb
	f.mu.Lock()
	for _, l := range labels {
		o := f.join(l, now, horizon)
		if o == outcomeUnknown {
			unknown = append(unknown, l)
			continue
		}
		counts[o]++
	}
	f.mu.Unlock()
	// A prediction may still sit in Observe's buffers (for at most
	// FlushInterval): collect them once and try the unknown ids again.
	if len(unknown) > 0 && m.drain(ctx) == nil {
		f.mu.Lock()
		for _, l := range unknown {
			counts[f.join(l, now, horizon)]++
		}
		f.mu.Unlock()
	} else {
		counts[outcomeUnknown] += int64(len(unknown))
	}
	for o, n := range counts {
		if n > 0 {
			m.feedbackCounts[o].Add(n)
			m.met.feedback(o, n)
		}
	}
	res = FeedbackResult{Accepted: counts[outcomeAccepted], Unknown: counts[outcomeUnknown],
		Duplicate: counts[outcomeDuplicate], Late: counts[outcomeLate], Invalid: counts[outcomeInvalid]}
	return res, nil
}

func (m *Monitor) feedbackTotals() FeedbackResult {
	return FeedbackResult{Accepted: m.feedbackCounts[outcomeAccepted].Load(), Unknown: m.feedbackCounts[outcomeUnknown].Load(),
		Duplicate: m.feedbackCounts[outcomeDuplicate].Load(), Late: m.feedbackCounts[outcomeLate].Load(),
		Invalid: m.feedbackCounts[outcomeInvalid].Load()}
}

// winRef is what the feedback index knows of a window: its id, its live
// quality while open, and quality to merge into the store once saved.
type winRef struct {
	id    string
	mv    *mvState
	start time.Time

	// Under feedbackIndex.mu.
	live    *Quality // open window
	pending *Quality // closed: labels not yet merged into the store
	closed  bool
	saved   bool
	failed  bool
	// slot is 1 + the window's index in feedbackIndex.wins while tracked
	// predictions name it (0: none); tracked counts those predictions.
	slot    int32
	tracked int
}

// trackedPred is one prediction labels may join (40 bytes). It holds no
// pointer, so the garbage collector does not scan the ring of millions of
// them: its window is an index in feedbackIndex.wins and the outputs of a
// multi-output model are in the feedbackIndex.outs arena.
type trackedPred struct {
	key     uint64  // hash of the request id (and row)
	t       int64   // unix nanoseconds
	off     int64   // outputs of a multi-output model: outs at logical offset off
	pred    float32 // output of a one-output model
	win     int32   // index of the window in feedbackIndex.wins
	outs    uint32  // outputs in the arena (0: none, the model has one output)
	labeled bool
}

// floatRing is a FIFO of runs of float32 in one growable circular buffer.
// A run is addressed by its logical offset, which never changes: it is at
// buf[off%len(buf)], wrapping around the end of buf. It holds no pointer.
type floatRing struct {
	buf  []float32
	head int64 // logical offset of the oldest float
	tail int64 // logical offset past the newest float
}

// push appends v and returns its logical offset, growing the buffer as
// needed.
func (r *floatRing) push(v []float32) int64 {
	if need := r.tail - r.head + int64(len(v)); need > int64(len(r.buf)) {
		r.grow(need)
	}
	off := r.tail
	ringWrite(r.buf, off, v)
	r.tail += int64(len(v))
	return off
}

// grow moves the live floats to a buffer of at least need floats, at the
// same logical offsets.
func (r *floatRing) grow(need int64) {
	nb := make([]float32, max(2*int64(len(r.buf)), need, 64))
	n := int64(len(r.buf))
	for o := r.head; o < r.tail; {
		i := o % n
		k := min(r.tail-o, n-i)
		ringWrite(nb, o, r.buf[i:i+k])
		o += k
	}
	r.buf = nb
}

// pop removes the oldest run, of n floats at logical offset off.
func (r *floatRing) pop(off int64, n uint32) {
	r.head = off + int64(n)
	if r.head == r.tail {
		r.head, r.tail = 0, 0
	}
}

// read copies the run of len(dst) floats at logical offset off into dst.
func (r *floatRing) read(off int64, dst []float32) {
	i := int(off % int64(len(r.buf)))
	k := copy(dst, r.buf[i:])
	copy(dst[k:], r.buf)
}

// ringWrite copies v into the circular buffer buf at logical offset off.
func ringWrite(buf []float32, off int64, v []float32) {
	i := int(off % int64(len(buf)))
	k := copy(buf[i:], v)
	copy(buf, v[k:])
}

// feedbackIndex is a ring of tracked predictions with a hash index. The
// ring, the index and the arena of outputs hold no pointer; the few
// windows the tracked predictions name are in wins.
type feedbackIndex struct {
	mu      sync.Mutex
	max     int
	ring    []trackedPred
	head    int // oldest entry
	n       int
	index   map[uint64]int32
	outs    floatRing // outputs of multi-output models, in ring order
	wins    []*winRef // windows named by tracked predictions (nil: free)
	free    []int32   // free indices in wins
	scratch []float32 // a prediction's outputs, for join
	evicted int64
	pending map[*winRef]struct{}
}

func (f *feedbackIndex) init(maxTracked int) {
	f.max = maxTracked
	f.index = map[uint64]int32{}
	f.pending = map[*winRef]struct{}{}
}

func (f *feedbackIndex) size() (int, int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n, f.evicted
}

// rowKey is the key of row i of a request of several rows, whose id
// hashes to h: the same as the hash of "ID#i" would give through labelKey.
func rowKey(h uint64, i int) uint64 {
	x := h ^ (uint64(i)+1)*0x9e3779b97f4a7c15
	x ^= x >> 31
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 29
	return x
}

// openWindow starts the live quality of a window.
func (f *feedbackIndex) openWindow(r *winRef) {
	f.mu.Lock()
	r.live = NewQuality(r.mv.task)
	f.mu.Unlock()
}

// closeWindow ends a window's live quality and returns a copy of it (nil
// when no label joined).
func (f *feedbackIndex) closeWindow(r *winRef) *Quality {
	f.mu.Lock()
	defer f.mu.Unlock()
	q := r.live
	r.live, r.closed = nil, true
	if q == nil || q.Labels == 0 {
		return nil
	}
	return q.Clone()
}

// liveQuality returns a copy of an open window's quality (nil: no label).
func (f *feedbackIndex) liveQuality(r *winRef) *Quality {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r.live == nil || r.live.Labels == 0 {
		return nil
	}
	return r.live.Clone()
}

// saved records whether a closed window was saved.
func (f *feedbackIndex) saved(r *winRef, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r.saved, r.failed = ok, !ok
	if !ok {
		r.pending = nil
		delete(f.pending, r)
	}
}

// track records the predictions of requests seg (their rows' outputs y,
// outs per row) for feedback.
func (f *feedbackIndex) track(w *winRef, seg []reqRec, y []float32, outs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	row := 0
	for _, r := range seg {
		n := int(r.rows)
		if r.id == "" || n == 0 {
			row += n
			continue
		}
		h := stats.HashString(r.id)
		for i := range n {
			key := h
			if n > 1 {
				key = rowKey(h, i)
			}
			f.push(w, key, r.t, y[(row+i)*outs:(row+i+1)*outs])
		}
		row += n
	}
}

// push appends a prediction of window w with outputs out, evicting the
// oldest when the ring is full. The ring grows as needed up to max
// entries.
func (f *feedbackIndex) push(w *winRef, key uint64, t int64, out []float32) {
	if f.n == f.max {
		f.evictOldest()
	}
	e := trackedPred{key: key, t: t, win: f.acquire(w)}
	switch {
	case len(out) == 1:
		e.pred = out[0]
	case len(out) > 1:
		e.off, e.outs = f.outs.push(out), uint32(len(out))
	}
	var pos int
	if f.n == len(f.ring) {
		if f.head != 0 {
			f.linearize()
		}
		f.ring = append(f.ring, e)
		pos = len(f.ring) - 1
	} else {
		pos = (f.head + f.n) % len(f.ring)
		f.ring[pos] = e
	}
	f.n++
	f.index[e.key] = int32(pos)
}

// acquire counts one more tracked prediction of window w and returns its
// index in wins, giving it one if it has none.
func (f *feedbackIndex) acquire(w *winRef) int32 {
	if w.slot == 0 {
		var i int32
		if k := len(f.free); k > 0 {
			i, f.free = f.free[k-1], f.free[:k-1]
		} else {
			i = int32(len(f.wins))
			f.wins = append(f.wins, nil)
		}
		f.wins[i], w.slot = w, i+1
	}
	w.tracked++
	return w.slot - 1
}

// release counts one less tracked prediction of the window at index i of
// wins, freeing the index when none is left: no entry names it any more.
func (f *feedbackIndex) release(i int32) {
	w := f.wins[i]
	w.tracked--
	if w.tracked == 0 {
		f.wins[i], w.slot = nil, 0
		f.free = append(f.free, i)
	}
}

// linearize moves a full, wrapped ring's entries to the start of a new
// slice, oldest first, with room to grow.
func (f *feedbackIndex) linearize() {
	old := f.ring
	r := make([]trackedPred, f.n, min(max(2*f.n, 16), f.max))
	copy(r, old[f.head:])
	copy(r[len(old)-f.head:], old[:f.head])
	for i := range r {
		was := (f.head + i) % len(old)
		if p, ok := f.index[r[i].key]; ok && int(p) == was {
			f.index[r[i].key] = int32(i)
		}
	}
	f.ring, f.head = r, 0
}

func (f *feedbackIndex) evictOldest() {
	old := &f.ring[f.head]
	if p, ok := f.index[old.key]; ok && int(p) == f.head {
		delete(f.index, old.key)
	}
	f.release(old.win)
	if old.outs > 0 {
		f.outs.pop(old.off, old.outs)
	}
	*old = trackedPred{}
	f.head = (f.head + 1) % len(f.ring)
	f.n--
	f.evicted++
	if f.n == 0 {
		f.head = 0
		f.ring = f.ring[:0]
	}
}

// sweep evicts the entries predicted before cutoff (unix nanoseconds).
func (f *feedbackIndex) sweep(cutoff int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for f.n > 0 && f.ring[f.head].t < cutoff {
		f.evictOldest()
	}
}

// lookup finds the tracked prediction a request id names; under mu.
func (f *feedbackIndex) lookup(id string) *trackedPred {
	if p, ok := f.index[stats.HashString(id)]; ok {
		return &f.ring[p]
	}
	if i := strings.LastIndexByte(id, '#'); i > 0 {
		row, err := strconv.Atoi(id[i+1:])
		if err == nil && row >= 0 {
			if p, ok := f.index[rowKey(stats.HashString(id[:i]), row)]; ok {
				return &f.ring[p]
			}
		}
	}
	return nil
}

// join joins one label; under mu.
func (f *feedbackIndex) join(l Label, now time.Time, horizon int64) int {
	if l.RequestID == "" {
		return outcomeInvalid
	}
	e := f.lookup(l.RequestID)
	if e == nil {
		return outcomeUnknown
	}
	t := l.Time
	if t.IsZero() {
		t = now
	}
	if t.UnixNano()-e.t > horizon {
		return outcomeLate
	}
	if e.labeled {
		return outcomeDuplicate
	}
	w := f.wins[e.win]
	mv := w.mv
	if validLabel(mv.task, l.Value, int(e.outs)) != nil {
		return outcomeInvalid
	}
	e.labeled = true
	var pred []float32
	if e.outs > 0 {
		pred = slices.Grow(f.scratch[:0], int(e.outs))[:e.outs]
		f.outs.read(e.off, pred)
	} else {
		pred = append(f.scratch[:0], e.pred)
	}
	f.scratch = pred
	margin := mv.objective == "binary:logitraw"
	mv.quality.add(l.Value, pred, margin)
	switch {
	case w.live != nil:
		w.live.add(l.Value, pred, margin)
	case w.failed:
		// The window was not saved: only the model version's quality
		// gets the label.
	default:
		if w.pending == nil {
			w.pending = NewQuality(mv.task)
		}
		w.pending.add(l.Value, pred, margin)
		f.pending[w] = struct{}{}
	}
	return outcomeAccepted
}

// flushQuality merges the quality labels added to saved windows into the
// store. Finisher only.
func (m *Monitor) flushQuality() {
	f := &m.fb
	type job struct {
		w *winRef
		q *Quality
	}
	var jobs []job
	f.mu.Lock()
	for w := range f.pending {
		if !w.saved {
			continue // its save is still queued
		}
		jobs = append(jobs, job{w, w.pending})
		w.pending = nil
		delete(f.pending, w)
	}
	f.mu.Unlock()
	for _, j := range jobs {
		if m.store == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(m.ctx, saveTimeout)
		err := m.store.MergeWindowQuality(ctx, j.w.id, j.q)
		cancel()
		if err != nil {
			m.qualityDropped.Add(1)
			m.log.Error("monitor: merge late quality", "window", j.w.id, "error", err)
			continue
		}
		m.qualityMerges.Add(1)
	}
}

// ModelQuality returns the live quality of a model version of a deployment
// since the monitor started (nil: no label joined yet).
func (m *Monitor) ModelQuality(deployment, modelVersion string) *Quality {
	d, ok := m.deps.Load(deployment)
	if !ok {
		return nil
	}
	for _, mv := range *d.(*depState).mvs.Load() {
		if mv.key == modelVersion {
			m.fb.mu.Lock()
			defer m.fb.mu.Unlock()
			if mv.quality.Labels == 0 {
				return nil
			}
			return mv.quality.Clone()
		}
	}
	return nil
}
