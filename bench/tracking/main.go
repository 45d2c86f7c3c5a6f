// Command tracking measures mloop's MLflow tracking API on this machine and
// prints its figures next to their ceiling: the same rows written straight
// into SQLite through the store, without HTTP.
//
// It builds the mloop binary, runs `mloop server` as a separate process on a
// fresh SQLite data folder, and drives it over HTTP from this process:
//
//   - ingest: C clients send log-batch requests of 1000 metrics for D seconds;
//     points/s, p50/p99 latency per batch, and the server's peak RSS (VmHWM);
//   - ceiling: the same batches through sqlstore.TrackingStore.LogBatch, no HTTP;
//   - search: runs/search over N runs (10 params, 10 metrics, 5 tags each)
//     with one metric and one param filter, ordered by a metric, 100 results;
//   - history: get-history-bulk-interval of a 1,000,000-point metric down to
//     1,000 points, and the full paged get-history of it.
//
// Usage (from the repository root):
//
//	go run ./bench/tracking [-duration 20s] [-clients 8] [-runs 100000] [-points 1000000] [-json]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"github.com/mloop/mloop/bench/internal/benchserver"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

func main() {
	duration := flag.Duration("duration", 20*time.Second, "how long each ingest phase runs")
	clients := flag.Int("clients", 8, "concurrent ingest clients")
	nruns := flag.Int("runs", 100000, "runs to search over")
	npoints := flag.Int("points", 1000000, "points of the long metric")
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	flag.Parse()
	if err := run(*duration, *clients, *nruns, *npoints, *asJSON, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Result holds every figure the benchmark prints.
type Result struct {
	Date                 string  `json:"date"`
	Clients              int     `json:"clients"`
	IngestPointsPerSec   float64 `json:"ingest_points_per_sec"`
	IngestP50Ms          float64 `json:"ingest_p50_ms"`
	IngestP99Ms          float64 `json:"ingest_p99_ms"`
	ServerPeakRSSMB      float64 `json:"server_peak_rss_mb"`
	CeilingPointsPerSec  float64 `json:"ceiling_points_per_sec"`
	IngestToCeiling      float64 `json:"ingest_to_ceiling"`
	SearchRuns           int     `json:"search_runs"`
	SearchP50Ms          float64 `json:"search_p50_ms"`
	SearchP99Ms          float64 `json:"search_p99_ms"`
	SearchResults        int     `json:"search_results"`
	HistoryPoints        int     `json:"history_points"`
	BulkIntervalP50Ms    float64 `json:"bulk_interval_p50_ms"`
	BulkIntervalReturned int     `json:"bulk_interval_returned"`
	HistoryPointsPerSec  float64 `json:"history_points_per_sec"`
	HistoryFullMs        float64 `json:"history_full_ms"`
	SeedSeconds          float64 `json:"seed_seconds"`
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func run(duration time.Duration, clients, nruns, npoints int, asJSON, keep bool) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "mloop-bench-")
	if err != nil {
		return err
	}
	if keep {
		progress("keeping %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	res := Result{Date: time.Now().UTC().Format(time.RFC3339), Clients: clients, SearchRuns: nruns, HistoryPoints: npoints}

	progress("building mloop")
	bin, err := benchserver.Build(dir)
	if err != nil {
		return err
	}

	// Ceiling: the same batches straight into the store, no HTTP.
	progress("ceiling: %d writers × batches of 1000 metrics into SQLite for %s", clients, duration)
	if res.CeilingPointsPerSec, err = ceiling(ctx, filepath.Join(dir, "raw.db"), clients, duration); err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}

	// Ingest over HTTP.
	srv, err := benchserver.Start(bin, filepath.Join(dir, "ingest"))
	if err != nil {
		return err
	}
	progress("ingest: %d clients × log-batch of 1000 metrics over HTTP for %s", clients, duration)
	lat, points, elapsed, err := ingest(srv.URL, clients, duration)
	if err != nil {
		srv.Stop()
		return fmt.Errorf("ingest: %w", err)
	}
	res.ServerPeakRSSMB = srv.PeakRSSMB()
	srv.Stop()
	res.IngestPointsPerSec = float64(points) / elapsed.Seconds()
	res.IngestP50Ms, res.IngestP99Ms = pct(lat, 50), pct(lat, 99)
	res.IngestToCeiling = res.IngestPointsPerSec / res.CeilingPointsPerSec

	// Search and history: seed through the store, then serve.
	dataDir := filepath.Join(dir, "search")
	progress("seeding %d runs (10 params, 10 metrics, 5 tags) and a %d-point metric", nruns, npoints)
	t0 := time.Now()
	runID, err := seed(ctx, filepath.Join(dataDir, "mloop.db"), nruns, npoints)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	res.SeedSeconds = time.Since(t0).Seconds()
	if srv, err = benchserver.Start(bin, dataDir); err != nil {
		return err
	}
	defer srv.Stop()

	progress("search: runs/search over %d runs", nruns)
	if res.SearchP50Ms, res.SearchP99Ms, res.SearchResults, err = search(srv.URL); err != nil {
		return fmt.Errorf("search: %w", err)
	}
	progress("history: bulk-interval and full paged get-history of %d points", npoints)
	if res.BulkIntervalP50Ms, res.BulkIntervalReturned, err = bulkInterval(srv.URL, runID); err != nil {
		return fmt.Errorf("bulk interval: %w", err)
	}
	full, n, err := fullHistory(srv.URL, runID)
	if err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if n != npoints {
		return fmt.Errorf("history: got %d points, want %d", n, npoints)
	}
	res.HistoryFullMs = ms(full)
	res.HistoryPointsPerSec = float64(n) / full.Seconds()

	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	fmt.Printf("mloop tracking benchmark, %s, %d clients\n\n", res.Date, clients)
	fmt.Printf("%-52s %14s %s\n", "measure", "figure", "target")
	row := func(name, fig, target string) { fmt.Printf("%-52s %14s %s\n", name, fig, target) }
	row("log-batch ingest over HTTP (points/s)", f0(res.IngestPointsPerSec), "≥ 200,000")
	row("  p50 / p99 per batch of 1000 (ms)", f1(res.IngestP50Ms)+" / "+f1(res.IngestP99Ms), "")
	row("  server peak RSS (MB)", f1(res.ServerPeakRSSMB), "< 200")
	row("ceiling: same batches into SQLite, no HTTP (points/s)", f0(res.CeilingPointsPerSec), "")
	row("  HTTP ingest / ceiling", fmt.Sprintf("%.2f", res.IngestToCeiling), "")
	row(fmt.Sprintf("runs/search over %d runs, p50 (ms)", nruns), f1(res.SearchP50Ms), "≤ 50")
	row("  p99 (ms), results per page", f1(res.SearchP99Ms)+", "+strconv.Itoa(res.SearchResults), "")
	row(fmt.Sprintf("get-history-bulk-interval %d → 1000 points, p50 (ms)", npoints), f1(res.BulkIntervalP50Ms), "≤ 50")
	row(fmt.Sprintf("full paged get-history of %d points (points/s)", npoints), f0(res.HistoryPointsPerSec), "≥ 5,000,000")
	row("  seeding time (s)", f1(res.SeedSeconds), "")
	return nil
}

func f0(v float64) string { return strconv.FormatFloat(v, 'f', 0, 64) }
func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// pct returns the p-th percentile of latencies in ms.
func pct(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	i := int(float64(len(s)-1) * p / 100)
	return ms(s[i])
}

// batch returns 1000 metric points of a few keys starting at step.
func batch(step int64) []tracking.Metric {
	ms := make([]tracking.Metric, 1000)
	now := time.Now().UnixMilli()
	for i := range ms {
		ms[i] = tracking.Metric{Key: "m" + strconv.Itoa(i%10), Value: rand.Float64(), Timestamp: now, Step: step + int64(i/10)}
	}
	return ms
}

func ceiling(ctx context.Context, path string, clients int, d time.Duration) (float64, error) {
	db, err := sqlstore.Open(ctx, path)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	svc := tracking.NewService(sqlstore.NewTrackingStore(db))
	expID, err := svc.CreateExperiment(ctx, "ceiling", "", nil)
	if err != nil {
		return 0, err
	}
	store := sqlstore.NewTrackingStore(db)
	var points atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := range clients {
		r, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID, RunName: "c" + strconv.Itoa(c), StartTime: time.Now().UnixMilli()})
		if err != nil {
			return 0, err
		}
		wg.Add(1)
		go func(runID string) {
			defer wg.Done()
			for step := int64(0); time.Since(start) < d; step += 100 {
				if err := store.LogBatch(ctx, runID, batch(step), nil, nil); err != nil {
					errs <- err
					return
				}
				points.Add(1000)
			}
		}(r.Info.RunID)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return float64(points.Load()) / elapsed.Seconds(), nil
}

var client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

func post(u string, body any, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	resp, err := client.Post(u, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return answer(resp, out)
}

func get(u string, out any) error {
	resp, err := client.Get(u)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return answer(resp, out)
}

func answer(resp *http.Response, out any) error {
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("%s: %d %s", resp.Request.URL.Path, resp.StatusCode, b)
	}
	if out == nil {
		_, err := io.Copy(io.Discard, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type wireMetric struct {
	Key       string  `json:"key"`
	Value     float64 `json:"value"`
	Timestamp int64   `json:"timestamp"`
	Step      int64   `json:"step"`
}

func ingest(base string, clients int, d time.Duration) ([]time.Duration, int64, time.Duration, error) {
	var exp struct {
		ID string `json:"experiment_id"`
	}
	if err := post(base+"/api/2.0/mlflow/experiments/create", map[string]any{"name": "ingest"}, &exp); err != nil {
		return nil, 0, 0, err
	}
	var mu sync.Mutex
	var lat []time.Duration
	var points atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	start := time.Now()
	for c := range clients {
		var run struct {
			Run struct {
				Info struct {
					RunID string `json:"run_id"`
				} `json:"info"`
			} `json:"run"`
		}
		if err := post(base+"/api/2.0/mlflow/runs/create", map[string]any{"experiment_id": exp.ID, "run_name": "c" + strconv.Itoa(c)}, &run); err != nil {
			return nil, 0, 0, err
		}
		wg.Add(1)
		go func(runID string) {
			defer wg.Done()
			var mine []time.Duration
			for step := int64(0); time.Since(start) < d; step += 100 {
				ms := batch(step)
				wire := make([]wireMetric, len(ms))
				for i, m := range ms {
					wire[i] = wireMetric{m.Key, m.Value, m.Timestamp, m.Step}
				}
				t := time.Now()
				if err := post(base+"/api/2.0/mlflow/runs/log-batch", map[string]any{"run_id": runID, "metrics": wire}, nil); err != nil {
					errs <- err
					return
				}
				mine = append(mine, time.Since(t))
				points.Add(int64(len(ms)))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}(run.Run.Info.RunID)
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return nil, 0, 0, err
	}
	return lat, points.Load(), elapsed, nil
}

// seed writes nruns runs and one run with an npoints-point metric "loss"
// through the store, and returns that run's id.
func seed(ctx context.Context, path string, nruns, npoints int) (string, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", err
	}
	db, err := sqlstore.Open(ctx, path)
	if err != nil {
		return "", err
	}
	defer db.Close()
	store := sqlstore.NewTrackingStore(db)
	svc := tracking.NewService(store)
	expID, err := svc.CreateExperiment(ctx, "search", "", nil)
	if err != nil {
		return "", err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range nruns {
		r, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID, StartTime: int64(1700000000000 + i)})
		if err != nil {
			return "", err
		}
		metrics := make([]tracking.Metric, 10)
		params := make([]tracking.Param, 10)
		tags := make([]tracking.Tag, 5)
		for k := range 10 {
			metrics[k] = tracking.Metric{Key: "m" + strconv.Itoa(k), Value: rng.Float64(), Timestamp: 1700000000000, Step: 0}
			params[k] = tracking.Param{Key: "p" + strconv.Itoa(k), Value: "v" + strconv.Itoa(rng.IntN(10))}
		}
		for k := range 5 {
			tags[k] = tracking.Tag{Key: "t" + strconv.Itoa(k), Value: "x" + strconv.Itoa(rng.IntN(100))}
		}
		if err := store.LogBatch(ctx, r.Info.RunID, metrics, params, tags); err != nil {
			return "", err
		}
		if i%10000 == 9999 {
			progress("  %d runs", i+1)
		}
	}
	r, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID, RunName: "long", StartTime: 1})
	if err != nil {
		return "", err
	}
	for step := 0; step < npoints; step += 1000 {
		ms := make([]tracking.Metric, 0, 1000)
		for i := step; i < min(step+1000, npoints); i++ {
			ms = append(ms, tracking.Metric{Key: "loss", Value: 1 / float64(i+1), Timestamp: 1700000000000 + int64(i), Step: int64(i)})
		}
		if err := store.LogBatch(ctx, r.Info.RunID, ms, nil, nil); err != nil {
			return "", err
		}
	}
	return r.Info.RunID, nil
}

func search(base string) (p50, p99 float64, n int, err error) {
	var exp struct {
		Experiment struct {
			ID string `json:"experiment_id"`
		} `json:"experiment"`
	}
	if err := get(base+"/api/2.0/mlflow/experiments/get-by-name?experiment_name=search", &exp); err != nil {
		return 0, 0, 0, err
	}
	body := map[string]any{
		"experiment_ids": []string{exp.Experiment.ID},
		"filter":         "metrics.m0 > 0.5 and params.p1 = 'v3'",
		"order_by":       []string{"metrics.m1 DESC"},
		"max_results":    100,
	}
	var lat []time.Duration
	for i := range 40 {
		var out struct {
			Runs []json.RawMessage `json:"runs"`
		}
		t := time.Now()
		if err := post(base+"/api/2.0/mlflow/runs/search", body, &out); err != nil {
			return 0, 0, 0, err
		}
		if i > 0 { // the first request warms the caches
			lat = append(lat, time.Since(t))
		}
		n = len(out.Runs)
	}
	return pct(lat, 50), pct(lat, 99), n, nil
}

func bulkInterval(base, runID string) (float64, int, error) {
	u := base + "/api/2.0/mlflow/metrics/get-history-bulk-interval?" + url.Values{
		"run_ids": {runID}, "metric_key": {"loss"}, "max_results": {"1000"},
	}.Encode()
	var lat []time.Duration
	n := 0
	for i := range 21 {
		var out struct {
			Metrics []json.RawMessage `json:"metrics"`
		}
		t := time.Now()
		if err := get(u, &out); err != nil {
			return 0, 0, err
		}
		if i > 0 {
			lat = append(lat, time.Since(t))
		}
		n = len(out.Metrics)
	}
	return pct(lat, 50), n, nil
}

// fullHistory pages through the whole history of "loss" and returns the best
// time of three passes and the number of points.
func fullHistory(base, runID string) (time.Duration, int, error) {
	best, n := time.Duration(0), 0
	for range 3 {
		t := time.Now()
		count, token := 0, ""
		for {
			q := url.Values{"run_id": {runID}, "metric_key": {"loss"}, "max_results": {"25000"}}
			if token != "" {
				q.Set("page_token", token)
			}
			n, next, err := historyPage(base + "/api/2.0/mlflow/metrics/get-history?" + q.Encode())
			if err != nil {
				return 0, 0, err
			}
			count += n
			if next == "" || n == 0 {
				break
			}
			token = next
		}
		d := time.Since(t)
		if best == 0 || d < best {
			best = d
		}
		n = count
	}
	return best, n, nil
}

// historyPage fetches one page of get-history and returns how many points it
// holds and its next_page_token. It counts points without decoding them into
// structs: the figure measured is the server's, and a full JSON decode of a
// million points in this process would cost more than the server's work.
func historyPage(u string) (int, string, error) {
	resp, err := client.Get(u)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", err
	}
	if resp.StatusCode != 200 {
		return 0, "", fmt.Errorf("get-history: %d %s", resp.StatusCode, body)
	}
	n := bytes.Count(body, []byte(`"timestamp":`))
	next := ""
	if i := bytes.Index(body, []byte(`"next_page_token":"`)); i >= 0 {
		rest := body[i+len(`"next_page_token":"`):]
		if j := bytes.IndexByte(rest, '"'); j >= 0 {
			next = string(rest[:j])
		}
	}
	return n, next, nil
}
