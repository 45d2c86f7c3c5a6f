package router

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"
)

// Latency histogram layout. A latency in nanoseconds below 2^subBits falls
// in its own bin; above, each power of two is split into 2^subBits bins of
// equal width (a log-linear layout, as HdrHistogram's). A bin starting at lo
// is at most lo/16 wide, so the midpoint of the bin holding a value v is
// within v/32 of it. Latencies of 2^maxExp ns (about 68.7s) and more share
// an overflow bin.
const (
	histSubBits  = 4
	histSubCount = 1 << histSubBits
	histMaxExp   = 36
	// histBins counts the exact bins below histSubCount, the log-linear bins
	// from 2^subBits to 2^maxExp, and the overflow bin.
	histBins     = histSubCount + (histMaxExp-histSubBits)*histSubCount + 1
	histOverflow = histBins - 1
)

// QuantileRelativeError bounds the relative error of the P50 and P99 that
// a Window reports, for latencies from 16ns to 68s: a reported quantile q
// differs from the exact nearest-rank quantile x of the observed latencies
// by at most x×QuantileRelativeError. Beyond 68s the Window reports the
// largest latency observed.
const QuantileRelativeError = 1.0 / 32

// histBin returns the histogram bin of a latency in nanoseconds.
func histBin(ns int64) int {
	if ns < histSubCount {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	e := bits.Len64(uint64(ns)) - 1 // 2^e ≤ ns < 2^(e+1), e ≥ histSubBits
	if e >= histMaxExp {
		return histOverflow
	}
	sub := int(ns>>(e-histSubBits)) & (histSubCount - 1)
	return histSubCount + (e-histSubBits)*histSubCount + sub
}

// histBinRange returns the latencies [lo, hi) of a bin below overflow, in
// nanoseconds.
func histBinRange(b int) (lo, hi int64) {
	if b < histSubCount {
		return int64(b), int64(b) + 1
	}
	e := (b-histSubCount)/histSubCount + histSubBits
	sub := int64((b - histSubCount) % histSubCount)
	width := int64(1) << (e - histSubBits)
	lo = int64(1)<<e + sub*width
	return lo, lo + width
}

// unusedEpoch is the epoch of a bucket that holds nothing yet.
const unusedEpoch = math.MinInt64

// winBucket holds one time slice's observations.
type winBucket struct {
	// epoch is the slice's index (time since the window's start divided
	// by the bucket width); unusedEpoch for a bucket never used.
	epoch    int64
	requests int64
	errors   int64
	max      int64 // largest latency, in nanoseconds
	hist     [histBins]uint32
}

// Window keeps request statistics (counts, errors and a latency histogram)
// over a sliding span of time, as a ring of buckets each covering a fixed
// slice of it. Observe is cheap (a short critical section, no allocation)
// and safe for concurrent use; Snapshot aggregates the buckets within a
// span. Times are given by the caller, so that tests control the clock;
// they are compared through time.Time.Sub, which uses the monotonic clock
// when both times carry it.
type Window struct {
	mu      sync.Mutex
	width   time.Duration // of one bucket
	start   time.Time     // epoch 0 starts here
	buckets []winBucket
	// since is when the figures start to be complete for the whole span:
	// zero, or the time a resize to a longer span happened minus the
	// span before it (older observations were gone already).
	since time.Time
}

// NewWindow returns a Window covering span with buckets of the given width
// (span 1m and bucket 1s make a ring of 60 buckets). A bucket of zero or
// less means one second; a span shorter than one bucket means one bucket.
// Statistics are kept per bucket, so a span is measured to within one
// bucket: the newest bucket is still filling.
func NewWindow(span, bucketWidth time.Duration) *Window {
	w := &Window{start: time.Now()}
	w.shape(span, bucketWidth)
	return w
}

// shape sets the window's buckets (empty) for span and bucketWidth.
func (w *Window) shape(span, bucketWidth time.Duration) {
	if bucketWidth <= 0 {
		bucketWidth = time.Second
	}
	n := int((span + bucketWidth - 1) / bucketWidth)
	if n < 1 {
		n = 1
	}
	w.width = bucketWidth
	w.buckets = make([]winBucket, n)
	for i := range w.buckets {
		w.buckets[i].epoch = unusedEpoch
	}
}

// windowBuckets is how many buckets a revision's Window has: the bucket
// width is the span divided by it, at least minBucketWidth.
const (
	windowBuckets  = 60
	minBucketWidth = time.Second
)

// bucketWidthFor returns the bucket width of a revision's Window over span.
func bucketWidthFor(span time.Duration) time.Duration {
	return max(span/windowBuckets, minBucketWidth)
}

// resize makes w cover span with buckets of bucketWidth, keeping what it
// holds: each bucket's figures move to the new bucket holding the old
// bucket's last instant (so they are placed to within one old bucket),
// and those older than the new span are dropped. After a resize to a
// longer span, Snapshot reports the span it really covers until the new
// span has passed. A resize to the current shape does nothing.
func (w *Window) resize(now time.Time, span, bucketWidth time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if bucketWidth <= 0 {
		bucketWidth = time.Second
	}
	n := max(int((span+bucketWidth-1)/bucketWidth), 1)
	if bucketWidth == w.width && n == len(w.buckets) {
		return
	}
	oldSpan := w.width * time.Duration(len(w.buckets))
	oldWidth, old := w.width, w.buckets
	w.shape(span, bucketWidth)
	if newSpan := w.width * time.Duration(len(w.buckets)); newSpan > oldSpan {
		if since := now.Add(-oldSpan); since.After(w.since) {
			w.since = since
		}
	}
	slices.SortFunc(old, func(a, b winBucket) int { return cmp.Compare(a.epoch, b.epoch) })
	newest := w.epochOf(now)
	for i := range old {
		ob := &old[i]
		if ob.epoch == unusedEpoch || ob.requests == 0 {
			continue
		}
		last := w.start.Add(time.Duration(ob.epoch+1)*oldWidth - 1)
		e := w.epochOf(last)
		if e > newest || e <= newest-int64(len(w.buckets)) {
			continue
		}
		b := w.slot(e)
		if b.epoch != e {
			if b.epoch > e {
				continue
			}
			b.epoch, b.requests, b.errors, b.max = e, 0, 0, 0
			clear(b.hist[:])
		}
		b.requests += ob.requests
		b.errors += ob.errors
		b.max = max(b.max, ob.max)
		for j, c := range ob.hist {
			b.hist[j] += c
		}
	}
}

// Span returns the time the window covers.
func (w *Window) Span() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.width * time.Duration(len(w.buckets))
}

// epochOf returns the index of the bucket-wide time slice holding now
// (under mu).
func (w *Window) epochOf(now time.Time) int64 {
	d := now.Sub(w.start)
	e := int64(d / w.width)
	if d < 0 && d%w.width != 0 {
		e-- // floor, for times before the window was made
	}
	return e
}

// slot returns the ring position of epoch e (under mu).
func (w *Window) slot(e int64) *winBucket {
	i := e % int64(len(w.buckets))
	if i < 0 {
		i += int64(len(w.buckets))
	}
	return &w.buckets[i]
}

// Observe records one request that ended at now, took latency and failed
// or not. A request older than the window's span is ignored.
func (w *Window) Observe(now time.Time, latency time.Duration, failed bool) {
	bin := histBin(int64(latency))
	w.mu.Lock()
	e := w.epochOf(now)
	b := w.slot(e)
	if b.epoch != e {
		if b.epoch > e {
			// The slot already holds a newer slice: this request is
			// older than the whole window.
			w.mu.Unlock()
			return
		}
		b.epoch, b.requests, b.errors, b.max = e, 0, 0, 0
		clear(b.hist[:])
	}
	b.requests++
	if failed {
		b.errors++
	}
	if int64(latency) > b.max {
		b.max = int64(latency)
	}
	b.hist[bin]++
	w.mu.Unlock()
}

// WindowStats are a Window's figures over a span.
type WindowStats struct {
	// Span is the time the figures cover.
	Span time.Duration
	// Requests and Errors count the requests that ended within the span
	// and those that failed.
	Requests, Errors int64
	// P50 and P99 are latency quantiles (nearest rank) within
	// QuantileRelativeError; zero when there was no request.
	P50, P99 time.Duration
	// Max is the largest latency observed.
	Max time.Duration
}

// ErrorRate returns Errors/Requests, or 0 when there was no request.
func (s WindowStats) ErrorRate() float64 {
	if s.Requests == 0 {
		return 0
	}
	return float64(s.Errors) / float64(s.Requests)
}

// Snapshot returns the figures of the requests that ended within span
// before now: the buckets from the one holding now back to the one holding
// now-span (exclusive), so up to one bucket less than span when now is at
// the start of a bucket. A span of zero or less, or longer than the
// window's, means the whole window. The figures' Span is the span they
// cover: shorter than asked when the window is shorter, or when it grew
// (see resize) less than the span ago.
func (w *Window) Snapshot(now time.Time, span time.Duration) WindowStats {
	var hist [histBins]uint64
	var maxNs int64
	w.mu.Lock()
	n := int64(len(w.buckets))
	k := n
	if span > 0 {
		k = min(n, int64((span+w.width-1)/w.width))
	}
	newest := w.epochOf(now)
	oldest := newest - k + 1
	st := WindowStats{Span: time.Duration(k) * w.width}
	if !w.since.IsZero() {
		if covered := now.Sub(w.since); covered > 0 && covered < st.Span {
			st.Span = covered
		}
	}
	for i := range w.buckets {
		b := &w.buckets[i]
		if b.epoch < oldest || b.epoch > newest || b.requests == 0 {
			continue
		}
		st.Requests += b.requests
		st.Errors += b.errors
		maxNs = max(maxNs, b.max)
		for j, c := range b.hist {
			hist[j] += uint64(c)
		}
	}
	w.mu.Unlock()
	if st.Requests == 0 {
		return st
	}
	st.Max = time.Duration(maxNs)
	st.P50 = time.Duration(histQuantile(&hist, st.Requests, 0.50, maxNs))
	st.P99 = time.Duration(histQuantile(&hist, st.Requests, 0.99, maxNs))
	return st
}

// quantile returns the nearest-rank q-quantile of the n latencies counted
// in hist: the midpoint of the bin holding the ceil(q×n)-th smallest,
// never above maxNs (the largest observed), which the overflow bin reports.
func histQuantile(hist *[histBins]uint64, n int64, q float64, maxNs int64) int64 {
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for b, c := range hist {
		seen += c
		if seen < rank {
			continue
		}
		if b == histOverflow {
			return maxNs
		}
		lo, hi := histBinRange(b)
		if hi-lo == 1 {
			return lo // exact bins
		}
		return min(lo+(hi-lo)/2, maxNs)
	}
	return maxNs
}
