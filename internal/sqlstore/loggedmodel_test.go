package sqlstore_test

import (
	"context"
	"encoding/json"
	"math"
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

// loggedModelEnv is a logged-model service over a real database, with the
// tracking service that owns its experiments and runs.
type loggedModelEnv struct {
	ctx      context.Context
	tracking *tracking.Service
	models   *tracking.LoggedModels
}

// newLoggedModelEnv returns a fresh environment on db whose clock advances
// one millisecond per reading, so creation order is well defined.
func newLoggedModelEnv(t *testing.T, db *sqlstore.DB) *loggedModelEnv {
	t.Helper()
	ts := sqlstore.NewTrackingStore(db)
	t.Cleanup(func() { ts.Close() })
	clock := time.UnixMilli(1_700_000_000_000)
	tick := func() time.Time {
		clock = clock.Add(time.Millisecond)
		return clock
	}
	svc := tracking.NewService(ts)
	svc.Now = tick
	models := tracking.NewLoggedModels(sqlstore.NewLoggedModelStore(db), ts)
	models.Now = tick
	return &loggedModelEnv{ctx: context.Background(), tracking: svc, models: models}
}

func (e *loggedModelEnv) experiment(t *testing.T, name string) string {
	t.Helper()
	id, err := e.tracking.CreateExperiment(e.ctx, name, "", nil)
	if err != nil {
		t.Fatalf("create experiment %q: %v", name, err)
	}
	return id
}

func (e *loggedModelEnv) run(t *testing.T, experimentID string) string {
	t.Helper()
	r, err := e.tracking.CreateRun(e.ctx, tracking.CreateRunRequest{ExperimentID: experimentID})
	if err != nil {
		t.Fatalf("create run in experiment %s: %v", experimentID, err)
	}
	return r.Info.RunID
}

func (e *loggedModelEnv) create(t *testing.T, req tracking.CreateLoggedModelRequest) *tracking.LoggedModel {
	t.Helper()
	m, err := e.models.CreateLoggedModel(e.ctx, req)
	if err != nil {
		t.Fatalf("create logged model %+v: %v", req, err)
	}
	return m
}

func (e *loggedModelEnv) get(t *testing.T, id string) *tracking.LoggedModel {
	t.Helper()
	m, err := e.models.GetLoggedModel(e.ctx, id, false)
	if err != nil {
		t.Fatalf("get logged model %s: %v", id, err)
	}
	return m
}

// wantCode fails t unless err is of kind code.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := mloop.ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (kind %q), want kind %q", what, err, got, code)
	}
}

var modelIDPattern = regexp.MustCompile(`^m-[0-9a-f]{32}$`)

func TestLoggedModelCreateAndGet(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		env := newLoggedModelEnv(t, db)
		expID := env.experiment(t, "exp")
		exp, err := env.tracking.GetExperiment(env.ctx, expID)
		if err != nil {
			t.Fatalf("get experiment: %v", err)
		}
		runID := env.run(t, expID)

		created := env.create(t, tracking.CreateLoggedModelRequest{
			ExperimentID: expID,
			Name:         "model",
			ModelType:    "Classifier",
			SourceRunID:  runID,
			Params:       []tracking.Param{{Key: "b", Value: "2"}, {Key: "a", Value: "1"}, {Key: "a", Value: "1"}},
			Tags:         []tracking.Tag{{Key: "t", Value: "old"}, {Key: "t", Value: "new"}},
		})
		if !modelIDPattern.MatchString(created.ModelID) {
			t.Errorf("model id: got %q, want m- followed by 32 hex digits", created.ModelID)
		}
		if want := exp.ArtifactLocation + "/models/" + created.ModelID + "/artifacts"; created.ArtifactLocation != want {
			t.Errorf("artifact location: got %q, want %q", created.ArtifactLocation, want)
		}

		got := env.get(t, created.ModelID)
		want := &tracking.LoggedModel{
			ModelID:              created.ModelID,
			ExperimentID:         expID,
			Name:                 "model",
			ArtifactLocation:     created.ArtifactLocation,
			CreationTimestamp:    created.CreationTimestamp,
			LastUpdatedTimestamp: created.CreationTimestamp,
			ModelType:            "Classifier",
			SourceRunID:          runID,
			Status:               tracking.LoggedModelPending,
			LifecycleStage:       tracking.LifecycleActive,
			Tags:                 []tracking.Tag{{Key: "t", Value: "new"}},
			Params:               []tracking.Param{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}},
		}
		assertModel(t, got, want)

		unnamed := env.create(t, tracking.CreateLoggedModelRequest{ExperimentID: expID})
		if !regexp.MustCompile(`^[a-z]+-[a-z]+-\d{1,3}$`).MatchString(unnamed.Name) {
			t.Errorf("random name: got %q, want <adjective>-<noun>-<number>", unnamed.Name)
		}
		if m := env.get(t, unnamed.ModelID); m.ModelType != "" || m.SourceRunID != "" || len(m.Tags) != 0 || len(m.Params) != 0 {
			t.Errorf("model without optional fields: got %+v, want empty model type, source run, tags and params", m)
		}
	})
}

func TestLoggedModelCreateErrors(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		env := newLoggedModelEnv(t, db)
		expID := env.experiment(t, "exp")
		deleted := env.experiment(t, "gone")
		if err := env.tracking.DeleteExperiment(env.ctx, deleted); err != nil {
			t.Fatalf("delete experiment: %v", err)
		}
		tests := []struct {
			name string
			req  tracking.CreateLoggedModelRequest
			code string
			msg  string
		}{
			{"no experiment", tracking.CreateLoggedModelRequest{}, mloop.EINVALID, "experiment_id"},
			{"unknown experiment", tracking.CreateLoggedModelRequest{ExperimentID: "4242"}, mloop.ENOTFOUND, "4242"},
			{"deleted experiment", tracking.CreateLoggedModelRequest{ExperimentID: deleted}, mloop.EINVALID, "must be in the 'active' state"},
			{"name with a slash", tracking.CreateLoggedModelRequest{ExperimentID: expID, Name: "a/b"}, mloop.EINVALID, "Invalid model name"},
			{"name with a dot", tracking.CreateLoggedModelRequest{ExperimentID: expID, Name: "v1.2"}, mloop.EINVALID, "Invalid model name"},
			{"param changing value", tracking.CreateLoggedModelRequest{ExperimentID: expID,
				Params: []tracking.Param{{Key: "a", Value: "1"}, {Key: "a", Value: "2"}}}, mloop.EINVALID, "'a'"},
			{"empty tag key", tracking.CreateLoggedModelRequest{ExperimentID: expID,
				Tags: []tracking.Tag{{Key: "", Value: "x"}}}, mloop.EINVALID, "Tag key"},
			{"long param key", tracking.CreateLoggedModelRequest{ExperimentID: expID,
				Params: []tracking.Param{{Key: strings.Repeat("k", 256), Value: "x"}}}, mloop.EINVALID, "Param key"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := env.models.CreateLoggedModel(env.ctx, tt.req)
				wantCode(t, "create", err, tt.code)
				if !strings.Contains(mloop.ErrorMessage(err), tt.msg) {
					t.Errorf("message: got %q, want it to mention %q", mloop.ErrorMessage(err), tt.msg)
				}
			})
		}
		page, _, err := env.models.SearchLoggedModels(env.ctx, tracking.SearchLoggedModelsRequest{ExperimentIDs: []string{expID}})
		if err != nil || len(page) != 0 {
			t.Errorf("after failed creates: got %d models (err %v), want none", len(page), err)
		}
	})
}

func TestLoggedModelFinalizeAndDelete(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		env := newLoggedModelEnv(t, db)
		expID := env.experiment(t, "exp")
		m := env.create(t, tracking.CreateLoggedModelRequest{ExperimentID: expID, Name: "m"})

		ready, err := env.models.FinalizeLoggedModel(env.ctx, m.ModelID, tracking.LoggedModelReady)
		if err != nil {
			t.Fatalf("finalize: %v", err)
		}
		if ready.Status != tracking.LoggedModelReady || ready.LastUpdatedTimestamp <= m.LastUpdatedTimestamp {
			t.Errorf("finalized: got status %s updated at %d, want %s updated after %d",
				ready.Status, ready.LastUpdatedTimestamp, tracking.LoggedModelReady, m.LastUpdatedTimestamp)
		}
		if got := env.get(t, m.ModelID).Status; got != tracking.LoggedModelReady {
			t.Errorf("status after finalize: got %s, want %s", got, tracking.LoggedModelReady)
		}
		_, err = env.models.FinalizeLoggedModel(env.ctx, m.ModelID, "DONE")
		wantCode(t, "finalize with an unknown status", err, mloop.EINVALID)
		_, err = env.models.FinalizeLoggedModel(env.ctx, "m-0123", tracking.LoggedModelReady)
		wantCode(t, "finalize an unknown model", err, mloop.ENOTFOUND)

		if err := env.models.DeleteLoggedModel(env.ctx, m.ModelID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		_, err = env.models.GetLoggedModel(env.ctx, m.ModelID, false)
		wantCode(t, "get a deleted model", err, mloop.ENOTFOUND)
		if want := "Logged model with ID '" + m.ModelID + "' not found."; mloop.ErrorMessage(err) != want {
			t.Errorf("message: got %q, want %q", mloop.ErrorMessage(err), want)
		}
		gone, err := env.models.GetLoggedModel(env.ctx, m.ModelID, true)
		if err != nil || gone.LifecycleStage != tracking.LifecycleDeleted {
			t.Errorf("get a deleted model with allowDeleted: got %+v, %v, want it with lifecycle %s", gone, err, tracking.LifecycleDeleted)
		}
		page, _, err := env.models.SearchLoggedModels(env.ctx, tracking.SearchLoggedModelsRequest{ExperimentIDs: []string{expID}})
		if err != nil || len(page) != 0 {
			t.Errorf("search after delete: got %d models (err %v), want none", len(page), err)
		}
		wantCode(t, "delete an unknown model", env.models.DeleteLoggedModel(env.ctx, "m-0123"), mloop.ENOTFOUND)
	})
}

func TestLoggedModelTagsAndParams(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		env := newLoggedModelEnv(t, db)
		expID := env.experiment(t, "exp")
		m := env.create(t, tracking.CreateLoggedModelRequest{ExperimentID: expID,
			Tags: []tracking.Tag{{Key: "keep", Value: "1"}}, Params: []tracking.Param{{Key: "lr", Value: "0.1"}}})

		if err := env.models.SetLoggedModelTags(env.ctx, m.ModelID, []tracking.Tag{{Key: "keep", Value: "2"}, {Key: "drop", Value: "x"}}); err != nil {
			t.Fatalf("set tags: %v", err)
		}
		if err := env.models.DeleteLoggedModelTag(env.ctx, m.ModelID, "drop"); err != nil {
			t.Fatalf("delete tag: %v", err)
		}
		err := env.models.DeleteLoggedModelTag(env.ctx, m.ModelID, "drop")
		wantCode(t, "delete a missing tag", err, mloop.ENOTFOUND)
		wantCode(t, "set tags of an unknown model", env.models.SetLoggedModelTags(env.ctx, "m-0", []tracking.Tag{{Key: "a", Value: "b"}}), mloop.ENOTFOUND)
		wantCode(t, "set no tags on an unknown model", env.models.SetLoggedModelTags(env.ctx, "m-0", nil), mloop.ENOTFOUND)

		if err := env.models.LogLoggedModelParams(env.ctx, m.ModelID, []tracking.Param{{Key: "lr", Value: "0.1"}, {Key: "depth", Value: "3"}}); err != nil {
			t.Fatalf("log params: %v", err)
		}
		// A batch with a changed value writes nothing, not even its new params.
		err = env.models.LogLoggedModelParams(env.ctx, m.ModelID, []tracking.Param{{Key: "seed", Value: "7"}, {Key: "lr", Value: "0.2"}})
		wantCode(t, "change a param", err, mloop.EINVALID)
		if msg := mloop.ErrorMessage(err); !strings.Contains(msg, "key='lr'") || !strings.Contains(msg, "'0.2'") {
			t.Errorf("message: got %q, want it to name key 'lr' and the new value", msg)
		}
		wantCode(t, "log params of an unknown model", env.models.LogLoggedModelParams(env.ctx, "m-0", []tracking.Param{{Key: "a", Value: "b"}}), mloop.ENOTFOUND)

		got := env.get(t, m.ModelID)
		if want := []tracking.Tag{{Key: "keep", Value: "2"}}; !slices.Equal(got.Tags, want) {
			t.Errorf("tags: got %v, want %v", got.Tags, want)
		}
		if want := []tracking.Param{{Key: "depth", Value: "3"}, {Key: "lr", Value: "0.1"}}; !slices.Equal(got.Params, want) {
			t.Errorf("params: got %v, want %v", got.Params, want)
		}
	})
}

func TestLoggedModelMetrics(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		env := newLoggedModelEnv(t, db)
		expID := env.experiment(t, "exp")
		runID := env.run(t, expID)
		m := env.create(t, tracking.CreateLoggedModelRequest{ExperimentID: expID})
		point := func(key string, v float64, ts, step int64, dataset string) tracking.ModelMetric {
			return tracking.ModelMetric{Metric: tracking.Metric{Key: key, Value: v, Timestamp: ts, Step: step, RunID: runID},
				ModelID: m.ModelID, DatasetName: dataset, DatasetDigest: map[string]string{"": "", "test": "d1"}[dataset]}
		}
		metrics := []tracking.ModelMetric{
			point("acc", 0.5, 10, 0, ""),
			point("acc", 0.7, 20, 1, "test"),
			point("loss", math.NaN(), 10, 0, ""),
			point("loss", math.Inf(1), 11, 0, ""),
			{Metric: tracking.Metric{Key: "ignored", Value: 1, RunID: runID}}, // no model: not stored
		}
		if err := env.models.LogLoggedModelMetrics(env.ctx, metrics); err != nil {
			t.Fatalf("log metrics: %v", err)
		}
		// The same (key, timestamp, step, run) again is skipped, not an error.
		if err := env.models.LogLoggedModelMetrics(env.ctx, []tracking.ModelMetric{point("acc", 0.9, 10, 0, "")}); err != nil {
			t.Fatalf("log a repeated metric point: %v", err)
		}
		got := env.get(t, m.ModelID).Metrics
		want := []tracking.ModelMetric{metrics[0], metrics[2], metrics[3], metrics[1]}
		if len(got) != len(want) {
			t.Fatalf("metrics: got %d points %v, want %d", len(got), got, len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			sameValue := g.Value == w.Value || math.IsNaN(g.Value) && math.IsNaN(w.Value)
			g.Value, w.Value = 0, 0
			if g != w || !sameValue {
				t.Errorf("metric %d: got %+v (value %v), want %+v (value %v)", i, got[i], got[i].Value, want[i], want[i].Value)
			}
		}

		err := env.models.LogLoggedModelMetrics(env.ctx, []tracking.ModelMetric{{Metric: tracking.Metric{Key: "a", RunID: runID}, ModelID: "m-0"}})
		wantCode(t, "metric of an unknown model", err, mloop.ENOTFOUND)
		err = env.models.LogLoggedModelMetrics(env.ctx, []tracking.ModelMetric{{Metric: tracking.Metric{Key: "a", RunID: "nope"}, ModelID: m.ModelID}})
		wantCode(t, "metric of an unknown run", err, mloop.ENOTFOUND)
	})
}

func TestLoggedModelLinkModelVersion(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		env := newLoggedModelEnv(t, db)
		expID := env.experiment(t, "exp")
		m := env.create(t, tracking.CreateLoggedModelRequest{ExperimentID: expID})
		for _, v := range []struct {
			name    string
			version int64
		}{{"clf", 1}, {"clf", 2}, {"clf", 1}, {"other", 1}} {
			if err := env.models.LinkModelVersion(env.ctx, m.ModelID, v.name, v.version); err != nil {
				t.Fatalf("link %s/%d: %v", v.name, v.version, err)
			}
		}
		var tag string
		for _, tg := range env.get(t, m.ModelID).Tags {
			if tg.Key == tracking.ModelVersionsTag {
				tag = tg.Value
			}
		}
		var got []map[string]any
		if err := json.Unmarshal([]byte(tag), &got); err != nil {
			t.Fatalf("tag %s = %q: %v", tracking.ModelVersionsTag, tag, err)
		}
		want := []map[string]any{{"name": "clf", "version": 1.0}, {"name": "clf", "version": 2.0}, {"name": "other", "version": 1.0}}
		if len(got) != len(want) {
			t.Fatalf("tag %s: got %v, want %v", tracking.ModelVersionsTag, got, want)
		}
		for i := range want {
			if got[i]["name"] != want[i]["name"] || got[i]["version"] != want[i]["version"] {
				t.Errorf("entry %d: got %v, want %v", i, got[i], want[i])
			}
		}

		if err := env.models.SetLoggedModelTags(env.ctx, m.ModelID, []tracking.Tag{{Key: tracking.ModelVersionsTag, Value: "not json"}}); err != nil {
			t.Fatalf("set tag: %v", err)
		}
		wantCode(t, "link with a malformed tag", env.models.LinkModelVersion(env.ctx, m.ModelID, "clf", 3), mloop.EINVALID)
		wantCode(t, "link an unknown model", env.models.LinkModelVersion(env.ctx, "m-0", "clf", 3), mloop.ENOTFOUND)

		// Concurrent registrations of one model lose no entry: each update of
		// the tag holds the model's row.
		shared := env.create(t, tracking.CreateLoggedModelRequest{ExperimentID: expID})
		const n = 8
		errs := make(chan error, n)
		var wg sync.WaitGroup
		for v := 1; v <= n; v++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- env.models.LinkModelVersion(env.ctx, shared.ModelID, "clf", int64(v))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("concurrent link: %v", err)
			}
		}
		var versions []map[string]any
		for _, tg := range env.get(t, shared.ModelID).Tags {
			if tg.Key == tracking.ModelVersionsTag {
				if err := json.Unmarshal([]byte(tg.Value), &versions); err != nil {
					t.Fatalf("tag %s = %q: %v", tracking.ModelVersionsTag, tg.Value, err)
				}
			}
		}
		if len(versions) != n {
			t.Errorf("after %d concurrent links: got %d entries %v, want %d", n, len(versions), versions, n)
		}
	})
}

// assertModel compares two logged models field by field.
func assertModel(t *testing.T, got, want *tracking.LoggedModel) {
	t.Helper()
	g, w := *got, *want
	if !slices.Equal(g.Tags, w.Tags) {
		t.Errorf("tags: got %v, want %v", g.Tags, w.Tags)
	}
	if !slices.Equal(g.Params, w.Params) {
		t.Errorf("params: got %v, want %v", g.Params, w.Params)
	}
	if len(g.Metrics) != len(w.Metrics) {
		t.Errorf("metrics: got %v, want %v", g.Metrics, w.Metrics)
	}
	g.Tags, g.Params, g.Metrics, w.Tags, w.Params, w.Metrics = nil, nil, nil, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("model:\ngot  %+v\nwant %+v", g, w)
	}
}

func TestLoggedModelSearch(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		env := newLoggedModelEnv(t, db)
		store := sqlstore.NewLoggedModelStore(db)
		expA, expB := env.experiment(t, "a"), env.experiment(t, "b")
		run1, run2 := env.run(t, expA), env.run(t, expA)

		type spec struct {
			exp, name, modelType, run, status string
			params                            []tracking.Param
			tags                              []tracking.Tag
			metrics                           []tracking.ModelMetric
		}
		metric := func(key string, v float64, ts int64, run, dataset, digest string) tracking.ModelMetric {
			return tracking.ModelMetric{Metric: tracking.Metric{Key: key, Value: v, Timestamp: ts, RunID: run},
				DatasetName: dataset, DatasetDigest: digest}
		}
		specs := []spec{
			{exp: expA, name: "alpha", modelType: "clf", run: run1, status: tracking.LoggedModelReady,
				params: []tracking.Param{{Key: "lr", Value: "0.1"}}, tags: []tracking.Tag{{Key: "env", Value: "prod"}},
				metrics: []tracking.ModelMetric{metric("acc", 0.5, 10, run1, "", ""), metric("acc", 0.9, 20, run1, "test", "d1"),
					metric("loss", math.NaN(), 10, run1, "", "")}},
			{exp: expA, name: "Alpha2", modelType: "reg", run: run2, status: tracking.LoggedModelPending,
				params: []tracking.Param{{Key: "lr", Value: "0.2"}}, tags: []tracking.Tag{{Key: "env", Value: "dev"}},
				metrics: []tracking.ModelMetric{metric("acc", 0.8, 10, run2, "val", "d2")}},
			{exp: expA, name: "beta", run: run1, status: tracking.LoggedModelFailed},
			{exp: expB, name: "alpha", status: tracking.LoggedModelReady},
			{exp: expA, name: "deleted", status: tracking.LoggedModelReady},
		}
		created := map[string]*tracking.LoggedModel{}
		for _, s := range specs {
			m := env.create(t, tracking.CreateLoggedModelRequest{ExperimentID: s.exp, Name: s.name, ModelType: s.modelType,
				SourceRunID: s.run, Params: s.params, Tags: s.tags})
			if _, err := env.models.FinalizeLoggedModel(env.ctx, m.ModelID, s.status); err != nil {
				t.Fatalf("finalize %s: %v", s.name, err)
			}
			for i := range s.metrics {
				s.metrics[i].ModelID = m.ModelID
			}
			if err := env.models.LogLoggedModelMetrics(env.ctx, s.metrics); err != nil {
				t.Fatalf("log metrics of %s: %v", s.name, err)
			}
			created[s.exp+"/"+s.name] = m
		}
		if err := env.models.DeleteLoggedModel(env.ctx, created[expA+"/deleted"].ModelID); err != nil {
			t.Fatalf("delete: %v", err)
		}
		alphaCreated := float64(created[expA+"/alpha"].CreationTimestamp)

		attr := func(key, op string, v any) tracking.Comparison {
			return tracking.Comparison{Entity: tracking.EntityAttribute, Key: key, Op: op, Value: v}
		}
		cmp := func(entity, key, op string, v any) tracking.Comparison {
			return tracking.Comparison{Entity: entity, Key: key, Op: op, Value: v}
		}
		order := func(entity, key string, asc bool) tracking.LoggedModelOrder {
			return tracking.LoggedModelOrder{OrderBy: tracking.OrderBy{Entity: entity, Key: key, Asc: asc}}
		}
		tests := []struct {
			name  string
			q     tracking.LoggedModelQuery
			names []string
		}{
			{"newest first by default", tracking.LoggedModelQuery{}, []string{"beta", "Alpha2", "alpha"}},
			{"two experiments", tracking.LoggedModelQuery{ExperimentIDs: []string{expA, expB}}, []string{"alpha", "beta", "Alpha2", "alpha"}},
			{"name =", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("name", tracking.OpEq, "alpha")}}, []string{"alpha"}},
			{"LIKE is case-sensitive", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("name", tracking.OpLike, "alpha%")}}, []string{"alpha"}},
			{"ILIKE is not", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("name", tracking.OpILike, "ALPHA%")}}, []string{"Alpha2", "alpha"}},
			{"status =", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("status", tracking.OpEq, tracking.LoggedModelReady)}}, []string{"alpha"}},
			{"status IN", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("status", tracking.OpIn,
				[]string{tracking.LoggedModelReady, tracking.LoggedModelFailed})}}, []string{"beta", "alpha"}},
			{"model_type != skips models without one", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("model_type", tracking.OpNe, "clf")}}, []string{"Alpha2"}},
			{"source_run_id", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("source_run_id", tracking.OpEq, run1)}}, []string{"beta", "alpha"}},
			{"creation_timestamp >", tracking.LoggedModelQuery{Filter: tracking.Filter{attr("creation_timestamp", tracking.OpGt, alphaCreated)}}, []string{"beta", "Alpha2"}},
			{"any metric value matches", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityMetric, "acc", tracking.OpGt, 0.85)}}, []string{"alpha"}},
			{"metric on a dataset, no match", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityMetric, "acc", tracking.OpGt, 0.85)},
				Datasets: []tracking.DatasetRef{{Name: "val"}}}, nil},
			{"metric on a dataset", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityMetric, "acc", tracking.OpGe, 0.8)},
				Datasets: []tracking.DatasetRef{{Name: "val"}}}, []string{"Alpha2"}},
			{"datasets alone", tracking.LoggedModelQuery{Datasets: []tracking.DatasetRef{{Name: "test", Digest: "d1"}}}, []string{"alpha"}},
			{"dataset digest must match", tracking.LoggedModelQuery{Datasets: []tracking.DatasetRef{{Name: "test", Digest: "other"}}}, nil},
			{"NaN matches !=", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityMetric, "loss", tracking.OpNe, 1.0)}}, []string{"alpha"}},
			{"NaN does not equal 0", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityMetric, "loss", tracking.OpEq, 0.0)}}, nil},
			{"param =", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityParam, "lr", tracking.OpEq, "0.1")}}, []string{"alpha"}},
			{"param != needs the param", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityParam, "lr", tracking.OpNe, "0.1")}}, []string{"Alpha2"}},
			{"tag LIKE and attribute", tracking.LoggedModelQuery{Filter: tracking.Filter{cmp(tracking.EntityTag, "env", tracking.OpLike, "p%"),
				attr("name", tracking.OpEq, "alpha")}}, []string{"alpha"}},
			{"latest metric value, descending", tracking.LoggedModelQuery{OrderBy: []tracking.LoggedModelOrder{order(tracking.EntityMetric, "acc", false)}},
				[]string{"alpha", "Alpha2", "beta"}},
			{"latest metric value, ascending, missing last", tracking.LoggedModelQuery{OrderBy: []tracking.LoggedModelOrder{order(tracking.EntityMetric, "acc", true)}},
				[]string{"Alpha2", "alpha", "beta"}},
			{"metric of one dataset", tracking.LoggedModelQuery{OrderBy: []tracking.LoggedModelOrder{{
				OrderBy: tracking.OrderBy{Entity: tracking.EntityMetric, Key: "acc", Asc: true}, DatasetName: "val"}}},
				[]string{"Alpha2", "beta", "alpha"}},
			{"name, bytewise", tracking.LoggedModelQuery{OrderBy: []tracking.LoggedModelOrder{order(tracking.EntityAttribute, "name", true)}},
				[]string{"Alpha2", "alpha", "beta"}},
			{"model_type, missing last", tracking.LoggedModelQuery{OrderBy: []tracking.LoggedModelOrder{order(tracking.EntityAttribute, "model_type", false)}},
				[]string{"Alpha2", "alpha", "beta"}},
			{"oldest first", tracking.LoggedModelQuery{OrderBy: []tracking.LoggedModelOrder{order(tracking.EntityAttribute, "creation_timestamp", true)}},
				[]string{"alpha", "Alpha2", "beta"}},
			{"a page", tracking.LoggedModelQuery{MaxResults: 1, Offset: 1}, []string{"Alpha2"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				q := tt.q
				if q.ExperimentIDs == nil {
					q.ExperimentIDs = []string{expA}
				}
				if q.MaxResults == 0 {
					q.MaxResults = 100
				}
				models, err := store.SearchLoggedModels(env.ctx, q)
				if err != nil {
					t.Fatalf("search: %v", err)
				}
				var names []string
				for _, m := range models {
					names = append(names, m.Name)
				}
				if !slices.Equal(names, tt.names) {
					t.Errorf("got %v, want %v", names, tt.names)
				}
			})
		}

		// Results carry their tags, params and metrics.
		models, err := store.SearchLoggedModels(env.ctx, tracking.LoggedModelQuery{ExperimentIDs: []string{expA}, MaxResults: 100,
			Filter: tracking.Filter{attr("name", tracking.OpEq, "alpha")}})
		if err != nil || len(models) != 1 {
			t.Fatalf("search alpha: got %d models, %v; want 1", len(models), err)
		}
		if m := models[0]; len(m.Tags) != 1 || len(m.Params) != 1 || len(m.Metrics) != 3 {
			t.Errorf("alpha: got %d tags, %d params, %d metrics; want 1, 1, 3", len(m.Tags), len(m.Params), len(m.Metrics))
		}

		_, err = store.SearchLoggedModels(env.ctx, tracking.LoggedModelQuery{ExperimentIDs: []string{expA}, MaxResults: 10,
			Filter: tracking.Filter{attr("artifact_uri", tracking.OpEq, "x")}})
		wantCode(t, "filter on an unsupported attribute", err, mloop.EINVALID)
		_, err = store.SearchLoggedModels(env.ctx, tracking.LoggedModelQuery{ExperimentIDs: []string{"x"}, MaxResults: 10})
		wantCode(t, "non-integer experiment id", err, mloop.EINVALID)
	})
}
