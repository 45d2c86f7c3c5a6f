package pipeline_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// testEnv is a pipeline service on real SQLite, tracking, datasets and a
// local artifact folder, with a project folder to write specs into.
type testEnv struct {
	stack   *pipelinetest.Stack
	svc     *pipeline.Service
	store   *sqlstore.PipelineStore
	tr      *tracking.Service
	ds      *dataset.Service
	arts    *artifact.Store
	project string
	scratch string // a folder outside the project for test markers
}

// mustEnv returns a testEnv whose service, not yet opened, is owned by
// "test", polls every 50ms, retries after 10ms and kills steps 500ms after
// asking them to stop.
func mustEnv(t *testing.T) *testEnv {
	t.Helper()
	st := pipelinetest.NewStack(t)
	svc := st.NewService(t)
	svc.PollInterval = 50 * time.Millisecond
	svc.Executor = &pipeline.LocalExecutor{Grace: 500 * time.Millisecond}
	svc.Owner = "test"
	pipeline.SetRetryBackoff(svc, 10*time.Millisecond)
	e := &testEnv{stack: st, svc: svc, store: st.Store, tr: st.Tracking, ds: st.Datasets, arts: st.Artifacts,
		project: filepath.Join(st.Dir, "project"), scratch: filepath.Join(st.Dir, "scratch")}
	for _, d := range []string{e.project, e.scratch} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func (e *testEnv) open(t *testing.T) {
	t.Helper()
	if err := e.svc.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.svc.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

func (e *testEnv) write(t *testing.T, name, content string) {
	t.Helper()
	p := filepath.Join(e.project, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) submit(t *testing.T, spec string, params map[string]string) *pipeline.Run {
	t.Helper()
	e.write(t, "mloop.yaml", spec)
	r, err := e.svc.Submit(context.Background(), pipeline.SubmitRequest{
		SpecFile: filepath.Join(e.project, "mloop.yaml"), ProjectDir: e.project, Spec: spec, Params: params, User: "tester"})
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	return r
}

// waitFor polls the run until cond holds, failing after a deadline.
func (e *testEnv) waitFor(t *testing.T, id string, what string, cond func(*pipeline.Run) bool) *pipeline.Run {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r, err := e.svc.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s: timed out waiting for %s; run is %s, steps %s", id, what, r.Status, stepStates(r))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (e *testEnv) waitDone(t *testing.T, id string) *pipeline.Run {
	t.Helper()
	return e.waitFor(t, id, "the end", func(r *pipeline.Run) bool { return r.Status.Done() })
}

func stepStates(r *pipeline.Run) string {
	var b strings.Builder
	for _, s := range r.Steps {
		b.WriteString(s.Name + "=" + string(s.Status) + "(" + s.Error + ") ")
	}
	return b.String()
}

func wantStep(t *testing.T, r *pipeline.Run, name string, want pipeline.StepStatus) *pipeline.StepRun {
	t.Helper()
	s := r.Step(name)
	if s == nil {
		t.Fatalf("run %s has no step %s", r.ID, name)
	}
	if s.Status != want {
		t.Fatalf("step %s: got status %s (%s), want %s; explain %q", name, s.Status, s.Error, want, s.Explain)
	}
	return s
}

// readArtifact returns the content of an artifact by URI.
func (e *testEnv) readArtifact(t *testing.T, uri string) string {
	t.Helper()
	key, err := e.arts.KeyOf(uri)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.arts.Get(context.Background(), key)
	if err != nil {
		t.Fatalf("artifact %s: %v", uri, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tag(r *tracking.Run, key string) string {
	for _, t := range r.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// pushDataset stores a one-file CSV dataset version.
func (e *testEnv) pushDataset(t *testing.T, name, csv string) *dataset.Version {
	t.Helper()
	ctx := context.Background()
	sum := sha256.Sum256([]byte(csv))
	hx := hex.EncodeToString(sum[:])
	if _, _, err := e.ds.Blobs.Put(ctx, hx, strings.NewReader(csv)); err != nil {
		t.Fatal(err)
	}
	v, _, err := e.ds.CreateVersion(ctx, name, dataset.CreateRequest{Files: []dataset.File{
		{Path: "part.csv", SHA256: hx, Size: int64(len(csv)), Format: dataset.FormatCSV}}})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

const dagSpec = `name: demo
params:
  n: "3"
steps:
  prepare:
    run: 'cat ${{ inputs.rows }}/part.csv > ${{ outputs.data }}; echo prepared-${{ params.n }} >> ${{ outputs.data }}'
    inputs:
      rows: data://flights@latest
      code: prep.txt
    outputs:
      data: data.txt
  train:
    run: [sh, -c, 'cat "$1" > "$2" && echo "{\"auc\": 0.9, \"slices\": {\"a\": {\"auc\": 0.5}}}" > "$3" && env > "$4"', sh, "${{ inputs.data }}", "${{ outputs.model }}", "${{ outputs.metrics }}", "${{ outputs.env }}"]
    inputs:
      data: steps.prepare.outputs.data
      code: train.txt
    outputs:
      model: model.txt
      metrics: {path: metrics.json, type: metrics}
      env: env.txt
  report:
    run: 'mkdir -p ${{ outputs.report }} && cp ${{ inputs.model }} ${{ outputs.report }}/report.txt'
    inputs:
      model: steps.train.outputs.model
    outputs:
      report: {path: out/report, type: folder}
`

func TestRunner_DAGCachingExplainTracking(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	e.open(t)
	v := e.pushDataset(t, "flights", "a,b\n1,2\n")
	e.write(t, "prep.txt", "prep v1")
	e.write(t, "train.txt", "train v1")

	r := e.waitDone(t, e.submit(t, dagSpec, nil).ID)
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("first run: got %s (%s), want succeeded; steps %s", r.Status, r.Error, stepStates(r))
	}
	if pin := r.Datasets["flights@latest"]; pin.Ref != v.Ref() || pin.Hash != v.Digest {
		t.Errorf("pinned dataset: got %+v, want %s %s", pin, v.Ref(), v.Digest)
	}
	for _, n := range []string{"prepare", "train", "report"} {
		s := wantStep(t, r, n, pipeline.StepSucceeded)
		if len(s.Explain) == 0 || s.Explain[0] != "no earlier result for this step" {
			t.Errorf("step %s explain: got %q, want no earlier result", n, s.Explain)
		}
	}
	// Outputs flowed between steps and were uploaded.
	report := r.Step("report").Outputs["report"]
	if !report.Dir {
		t.Errorf("report output: got %+v, want a folder", report)
	}
	if got := e.readArtifact(t, report.URI+"/report.txt"); got != "a,b\n1,2\nprepared-3\n" {
		t.Errorf("report content: got %q", got)
	}

	// MLflow: a parent run and nested step runs.
	parent, err := e.tr.GetRun(ctx, r.MLflowRunID)
	if err != nil {
		t.Fatal(err)
	}
	if parent.Info.Status != tracking.RunFinished || parent.Info.RunName != r.ID || tag(parent, "mloop.pipeline_run_id") != r.ID {
		t.Errorf("parent run: got %+v tags %v", parent.Info, parent.Tags)
	}
	exp, err := e.tr.GetExperimentByName(ctx, "demo")
	if err != nil || exp.ID != parent.Info.ExperimentID {
		t.Fatalf("experiment demo: %v %v", exp, err)
	}
	train := r.Step("train")
	tr, err := e.tr.GetRun(ctx, train.MLflowRunID)
	if err != nil {
		t.Fatal(err)
	}
	if tag(tr, "mlflow.parentRunId") != r.MLflowRunID || tag(tr, "mloop.cached") != "false" || tr.Info.Status != tracking.RunFinished {
		t.Errorf("train run: got %+v tags %v", tr.Info, tr.Tags)
	}
	metrics := map[string]float64{}
	for _, m := range tr.Metrics {
		metrics[m.Key] = m.Value
	}
	if metrics["auc"] != 0.9 || metrics["slice/a/auc"] != 0.5 {
		t.Errorf("train metrics: got %v", metrics)
	}
	envText, err := os.ReadFile(filepath.Join(e.svc.WorkDir, "runs", r.ID, "train", "outputs", "env.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MLFLOW_RUN_ID=" + train.MLflowRunID, "MLOOP_STEP=train", "MLOOP_RUN_ID=" + r.ID, "MLFLOW_EXPERIMENT_ID=" + exp.ID} {
		if !strings.Contains(string(envText), want+"\n") {
			t.Errorf("step environment lacks %s:\n%s", want, envText)
		}
	}
	if e.readArtifact(t, tr.Info.ArtifactURI+"/log.txt") == "" {
		t.Error("train log artifact is empty")
	}
	rc, err := e.svc.OpenLog(ctx, r.ID, "train")
	if err != nil {
		t.Fatal(err)
	}
	logText, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.Contains(string(logText), "--- attempt 1/1") {
		t.Errorf("train log: got %q", logText)
	}
	// The dataset version's lineage finds the step that read it.
	runs, err := e.ds.VersionRuns(ctx, dataset.Ref{Name: "flights", Version: v.Version})
	if err != nil || len(runs) != 1 || runs[0].RunID != r.Step("prepare").MLflowRunID {
		t.Errorf("dataset lineage: got %+v, %v; want the prepare step run", runs, err)
	}
	edges, err := e.store.Edges(ctx, pipeline.Node{Kind: pipeline.NodeDataset, ID: v.Ref()}, pipeline.Down, 0)
	if err != nil || len(edges) == 0 {
		t.Errorf("lineage edges from %s: got %v, %v", v.Ref(), edges, err)
	}

	// The same inputs again: everything cached.
	r2 := e.waitDone(t, e.submit(t, dagSpec, nil).ID)
	if r2.Status != pipeline.RunSucceeded {
		t.Fatalf("second run: got %s (%s)", r2.Status, r2.Error)
	}
	for _, n := range []string{"prepare", "train", "report"} {
		s := wantStep(t, r2, n, pipeline.StepCached)
		if s.CachedFrom != r.ID || len(s.Explain) != 1 || s.Explain[0] != "cache hit: same inputs as run "+r.ID {
			t.Errorf("step %s: cached from %q, explain %q", n, s.CachedFrom, s.Explain)
		}
	}
	if _, err := os.Stat(filepath.Join(e.svc.WorkDir, "runs", r2.ID)); err == nil {
		t.Error("a fully cached run wrote step folders (it should download nothing)")
	}
	ctr, err := e.tr.GetRun(ctx, r2.Step("train").MLflowRunID)
	if err != nil {
		t.Fatal(err)
	}
	if tag(ctr, "mloop.cached") != "true" || tag(ctr, "mloop.cached_from") != train.MLflowRunID || tag(ctr, "mlflow.parentRunId") != r2.MLflowRunID {
		t.Errorf("cached train run tags: %v", ctr.Tags)
	}

	// A changed code file re-runs its step; downstream steps whose inputs
	// did not change stay cached.
	e.write(t, "train.txt", "train v2")
	r3 := e.waitDone(t, e.submit(t, dagSpec, nil).ID)
	if r3.Status != pipeline.RunSucceeded {
		t.Fatalf("third run: got %s (%s)", r3.Status, r3.Error)
	}
	wantStep(t, r3, "prepare", pipeline.StepCached)
	wantStep(t, r3, "report", pipeline.StepCached)
	s := wantStep(t, r3, "train", pipeline.StepSucceeded)
	if len(s.Explain) != 1 || !strings.Contains(s.Explain[0], "train.txt") || !strings.Contains(s.Explain[0], "→") {
		t.Errorf("train explain: got %q, want one line naming train.txt with old → new hash", s.Explain)
	}

	// A param change re-runs prepare and everything downstream of it.
	r4 := e.waitDone(t, e.submit(t, dagSpec, map[string]string{"n": "4"}).ID)
	for _, n := range []string{"prepare", "train", "report"} {
		wantStep(t, r4, n, pipeline.StepSucceeded)
	}
	if ex := r4.Step("prepare").Explain; len(ex) == 0 || !strings.Contains(strings.Join(ex, "\n"), "command changed") {
		t.Errorf("prepare explain after a param change: %q", ex)
	}
}

func TestRunner_ParallelStepsOverlap(t *testing.T) {
	e := mustEnv(t)
	e.open(t)
	// Each step waits until it sees the other's marker: both succeed only
	// if they run at the same time.
	step := func(me, other string) string {
		return `    run: 'touch $MARK/` + me + `; i=0; while [ ! -e $MARK/` + other + ` ] && [ $i -lt 400 ]; do sleep 0.025; i=$((i+1)); done; test -e $MARK/` + other + ` && echo yes > ${{ outputs.o }}'
    env: {MARK: "` + e.scratch + `"}
    outputs: {o: o.txt}
`
	}
	spec := "name: par\nsteps:\n  a:\n" + step("a", "b") + "  b:\n" + step("b", "a")
	r := e.waitDone(t, e.submit(t, spec, nil).ID)
	if r.Status != pipeline.RunSucceeded {
		t.Fatalf("got %s (%s), steps %s; want both steps to see each other", r.Status, r.Error, stepStates(r))
	}
}

func TestRunner_FailureRetriesAndSkips(t *testing.T) {
	e := mustEnv(t)
	e.open(t)
	spec := `name: fails
steps:
  flaky:
    run: 'n=$(cat $CNT 2>/dev/null || echo 0); n=$((n+1)); echo $n > $CNT; echo attempt $n; [ $n -ge 2 ] && echo ok > ${{ outputs.o }}'
    retries: 2
    env: {CNT: "` + filepath.Join(e.scratch, "count") + `"}
    outputs: {o: o.txt}
  bad:
    run: 'echo partial > ${{ outputs.o }}; echo boom >&2; exit 3'
    outputs: {o: o.txt}
  after:
    run: 'cat ${{ inputs.x }}'
    inputs: {x: steps.bad.outputs.o}
    outputs: {o: o.txt}
  later:
    run: 'cat ${{ inputs.x }}'
    inputs: {x: steps.after.outputs.o}
`
	r := e.waitDone(t, e.submit(t, spec, nil).ID)
	if r.Status != pipeline.RunFailed || !strings.Contains(r.Error, "bad") {
		t.Fatalf("got %s (%q), want failed naming step bad", r.Status, r.Error)
	}
	flaky := wantStep(t, r, "flaky", pipeline.StepSucceeded)
	if flaky.Attempt != 2 {
		t.Errorf("flaky: got %d attempts, want 2", flaky.Attempt)
	}
	bad := wantStep(t, r, "bad", pipeline.StepFailed)
	if bad.Error != "exit status 3" || bad.ExitCode == nil || *bad.ExitCode != 3 {
		t.Errorf("bad: got error %q exit %v", bad.Error, bad.ExitCode)
	}
	if s := wantStep(t, r, "after", pipeline.StepSkipped); s.Error != "upstream step bad failed" {
		t.Errorf("after: got error %q", s.Error)
	}
	if s := wantStep(t, r, "later", pipeline.StepSkipped); s.Error != "upstream step after skipped" {
		t.Errorf("later: got error %q", s.Error)
	}
	rc, err := e.svc.OpenLog(context.Background(), r.ID, "bad")
	if err != nil {
		t.Fatal(err)
	}
	logText, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Contains(logText, []byte("boom")) {
		t.Errorf("bad's log: got %q, want the step's stderr", logText)
	}
	flakyLog, _ := os.ReadFile(e.svc.LogPath(r.ID, "flaky"))
	if !bytes.Contains(flakyLog, []byte("--- attempt 1/3")) || !bytes.Contains(flakyLog, []byte("--- attempt 2/3")) {
		t.Errorf("flaky's log: got %q, want two attempts", flakyLog)
	}
	// The partial output and the log were uploaded to the failed step's run.
	tr, err := e.tr.GetRun(context.Background(), bad.MLflowRunID)
	if err != nil {
		t.Fatal(err)
	}
	if tr.Info.Status != tracking.RunFailed {
		t.Errorf("bad's MLflow run: got %s, want FAILED", tr.Info.Status)
	}
	if got := e.readArtifact(t, tr.Info.ArtifactURI+"/outputs/o.txt"); got != "partial\n" {
		t.Errorf("partial output: got %q", got)
	}
	if got := e.readArtifact(t, tr.Info.ArtifactURI+"/log.txt"); !strings.Contains(got, "boom") {
		t.Errorf("uploaded log: got %q", got)
	}
}

func TestRunner_BadSteps(t *testing.T) {
	e := mustEnv(t)
	e.svc.StepParallelism = 1 // so that a stray write is attributed to one step
	e.open(t)
	spec := `name: bad
steps:
  slow:
    run: 'sleep 30'
    timeout: 300ms
  lazy:
    run: 'true'
    outputs: {result: result.txt}
  messy:
    run: 'echo x > stray.txt'
`
	r := e.waitDone(t, e.submit(t, spec, nil).ID)
	if r.Status != pipeline.RunFailed {
		t.Fatalf("got %s, want failed", r.Status)
	}
	if s := wantStep(t, r, "slow", pipeline.StepFailed); s.Error != "killed after timeout 300ms" {
		t.Errorf("slow: got %q", s.Error)
	}
	lazy := wantStep(t, r, "lazy", pipeline.StepFailed)
	for _, want := range []string{"step lazy did not write its declared output result", "$MLOOP_OUTPUT_RESULT", "result.txt"} {
		if !strings.Contains(lazy.Error, want) {
			t.Errorf("lazy: got %q, want it to contain %q", lazy.Error, want)
		}
	}
	messy := wantStep(t, r, "messy", pipeline.StepFailed)
	for _, want := range []string{"outside its outputs folder", "created stray.txt", "$MLOOP_OUTPUTS_DIR"} {
		if !strings.Contains(messy.Error, want) {
			t.Errorf("messy: got %q, want it to contain %q", messy.Error, want)
		}
	}
}

func TestRunner_Cancel(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()

	// A queued run (no runner yet) is canceled at once.
	q := e.submit(t, "name: c\nsteps:\n  a:\n    run: 'true'\n", nil)
	got, err := e.svc.Cancel(ctx, q.ID)
	if err != nil || got.Status != pipeline.RunCanceled || got.Steps[0].Status != pipeline.StepSkipped {
		t.Fatalf("cancel queued: got %+v, %v", got, err)
	}
	if _, err := e.svc.Cancel(ctx, q.ID); mloop.ErrorCode(err) != mloop.ECONFLICT {
		t.Errorf("cancel a canceled run: got %v, want ECONFLICT", err)
	}

	e.open(t)
	spec := "name: c\nsteps:\n  a:\n    run: 'sleep 30'\n    outputs: {o: o.txt}\n  b:\n    run: 'cat ${{ inputs.x }}'\n    inputs: {x: steps.a.outputs.o}\n"
	r := e.submit(t, spec, nil)
	e.waitFor(t, r.ID, "step a to start", func(r *pipeline.Run) bool { return r.Step("a").Handle != "" })
	if _, err := e.svc.Cancel(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	done := e.waitDone(t, r.ID)
	if done.Status != pipeline.RunCanceled {
		t.Fatalf("got %s, want canceled", done.Status)
	}
	wantStep(t, done, "a", pipeline.StepCanceled)
	wantStep(t, done, "b", pipeline.StepSkipped)
	parent, err := e.tr.GetRun(ctx, done.MLflowRunID)
	if err != nil || parent.Info.Status != tracking.RunKilled {
		t.Errorf("parent MLflow run: got %+v, %v; want KILLED", parent, err)
	}
	step, err := e.tr.GetRun(ctx, done.Step("a").MLflowRunID)
	if err != nil || step.Info.Status != tracking.RunKilled {
		t.Errorf("step MLflow run: got %+v, %v; want KILLED", step, err)
	}
}

func TestRunner_SubmitErrors(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	req := func(spec string) pipeline.SubmitRequest {
		return pipeline.SubmitRequest{SpecFile: filepath.Join(e.project, "mloop.yaml"), ProjectDir: e.project, Spec: spec}
	}
	_, err := e.svc.Submit(ctx, req("name: x\nsteps:\n  a:\n    run: 'true'\n    bogus: 1\n"))
	var se *pipeline.SpecError
	if !errors.As(err, &se) || se.Line != 5 {
		t.Errorf("spec error: got %v, want a *SpecError at line 5", err)
	}
	_, err = e.svc.Submit(ctx, req("name: x\nsteps:\n  a:\n    run: 'true'\n    inputs: {d: data://nope@latest}\n"))
	if mloop.ErrorCode(err) != mloop.ENOTFOUND || !strings.Contains(err.Error(), `step "a": input d`) {
		t.Errorf("missing dataset: got %v", err)
	}
}

// A step that writes into its dataset input (read-only, but root may) does
// not change the version for later steps: the copy is checked and made again.
func TestRunnerDatasetInputStaysIntact(t *testing.T) {
	e := mustEnv(t)
	e.open(t)
	e.pushDataset(t, "flights", "a,b\n1,2\n")
	const spec = `name: ds
steps:
  prep:
    run: 'cat ${{ inputs.rows }}/part.csv > ${{ outputs.out }}; chmod u+w ${{ inputs.rows }}/part.csv 2>/dev/null; echo "9,9" >> ${{ inputs.rows }}/part.csv || true'
    inputs:
      rows: data://flights@latest
      code: prep.txt
    outputs:
      out: out.csv
`
	for i, v := range []string{"v1", "v2"} {
		e.write(t, "prep.txt", v) // a new code input: the step runs again
		r := e.waitDone(t, e.submit(t, spec, nil).ID)
		if r.Status != pipeline.RunSucceeded {
			t.Fatalf("run %d: %s %s", i+1, r.Status, r.Error)
		}
		if got := e.readArtifact(t, r.Step("prep").Outputs["out"].URI); got != "a,b\n1,2\n" {
			t.Fatalf("run %d read %q from its dataset input, want the version's bytes", i+1, got)
		}
	}
}

// A server that stops on purpose does not spend a step's attempts: a step
// without retries interrupted by Close runs again after the next Open.
func TestRunnerShutdownGivesTheAttemptBack(t *testing.T) {
	e := mustEnv(t)
	marker := filepath.Join(e.scratch, "started")
	spec := `name: stop
steps:
  slow:
    run: 'echo x >> ` + marker + `; if [ "$(wc -l < ` + marker + `)" -lt 2 ]; then sleep 30; fi; echo done > ${{ outputs.o }}'
    outputs: {o: o.txt}
`
	e.open(t)
	r := e.submit(t, spec, nil)
	deadline := time.Now().Add(20 * time.Second)
	for {
		// The shell creates the file before echo writes its line: wait for
		// the line, or the retry would count itself as the first attempt
		// and sleep (seen once in CI).
		if b, err := os.ReadFile(marker); err == nil && len(b) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the step did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	got, err := e.svc.GetRun(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := got.Step("slow"); got.Status != pipeline.RunRunning || st.Status != pipeline.StepPending || st.Attempt != 0 {
		t.Fatalf("after Close: run %s, step %s attempt %d; want running, pending, 0", got.Status, st.Status, st.Attempt)
	}
	e.open(t)
	done := e.waitDone(t, r.ID)
	if st := done.Step("slow"); done.Status != pipeline.RunSucceeded || st.Attempt != 1 {
		t.Fatalf("after reopening: run %s (%s), step attempt %d; want succeeded at attempt 1", done.Status, done.Error, st.Attempt)
	}
}
