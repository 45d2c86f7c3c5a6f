// Command serving measures mloop's model serving against the performance
// targets of issue 5 and prints each figure next to its target and its
// baselines, all from the same run on the same machine.
//
// The model is the flights model: a 150-tree, depth-6 XGBoost
// binary:logistic classifier of "delay > 15 minutes" from the features of
// examples/flights (departure hour and weekday, distance, and the origin
// and destination airports as categorical features). This program reads the
// flights Parquet file with mloop's own reader, writes the features of the
// first -train-rows flights to a CSV file, and trains the model on it with
// Debian's python3-xgboost (train.py beside this file, run with
// /usr/bin/python3). The next -request-rows flights, which the model never
// saw, make the request bodies: single-row Open Inference Protocol infer
// requests, one 2-D FP32 input of shape [1, 5], the same bodies for every
// server.
//
// Servers, each a separate process on 127.0.0.1:
//
//   - ceiling: a minimal Go net/http handler answering every POST with a
//     fixed small JSON body (this program, re-executed with
//     -ceiling-server): the practical ceiling of an HTTP server in Go here.
//   - python: the reference Python server of ../shared/baselines
//     (xgb_pyserver.py: FastAPI on uvicorn, 2 workers), started as its
//     docstring says. Skipped, with a line that says how to install it,
//     when /usr/bin/python3 cannot import xgboost, pandas, fastapi and
//     uvicorn.
//   - mloop: `mloop server` built from ./cmd/mloop, the model registered
//     through POST /api/v1/models/flights/versions, a deployment "flights"
//     created through POST /api/v1/deployments, served at the server's own
//     address.
//
// Load: a closed loop of -conns keep-alive connections (Go's net/http
// client), each sending the next request as soon as the previous answer
// is read, for -duration after a -warmup; throughput is the answers per
// second, the best of -runs runs (other work on a shared machine only
// ever slows a run down). The servers run side by side and their runs are
// interleaved (ceiling, python, mloop, ceiling, …), so that such work hits
// each alike. Every server's answers to the first requests
// are first checked against mloop's runtime in process. Latency: an open
// loop that sends at a fixed rate, half of mloop's measured maximum,
// whatever the answers do; each latency is counted from the moment its
// request was due (no coordinated omission). Payload logging: the closed
// loop with the deployment's payload_sample at 0 and at 1 (every request
// logged, the default), alternated -pairs times; the cost is 1 − best on /
// best off. In process: xgboost.Model.Predict on a batch of 1,000 rows,
// the median of -reps runs.
//
// The load generator runs on the same machine as the servers and shares
// its CPUs with them; the output says how many there are, how much CPU
// the generator itself used, and the machine's load average before and
// after.
//
// Usage (from the repository root):
//
//	go run ./bench/serving [-duration 5s] [-warmup 1s] [-conns 16] [-runs 3] [-pairs 2] [-reps 200]
//	    [-only ceiling,python,mloop,batch] [-train-rows 500000] [-model model.json] [-json] [-keep]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop/bench/internal/benchserver"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/xgboost"
	"github.com/mloop/mloop/internal/train/gbdt"
)

// Targets of issue 5.
const (
	targetCeilingShare = 0.60 // mloop's throughput ≥ 60% of the ceiling's
	targetPythonRatio  = 30   // and ≥ 30× the Python server's
	targetP99Ms        = 5    // p99 ≤ 5 ms at half of mloop's maximum
	targetBatchMs      = 2    // 1,000 rows in process ≤ 2 ms
	targetLoggingCost  = 0.15 // payload logging costs ≤ 15% of throughput
)

// features of the model, in order; origin and destination are categorical.
var features = []string{"hour", "weekday", "distance", "origin", "destination"}

func main() {
	if len(os.Args) == 2 && os.Args[1] == "-ceiling-server" {
		if err := ceilingServer(); err != nil {
			fmt.Fprintln(os.Stderr, "ceiling server:", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measuring time of each load measurement")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "load before each measurement that is not counted")
	flag.IntVar(&o.conns, "conns", 16, "concurrent keep-alive connections of the closed-loop load")
	flag.IntVar(&o.runs, "runs", 3, "closed-loop runs per throughput figure (the best counts: other load on the machine only slows a run down)")
	flag.IntVar(&o.pairs, "pairs", 2, "payload logging on/off measurement pairs")
	flag.IntVar(&o.reps, "reps", 200, "repetitions of the in-process batch prediction")
	flag.StringVar(&o.only, "only", "", "comma-separated parts to run: ceiling, python, mloop, batch (default all)")
	flag.StringVar(&o.data, "data", defaultData(), "the flights Parquet file (vega-datasets 3.2.1 flights-3m.parquet) [MLOOP_TEST_DATA is its folder]")
	flag.StringVar(&o.baselines, "baselines", "../shared/baselines", "folder of xgb_pyserver.py")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter with Debian's python3-xgboost")
	flag.IntVar(&o.trainRows, "train-rows", 500_000, "flights to train on (the first of the file)")
	flag.IntVar(&o.requestRows, "request-rows", 10_000, "flights after the training rows that make request bodies")
	flag.StringVar(&o.model, "model", "", "use this XGBoost model.json instead of training one (its features must be "+strings.Join(features, ", ")+")")
	flag.BoolVar(&o.asJSON, "json", false, "print the figures as JSON")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder")
	flag.Parse()
	if err := o.check(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	if err := run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type options struct {
	duration, warmup         time.Duration
	conns, runs, pairs, reps int
	only                     string
	data, baselines, python  string
	trainRows, requestRows   int
	model                    string
	asJSON, keep             bool
	parts                    map[string]bool
}

func (o *options) check() error {
	o.parts = map[string]bool{}
	if o.only == "" {
		o.only = "ceiling,python,mloop,batch"
	}
	for _, p := range strings.Split(o.only, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains([]string{"ceiling", "python", "mloop", "batch"}, p) {
			return fmt.Errorf("-only %q: want a comma-separated list of ceiling, python, mloop and batch", p)
		}
		o.parts[p] = true
	}
	if o.duration <= 0 || o.warmup < 0 || o.conns < 1 || o.runs < 1 || o.pairs < 1 || o.reps < 1 || o.trainRows < 1000 || o.requestRows < 1000 {
		return errors.New("-duration must be positive, -conns, -runs, -pairs and -reps at least 1, -train-rows and -request-rows at least 1000")
	}
	return nil
}

// defaultData is the flights file: in $MLOOP_TEST_DATA (set by
// scripts/test.sh) or ../shared/data.
func defaultData() string {
	if d := os.Getenv("MLOOP_TEST_DATA"); d != "" {
		return filepath.Join(d, "flights-3m.parquet")
	}
	return "../shared/data/flights-3m.parquet"
}

// Result holds every figure the benchmark prints. Rates are requests per
// second, times milliseconds.
type Result struct {
	Date       string `json:"date"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Conns      int    `json:"conns"`
	Runs       int    `json:"runs"`
	// LoadAvgBefore and LoadAvgAfter are the machine's 1-minute load
	// average (from /proc/loadavg) when the benchmark started and ended:
	// other work on the machine shows there.
	LoadAvgBefore float64 `json:"loadavg_before"`
	LoadAvgAfter  float64 `json:"loadavg_after"`
	DurationS     float64 `json:"duration_s"`

	Model Model `json:"model"`

	Ceiling *Load    `json:"ceiling,omitempty"`
	Python  *Load    `json:"python,omitempty"`
	Mloop   *Load    `json:"mloop,omitempty"`
	Skipped []string `json:"skipped,omitempty"`

	// MloopShareOfCeiling is mloop's throughput over the ceiling's;
	// MloopOverPython over the Python server's.
	MloopShareOfCeiling float64 `json:"mloop_share_of_ceiling,omitempty"`
	MloopOverPython     float64 `json:"mloop_over_python,omitempty"`

	// Paced is mloop under an open-loop load at half its maximum.
	Paced *Paced `json:"paced,omitempty"`

	// LoggingOn and LoggingOff are mloop's throughputs with payload_sample
	// 1 and 0 in alternated runs; LoggingCost is 1 − best on / best off.
	LoggingOn   []float64 `json:"logging_on_rps,omitempty"`
	LoggingOff  []float64 `json:"logging_off_rps,omitempty"`
	LoggingCost *float64  `json:"logging_cost,omitempty"`

	Batch *Batch `json:"batch,omitempty"`
}

// Model describes the model served.
type Model struct {
	Path         string  `json:"path"`
	Objective    string  `json:"objective"`
	Trees        int     `json:"trees"`
	Features     int     `json:"features"`
	TrainRows    int     `json:"train_rows,omitempty"`
	TrainSeconds float64 `json:"train_seconds,omitempty"`
	RequestRows  int     `json:"request_rows"`
}

// Load is a closed-loop throughput measurement: the best of its runs.
type Load struct {
	RPS float64 `json:"rps"`
	// Runs are the throughputs of every run.
	Runs     []float64 `json:"runs_rps,omitempty"`
	Requests int64     `json:"requests"`
	Errors   int64     `json:"errors"`
	// FirstError describes the first failed request.
	FirstError string  `json:"first_error,omitempty"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
	// GeneratorCPU is the CPU time the load generator used per second of
	// wall time (1 = one CPU).
	GeneratorCPU float64 `json:"generator_cpu"`
}

// Paced is an open-loop latency measurement.
type Paced struct {
	TargetRPS   float64 `json:"target_rps"`
	AchievedRPS float64 `json:"achieved_rps"`
	Requests    int64   `json:"requests"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	P50Ms       float64 `json:"p50_ms"`
	P90Ms       float64 `json:"p90_ms"`
	P99Ms       float64 `json:"p99_ms"`
	P999Ms      float64 `json:"p999_ms"`
	MaxMs       float64 `json:"max_ms"`
}

// Batch is the in-process prediction time.
type Batch struct {
	Rows     int     `json:"rows"`
	MedianMs float64 `json:"median_ms"`
	MinMs    float64 `json:"min_ms"`
	P90Ms    float64 `json:"p90_ms"`
	OneRowUs float64 `json:"one_row_median_us"`
	Reps     int     `json:"reps"`
}

func run(ctx context.Context, o options) error {
	tmp, err := os.MkdirTemp("", "mloop-bench-serving-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Fprintln(os.Stderr, "keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	res := &Result{
		Date: time.Now().UTC().Format(time.RFC3339), NumCPU: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0),
		Conns: o.conns, Runs: o.runs, DurationS: o.duration.Seconds(), LoadAvgBefore: loadAvg(),
	}

	progress("reading flights from %s", o.data)
	fl, err := readFlights(ctx, o.data, o.trainRows, o.requestRows)
	if err != nil {
		return err
	}
	res.Model.RequestRows = len(fl.requests)
	modelPath := o.model
	if modelPath == "" {
		modelDir := filepath.Join(tmp, "model")
		if err := os.MkdirAll(modelDir, 0o755); err != nil {
			return err
		}
		modelPath = filepath.Join(modelDir, "model.json")
		start := time.Now()
		if err := train(ctx, o, fl, tmp, modelPath); err != nil {
			return err
		}
		res.Model.TrainRows, res.Model.TrainSeconds = fl.trainRows, time.Since(start).Seconds()
	}
	model, err := xgboost.LoadFile(modelPath)
	if err != nil {
		return fmt.Errorf("load the model in mloop's runtime: %w", err)
	}
	if err := checkFeatures(model.Features()); err != nil {
		return err
	}
	res.Model.Path, res.Model.Objective, res.Model.Trees, res.Model.Features = modelPath, model.Objective(), model.NumTrees(), len(model.Features())
	bodies := requestBodies(fl.requests)
	want := make([]float32, len(fl.requests))
	if err := model.Predict(ctx, batchOf(fl.requests), want); err != nil {
		return fmt.Errorf("predict in process: %w", err)
	}

	if o.parts["batch"] {
		progress("in-process batch prediction")
		res.Batch, err = benchBatch(ctx, model, fl.requests, o.reps)
		if err != nil {
			return err
		}
	}
	// Every server runs from here to the end; their throughput runs are
	// interleaved, so that other work on the machine hits each alike.
	var targets []*target
	if o.parts["ceiling"] {
		progress("ceiling: minimal Go net/http server")
		url, stop, err := startCeiling()
		if err != nil {
			return fmt.Errorf("ceiling: %w", err)
		}
		defer stop()
		targets = append(targets, &target{name: "ceiling", url: url, dst: &res.Ceiling})
	}
	if o.parts["python"] {
		progress("python: the reference server of %s", o.baselines)
		url, stop, skip, err := startPython(ctx, o, tmp, modelPath, bodies, want)
		if err != nil {
			return fmt.Errorf("python: %w", err)
		}
		if skip != "" {
			res.Skipped = append(res.Skipped, skip)
		} else {
			defer stop()
			targets = append(targets, &target{name: "python", url: url, dst: &res.Python})
		}
	}
	var ml *mloopServer
	if o.parts["mloop"] {
		progress("mloop: building ./cmd/mloop")
		var skip string
		ml, skip, err = startMloop(ctx, tmp, filepath.Dir(modelPath), bodies, want)
		if err != nil {
			return fmt.Errorf("mloop: %w", err)
		}
		if skip != "" {
			res.Skipped = append(res.Skipped, skip)
		} else {
			defer ml.stop()
			targets = append(targets, &target{name: "mloop (payload logging on)", url: ml.infer, dst: &res.Mloop})
		}
	}
	for i := range o.runs {
		for _, t := range targets {
			progress("run %d of %d: %s, closed loop", i+1, o.runs, t.name)
			l, err := closedLoop(ctx, t.url, bodies, o)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if l.Errors > 0 {
				return fmt.Errorf("%s: %d of %d requests failed; the first: %s", t.name, l.Errors, l.Requests, l.FirstError)
			}
			t.runs = append(t.runs, l.RPS)
			if *t.dst == nil || l.RPS > (*t.dst).RPS {
				*t.dst = l
			}
			(*t.dst).Runs = t.runs
		}
	}
	if ml != nil {
		if err := ml.measure(ctx, o, bodies, res); err != nil {
			return fmt.Errorf("mloop: %w", err)
		}
	}
	if res.Mloop != nil && res.Ceiling != nil && res.Ceiling.RPS > 0 {
		res.MloopShareOfCeiling = res.Mloop.RPS / res.Ceiling.RPS
	}
	if res.Mloop != nil && res.Python != nil && res.Python.RPS > 0 {
		res.MloopOverPython = res.Mloop.RPS / res.Python.RPS
	}
	res.LoadAvgAfter = loadAvg()
	if o.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printResult(os.Stdout, res)
	return nil
}

// loadAvg returns the 1-minute load average, or -1 when /proc does not
// tell.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

// --- data and model -----------------------------------------------------------

// flights holds the features (rows of len(features) values, NaN when
// missing) of the training and request flights.
type flights struct {
	train     [][5]float32
	labels    []int8
	trainRows int
	requests  [][5]float32
}

// readFlights reads the first trainRows flights with a delay for training
// and the next requestRows for requests. Airports are coded by frequency in
// the training rows (most frequent 0, ties by name), as
// examples/flights/features.py does; an airport the training rows do not
// have is missing.
func readFlights(ctx context.Context, path string, trainRows, requestRows int) (*flights, error) {
	r, err := dataset.OpenFile(ctx, path, dataset.ReadOptions{Columns: []string{"date", "delay", "distance", "origin", "destination"}})
	if err != nil {
		return nil, fmt.Errorf("%w (the flights file is vega-datasets 3.2.1 flights-3m.parquet; give its path with -data)", err)
	}
	defer r.Close()
	idx := map[string]int{}
	for i, c := range r.Columns() {
		idx[c.Name] = i
	}
	type raw struct {
		hour, weekday, distance float32
		origin, dest            string
		late                    int8
	}
	var rows []raw
	for len(rows) < trainRows+requestRows {
		b, err := r.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		date, delay, dist := &b.Cols[idx["date"]], &b.Cols[idx["delay"]], &b.Cols[idx["distance"]]
		org, dst := &b.Cols[idx["origin"]], &b.Cols[idx["destination"]]
		if date.Kind != dataset.KindTimestamp || delay.Kind != dataset.KindInt || dist.Kind != dataset.KindInt ||
			org.Kind != dataset.KindText || dst.Kind != dataset.KindText {
			return nil, fmt.Errorf("%s: unexpected column types; want the flights file (date timestamp, delay and distance integers, origin and destination strings)", path)
		}
		for i := 0; i < b.Rows && len(rows) < trainRows+requestRows; i++ {
			if isNull(delay, i) || isNull(date, i) {
				continue
			}
			t := time.UnixMicro(date.Int[i]).UTC()
			x := raw{hour: float32(t.Hour()), weekday: float32((int(t.Weekday()) + 6) % 7), distance: float32(math.NaN())}
			if !isNull(dist, i) {
				x.distance = float32(dist.Int[i])
			}
			if !isNull(org, i) {
				x.origin = strings.Clone(org.Text[i])
			}
			if !isNull(dst, i) {
				x.dest = strings.Clone(dst.Text[i])
			}
			if delay.Int[i] > 15 {
				x.late = 1
			}
			rows = append(rows, x)
		}
	}
	if len(rows) < trainRows+requestRows {
		return nil, fmt.Errorf("%s has %d flights with a delay, want -train-rows + -request-rows = %d", path, len(rows), trainRows+requestRows)
	}
	codes := func(get func(raw) string) map[string]float32 {
		n := map[string]int{}
		for _, x := range rows[:trainRows] {
			if s := get(x); s != "" {
				n[s]++
			}
		}
		return gbdt.FrequencyCodes(n)
	}
	originCodes := codes(func(x raw) string { return x.origin })
	destCodes := codes(func(x raw) string { return x.dest })
	code := func(m map[string]float32, s string) float32 {
		if c, ok := m[s]; ok {
			return c
		}
		return float32(math.NaN())
	}
	fl := &flights{trainRows: trainRows}
	for i, x := range rows {
		f := [5]float32{x.hour, x.weekday, x.distance, code(originCodes, x.origin), code(destCodes, x.dest)}
		if i < trainRows {
			fl.train = append(fl.train, f)
			fl.labels = append(fl.labels, x.late)
		} else {
			fl.requests = append(fl.requests, f)
		}
	}
	return fl, nil
}

func isNull(c *dataset.ColumnValues, i int) bool { return c.Null != nil && c.Null[i] }

// train writes the training features to a CSV file and runs train.py.
func train(ctx context.Context, o options, fl *flights, tmp, modelPath string) error {
	script, err := filepath.Abs(filepath.Join("bench", "serving", "train.py"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(script); err != nil {
		return fmt.Errorf("%s: %w (run from the repository root)", script, err)
	}
	if out, err := exec.CommandContext(ctx, o.python, "-c", "import xgboost, pandas").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot import xgboost and pandas (%v: %s); install Debian's packages: apt-get install python3-xgboost python3-pandas — or pass a trained model with -model",
			o.python, err, strings.TrimSpace(string(out)))
	}
	csvPath := filepath.Join(tmp, "features.csv")
	if err := writeCSV(csvPath, fl); err != nil {
		return err
	}
	progress("training 150 trees of depth 6 on %d flights with %s (about a minute)", fl.trainRows, o.python)
	cmd := exec.CommandContext(ctx, o.python, script, csvPath, modelPath, "--trees", "150", "--depth", "6", "--threads", strconv.Itoa(runtime.NumCPU()))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("train.py: %w", err)
	}
	return nil
}

func writeCSV(path string, fl *flights) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	rec := make([]string, 6)
	if err := w.Write(append(slices.Clone(features), "label")); err != nil {
		f.Close()
		return err
	}
	for i, x := range fl.train {
		for j, v := range x {
			rec[j] = formatValue(v)
		}
		rec[5] = strconv.Itoa(int(fl.labels[i]))
		if err := w.Write(rec); err != nil {
			f.Close()
			return err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func formatValue(v float32) string {
	if v != v {
		return ""
	}
	return strconv.FormatFloat(float64(v), 'f', -1, 32)
}

func checkFeatures(fs []serving.Feature) error {
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	if !slices.Equal(names, features) {
		return fmt.Errorf("the model's features are %v, want %v", names, features)
	}
	return nil
}

func batchOf(rows [][5]float32) serving.Batch {
	b := serving.Batch{Rows: len(rows), Cols: len(features), Values: make([]float32, 0, len(rows)*len(features))}
	for _, r := range rows {
		b.Values = append(b.Values, r[:]...)
	}
	return b
}

// requestBodies returns one single-row OIP infer request per row: one 2-D
// FP32 input of shape [1, 5]; a missing value is null.
func requestBodies(rows [][5]float32) [][]byte {
	bodies := make([][]byte, len(rows))
	for i, r := range rows {
		b := []byte(`{"inputs":[{"name":"input","shape":[1,5],"datatype":"FP32","data":[`)
		for j, v := range r {
			if j > 0 {
				b = append(b, ',')
			}
			if v != v {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendFloat(b, float64(v), 'f', -1, 32)
			}
		}
		bodies[i] = append(b, "]}]}"...)
	}
	return bodies
}

// --- in process ----------------------------------------------------------------

func benchBatch(ctx context.Context, m *xgboost.Model, rows [][5]float32, reps int) (*Batch, error) {
	const n = 1000
	b := batchOf(rows[:n])
	out := make([]float32, n*m.Outputs())
	times := make([]time.Duration, 0, reps)
	for i := range reps + 20 {
		start := time.Now()
		if err := m.Predict(ctx, b, out); err != nil {
			return nil, err
		}
		if i >= 20 { // the first runs warm the caches
			times = append(times, time.Since(start))
		}
	}
	one := make([]time.Duration, 0, 10000)
	out1 := make([]float32, m.Outputs())
	for i := range 10000 {
		r := rows[i%len(rows)]
		start := time.Now()
		if err := m.Predict(ctx, serving.Batch{Rows: 1, Cols: len(r), Values: r[:]}, out1); err != nil {
			return nil, err
		}
		one = append(one, time.Since(start))
	}
	slices.Sort(times)
	slices.Sort(one)
	return &Batch{
		Rows: n, Reps: reps, MedianMs: ms(times[len(times)/2]), MinMs: ms(times[0]), P90Ms: ms(times[len(times)*9/10]),
		OneRowUs: float64(one[len(one)/2]) / float64(time.Microsecond),
	}, nil
}

// --- servers --------------------------------------------------------------------

// ceilingBody is the ceiling server's fixed answer: what mloop answers to
// one of the requests, in size and shape.
var ceilingBody = []byte(`{"model_name":"flights","model_version":"1","outputs":[{"name":"predict","shape":[1],"datatype":"FP32","data":[0.1734]}]}`)

// ceilingServer serves ceilingBody to every POST on a free port of
// 127.0.0.1 and prints its URL on stdout.
func ceilingServer() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write(ceilingBody)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {})
	fmt.Printf("listening on http://%s\n", ln.Addr())
	return http.Serve(ln, mux)
}

// proc is a server process this program started, in its own process
// group so that its children (uvicorn's workers) stop with it.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

func startProc(cmd *exec.Cmd, logPath string) (*proc, error) {
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	if cmd.Stdout == nil {
		cmd.Stdout = lf
	}
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{}), log: lf}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the end of the process's output.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log.Name())
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// stop sends SIGTERM to the process group, then SIGKILL after 10 s.
func (p *proc) stop() {
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.done
	}
	// Workers may outlive their parent by a moment.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	p.log.Close()
}

// waitOK polls url until it answers 200, the process exits or timeout.
func waitOK(p *proc, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	c := &http.Client{Timeout: 10 * time.Second}
	for {
		resp, err := c.Get(url)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p != nil && p.exited() {
			return fmt.Errorf("the server exited: %s", p.tail())
		}
		if time.Now().After(deadline) {
			msg := fmt.Sprintf("%s did not answer 200 within %v", url, timeout)
			if p != nil {
				msg += ": " + p.tail()
			}
			return errors.New(msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// target is a server whose throughput is measured.
type target struct {
	name string
	url  string
	dst  **Load
	runs []float64
}

// startCeiling starts the ceiling server (this program with
// -ceiling-server) and returns its infer URL.
func startCeiling() (url string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(self, "-ceiling-server")
	pr, pw, err := os.Pipe()
	if err != nil {
		return "", nil, err
	}
	cmd.Stdout = pw
	logFile, err := os.CreateTemp("", "mloop-bench-ceiling-*.log")
	if err != nil {
		return "", nil, err
	}
	logFile.Close()
	p, err := startProc(cmd, logFile.Name())
	pw.Close()
	if err != nil {
		pr.Close()
		os.Remove(logFile.Name())
		return "", nil, err
	}
	stop = func() { p.stop(); os.Remove(logFile.Name()) }
	line, err := bufio.NewReader(pr).ReadString('\n')
	pr.Close()
	if err != nil {
		stop()
		return "", nil, fmt.Errorf("read the ceiling server's address: %w (%s)", err, p.tail())
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	return base + "/v2/models/flights/infer", stop, nil
}

// startPython starts the reference Python server and returns its infer
// URL, or a line that says why it was skipped.
func startPython(ctx context.Context, o options, tmp, modelPath string, bodies [][]byte, want []float32) (url string, stop func(), skip string, err error) {
	server := filepath.Join(o.baselines, "xgb_pyserver.py")
	if _, err := os.Stat(server); err != nil {
		return "", nil, fmt.Sprintf("python: skipped: %s not found (give its folder with -baselines)", server), nil
	}
	if out, err := exec.CommandContext(ctx, o.python, "-c", "import xgboost, pandas, fastapi, uvicorn").CombinedOutput(); err != nil {
		return "", nil, fmt.Sprintf("python: skipped: %s cannot import xgboost, pandas, fastapi and uvicorn (%s); install Debian's packages: apt-get install python3-xgboost python3-pandas python3-fastapi uvicorn",
			o.python, lastLine(out)), nil
	}
	addr, err := freeAddr()
	if err != nil {
		return "", nil, "", err
	}
	host, port, _ := net.SplitHostPort(addr)
	args := []string{"--app-dir", o.baselines, "xgb_pyserver:app", "--host", host, "--port", port, "--workers", "2", "--log-level", "warning"}
	var cmd *exec.Cmd
	if uv, err := exec.LookPath("uvicorn"); err == nil {
		cmd = exec.Command(uv, args...)
	} else {
		cmd = exec.Command(o.python, append([]string{"-m", "uvicorn"}, args...)...)
	}
	cmd.Env = append(os.Environ(), "MODEL="+modelPath, "OMP_NUM_THREADS=1")
	p, err := startProc(cmd, filepath.Join(tmp, "python-server.log"))
	if err != nil {
		return "", nil, "", err
	}
	base := "http://" + addr
	if err := waitOK(p, base+"/v2/health/ready", 60*time.Second); err != nil {
		p.stop()
		return "", nil, "", fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	url = base + "/v2/models/flights/infer"
	if err := checkAnswers(url, bodies, want, 50); err != nil {
		p.stop()
		return "", nil, "", fmt.Errorf("the Python server's answers: %w", err)
	}
	return url, p.stop, "", nil
}

func lastLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

// checkAnswers sends the first n bodies one by one and compares the
// predictions with want (mloop's runtime in process) to within 1e-5.
func checkAnswers(url string, bodies [][]byte, want []float32, n int) error {
	c := &http.Client{Timeout: 30 * time.Second}
	for i := range min(n, len(bodies)) {
		resp, err := c.Post(url, "application/json", bytes.NewReader(bodies[i]))
		if err != nil {
			return err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("request %d: %s: %s", i, resp.Status, b)
		}
		var r struct {
			Outputs []struct {
				Data []float64 `json:"data"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(b, &r); err != nil || len(r.Outputs) == 0 || len(r.Outputs[0].Data) != 1 {
			return fmt.Errorf("request %d: answer %s is not one prediction (%v)", i, b, err)
		}
		if got := r.Outputs[0].Data[0]; math.Abs(got-float64(want[i])) > 1e-5 {
			return fmt.Errorf("request %d (%s): predicted %v, mloop's runtime in process predicts %v", i, bodies[i], got, want[i])
		}
	}
	return nil
}

// --- mloop -----------------------------------------------------------------------

// mloopServer is a running mloop server serving the deployment flights.
type mloopServer struct {
	srv   *benchserver.Server
	infer string // the deployment's OIP infer URL
}

func (m *mloopServer) stop() {
	progress("mloop: stopping mloop server")
	m.srv.Stop()
}

// startMloop builds and starts mloop server, registers the model in
// modelDir, deploys it as flights and checks its answers; or returns a
// line that says why it was skipped.
func startMloop(ctx context.Context, tmp, modelDir string, bodies [][]byte, want []float32) (_ *mloopServer, skip string, err error) {
	bin, err := benchserver.Build(tmp)
	if err != nil {
		return nil, "", err
	}
	data := filepath.Join(tmp, "mloop-data")
	progress("mloop: starting mloop server (data in %s)", data)
	srv, err := benchserver.Start(bin, data)
	if err != nil {
		return nil, "", err
	}
	m := &mloopServer{srv: srv, infer: srv.URL + "/v2/models/flights/infer"}
	defer func() {
		if err != nil || skip != "" {
			m.stop()
		}
	}()
	c := client.New(srv.URL, nil)
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	v, err := c.RegisterModel(rctx, "flights", modelDir, "xgboost", "serving benchmark")
	cancel()
	if err != nil {
		return nil, "", fmt.Errorf("register the model: %w", err)
	}
	spec := map[string]any{"name": "flights", "spec": map[string]any{"model": fmt.Sprintf("flights@%d", v.Version)}}
	progress("mloop: registered flights version %d; creating the deployment", v.Version)
	if status, body, err := callJSON(ctx, http.MethodPost, srv.URL+"/api/v1/deployments", spec); err != nil {
		return nil, "", err
	} else if status == http.StatusNotFound || status == http.StatusNotImplemented || status == http.StatusMethodNotAllowed {
		return nil, fmt.Sprintf("mloop: skipped: this build has no deployments API yet (POST /api/v1/deployments: %d %s)", status, body), nil
	} else if status != http.StatusCreated && status != http.StatusOK {
		return nil, "", fmt.Errorf("create the deployment: %d %s", status, body)
	}
	progress("mloop: waiting for /v2/models/flights/ready")
	if err := waitOK(nil, srv.URL+"/v2/models/flights/ready", 60*time.Second); err != nil {
		return nil, "", fmt.Errorf("the deployment: %w", err)
	}
	if err := checkAnswers(m.infer, bodies, want, 200); err != nil {
		return nil, "", fmt.Errorf("mloop's answers: %w", err)
	}
	return m, "", nil
}

// measure takes mloop's latency at half its maximum throughput (measured
// before, in res.Mloop) and the cost of payload logging.
func (m *mloopServer) measure(ctx context.Context, o options, bodies [][]byte, res *Result) error {
	if res.Mloop == nil {
		return errors.New("no maximum throughput measured")
	}
	rate := res.Mloop.RPS / 2
	progress("mloop: latency at %.0f requests/s (half the maximum), open loop", rate)
	var err error
	res.Paced, err = openLoop(ctx, m.infer, bodies, rate, o)
	if err != nil {
		return err
	}
	// Payload logging: off and on alternated, so that other work on the
	// machine hits both alike; the best of each counts.
	for range o.pairs {
		for _, sample := range []float64{0, 1} {
			progress("mloop: throughput with payload_sample %v", sample)
			if err := setPayloadSample(ctx, m.srv.URL, sample); err != nil {
				return err
			}
			l, err := closedLoop(ctx, m.infer, bodies, o)
			if err != nil {
				return err
			}
			if l.Errors > 0 {
				return fmt.Errorf("payload_sample %v: %d of %d requests failed; the first: %s", sample, l.Errors, l.Requests, l.FirstError)
			}
			if sample == 0 {
				res.LoggingOff = append(res.LoggingOff, l.RPS)
			} else {
				res.LoggingOn = append(res.LoggingOn, l.RPS)
			}
		}
	}
	if off := slices.Max(res.LoggingOff); off > 0 {
		cost := 1 - slices.Max(res.LoggingOn)/off
		res.LoggingCost = &cost
	}
	return nil
}

// setPayloadSample patches the deployment and waits until this server's
// data plane serves the new generation.
func setPayloadSample(ctx context.Context, base string, sample float64) error {
	status, body, err := callJSON(ctx, http.MethodPatch, base+"/api/v1/deployments/flights", map[string]any{"payload_sample": sample})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("PATCH /api/v1/deployments/flights payload_sample %v: %d %s", sample, status, body)
	}
	var patched struct {
		Deployment struct {
			Generation int64 `json:"generation"`
		} `json:"deployment"`
	}
	if err := json.Unmarshal(body, &patched); err != nil {
		return fmt.Errorf("PATCH /api/v1/deployments/flights answered %s: %w", body, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, body, err := callJSON(ctx, http.MethodGet, base+"/api/v1/deployments/flights", nil)
		if err != nil {
			return err
		}
		var got struct {
			Serving *struct {
				Generation int64 `json:"generation"`
				Ready      bool  `json:"ready"`
			} `json:"serving"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &got) != nil {
			return fmt.Errorf("GET /api/v1/deployments/flights: %d %s", status, body)
		}
		if got.Serving == nil {
			// No status from the data plane: give it time to follow.
			time.Sleep(3 * time.Second)
			return nil
		}
		if got.Serving.Generation >= patched.Deployment.Generation && got.Serving.Ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the data plane still serves generation %d 30s after the change to %d", got.Serving.Generation, patched.Deployment.Generation)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func callJSON(ctx context.Context, method, url string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// --- load ------------------------------------------------------------------------

func newClient(conns int) *http.Client {
	tr := &http.Transport{
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// send posts body to url and reads the answer; a non-200 answer is an
// error.
func send(ctx context.Context, c *http.Client, url string, body []byte, buf *bytes.Buffer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(buf.Bytes()))
	}
	return nil
}

// cpuTime returns the CPU time (user + system) this process used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// closedLoop runs o.conns clients, each sending the next body as soon as
// it has the previous answer, for o.warmup and then o.duration, and
// returns the figures of the second part.
func closedLoop(ctx context.Context, url string, bodies [][]byte, o options) (*Load, error) {
	c := newClient(o.conns)
	defer c.CloseIdleConnections()
	var (
		measuring, stop atomic.Bool
		requests, errs  atomic.Int64
		firstErr        atomic.Value
		next            atomic.Int64
		wg              sync.WaitGroup
		mu              sync.Mutex
		lats            []time.Duration
	)
	for range o.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			local := make([]time.Duration, 0, 1<<14)
			for !stop.Load() {
				body := bodies[int(next.Add(1))%len(bodies)]
				start := time.Now()
				err := send(ctx, c, url, body, &buf)
				if !measuring.Load() {
					continue
				}
				requests.Add(1)
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				local = append(local, time.Since(start))
			}
			mu.Lock()
			lats = append(lats, local...)
			mu.Unlock()
		}()
	}
	time.Sleep(o.warmup)
	cpu0, t0 := cpuTime(), time.Now()
	measuring.Store(true)
	time.Sleep(o.duration)
	measuring.Store(false)
	elapsed, cpu := time.Since(t0), cpuTime()-cpu0
	stop.Store(true)
	wg.Wait()
	l := &Load{
		Requests: requests.Load(), Errors: errs.Load(),
		RPS:          float64(requests.Load()-errs.Load()) / elapsed.Seconds(),
		GeneratorCPU: cpu.Seconds() / elapsed.Seconds(),
	}
	if v := firstErr.Load(); v != nil {
		l.FirstError = v.(string)
	}
	if len(lats) > 0 {
		slices.Sort(lats)
		l.P50Ms, l.P99Ms = ms(pct(lats, 0.50)), ms(pct(lats, 0.99))
	}
	return l, nil
}

// openLoop sends requests at a fixed rate, whatever the answers do, from a
// pool of clients, for o.warmup and then o.duration. A latency counts from
// the moment its request was due, so a request that waited for a free
// client counts its wait.
func openLoop(ctx context.Context, url string, bodies [][]byte, rate float64, o options) (*Paced, error) {
	if rate <= 0 {
		return nil, errors.New("open loop: no rate")
	}
	workers := max(64, 4*o.conns)
	c := newClient(workers)
	defer c.CloseIdleConnections()
	type ticket struct {
		due      time.Time
		measured bool
		i        int
	}
	tickets := make(chan ticket, 1<<20)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lats     []time.Duration
		errs     atomic.Int64
		firstErr atomic.Value
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			var local []time.Duration
			var failed int64
			for t := range tickets {
				err := send(ctx, c, url, bodies[t.i%len(bodies)], &buf)
				lat := time.Since(t.due)
				if !t.measured {
					continue
				}
				if err != nil {
					failed++
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				local = append(local, lat)
			}
			mu.Lock()
			lats = append(lats, local...)
			errs.Add(failed)
			mu.Unlock()
		}()
	}
	start := time.Now()
	measureFrom := start.Add(o.warmup)
	end := measureFrom.Add(o.duration)
	interval := time.Duration(float64(time.Second) / rate)
	sent := 0
	for {
		due := start.Add(time.Duration(sent) * interval)
		if !due.Before(end) {
			break
		}
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		tickets <- ticket{due: due, measured: !due.Before(measureFrom), i: sent}
		sent++
	}
	close(tickets)
	wg.Wait()
	p := &Paced{TargetRPS: rate, Errors: errs.Load()}
	p.Requests = int64(len(lats)) + p.Errors
	p.AchievedRPS = float64(len(lats)) / o.duration.Seconds()
	if v := firstErr.Load(); v != nil {
		p.FirstError = v.(string)
	}
	if len(lats) == 0 {
		return nil, fmt.Errorf("open loop: no request succeeded (first error: %s)", p.FirstError)
	}
	slices.Sort(lats)
	p.P50Ms, p.P90Ms, p.P99Ms, p.P999Ms = ms(pct(lats, 0.5)), ms(pct(lats, 0.9)), ms(pct(lats, 0.99)), ms(pct(lats, 0.999))
	p.MaxMs = ms(lats[len(lats)-1])
	return p, nil
}

// pct returns the nearest-rank q-quantile of sorted.
func pct(sorted []time.Duration, q float64) time.Duration {
	r := int(math.Ceil(q * float64(len(sorted))))
	return sorted[max(r, 1)-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// --- output ----------------------------------------------------------------------

func printResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "serving benchmark, %s: %d CPUs, GOMAXPROCS=%d; the load generator and the servers share these CPUs\n",
		r.Date, r.NumCPU, r.GOMAXPROCS)
	fmt.Fprintf(w, "machine load average (1 min) %.2f before, %.2f after: above 0 means other work competed for the CPUs\n", r.LoadAvgBefore, r.LoadAvgAfter)
	m := r.Model
	trained := ""
	if m.TrainRows > 0 {
		trained = fmt.Sprintf(", trained on %d flights in %.0f s", m.TrainRows, m.TrainSeconds)
	}
	fmt.Fprintf(w, "model: %d trees, %s, %d features (flights: hour, weekday, distance, origin, destination)%s\n", m.Trees, m.Objective, m.Features, trained)
	fmt.Fprintf(w, "load: single-row OIP infer requests from %d flights the model did not see; closed loop of %d keep-alive connections, %.0f s per run, the best of %d runs\n\n",
		m.RequestRows, r.Conns, r.DurationS, r.Runs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tfigure\ttarget\tnotes")
	load := func(name string, l *Load) {
		if l == nil {
			return
		}
		note := fmt.Sprintf("runs %s; p50 %.2f ms, p99 %.2f ms; load generator %.0f%% of a CPU", joinRates(l.Runs), l.P50Ms, l.P99Ms, 100*l.GeneratorCPU)
		if l.Errors > 0 {
			note += fmt.Sprintf("; %d errors, first: %s", l.Errors, l.FirstError)
		}
		fmt.Fprintf(tw, "%s\t%.0f req/s\t\t%s\n", name, l.RPS, note)
	}
	load("ceiling: Go net/http, fixed JSON", r.Ceiling)
	load("python reference server (uvicorn, 2 workers)", r.Python)
	load("mloop server (payload logging on)", r.Mloop)
	if r.MloopShareOfCeiling > 0 {
		fmt.Fprintf(tw, "  mloop / ceiling\t%.0f%%\t≥ %.0f%% %s\t\n", 100*r.MloopShareOfCeiling, 100*targetCeilingShare, verdict(r.MloopShareOfCeiling >= targetCeilingShare))
	}
	if r.MloopOverPython > 0 {
		fmt.Fprintf(tw, "  mloop / python\t%.0f×\t≥ %d× %s\t\n", r.MloopOverPython, targetPythonRatio, verdict(r.MloopOverPython >= targetPythonRatio))
	}
	if p := r.Paced; p != nil {
		note := fmt.Sprintf("open loop at %.0f req/s (achieved %.0f): p50 %.2f, p90 %.2f, p99.9 %.2f, max %.1f ms", p.TargetRPS, p.AchievedRPS, p.P50Ms, p.P90Ms, p.P999Ms, p.MaxMs)
		if p.Errors > 0 {
			note += fmt.Sprintf("; %d errors, first: %s", p.Errors, p.FirstError)
		}
		fmt.Fprintf(tw, "mloop p99 latency at half its maximum\t%.2f ms\t≤ %d ms %s\t%s\n", p.P99Ms, targetP99Ms, verdict(p.P99Ms <= targetP99Ms), note)
	}
	if r.LoggingCost != nil {
		fmt.Fprintf(tw, "payload logging cost\t%.1f%%\t≤ %.0f%% %s\tbest of on %s vs off %s req/s\n", 100**r.LoggingCost, 100*targetLoggingCost,
			verdict(*r.LoggingCost <= targetLoggingCost), joinRates(r.LoggingOn), joinRates(r.LoggingOff))
	}
	if b := r.Batch; b != nil {
		fmt.Fprintf(tw, "%d-row batch predicted in process\t%.3f ms\t≤ %d ms %s\tmedian of %d; min %.3f, p90 %.3f ms; one row %.1f µs\n",
			b.Rows, b.MedianMs, targetBatchMs, verdict(b.MedianMs <= targetBatchMs), b.Reps, b.MinMs, b.P90Ms, b.OneRowUs)
	}
	tw.Flush()
	for _, s := range r.Skipped {
		fmt.Fprintln(w, s)
	}
}

func joinRates(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strings.Join(s, ", ")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}
