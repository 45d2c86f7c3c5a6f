package monitor_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// TestVersionHealth serves two model versions over a saved window and an
// open one, joins feedback labels to both, and checks each version's
// health since times before, between and after the windows.
func TestVersionHealth(t *testing.T) {
	clock := &fakeClock{}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock.ns.Store(t0.UnixNano())
	m := mustOpen(t, mustStore(t), staticRefs{}, monitor.Config{Now: clock.now, Window: 24 * time.Hour, Horizon: 24 * time.Hour})
	ctx := context.Background()
	feats := []serving.Feature{{Name: "x"}}
	seq := 0
	// observe answers one request of version v with prediction p.
	observe := func(v int64, p float32, status int, latency time.Duration) string {
		seq++
		id := fmt.Sprintf("q-%d", seq)
		m.Observe(&monitor.Observation{Deployment: "hw", ModelVersion: fmt.Sprintf("clf/%d", v), Model: "clf", Version: v,
			RequestID: id, Features: feats, Inputs: serving.Batch{Rows: 1, Cols: 1, Values: []float32{0}},
			Outputs: []float32{p}, OutputsPerRow: 1, Objective: "binary:logistic", Status: status, Latency: latency})
		return id
	}
	type labelled struct {
		id string
		y  float64
		p  float32
	}
	var v1Labels []labelled
	// Window A: version 1 answers 10 requests (2 errors) at 10ms, version
	// 2 answers 5 at 20ms; 6 of version 1's answered predictions get labels
	// (an error has no prediction to label).
	for i := range 10 {
		status := 200
		if i < 2 {
			status = 500
		}
		p := float32(0.2 + 0.07*float64(i))
		id := observe(1, p, status, 10*time.Millisecond)
		if i >= 2 && i < 8 {
			v1Labels = append(v1Labels, labelled{id, float64(i % 2), p})
		}
	}
	for range 5 {
		observe(2, 0.9, 200, 20*time.Millisecond)
	}
	waitAccepted(t, m, monitor.Label{RequestID: v1Labels[0].id, Value: v1Labels[0].y})
	for _, l := range v1Labels[1:] {
		if r, err := m.Feedback(ctx, []monitor.Label{{RequestID: l.id, Value: l.y}}); err != nil || r.Accepted != 1 {
			t.Fatalf("label %s: got %+v, %v; want accepted", l.id, r, err)
		}
	}
	clock.advance(time.Minute)
	if err := m.Flush(ctx); err != nil { // window A is saved, ending at t0+1m
		t.Fatal(err)
	}
	// Window B (open): version 1 answers 4 requests (1 error) at 40ms.
	clock.advance(time.Minute)
	var last string
	for i := range 4 {
		status := 200
		if i == 0 {
			status = 503
		}
		last = observe(1, 0.8, status, 40*time.Millisecond)
	}
	// Its last prediction is labelled in the open window.
	waitAccepted(t, m, monitor.Label{RequestID: last, Value: 1})
	v1Labels = append(v1Labels, labelled{last, 1, 0.8})
	want := monitor.NewQuality(monitor.Binary)
	for _, l := range v1Labels {
		_ = want.AddLabel(l.y, []float32{l.p})
	}
	openOnly := monitor.NewQuality(monitor.Binary)
	_ = openOnly.AddLabel(1, []float32{0.8})

	for _, tc := range []struct {
		name       string
		version    int64
		since      time.Time
		requests   int64
		errors     int64
		p99        float64 // about (the sketch's rank error)
		labels     int64
		metricsOf  *monitor.Quality
		deployment string
	}{
		{"version 1, both windows", 1, t0.Add(-time.Second), 14, 3, 40, 7, want, "hw"},
		{"version 1, the open window only", 1, t0.Add(90 * time.Second), 4, 1, 40, 1, openOnly, "hw"},
		{"version 2, saved window", 2, t0.Add(-time.Second), 5, 0, 20, 0, nil, "hw"},
		{"version 2, since after its window", 2, t0.Add(90 * time.Second), 0, 0, 0, 0, nil, "hw"},
		{"a version never served", 3, t0, 0, 0, 0, 0, nil, "hw"},
		{"an unknown deployment", 1, t0, 0, 0, 0, 0, nil, "nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h deploy.VersionHealth
			// The open window's last requests reach the aggregator within
			// FlushInterval: wait for them.
			deadline := time.Now().Add(10 * time.Second)
			for {
				var err error
				h, err = m.VersionHealth(ctx, tc.deployment, "clf", tc.version, tc.since)
				if err != nil {
					t.Fatalf("VersionHealth: %v", err)
				}
				if h.Requests >= tc.requests || time.Now().After(deadline) {
					break
				}
				time.Sleep(5 * time.Millisecond)
			}
			if h.Requests != tc.requests || h.Errors != tc.errors || h.Labels != tc.labels {
				t.Fatalf("got %d requests, %d errors, %d labels; want %d, %d, %d", h.Requests, h.Errors, h.Labels, tc.requests, tc.errors, tc.labels)
			}
			if math.Abs(h.LatencyP99Ms-tc.p99) > 0.02*tc.p99 {
				t.Errorf("p99: got %.3fms, want about %.0fms", h.LatencyP99Ms, tc.p99)
			}
			if tc.metricsOf == nil {
				if len(h.Metrics) != 0 {
					t.Errorf("metrics: got %v, want none", h.Metrics)
				}
				return
			}
			sameMetrics(t, "live quality", h.Metrics, tc.metricsOf.Metrics())
		})
	}
}

// TestVersionHealthClosed: a monitor that is not running answers
// EUNAVAILABLE, so that the rollout controller waits rather than judges.
func TestVersionHealthClosed(t *testing.T) {
	m := monitor.New(mustStore(t), nil, monitor.Config{})
	_, err := m.VersionHealth(context.Background(), "d", "m", 1, time.Now())
	if got := mloop.ErrorCode(err); got != mloop.EUNAVAILABLE {
		t.Fatalf("before Open: got %v (kind %q), want %q", err, got, mloop.EUNAVAILABLE)
	}
}
