package router

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestBinLayout(t *testing.T) {
	// Every value lies in its bin's range, bins grow with values, and a
	// bin is at most 1/16 of its lower bound wide.
	prev := -1
	check := func(ns int64) {
		t.Helper()
		b := histBin(ns)
		if b < prev {
			t.Fatalf("histBin(%d) = %d, below the bin of a smaller value (%d)", ns, b, prev)
		}
		prev = b
		if b == histOverflow {
			if ns < 1<<histMaxExp {
				t.Fatalf("histBin(%d) is the histOverflow bin, want a bin below 2^%d", ns, histMaxExp)
			}
			return
		}
		lo, hi := histBinRange(b)
		if ns < lo || ns >= hi {
			t.Fatalf("histBin(%d) = %d with range [%d, %d), want the value inside", ns, b, lo, hi)
		}
		if hi-lo > 1 && float64(hi-lo) > float64(lo)/histSubCount {
			t.Fatalf("bin %d [%d, %d) is wider than 1/%d of its start", b, lo, hi, histSubCount)
		}
	}
	for ns := int64(0); ns < 5000; ns++ {
		check(ns)
	}
	for ns := int64(5000); ns < 1<<(histMaxExp+2); ns = ns*17/16 + 1 {
		check(ns)
		check(ns + 1)
	}
	for e := 1; e < 62; e++ {
		prev = -1
		check(int64(1)<<e - 1)
		check(int64(1) << e)
	}
	if got := histBin(-5); got != 0 {
		t.Errorf("histBin(-5) = %d, want 0", got)
	}
	if got := histBin(math.MaxInt64); got != histOverflow {
		t.Errorf("histBin(MaxInt64) = %d, want the histOverflow bin %d", got, histOverflow)
	}
	// Contiguous ranges: bin b ends where bin b+1 starts.
	for b := 0; b < histOverflow-1; b++ {
		_, hi := histBinRange(b)
		lo, _ := histBinRange(b + 1)
		if hi != lo {
			t.Fatalf("bin %d ends at %d but bin %d starts at %d", b, hi, b+1, lo)
		}
	}
	if _, hi := histBinRange(histOverflow - 1); hi != 1<<histMaxExp {
		t.Errorf("last bin ends at %d, want 2^%d", hi, histMaxExp)
	}
}

// exactQuantile returns the nearest-rank q-quantile of sorted.
func exactQuantile(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func TestWindowQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ms := float64(time.Millisecond)
	dists := []struct {
		name string
		n    int
		gen  func() time.Duration
	}{
		{"constant 2ms", 1000, func() time.Duration { return 2 * time.Millisecond }},
		{"uniform 1ms-10ms", 10000, func() time.Duration { return time.Duration(ms + rng.Float64()*9*ms) }},
		{"exponential mean 3ms", 20000, func() time.Duration { return time.Duration(rng.ExpFloat64() * 3 * ms) }},
		{"lognormal median 500us", 20000, func() time.Duration {
			return time.Duration(math.Exp(rng.NormFloat64()*1.5) * 500 * float64(time.Microsecond))
		}},
		{"bimodal 98% 200us 2% 40ms", 5000, func() time.Duration {
			if rng.Float64() < 0.98 {
				return time.Duration((0.15 + rng.Float64()*0.1) * ms)
			}
			return time.Duration((35 + rng.Float64()*10) * ms)
		}},
		{"wide 10us-60s", 3000, func() time.Duration {
			return time.Duration(math.Exp(math.Log(1e4) + rng.Float64()*(math.Log(6e10)-math.Log(1e4))))
		}},
		{"nanoseconds", 300, func() time.Duration { return time.Duration(rng.IntN(40)) }},
		{"one request", 1, func() time.Duration { return 123 * time.Microsecond }},
	}
	for _, d := range dists {
		t.Run(d.name, func(t *testing.T) {
			w := NewWindow(time.Minute, time.Second)
			now := w.start.Add(10 * time.Second)
			var all []time.Duration
			for i := range d.n {
				v := d.gen()
				all = append(all, v)
				// Spread over the last 10 seconds.
				w.Observe(now.Add(-time.Duration(i%10)*time.Second), v, false)
			}
			slices.Sort(all)
			st := w.Snapshot(now, time.Minute)
			if st.Requests != int64(d.n) {
				t.Fatalf("requests = %d, want %d", st.Requests, d.n)
			}
			if st.Max != all[len(all)-1] {
				t.Errorf("max = %v, want %v", st.Max, all[len(all)-1])
			}
			for _, c := range []struct {
				q   float64
				got time.Duration
			}{{0.50, st.P50}, {0.99, st.P99}} {
				want := exactQuantile(all, c.q)
				bound := float64(want) * QuantileRelativeError
				if diff := math.Abs(float64(c.got - want)); diff > bound {
					t.Errorf("p%v = %v, want %v within %.3g%% (off by %.3g%%)", c.q*100, c.got, want,
						QuantileRelativeError*100, 100*diff/float64(want))
				}
			}
		})
	}
}

// near reports whether got is want within QuantileRelativeError.
func nearLatency(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(want)*QuantileRelativeError
}

func TestWindowOverflow(t *testing.T) {
	w := NewWindow(time.Minute, time.Second)
	now := w.start
	for range 99 {
		w.Observe(now, time.Millisecond, false)
	}
	w.Observe(now, 5*time.Minute, true)
	w.Observe(now, 3*time.Minute, true)
	st := w.Snapshot(now, 0)
	if st.P99 != 5*time.Minute {
		t.Errorf("p99 = %v, want the largest observed, 5m0s (beyond the histogram)", st.P99)
	}
	if st.Errors != 2 || st.Requests != 101 {
		t.Errorf("errors/requests = %d/%d, want 2/101", st.Errors, st.Requests)
	}
}

func TestWindowExpiry(t *testing.T) {
	w := NewWindow(time.Minute, time.Second)
	t0 := w.start.Add(500 * time.Millisecond)
	for range 10 {
		w.Observe(t0, time.Millisecond, false)
	}
	for range 5 {
		w.Observe(t0.Add(30*time.Second), 4*time.Millisecond, true)
	}
	type want struct{ req, errs int64 }
	cases := []struct {
		name string
		now  time.Time
		span time.Duration
		want want
	}{
		{"all within a minute", t0.Add(30 * time.Second), time.Minute, want{15, 5}},
		{"last 10s", t0.Add(30 * time.Second), 10 * time.Second, want{5, 5}},
		{"last 1s, same winBucket", t0.Add(30*time.Second + 100*time.Millisecond), time.Second, want{5, 5}},
		{"last 1s, next winBucket", t0.Add(31 * time.Second), time.Second, want{0, 0}},
		{"before the second batch", t0.Add(29 * time.Second), time.Minute, want{10, 0}},
		{"first batch 59s old", t0.Add(59 * time.Second), time.Minute, want{15, 5}},
		{"first batch expired", t0.Add(60 * time.Second), time.Minute, want{5, 5}},
		{"span beyond the window", t0.Add(60 * time.Second), time.Hour, want{5, 5}},
		{"everything expired", t0.Add(2 * time.Minute), time.Minute, want{0, 0}},
	}
	for _, c := range cases {
		st := w.Snapshot(c.now, c.span)
		if st.Requests != c.want.req || st.Errors != c.want.errs {
			t.Errorf("%s: requests/errors = %d/%d, want %d/%d", c.name, st.Requests, st.Errors, c.want.req, c.want.errs)
		}
		if st.Requests == 0 && (st.P50 != 0 || st.P99 != 0 || st.ErrorRate() != 0) {
			t.Errorf("%s: empty snapshot has p50 %v p99 %v error rate %v, want zeros", c.name, st.P50, st.P99, st.ErrorRate())
		}
	}
	if st := w.Snapshot(t0.Add(30*time.Second), time.Minute); !nearLatency(st.P50, time.Millisecond) || st.ErrorRate() != 5.0/15 {
		t.Errorf("p50 %v error rate %v, want 1ms and 1/3", st.P50, st.ErrorRate())
	}

	// A minute later the first batch's ring slot is reused: the old
	// counts are gone, not added to.
	w.Observe(t0.Add(60*time.Second), 2*time.Millisecond, false)
	if st := w.Snapshot(t0.Add(60*time.Second), time.Second); st.Requests != 1 || !nearLatency(st.P50, 2*time.Millisecond) {
		t.Errorf("reused slot: requests %d p50 %v, want 1 and 2ms", st.Requests, st.P50)
	}
	// A request older than the whole window is dropped, not counted in a
	// newer slice.
	w.Observe(t0, time.Millisecond, true)
	if st := w.Snapshot(t0.Add(60*time.Second), time.Minute); st.Requests != 6 || st.Errors != 5 {
		t.Errorf("after a stale observation: requests/errors = %d/%d, want 6/5", st.Requests, st.Errors)
	}
	// A late observation still within the window counts in its own slice.
	w.Observe(t0.Add(45*time.Second), time.Millisecond, true)
	if st := w.Snapshot(t0.Add(60*time.Second), time.Minute); st.Requests != 7 || st.Errors != 6 {
		t.Errorf("after a late observation: requests/errors = %d/%d, want 7/6", st.Requests, st.Errors)
	}
}

func TestWindowTimesBeforeStart(t *testing.T) {
	w := NewWindow(10*time.Second, time.Second)
	t0 := w.start.Add(-3500 * time.Millisecond)
	w.Observe(t0, time.Millisecond, false)
	w.Observe(t0.Add(time.Second), time.Millisecond, false)
	if st := w.Snapshot(t0.Add(time.Second), time.Second); st.Requests != 1 {
		t.Errorf("requests in the last second = %d, want 1", st.Requests)
	}
	if st := w.Snapshot(t0.Add(time.Second), 0); st.Requests != 2 {
		t.Errorf("requests in the window = %d, want 2", st.Requests)
	}
}

func TestNewWindowShapes(t *testing.T) {
	cases := []struct {
		span, winBucket, want time.Duration
	}{
		{time.Minute, time.Second, time.Minute},
		{time.Minute, 7 * time.Second, 63 * time.Second},
		{0, time.Second, time.Second},
		{time.Minute, 0, time.Minute},
	}
	for _, c := range cases {
		if got := NewWindow(c.span, c.winBucket).Span(); got != c.want {
			t.Errorf("NewWindow(%v, %v).Span() = %v, want %v", c.span, c.winBucket, got, c.want)
		}
	}
}

func TestWindowConcurrent(t *testing.T) {
	w := NewWindow(time.Minute, time.Second)
	const goroutines, each = 8, 5000
	var wg sync.WaitGroup
	done := make(chan struct{})
	go func() { // snapshots race with observations
		defer close(done)
		for i := 0; i < 200; i++ {
			w.Snapshot(time.Now(), time.Minute)
		}
	}()
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				w.Observe(time.Now(), time.Duration(100+g*10+i%50)*time.Microsecond, i%10 == 0)
			}
		}()
	}
	wg.Wait()
	<-done
	st := w.Snapshot(time.Now(), time.Minute)
	if st.Requests != goroutines*each || st.Errors != goroutines*each/10 {
		t.Errorf("requests/errors = %d/%d, want %d/%d", st.Requests, st.Errors, goroutines*each, goroutines*each/10)
	}
	if st.P50 < 100*time.Microsecond || st.P99 > 250*time.Microsecond {
		t.Errorf("p50 %v p99 %v, want within the observed 100µs–220µs", st.P50, st.P99)
	}
}

func BenchmarkWindowObserve(b *testing.B) {
	w := NewWindow(time.Minute, time.Second)
	now := time.Now()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		w.Observe(now, time.Duration(i%5000)*time.Microsecond, false)
		i++
	}
}

func BenchmarkWindowObserveParallel(b *testing.B) {
	w := NewWindow(time.Minute, time.Second)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			w.Observe(time.Now(), time.Duration(i%5000)*time.Microsecond, i%100 == 0)
			i++
		}
	})
}

func BenchmarkWindowSnapshot(b *testing.B) {
	w := NewWindow(time.Minute, time.Second)
	now := time.Now()
	for i := range 60 {
		for j := range 100 {
			w.Observe(now.Add(time.Duration(-i)*time.Second), time.Duration(j)*time.Millisecond, false)
		}
	}
	for b.Loop() {
		w.Snapshot(now, time.Minute)
	}
}

func TestBucketWidthFor(t *testing.T) {
	for _, c := range []struct{ span, want time.Duration }{
		{time.Minute, time.Second},
		{10 * time.Second, time.Second},
		{5 * time.Minute, 5 * time.Second},
		{time.Hour, time.Minute},
	} {
		if got := bucketWidthFor(c.span); got != c.want {
			t.Errorf("bucketWidthFor(%v) = %v, want %v", c.span, got, c.want)
		}
		w := NewWindow(c.span, bucketWidthFor(c.span))
		if n := len(w.buckets); n > windowBuckets {
			t.Errorf("a window over %v has %d buckets, want at most %d", c.span, n, windowBuckets)
		}
	}
}

// TestWindowResize grows a window's span and shrinks it back: the
// observations are kept where they still fit, and the span reported is
// the one really covered.
func TestWindowResize(t *testing.T) {
	w := NewWindow(time.Minute, time.Second)
	t0 := w.start.Add(10 * time.Minute)
	// One request a second over the last 2 minutes (the first minute is
	// gone already), 1 in 4 failing.
	for i := range 120 {
		w.Observe(t0.Add(-time.Duration(119-i)*time.Second), time.Millisecond, i%4 == 0)
	}
	st := w.Snapshot(t0, time.Minute)
	if st.Requests != 60 || st.Span != time.Minute {
		t.Fatalf("before: %d requests over %v, want 60 over 1m", st.Requests, st.Span)
	}

	w.resize(t0, 10*time.Minute, bucketWidthFor(10*time.Minute))
	if got := w.Span(); got != 10*time.Minute || len(w.buckets) != 60 {
		t.Fatalf("after growing: span %v in %d buckets, want 10m in 60", got, len(w.buckets))
	}
	st = w.Snapshot(t0, 10*time.Minute)
	if st.Requests != 60 || st.Errors != 15 || st.Span != time.Minute {
		t.Errorf("after growing: %d requests, %d errors over %v, want 60, 15 over the 1m it covers", st.Requests, st.Errors, st.Span)
	}
	// New requests land in the new buckets; the span covered grows with
	// time until it is the whole window.
	w.Observe(t0.Add(30*time.Second), time.Millisecond, true)
	st = w.Snapshot(t0.Add(30*time.Second), 10*time.Minute)
	if st.Requests != 61 || st.Span != 90*time.Second {
		t.Errorf("30s later: %d requests over %v, want 61 over 1m30s", st.Requests, st.Span)
	}
	if st := w.Snapshot(t0.Add(20*time.Minute), 10*time.Minute); st.Span != 10*time.Minute || st.Requests != 0 {
		t.Errorf("20m later: %d requests over %v, want 0 over 10m", st.Requests, st.Span)
	}

	// Back to one minute: the last minute's figures are kept (to within
	// one old bucket of 10s).
	w.resize(t0.Add(30*time.Second), time.Minute, time.Second)
	if got := w.Span(); got != time.Minute || len(w.buckets) != 60 {
		t.Fatalf("after shrinking: span %v in %d buckets, want 1m in 60", got, len(w.buckets))
	}
	st = w.Snapshot(t0.Add(30*time.Second), time.Minute)
	if st.Requests < 30 || st.Requests > 41 || st.Span != time.Minute {
		t.Errorf("after shrinking: %d requests over %v, want 31 (±10) over 1m", st.Requests, st.Span)
	}
	// A resize to the same shape changes nothing.
	before := w.Snapshot(t0.Add(30*time.Second), time.Minute)
	w.resize(t0.Add(30*time.Second), time.Minute, time.Second)
	if after := w.Snapshot(t0.Add(30*time.Second), time.Minute); after != before {
		t.Errorf("a no-op resize changed %+v into %+v", before, after)
	}
}
