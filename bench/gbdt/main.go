// Command gbdt compares mloop's built-in trainer (internal/train/gbdt) with
// XGBoost on the flights task of examples/flights, and prints both held-out
// ROC AUCs, both training times and the differences.
//
// The task is examples/flights' own: will a flight be more than 15 minutes
// late, from the hour and weekday of its departure, its distance, and its
// origin and destination airports (categorical features, coded by
// frequency in the training rows, as features.py does; airports the
// training rows lack are missing values). As train.py does, the model is
// trained on the -train-months months before the evaluation month and
// scored on that month (by default trained on May 2001, about 500,000
// flights, and scored on June 2001). Hyperparameters are train.py's: 200
// trees of depth 6, learning rate 0.1, hist, partition-based categorical
// splits (max_cat_to_onehot=1).
//
// This program reads flights-3m.parquet with mloop's own reader, trains
// mloop's model in process, then writes the same rows as raw float32 files
// to a temporary folder and runs xgb.py (beside this file) with
// /usr/bin/python3 (Debian's python3-xgboost), which trains XGBoost on
// them with the same thread count. Both AUCs are computed by the same
// function on the same evaluation rows (xgb.py also prints sklearn's AUC
// of XGBoost's model as a cross-check). It also checks that mloop's native
// runtime and XGBoost itself, loading the model mloop wrote, predict what
// the trainer predicts.
//
// Training times exclude reading the data; mloop's includes binning.
//
// Usage (from the repository root):
//
//	go run ./bench/gbdt [-data ../shared/data/flights-3m.parquet] [-eval-month 6] [-train-months 1]
//	    [-trees 200] [-depth 6] [-learning-rate 0.1] [-threads N] [-json] [-keep]
//	    [-cpuprofile FILE] [-skip-xgboost]
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/xgboost"
	"github.com/mloop/mloop/internal/train/gbdt"
)

// target is the bar of issue 6: our AUC within 0.01 of XGBoost's.
const target = 0.01

type options struct {
	data, python, script   string
	evalMonth, trainMonths int
	trees, depth, threads  int
	learningRate           float64
	asJSON, keep           bool
	cpuProfile             string
	skipXGBoost            bool
}

// Result holds the figures the program prints.
type Result struct {
	Date        string  `json:"date"`
	NumCPU      int     `json:"num_cpu"`
	Threads     int     `json:"threads"`
	TrainMonths string  `json:"train_months"`
	EvalMonth   string  `json:"eval_month"`
	TrainRows   int     `json:"train_rows"`
	EvalRows    int     `json:"eval_rows"`
	Trees       int     `json:"trees"`
	Depth       int     `json:"depth"`
	LearnRate   float64 `json:"learning_rate"`
	XGBoost     string  `json:"xgboost_version"`

	OursAUC       float64 `json:"ours_auc"`
	XGBAUC        float64 `json:"xgb_auc"`
	XGBAUCSklearn float64 `json:"xgb_auc_sklearn"`
	AUCDiff       float64 `json:"auc_diff"`
	OursLogloss   float64 `json:"ours_logloss"`
	XGBLogloss    float64 `json:"xgb_logloss"`
	OursSeconds   float64 `json:"ours_train_seconds"`
	XGBSeconds    float64 `json:"xgb_train_seconds"`
	// RuntimeMaxDiff and XGBoostMaxDiff are the largest differences
	// between the trainer's predictions on the evaluation rows and those of
	// mloop's runtime and of XGBoost loading the written model.
	RuntimeMaxDiff float64 `json:"runtime_max_diff"`
	XGBoostMaxDiff float64 `json:"xgboost_max_diff"`
	Pass           bool    `json:"pass"`
}

func main() {
	var o options
	flag.StringVar(&o.data, "data", defaultData(), "path of flights-3m.parquet (vega-datasets 3.2.1)")
	flag.StringVar(&o.python, "python", "/usr/bin/python3", "Python interpreter with Debian's python3-xgboost")
	flag.StringVar(&o.script, "script", filepath.Join("bench", "gbdt", "xgb.py"), "path of xgb.py")
	flag.IntVar(&o.evalMonth, "eval-month", 6, "month of 2001 to score on (2-6)")
	flag.IntVar(&o.trainMonths, "train-months", 1, "months before the eval month to train on")
	flag.IntVar(&o.trees, "trees", 200, "boosting rounds")
	flag.IntVar(&o.depth, "depth", 6, "maximum tree depth")
	flag.Float64Var(&o.learningRate, "learning-rate", 0.1, "learning rate (eta)")
	flag.IntVar(&o.threads, "threads", runtime.NumCPU(), "threads for both trainers")
	flag.BoolVar(&o.asJSON, "json", false, "print the figures as JSON")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary folder")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of mloop's training to this file")
	flag.BoolVar(&o.skipXGBoost, "skip-xgboost", false, "train mloop's model only (no comparison; exits 1)")
	flag.Parse()
	if o.evalMonth < 2 || o.evalMonth > 6 || o.trainMonths < 1 || o.trainMonths >= o.evalMonth || o.trees < 1 || o.depth < 1 || o.threads < 1 {
		fmt.Fprintln(os.Stderr, "bench gbdt: -eval-month must be 2 to 6, -train-months 1 to eval-month−1, -trees, -depth and -threads at least 1")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench gbdt:", err)
		os.Exit(1)
	}
	if o.asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(res)
	} else {
		printResult(os.Stdout, res)
	}
	if !res.Pass {
		os.Exit(1)
	}
}

// defaultData is the flights file: in $MLOOP_TEST_DATA (set by
// scripts/test.sh) or ../shared/data.
func defaultData() string {
	if d := os.Getenv("MLOOP_TEST_DATA"); d != "" {
		return filepath.Join(d, "flights-3m.parquet")
	}
	return filepath.Join("..", "shared", "data", "flights-3m.parquet")
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// flight is one flight's features before the airports are coded.
type flight struct {
	hour, weekday, distance float32
	origin, dest            string
	month                   time.Month
	late                    int8
}

// split holds the matrices of one side (training or evaluation).
type split struct {
	x    []float32 // row-major, 5 per row
	y    []int8
	rows int
}

func run(ctx context.Context, o options) (*Result, error) {
	if _, err := os.Stat(o.script); err != nil {
		return nil, fmt.Errorf("%w (run from the repository root, or give -script)", err)
	}
	progress("reading %s", o.data)
	fl, err := readFlights(ctx, o.data)
	if err != nil {
		return nil, err
	}
	first := time.Month(o.evalMonth - o.trainMonths)
	var trainF, evalF []flight
	for _, f := range fl {
		switch {
		case f.month == time.Month(o.evalMonth):
			evalF = append(evalF, f)
		case f.month >= first && f.month < time.Month(o.evalMonth):
			trainF = append(trainF, f)
		}
	}
	if len(trainF) == 0 || len(evalF) == 0 {
		return nil, fmt.Errorf("%s: no flights in the chosen months", o.data)
	}
	originCodes, originN := codes(trainF, func(f flight) string { return f.origin })
	destCodes, destN := codes(trainF, func(f flight) string { return f.dest })
	encode := func(fs []flight) split {
		s := split{rows: len(fs), x: make([]float32, 0, 5*len(fs)), y: make([]int8, len(fs))}
		for i, f := range fs {
			s.x = append(s.x, f.hour, f.weekday, f.distance, code(originCodes, f.origin), code(destCodes, f.dest))
			s.y[i] = f.late
		}
		return s
	}
	tr, ev := encode(trainF), encode(evalF)
	res := &Result{
		Date: time.Now().UTC().Format(time.RFC3339), NumCPU: runtime.NumCPU(), Threads: o.threads,
		TrainMonths: monthRange(first, time.Month(o.evalMonth-1)), EvalMonth: fmt.Sprintf("2001-%02d", o.evalMonth),
		TrainRows: tr.rows, EvalRows: ev.rows, Trees: o.trees, Depth: o.depth, LearnRate: o.learningRate,
	}

	// Ours.
	features := []gbdt.Feature{{Name: "hour"}, {Name: "weekday"}, {Name: "distance"}, {Name: "origin", Categorical: true}, {Name: "destination", Categorical: true}}
	trainData, err := toData(features, tr)
	if err != nil {
		return nil, err
	}
	cfg := gbdt.DefaultConfig()
	cfg.NumTrees, cfg.MaxDepth, cfg.LearningRate, cfg.Threads = o.trees, o.depth, o.learningRate, o.threads
	cfg.ProgressEvery = 50
	cfg.Progress = func(p gbdt.Progress) {
		progress("mloop: %d/%d trees, %.1fs, train %s %.5f", p.Round, p.Rounds, p.Elapsed.Seconds(), p.Metric, p.Train)
	}
	progress("training mloop's gbdt on %d flights of %s", tr.rows, res.TrainMonths)
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	model, err := gbdt.Train(ctx, trainData, nil, cfg)
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return nil, err
	}
	res.OursSeconds = time.Since(start).Seconds()
	if o.skipXGBoost {
		return nil, fmt.Errorf("-skip-xgboost: mloop trained in %.1fs; nothing compared", res.OursSeconds)
	}
	ours := make([]float32, ev.rows)
	if err := model.Predict(ev.x, ours); err != nil {
		return nil, err
	}

	tmp, err := os.MkdirTemp("", "bench-gbdt-")
	if err != nil {
		return nil, err
	}
	if o.keep {
		progress("keeping %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	var buf bytes.Buffer
	if err := model.WriteXGBoostJSON(&buf); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "ours.json"), buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	// mloop's runtime on the model file.
	rt, err := xgboost.Load(bytes.NewReader(buf.Bytes()), "ours.json")
	if err != nil {
		return nil, fmt.Errorf("the runtime cannot load the trained model: %w", err)
	}
	byRuntime := make([]float32, ev.rows)
	if err := rt.Predict(ctx, serving.Batch{Rows: ev.rows, Cols: 5, Values: ev.x}, byRuntime); err != nil {
		return nil, err
	}
	res.RuntimeMaxDiff = maxDiff(ours, byRuntime)

	// XGBoost.
	for name, v := range map[string]any{"train_x.f32": tr.x, "train_y.i8": tr.y, "eval_x.f32": ev.x, "eval_y.i8": ev.y} {
		if err := writeRaw(filepath.Join(tmp, name), v); err != nil {
			return nil, err
		}
	}
	ncat, _ := json.Marshal(map[string]int{"origin": originN, "destination": destN})
	if err := os.WriteFile(filepath.Join(tmp, "ncat.json"), ncat, 0o644); err != nil {
		return nil, err
	}
	progress("training XGBoost (%s %s) on the same rows", o.python, o.script)
	cmd := exec.CommandContext(ctx, o.python, o.script, tmp, "--trees", strconv.Itoa(o.trees), "--depth", strconv.Itoa(o.depth),
		"--learning-rate", strconv.FormatFloat(o.learningRate, 'g', -1, 64), "--threads", strconv.Itoa(o.threads))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s: %w (it needs Debian's python3-xgboost, python3-pandas and python3-sklearn)", o.script, err)
	}
	var py struct {
		TrainSeconds float64 `json:"train_seconds"`
		AUC          float64 `json:"auc"`
		Version      string  `json:"version"`
	}
	if err := json.Unmarshal(lastLine(out), &py); err != nil {
		return nil, fmt.Errorf("%s printed %q: %w", o.script, out, err)
	}
	res.XGBSeconds, res.XGBAUCSklearn, res.XGBoost = py.TrainSeconds, py.AUC, py.Version
	xgbPred, err := readF32(filepath.Join(tmp, "xgb_pred.f32"), ev.rows)
	if err != nil {
		return nil, err
	}
	oursByXGB, err := readF32(filepath.Join(tmp, "ours_by_xgb.f32"), ev.rows)
	if err != nil {
		return nil, err
	}
	res.XGBoostMaxDiff = maxDiff(ours, oursByXGB)

	labels := make([]float32, ev.rows)
	for i, y := range ev.y {
		labels[i] = float32(y)
	}
	mo, err := gbdt.Evaluate(gbdt.BinaryLogistic, 0, labels, nil, ours)
	if err != nil {
		return nil, err
	}
	mx, err := gbdt.Evaluate(gbdt.BinaryLogistic, 0, labels, nil, xgbPred)
	if err != nil {
		return nil, err
	}
	res.OursAUC, res.XGBAUC = mo["auc"], mx["auc"]
	res.OursLogloss, res.XGBLogloss = mo["logloss"], mx["logloss"]
	res.AUCDiff = res.OursAUC - res.XGBAUC
	res.Pass = math.Abs(res.AUCDiff) <= target && res.RuntimeMaxDiff <= 1e-6 && res.XGBoostMaxDiff <= 1e-5
	return res, nil
}

// readFlights reads every flight with a delay.
func readFlights(ctx context.Context, path string) ([]flight, error) {
	r, err := dataset.OpenFile(ctx, path, dataset.ReadOptions{Columns: []string{"date", "delay", "distance", "origin", "destination"}})
	if err != nil {
		return nil, fmt.Errorf("%w (the flights file is vega-datasets 3.2.1 flights-3m.parquet; give its path with -data)", err)
	}
	defer r.Close()
	idx := map[string]int{}
	for i, c := range r.Columns() {
		idx[c.Name] = i
	}
	isNull := func(c *dataset.ColumnValues, i int) bool { return c.Null != nil && c.Null[i] }
	var out []flight
	for {
		b, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return out, nil
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
		for i := range b.Rows {
			if isNull(delay, i) || isNull(date, i) {
				continue
			}
			t := time.UnixMicro(date.Int[i]).UTC()
			f := flight{hour: float32(t.Hour()), weekday: float32((int(t.Weekday()) + 6) % 7), distance: float32(math.NaN()), month: t.Month()}
			if !isNull(dist, i) {
				f.distance = float32(dist.Int[i])
			}
			if !isNull(org, i) {
				f.origin = strings.Clone(org.Text[i])
			}
			if !isNull(dst, i) {
				f.dest = strings.Clone(dst.Text[i])
			}
			if delay.Int[i] > 15 {
				f.late = 1
			}
			out = append(out, f)
		}
	}
}

// codes codes airports by frequency in fs (gbdt.FrequencyCodes, as
// examples/flights/features.py does) and returns how many there are.
func codes(fs []flight, get func(flight) string) (map[string]float32, int) {
	n := map[string]int{}
	for _, f := range fs {
		if s := get(f); s != "" {
			n[s]++
		}
	}
	return gbdt.FrequencyCodes(n), len(n)
}

func code(m map[string]float32, s string) float32 {
	if c, ok := m[s]; ok {
		return c
	}
	return float32(math.NaN())
}

func toData(features []gbdt.Feature, s split) (*gbdt.Data, error) {
	labels := make([]float32, s.rows)
	for i, y := range s.y {
		labels[i] = float32(y)
	}
	return gbdt.FromRows(features, s.x, labels, nil)
}

func monthRange(from, to time.Month) string {
	if from == to {
		return fmt.Sprintf("2001-%02d", from)
	}
	return fmt.Sprintf("2001-%02d…2001-%02d", from, to)
}

func writeRaw(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := binary.Write(f, binary.LittleEndian, v); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func readF32(path string, n int) ([]float32, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if len(b) != 4*n {
		return nil, fmt.Errorf("%s holds %d bytes, want %d", path, len(b), 4*n)
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out, nil
}

func maxDiff(a, b []float32) float64 {
	var d float64
	for i := range a {
		d = max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return b[i+1:]
	}
	return b
}

func printResult(w io.Writer, r *Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "flights: delay > 15 min; trained on %s (%d flights), scored on %s (%d flights)\n", r.TrainMonths, r.TrainRows, r.EvalMonth, r.EvalRows)
	fmt.Fprintf(tw, "%d trees, depth %d, learning rate %g, hist, partition categorical splits; %d threads of %d CPUs; XGBoost %s\n\n", r.Trees, r.Depth, r.LearnRate, r.Threads, r.NumCPU, r.XGBoost)
	fmt.Fprintln(tw, "\tROC AUC\tlog loss\ttrain time")
	fmt.Fprintf(tw, "mloop gbdt\t%.5f\t%.5f\t%.1fs\n", r.OursAUC, r.OursLogloss, r.OursSeconds)
	fmt.Fprintf(tw, "XGBoost\t%.5f\t%.5f\t%.1fs\n", r.XGBAUC, r.XGBLogloss, r.XGBSeconds)
	fmt.Fprintf(tw, "difference\t%+.5f\t%+.5f\t×%.2f\n", r.AUCDiff, r.OursLogloss-r.XGBLogloss, r.OursSeconds/r.XGBSeconds)
	_ = tw.Flush()
	fmt.Fprintf(w, "\nXGBoost's AUC by sklearn: %.5f\n", r.XGBAUCSklearn)
	fmt.Fprintf(w, "the written model predicts the trainer's outputs: mloop runtime max diff %.2g, XGBoost max diff %.2g\n", r.RuntimeMaxDiff, r.XGBoostMaxDiff)
	fmt.Fprintf(w, "target |AUC difference| ≤ %g: %s\n", target, map[bool]string{true: "pass", false: "FAIL"}[math.Abs(r.AUCDiff) <= target])
}
