package payloadlog

import (
	"context"
	"io"
	"strconv"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/serving"
)

// discardSink accepts and discards segments.
type discardSink struct{}

func (discardSink) Put(_ context.Context, _ string, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// BenchmarkLog measures Log on the serving hot path: one single-row record
// of 8 features, with the writer running (compressing and writing segments
// on its own goroutine). Records the writer cannot keep up with are dropped,
// which is the hot path's behaviour under overload; the dropped share is
// reported.
func BenchmarkLog(b *testing.B) {
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = "req-" + strconv.Itoa(i)
	}
	vals := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	out := []float32{0.5}
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, bc := range []struct {
		name string
		rate float64
	}{{"all", 1}, {"sample0.1", 0.1}} {
		b.Run(bc.name, func(b *testing.B) {
			l := New(discardSink{}, Config{SampleRate: bc.rate, Logger: quiet()})
			l.Start(context.Background())
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				l.Log(Record{
					Time: t0, RequestID: ids[i%len(ids)], Deployment: "flights", Revision: "r1",
					ModelVersion: "flights/7", LatencyMicros: 300, Status: 200,
					Inputs:  serving.Batch{Rows: 1, Cols: len(vals), Values: vals},
					Outputs: out, OutputsPerRow: 1,
				})
				i++
			}
			b.StopTimer()
			if err := l.Close(context.Background()); err != nil {
				b.Fatal(err)
			}
			st := l.Stats()
			if n := st.Queued + st.Dropped; n > 0 {
				b.ReportMetric(float64(st.Dropped)/float64(n), "dropped/op")
			}
		})
	}
}

// BenchmarkLogParallel is BenchmarkLog from every core at once, as a busy
// server calls it.
func BenchmarkLogParallel(b *testing.B) {
	vals := []float32{1, 2, 3, 4, 5, 6, 7, 8}
	out := []float32{0.5}
	l := New(discardSink{}, Config{Logger: quiet()})
	l.Start(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Log(Record{
				RequestID: "req", Deployment: "flights", Revision: "r1",
				ModelVersion: "flights/7", LatencyMicros: 300, Status: 200,
				Inputs:  serving.Batch{Rows: 1, Cols: len(vals), Values: vals},
				Outputs: out, OutputsPerRow: 1,
			})
		}
	})
	b.StopTimer()
	if err := l.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	st := l.Stats()
	if n := st.Queued + st.Dropped; n > 0 {
		b.ReportMetric(float64(st.Dropped)/float64(n), "dropped/op")
	}
}

// BenchmarkWrite measures the writer: encoding and compressing one record
// into a segment (the cost paid off the hot path).
func BenchmarkWrite(b *testing.B) {
	vals := []float32{1.5, 2.25, 3, 4, 5, 6, 7, 8}
	l := New(discardSink{}, Config{SegmentRecords: 50000, Logger: quiet()})
	rec := Record{
		Time: time.Now(), RequestID: "req-123456", Deployment: "flights", Revision: "r1",
		ModelVersion: "flights/7", LatencyMicros: 300, Status: 200,
		Inputs:  serving.Batch{Rows: 1, Cols: len(vals), Values: vals},
		Outputs: []float32{0.123456}, OutputsPerRow: 1,
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.add(ctx, &rec)
	}
	b.StopTimer()
	l.flushAll(ctx)
}
