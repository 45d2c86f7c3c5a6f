package pipeline_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// builtinEnv is a pipeline service wired to real tracking, registry and
// dataset services on a fresh SQLite database and a local artifact store,
// as cmd/mloop wires them.
type builtinEnv struct {
	svc          *pipeline.Service
	db           *sqlstore.DB
	tracking     *tracking.Service
	registry     *registry.Service
	datasets     *dataset.Service
	experimentID string
	dir          string
}

// mustBuiltinEnv opens a builtinEnv in a temp folder; its service is not
// opened.
func mustBuiltinEnv(tb testing.TB) *builtinEnv {
	tb.Helper()
	st := pipelinetest.NewStack(tb)
	expID, err := st.Tracking.CreateExperiment(context.Background(), "builtins", "file://"+filepath.ToSlash(filepath.Join(st.Dir, "mlruns")), nil)
	if err != nil {
		tb.Fatalf("create experiment: %v", err)
	}
	return &builtinEnv{svc: st.NewService(tb), db: st.DB, tracking: st.Tracking, registry: st.Registry,
		datasets: st.Datasets, experimentID: expID, dir: st.Dir}
}

// mustRun creates an MLflow run in the env's experiment.
func (e *builtinEnv) mustRun(tb testing.TB, name string) *tracking.Run {
	tb.Helper()
	r, err := e.tracking.CreateRun(context.Background(), tracking.CreateRunRequest{ExperimentID: e.experimentID, RunName: name})
	if err != nil {
		tb.Fatalf("create run %s: %v", name, err)
	}
	return r
}

// mustChampion registers a version of model from a new run, tagged with
// metrics (no tag when metrics is ""), and points alias at it.
func (e *builtinEnv) mustChampion(tb testing.TB, model, alias, metrics string) *registry.ModelVersion {
	tb.Helper()
	ctx := context.Background()
	if _, err := e.registry.GetRegisteredModel(ctx, model); mloop.IsNotFound(err) {
		if _, err := e.registry.CreateRegisteredModel(ctx, model, nil, ""); err != nil {
			tb.Fatalf("create model: %v", err)
		}
	}
	run := e.mustRun(tb, "train-champion")
	var tags []registry.Tag
	if metrics != "" {
		tags = append(tags, registry.Tag{Key: pipeline.MetricsTag, Value: metrics})
	}
	mv, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionRequest{
		Name: model, Source: run.Info.ArtifactURI + "/model", RunID: run.Info.RunID, Tags: tags})
	if err != nil {
		tb.Fatalf("create version: %v", err)
	}
	if alias != "" {
		if err := e.registry.SetRegisteredModelAlias(ctx, model, alias, strconv.FormatInt(mv.Version, 10)); err != nil {
			tb.Fatalf("set alias: %v", err)
		}
	}
	return mv
}

// mustStep parses a one-or-more-step spec and returns the named step.
func mustStep(tb testing.TB, spec, name string) *pipeline.Step {
	tb.Helper()
	s, err := pipeline.ParseSpec("mloop.yaml", []byte(spec))
	if err != nil {
		tb.Fatalf("parse spec: %v", err)
	}
	st := s.Step(name)
	if st == nil {
		tb.Fatalf("no step %s", name)
	}
	return st
}

// gateSpec is a pipeline with an eval step writing metrics and a gate step
// configured by with (indented YAML under `with:`).
func gateSpec(with string) string {
	return `name: p
steps:
  eval:
    run: echo
    outputs:
      metrics: {path: metrics.json, type: metrics}
  gate:
    uses: gate
    inputs:
      metrics: steps.eval.outputs.metrics
    outputs:
      verdict: {path: verdict.json}
    with:
` + with
}

// gateRun runs the gate step of gateSpec(with) on candidate metrics and
// returns the context, the decoded verdict and Run's error.
func (e *builtinEnv) gateRun(tb testing.TB, with, metrics string) (*pipeline.BuiltinContext, *pipeline.GateVerdict, error) {
	tb.Helper()
	st := mustStep(tb, gateSpec(with), "gate")
	g := e.svc.Builtins["gate"]
	if err := g.Check(st); err != nil {
		tb.Fatalf("Check: %v", err)
	}
	dir := tb.TempDir()
	mpath := filepath.Join(dir, "metrics.json")
	if err := os.WriteFile(mpath, []byte(metrics), 0o644); err != nil {
		tb.Fatal(err)
	}
	bc := &pipeline.BuiltinContext{
		Service: e.svc, Run: &pipeline.Run{ID: "pr-000000000001", ProjectDir: dir}, Step: st,
		StepRun: &pipeline.StepRun{Name: "gate", MLflowRunID: e.mustRun(tb, "gate").Info.RunID},
		Inputs: map[string]pipeline.ResolvedInput{"metrics": {Name: "metrics", Kind: pipeline.InputStep, Path: mpath,
			Step: "eval", Output: "metrics", Record: &pipeline.OutputRecord{URI: "mlflow-artifacts:/x/outputs/metrics", Type: "metrics"}}},
		Outputs: map[string]string{"verdict": filepath.Join(dir, "verdict.json")},
		Log:     &bytes.Buffer{},
	}
	err := g.Run(context.Background(), bc)
	data, rerr := os.ReadFile(bc.Outputs["verdict"])
	if rerr != nil {
		if err == nil {
			tb.Fatalf("no verdict written: %v", rerr)
		}
		return bc, nil, err
	}
	var v pipeline.GateVerdict
	if jerr := json.Unmarshal(data, &v); jerr != nil {
		tb.Fatalf("verdict JSON: %v\n%s", jerr, data)
	}
	return bc, &v, err
}

// verdicts returns "metric slice kind verdict" of every result.
func verdicts(v *pipeline.GateVerdict) []string {
	var out []string
	for _, r := range v.Thresholds {
		out = append(out, strings.Join(strings.Fields(r.Metric+" "+r.Slice+" "+r.Kind+" "+r.Verdict), " "))
	}
	return out
}

func sameStrings(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestGateValueThresholds(t *testing.T) {
	e := mustBuiltinEnv(t)
	bc, v, err := e.gateRun(t, `
      thresholds:
        - {metric: auc, lower: 0.7, upper: 0.95}
        - {metric: logloss, upper: 0.3}
`, `{"auc": 0.81, "logloss": 0.42, "note": "x"}`)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if want := []string{"auc value pass", "auc value pass", "logloss value fail"}; !sameStrings(verdicts(v), want) {
		t.Fatalf("verdicts = %q, want %q", verdicts(v), want)
	}
	if v.Blessed {
		t.Errorf("blessed with a failed threshold")
	}
	r := v.Thresholds[2]
	if r.Op != "<=" || r.Bound == nil || *r.Bound != 0.3 || r.Candidate == nil || *r.Candidate != 0.42 || r.Champion != nil {
		t.Errorf("logloss result = %+v", r)
	}
	if v.Champion != nil || !strings.Contains(v.ChampionReason, "no model") {
		t.Errorf("champion = %v (%q), want none", v.Champion, v.ChampionReason)
	}
	if v.Metrics == nil || v.Metrics.Values["auc"] != 0.81 {
		t.Errorf("verdict metrics = %+v, want the candidate's", v.Metrics)
	}
	if bc.Metrics["gate.blessed"] != 0 || bc.Metrics["gate.failed"] != 1 || bc.Metrics["gate.passed"] != 2 {
		t.Errorf("metrics = %v", bc.Metrics)
	}
	if bc.Tags["mloop.gate.blessed"] != "false" || bc.Tags["mloop.gate.champion"] != "none" {
		t.Errorf("tags = %v", bc.Tags)
	}
	log := bc.Log.(*bytes.Buffer).String()
	for _, s := range []string{"METRIC", "logloss", "fail", "blessed: no"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}

	// The same gate blesses a better candidate.
	_, v, err = e.gateRun(t, `
      thresholds:
        - {metric: auc, lower: 0.7, upper: 0.95}
        - {metric: logloss, upper: 0.5}
`, `{"auc": 0.81, "logloss": 0.42}`)
	if err != nil || !v.Blessed {
		t.Fatalf("blessed = %v, err = %v; want blessed", v.Blessed, err)
	}
}

func TestGateFailWhenNotBlessed(t *testing.T) {
	e := mustBuiltinEnv(t)
	_, v, err := e.gateRun(t, `
      fail_when_not_blessed: true
      thresholds:
        - {metric: auc, lower: 0.9}
`, `{"auc": 0.81}`)
	if err == nil || !strings.Contains(err.Error(), "not blessed") || !strings.Contains(err.Error(), "auc 0.81 is not >= 0.9") {
		t.Fatalf("err = %v, want not blessed naming the threshold", err)
	}
	if v == nil || v.Blessed {
		t.Fatalf("verdict = %+v, want one written, not blessed", v)
	}
}

func TestGateChangeThresholds(t *testing.T) {
	e := mustBuiltinEnv(t)
	champ := e.mustChampion(t, "delays", "champion", `{"values":{"auc":0.8,"logloss":0.4},"slices":{"origin=SFO":{"auc":0.7}}}`)
	// Another version holds challenger only: it must not be the baseline.
	e.mustChampion(t, "delays", "challenger", `{"values":{"auc":0.99,"logloss":0.01}}`)

	bc, v, err := e.gateRun(t, `
      model: delays
      thresholds:
        - metric: auc
          change: {direction: higher, absolute: 0.01}
        - metric: auc
          change: {direction: higher, relative: 0.001}
        - metric: logloss
          change: {direction: lower, absolute: 0.005}
        - metric: auc
          slice: "origin=SFO"
          change: {direction: higher, absolute: 0}
        - metric: auc
          slice: "origin=LAX"
          change: {direction: higher, absolute: 0}
`, `{"auc": 0.795, "logloss": 0.41, "slices": {"origin=SFO": {"auc": 0.7}, "origin=LAX": {"auc": 0.9}}}`)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{
		"auc change pass",               // 0.795 >= 0.8 - 0.01
		"auc change fail",               // 0.795 < 0.8 - 0.0008
		"logloss change fail",           // 0.41 > 0.4 + 0.005
		"auc origin=SFO change pass",    // equal to the champion
		"auc origin=LAX change skipped", // the champion has no such slice
	}
	if !sameStrings(verdicts(v), want) {
		t.Fatalf("verdicts = %q, want %q", verdicts(v), want)
	}
	if b := v.Thresholds[0].Bound; b == nil || *b < 0.79-1e-12 || *b > 0.79+1e-12 {
		t.Errorf("bound of absolute change = %v, want 0.79", b)
	}
	if b := v.Thresholds[1].Bound; b == nil || *b < 0.7992-1e-12 || *b > 0.7992+1e-12 {
		t.Errorf("bound of relative change = %v, want 0.7992", b)
	}
	if b := v.Thresholds[2]; b.Op != "<=" || b.Bound == nil || *b.Bound < 0.405-1e-12 || *b.Bound > 0.405+1e-12 || b.Champion == nil || *b.Champion != 0.4 {
		t.Errorf("lower-is-better result = %+v", b)
	}
	ref := "delays/" + strconv.FormatInt(champ.Version, 10)
	if v.Champion == nil || v.Champion.String() != ref || bc.Tags["mloop.gate.champion"] != ref {
		t.Errorf("champion = %v, tag %q; want %s", v.Champion, bc.Tags["mloop.gate.champion"], ref)
	}
	if v.Blessed {
		t.Errorf("blessed with failed thresholds")
	}
	found := false
	for _, ed := range bc.Edges {
		if ed.From == (pipeline.Node{Kind: pipeline.NodeModel, ID: ref}) && ed.To.Kind == pipeline.NodeStepRun && ed.To.ID == bc.StepRun.MLflowRunID {
			found = true
		}
	}
	if !found {
		t.Errorf("edges = %+v, want champion → step run", bc.Edges)
	}

	// A custom alias picks another baseline.
	_, v, err = e.gateRun(t, `
      model: delays
      champion_alias: challenger
      thresholds:
        - metric: auc
          change: {direction: higher, absolute: 0.01}
`, `{"auc": 0.795}`)
	if err != nil || v.Champion == nil || v.Champion.Version != "2" || v.Thresholds[0].Verdict != pipeline.VerdictFail {
		t.Fatalf("challenger baseline: verdict %+v, err %v", v, err)
	}
}

func TestGateNoChampionSkipsChangeThresholds(t *testing.T) {
	e := mustBuiltinEnv(t)
	with := `
      model: delays
      thresholds:
        - metric: auc
          lower: 0.5
          change: {direction: higher, absolute: 0.01}
`
	check := func(t *testing.T, reason string) {
		t.Helper()
		bc, v, err := e.gateRun(t, with, `{"auc": 0.6}`)
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		if want := []string{"auc value pass", "auc change skipped"}; !sameStrings(verdicts(v), want) {
			t.Fatalf("verdicts = %q, want %q", verdicts(v), want)
		}
		if !v.Blessed || bc.Metrics["gate.skipped"] != 1 {
			t.Errorf("blessed = %v, metrics %v; skipped thresholds must not block", v.Blessed, bc.Metrics)
		}
		if r := v.Thresholds[1].Reason; !strings.Contains(r, reason) {
			t.Errorf("reason = %q, want it to contain %q", r, reason)
		}
	}
	t.Run("model not registered", func(t *testing.T) { check(t, "model delays is not registered yet") })
	e.mustChampion(t, "delays", "", `{"values":{"auc":0.8}}`)
	t.Run("no alias", func(t *testing.T) { check(t, "no version with alias champion") })
	e.mustChampion(t, "delays", "champion", "")
	t.Run("no metrics tag", func(t *testing.T) { check(t, "has no mloop.metrics tag") })
}

func TestGateSlicesAndMissingMetrics(t *testing.T) {
	e := mustBuiltinEnv(t)
	_, v, err := e.gateRun(t, `
      thresholds:
        - {metric: auc, slice: "*", lower: 0.8}
        - {metric: f1, lower: 0.5}
        - {metric: auc, slice: "origin=JFK", lower: 0.5}
        - {metric: recall, slice: "origin=SFO", lower: 0.5}
`, `{"auc": 0.81, "slices": {"origin=SFO": {"auc": 0.78}, "origin=LAX": {"auc": 0.83}}}`)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []string{"auc origin=LAX value pass", "auc origin=SFO value fail", "f1 value fail", "auc origin=JFK value fail", "recall origin=SFO value fail"}
	if !sameStrings(verdicts(v), want) {
		t.Fatalf("verdicts = %q, want %q", verdicts(v), want)
	}
	for i, reason := range map[int]string{2: "the candidate has no metric f1", 3: `no slice "origin=JFK"`, 4: `no metric recall in slice "origin=SFO"`} {
		if r := v.Thresholds[i]; !strings.Contains(r.Reason, reason) || r.Candidate != nil {
			t.Errorf("result %d = %+v, want reason %q and no candidate value", i, r, reason)
		}
	}

	// "*" on metrics without slices fails rather than passing vacuously.
	_, v, err = e.gateRun(t, `
      thresholds:
        - {metric: auc, slice: "*", lower: 0.5}
`, `{"auc": 0.81}`)
	if err != nil || v.Blessed || v.Thresholds[0].Verdict != pipeline.VerdictFail || !strings.Contains(v.Thresholds[0].Reason, "no slices") {
		t.Fatalf("verdict = %+v, err %v; want a failure for no slices", v, err)
	}
}

func TestGateCacheKeyExtra(t *testing.T) {
	e := mustBuiltinEnv(t)
	st := mustStep(t, gateSpec(`
      model: delays
      thresholds: [{metric: auc, change: {direction: higher, absolute: 0}}]
`), "gate")
	ck, ok := e.svc.Builtins["gate"].(pipeline.CacheKeyer)
	if !ok {
		t.Fatal("gate does not implement CacheKeyer")
	}
	extra := func() string {
		m, err := ck.CacheKeyExtra(context.Background(), e.svc, nil, st, nil)
		if err != nil {
			t.Fatalf("CacheKeyExtra: %v", err)
		}
		return m["champion"]
	}
	if got := extra(); got != "none" {
		t.Errorf("before a champion: %q, want none", got)
	}
	e.mustChampion(t, "delays", "champion", `{"values":{"auc":0.8}}`)
	if got := extra(); got != "delays/1" {
		t.Errorf("with champion 1: %q", got)
	}
	e.mustChampion(t, "delays", "champion", `{"values":{"auc":0.9}}`)
	if got := extra(); got != "delays/2" {
		t.Errorf("with champion 2: %q", got)
	}
}

func TestBuiltinCheckErrors(t *testing.T) {
	e := mustBuiltinEnv(t)
	head := `name: p
steps:
  train:
    run: echo
    outputs:
      model: {path: model.json, type: model, flavor: xgboost}
      metrics: {path: metrics.json, type: metrics}
`
	tests := []struct {
		name, step, want string
	}{
		{"gate ok", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    outputs: {verdict: {path: v.json}}
    with:
      model: m
      champion_alias: best
      fail_when_not_blessed: true
      thresholds:
        - {metric: auc, slice: "*", lower: 0, upper: 1, change: {direction: lower, relative: 0.1}}
`, ""},
		{"gate number", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with:
      thresholds:
        - {metric: auc, lower: 0.7}
        - {metric: auc, lower: high}
`, `step gate: with.thresholds[1].lower must be a number, not a string ("high")`},
		{"gate unknown key", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with:
      threshold: []
`, `step gate: with has no key "threshold" (known keys: model, champion_alias, fail_when_not_blessed, thresholds)`},
		{"gate nested unknown key", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with:
      thresholds: [{metric: auc, change: {direction: higher, absolut: 1}}]
`, `with.thresholds[0].change has no key "absolut"`},
		{"gate no thresholds", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {model: m}
`, "with.thresholds: give at least one threshold"},
		{"gate no bound", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {thresholds: [{metric: auc}]}
`, "with.thresholds[0] has no bound"},
		{"gate lower above upper", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {thresholds: [{metric: auc, lower: 0.9, upper: 0.1}]}
`, "lower (0.9) is above upper (0.1)"},
		{"gate both tolerances", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {thresholds: [{metric: auc, change: {direction: higher, absolute: 0.1, relative: 0.1}}]}
`, "give exactly one of absolute and relative"},
		{"gate bad direction", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {thresholds: [{metric: auc, change: {direction: up, absolute: 0.1}}]}
`, `change.direction must be higher (higher is better) or lower (lower is better), not "up"`},
		{"gate alias without model", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {champion_alias: x, thresholds: [{metric: auc, lower: 0}]}
`, "with.champion_alias needs with.model"},
		{"gate bool", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {fail_when_not_blessed: "yes", thresholds: [{metric: auc, lower: 0}]}
`, "with.fail_when_not_blessed must be true or false"},
		{"gate thresholds not a list", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    with: {thresholds: {metric: auc}}
`, "with.thresholds must be a list, not a mapping"},
		{"gate missing input", `
  gate:
    uses: gate
    with: {thresholds: [{metric: auc, lower: 0}]}
`, "step gate: uses: gate needs the input metrics"},
		{"gate data input", `
  gate:
    uses: gate
    inputs: {metrics: data://flights@latest}
    with: {thresholds: [{metric: auc, lower: 0}]}
`, "input metrics must be a step output such as steps.STEP.outputs.NAME"},
		{"gate unknown input", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics, extra: steps.train.outputs.model}
    with: {thresholds: [{metric: auc, lower: 0}]}
`, `uses: gate takes no input "extra" (its inputs: metrics)`},
		{"gate unknown output", `
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    outputs: {report: {path: r.json}}
    with: {thresholds: [{metric: auc, lower: 0}]}
`, `uses: gate writes no output "report" (its outputs: verdict)`},
		{"register ok", `
  register:
    uses: register
    inputs: {model: steps.train.outputs.model, metrics: steps.train.outputs.metrics}
    outputs: {version: {path: version.json}}
    with:
      model: delays
      aliases: {always: staging, blessed: [champion, prod]}
      require_blessing: false
      description: a model
      tags: {team: ml, n: 7}
`, ""},
		{"register no model", `
  register:
    uses: register
    inputs: {model: steps.train.outputs.model}
`, "step register: with.model is required"},
		{"register reserved tag", `
  register:
    uses: register
    inputs: {model: steps.train.outputs.model}
    with: {model: m, tags: {mloop.step: x}}
`, "with.tags.mloop.step: tag keys starting with mloop. are reserved"},
		{"register aliases type", `
  register:
    uses: register
    inputs: {model: steps.train.outputs.model}
    with: {model: m, aliases: {always: [1]}}
`, "with.aliases.always[0] must be a string, not a number"},
		{"register model input missing", `
  register:
    uses: register
    inputs: {metrics: steps.train.outputs.metrics}
    with: {model: m}
`, "uses: register needs the input model"},
		{"register model input is a file", `
  register:
    uses: register
    inputs: {model: model.json}
    with: {model: m}
`, "input model must be a step output"},
		{"validate ok", `
  validate:
    uses: validate
    inputs: {data: data://flights@latest}
    outputs: {report: {path: report.json}}
    with: {schema: schema.yaml, fail_on: warning}
`, ""},
		{"validate fail_on", `
  validate:
    uses: validate
    inputs: {data: data://flights@latest}
    with: {fail_on: never}
`, `step validate: with.fail_on must be error or warning, not "never"`},
		{"validate no data", `
  validate:
    uses: validate
    with: {}
`, "uses: validate needs the input data (a dataset reference"},
		{"validate two schemas", `
  validate:
    uses: validate
    inputs: {data: data://flights@latest, schema: schema.yaml}
    with: {schema: schema.yaml}
`, "give the schema once"},
		{"validate report type", `
  validate:
    uses: validate
    inputs: {data: data://flights@2}
    outputs: {report: {path: r, type: folder}}
`, "declare it with type: file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := mustStep(t, head+tt.step, strings.Fields(tt.name)[0])
			err := e.svc.Builtins[st.Uses].Check(st)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tt.want)
			}
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Errorf("error kind = %q, want %q", mloop.ErrorCode(err), mloop.EINVALID)
			}
		})
	}
}

// FuzzBuiltinWith checks that no `with:` configuration makes a built-in's
// Check panic, and that every error it returns is EINVALID.
func FuzzBuiltinWith(f *testing.F) {
	for _, s := range []string{
		`{"thresholds":[{"metric":"auc","lower":0.7,"change":{"direction":"higher","absolute":0.01}}]}`,
		`{"model":"m","aliases":{"always":"x","blessed":["a",1]},"tags":{"a":{"b":1}}}`,
		`{"schema":"s.yaml","fail_on":"error"}`,
		`{"thresholds":{"metric":null}}`,
		`{"thresholds":[{"metric":"auc","slice":"*","upper":1e308,"lower":-1e308}]}`,
		`{"require_blessing":true,"description":["x"]}`,
	} {
		f.Add(s)
	}
	builtins := pipeline.NewService(nil, nil, nil, nil, nil, "").Builtins
	f.Fuzz(func(t *testing.T, doc string) {
		var with map[string]any
		if json.Unmarshal([]byte(doc), &with) != nil {
			return
		}
		for name, b := range builtins {
			st := &pipeline.Step{Name: "s", Uses: name, With: with}
			err := b.Check(st)
			if err != nil && mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("%s: Check = %v, want EINVALID", name, err)
			}
		}
	})
}
