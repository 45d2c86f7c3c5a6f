package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/xgboost"
	"github.com/mloop/mloop/internal/train/gbdt"
)

// flightsCSV generates n rows of a binary task: delayed depends on
// distance, hour and origin (text, so categorical), with noise and some
// missing distances.
func flightsCSV(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, 1))
	origins := []string{"SFO", "LAX", "JFK", "ORD"}
	var b strings.Builder
	b.WriteString("distance,hour,origin,delayed\n")
	for range n {
		dist := rng.Float64() * 3000
		hour := rng.IntN(24)
		o := rng.IntN(len(origins))
		score := dist/3000 + float64(hour)/24 + []float64{0, 0.6, -0.3, 0.4}[o] + rng.NormFloat64()*0.3
		label := 0
		if score > 1.1 {
			label = 1
		}
		d := fmt.Sprintf("%.1f", dist)
		if rng.IntN(20) == 0 {
			d = ""
		}
		fmt.Fprintf(&b, "%s,%d,%s,%d\n", d, hour, origins[o], label)
	}
	return b.String()
}

// trainStepSpec is a pipeline whose step train is a train/gbdt step with
// the given inputs, outputs and with (YAML flow maps).
func trainStepSpec(inputs, outputs, with string) string {
	return `name: p
steps:
  prep:
    run: echo
    outputs: {data: {path: data, type: folder}}
  train:
    uses: train/gbdt
    inputs: ` + inputs + `
    outputs: ` + outputs + `
    with: ` + with + "\n"
}

func TestTrainGBDTCheckErrors(t *testing.T) {
	b := pipeline.NewService(nil, nil, nil, nil, nil, "").Builtins["train/gbdt"]
	if b == nil {
		t.Fatal("no built-in train/gbdt")
	}
	const (
		in   = `{train: data://flights@latest}`
		both = `{train: data://flights@latest, valid: steps.prep.outputs.data}`
		out  = `{model: {path: model, type: model, flavor: xgboost}}`
	)
	tests := []struct {
		name, inputs, outputs, with, want string
	}{
		{"ok", both, `{model: {path: model, type: model, flavor: xgboost}, metrics: {path: m.json, type: metrics}}`,
			`{label: delayed, features: [distance, hour, origin], categorical: origin, objective: binary:logistic, num_trees: 50,
       max_depth: 4, learning_rate: 0.1, min_child_weight: 0, lambda: 2, gamma: 0.5, max_bins: 64, max_cat_threshold: 8,
       subsample: 0.8, colsample_bytree: 0.5, seed: 42, early_stopping: 5, threads: 2, weight: w}`, ""},
		{"ok multiclass", `{train: src/data.csv}`, `{model: {path: model.json, type: model, flavor: xgboost}}`,
			`{label: kind, objective: multi:softprob, num_class: 3}`, ""},
		{"no label", in, out, `{num_trees: 10}`, "step train: with.label is required"},
		{"unknown key", in, out, `{label: y, trees: 10}`, `step train: with has no key "trees" (known keys: label, features,`},
		{"not whole", in, out, `{label: y, num_trees: 1.5}`, "step train: with.num_trees must be a whole number from 1 to"},
		{"zero depth", in, out, `{label: y, max_depth: 0}`, "with.max_depth must be a whole number from 1 to 64, not 0"},
		{"string rate", in, out, `{label: y, learning_rate: fast}`, `with.learning_rate must be a number, not a string ("fast")`},
		{"zero rate", in, out, `{label: y, learning_rate: 0}`, "with.learning_rate must be a number above 0"},
		{"negative lambda", in, out, `{label: y, lambda: -1}`, "with.lambda must be a number at least 0"},
		{"subsample above 1", in, out, `{label: y, subsample: 1.5}`, "subsample"},
		{"bad objective", in, out, `{label: y, objective: "reg:tweedie"}`, `with.objective must be binary:logistic, multi:softprob or reg:squarederror, not "reg:tweedie"`},
		{"num_class for binary", in, out, `{label: y, num_class: 3}`, "with.num_class is only for objective multi:softprob"},
		{"early stopping without valid", in, out, `{label: y, early_stopping: 5}`, "with.early_stopping needs a valid input"},
		{"negative seed", in, out, `{label: y, seed: -1}`, "with.seed must be a whole number from 0"},
		{"label as feature", in, out, `{label: y, features: [a, y]}`, "with.features lists the label y"},
		{"features not a list", in, out, `{label: y, features: {a: 1}}`, "with.features must be a list, not a mapping"},
		{"no train input", `{valid: data://flights@latest}`, out, `{label: y}`, "step train: uses: train/gbdt needs the input train"},
		{"extra input", `{train: data://flights@latest, code: train.py}`, out, `{label: y}`, `uses: train/gbdt takes no input "code" (its inputs: train, valid)`},
		{"no model output", in, `{metrics: {path: m.json, type: metrics}}`, `{label: y}`, "uses: train/gbdt needs the output model"},
		{"model output a file", in, `{model: model.json}`, `{label: y}`, "declare it with type: model and flavor: xgboost"},
		{"model output other flavor", in, `{model: {path: m, type: model, flavor: process}}`, `{label: y}`, "declare it with type: model and flavor: xgboost"},
		{"metrics output a file", in, `{model: {path: m, type: model, flavor: xgboost}, metrics: m.json}`, `{label: y}`, "declare it with type: metrics"},
		{"unknown output", in, `{model: {path: m, type: model, flavor: xgboost}, report: r.json}`, `{label: y}`, `uses: train/gbdt writes no output "report"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := mustStep(t, trainStepSpec(tc.inputs, tc.outputs, tc.with), "train")
			err := b.Check(st)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: got %v, want EINVALID containing %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), "step train") {
				t.Errorf("error %q does not name the step", err)
			}
		})
	}
}

// TestTrainGBDTSchemaKeys checks that docs/pipeline.schema.json's
// train_gbdt_with lists exactly the keys the step accepts (named by its
// unknown-key error).
func TestTrainGBDTSchemaKeys(t *testing.T) {
	validate := checkBuiltinSchema(t, "train/gbdt", "train_gbdt_with")
	// The schema accepts the specs the step accepts and rejects bad with:.
	if err := validate(trainPipelineSpec); err != nil {
		t.Errorf("the schema rejects the test pipeline: %v", err)
	}
	for name, with := range map[string]string{
		"unknown key": "{label: y, trees: 3}",
		"no label":    "{num_trees: 3}",
		"whole":       "{label: y, num_trees: 1.5}",
		"objective":   "{label: y, objective: rank}",
	} {
		if err := validate(trainStepSpec("{train: data://d@latest}", "{model: {path: m, type: model, flavor: xgboost}}", with)); err == nil {
			t.Errorf("%s: the schema accepts with: %s", name, with)
		}
	}
}

const trainPipelineSpec = `name: trainer
steps:
  train:
    uses: train/gbdt
    inputs:
      train: data://flights@latest
      valid: data://flights_valid@latest
    outputs:
      model: {path: model, type: model, flavor: xgboost}
      metrics: {path: metrics.json, type: metrics}
    with: {label: delayed, num_trees: 20, max_depth: 4, learning_rate: 0.3, seed: 7, subsample: 0.9}
  register:
    uses: register
    inputs: {model: steps.train.outputs.model}
    outputs: {version: {path: version.json}}
    with: {model: delays, require_blessing: false}
`

// rowMajorOf returns d's features as a row-major matrix.
func rowMajorOf(d *gbdt.Data) []float32 {
	cols := len(d.Features)
	out := make([]float32, d.Rows()*cols)
	for j, c := range d.Columns {
		for i, v := range c {
			out[i*cols+j] = v
		}
	}
	return out
}

func TestTrainGBDTPipelineTrainsCachesAndRegisters(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	e.open(t)
	trainCSV, validCSV := flightsCSV(1, 800), flightsCSV(2, 300)
	e.pushDataset(t, "flights", trainCSV)
	e.pushDataset(t, "flights_valid", validCSV)

	r := e.waitDone(t, e.submit(t, trainPipelineSpec, nil).ID)
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("run: got %s (%s), want succeeded; steps %s", r.Status, r.Error, stepStates(r))
	}
	train := wantStep(t, r, "train", pipeline.StepSucceeded)
	wantStep(t, r, "register", pipeline.StepSucceeded)
	rec := train.Outputs["model"]
	if !rec.Dir || rec.Type != "model" || rec.Flavor != "xgboost" {
		t.Errorf("model output: got %+v, want a folder of type model, flavor xgboost", rec)
	}
	modelJSON := e.readArtifact(t, rec.URI+"/model.json")

	// The same training in the test gives the same model, byte for byte.
	dir := t.TempDir()
	for name, content := range map[string]string{"train.csv": trainCSV, "valid.csv": validCSV} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	opts := gbdt.LoadOptions{Label: "delayed", Objective: gbdt.BinaryLogistic}
	td, err := gbdt.LoadFiles(ctx, []string{filepath.Join(dir, "train.csv")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	opts.Like = td
	vd, err := gbdt.LoadFiles(ctx, []string{filepath.Join(dir, "valid.csv")}, opts)
	if err != nil {
		t.Fatal(err)
	}
	cfg := gbdt.DefaultConfig()
	cfg.NumTrees, cfg.MaxDepth, cfg.LearningRate, cfg.Seed, cfg.Subsample = 20, 4, 0.3, 7, 0.9
	want, err := gbdt.Train(ctx, td, vd, cfg)
	if err != nil {
		t.Fatal(err)
	}
	wantPreds, err := want.PredictData(vd)
	if err != nil {
		t.Fatal(err)
	}
	var wantJSON bytes.Buffer
	if err := want.WriteXGBoostJSON(&wantJSON); err != nil {
		t.Fatal(err)
	}
	if modelJSON != wantJSON.String() {
		t.Errorf("the step's model.json differs from the trainer's (%d and %d bytes)", len(modelJSON), wantJSON.Len())
	}

	// The native runtime serves it with the trainer's predictions.
	rt, err := xgboost.Load(strings.NewReader(modelJSON), "model.json")
	if err != nil {
		t.Fatalf("runtime load: %v", err)
	}
	if rt.NumTrees() != 20 {
		t.Errorf("runtime: %d trees, want 20", rt.NumTrees())
	}
	got := make([]float32, vd.Rows())
	if err := rt.Predict(ctx, serving.Batch{Rows: vd.Rows(), Cols: len(vd.Features), Values: rowMajorOf(vd)}, got); err != nil {
		t.Fatalf("runtime predict: %v", err)
	}
	if !slices.Equal(got, wantPreds) {
		t.Errorf("runtime predictions differ from the trainer's: first %v vs %v", got[:3], wantPreds[:3])
	}
	validMetrics, err := gbdt.Evaluate(gbdt.BinaryLogistic, 0, vd.Labels, nil, got)
	if err != nil {
		t.Fatal(err)
	}

	// Metrics and params are on the step's MLflow run.
	tr, err := e.tr.GetRun(ctx, train.MLflowRunID)
	if err != nil {
		t.Fatal(err)
	}
	metrics := map[string]float64{}
	for _, m := range tr.Metrics {
		metrics[m.Key] = m.Value
	}
	for _, k := range []string{"auc", "logloss", "accuracy"} {
		if math.Abs(metrics[k]-validMetrics[k]) > 1e-9 {
			t.Errorf("metric %s: recorded %v, the served model's %v", k, metrics[k], validMetrics[k])
		}
	}
	if metrics["auc"] < 0.8 || metrics["train_auc"] < metrics["auc"]-0.05 || metrics["rows"] != 300 || metrics["train_rows"] != 800 || metrics["trees"] != 20 {
		t.Errorf("metrics: %v", metrics)
	}
	if tag(tr, "gbdt.num_trees") != "20" || tag(tr, "gbdt.max_depth") != "4" || tag(tr, "gbdt.features") != "distance,hour,origin" {
		t.Errorf("param tags: %v", tr.Tags)
	}
	var fileMetrics map[string]float64
	if err := json.Unmarshal([]byte(e.readArtifact(t, train.Outputs["metrics"].URI)), &fileMetrics); err != nil {
		t.Fatalf("metrics.json: %v", err)
	}
	if fileMetrics["auc"] != metrics["auc"] || fileMetrics["train_logloss"] != metrics["train_logloss"] {
		t.Errorf("metrics.json %v, recorded %v", fileMetrics, metrics)
	}
	rc, err := e.svc.OpenLog(ctx, r.ID, "train")
	if err != nil {
		t.Fatal(err)
	}
	logText := new(bytes.Buffer)
	logText.ReadFrom(rc)
	rc.Close()
	for _, s := range []string{"reading flights@1", "training 20 trees of depth 4", "tree 20/20", "valid logloss"} {
		if !strings.Contains(logText.String(), s) {
			t.Errorf("train log lacks %q:\n%s", s, logText)
		}
	}

	// The register step registered it as an xgboost model version.
	mv, err := e.stack.Registry.GetModelVersion(ctx, "delays", "1")
	if err != nil {
		t.Fatalf("registered version: %v", err)
	}
	if tg := tagMap(mv.Tags); tg["mloop.flavor"] != "xgboost" || tg["mloop.step"] != "train" {
		t.Errorf("version tags: %v", tg)
	}

	// Unchanged inputs and with: the training is a cache hit.
	r2 := e.waitDone(t, e.submit(t, trainPipelineSpec, nil).ID)
	if r2.Status != pipeline.RunSucceeded {
		t.Fatalf("second run: got %s (%s); steps %s", r2.Status, r2.Error, stepStates(r2))
	}
	if s := wantStep(t, r2, "train", pipeline.StepCached); s.CachedFrom != r.ID {
		t.Errorf("train cached from %q, want %s", s.CachedFrom, r.ID)
	}

	// A changed hyperparameter trains again.
	r3 := e.waitDone(t, e.submit(t, strings.Replace(trainPipelineSpec, "num_trees: 20", "num_trees: 10", 1), nil).ID)
	if r3.Status != pipeline.RunSucceeded {
		t.Fatalf("third run: got %s (%s); steps %s", r3.Status, r3.Error, stepStates(r3))
	}
	wantStep(t, r3, "train", pipeline.StepSucceeded)
}

// trainDirect runs a train/gbdt step of spec in-process on inputs.
func trainDirect(ctx context.Context, tb testing.TB, spec string, inputs map[string]pipeline.ResolvedInput) (*pipeline.BuiltinContext, string, error) {
	tb.Helper()
	st := mustStep(tb, spec, "train")
	b := pipeline.NewService(nil, nil, nil, nil, nil, "").Builtins["train/gbdt"]
	if err := b.Check(st); err != nil {
		tb.Fatalf("Check: %v", err)
	}
	out := filepath.Join(tb.TempDir(), st.Output("model").Path)
	bc := &pipeline.BuiltinContext{Step: st, StepRun: &pipeline.StepRun{Name: "train"}, Inputs: inputs,
		Outputs: map[string]string{"model": out}, Log: &bytes.Buffer{}}
	return bc, out, b.Run(ctx, bc)
}

func TestTrainGBDTStepOutputRegressionAndCancel(t *testing.T) {
	ctx := context.Background()
	// A step output folder of two CSV files; regression to a file output.
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(3, 3))
	for i := range 2 {
		var b strings.Builder
		b.WriteString("x,z,y\n")
		for range 200 {
			x, z := rng.Float64()*10, rng.Float64()
			fmt.Fprintf(&b, "%.3f,%.3f,%.3f\n", x, z, 2*x+z*z+rng.NormFloat64()*0.1)
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("part-%d.csv", i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	spec := trainStepSpec(`{train: steps.prep.outputs.data}`, `{model: {path: model.json, type: model, flavor: xgboost}}`,
		`{label: y, objective: "reg:squarederror", num_trees: 30}`)
	in := map[string]pipeline.ResolvedInput{"train": {Name: "train", Kind: pipeline.InputStep, Path: dir, Step: "prep", Output: "data"}}
	bc, out, err := trainDirect(ctx, t, spec, in)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, bc.Log)
	}
	rt, err := xgboost.LoadFile(out)
	if err != nil {
		t.Fatalf("load %s: %v", out, err)
	}
	if rt.Objective() != "reg:squarederror" || rt.NumTrees() != 30 {
		t.Errorf("model: %s with %d trees", rt.Objective(), rt.NumTrees())
	}
	if bc.Metrics["train_rows"] != 400 || bc.Metrics["train_r2"] < 0.9 {
		t.Errorf("metrics: %v", bc.Metrics)
	}
	if _, ok := bc.Metrics["rmse"]; ok {
		t.Errorf("validation metrics without a valid input: %v", bc.Metrics)
	}

	// A missing label column fails with the trainer's error.
	bad := trainStepSpec(`{train: steps.prep.outputs.data}`, `{model: {path: model, type: model, flavor: xgboost}}`, `{label: nope}`)
	if _, _, err := trainDirect(ctx, t, bad, in); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("missing label: got %v, want an error naming it", err)
	}

	// A cancelled context stops training with its error.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := trainDirect(cctx, t, spec, in); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

// checkBuiltinSchema checks that docs/pipeline.schema.json's definition
// def lists exactly the with: keys the built-in step uses accepts (named
// by its unknown-key error), and returns a validator of YAML specs against
// the schema.
func checkBuiltinSchema(t *testing.T, uses, def string) func(spec string) error {
	t.Helper()
	data, err := os.ReadFile("../../docs/pipeline.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var root struct {
		Defs map[string]struct {
			Properties map[string]any `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	var schemaKeys []string
	for k := range root.Defs[def].Properties {
		schemaKeys = append(schemaKeys, k)
	}
	sort.Strings(schemaKeys)
	b := pipeline.NewService(nil, nil, nil, nil, nil, "").Builtins[uses]
	err = b.Check(&pipeline.Step{Name: "step", Uses: uses, With: map[string]any{"no_such_key": 1}})
	_, list, ok := strings.Cut(fmt.Sprint(err), "(known keys: ")
	if !ok {
		t.Fatalf("unknown key: %v, want the known keys listed", err)
	}
	known := strings.Split(strings.TrimSuffix(list, ")"), ", ")
	sort.Strings(known)
	if !slices.Equal(schemaKeys, known) {
		t.Errorf("schema %s: keys %v, the decoder's %v", def, schemaKeys, known)
	}

	c := jsonschema.NewCompiler()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("pipeline.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("pipeline.schema.json")
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	return func(spec string) error {
		var v any
		if err := yaml.Unmarshal([]byte(spec), &v); err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		return sch.Validate(inst)
	}
}
