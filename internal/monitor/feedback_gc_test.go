package monitor

import (
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"testing"
	"time"
)

// scannableHeap collects garbage and returns the heap bytes the GC scans.
func scannableHeap() uint64 {
	runtime.GC()
	s := []rtmetrics.Sample{{Name: "/gc/scan/heap:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}

// fillTracked tracks n single-row predictions of outs outputs each, spread
// over windows windows in runs of 1,000, the way the aggregator does.
func fillTracked(f *feedbackIndex, n, outs, windows int) []*winRef {
	mv := &mvState{task: Binary, quality: NewQuality(Binary)}
	if outs > 1 {
		mv.task = Multiclass
		mv.quality = NewQuality(Multiclass)
	}
	ws := make([]*winRef, windows)
	for i := range ws {
		ws[i] = &winRef{id: fmt.Sprint("w", i), mv: mv}
	}
	const chunk = 1000
	seg := make([]reqRec, chunk)
	y := make([]float32, chunk*outs)
	for lo := 0; lo < n; lo += chunk {
		k := min(chunk, n-lo)
		for i := range k {
			seg[i] = reqRec{t: int64(lo + i), id: fmt.Sprint("req-", lo+i), rows: 1}
			for j := range outs {
				y[i*outs+j] = float32(j+1) / float32(outs+1)
			}
		}
		f.track(ws[(lo/chunk)%windows], seg[:k], y[:k*outs], outs)
	}
	return ws
}

// TestTrackedPredictionsNotScanned checks that a million tracked
// predictions add (next to) nothing to the heap the GC scans: the ring,
// its index and the outputs arena hold no pointers.
func TestTrackedPredictionsNotScanned(t *testing.T) {
	if testing.Short() {
		t.Skip("tracks a million predictions")
	}
	for _, outs := range []int{1, 3} {
		t.Run(fmt.Sprint("outputs=", outs), func(t *testing.T) {
			const n = 1_000_000
			var f feedbackIndex
			f.init(2 * n)
			before := scannableHeap()
			ws := fillTracked(&f, n, outs, 10)
			after := scannableHeap()
			if got, _ := f.size(); got != n {
				t.Fatalf("tracked %d predictions, want %d", got, n)
			}
			// Before the ring was pointer-free, a million predictions
			// made at least 56 MB scannable.
			grew := int64(after) - int64(before)
			t.Logf("scannable heap: %d bytes before, %d after tracking %d predictions (%+d)", before, after, n, grew)
			if grew > 4<<20 {
				t.Fatalf("tracking %d predictions grew the scannable heap by %d bytes, want under 4 MiB", n, grew)
			}
			runtime.KeepAlive(ws)
			runtime.KeepAlive(&f)
		})
	}
}

// BenchmarkTrackedGC measures one full garbage collection while 1,000,000
// predictions are tracked, and reports the heap the GC scans.
func BenchmarkTrackedGC(b *testing.B) {
	for _, outs := range []int{1, 3} {
		b.Run(fmt.Sprint("outputs=", outs), func(b *testing.B) {
			var f feedbackIndex
			f.init(2_000_000)
			ws := fillTracked(&f, 1_000_000, outs, 10)
			scan := scannableHeap()
			b.ResetTimer()
			for b.Loop() {
				runtime.GC()
			}
			b.ReportMetric(float64(scan)/(1<<20), "scan-MiB")
			runtime.KeepAlive(ws)
			runtime.KeepAlive(&f)
		})
	}
}

// BenchmarkFeedbackJoin measures joining one label with one of 1,000,000
// tracked predictions (under the index's lock, as Feedback does).
func BenchmarkFeedbackJoin(b *testing.B) {
	for _, outs := range []int{1, 3} {
		b.Run(fmt.Sprint("outputs=", outs), func(b *testing.B) {
			const n = 1_000_000
			var f feedbackIndex
			f.init(n)
			fillTracked(&f, n, outs, 10)
			ids := make([]string, n)
			for i := range ids {
				ids[i] = fmt.Sprint("req-", i)
			}
			i := 0
			b.ResetTimer()
			for b.Loop() {
				if i == n {
					// Every prediction is labelled: start again (the
					// joins are duplicates from here on).
					i = 0
				}
				f.join(Label{RequestID: ids[i], Value: 1}, time.Unix(0, 0), 1<<62)
				i++
			}
		})
	}
}
