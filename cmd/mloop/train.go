package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/train/gbdt"
)

const trainUsage = `Usage: mloop train <trainer> [flags]

Trains a model on local data with a built-in trainer, without Python.

Trainers:
  gbdt   gradient-boosted trees (XGBoost's hist method) for binary,
         multi-class and regression tasks; writes an XGBoost JSON model

Run 'mloop train <trainer> -h' for a trainer's flags.
`

const trainGBDTUsage = `Usage: mloop train gbdt --data PATH --label COLUMN [flags]

Trains gradient-boosted trees on PATH (a CSV, TSV, NDJSON or Parquet file,
a folder of them, or a dataset version data://NAME@VERSION; several
comma-separated) and writes the model as an
XGBoost JSON file (--out) that XGBoost and mloop's serving runtime load,
and its metrics as a JSON object of numbers (--metrics): the validation
data's under plain names (auc, logloss, accuracy for binary:logistic;
mlogloss, accuracy for multi:softprob; rmse, mae, r2 for
reg:squarederror) and the training data's as train_auc, train_logloss, ….

Features are every column but the label unless --features lists them.
Text columns are categorical, and --categorical makes others so. Category
names and text class labels are kept in the model file's attributes
(mloop_categories, mloop_classes).

A dataset reference data://NAME@VERSION (VERSION a number, latest or
sha256:PREFIX) is looked up on the server (--server) and its files read
from the local blob cache (--cache), downloaded once.

Progress goes to stderr every --progress-every trees. Exit status: 0 the
model was written; 1 training failed (bad data, unreadable files); 2 bad
flags, nothing done.
`

// runTrain runs `mloop train`.
func runTrain(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, trainUsage)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "gbdt":
		return trainGBDT(ctx, rest, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, trainUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop train: unknown trainer %q\n\n%s", cmd, trainUsage)
		return exitUsage
	}
}

// trainSummary is what --json prints.
type trainSummary struct {
	Model         string             `json:"model"`
	Metrics       string             `json:"metrics,omitempty"`
	Objective     string             `json:"objective"`
	NumClass      int                `json:"num_class,omitempty"`
	Trees         int                `json:"trees"`
	Rounds        int                `json:"rounds"`
	BestIteration int                `json:"best_iteration"`
	Features      []gbdt.Feature     `json:"features"`
	Classes       []string           `json:"classes,omitempty"`
	TrainRows     int                `json:"train_rows"`
	ValidRows     int                `json:"valid_rows,omitempty"`
	Seconds       float64            `json:"seconds"`
	TrainMetrics  map[string]float64 `json:"train_metrics"`
	ValidMetrics  map[string]float64 `json:"valid_metrics,omitempty"`
}

func trainGBDT(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const name = "mloop train gbdt"
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, trainGBDTUsage)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	def := gbdt.DefaultConfig()
	var (
		data        = fs.String("data", "", "training data: a file or folder (CSV, TSV, NDJSON, Parquet); several comma-separated")
		valid       = fs.String("valid", "", "validation data, read like --data")
		label       = fs.String("label", "", "the column to predict")
		features    = fs.String("features", "", "comma-separated feature columns (default: every column but the label and weight)")
		categorical = fs.String("categorical", "", "comma-separated feature columns read as categories")
		weight      = fs.String("weight", "", "column of row weights")
		objective   = fs.String("objective", string(def.Objective), "binary:logistic, multi:softprob or reg:squarederror")
		numClass    = fs.Int("num-class", 0, "classes of multi:softprob (default: from the labels)")
		out         = fs.String("out", "model.json", "model file to write (XGBoost JSON)")
		metricsFile = fs.String("metrics", "", "metrics JSON file to write")
		every       = fs.Int("progress-every", 10, "report progress every N trees")
		quiet       = fs.Bool("quiet", false, "report no progress")
		asJSON      = fs.Bool("json", false, "print a summary as JSON on stdout")
		server      = fs.String("server", envOr("MLOOP_SERVER", client.DefaultServer), "URL of the mloop server holding data:// references [MLOOP_SERVER]")
		cacheDir    = fs.String("cache", envOr("MLOOP_CACHE", ""), "folder caching downloaded dataset files (default $XDG_CACHE_HOME/mloop/blobs or ~/.cache/mloop/blobs) [MLOOP_CACHE]")
	)
	cfg := def
	fs.IntVar(&cfg.NumTrees, "num-trees", def.NumTrees, "boosting rounds")
	fs.IntVar(&cfg.MaxDepth, "max-depth", def.MaxDepth, "maximum tree depth")
	fs.Float64Var(&cfg.LearningRate, "learning-rate", def.LearningRate, "learning rate (XGBoost's eta)")
	fs.Float64Var(&cfg.MinChildWeight, "min-child-weight", def.MinChildWeight, "least hessian sum of a child")
	fs.Float64Var(&cfg.Lambda, "lambda", def.Lambda, "L2 regularization of leaf weights")
	fs.Float64Var(&cfg.Gamma, "gamma", def.Gamma, "least loss reduction of a split")
	fs.IntVar(&cfg.MaxBins, "max-bins", def.MaxBins, "most bins per numerical feature")
	fs.IntVar(&cfg.MaxCatThreshold, "max-cat-threshold", def.MaxCatThreshold, "most categories a split enumerates from either end")
	fs.Float64Var(&cfg.Subsample, "subsample", def.Subsample, "share of rows each tree sees")
	fs.Float64Var(&cfg.ColsampleByTree, "colsample-bytree", def.ColsampleByTree, "share of features each tree may split on")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of row and feature sampling")
	fs.IntVar(&cfg.EarlyStoppingRounds, "early-stopping", 0, "stop when the validation metric has not improved for N rounds (needs --valid)")
	fs.IntVar(&cfg.Threads, "threads", 0, "goroutines that build trees (default: GOMAXPROCS)")
	if err := fs.Parse(args); err != nil {
		return usageExit(err)
	}
	usageError := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "%s: %s\n", name, fmt.Sprintf(format, args...))
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "%s: %s\n", name, errorText(err))
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "  interrupted: no model was written")
		}
		return exitFailure
	}
	switch {
	case fs.NArg() > 0:
		return usageError("unexpected argument %q; give the data with --data", fs.Arg(0))
	case *data == "":
		return usageError("--data is required: the training data file or folder")
	case *label == "":
		return usageError("--label is required: the column to predict")
	case *out == "":
		return usageError("--out must name the model file to write")
	case *every < 1:
		return usageError("--progress-every must be at least 1")
	case cfg.EarlyStoppingRounds > 0 && *valid == "":
		return usageError("--early-stopping needs --valid data to watch")
	}
	// Zero means "default" in gbdt.Config; on the command line it is a
	// mistake.
	for _, z := range []struct {
		flag string
		zero bool
	}{{"num-trees", cfg.NumTrees == 0}, {"max-depth", cfg.MaxDepth == 0}, {"learning-rate", cfg.LearningRate == 0},
		{"max-bins", cfg.MaxBins == 0}, {"max-cat-threshold", cfg.MaxCatThreshold == 0},
		{"subsample", cfg.Subsample == 0}, {"colsample-bytree", cfg.ColsampleByTree == 0}} {
		if z.zero {
			return usageError("--%s must be positive", z.flag)
		}
	}
	cfg.Objective = gbdt.Objective(*objective)
	cfg.NumClass = *numClass
	check := cfg
	if check.Objective == gbdt.MultiSoftprob && check.NumClass == 0 {
		check.NumClass = 2 // known from the labels later
	}
	if _, err := check.WithDefaults(); err != nil {
		return usageError("%s", mloop.ErrorMessage(err))
	}
	src := &trainSource{server: *server, cache: *cacheDir}
	if !*quiet {
		src.log = stderr
	}
	trainFiles, err := src.files(ctx, *data)
	if err != nil {
		return usageError("--data: %s", errorText(err))
	}
	var validFiles []string
	if *valid != "" {
		if validFiles, err = src.files(ctx, *valid); err != nil {
			return usageError("--valid: %s", errorText(err))
		}
	}

	start := time.Now()
	opts := gbdt.LoadOptions{Label: *label, Features: trainSplitList(*features), Categorical: trainSplitList(*categorical), Weight: *weight, Objective: cfg.Objective}
	if !*quiet {
		fmt.Fprintf(stderr, "reading %s\n", strings.Join(trainFiles, ", "))
	}
	train, err := gbdt.LoadFiles(ctx, trainFiles, opts)
	if err != nil {
		return fail(err)
	}
	var validData *gbdt.Data
	if validFiles != nil {
		opts.Like = train
		if validData, err = gbdt.LoadFiles(ctx, validFiles, opts); err != nil {
			return fail(err)
		}
	}
	if cfg.Objective == gbdt.MultiSoftprob && cfg.NumClass == 0 {
		cfg.NumClass = train.NumClasses()
	}
	if !*quiet {
		fmt.Fprintf(stderr, "training %d trees of depth %d (%s) on %d rows of %d features\n", cfg.NumTrees, cfg.MaxDepth, cfg.Objective, train.Rows(), len(train.Features))
		cfg.ProgressEvery = *every
		cfg.Progress = func(p gbdt.Progress) {
			line := fmt.Sprintf("tree %d/%d  %s  train %s %.5f", p.Round, p.Rounds, formatElapsed(p.Elapsed), p.Metric, p.Train)
			if !math.IsNaN(p.Valid) {
				line += fmt.Sprintf("  valid %s %.5f", p.Metric, p.Valid)
			}
			fmt.Fprintln(stderr, line)
		}
	}
	model, err := gbdt.Train(ctx, train, validData, cfg)
	if err != nil {
		return fail(err)
	}
	seconds := time.Since(start).Seconds()

	sum := trainSummary{
		Model: *out, Metrics: *metricsFile, Objective: string(model.Objective), NumClass: model.NumClass,
		Trees: model.NumTrees(), Rounds: model.Rounds, BestIteration: model.BestIteration,
		Features: model.Features, Classes: model.Classes, TrainRows: train.Rows(), Seconds: seconds,
	}
	if sum.TrainMetrics, err = model.EvaluateData(train); err != nil {
		return fail(err)
	}
	metrics := map[string]float64{"train_seconds": seconds, "trees": float64(model.NumTrees()), "best_iteration": float64(model.BestIteration)}
	for k, v := range sum.TrainMetrics {
		metrics["train_"+k] = v
	}
	if validData != nil {
		sum.ValidRows = validData.Rows()
		if sum.ValidMetrics, err = model.EvaluateData(validData); err != nil {
			return fail(err)
		}
		for k, v := range sum.ValidMetrics {
			metrics[k] = v
		}
	}

	var buf bytes.Buffer
	if err := model.WriteXGBoostJSON(&buf); err != nil {
		return fail(err)
	}
	if err := trainWriteFileAtomic(*out, buf.Bytes()); err != nil {
		return fail(err)
	}
	if *metricsFile != "" {
		j, _ := json.MarshalIndent(metrics, "", "  ")
		if err := trainWriteFileAtomic(*metricsFile, append(j, '\n')); err != nil {
			return fail(err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			return fail(err)
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "wrote %s: %d trees, %s, trained in %s\n", *out, model.NumTrees(), model.Objective, formatElapsed(time.Duration(seconds*float64(time.Second))))
	fmt.Fprintf(stdout, "train: %s\n", trainFormatMetrics(sum.TrainMetrics))
	if sum.ValidMetrics != nil {
		fmt.Fprintf(stdout, "valid: %s\n", trainFormatMetrics(sum.ValidMetrics))
	}
	return exitOK
}

// trainSource finds the data files of --data and --valid: local files and
// folders, and dataset versions fetched from a server through the blob
// cache.
type trainSource struct {
	server, cache string
	// log, when not nil, receives a line per dataset version fetched.
	log io.Writer
}

// files returns the data files of a comma-separated list of files, folders
// and dataset references (data://NAME@VERSION, or NAME@VERSION when no such
// file exists).
func (s *trainSource) files(ctx context.Context, arg string) ([]string, error) {
	var files []string
	for _, p := range trainSplitList(arg) {
		if ref, ok := strings.CutPrefix(p, "data://"); ok || (strings.Contains(p, "@") && !trainFileExists(p)) {
			fs, err := s.version(ctx, ref)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			files = append(files, fs...)
			continue
		}
		if strings.Contains(p, "://") {
			return nil, fmt.Errorf("%s: give a file, a folder or a dataset reference data://NAME@VERSION", p)
		}
		fs, err := dataset.DataFiles(p, false)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	if len(files) == 0 {
		return nil, errors.New("no data files given")
	}
	return files, nil
}

// version returns the local files of the dataset version ref names,
// downloading those the cache lacks.
func (s *trainSource) version(ctx context.Context, ref string) ([]string, error) {
	r, err := dataset.ParseRef(ref)
	if err != nil {
		return nil, err
	}
	c := client.New(s.server, nil)
	v, err := c.GetVersion(ctx, r.Name, r.Selector(), false)
	if mloop.IsNotFound(err) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("%w (set --server or MLOOP_SERVER, or pull the version with 'mloop data pull REF DIR' and pass the folder)", err)
	}
	dir := s.cache
	if dir == "" {
		if dir, err = client.DefaultCacheDir(); err != nil {
			return nil, err
		}
	}
	paths, err := client.NewBlobCache(dir, c).Materialize(ctx, v, nil)
	if err != nil {
		return nil, err
	}
	if s.log != nil {
		fmt.Fprintf(s.log, "%s: %d file(s), %s rows, cached in %s\n", v.Ref(), len(paths), strconv.FormatInt(v.Rows, 10), dir)
	}
	return paths, nil
}

func trainFileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// trainSplitList splits a comma-separated flag value, dropping empty items.
func trainSplitList(s string) []string {
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// trainFormatMetrics formats metrics as "name=value" pairs in name order.
func trainFormatMetrics(m map[string]float64) string {
	var parts []string
	for _, k := range []string{"auc", "logloss", "mlogloss", "accuracy", "rmse", "mae", "r2", "rows"} {
		if v, ok := m[k]; ok {
			if k == "rows" {
				parts = append(parts, fmt.Sprintf("%s=%d", k, int64(v)))
			} else {
				parts = append(parts, fmt.Sprintf("%s=%.5f", k, v))
			}
		}
	}
	return strings.Join(parts, " ")
}

// trainWriteFileAtomic writes data to path through a temporary file in the same
// folder renamed over it, so readers see the old file or the whole new one.
func trainWriteFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
