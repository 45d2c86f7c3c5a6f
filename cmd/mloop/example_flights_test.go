package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/realdata"
)

// flightsPython returns the Python interpreter of the flights example,
// /usr/bin/python3 or MLOOP_TEST_PYTHON. Without pandas, scikit-learn and
// xgboost the test is skipped — or fails when MLOOP_TEST_PYTHON is set, as
// scripts/test.sh does after installing them.
func flightsPython(t *testing.T) string {
	t.Helper()
	py, set := os.LookupEnv("MLOOP_TEST_PYTHON")
	if !set || py == "" {
		py = "/usr/bin/python3"
	}
	out, err := exec.Command(py, "-c", "import pandas, sklearn, xgboost").CombinedOutput()
	if err != nil {
		msg := fmt.Sprintf("examples/flights needs %s with pandas, scikit-learn and xgboost (Debian: apt-get install python3-pandas python3-sklearn python3-xgboost; scripts/test.sh installs them): %v\n%s", py, err, out)
		if set {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return py
}

// exampleRepoDir returns the repository's root folder.
func exampleRepoDir(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// splitFlights runs the example's split program as its README says:
// `go run ./examples/flights/split --in FILE --out DIR --stride N`.
func splitFlights(t *testing.T, in, out string, stride int64) {
	t.Helper()
	cmd := exec.Command("go", "run", "./examples/flights/split", "--in", in, "--out", out, "--stride", fmt.Sprint(stride))
	cmd.Dir = exampleRepoDir(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go run ./examples/flights/split: %v\n%s", err, b)
	} else {
		t.Logf("split (stride %d):\n%s", stride, b)
	}
}

// copyFlightsExample copies the files of examples/flights that a run uses into
// dir, so that the test never writes into the repository.
func copyFlightsExample(t *testing.T, dir string) string {
	t.Helper()
	src := filepath.Join(exampleRepoDir(t), "examples", "flights")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mloop.yaml", "schema.yaml", "train.py", "evaluate.py", "features.py"} {
		exampleCopyFile(t, filepath.Join(src, name), filepath.Join(dir, name))
	}
	return dir
}

func exampleCopyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// execExample runs `mloop ARGS… --server URL` against m.
func execExample(t *testing.T, m *Main, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	args = append(args, "--server", m.URL())
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustExample runs a command against m that must succeed and returns its
// stdout.
func mustExample(t *testing.T, m *Main, args ...string) string {
	t.Helper()
	code, out, errs := execExample(t, m, args...)
	if code != exitOK {
		t.Fatalf("mloop %s: got exit %d, want 0\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// exampleModelAlias returns the version of the registered model that holds alias,
// or "" when none does.
func exampleModelAlias(t *testing.T, m *Main, model, alias string) string {
	t.Helper()
	status, out := call(t, m, "GET", "/api/2.0/mlflow/registered-models/alias?name="+url.QueryEscape(model)+"&alias="+url.QueryEscape(alias), nil)
	if status != 200 {
		return ""
	}
	mv, _ := out["model_version"].(map[string]any)
	v, _ := mv["version"].(string)
	return v
}

// exampleModelVersions returns how many versions the registered model has.
func exampleModelVersions(t *testing.T, m *Main, model string) int {
	t.Helper()
	out := mustCall(t, m, "GET", "/api/2.0/mlflow/model-versions/search?filter="+url.QueryEscape("name='"+model+"'"), nil)
	vs, _ := out["model_versions"].([]any)
	return len(vs)
}

// exampleWaitFor polls cond every 100 ms until it holds or the deadline passes.
func exampleWaitFor(t *testing.T, d time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; last state: %s", d, what, state)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestExampleFlights runs examples/flights end to end, as its README does,
// on the real flights data (every flightsStride()-th flight): January and
// February pushed as flights@1; `mloop pipeline run` validates, trains on
// January, evaluates on February, gates and registers flights-delay v1 as
// champion; a second run finds every step in the cache and --explain says
// so; a dataset trigger then retrains by itself when March is pushed
// (flights@2: trained on February, evaluated on March) and registers v2.
func TestExampleFlights(t *testing.T) {
	python := []string{"--param", "python=" + flightsPython(t)}
	data := realdata.Path(t, "flights-3m.parquet")
	t.Setenv("MLOOP_CACHE", t.TempDir())
	dir := t.TempDir()
	months := filepath.Join(dir, "months")
	splitFlights(t, data, months, flightsStride())
	project := copyFlightsExample(t, filepath.Join(dir, "project"))
	spec := filepath.Join(project, "mloop.yaml")
	lake := filepath.Join(dir, "lake")
	if err := os.MkdirAll(lake, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, month := range []string{"2001-01", "2001-02"} {
		exampleCopyFile(t, filepath.Join(months, month+".csv"), filepath.Join(lake, month+".csv"))
	}
	m := MustOpenMain(t)
	mustData(t, m, "push", "flights", lake, "--quiet")
	steps := []string{"validate", "train", "evaluate", "gate", "register"}

	// First run: every step runs; v1 is registered and becomes champion
	// (no champion to compare with yet).
	code, out, errs := execExample(t, m, append([]string{"pipeline", "run", spec, "--json"}, python...)...)
	first := decodeJSON[pipeline.Run](t, out)
	if code != exitOK || first.Status != pipeline.RunSucceeded {
		t.Fatalf("first run: got exit %d and status %s (%s), want 0 and succeeded\n%s\n%s", code, first.Status, first.Error, flightsRunSummary(&first), errs)
	}
	t.Logf("first run:\n%s", flightsRunSummary(&first))
	for _, name := range steps {
		if st := first.Step(name); st == nil || st.Status != pipeline.StepSucceeded {
			t.Fatalf("first run, step %s: got %s, want succeeded", name, flightsStepSummary(st))
		}
	}
	if auc, ok := first.Step("evaluate").Metrics["auc"]; !ok || auc < 0.55 || auc > 0.9 {
		t.Fatalf("first run: got evaluation AUC %v (present %v), want the gate's 0.55 ≤ AUC and a plausible one (< 0.9)", auc, ok)
	}
	if v := exampleModelAlias(t, m, "flights-delay", "champion"); v != "1" {
		t.Fatalf("after the first run: got champion %q of flights-delay, want version 1", v)
	}
	if n := exampleModelVersions(t, m, "flights-delay"); n != 1 {
		t.Fatalf("after the first run: got %d versions of flights-delay, want 1", n)
	}

	// Second run, nothing changed: every step is a cache hit, and
	// --explain says so under each step.
	code, out, errs = execExample(t, m, append([]string{"pipeline", "run", spec, "--explain", "--quiet"}, python...)...)
	if code != exitOK {
		t.Fatalf("second run: got exit %d, want 0\n%s%s", code, out, errs)
	}
	t.Logf("mloop pipeline run --explain (second run):\n%s", out)
	id := flightsRunID(t, out)
	second := decodeJSON[pipeline.Run](t, mustExample(t, m, "pipeline", "show", id, "--json"))
	for _, name := range steps {
		st := second.Step(name)
		if st == nil || st.Status != pipeline.StepCached || st.CachedFrom != first.ID {
			t.Errorf("second run, step %s: got %s, want cached from %s\n%s", name, flightsStepSummary(st), first.ID, flightsRunSummary(&second))
		}
	}
	if got := strings.Count(out, "cache hit"); got < len(steps) {
		t.Errorf("second run --explain: got %d \"cache hit\" lines, want one per step (%d)\n%s", got, len(steps), out)
	}
	before := exampleModelVersions(t, m, "flights-delay")
	if before != 1 {
		t.Errorf("after the cached run: got %d versions of flights-delay, want still 1", before)
	}

	// A dataset trigger retrains when March arrives: flights@2.
	championBefore := exampleModelAlias(t, m, "flights-delay", "champion")
	mustExample(t, m, append([]string{"trigger", "create", "flights-monthly", "--pipeline", spec, "--on-dataset", "flights"}, python...)...)
	exampleCopyFile(t, filepath.Join(months, "2001-03.csv"), filepath.Join(lake, "2001-03.csv"))
	mustData(t, m, "push", "flights", lake, "--quiet")
	var triggered pipeline.Run
	exampleWaitFor(t, 5*time.Minute, "the trigger's run to end", func() (bool, string) {
		runs := decodeJSON[struct {
			Runs []pipeline.Run `json:"runs"`
		}](t, mustExample(t, m, "pipeline", "runs", "--trigger", "flights-monthly", "--json")).Runs
		if len(runs) == 0 {
			return false, "no run yet"
		}
		triggered = runs[0]
		return triggered.Status.Done(), flightsRunSummary(&triggered)
	})
	// One push, one event, one run: a second poll of the controller must not
	// fire again.
	time.Sleep(2 * time.Second)
	runs := decodeJSON[struct {
		Runs []pipeline.Run `json:"runs"`
	}](t, mustExample(t, m, "pipeline", "runs", "--trigger", "flights-monthly", "--json")).Runs
	if len(runs) != 1 {
		t.Fatalf("the March push started %d runs of the trigger, want 1", len(runs))
	}
	events := decodeJSON[struct {
		Events []pipeline.TriggerEvent `json:"events"`
	}](t, mustExample(t, m, "trigger", "events", "flights-monthly", "--json")).Events
	if len(events) != 1 || events[0].Status != pipeline.EventFired || events[0].RunID != triggered.ID || events[0].Subject != "flights@2" {
		t.Fatalf("trigger events: got %+v, want one event for flights@2 fired as %s", events, triggered.ID)
	}
	full := decodeJSON[pipeline.Run](t, mustExample(t, m, "pipeline", "show", triggered.ID, "--json"))
	t.Logf("triggered run:\n%s", flightsRunSummary(&full))
	if full.Status != pipeline.RunSucceeded || full.Trigger != "flights-monthly" || full.Datasets["flights@latest"].Ref != "flights@2" {
		t.Fatalf("triggered run: got status %s, trigger %q, data %v; want succeeded, flights-monthly, flights@2\n%s",
			full.Status, full.Trigger, full.Datasets, flightsRunSummary(&full))
	}
	for _, name := range []string{"validate", "train", "evaluate", "register"} {
		if st := full.Step(name); st == nil || st.Status != pipeline.StepSucceeded {
			t.Fatalf("triggered run, step %s: got %s, want succeeded (new data)", name, flightsStepSummary(st))
		}
	}
	// One new version (counted from what the runs before left, so that a
	// failure above is not reported twice), the challenger; the champion
	// moves to it only when the gate blessed it.
	if n := exampleModelVersions(t, m, "flights-delay"); n != before+1 {
		t.Fatalf("after the triggered run: got %d versions of flights-delay, want %d", n, before+1)
	}
	newest := fmt.Sprint(before + 1)
	if v := exampleModelAlias(t, m, "flights-delay", "challenger"); v != newest {
		t.Fatalf("after the triggered run: got challenger %q, want version %s", v, newest)
	}
	blessed := full.Step("gate").Metrics["gate.blessed"] == 1
	want := championBefore
	if blessed {
		want = newest
	}
	if v := exampleModelAlias(t, m, "flights-delay", "champion"); v != want {
		t.Fatalf("after the triggered run (blessed %v): got champion %q, want version %s", blessed, v, want)
	}
}

// flightsRunID returns the run id from the first line of `mloop pipeline
// run` output: "run pr-… of pipeline flights: 5 steps".
func flightsRunID(t *testing.T, out string) string {
	t.Helper()
	f := strings.Fields(out)
	if len(f) < 2 || f[0] != "run" || !strings.HasPrefix(f[1], "pr-") {
		t.Fatalf("mloop pipeline run: got output starting %.80q, want \"run pr-…\"", out)
	}
	return f[1]
}

// flightsRunSummary formats a run's steps for failure messages and logs.
func flightsRunSummary(r *pipeline.Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s %s (cause %q) %s\n", r.ID, r.Status, r.Cause, r.Error)
	for _, st := range r.Steps {
		fmt.Fprintf(&b, "  %s\n", flightsStepSummary(st))
	}
	return b.String()
}

func flightsStepSummary(st *pipeline.StepRun) string {
	if st == nil {
		return "(no such step)"
	}
	s := fmt.Sprintf("%s %s", st.Name, st.Status)
	if st.Error != "" {
		s += ": " + st.Error
	}
	if len(st.Explain) > 0 {
		s += " [" + strings.Join(st.Explain, "; ") + "]"
	}
	if auc, ok := st.Metrics["auc"]; ok {
		s += fmt.Sprintf(" auc=%.4f", auc)
	}
	return s
}
