package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/serving/modelcheck"
	"github.com/mloop/mloop/internal/train/gbdt"
)

// TrainGBDTStep is the built-in `uses: train/gbdt` step: it trains
// gradient-boosted trees in-process with mloop's built-in trainer
// (internal/train/gbdt, as `mloop train gbdt` does) and writes an XGBoost
// JSON model that the native serving runtime loads.
//
// Configuration (`with:`):
//
//	label: delayed          # the column to predict (required)
//	features: [a, b]        # feature columns (default: every column but the label and weight)
//	categorical: [origin]   # columns read as categories (text columns are anyway)
//	weight: w               # a column of row weights
//	objective: binary:logistic  # or multi:softprob, reg:squarederror
//	num_class: 3            # classes of multi:softprob (default: from the labels)
//	num_trees: 100          # boosting rounds
//	max_depth: 6
//	learning_rate: 0.3
//	min_child_weight: 1
//	lambda: 1
//	gamma: 0
//	max_bins: 256
//	max_cat_threshold: 64
//	subsample: 1
//	colsample_bytree: 1
//	seed: 0
//	early_stopping: 0       # rounds without improvement on valid before stopping (needs valid)
//	threads: 0              # goroutines (default GOMAXPROCS)
//
// Inputs: train, the training data (required), and valid, validation data
// (optional); each a dataset reference, a step output or a project file or
// folder of CSV, TSV, NDJSON or Parquet files. Outputs: model, of type model
// and flavor xgboost (required): a folder receiving model.json, or the file
// itself when its path ends in .json; metrics, of type metrics (optional):
// the metrics below as a JSON object.
//
// The step logs its progress and records as metrics the model's quality on
// the validation data under plain names (auc, logloss, accuracy for
// binary:logistic; mlogloss, accuracy for multi:softprob; rmse, mae, r2 for
// reg:squarederror; and rows) and on the training data with a train_
// prefix, plus trees and best_iteration. The hyperparameters it trained
// with are recorded as tags gbdt.NAME. Training is deterministic for given
// data and configuration, so the usual cache key (the inputs' content and
// `with:`) is all its result depends on.
type TrainGBDTStep struct{}

var _ Builtin = TrainGBDTStep{}

// trainConfig is the `with:` of a train/gbdt step. Integers are decoded
// as numbers and checked to be whole.
type trainConfig struct {
	Label           string   `with:"label"`
	Features        []string `with:"features"`
	Categorical     []string `with:"categorical"`
	Weight          string   `with:"weight"`
	Objective       string   `with:"objective"`
	NumClass        *float64 `with:"num_class"`
	NumTrees        *float64 `with:"num_trees"`
	MaxDepth        *float64 `with:"max_depth"`
	LearningRate    *float64 `with:"learning_rate"`
	MinChildWeight  *float64 `with:"min_child_weight"`
	Lambda          *float64 `with:"lambda"`
	Gamma           *float64 `with:"gamma"`
	MaxBins         *float64 `with:"max_bins"`
	MaxCatThreshold *float64 `with:"max_cat_threshold"`
	Subsample       *float64 `with:"subsample"`
	ColsampleByTree *float64 `with:"colsample_bytree"`
	Seed            *float64 `with:"seed"`
	EarlyStopping   *float64 `with:"early_stopping"`
	Threads         *float64 `with:"threads"`
}

// trainSetup is a checked train/gbdt configuration.
type trainSetup struct {
	load gbdt.LoadOptions
	cfg  gbdt.Config
	// modelFile is true when the model output is the file itself rather
	// than a folder receiving model.json.
	modelFile bool
}

// trainSetupOf decodes and checks the train/gbdt configuration of st.
func trainSetupOf(st *Step) (*trainSetup, error) {
	var c trainConfig
	if err := decodeWith(st, &c); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.Label) == "" {
		return nil, bad("with.label is required: name the column to predict")
	}
	for _, l := range []struct {
		key  string
		list []string
	}{{"features", c.Features}, {"categorical", c.Categorical}} {
		for i, f := range l.list {
			if strings.TrimSpace(f) == "" {
				return nil, bad("with.%s[%d] is empty", l.key, i)
			}
			if f == c.Label {
				return nil, bad("with.%s lists the label %s", l.key, f)
			}
		}
	}
	cfg := gbdt.DefaultConfig()
	if c.Objective != "" {
		cfg.Objective = gbdt.Objective(c.Objective)
	}
	switch cfg.Objective {
	case gbdt.BinaryLogistic, gbdt.MultiSoftprob, gbdt.RegSquaredError:
	default:
		return nil, bad("with.objective must be %s, %s or %s, not %q", gbdt.BinaryLogistic, gbdt.MultiSoftprob, gbdt.RegSquaredError, c.Objective)
	}
	// whole checks an integer setting: a whole number from lo to hi.
	whole := func(key string, v *float64, lo, hi float64, dst *int) error {
		if v == nil {
			return nil
		}
		if *v != math.Trunc(*v) || *v < lo || *v > hi {
			return bad("with.%s must be a whole number from %s to %s, not %v", key,
				strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64), *v)
		}
		*dst = int(*v)
		return nil
	}
	// number checks a real setting: a finite number above lo (or from lo
	// when lo is allowed).
	number := func(key string, v *float64, lo float64, loAllowed bool, dst *float64) error {
		if v == nil {
			return nil
		}
		if math.IsNaN(*v) || math.IsInf(*v, 0) || *v < lo || (*v == lo && !loAllowed) {
			rel := "above"
			if loAllowed {
				rel = "at least"
			}
			return bad("with.%s must be a number %s %v, not %v", key, rel, lo, *v)
		}
		*dst = *v
		return nil
	}
	const maxInt = 1 << 31
	for _, e := range []error{
		whole("num_class", c.NumClass, 2, gbdt.MaxClasses, &cfg.NumClass),
		whole("num_trees", c.NumTrees, 1, 1<<20, &cfg.NumTrees),
		whole("max_depth", c.MaxDepth, 1, 64, &cfg.MaxDepth),
		whole("max_bins", c.MaxBins, 2, gbdt.MaxBinsLimit, &cfg.MaxBins),
		whole("max_cat_threshold", c.MaxCatThreshold, 1, maxInt, &cfg.MaxCatThreshold),
		whole("early_stopping", c.EarlyStopping, 0, maxInt, &cfg.EarlyStoppingRounds),
		whole("threads", c.Threads, 0, 1<<12, &cfg.Threads),
		number("learning_rate", c.LearningRate, 0, false, &cfg.LearningRate),
		number("min_child_weight", c.MinChildWeight, 0, true, &cfg.MinChildWeight),
		number("lambda", c.Lambda, 0, true, &cfg.Lambda),
		number("gamma", c.Gamma, 0, true, &cfg.Gamma),
		number("subsample", c.Subsample, 0, false, &cfg.Subsample),
		number("colsample_bytree", c.ColsampleByTree, 0, false, &cfg.ColsampleByTree),
	} {
		if e != nil {
			return nil, e
		}
	}
	if c.Seed != nil {
		var seed int
		if err := whole("seed", c.Seed, 0, 1<<53, &seed); err != nil {
			return nil, err
		}
		cfg.Seed = uint64(seed)
	}
	if c.NumClass != nil && cfg.Objective != gbdt.MultiSoftprob {
		return nil, bad("with.num_class is only for objective %s", gbdt.MultiSoftprob)
	}
	if cfg.EarlyStoppingRounds > 0 && st.Input("valid") == nil {
		return nil, bad("with.early_stopping needs a valid input to watch")
	}
	check := cfg
	if check.Objective == gbdt.MultiSoftprob && check.NumClass == 0 {
		check.NumClass = 2 // known from the labels when training
	}
	if _, err := check.WithDefaults(); err != nil {
		return nil, bad("with: %s", mloop.ErrorMessage(err))
	}
	s := &trainSetup{cfg: cfg, load: gbdt.LoadOptions{Label: c.Label, Features: c.Features, Categorical: c.Categorical,
		Weight: c.Weight, Objective: cfg.Objective}}
	if o := st.Output("model"); o != nil {
		s.modelFile = strings.EqualFold(filepath.Ext(o.Path), ".json")
	}
	return s, nil
}

// Check validates the train/gbdt configuration and its inputs and outputs.
func (TrainGBDTStep) Check(st *Step) error {
	if _, err := trainSetupOf(st); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	for _, in := range st.Inputs {
		if in.Name != "train" && in.Name != "valid" {
			return bad("uses: %s takes no input %q (its inputs: train, valid)", st.Uses, in.Name)
		}
	}
	if st.Input("train") == nil {
		return bad("uses: %s needs the input train: a dataset reference such as data://NAME@latest, a step output or a project file or folder", st.Uses)
	}
	for _, o := range st.Outputs {
		switch o.Name {
		case "model":
			if o.Type != "model" || o.Flavor != modelcheck.FlavorXGBoost {
				return bad("output model of uses: %s is an XGBoost model: declare it with type: model and flavor: xgboost", st.Uses)
			}
		case "metrics":
			if o.Type != "metrics" {
				return bad("output metrics of uses: %s is a metrics file: declare it with type: metrics", st.Uses)
			}
		default:
			return bad("uses: %s writes no output %q (its outputs: model, metrics)", st.Uses, o.Name)
		}
	}
	if st.Output("model") == nil {
		return bad("uses: %s needs the output model, such as model: {path: model, type: model, flavor: xgboost}", st.Uses)
	}
	return nil
}

// Run trains the model and writes its outputs.
func (TrainGBDTStep) Run(ctx context.Context, bc *BuiltinContext) error {
	s, err := trainSetupOf(bc.Step)
	if err != nil {
		return err
	}
	name := bc.Step.Name
	log := bcLog(bc)
	in, ok := bc.Inputs["train"]
	if !ok {
		return mloop.Errorf(mloop.EINVALID, "step %s: the train input was not resolved", name)
	}
	start := time.Now()
	trainFiles, err := trainInputFiles(in)
	if err != nil {
		return fmt.Errorf("step %s: input train: %w", name, err)
	}
	fmt.Fprintf(log, "reading %s: %d file(s)\n", trainInputName(in), len(trainFiles))
	train, err := gbdt.LoadFiles(ctx, trainFiles, s.load)
	if err != nil {
		return fmt.Errorf("step %s: read train: %w", name, err)
	}
	var valid *gbdt.Data
	if vin, ok := bc.Inputs["valid"]; ok {
		validFiles, err := trainInputFiles(vin)
		if err != nil {
			return fmt.Errorf("step %s: input valid: %w", name, err)
		}
		fmt.Fprintf(log, "reading %s: %d file(s)\n", trainInputName(vin), len(validFiles))
		opts := s.load
		opts.Like = train
		if valid, err = gbdt.LoadFiles(ctx, validFiles, opts); err != nil {
			return fmt.Errorf("step %s: read valid: %w", name, err)
		}
	}
	cfg := s.cfg
	if cfg.Objective == gbdt.MultiSoftprob && cfg.NumClass == 0 {
		cfg.NumClass = train.NumClasses()
	}
	if cfg, err = cfg.WithDefaults(); err != nil {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", name, mloop.ErrorMessage(err))
	}
	fmt.Fprintf(log, "training %d trees of depth %d (%s) on %d rows of %d features\n",
		cfg.NumTrees, cfg.MaxDepth, cfg.Objective, train.Rows(), len(train.Features))
	cfg.ProgressEvery = max(1, cfg.NumTrees/10)
	cfg.Progress = func(p gbdt.Progress) {
		line := fmt.Sprintf("tree %d/%d  %.1fs  train %s %.5f", p.Round, p.Rounds, p.Elapsed.Seconds(), p.Metric, p.Train)
		if !math.IsNaN(p.Valid) {
			line += fmt.Sprintf("  valid %s %.5f", p.Metric, p.Valid)
		}
		fmt.Fprintln(log, line)
	}
	model, err := gbdt.Train(ctx, train, valid, cfg)
	if err != nil {
		return fmt.Errorf("step %s: train: %w", name, err)
	}

	metrics := map[string]float64{"trees": float64(model.NumTrees()), "best_iteration": float64(model.BestIteration)}
	tm, err := model.EvaluateData(train)
	if err != nil {
		return fmt.Errorf("step %s: evaluate on train: %w", name, err)
	}
	for k, v := range tm {
		metrics["train_"+k] = v
	}
	if valid != nil {
		vm, err := model.EvaluateData(valid)
		if err != nil {
			return fmt.Errorf("step %s: evaluate on valid: %w", name, err)
		}
		for k, v := range vm {
			metrics[k] = v
		}
	}

	var buf bytes.Buffer
	if err := model.WriteXGBoostJSON(&buf); err != nil {
		return fmt.Errorf("step %s: encode model: %w", name, err)
	}
	out := bc.Outputs["model"]
	if out == "" {
		return mloop.Errorf(mloop.EINVALID, "step %s: the model output has no path", name)
	}
	if !s.modelFile {
		if err := os.MkdirAll(out, 0o755); err != nil {
			return fmt.Errorf("step %s: create the model folder: %w", name, err)
		}
		out = filepath.Join(out, "model.json")
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("step %s: write model: %w", name, err)
	}
	if mp, ok := bc.Outputs["metrics"]; ok {
		data, err := json.MarshalIndent(metrics, "", "  ")
		if err != nil {
			return fmt.Errorf("step %s: encode metrics: %w", name, err)
		}
		if err := os.WriteFile(mp, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("step %s: write metrics: %w", name, err)
		}
	}
	for k, v := range metrics {
		bcMetric(bc, k, v)
	}
	for k, v := range trainParamTags(cfg, model) {
		bcTag(bc, k, v)
	}
	fmt.Fprintf(log, "wrote %s: %d trees in %.1fs; %s\n", out, model.NumTrees(), time.Since(start).Seconds(), trainMetricsText(metrics))
	return nil
}

// trainInputFiles returns the data files of a resolved input: a dataset
// version's files in its local folder (or the file itself for a one-file
// version materialized as a file), else the data files at its path.
func trainInputFiles(in ResolvedInput) ([]string, error) {
	if in.Path == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "input %s has no local path", in.Name)
	}
	if v := in.Dataset; v != nil && len(v.Files) > 0 {
		if fi, err := os.Stat(in.Path); err == nil && !fi.IsDir() && len(v.Files) == 1 {
			return []string{in.Path}, nil
		}
		files := make([]string, 0, len(v.Files))
		for _, f := range v.Files {
			files = append(files, filepath.Join(in.Path, filepath.FromSlash(f.Path)))
		}
		sort.Strings(files)
		return files, nil
	}
	return dataset.DataFiles(in.Path, false)
}

// trainInputName names an input in the log.
func trainInputName(in ResolvedInput) string {
	switch {
	case in.Dataset != nil:
		return in.Dataset.Ref()
	case in.Step != "":
		return "steps." + in.Step + ".outputs." + in.Output
	}
	return in.Name
}

// trainParamTags returns the hyperparameters a model was trained with as
// tags gbdt.NAME.
func trainParamTags(cfg gbdt.Config, m *gbdt.Model) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	tags := map[string]string{
		"gbdt.objective":         string(cfg.Objective),
		"gbdt.num_trees":         strconv.Itoa(cfg.NumTrees),
		"gbdt.max_depth":         strconv.Itoa(cfg.MaxDepth),
		"gbdt.learning_rate":     f(cfg.LearningRate),
		"gbdt.min_child_weight":  f(cfg.MinChildWeight),
		"gbdt.lambda":            f(cfg.Lambda),
		"gbdt.gamma":             f(cfg.Gamma),
		"gbdt.max_bins":          strconv.Itoa(cfg.MaxBins),
		"gbdt.max_cat_threshold": strconv.Itoa(cfg.MaxCatThreshold),
		"gbdt.subsample":         f(cfg.Subsample),
		"gbdt.colsample_bytree":  f(cfg.ColsampleByTree),
		"gbdt.seed":              strconv.FormatUint(cfg.Seed, 10),
		"gbdt.early_stopping":    strconv.Itoa(cfg.EarlyStoppingRounds),
	}
	if cfg.Objective == gbdt.MultiSoftprob {
		tags["gbdt.num_class"] = strconv.Itoa(cfg.NumClass)
	}
	names := make([]string, len(m.Features))
	for i, ft := range m.Features {
		names[i] = ft.Name
	}
	if s := strings.Join(names, ","); len(s) <= 5000 {
		tags["gbdt.features"] = s
	}
	return tags
}

// trainMetricsText formats metrics as "name=value" pairs in name order.
func trainMetricsText(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatFloat(m[k], 'g', 6, 64)
	}
	return strings.Join(parts, " ")
}
