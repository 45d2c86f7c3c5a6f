// Command monitor measures live monitoring against the performance targets
// of issue 6 and prints each figure next to its target:
//
//   - Observe: the cost of one call on the serving hot path, from one
//     goroutine and from GOMAXPROCS goroutines at once (target: well under
//     1 µs; a single-row request is served in about 30 µs).
//   - windows: -rows served predictions of 5 features (4 numeric, one
//     categorical code) of a binary classifier, in windows of -window-rows
//     requests: the process CPU time from the first Observe until every
//     window is profiled, compared with the reference (drift of features
//     and predictions) and saved in SQLite (target ≤ 2 s for 1,000,000).
//     The served rows are drawn shifted from the reference, so drift is
//     found and reported.
//   - feedback: joining -rows labels, one per prediction, in calls of
//     10,000 (target ≤ 2 s of CPU for 1,000,000).
//
// Run: go run ./bench/monitor [-rows 1000000]
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/sqlstore"
)

func main() {
	rows := flag.Int("rows", 1_000_000, "served predictions (and labels)")
	windowRows := flag.Int64("window-rows", 100_000, "requests per window")
	flag.Parse()
	if err := run(*rows, *windowRows); err != nil {
		log.Fatal(err)
	}
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var features = []serving.Feature{
	{Name: "a", Type: serving.Numeric}, {Name: "b", Type: serving.Numeric}, {Name: "c", Type: serving.Numeric},
	{Name: "d", Type: serving.Numeric}, {Name: "cat", Type: serving.Categorical},
}

// row draws one row; shift moves the means of features a, b and c.
func row(r *rand.Rand, shift float64, x []float32) float32 {
	for j := range 4 {
		x[j] = float32(r.NormFloat64())
		if j < 3 {
			x[j] += float32(shift)
		}
	}
	x[4] = float32(r.IntN(10))
	z := 0.8*float64(x[0]) - 0.5*float64(x[1]) + 0.1*float64(x[4]) - 0.4
	return float32(1 / (1 + math.Exp(-z)))
}

// referenceProfile profiles n reference rows as a dataset profile.
func referenceProfile(n int) (*dataset.Profile, error) {
	cols := []dataset.Column{{Name: "a", Type: dataset.TypeFloat}, {Name: "b", Type: dataset.TypeFloat},
		{Name: "c", Type: dataset.TypeFloat}, {Name: "d", Type: dataset.TypeFloat}, {Name: "cat", Type: dataset.TypeInteger}}
	p := dataset.NewProfiler("reference", cols, dataset.ProfileOptions{})
	b := &dataset.Batch{Rows: n, Cols: make([]dataset.ColumnValues, 5)}
	for j := range 4 {
		b.Cols[j] = dataset.ColumnValues{Kind: dataset.KindFloat, Float: make([]float64, n)}
	}
	b.Cols[4] = dataset.ColumnValues{Kind: dataset.KindInt, Int: make([]int64, n)}
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 5)
	for i := range n {
		row(r, 0, x)
		for j := range 4 {
			b.Cols[j].Float[i] = float64(x[j])
		}
		b.Cols[4].Int[i] = int64(x[4])
	}
	if err := p.Add(b); err != nil {
		return nil, err
	}
	return p.Finish()
}

type refs struct{ ref *monitor.Reference }

func (s refs) Reference(context.Context, string, int64) (*monitor.Reference, error) {
	return s.ref, nil
}

func run(n int, windowRows int64) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "bench-monitor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "mloop.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	prof, err := referenceProfile(200_000)
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	newMonitor := func(cfg monitor.Config) (*monitor.Monitor, error) {
		cfg.Logger, cfg.Registerer = quiet, prometheus.NewRegistry()
		m := monitor.New(sqlstore.NewMonitorStore(db), refs{&monitor.Reference{Dataset: "bench@1", Profile: prof}}, cfg)
		return m, m.Open(ctx)
	}

	// Inputs, made before any timing: what the router has in hand.
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]float32, 5*n)
	ps := make([]float32, n)
	ys := make([]float64, n)
	ids := make([]string, n)
	for i := range n {
		ps[i] = row(r, 0.3, xs[5*i:5*i+5])
		if r.Float64() < float64(ps[i]) {
			ys[i] = 1
		}
		ids[i] = fmt.Sprintf("req-%08d", i)
	}
	obs := func(i int, o *monitor.Observation) {
		*o = monitor.Observation{Deployment: "bench", Revision: 1, ModelVersion: "clf/1", Model: "clf", Version: 1,
			RequestID: ids[i], Features: features, Inputs: serving.Batch{Rows: 1, Cols: 5, Values: xs[5*i : 5*i+5]},
			Outputs: ps[i : i+1], OutputsPerRow: 1, Objective: "binary:logistic", Status: 200, Latency: 30 * time.Microsecond}
	}
	fmt.Printf("monitoring bench: %d served predictions of 5 features, windows of %d requests, GOMAXPROCS %d\n\n", n, windowRows, runtime.GOMAXPROCS(0))

	// 1. Windows: Observe everything, then Flush (profiles, drift, save).
	m, err := newMonitor(monitor.Config{WindowRequests: windowRows, QueueBuffers: n/4096 + 16})
	if err != nil {
		return err
	}
	runtime.GC()
	cpu0, wall0 := cpuTime(), time.Now()
	var o monitor.Observation
	for i := range n {
		obs(i, &o)
		m.Observe(&o)
	}
	observeWall := time.Since(wall0)
	if err := m.Flush(ctx); err != nil {
		return err
	}
	cpu, wall := cpuTime()-cpu0, time.Since(wall0)
	st := m.Stats()
	ws, err := m.Windows(ctx, "bench", monitor.WindowFilter{Oldest: true})
	if err != nil {
		return err
	}
	drifted := 0
	for _, w := range ws {
		if w.Drift.DatasetDrift {
			drifted++
		}
	}
	fmt.Printf("windows: %d rows in %d windows, %d with dataset drift (served rows shifted by design), dropped %d rows\n", st.ObservedRows, len(ws), drifted, st.DroppedRows)
	fmt.Printf("  CPU time, Observe to every window saved: %v (target ≤ 2s for 1,000,000)  wall %v\n", cpu.Round(time.Millisecond), wall.Round(time.Millisecond))
	fmt.Printf("  Observe from one goroutine: %.0f ns/call (wall, with the aggregator running)\n", float64(observeWall.Nanoseconds())/float64(n))
	if len(ws) > 0 {
		w, err := sqlstore.NewMonitorStore(db).GetWindow(ctx, ws[0].ID)
		if err == nil && w.Profiles != nil {
			fmt.Printf("  first window: %s; stored summary+profiles ≈ %d KB of JSON\n", describe(w), profileBytes(w)/1024)
		}
	}

	// 2. Feedback: one label per prediction, in calls of 10,000.
	labels := make([]monitor.Label, n)
	for i := range n {
		labels[i] = monitor.Label{RequestID: ids[i], Value: ys[i]}
	}
	runtime.GC()
	cpu0, wall0 = cpuTime(), time.Now()
	var res monitor.FeedbackResult
	for lo := 0; lo < n; lo += 10_000 {
		part, err := m.Feedback(ctx, labels[lo:min(lo+10_000, n)])
		if err != nil {
			return err
		}
		res.Accepted += part.Accepted
		res.Unknown += part.Unknown
	}
	cpu, wall = cpuTime()-cpu0, time.Since(wall0)
	fmt.Printf("\nfeedback: %d labels joined (%d unknown) in %v of CPU (target ≤ 2s for 1,000,000), wall %v\n", res.Accepted, res.Unknown, cpu.Round(time.Millisecond), wall.Round(time.Millisecond))
	if q := m.ModelQuality("bench", "clf/1"); q != nil {
		mt := q.Metrics()
		fmt.Printf("  live quality: accuracy %.4f, ROC AUC %.4f (± %.5f), log loss %.4f\n", mt["accuracy"], mt["roc_auc"], mt["auc_max_error"], mt["log_loss"])
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	fmt.Printf("  heap with %d tracked predictions: %d MB\n", m.Stats().Tracked, ms.HeapAlloc>>20)
	if err := m.Close(ctx); err != nil {
		return err
	}

	// 3. Observe cost, one goroutine and all of them, the aggregator
	// keeping up or dropping (both are the hot path's cost).
	for _, g := range []int{1, runtime.GOMAXPROCS(0)} {
		m, err := newMonitor(monitor.Config{Window: time.Hour, MaxTracked: 100_000})
		if err != nil {
			return err
		}
		per := n / g
		var wg sync.WaitGroup
		start := time.Now()
		for w := range g {
			wg.Go(func() {
				var o monitor.Observation
				for i := w * per; i < (w+1)*per; i++ {
					obs(i, &o)
					m.Observe(&o)
				}
			})
		}
		wg.Wait()
		el := time.Since(start)
		st := m.Stats()
		fmt.Printf("\nObserve, %d goroutine(s): %.0f ns/call per goroutine, %.1f M calls/s in all; %d of %d rows dropped by the aggregator\n",
			g, float64(el.Nanoseconds())/float64(per), float64(per*g)/el.Seconds()/1e6, st.DroppedRows, per*g)
		if err := m.Close(ctx); err != nil {
			return err
		}
	}
	return nil
}

func describe(w *monitor.WindowSummary) string {
	s := fmt.Sprintf("%d rows, drift share %.2f", w.Rows, w.Drift.Share)
	for _, f := range w.Drift.Features {
		s += fmt.Sprintf(", %s %s=%.3g", f.Feature, f.Method, f.Statistic)
	}
	return s
}

func profileBytes(w *monitor.WindowSummary) int {
	n := 0
	for _, p := range []*dataset.Profile{w.Profiles.Features, w.Profiles.Predictions} {
		if b, err := jsonSize(p); err == nil {
			n += b
		}
	}
	return n
}
