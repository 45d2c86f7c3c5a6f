package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/train/gbdt"
)

// evalFixture is a tiny binary task (flightsCSV) with a weak and a strong
// model trained on it by gbdt, and test data written to a file.
type evalFixture struct {
	train          *gbdt.Data
	weak, strong   []byte // model.json of each
	weakM, strongM *gbdt.Model
	testCSV        string
	testPath       string
}

// writeTestFile writes content to name in dir and returns its path.
func writeTestFile(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// trainModel trains a gbdt model on d and returns it with its XGBoost JSON.
func trainModel(tb testing.TB, d *gbdt.Data, obj gbdt.Objective, trees, depth int) (*gbdt.Model, []byte) {
	tb.Helper()
	cfg := gbdt.DefaultConfig()
	cfg.Objective, cfg.NumTrees, cfg.MaxDepth, cfg.Seed = obj, trees, depth, 3
	if obj == gbdt.MultiSoftprob {
		cfg.NumClass = len(d.Classes)
	}
	m, err := gbdt.Train(context.Background(), d, nil, cfg)
	if err != nil {
		tb.Fatalf("train: %v", err)
	}
	var buf bytes.Buffer
	if err := m.WriteXGBoostJSON(&buf); err != nil {
		tb.Fatal(err)
	}
	return m, buf.Bytes()
}

// loadCSV reads csv with gbdt's loader.
func loadCSV(tb testing.TB, csv string, opts gbdt.LoadOptions) *gbdt.Data {
	tb.Helper()
	p := writeTestFile(tb, tb.TempDir(), "data.csv", csv)
	d, err := gbdt.LoadFiles(context.Background(), []string{p}, opts)
	if err != nil {
		tb.Fatalf("load: %v", err)
	}
	return d
}

func mustEvalFixture(tb testing.TB) *evalFixture {
	tb.Helper()
	f := &evalFixture{testCSV: flightsCSV(5, 300)}
	f.train = loadCSV(tb, flightsCSV(1, 800), gbdt.LoadOptions{Label: "delayed"})
	f.weakM, f.weak = trainModel(tb, f.train, gbdt.BinaryLogistic, 1, 1)
	f.strongM, f.strong = trainModel(tb, f.train, gbdt.BinaryLogistic, 30, 4)
	f.testPath = writeTestFile(tb, tb.TempDir(), "test.csv", f.testCSV)
	return f
}

// wantMetrics returns the trainer's metrics of m on the fixture's test
// data, read like the training data.
func (f *evalFixture) wantMetrics(tb testing.TB, m *gbdt.Model) map[string]float64 {
	tb.Helper()
	d := loadCSV(tb, f.testCSV, gbdt.LoadOptions{Label: "delayed", Like: f.train})
	p, err := m.PredictData(d)
	if err != nil {
		tb.Fatal(err)
	}
	out, err := gbdt.Evaluate(m.Objective, m.NumClass, d.Labels, nil, p)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// evalSpec is a pipeline whose step evaluate evaluates steps.train's model
// on a project file, configured by with (a YAML flow map).
func evalSpec(with string) string {
	return `name: p
steps:
  train:
    run: echo
    outputs:
      model: {path: model, type: model, flavor: xgboost}
  evaluate:
    uses: evaluate
    inputs:
      model: steps.train.outputs.model
      data: test.csv
    outputs:
      metrics: {path: metrics.json, type: metrics}
    with: ` + with + "\n"
}

// modelInput writes model to a folder as model.json and returns it as the
// output of step train.
func modelInput(tb testing.TB, model []byte) pipeline.ResolvedInput {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "model")
	writeTestFile(tb, dir, "model.json", string(model))
	return pipeline.ResolvedInput{Name: "model", Kind: pipeline.InputStep, Path: dir, Step: "train", Output: "model",
		Record: &pipeline.OutputRecord{URI: "mlflow-artifacts:/train/outputs/model", Dir: true, Type: "model", Flavor: "xgboost"}}
}

// evalRun runs an evaluate step of evalSpec(with) on the model input and
// the data file, returning the context, the metrics output's bytes and
// Run's error.
func (e *builtinEnv) evalRun(tb testing.TB, with string, model pipeline.ResolvedInput, data string) (*pipeline.BuiltinContext, []byte, error) {
	tb.Helper()
	st := mustStep(tb, evalSpec(with), "evaluate")
	b := e.svc.Builtins["evaluate"]
	if b == nil {
		tb.Fatal("no built-in evaluate")
	}
	if err := b.Check(st); err != nil {
		tb.Fatalf("Check: %v", err)
	}
	dir := tb.TempDir()
	bc := &pipeline.BuiltinContext{
		Service: e.svc, Run: &pipeline.Run{ID: "pr-00000000000e", ProjectDir: dir}, Step: st,
		StepRun: &pipeline.StepRun{Name: "evaluate", MLflowRunID: e.mustRun(tb, "evaluate").Info.RunID},
		Inputs: map[string]pipeline.ResolvedInput{"model": model,
			"data": {Name: "data", Kind: pipeline.InputPath, Path: data}},
		Outputs: map[string]string{"metrics": filepath.Join(dir, "metrics.json")},
		Log:     &bytes.Buffer{},
	}
	err := b.Run(context.Background(), bc)
	out, _ := os.ReadFile(bc.Outputs["metrics"])
	return bc, out, err
}

// championVersions numbers the artifact folders of mustModelChampion.
var championVersions int

// mustModelChampion registers model (an XGBoost JSON) as a new version of
// name, its files in the artifact store, tagged with metrics (none when
// ""), and points alias at it (none when "").
func (e *builtinEnv) mustModelChampion(tb testing.TB, name, alias string, model []byte, metrics string) *registry.ModelVersion {
	tb.Helper()
	ctx := context.Background()
	championVersions++
	uri := fmt.Sprintf("mlflow-artifacts:/champions/%d/model", championVersions)
	key, err := e.svc.Artifacts.KeyOf(uri + "/model.json")
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.svc.Artifacts.Put(ctx, key, bytes.NewReader(model)); err != nil {
		tb.Fatal(err)
	}
	if _, err := e.registry.GetRegisteredModel(ctx, name); mloop.IsNotFound(err) {
		if _, err := e.registry.CreateRegisteredModel(ctx, name, nil, ""); err != nil {
			tb.Fatalf("create model: %v", err)
		}
	}
	tags := []registry.Tag{{Key: "mloop.flavor", Value: "xgboost"}}
	if metrics != "" {
		tags = append(tags, registry.Tag{Key: pipeline.MetricsTag, Value: metrics})
	}
	mv, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: name, Source: uri, Tags: tags})
	if err != nil {
		tb.Fatalf("create version: %v", err)
	}
	if alias != "" {
		if err := e.registry.SetRegisteredModelAlias(ctx, name, alias, strconv.FormatInt(mv.Version, 10)); err != nil {
			tb.Fatalf("set alias: %v", err)
		}
	}
	return mv
}

// evalDoc is a decoded metrics output of evaluate.
type evalDoc struct {
	values   map[string]float64
	champion map[string]any // nil without one
}

func decodeEvalDoc(tb testing.TB, data []byte) evalDoc {
	tb.Helper()
	var top map[string]any
	if err := json.Unmarshal(data, &top); err != nil {
		tb.Fatalf("metrics output: %v\n%s", err, data)
	}
	d := evalDoc{values: map[string]float64{}}
	for k, v := range top {
		switch x := v.(type) {
		case float64:
			d.values[k] = x
		case map[string]any:
			if k != "champion" {
				tb.Errorf("metrics output: unexpected object %s", k)
			}
			d.champion = x
		default:
			tb.Errorf("metrics output: unexpected member %s = %v", k, v)
		}
	}
	return d
}

// sameMetrics reports the first difference beyond 1e-9 between got and
// want, or "".
func sameMetrics(got, want map[string]float64) string {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range want {
			if !yield(k) {
				return
			}
		}
	})
	if len(got) != len(want) {
		return fmt.Sprintf("got %d metrics %v, want %d %v", len(got), got, len(want), want)
	}
	for _, k := range keys {
		g, ok := got[k]
		if !ok || math.Abs(g-want[k]) > 1e-9 {
			return fmt.Sprintf("%s: got %v (present %v), want %v", k, g, ok, want[k])
		}
	}
	return ""
}

func TestEvaluateScoresCandidateAndChampion(t *testing.T) {
	e := mustBuiltinEnv(t)
	f := mustEvalFixture(t)
	wantWeak, wantStrong := f.wantMetrics(t, f.weakM), f.wantMetrics(t, f.strongM)
	if wantStrong["auc"] <= wantWeak["auc"] {
		t.Fatalf("fixture: strong auc %v is not above weak auc %v", wantStrong["auc"], wantWeak["auc"])
	}

	// No model: the candidate only.
	bc, out, err := e.evalRun(t, `{label: delayed}`, modelInput(t, f.strong), f.testPath)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, bc.Log)
	}
	doc := decodeEvalDoc(t, out)
	if diff := sameMetrics(doc.values, wantStrong); diff != "" {
		t.Errorf("metrics output: %s", diff)
	}
	if doc.champion != nil {
		t.Errorf("champion member %v without with.model", doc.champion)
	}
	if diff := sameMetrics(bc.Metrics, wantStrong); diff != "" {
		t.Errorf("recorded metrics: %s", diff)
	}
	if got := bc.Tags["mloop.evaluate.champion"]; got != "none" {
		t.Errorf("tag mloop.evaluate.champion = %q, want none", got)
	}
	log := bc.Log.(*bytes.Buffer).String()
	for _, s := range []string{"no champion scored: no registered model", "METRIC", "CANDIDATE", "auc"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}

	// A model not registered yet: still no champion, said in the log.
	bc, out, err = e.evalRun(t, `{label: delayed, model: delays}`, modelInput(t, f.strong), f.testPath)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if doc := decodeEvalDoc(t, out); doc.champion != nil {
		t.Errorf("champion member %v before a champion exists", doc.champion)
	}
	if log := bc.Log.(*bytes.Buffer).String(); !strings.Contains(log, "model delays is not registered yet") {
		t.Errorf("log lacks the reason:\n%s", log)
	}

	// With a champion: both scored on the same rows.
	champ := e.mustModelChampion(t, "delays", "champion", f.weak, `{"values":{"auc":0.99}}`)
	ref := "delays/" + strconv.FormatInt(champ.Version, 10)
	bc, out, err = e.evalRun(t, `{label: delayed, model: delays}`, modelInput(t, f.strong), f.testPath)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, bc.Log)
	}
	doc = decodeEvalDoc(t, out)
	if diff := sameMetrics(doc.values, wantStrong); diff != "" {
		t.Errorf("candidate metrics: %s", diff)
	}
	if doc.champion == nil {
		t.Fatalf("no champion member in %s", out)
	}
	if doc.champion["model"] != "delays" || doc.champion["version"] != strconv.FormatInt(champ.Version, 10) {
		t.Errorf("champion = %v, want model delays version %d", doc.champion, champ.Version)
	}
	champVals := map[string]float64{}
	for k, v := range doc.champion {
		if x, ok := v.(float64); ok {
			champVals[k] = x
		}
	}
	if diff := sameMetrics(champVals, wantWeak); diff != "" {
		t.Errorf("champion metrics: %s", diff)
	}
	for k, v := range wantWeak {
		if got := bc.Metrics["champion_"+k]; math.Abs(got-v) > 1e-9 {
			t.Errorf("recorded champion_%s = %v, want %v", k, got, v)
		}
	}
	if got := bc.Tags["mloop.evaluate.champion"]; got != ref {
		t.Errorf("tag mloop.evaluate.champion = %q, want %s", got, ref)
	}
	if !slices.ContainsFunc(bc.Edges, func(ed pipeline.Edge) bool {
		return ed.From == (pipeline.Node{Kind: pipeline.NodeModel, ID: ref}) && ed.To.ID == bc.StepRun.MLflowRunID && ed.Name == "champion"
	}) {
		t.Errorf("edges = %+v, want champion → step run", bc.Edges)
	}
	log = bc.Log.(*bytes.Buffer).String()
	for _, s := range []string{"CHAMPION " + ref, "DIFFERENCE", "champion " + ref + ": delays@champion"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
	// The candidate's metrics file reads as the candidate's metrics only.
	m, err := pipeline.ParseMetrics(out)
	if err != nil {
		t.Fatal(err)
	}
	if diff := sameMetrics(m.Values, wantStrong); diff != "" {
		t.Errorf("ParseMetrics of the output: %s", diff)
	}

	// Scoring is deterministic: the same bytes again.
	_, again, err := e.evalRun(t, `{label: delayed, model: delays}`, modelInput(t, f.strong), f.testPath)
	if err != nil || !bytes.Equal(again, out) {
		t.Errorf("second run: err %v, output equal %v", err, bytes.Equal(again, out))
	}

	// A champion that cannot be scored (its files are gone) leaves no
	// champion member, with the reason.
	e.mustChampion(t, "delays", "champion", `{"values":{"auc":0.5}}`)
	bc, out, err = e.evalRun(t, `{label: delayed, model: delays}`, modelInput(t, f.strong), f.testPath)
	if err != nil {
		t.Fatalf("Run with a champion without files: %v", err)
	}
	if doc := decodeEvalDoc(t, out); doc.champion != nil {
		t.Errorf("champion member %v for a champion without files", doc.champion)
	}
	if log := bc.Log.(*bytes.Buffer).String(); !strings.Contains(log, "no champion scored: champion delays/2 cannot be fetched") {
		t.Errorf("log lacks the reason:\n%s", log)
	}
}

// gateOnEval runs a gate with a change threshold on auc (tolerance 0) on
// an evaluate step's metrics output.
func (e *builtinEnv) gateOnEval(tb testing.TB, model string, metrics []byte) (*pipeline.BuiltinContext, *pipeline.GateVerdict) {
	tb.Helper()
	with := "      thresholds:\n        - metric: auc\n          change: {direction: higher, absolute: 0}\n        - metric: logloss\n          change: {direction: lower, absolute: 0}\n"
	if model != "" {
		with = "      model: " + model + "\n" + with
	}
	bc, v, err := e.gateRun(tb, with, string(metrics))
	if err != nil {
		tb.Fatalf("gate: %v", err)
	}
	return bc, v
}

func TestGateUsesSameDataChampion(t *testing.T) {
	e := mustBuiltinEnv(t)
	f := mustEvalFixture(t)
	wantWeak, wantStrong := f.wantMetrics(t, f.weakM), f.wantMetrics(t, f.strongM)

	// The weak champion's tag claims more than the strong candidate reaches
	// (on other data): the gate must compare on the same data instead.
	weak := e.mustModelChampion(t, "delays", "champion", f.weak, `{"values":{"auc":0.999,"logloss":0.001}}`)
	weakRef := "delays/" + strconv.FormatInt(weak.Version, 10)
	_, out, err := e.evalRun(t, `{label: delayed, model: delays}`, modelInput(t, f.strong), f.testPath)
	if err != nil {
		t.Fatal(err)
	}
	bc, v := e.gateOnEval(t, "delays", out)
	if !v.Blessed || v.ChampionSource != pipeline.ChampionSameData || v.Champion == nil || v.Champion.String() != weakRef {
		t.Fatalf("better candidate: blessed %v, source %q, champion %v; want blessed on the same data against %s; %+v",
			v.Blessed, v.ChampionSource, v.Champion, weakRef, v.Thresholds)
	}
	if r := v.Thresholds[0]; r.Champion == nil || math.Abs(*r.Champion-wantWeak["auc"]) > 1e-9 ||
		!strings.Contains(r.Reason, "champion "+weakRef+" scored on the same data") {
		t.Errorf("auc result = %+v, want the champion's same-data auc %v and the basis in the reason", r, wantWeak["auc"])
	}
	if got := bc.Tags["mloop.gate.champion_source"]; got != pipeline.ChampionSameData {
		t.Errorf("tag mloop.gate.champion_source = %q", got)
	}
	if v.Metrics.Values["auc"] != wantStrong["auc"] && math.Abs(v.Metrics.Values["auc"]-wantStrong["auc"]) > 1e-9 {
		t.Errorf("verdict metrics %v, want the candidate's", v.Metrics.Values)
	}
	if _, ok := v.Metrics.Values["champion_auc"]; ok {
		t.Errorf("verdict metrics hold the champion's: %v", v.Metrics.Values)
	}
	if log := bc.Log.(*bytes.Buffer).String(); !strings.Contains(log, "champion: "+weakRef+" (scored on the same data)") {
		t.Errorf("gate log:\n%s", log)
	}

	// The strong champion's tag claims little; the weak candidate loses on
	// the same data.
	strong := e.mustModelChampion(t, "delays", "champion", f.strong, `{"values":{"auc":0.1,"logloss":9}}`)
	strongRef := "delays/" + strconv.FormatInt(strong.Version, 10)
	_, out, err = e.evalRun(t, `{label: delayed, model: delays}`, modelInput(t, f.weak), f.testPath)
	if err != nil {
		t.Fatal(err)
	}
	_, v = e.gateOnEval(t, "delays", out)
	if v.Blessed || v.ChampionSource != pipeline.ChampionSameData || v.Champion.String() != strongRef {
		t.Fatalf("worse candidate: blessed %v, source %q, champion %v; want rejected on the same data", v.Blessed, v.ChampionSource, v.Champion)
	}
	if want := []string{"auc change fail", "logloss change fail"}; !sameStrings(verdicts(v), want) {
		t.Errorf("verdicts = %q, want %q", verdicts(v), want)
	}

	// Figures of a champion that is no longer champion: the tag is used.
	e.mustModelChampion(t, "delays", "champion", f.weak, `{"values":{"auc":0.1,"logloss":9}}`)
	_, v = e.gateOnEval(t, "delays", out)
	if v.ChampionSource != pipeline.ChampionTag || !v.Blessed || !strings.Contains(v.ChampionReason, "scored on the same data, but the champion is delays/3 now") {
		t.Errorf("stale same-data figures: source %q, blessed %v, reason %q; want the tag used and said", v.ChampionSource, v.Blessed, v.ChampionReason)
	}

	// A gate without a model skips change thresholds as before, with a hint.
	_, v = e.gateOnEval(t, "", out)
	if want := []string{"auc change skipped", "logloss change skipped"}; !sameStrings(verdicts(v), want) || !v.Blessed {
		t.Errorf("verdicts = %q (blessed %v), want %q", verdicts(v), v.Blessed, want)
	}
	if !strings.Contains(v.ChampionReason, "set with.model: delays") || v.ChampionSource != "" {
		t.Errorf("reason %q, source %q; want the hint and no source", v.ChampionReason, v.ChampionSource)
	}
}

func TestGateNoChampionFromEvaluate(t *testing.T) {
	e := mustBuiltinEnv(t)
	f := mustEvalFixture(t)
	_, out, err := e.evalRun(t, `{label: delayed, model: delays}`, modelInput(t, f.strong), f.testPath)
	if err != nil {
		t.Fatal(err)
	}
	if doc := decodeEvalDoc(t, out); doc.champion != nil {
		t.Fatalf("champion member %v without a champion", doc.champion)
	}
	_, v := e.gateOnEval(t, "delays", out)
	if want := []string{"auc change skipped", "logloss change skipped"}; !sameStrings(verdicts(v), want) || !v.Blessed {
		t.Errorf("verdicts = %q (blessed %v), want %q", verdicts(v), v.Blessed, want)
	}
	if v.Champion != nil || v.ChampionSource != "" || !strings.Contains(v.Thresholds[0].Reason, "model delays is not registered yet") {
		t.Errorf("champion %v, source %q, reason %q", v.Champion, v.ChampionSource, v.Thresholds[0].Reason)
	}
}

func TestEvaluateDataErrors(t *testing.T) {
	e := mustBuiltinEnv(t)
	f := mustEvalFixture(t)
	// A model whose categorical feature was trained on integer codes.
	coded := strings.NewReplacer("SFO", "0", "LAX", "1", "JFK", "2", "ORD", "3").Replace(flightsCSV(1, 400))
	_, codedModel := trainModel(t, loadCSV(t, coded, gbdt.LoadOptions{Label: "delayed", Categorical: []string{"origin"}}), gbdt.BinaryLogistic, 5, 3)
	dir := t.TempDir()
	lines := strings.Split(strings.TrimSpace(f.testCSV), "\n")
	tests := []struct {
		name  string
		model []byte
		data  string
		want  string
	}{
		{"missing feature", f.strong, "distance,delayed\n1,0\n", "the data lacks the column hour, a feature of the candidate"},
		{"missing label column", f.strong, "distance,hour,origin\n1,2,SFO\n", "the data has no label column delayed"},
		{"missing label", f.strong, strings.Join(lines[:4], "\n") + "\n10,3,SFO,\n", "label column \"delayed\": row 4 has no label"},
		{"names for codes", codedModel, f.testCSV, "the data must carry the codes the model was trained with"},
		{"text in a numerical feature", f.strong, "distance,hour,origin,delayed\nfar,1,SFO,0\n", "the feature is numerical"},
		{"text labels for binary", f.strong, "distance,hour,origin,delayed\n1,1,SFO,yes\n", "holds text"},
		{"binary label out of range", f.strong, "distance,hour,origin,delayed\n1,1,SFO,0\n2,2,LAX,2\n", "row 2 is 2; the labels of the candidate (binary:logistic) are 0 or 1"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTestFile(t, dir, fmt.Sprintf("d%d.csv", i), tc.data)
			_, _, err := e.evalRun(t, `{label: delayed}`, modelInput(t, tc.model), p)
			if err == nil || mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v (kind %s), want EINVALID containing %q", err, mloop.ErrorCode(err), tc.want)
			}
		})
	}

	// The coded model scores data carrying the codes.
	p := writeTestFile(t, dir, "coded.csv", strings.NewReplacer("SFO", "0", "LAX", "1", "JFK", "2", "ORD", "3").Replace(f.testCSV))
	bc, _, err := e.evalRun(t, `{label: delayed}`, modelInput(t, codedModel), p)
	if err != nil || bc.Metrics["rows"] != 300 || bc.Metrics["auc"] < 0.6 {
		t.Fatalf("coded data: err %v, metrics %v", err, bc.Metrics)
	}
}

// regressionCSV generates n rows of y = 2x + z² + noise under the given
// column names for x, z and y.
func regressionCSV(seed uint64, n int, cols string) string {
	rng := rand.New(rand.NewPCG(seed, 7))
	var b strings.Builder
	b.WriteString(cols + "\n")
	for range n {
		x, z := rng.Float64()*10, rng.Float64()
		fmt.Fprintf(&b, "%.3f,%.3f,%.3f\n", x, z, 2*x+z*z+rng.NormFloat64()*0.1)
	}
	return b.String()
}

func TestEvaluateModelWithoutFeatureNames(t *testing.T) {
	e := mustBuiltinEnv(t)
	train := loadCSV(t, regressionCSV(1, 400, "x,z,y"), gbdt.LoadOptions{Label: "y", Objective: gbdt.RegSquaredError})
	_, named := trainModel(t, train, gbdt.RegSquaredError, 20, 3)
	unnamed := bytes.Replace(named, []byte(`"feature_names":["x","z"]`), []byte(`"feature_names":[]`), 1)
	if bytes.Equal(unnamed, named) {
		t.Fatal("fixture: feature_names not found in the model")
	}
	dir := t.TempDir()
	test := regressionCSV(2, 200, "x,z,y")
	bc, _, err := e.evalRun(t, `{label: y}`, modelInput(t, named), writeTestFile(t, dir, "named.csv", test))
	if err != nil {
		t.Fatal(err)
	}
	want := bc.Metrics
	if want["r2"] < 0.9 || want["rows"] != 200 {
		t.Fatalf("named model metrics %v", want)
	}
	// Other column names, the label first: the columns in order.
	renamed := strings.Replace(test, "x,z,y", "a,b,y", 1)
	bc, _, err = e.evalRun(t, `{label: y}`, modelInput(t, unnamed), writeTestFile(t, dir, "renamed.csv", renamed))
	if err != nil {
		t.Fatalf("unnamed model: %v", err)
	}
	if diff := sameMetrics(bc.Metrics, want); diff != "" {
		t.Errorf("unnamed model: %s", diff)
	}
	if log := bc.Log.(*bytes.Buffer).String(); !strings.Contains(log, "names no features: its features are the data's columns in order: a, b") {
		t.Errorf("log:\n%s", log)
	}
	// A column too many is refused rather than guessed.
	extra := strings.Replace(strings.ReplaceAll(renamed, "\n", ",1\n"), "a,b,y,1", "a,b,y,c", 1)
	_, _, err = e.evalRun(t, `{label: y}`, modelInput(t, unnamed), writeTestFile(t, dir, "extra.csv", extra))
	if err == nil || mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "the data has 3 columns besides the label y (a, b, c)") {
		t.Errorf("extra column: got %v", err)
	}
}

func TestEvaluateMulticlassTextLabels(t *testing.T) {
	e := mustBuiltinEnv(t)
	gen := func(seed uint64, n int) string {
		rng := rand.New(rand.NewPCG(seed, 9))
		var b strings.Builder
		b.WriteString("x,z,kind\n")
		for range n {
			x, z := rng.Float64(), rng.Float64()
			k := "low"
			switch {
			case x+0.1*rng.NormFloat64() > 0.66:
				k = "high"
			case x > 0.33:
				k = "mid"
			}
			fmt.Fprintf(&b, "%.3f,%.3f,%s\n", x, z, k)
		}
		return b.String()
	}
	opts := gbdt.LoadOptions{Label: "kind", Objective: gbdt.MultiSoftprob}
	train := loadCSV(t, gen(1, 600), opts)
	m, model := trainModel(t, train, gbdt.MultiSoftprob, 10, 3)
	test := gen(2, 200)
	opts.Like = train
	td := loadCSV(t, test, opts)
	p, err := m.PredictData(td)
	if err != nil {
		t.Fatal(err)
	}
	want, err := gbdt.Evaluate(gbdt.MultiSoftprob, 3, td.Labels, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bc, _, err := e.evalRun(t, `{label: kind}`, modelInput(t, model), writeTestFile(t, dir, "test.csv", test))
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if diff := sameMetrics(bc.Metrics, want); diff != "" {
		t.Errorf("metrics: %s", diff)
	}
	if _, ok := bc.Metrics["mlogloss"]; !ok || bc.Metrics["accuracy"] < 0.8 {
		t.Errorf("metrics %v", bc.Metrics)
	}
	_, _, err = e.evalRun(t, `{label: kind}`, modelInput(t, model), writeTestFile(t, dir, "odd.csv", "x,z,kind\n0.5,0.5,mid\n0.1,0.1,huge\n"))
	if err == nil || mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), `row 2 is class "huge"`) {
		t.Errorf("unknown class: got %v", err)
	}
}

func TestEvaluateCheckErrors(t *testing.T) {
	b := pipeline.NewService(nil, nil, nil, nil, nil, "").Builtins["evaluate"]
	if b == nil {
		t.Fatal("no built-in evaluate")
	}
	spec := func(inputs, outputs, with string) string {
		return `name: p
steps:
  train:
    run: echo
    outputs: {model: {path: model, type: model, flavor: xgboost}}
  evaluate:
    uses: evaluate
    inputs: ` + inputs + `
    outputs: ` + outputs + `
    with: ` + with + "\n"
	}
	const (
		in  = `{model: steps.train.outputs.model, data: data://weather-test@latest}`
		out = `{metrics: {path: metrics.json, type: metrics}}`
	)
	tests := []struct {
		name, inputs, outputs, with, want string
	}{
		{"ok", in, out, `{label: sunny, model: weather, champion_alias: best}`, ""},
		{"ok file inputs", `{model: models/model.json, data: test.csv}`, `{}`, `{label: sunny}`, ""},
		{"no label", in, out, `{model: weather}`, "step evaluate: with.label is required"},
		{"blank label", in, out, `{label: " "}`, "with.label is required"},
		{"unknown key", in, out, `{label: y, features: [a]}`, `step evaluate: with has no key "features" (known keys: label, model, champion_alias)`},
		{"alias without model", in, out, `{label: y, champion_alias: best}`, "with.champion_alias needs with.model"},
		{"label not a string", in, out, `{label: [a]}`, "with.label must be a string, not a list"},
		{"no model input", `{data: test.csv}`, out, `{label: y}`, "uses: evaluate needs the input model"},
		{"no data input", `{model: steps.train.outputs.model}`, out, `{label: y}`, "uses: evaluate needs the input data"},
		{"model from a dataset", `{model: data://models@1, data: test.csv}`, out, `{label: y}`, "input model must be a step output"},
		{"extra input", `{model: m.json, data: t.csv, code: e.py}`, out, `{label: y}`, `uses: evaluate takes no input "code" (its inputs: model, data)`},
		{"metrics not typed", in, `{metrics: metrics.json}`, `{label: y}`, "declare it with type: metrics"},
		{"unknown output", in, `{report: {path: r.json}}`, `{label: y}`, `uses: evaluate writes no output "report" (its outputs: metrics)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := mustStep(t, spec(tc.inputs, tc.outputs, tc.with), "evaluate")
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
		})
	}
}

func TestEvaluateCacheKeyExtra(t *testing.T) {
	e := mustBuiltinEnv(t)
	f := mustEvalFixture(t)
	ck, ok := e.svc.Builtins["evaluate"].(pipeline.CacheKeyer)
	if !ok {
		t.Fatal("evaluate does not implement CacheKeyer")
	}
	key := func(with string, inputs map[string]pipeline.ResolvedInput) string {
		t.Helper()
		m, err := ck.CacheKeyExtra(context.Background(), e.svc, nil, mustStep(t, evalSpec(with), "evaluate"), inputs)
		if err != nil {
			t.Fatalf("CacheKeyExtra: %v", err)
		}
		return m["champion"]
	}
	const with = `{label: delayed, model: delays}`
	if got := key(`{label: delayed}`, nil); got != "none" {
		t.Errorf("without a model: %q, want none", got)
	}
	if got := key(with, nil); got != "none" {
		t.Errorf("before a champion: %q, want none", got)
	}
	v1 := e.mustModelChampion(t, "delays", "champion", f.weak, "")
	if got := key(with, nil); got != "delays/1" {
		t.Errorf("with champion 1: %q", got)
	}
	if got := key(`{label: delayed, model: delays, champion_alias: best}`, nil); got != "none" {
		t.Errorf("another alias: %q, want none", got)
	}
	// The champion is the candidate itself, gated against delays/1.
	ctx := context.Background()
	v2, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "delays", Source: "mlflow-artifacts:/runs/r2/outputs/model",
		Tags: []registry.Tag{{Key: "mloop.gate.champion", Value: "delays/" + strconv.FormatInt(v1.Version, 10)}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.registry.SetRegisteredModelAlias(ctx, "delays", "champion", strconv.FormatInt(v2.Version, 10)); err != nil {
		t.Fatal(err)
	}
	self := map[string]pipeline.ResolvedInput{"model": {Name: "model", Kind: pipeline.InputStep,
		Record: &pipeline.OutputRecord{URI: "mlflow-artifacts:/runs/r2/outputs/model", Type: "model"}}}
	other := map[string]pipeline.ResolvedInput{"model": {Name: "model", Kind: pipeline.InputStep,
		Record: &pipeline.OutputRecord{URI: "mlflow-artifacts:/runs/r3/outputs/model", Type: "model"}}}
	if got := key(with, self); got != "delays/1" {
		t.Errorf("candidate is the champion: %q, want the champion it was gated against, delays/1", got)
	}
	if got := key(with, other); got != "delays/2" {
		t.Errorf("another candidate: %q, want delays/2", got)
	}
}

// TestEvaluateSchema checks that docs/pipeline.schema.json knows the
// evaluate step: its with: keys are the decoder's, and it accepts a good
// step and rejects bad with:.
func TestEvaluateSchema(t *testing.T) {
	validate := checkBuiltinSchema(t, "evaluate", "evaluate_with")
	if err := validate(evalSpec(`{label: y, model: m, champion_alias: best}`)); err != nil {
		t.Errorf("the schema rejects a good evaluate step: %v", err)
	}
	for _, with := range []string{`{model: m}`, `{label: y, features: [a]}`, `{label: 3}`} {
		if err := validate(evalSpec(with)); err == nil {
			t.Errorf("the schema accepts with: %s", with)
		}
	}
}

// FuzzParseSameDataChampion checks that no metrics document makes the
// parser panic, that what it returns names a version, and that it agrees
// with ParseMetrics on which documents are valid.
func FuzzParseSameDataChampion(f *testing.F) {
	for _, s := range []string{
		`{"auc": 0.9, "champion": {"model": "weather", "version": "1", "auc": 0.8}}`,
		`{"champion": {"model": "weather", "version": 2, "auc": 0.8, "slices": {"a": {"auc": 1}}}}`,
		`{"champion": "weather/1"}`,
		`{"champion": {"model": 1, "version": "1"}}`,
		`{"champion": {"model": "m", "version": 1.5}}`,
		`{"champion": null}`,
		`[1, 2]`,
		`{"champion": {"model": "m", "version": "1", "slices": 3}}`,
	} {
		f.Add(s)
	}
	versionRE := regexp.MustCompile(`\S`)
	f.Fuzz(func(t *testing.T, doc string) {
		ref, m, err := pipeline.ParseSameDataChampion([]byte(doc))
		_, perr := pipeline.ParseMetrics([]byte(doc))
		if (err == nil) != (perr == nil) && err != nil {
			t.Fatalf("ParseSameDataChampion error %v, ParseMetrics %v", err, perr)
		}
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("error kind %s, want EINVALID", mloop.ErrorCode(err))
			}
			return
		}
		if (ref == nil) != (m == nil) {
			t.Fatalf("ref %v, metrics %v: want both or neither", ref, m)
		}
		if ref != nil && (!versionRE.MatchString(ref.Name) || ref.Version == "") {
			t.Fatalf("ref %+v does not name a version", ref)
		}
		if m != nil {
			if _, ok := m.Values["version"]; ok {
				t.Fatalf("the version is among the metrics: %v", m.Values)
			}
		}
	})
}

// loopSpec is the automatic loop's pipeline: train/gbdt with trees and
// depth, evaluate on the newest test data against the champion, gate on
// the same-data figures, register.
func loopSpec(trees, depth int) string {
	return fmt.Sprintf(`name: loop
steps:
  train:
    uses: train/gbdt
    inputs: {train: data://flights@latest}
    outputs: {model: {path: model, type: model, flavor: xgboost}}
    with: {label: delayed, num_trees: %d, max_depth: %d, seed: 1}
  evaluate:
    uses: evaluate
    inputs:
      model: steps.train.outputs.model
      data: data://flights_test@latest
    outputs:
      metrics: {path: metrics.json, type: metrics}
    with: {label: delayed, model: delays}
  gate:
    uses: gate
    inputs: {metrics: steps.evaluate.outputs.metrics}
    outputs: {verdict: {path: verdict.json}}
    with:
      model: delays
      thresholds:
        - {metric: auc, lower: 0.5, change: {direction: higher, absolute: 0}}
  register:
    uses: register
    inputs: {model: steps.train.outputs.model, verdict: steps.gate.outputs.verdict}
    with: {model: delays}
`, trees, depth)
}

func TestEvaluateGateRegisterLoop(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	e.open(t)
	e.pushDataset(t, "flights", flightsCSV(1, 800))
	e.pushDataset(t, "flights_test", flightsCSV(5, 300))
	reg := e.stack.Registry

	run := func(spec string) *pipeline.Run {
		t.Helper()
		r := e.waitDone(t, e.submit(t, spec, nil).ID)
		if r.Status != pipeline.RunSucceeded {
			t.Fatalf("run: got %s (%s), want succeeded; steps %s", r.Status, r.Error, stepStates(r))
		}
		return r
	}
	verdict := func(r *pipeline.Run) pipeline.GateVerdict {
		t.Helper()
		var v pipeline.GateVerdict
		if err := json.Unmarshal([]byte(e.readArtifact(t, r.Step("gate").Outputs["verdict"].URI)), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	champion := func() string {
		t.Helper()
		mv, err := reg.GetModelVersionByAlias(ctx, "delays", "champion")
		if err != nil {
			t.Fatalf("champion: %v", err)
		}
		return strconv.FormatInt(mv.Version, 10)
	}
	versions := func() int {
		t.Helper()
		vs, _, err := reg.SearchModelVersions(ctx, registry.SearchRequest{Filter: "name = 'delays'"})
		if err != nil {
			t.Fatal(err)
		}
		return len(vs)
	}

	// 1. A weak first model: no champion to score, change skipped, blessed.
	weak := loopSpec(1, 1)
	r1 := run(weak)
	ev := wantStep(t, r1, "evaluate", pipeline.StepSucceeded)
	if doc := decodeEvalDoc(t, []byte(e.readArtifact(t, ev.Outputs["metrics"].URI))); doc.champion != nil || doc.values["rows"] != 300 {
		t.Errorf("first evaluation: champion %v, values %v; want no champion, 300 rows", doc.champion, doc.values)
	}
	if v := verdict(r1); !v.Blessed || v.Champion != nil || v.Thresholds[1].Verdict != pipeline.VerdictSkipped {
		t.Errorf("first verdict: %+v", v)
	}
	if got := champion(); got != "1" {
		t.Fatalf("champion after the first run: %s, want 1", got)
	}
	mv1, err := reg.GetModelVersion(ctx, "delays", "1")
	if err != nil {
		t.Fatal(err)
	}
	if tg := tagMap(mv1.Tags)[pipeline.MetricsTag]; !strings.Contains(tg, `"auc"`) || strings.Contains(tg, "champion") {
		t.Errorf("version 1 %s tag = %s, want the candidate's metrics only", pipeline.MetricsTag, tg)
	}

	// 2. Unchanged: everything is cached, nothing registered again.
	r2 := run(weak)
	for _, s := range []string{"train", "evaluate", "gate", "register"} {
		wantStep(t, r2, s, pipeline.StepCached)
	}
	if n := versions(); n != 1 {
		t.Errorf("%d versions after an unchanged run, want 1", n)
	}

	// 3. A stronger model: scored with the champion on the same data,
	// blessed, becomes champion.
	r3 := run(loopSpec(30, 4))
	ev = wantStep(t, r3, "evaluate", pipeline.StepSucceeded)
	doc := decodeEvalDoc(t, []byte(e.readArtifact(t, ev.Outputs["metrics"].URI)))
	if doc.champion == nil || doc.champion["version"] != "1" || doc.champion["rows"] != 300.0 {
		t.Fatalf("evaluation against champion 1: %v", doc.champion)
	}
	tr, err := e.tr.GetRun(ctx, ev.MLflowRunID)
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]float64{}
	for _, m := range tr.Metrics {
		recorded[m.Key] = m.Value
	}
	if recorded["auc"] != doc.values["auc"] || recorded["champion_auc"] != doc.champion["auc"] || tag(tr, "mloop.evaluate.champion") != "delays/1" {
		t.Errorf("recorded metrics %v, tag %q; want auc %v, champion_auc %v", recorded, tag(tr, "mloop.evaluate.champion"), doc.values["auc"], doc.champion["auc"])
	}
	v := verdict(r3)
	if !v.Blessed || v.ChampionSource != pipeline.ChampionSameData || !strings.Contains(v.Thresholds[1].Reason, "champion delays/1 scored on the same data") {
		t.Errorf("third verdict: blessed %v, source %q, %+v", v.Blessed, v.ChampionSource, v.Thresholds)
	}
	if got := champion(); got != "2" {
		t.Fatalf("champion after a better model: %s, want 2", got)
	}

	// 4. The weak model again (its training cached): it loses to champion 2
	// on the same data and is registered without becoming champion.
	r4 := run(weak)
	wantStep(t, r4, "train", pipeline.StepCached)
	wantStep(t, r4, "evaluate", pipeline.StepSucceeded)
	v = verdict(r4)
	if v.Blessed || v.ChampionSource != pipeline.ChampionSameData || v.Champion == nil || v.Champion.Version != "2" || v.Thresholds[1].Verdict != pipeline.VerdictFail {
		t.Errorf("fourth verdict: blessed %v, source %q, champion %v, %+v", v.Blessed, v.ChampionSource, v.Champion, v.Thresholds)
	}
	if got := champion(); got != "2" {
		t.Errorf("champion after a worse model: %s, want 2", got)
	}
	rc, err := e.svc.OpenLog(ctx, r4.ID, "evaluate")
	if err != nil {
		t.Fatal(err)
	}
	logText := new(bytes.Buffer)
	logText.ReadFrom(rc)
	rc.Close()
	for _, s := range []string{"data: flights_test@1", "champion delays/2: delays@champion", "CHAMPION delays/2", "DIFFERENCE"} {
		if !strings.Contains(logText.String(), s) {
			t.Errorf("evaluate log lacks %q:\n%s", s, logText)
		}
	}
	t.Logf("evaluate log:\n%s", logText)
}

func TestEvaluateChampionRegisteredAsOneFile(t *testing.T) {
	e := mustBuiltinEnv(t)
	f := mustEvalFixture(t)
	ctx := context.Background()
	uri := "mlflow-artifacts:/single/weak.json"
	key, err := e.svc.Artifacts.KeyOf(uri)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Artifacts.Put(ctx, key, bytes.NewReader(f.weak)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.registry.CreateRegisteredModel(ctx, "delays", nil, ""); err != nil {
		t.Fatal(err)
	}
	mv, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "delays", Source: uri})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.registry.SetRegisteredModelAlias(ctx, "delays", "best", strconv.FormatInt(mv.Version, 10)); err != nil {
		t.Fatal(err)
	}
	bc, out, err := e.evalRun(t, `{label: delayed, model: delays, champion_alias: best}`, modelInput(t, f.strong), f.testPath)
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, bc.Log)
	}
	doc := decodeEvalDoc(t, out)
	if doc.champion == nil || doc.champion["version"] != "1" {
		t.Fatalf("champion = %v, want delays/1", doc.champion)
	}
	if got, want := doc.champion["auc"], f.wantMetrics(t, f.weakM)["auc"]; got != want {
		t.Errorf("champion auc = %v, want %v", got, want)
	}
}

// FuzzEvaluateModelAttributes checks that no learner attributes in a
// model (the category and class names evaluate reads beside the runtime)
// make the evaluate step panic, and that bad ones are EINVALID. The runtime
// itself has its own fuzz test (xgboost.FuzzLoad).
func FuzzEvaluateModelAttributes(f *testing.F) {
	_, model := trainModel(f, loadCSV(f, flightsCSV(1, 200), gbdt.LoadOptions{Label: "delayed"}), gbdt.BinaryLogistic, 1, 2)
	const head = `{"learner":{"attributes":`
	if !bytes.HasPrefix(model, []byte(head)) {
		f.Fatalf("model does not start with %s", head)
	}
	end := bytes.Index(model, []byte(`,"feature_names"`))
	for _, s := range []string{
		string(model[len(head):end]),
		`{"mloop_categories":"{\"origin\":[\"LAX\"]}"}`,
		`{"mloop_categories":"[{"}`,
		`{"mloop_categories":"{\"origin\":null,\"x\":[1]}"}`,
		`{"mloop_classes":"[\"a\",\"b\"]"}`,
		`{}`,
		`[]`,
		`{"a":{"b":[1,2,NaN]}}`,
	} {
		f.Add(s)
	}
	data := writeTestFile(f, f.TempDir(), "test.csv", flightsCSV(5, 19))
	b := pipeline.NewService(nil, nil, nil, nil, nil, "").Builtins["evaluate"]
	st := mustStep(f, evalSpec(`{label: delayed}`), "evaluate")
	dir := f.TempDir()
	mp := filepath.Join(dir, "model.json")
	f.Fuzz(func(t *testing.T, attrs string) {
		doc := append(append([]byte(head), attrs...), model[end:]...)
		if err := os.WriteFile(mp, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		bc := &pipeline.BuiltinContext{Step: st, Run: &pipeline.Run{ID: "pr-00000000000f"},
			Inputs: map[string]pipeline.ResolvedInput{
				"model": {Name: "model", Kind: pipeline.InputPath, Path: mp},
				"data":  {Name: "data", Kind: pipeline.InputPath, Path: data}},
			Outputs: map[string]string{"metrics": filepath.Join(dir, "metrics.json")}}
		err := b.Run(context.Background(), bc)
		if err != nil {
			if code := mloop.ErrorCode(err); code != mloop.EINVALID {
				t.Fatalf("Run = %v (kind %s), want EINVALID", err, code)
			}
			return
		}
		if bc.Metrics["rows"] != 19 {
			t.Fatalf("scored %v rows, want 19", bc.Metrics["rows"])
		}
	})
}
