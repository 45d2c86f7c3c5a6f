package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
)

// registerSpec is a pipeline with a train step, a gate and a register step
// configured by with; inputs are the register step's inputs (YAML flow map).
func registerSpec(inputs, with string) string {
	return `name: p
steps:
  train:
    run: echo
    outputs:
      model: {path: model.json, type: model, flavor: xgboost}
      metrics: {path: metrics.json, type: metrics}
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    outputs: {verdict: {path: verdict.json}}
    with: {thresholds: [{metric: auc, lower: 0}]}
  register:
    uses: register
    inputs: ` + inputs + `
    outputs: {version: {path: version.json}}
    with:
` + with
}

// trainedModel is the model output of an upstream train step: a file in
// the artifact folder of its own MLflow run.
type trainedModel struct {
	input pipeline.ResolvedInput
}

// mustTrainedModel creates an upstream step run holding a model output.
func (e *builtinEnv) mustTrainedModel(tb testing.TB) trainedModel {
	tb.Helper()
	run := e.mustRun(tb, "train")
	uri := run.Info.ArtifactURI + "/outputs/model"
	local, ok := artifact.LocalPath(uri)
	if !ok {
		tb.Fatalf("artifact URI %s is not local", uri)
	}
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		tb.Fatal(err)
	}
	// A real XGBoost model: the register step checks what it registers.
	model, err := os.ReadFile("../serving/xgboost/testdata/binary_logistic.json")
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(local, model, 0o644); err != nil {
		tb.Fatal(err)
	}
	return trainedModel{input: pipeline.ResolvedInput{
		Name: "model", Kind: pipeline.InputStep, Path: local, Step: "train", Output: "model",
		Record:          &pipeline.OutputRecord{URI: uri, Hash: "sha256:00", Type: "model", Flavor: "xgboost"},
		StepMLflowRunID: run.Info.RunID,
	}}
}

// registerRuns numbers the pipeline runs of registerRun, each registering
// its own version.
var registerRuns int

// registerRun runs the register step with the given inputs configuration
// and with, a trained model and, when verdict is not nil, a verdict input.
func (e *builtinEnv) registerRun(tb testing.TB, inputs, with string, verdict *pipeline.GateVerdict, metrics string) (*pipeline.BuiltinContext, pipeline.RegisteredVersion, error) {
	tb.Helper()
	st := mustStep(tb, registerSpec(inputs, with), "register")
	b := e.svc.Builtins["register"]
	if err := b.Check(st); err != nil {
		tb.Fatalf("Check: %v", err)
	}
	dir := tb.TempDir()
	ins := map[string]pipeline.ResolvedInput{"model": e.mustTrainedModel(tb).input}
	if verdict != nil {
		data, err := json.Marshal(verdict)
		if err != nil {
			tb.Fatal(err)
		}
		p := filepath.Join(dir, "verdict.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		ins["verdict"] = pipeline.ResolvedInput{Name: "verdict", Kind: pipeline.InputStep, Path: p, Step: "gate", Output: "verdict",
			Record: &pipeline.OutputRecord{URI: "mlflow-artifacts:/g/outputs/verdict", Type: "file"}}
	}
	if metrics != "" {
		p := filepath.Join(dir, "metrics.json")
		if err := os.WriteFile(p, []byte(metrics), 0o644); err != nil {
			tb.Fatal(err)
		}
		ins["metrics"] = pipeline.ResolvedInput{Name: "metrics", Kind: pipeline.InputStep, Path: p, Step: "train", Output: "metrics",
			Record: &pipeline.OutputRecord{URI: "mlflow-artifacts:/t/outputs/metrics", Type: "metrics"}}
	}
	registerRuns++
	bc := &pipeline.BuiltinContext{
		Service: e.svc, Run: &pipeline.Run{ID: fmt.Sprintf("pr-%012x", registerRuns), ProjectDir: dir}, Step: st,
		StepRun: &pipeline.StepRun{Name: "register", MLflowRunID: e.mustRun(tb, "register").Info.RunID},
		Inputs:  ins,
		Outputs: map[string]string{"version": filepath.Join(dir, "version.json")},
		Log:     &bytes.Buffer{},
	}
	err := b.Run(context.Background(), bc)
	var out pipeline.RegisteredVersion
	if data, rerr := os.ReadFile(bc.Outputs["version"]); rerr == nil {
		if jerr := json.Unmarshal(data, &out); jerr != nil {
			tb.Fatalf("version output: %v", jerr)
		}
	} else if err == nil {
		tb.Fatalf("no version output: %v", rerr)
	}
	return bc, out, err
}

// aliasVersion returns the version alias names, "" when none.
func (e *builtinEnv) aliasVersion(tb testing.TB, model, alias string) string {
	tb.Helper()
	m, err := e.registry.GetRegisteredModel(context.Background(), model)
	if err != nil {
		tb.Fatalf("get model: %v", err)
	}
	for _, a := range m.Aliases {
		if a.Alias == alias {
			return strconv.FormatInt(a.Version, 10)
		}
	}
	return ""
}

func tagMap(tags []registry.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range tags {
		m[t.Key] = t.Value
	}
	return m
}

func TestRegisterMovesAliasesByBlessing(t *testing.T) {
	e := mustBuiltinEnv(t)
	ctx := context.Background()
	metrics := &pipeline.Metrics{Values: map[string]float64{"auc": 0.8}, Slices: map[string]map[string]float64{"origin=SFO": {"auc": 0.7}}}

	// A blessed candidate: a new model, challenger and champion.
	bc, out, err := e.registerRun(t, `{model: steps.train.outputs.model, verdict: steps.gate.outputs.verdict}`,
		"      model: delays\n      description: first\n      tags: {team: ml}\n",
		&pipeline.GateVerdict{Blessed: true, Metrics: metrics}, "")
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, bc.Log)
	}
	if out.Name != "delays" || out.Version != "1" || !sameStrings(out.Aliases, []string{"challenger", "champion"}) {
		t.Errorf("version output = %+v", out)
	}
	mv, err := e.registry.GetModelVersion(ctx, "delays", "1")
	if err != nil {
		t.Fatalf("get version: %v", err)
	}
	in := bc.Inputs["model"]
	if mv.Source != in.Record.URI || mv.RunID != in.StepMLflowRunID || mv.Description != "first" {
		t.Errorf("version = source %q run %q description %q; want %q, %q, first", mv.Source, mv.RunID, mv.Description, in.Record.URI, in.StepMLflowRunID)
	}
	tags := tagMap(mv.Tags)
	for k, want := range map[string]string{
		"mloop.pipeline_run": bc.Run.ID, "mloop.step": "train", "mloop.output": "model",
		"mloop.flavor": "xgboost", "mloop.blessed": "true", "team": "ml",
	} {
		if tags[k] != want {
			t.Errorf("tag %s = %q, want %q", k, tags[k], want)
		}
	}
	var got pipeline.Metrics
	if err := json.Unmarshal([]byte(tags[pipeline.MetricsTag]), &got); err != nil || got.Values["auc"] != 0.8 || got.Slices["origin=SFO"]["auc"] != 0.7 {
		t.Errorf("mloop.metrics = %q (%v), want the verdict's metrics", tags[pipeline.MetricsTag], err)
	}
	if e.aliasVersion(t, "delays", "champion") != "1" || e.aliasVersion(t, "delays", "challenger") != "1" {
		t.Errorf("aliases after a blessed version: champion %q challenger %q", e.aliasVersion(t, "delays", "champion"), e.aliasVersion(t, "delays", "challenger"))
	}
	if bc.Tags["mloop.model_version"] != "delays/1" || bc.Metrics["register.version"] != 1 {
		t.Errorf("tags %v metrics %v", bc.Tags, bc.Metrics)
	}
	model := pipeline.Node{Kind: pipeline.NodeModel, ID: "delays/1"}
	wantEdges := []pipeline.Edge{
		{From: pipeline.Node{Kind: pipeline.NodeArtifact, ID: in.Record.URI}, To: model, Relation: "registered", Name: "model"},
		{From: pipeline.Node{Kind: pipeline.NodeStepRun, ID: bc.StepRun.MLflowRunID}, To: model, Relation: "output", Name: "version"},
	}
	if len(bc.Edges) != len(wantEdges) || bc.Edges[0] != wantEdges[0] || bc.Edges[1] != wantEdges[1] {
		t.Errorf("edges = %+v, want %+v", bc.Edges, wantEdges)
	}

	// Not blessed: registered all the same, challenger moves, champion stays.
	bc, out, err = e.registerRun(t, `{model: steps.train.outputs.model, verdict: steps.gate.outputs.verdict}`,
		"      model: delays\n", &pipeline.GateVerdict{Blessed: false, Metrics: metrics}, "")
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out.Version != "2" || !sameStrings(out.Aliases, []string{"challenger"}) {
		t.Errorf("version output = %+v", out)
	}
	if c, ch := e.aliasVersion(t, "delays", "champion"), e.aliasVersion(t, "delays", "challenger"); c != "1" || ch != "2" {
		t.Errorf("after an unblessed version: champion %q challenger %q, want 1 and 2", c, ch)
	}
	if !strings.Contains(bc.Log.(*bytes.Buffer).String(), "did not bless") {
		t.Errorf("log does not say why champion stayed:\n%s", bc.Log)
	}
	mv, _ = e.registry.GetModelVersion(ctx, "delays", "2")
	if tagMap(mv.Tags)["mloop.blessed"] != "false" {
		t.Errorf("mloop.blessed = %q, want false", tagMap(mv.Tags)["mloop.blessed"])
	}

	// No verdict and the default policy: champion does not move; the
	// metrics input gives the metrics.
	_, out, err = e.registerRun(t, `{model: steps.train.outputs.model, metrics: steps.train.outputs.metrics}`,
		"      model: delays\n", nil, `{"auc": 0.9}`)
	if err != nil || out.Version != "3" || e.aliasVersion(t, "delays", "champion") != "1" {
		t.Fatalf("no verdict: out %+v err %v champion %q", out, err, e.aliasVersion(t, "delays", "champion"))
	}
	mv, _ = e.registry.GetModelVersion(ctx, "delays", "3")
	if tags := tagMap(mv.Tags); tags[pipeline.MetricsTag] != `{"values":{"auc":0.9}}` || tags["mloop.blessed"] != "" {
		t.Errorf("tags without verdict = %v", tags)
	}

	// Configured policy: without blessing, other aliases.
	_, out, err = e.registerRun(t, `{model: steps.train.outputs.model}`,
		"      model: delays\n      require_blessing: false\n      aliases: {always: [], blessed: [prod]}\n", nil, "")
	if err != nil || out.Version != "4" || !sameStrings(out.Aliases, []string{"prod"}) {
		t.Fatalf("require_blessing false: out %+v err %v", out, err)
	}
	if p, ch := e.aliasVersion(t, "delays", "prod"), e.aliasVersion(t, "delays", "challenger"); p != "4" || ch != "3" {
		t.Errorf("prod %q challenger %q, want 4 and 3", p, ch)
	}
}

// TestRegisterThenGate runs the two built-ins in turn: the champion a
// register step records is the baseline of the next gate.
func TestRegisterThenGate(t *testing.T) {
	e := mustBuiltinEnv(t)
	gateWith := `
      model: delays
      thresholds:
        - metric: auc
          change: {direction: higher, absolute: 0.01}
`
	_, v, err := e.gateRun(t, gateWith, `{"auc": 0.8}`)
	if err != nil || !v.Blessed || v.Thresholds[0].Verdict != pipeline.VerdictSkipped {
		t.Fatalf("first gate: %+v %v", v, err)
	}
	if _, _, err := e.registerRun(t, `{model: steps.train.outputs.model, verdict: steps.gate.outputs.verdict}`, "      model: delays\n", v, ""); err != nil {
		t.Fatalf("register: %v", err)
	}
	_, v, err = e.gateRun(t, gateWith, `{"auc": 0.78}`)
	if err != nil || v.Blessed || v.Champion == nil || v.Champion.String() != "delays/1" || v.Thresholds[0].Verdict != pipeline.VerdictFail {
		t.Fatalf("second gate: %+v %v", v, err)
	}
}

func TestRegisterRejectsWrongInputs(t *testing.T) {
	e := mustBuiltinEnv(t)
	st := mustStep(t, registerSpec(`{model: steps.train.outputs.model}`, "      model: delays\n"), "register")
	tm := e.mustTrainedModel(t)
	tm.input.Record.Type = "file"
	bc := &pipeline.BuiltinContext{Service: e.svc, Step: st, StepRun: &pipeline.StepRun{Name: "register"},
		Inputs: map[string]pipeline.ResolvedInput{"model": tm.input}, Outputs: map[string]string{}}
	err := e.svc.Builtins["register"].Run(context.Background(), bc)
	if err == nil || !strings.Contains(err.Error(), "declare that output with type: model") {
		t.Fatalf("Run = %v, want a type error", err)
	}
	// A cached upstream step: its step run is a new one, its output lies in
	// the run that first produced it, which the version records.
	tm = e.mustTrainedModel(t)
	producer := tm.input.StepMLflowRunID
	tm.input.StepMLflowRunID = e.mustRun(t, "cached-train").Info.RunID
	bc.Inputs["model"] = tm.input
	if err := e.svc.Builtins["register"].Run(context.Background(), bc); err != nil {
		t.Fatalf("Run with a cached upstream step: %v", err)
	}
	mv, err := e.registry.GetModelVersion(context.Background(), "delays", "1")
	if err != nil || mv.RunID != producer {
		t.Fatalf("version = %+v, %v; want run %s", mv, err, producer)
	}

	// A source outside any run's artifacts is refused by the registry.
	tm = e.mustTrainedModel(t)
	tm.input.Record.URI = "file://" + filepath.ToSlash(filepath.Join(e.dir, "elsewhere", "model"))
	bc.Inputs["model"] = tm.input
	if err := e.svc.Builtins["register"].Run(context.Background(), bc); err == nil || !strings.Contains(err.Error(), "Invalid model version source") {
		t.Fatalf("Run = %v, want the registry's source check", err)
	}
}

func TestMetricsTagTruncatesSlices(t *testing.T) {
	e := mustBuiltinEnv(t)
	var b strings.Builder
	b.WriteString(`{"auc": 0.5, "slices": {`)
	for i := 0; i < 400; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"slice-` + strconv.Itoa(1000+i) + `": {"auc": 0.123456789}`)
	}
	b.WriteString("}}")
	bc, out, err := e.registerRun(t, `{model: steps.train.outputs.model, metrics: steps.train.outputs.metrics}`, "      model: big\n", nil, b.String())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	mv, err := e.registry.GetModelVersion(context.Background(), "big", out.Version)
	if err != nil {
		t.Fatal(err)
	}
	tags := tagMap(mv.Tags)
	var m pipeline.Metrics
	if err := json.Unmarshal([]byte(tags[pipeline.MetricsTag]), &m); err != nil {
		t.Fatalf("mloop.metrics is not JSON: %v", err)
	}
	if len(tags[pipeline.MetricsTag]) > registry.MaxTagValueLength || m.Values["auc"] != 0.5 || len(m.Slices) == 0 || len(m.Slices) >= 400 {
		t.Errorf("mloop.metrics has %d bytes, %d slices", len(tags[pipeline.MetricsTag]), len(m.Slices))
	}
	if _, ok := m.Slices["slice-1000"]; !ok {
		t.Errorf("the first slices by name were dropped")
	}
	if want := strconv.Itoa(400-len(m.Slices)) + " slices omitted"; tags[pipeline.MetricsTag+".truncated"] != want {
		t.Errorf("truncated tag = %q, want %q", tags[pipeline.MetricsTag+".truncated"], want)
	}
	if !strings.Contains(bc.Log.(*bytes.Buffer).String(), "warning") {
		t.Errorf("no warning logged")
	}
}

func TestRegisterRetryFindsEarlierVersion(t *testing.T) {
	e := mustBuiltinEnv(t)
	bc, first, err := e.registerRun(t, `{model: steps.train.outputs.model, metrics: steps.train.outputs.metrics}`,
		"      model: flights", nil, `{"auc": 0.8}`)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	// A retry of the same step of the same run (after the server died
	// before recording the step) finds the version instead of adding one.
	bc.Metrics, bc.Tags, bc.Edges = nil, nil, nil
	if err := e.svc.Builtins["register"].Run(context.Background(), bc); err != nil {
		t.Fatalf("register again: %v", err)
	}
	data, err := os.ReadFile(bc.Outputs["version"])
	if err != nil {
		t.Fatal(err)
	}
	var again pipeline.RegisteredVersion
	if err := json.Unmarshal(data, &again); err != nil {
		t.Fatal(err)
	}
	if again.Version != first.Version {
		t.Fatalf("retry registered version %s, want the first attempt's %s", again.Version, first.Version)
	}
	vs, _, err := e.svc.Registry.SearchModelVersions(context.Background(), registry.SearchRequest{Filter: "name = 'flights'"})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("got %d versions after a retry, want 1", len(vs))
	}
}

func TestRegisterRefusesAnInvalidModel(t *testing.T) {
	e := mustBuiltinEnv(t)
	tm := e.mustTrainedModel(t)
	if err := os.WriteFile(tm.input.Path, []byte(`{"learner": {}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	st := mustStep(t, registerSpec(`{model: steps.train.outputs.model}`, "      model: broken\n"), "register")
	bc := &pipeline.BuiltinContext{Service: e.svc, Run: &pipeline.Run{ID: "pr-0000000000bb", ProjectDir: t.TempDir()}, Step: st,
		StepRun: &pipeline.StepRun{Name: "register"}, Inputs: map[string]pipeline.ResolvedInput{"model": tm.input},
		Outputs: map[string]string{}, Log: &bytes.Buffer{}}
	err := e.svc.Builtins["register"].Run(context.Background(), bc)
	if err == nil || !strings.Contains(err.Error(), "is not a valid xgboost model") {
		t.Fatalf("register of a broken model: got %v, want a refusal naming the check", err)
	}
	if _, err := e.registry.GetRegisteredModel(context.Background(), "broken"); !mloop.IsNotFound(err) {
		t.Fatalf("a broken model was registered: %v", err)
	}
}
