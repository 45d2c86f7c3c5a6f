package tracking_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// The Service is tested over the real SQLite store: its rules matter only
// as far as they hold for what is stored. The store itself runs its
// conformance suite on SQLite and PostgreSQL in sqlstore.

// fixedNow is the clock of the services under test.
var fixedNow = time.UnixMilli(1_700_000_000_000)

// newService returns a Service over a fresh SQLite database.
func newService(t *testing.T) *tracking.Service {
	t.Helper()
	db := sqlstore.NewDB(filepath.Join(t.TempDir(), "mloop.db"))
	db.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := db.Open(context.Background()); err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	svc := tracking.NewService(sqlstore.NewTrackingStore(db))
	svc.Now = func() time.Time { return fixedNow }
	return svc
}

// mustRun creates an experiment and a run in it.
func mustRun(t *testing.T, svc *tracking.Service, name string) (*tracking.Experiment, *tracking.Run) {
	t.Helper()
	ctx := context.Background()
	id, err := svc.CreateExperiment(ctx, name, "", nil)
	if err != nil {
		t.Fatalf("create experiment %s: %v", name, err)
	}
	exp, err := svc.GetExperiment(ctx, id)
	if err != nil {
		t.Fatalf("get experiment %s: %v", id, err)
	}
	run, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: id})
	if err != nil {
		t.Fatalf("create run: %v", err)
	}
	return exp, run
}

// wantInvalid fails the test unless err is EINVALID with a message holding want.
func wantInvalid(t *testing.T, what string, err error, want string) {
	t.Helper()
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), want) {
		t.Errorf("%s: got %v, want an EINVALID error containing %q", what, err, want)
	}
}

func TestNewServiceDefaults(t *testing.T) {
	svc := tracking.NewService(nil)
	if svc.ArtifactRoot != "mlflow-artifacts:/" {
		t.Errorf("ArtifactRoot: got %q, want %q", svc.ArtifactRoot, "mlflow-artifacts:/")
	}
	if svc.Now == nil {
		t.Error("Now: got nil, want time.Now")
	}
}

func TestCreateExperimentArtifactLocation(t *testing.T) {
	tests := []struct {
		root     string
		explicit string
		want     string // with %s for the experiment id
	}{
		{"mlflow-artifacts:/", "", "mlflow-artifacts:/%s"},
		{"s3://bucket/root", "", "s3://bucket/root/%s"},
		{"file:///var/lib/mloop/", "", "file:///var/lib/mloop/%s"},
		{"mlflow-artifacts:/", "s3://elsewhere/exp", "s3://elsewhere/exp"},
	}
	for _, tt := range tests {
		t.Run(tt.root+" "+tt.explicit, func(t *testing.T) {
			svc := newService(t)
			svc.ArtifactRoot = tt.root
			ctx := context.Background()
			id, err := svc.CreateExperiment(ctx, "e", tt.explicit, []tracking.Tag{{Key: "k", Value: "v"}})
			if err != nil {
				t.Fatal(err)
			}
			exp, err := svc.GetExperiment(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, id)
			}
			if exp.ArtifactLocation != want {
				t.Errorf("artifact location: got %q, want %q", exp.ArtifactLocation, want)
			}
			if exp.CreationTime != fixedNow.UnixMilli() || exp.LastUpdateTime != fixedNow.UnixMilli() {
				t.Errorf("times: got created %d, updated %d; want both %d", exp.CreationTime, exp.LastUpdateTime, fixedNow.UnixMilli())
			}
			if want := []tracking.Tag{{Key: "k", Value: "v"}}; !reflect.DeepEqual(exp.Tags, want) {
				t.Errorf("tags: got %v, want %v", exp.Tags, want)
			}
		})
	}
}

func TestCreateExperimentValidation(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	tests := []struct {
		name, expName, location string
		tags                    []tracking.Tag
		want                    string
	}{
		{"empty name", "", "", nil, "Invalid experiment name: ''"},
		{"long name", strings.Repeat("n", 501), "", nil, "Experiment name exceeds the maximum length of 500 characters"},
		{"runs URI", "a", "runs:/abc/model", nil, "Artifact location cannot be a runs:/ URI"},
		{"fragment", "a", "s3://b/p#x", nil, "can't include fragments or params"},
		{"traversal in the query", "a", "http://h/p?x=%2E%2E/etc", nil, "Invalid query string"},
		{"bad tag key", "a", "", []tracking.Tag{{Key: "k!", Value: "v"}}, "Invalid tag name: 'k!'"},
		{"long tag value", "a", "", []tracking.Tag{{Key: "k", Value: strings.Repeat("v", 5001)}}, "exceeded length limit of 5000"},
	}
	for _, tt := range tests {
		_, err := svc.CreateExperiment(ctx, tt.expName, tt.location, tt.tags)
		wantInvalid(t, tt.name, err, tt.want)
	}
}

func TestCreateRun(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	exp, _ := mustRun(t, svc, "runs")

	t.Run("defaults", func(t *testing.T) {
		run, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: exp.ID,
			Tags: []tracking.Tag{{Key: "mlflow.user", Value: "carol"}}})
		if err != nil {
			t.Fatal(err)
		}
		info := run.Info
		if !regexp.MustCompile(`^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$`).MatchString(info.RunID) {
			t.Errorf("run id: got %q, want a version 4 UUID in 32 hex digits", info.RunID)
		}
		if !regexp.MustCompile(`^[a-z]+-[a-z]+-[0-9]{1,3}$`).MatchString(info.RunName) {
			t.Errorf("run name: got %q, want adjective-noun-number", info.RunName)
		}
		want := tracking.RunInfo{
			RunID: info.RunID, RunName: info.RunName, ExperimentID: exp.ID, UserID: "carol",
			Status: tracking.RunRunning, StartTime: fixedNow.UnixMilli(),
			ArtifactURI:    exp.ArtifactLocation + "/" + info.RunID + "/artifacts",
			LifecycleStage: tracking.LifecycleActive,
		}
		if !reflect.DeepEqual(info, want) {
			t.Errorf("run info: got %+v, want %+v", info, want)
		}
		got, err := svc.GetRun(ctx, info.RunID)
		if err != nil {
			t.Fatal(err)
		}
		wantTags := []tracking.Tag{{Key: "mlflow.runName", Value: info.RunName}, {Key: "mlflow.user", Value: "carol"}}
		if !reflect.DeepEqual(got.Tags, wantTags) {
			t.Errorf("stored tags: got %v, want %v", got.Tags, wantTags)
		}
	})
	t.Run("the default experiment", func(t *testing.T) {
		run, err := svc.CreateRun(ctx, tracking.CreateRunRequest{RunName: "r", StartTime: 5})
		if err != nil {
			t.Fatal(err)
		}
		if run.Info.ExperimentID != tracking.DefaultExperimentID || run.Info.StartTime != 5 || run.Info.RunName != "r" {
			t.Errorf("got experiment %q, start %d, name %q; want %q, 5, r", run.Info.ExperimentID, run.Info.StartTime, run.Info.RunName, tracking.DefaultExperimentID)
		}
	})
	t.Run("two names", func(t *testing.T) {
		_, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: exp.ID, RunName: "a",
			Tags: []tracking.Tag{{Key: "mlflow.runName", Value: "b"}}})
		wantInvalid(t, "run_name and tag differ", err, "Both 'run_name' argument and 'mlflow.runName' tag are specified")
	})
	t.Run("unknown experiment", func(t *testing.T) {
		_, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: "987654"})
		if !mloop.IsNotFound(err) {
			t.Errorf("got %v, want ENOTFOUND", err)
		}
	})
}

func TestValidateKey(t *testing.T) {
	valid := []string{"a", "loss", "a/b", "a.b-c_d e", "précision", "数字", "x1/y2/z3", "a..b", "a/..b/c"}
	for _, k := range valid {
		if err := tracking.ValidateKey("metric", k); err != nil {
			t.Errorf("ValidateKey(%q): got %v, want nil", k, err)
		}
	}
	invalid := []struct{ key, want string }{
		{"a*b", "Invalid metric name: 'a*b'. Names may only contain"},
		{"a:b", "Names may only contain"},
		{"tab\there", "Names may only contain"},
		{"", "This name would resolve to '.'"},
		{".", "This name would resolve to '.'"},
		{"..", "This name would resolve to '..'"},
		{"..a", "This name would resolve to '..a'"}, // MLflow rejects every name starting with ".."
		{"../a", "This name would resolve to '../a'"},
		{"a/..", "This name would resolve to '.'"},
		{"/a", "This name would resolve to '/a'"},
		{"a/", "This name would resolve to 'a'"},
		{"a//b", "This name would resolve to 'a/b'"},
		{"./a", "This name would resolve to 'a'"},
	}
	for _, tt := range invalid {
		wantInvalid(t, fmt.Sprintf("ValidateKey(%q)", tt.key), tracking.ValidateKey("metric", tt.key), tt.want)
	}
}

func TestLogBatchValidation(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	_, run := mustRun(t, svc, "batch")
	metric := func(key string) tracking.Metric { return tracking.Metric{Key: key, Value: 1, Timestamp: 1} }
	many := func(n int) []tracking.Metric {
		out := make([]tracking.Metric, n)
		for i := range out {
			out[i] = metric("m")
		}
		return out
	}
	params := func(n int) []tracking.Param {
		out := make([]tracking.Param, n)
		for i := range out {
			out[i] = tracking.Param{Key: fmt.Sprintf("p%d", i), Value: "v"}
		}
		return out
	}
	tags := func(n int) []tracking.Tag {
		out := make([]tracking.Tag, n)
		for i := range out {
			out[i] = tracking.Tag{Key: fmt.Sprintf("t%d", i), Value: "v"}
		}
		return out
	}
	tests := []struct {
		name    string
		metrics []tracking.Metric
		params  []tracking.Param
		tags    []tracking.Tag
		want    string
	}{
		{"too many metrics", many(1001), nil, nil, "at most 1000 metrics. Got 1001 metrics."},
		{"too many params", nil, params(101), nil, "at most 100 params. Got 101 params."},
		{"too many tags", nil, nil, tags(101), "at most 100 tags. Got 101 tags."},
		{"too many entities", many(801), params(100), tags(100), "at most 1000 metrics, params, and tags. Got 1001"},
		{"bad metric key", []tracking.Metric{metric("ok"), metric("no?")}, nil, nil, "Invalid metric name: 'no?'"},
		{"negative timestamp", []tracking.Metric{{Key: "m", Value: 1, Timestamp: -5}}, nil, nil, "Got invalid timestamp -5 for metric 'm'"},
		{"long metric key", []tracking.Metric{metric(strings.Repeat("k", 251))}, nil, nil, "Metric name"},
		{"bad param key", nil, []tracking.Param{{Key: "p/../q", Value: "v"}}, nil, "Invalid parameter name: 'p/../q'"},
		{"long param value", nil, []tracking.Param{{Key: "p", Value: strings.Repeat("v", 6001)}}, nil, "Param value"},
		{"duplicate params", nil, []tracking.Param{{Key: "a", Value: "1"}, {Key: "b"}, {Key: "a", Value: "1"}}, nil,
			"Duplicate parameter keys have been submitted: ['a']"},
		{"long tag value", nil, nil, []tracking.Tag{{Key: "t", Value: strings.Repeat("v", 8001)}}, "Tag value"},
	}
	for _, tt := range tests {
		err := svc.LogBatch(ctx, run.Info.RunID, tt.metrics, tt.params, tt.tags)
		wantInvalid(t, tt.name, err, tt.want)
	}
	got, err := svc.GetRun(ctx, run.Info.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Metrics) != 0 || len(got.Params) != 0 || len(got.Tags) != 1 {
		t.Errorf("after rejected batches: got metrics %v, params %v, tags %v; want only the name tag", got.Metrics, got.Params, got.Tags)
	}
}

func TestSetTagRenamesRun(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	_, run := mustRun(t, svc, "rename")
	if err := svc.SetTag(ctx, run.Info.RunID, tracking.Tag{Key: tracking.RunNameTag, Value: "fresh"}); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetRun(ctx, run.Info.RunID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Info.RunName != "fresh" {
		t.Errorf("run name: got %q, want fresh", got.Info.RunName)
	}

	empty, status := "", "FINISHED"
	info, err := svc.UpdateRun(ctx, run.Info.RunID, tracking.RunUpdate{RunName: &empty, Status: &status})
	if err != nil {
		t.Fatal(err)
	}
	if info.RunName != "fresh" || info.Status != "FINISHED" {
		t.Errorf("after an update with an empty name: got name %q, status %q; want fresh, FINISHED", info.RunName, info.Status)
	}
	bad := "PAUSED"
	_, err = svc.UpdateRun(ctx, run.Info.RunID, tracking.RunUpdate{Status: &bad})
	wantInvalid(t, "unknown status", err, "Invalid value 'PAUSED' for parameter 'status'")
}

func TestLogModel(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	_, run := mustRun(t, svc, "models")
	id := run.Info.RunID
	// What MLflow 2's Model.from_dict(model).to_dict() gives back is what
	// the history records.
	full := `{"artifact_path": "model", "run_id": "` + id + `", "utc_time_created": "2024-05-01 10:00:00.000000",
		"flavors": {"python_function": {"env": "conda.yaml", "config": {"x": 1}}, "xgboost": {"data": "model.xgb", "code": null}},
		"signature": {"inputs": "[]"}, "mlflow_version": "2.9.2"}`
	sparse := `{"artifact_path": "model-2", "run_id": "` + id + `", "utc_time_created": "t", "flavors": null,
		"model_uuid": "abc", "mlflow_version": null, "signature": null, "metadata": null, "model_size_bytes": null,
		"saved_input_example_info": null, "extra": 1}`
	for _, m := range []string{full, sparse} {
		if err := svc.LogModel(ctx, id, m); err != nil {
			t.Fatalf("log model %s: %v", m, err)
		}
	}
	got, err := svc.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var history []map[string]any
	for _, tag := range got.Tags {
		if tag.Key == tracking.LoggedModelsTag {
			if err := json.Unmarshal([]byte(tag.Value), &history); err != nil {
				t.Fatalf("history tag %q: %v", tag.Value, err)
			}
		}
	}
	want := []map[string]any{
		{
			"artifact_path": "model", "run_id": id, "utc_time_created": "2024-05-01 10:00:00.000000",
			"flavors": map[string]any{
				"python_function": map[string]any{"env": "conda.yaml", "config": map[string]any{"x": 1.0}},
				"xgboost":         map[string]any{"data": "model.xgb", "code": nil},
			},
			"signature": map[string]any{"inputs": "[]"}, "mlflow_version": "2.9.2", "model_uuid": nil,
		},
		{
			"artifact_path": "model-2", "run_id": id, "utc_time_created": "t", "flavors": map[string]any{},
			"model_uuid": "abc", "extra": 1.0,
		},
	}
	if !reflect.DeepEqual(history, want) {
		t.Errorf("history: got %v, want %v", history, want)
	}

	for _, tt := range []struct{ name, json, want string }{
		{"not JSON", "{", "Malformed model info"},
		{"not an object", "[]", "Malformed model info"},
		{"missing fields", `{"flavors": {}}`, "Model json is missing mandatory fields: {'artifact_path', 'run_id', 'utc_time_created'}"},
		{"flavors not an object", `{"flavors": [], "artifact_path": "a", "run_id": "r", "utc_time_created": "t"}`, "flavors must be a JSON object"},
	} {
		wantInvalid(t, tt.name, svc.LogModel(ctx, id, tt.json), tt.want)
	}
}

// TestLogModelConcurrent checks that concurrent LogModel calls on one run
// each leave their entry in the history tag.
func TestLogModelConcurrent(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	_, run := mustRun(t, svc, "concurrent-models")
	id := run.Info.RunID
	const workers = 8
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := fmt.Sprintf(`{"artifact_path": "model-%d", "run_id": %q, "utc_time_created": "t", "flavors": {}}`, w, id)
			if err := svc.LogModel(ctx, id, m); err != nil {
				errs <- fmt.Errorf("worker %d: %w", w, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	got, err := svc.GetRun(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var history []struct {
		ArtifactPath string `json:"artifact_path"`
	}
	for _, tag := range got.Tags {
		if tag.Key == tracking.LoggedModelsTag {
			if err := json.Unmarshal([]byte(tag.Value), &history); err != nil {
				t.Fatalf("history tag %q: %v", tag.Value, err)
			}
		}
	}
	paths := make([]string, len(history))
	for i, h := range history {
		paths[i] = h.ArtifactPath
	}
	slices.Sort(paths)
	want := make([]string, workers)
	for w := range workers {
		want[w] = fmt.Sprintf("model-%d", w)
	}
	if !slices.Equal(paths, want) {
		t.Errorf("logged artifact paths: got %v want %v", paths, want)
	}
}

func TestSearchExperimentsPages(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	var want []string
	for i := range 5 {
		name := fmt.Sprintf("paged-%d", i)
		if _, err := svc.CreateExperiment(ctx, name, "", nil); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	two := 2
	var got []string
	token := ""
	for range 10 {
		exps, next, err := svc.SearchExperiments(ctx, tracking.SearchExperimentsRequest{
			Filter: "name LIKE 'paged-%'", OrderBy: []string{"name ASC"}, MaxResults: &two, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range exps {
			got = append(got, e.Name)
		}
		if token = next; token == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("names over all pages: got %v, want %v", got, want)
	}

	for _, n := range []int{0, -1, 50001} {
		_, _, err := svc.SearchExperiments(ctx, tracking.SearchExperimentsRequest{MaxResults: &n})
		wantInvalid(t, fmt.Sprintf("max_results %d", n), err, "max_results")
	}
	_, _, err := svc.SearchExperiments(ctx, tracking.SearchExperimentsRequest{ViewType: "SOME"})
	wantInvalid(t, "view type", err, "Invalid value 'SOME' for parameter 'view_type'")
}

func TestGetMetricHistory(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	_, run := mustRun(t, svc, "history")
	var logged []tracking.Metric
	for i := range 5 {
		m := tracking.Metric{Key: "m", Value: float64(i), Timestamp: int64(100 + i), Step: int64(i)}
		logged = append(logged, m)
	}
	if err := svc.LogBatch(ctx, run.Info.RunID, logged, nil, nil); err != nil {
		t.Fatal(err)
	}

	all, next, err := svc.GetMetricHistory(ctx, run.Info.RunID, "m", nil, "")
	if err != nil || next != "" || len(all) != 5 {
		t.Fatalf("without max_results: got %d points, token %q, %v; want 5 points, no token", len(all), next, err)
	}
	var pages [][]float64
	token, size := "", 2
	for range 10 {
		points, next, err := svc.GetMetricHistory(ctx, run.Info.RunID, "m", &size, token)
		if err != nil {
			t.Fatal(err)
		}
		var values []float64
		for _, p := range points {
			values = append(values, p.Value)
		}
		pages = append(pages, values)
		if token = next; token == "" {
			break
		}
	}
	if want := [][]float64{{0, 1}, {2, 3}, {4}}; !reflect.DeepEqual(pages, want) {
		t.Errorf("pages: got %v, want %v", pages, want)
	}
	zero := 0
	_, _, err = svc.GetMetricHistory(ctx, run.Info.RunID, "m", &zero, "")
	wantInvalid(t, "max_results 0", err, "max_results")
}

// bulkRun is a run of the bulk-interval tests and the steps it logged.
type bulkRun struct {
	id    string
	steps []int64
}

// logSteps creates a run in exp that logs metric acc at steps.
func logSteps(t *testing.T, svc *tracking.Service, exp string, steps []int64) bulkRun {
	t.Helper()
	ctx := context.Background()
	run, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: exp})
	if err != nil {
		t.Fatal(err)
	}
	var ms []tracking.Metric
	for _, s := range steps {
		ms = append(ms, tracking.Metric{Key: "acc", Value: float64(s), Timestamp: 1, Step: s})
	}
	for len(ms) > 0 {
		n := min(len(ms), tracking.MaxMetricsPerBatch)
		if err := svc.LogBatch(ctx, run.Info.RunID, ms[:n], nil, nil); err != nil {
			t.Fatal(err)
		}
		ms = ms[n:]
	}
	return bulkRun{run.Info.RunID, steps}
}

func every(from, to, by int64) []int64 {
	var out []int64
	for s := from; s <= to; s += by {
		out = append(out, s)
	}
	return out
}

// pointsOf lists bulk-interval points as run@step.
func pointsOf(ms []tracking.Metric) []string {
	var out []string
	for _, m := range ms {
		out = append(out, fmt.Sprintf("%s@%d", m.RunID[:8], m.Step))
	}
	return out
}

// TestBulkIntervalMatchesMLflow checks the downsampling of runs that log the
// same steps against MLflow's rule computed directly: sample the union of the
// runs' steps in the range, then add each run's first and last step there.
func TestBulkIntervalMatchesMLflow(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	exp, _ := mustRun(t, svc, "bulk")
	runs := []bulkRun{logSteps(t, svc, exp.ID, every(0, 297, 3)), logSteps(t, svc, exp.ID, every(0, 297, 3))}
	ptr := func(v int64) *int64 { return &v }
	tests := []struct {
		name       string
		start, end *int64
		maxResults int
	}{
		{"everything", nil, nil, 2500},
		{"ten steps", nil, nil, 10},
		{"one step", nil, nil, 1},
		{"a window", ptr(100), ptr(200), 7},
		{"a window past the last step", ptr(250), ptr(400), 5},
		{"a window between steps", ptr(31), ptr(32), 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := svc.GetMetricHistoryBulkInterval(ctx, tracking.BulkIntervalRequest{
				RunIDs: []string{runs[1].id, runs[0].id, runs[1].id}, MetricKey: "acc",
				StartStep: tt.start, EndStep: tt.end, MaxResults: &tt.maxResults,
			})
			if err != nil {
				t.Fatal(err)
			}
			start, end := int64(0), int64(297)
			if tt.start != nil {
				start, end = *tt.start, *tt.end
			}
			steps := tracking.SampleSteps(runs[0].steps, start, end, tt.maxResults)
			for _, b := range []int64{0, 297} {
				if start <= b && b <= end && !slices.Contains(steps, b) {
					steps = append(steps, b)
				}
			}
			slices.Sort(steps)
			var want []tracking.Metric
			for _, r := range []bulkRun{runs[1], runs[0]} { // the order asked, once each
				for _, s := range steps {
					want = append(want, tracking.Metric{RunID: r.id, Step: s})
				}
			}
			if !slices.Equal(pointsOf(got), pointsOf(want)) {
				t.Errorf("points: got %v, want %v", pointsOf(got), pointsOf(want))
			}
		})
	}
}

// TestBulkIntervalDifferentSteps checks what must hold for runs that log
// different steps: every point is a logged point of its run in the range,
// each run's first and last step in the range are there, and the number of
// steps stays within MLflow's bound.
func TestBulkIntervalDifferentSteps(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	exp, _ := mustRun(t, svc, "bulk-different")
	runs := []bulkRun{
		logSteps(t, svc, exp.ID, every(0, 2997, 3)),
		logSteps(t, svc, exp.ID, every(0, 6000, 6)),
		logSteps(t, svc, exp.ID, []int64{5, 7, 11, 13, 17, 19, 23}),
	}
	ids := []string{runs[0].id, runs[1].id, runs[2].id}
	for _, maxResults := range []int{1, 10, 100, 2500} {
		got, err := svc.GetMetricHistoryBulkInterval(ctx, tracking.BulkIntervalRequest{RunIDs: ids, MetricKey: "acc", MaxResults: &maxResults})
		if err != nil {
			t.Fatal(err)
		}
		byRun := map[string][]int64{}
		var order []string
		distinct := map[int64]bool{}
		for _, m := range got {
			if len(order) == 0 || order[len(order)-1] != m.RunID {
				order = append(order, m.RunID)
			}
			byRun[m.RunID] = append(byRun[m.RunID], m.Step)
			distinct[m.Step] = true
		}
		if !slices.Equal(order, ids) {
			t.Errorf("max %d: runs came in the order %v, want %v", maxResults, order, ids)
		}
		for _, r := range runs {
			steps := byRun[r.id]
			if !slices.IsSorted(steps) {
				t.Errorf("max %d: run %s steps %v, want them ascending", maxResults, r.id[:8], steps)
			}
			for _, s := range steps {
				if _, ok := slices.BinarySearch(r.steps, s); !ok {
					t.Errorf("max %d: run %s got step %d, which it never logged", maxResults, r.id[:8], s)
				}
			}
			for _, b := range []int64{r.steps[0], r.steps[len(r.steps)-1]} {
				if !slices.Contains(steps, b) {
					t.Errorf("max %d: run %s lacks its end step %d", maxResults, r.id[:8], b)
				}
			}
		}
		if limit := maxResults + 1 + 2*len(runs); len(distinct) > limit {
			t.Errorf("max %d: got %d distinct steps, want at most %d", maxResults, len(distinct), limit)
		}
		if maxResults == 2500 && len(got) != len(runs[0].steps)+len(runs[1].steps)+len(runs[2].steps) {
			t.Errorf("max 2500: got %d points, want every logged point", len(got))
		}
	}
}

func TestBulkIntervalValidation(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	tooMany := make([]string, 101)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("run%d", i)
	}
	one, zero, big := int64(1), 0, 2501
	tests := []struct {
		name string
		req  tracking.BulkIntervalRequest
		want string
	}{
		{"no runs", tracking.BulkIntervalRequest{MetricKey: "m"}, "Missing value for required parameter 'run_ids'"},
		{"101 runs", tracking.BulkIntervalRequest{RunIDs: tooMany, MetricKey: "m"},
			"GetMetricHistoryBulkInterval request must specify at most 100 run_ids. Received 101 run_ids."},
		{"no key", tracking.BulkIntervalRequest{RunIDs: []string{"r"}}, "Missing value for required parameter 'metric_key'"},
		{"max 0", tracking.BulkIntervalRequest{RunIDs: []string{"r"}, MetricKey: "m", MaxResults: &zero}, "max_results must be between 1 and 2500."},
		{"max 2501", tracking.BulkIntervalRequest{RunIDs: []string{"r"}, MetricKey: "m", MaxResults: &big}, "max_results must be between 1 and 2500."},
		{"start only", tracking.BulkIntervalRequest{RunIDs: []string{"r"}, MetricKey: "m", StartStep: &one},
			"If either start step or end step are specified, both must be specified."},
	}
	for _, tt := range tests {
		_, err := svc.GetMetricHistoryBulkInterval(ctx, tt.req)
		wantInvalid(t, tt.name, err, tt.want)
	}
}

func TestArtifactLocationsResolveLocalPaths(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	wd = filepath.ToSlash(wd)
	tests := []struct{ given, want string }{
		{"my_location", wd + "/my_location"},
		{"./a/b", wd + "/a/b"},
		{"file:rel", "file://" + wd + "/rel"},
		{"/abs/path", "/abs/path"},
		{"file:///abs/path", "file:///abs/path"},
		{"s3://bucket/p", "s3://bucket/p"},
		{"file://otherhost/p", "file://otherhost/p"},
	}
	svc := newService(t)
	ctx := context.Background()
	for i, tt := range tests {
		id, err := svc.CreateExperiment(ctx, fmt.Sprintf("loc-%d", i), tt.given, nil)
		if err != nil {
			t.Fatalf("create with location %q: %v", tt.given, err)
		}
		exp, err := svc.GetExperiment(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if exp.ArtifactLocation != tt.want {
			t.Errorf("location %q: got %q, want %q", tt.given, exp.ArtifactLocation, tt.want)
		}
	}
	// A relative artifact root is resolved too.
	svc.ArtifactRoot = "mlruns"
	id, err := svc.CreateExperiment(ctx, "under-relative-root", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if exp, err := svc.GetExperiment(ctx, id); err != nil || exp.ArtifactLocation != wd+"/mlruns/"+id {
		t.Errorf("under a relative root: got %+v, %v, want %s", exp, err, wd+"/mlruns/"+id)
	}
}

// TestExperimentWithoutLocation checks the rule for an experiment stored
// without an artifact location, as the schema stores the Default
// experiment: it lives under the Service's ArtifactRoot, and so do its runs.
func TestExperimentWithoutLocation(t *testing.T) {
	svc := newService(t)
	svc.ArtifactRoot = "file:///srv/artifacts"
	ctx := context.Background()
	id, err := svc.Store.CreateExperiment(ctx, &tracking.Experiment{Name: "bare", LifecycleStage: tracking.LifecycleActive}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := "file:///srv/artifacts/" + id
	byID, err := svc.GetExperiment(ctx, id)
	if err != nil || byID.ArtifactLocation != want {
		t.Errorf("get: got %+v, %v, want location %s", byID, err, want)
	}
	byName, err := svc.GetExperimentByName(ctx, "bare")
	if err != nil || byName.ArtifactLocation != want {
		t.Errorf("get by name: got %+v, %v, want location %s", byName, err, want)
	}
	found, _, err := svc.SearchExperiments(ctx, tracking.SearchExperimentsRequest{Filter: "name = 'bare'"})
	if err != nil || len(found) != 1 || found[0].ArtifactLocation != want {
		t.Errorf("search: got %v, %v, want one experiment at %s", found, err, want)
	}
	run, err := svc.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: id})
	if err != nil {
		t.Fatal(err)
	}
	if wantURI := want + "/" + run.Info.RunID + "/artifacts"; run.Info.ArtifactURI != wantURI {
		t.Errorf("run artifact URI: got %q, want %q", run.Info.ArtifactURI, wantURI)
	}
	if stored, err := svc.GetRun(ctx, run.Info.RunID); err != nil || stored.Info.ArtifactURI != run.Info.ArtifactURI {
		t.Errorf("stored run: got %+v, %v, want artifact URI %s", stored, err, run.Info.ArtifactURI)
	}
}

func TestGetMetricHistoryBulk(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	_, run := mustRun(t, svc, "bulk")
	id := run.Info.RunID
	points := []tracking.Metric{
		{Key: "m", Value: 3, Timestamp: 5, Step: 0},
		{Key: "m", Value: 2, Timestamp: 1, Step: 9},
		{Key: "m", Value: 1, Timestamp: 1, Step: 9},
		{Key: "m", Value: 0, Timestamp: 1, Step: 10},
	}
	if err := svc.LogBatch(ctx, id, points, nil, nil); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetMetricHistoryBulk(ctx, []string{"unknown", id, id}, "m", 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []tracking.Metric{
		{Key: "m", Value: 1, Timestamp: 1, Step: 9, RunID: id},
		{Key: "m", Value: 2, Timestamp: 1, Step: 9, RunID: id},
		{Key: "m", Value: 0, Timestamp: 1, Step: 10, RunID: id},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("bulk history: got %v, want %v", got, want)
	}
	if got, err := svc.GetMetricHistoryBulk(ctx, []string{id}, "m", 1<<30); err != nil || len(got) != 4 {
		t.Errorf("bulk history capped at 25000: got %d points, %v, want 4", len(got), err)
	}

	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("run%d", i)
	}
	for _, tt := range []struct {
		name string
		ids  []string
		key  string
		max  int
		want string
	}{
		{"no runs", nil, "m", 10, "GetMetricHistoryBulk request must specify at least one run_id."},
		{"21 runs", tooMany, "", 10, "GetMetricHistoryBulk request cannot specify more than 20 run_ids. Received 21 run_ids."},
		{"no key", []string{id}, "", 10, "GetMetricHistoryBulk request must specify a metric_key."},
		{"negative max", []string{id}, "m", -1, "Invalid value -1 for parameter 'max_results' supplied."},
	} {
		_, err := svc.GetMetricHistoryBulk(ctx, tt.ids, tt.key, tt.max)
		wantInvalid(t, tt.name, err, tt.want)
	}
}

func TestSearchDatasetsValidation(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	tooMany := make([]string, 21)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint(i)
	}
	_, err := svc.SearchDatasets(ctx, nil)
	wantInvalid(t, "no experiments", err, "SearchDatasets request must specify at least one experiment_id.")
	_, err = svc.SearchDatasets(ctx, tooMany)
	wantInvalid(t, "21 experiments", err, "SearchDatasets request cannot specify more than 20 experiment_ids. Received 21 experiment_ids.")
	if got, err := svc.SearchDatasets(ctx, []string{"0", "0"}); err != nil || len(got) != 0 {
		t.Errorf("no datasets: got %v, %v, want none", got, err)
	}
}

func TestCreatePromptlabRun(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	exp, _ := mustRun(t, svc, "promptlab")
	req := tracking.PromptlabRunRequest{
		ExperimentID: exp.ID, RunName: "p", PromptTemplate: "Hi {{ name }}",
		PromptParameters: []tracking.Param{{Key: "name", Value: "Ann"}}, ModelRoute: "chat",
		ModelParameters: []tracking.Param{{Key: "temperature", Value: "0.1"}}, ModelInput: "Hi Ann",
		MLflowVersion: "2.9.2",
	}
	var written map[string]string
	write := func(_ context.Context, run *tracking.RunInfo, files map[string][]byte) error {
		written = map[string]string{}
		for k, v := range files {
			written[run.RunID+"/"+k] = string(v)
		}
		return nil
	}
	run, err := svc.CreatePromptlabRun(ctx, req, write)
	if err != nil {
		t.Fatal(err)
	}
	if run.Info.Status != tracking.RunFinished || run.Info.UserID != "unknown" || run.Info.StartTime != fixedNow.UnixMilli() ||
		run.Info.EndTime == nil || *run.Info.EndTime != fixedNow.UnixMilli() {
		t.Errorf("run info: got %+v, want FINISHED, user unknown, started and ended now", run.Info)
	}
	wantParams := []tracking.Param{{Key: "model_route", Value: "chat"}, {Key: "prompt_template", Value: "Hi {{ name }}"}, {Key: "temperature", Value: "0.1"}}
	if !reflect.DeepEqual(run.Params, wantParams) {
		t.Errorf("params: got %v, want %v", run.Params, wantParams)
	}
	wantFiles := map[string]string{run.Info.RunID + "/eval_results_table.json": `{"columns": ["name", "prompt", "output"], "data": [["Ann", "Hi Ann", null]]}`}
	if !reflect.DeepEqual(written, wantFiles) {
		t.Errorf("artifacts: got %v, want %v", written, wantFiles)
	}

	// A run whose artifacts cannot be written is kept, FAILED.
	broken := errors.New("disk full")
	run, err = svc.CreatePromptlabRun(ctx, req, func(context.Context, *tracking.RunInfo, map[string][]byte) error { return broken })
	if !errors.Is(err, broken) || run == nil || run.Info.Status != tracking.RunFailed {
		t.Errorf("failing writer: got run %+v, error %v; want the run FAILED and the error", run, err)
	}

	for _, tt := range []struct {
		name  string
		edit  func(*tracking.PromptlabRunRequest)
		field string
	}{
		{"experiment", func(r *tracking.PromptlabRunRequest) { r.ExperimentID = "" }, "experiment_id"},
		{"template", func(r *tracking.PromptlabRunRequest) { r.PromptTemplate = "" }, "prompt_template"},
		{"parameters", func(r *tracking.PromptlabRunRequest) { r.PromptParameters = nil }, "prompt_parameters"},
		{"route", func(r *tracking.PromptlabRunRequest) { r.ModelRoute = "" }, "model_route"},
		{"input", func(r *tracking.PromptlabRunRequest) { r.ModelInput = "" }, "model_input"},
		{"version", func(r *tracking.PromptlabRunRequest) { r.MLflowVersion = "" }, "mlflow_version"},
	} {
		bad := req
		tt.edit(&bad)
		_, err := svc.CreatePromptlabRun(ctx, bad, write)
		wantInvalid(t, tt.name, err, "CreatePromptlabRun request must specify "+tt.field+".")
	}
}
