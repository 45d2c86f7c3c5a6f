package monitor_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving"
)

// BenchmarkObserve measures the hot-path cost of one single-row request of
// 5 features (the aggregator runs; what it cannot take is dropped).
func BenchmarkObserve(b *testing.B) {
	m := monitor.New(nil, nil, monitor.Config{Registerer: prometheus.NewRegistry(), MaxTracked: 100_000,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := m.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer m.Close(context.Background())
	feats := []serving.Feature{{Name: "a"}, {Name: "b"}, {Name: "c"}, {Name: "d"}, {Name: "e", Type: serving.Categorical}}
	b.RunParallel(func(pb *testing.PB) {
		o := &monitor.Observation{Time: time.Now(), Deployment: "d", ModelVersion: "m/1", Model: "m", Version: 1, RequestID: "req-0000001",
			Features: feats, Inputs: serving.Batch{Rows: 1, Cols: 5, Values: []float32{1, 2, 3, 4, 5}},
			Outputs: []float32{0.5}, OutputsPerRow: 1, Status: 200, Latency: time.Millisecond}
		for pb.Next() {
			m.Observe(o)
		}
	})
}
