package sqlstore_test

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// searchFixture is a small world for SearchRuns tests:
//
//	run  exp  start end  status    params (alpha, model, note)  metrics (acc, loss)  tags (team)  dataset (name/digest/context)
//	r1   A    100   200  FINISHED  0.1, CNN, xzy                0.9, 0.3             Red          train/d1/training
//	r2   A    200   -    RUNNING   0.2, cnn                     NaN, 0.1             red          eval/d2/eval
//	r3   A    300   400  FAILED    0.3, a*b                     0.5, -               -            -
//	r4   A    300   -    RUNNING   -                            +Inf, -Inf           -            -   (deleted)
//	r5   B    50    -    RUNNING   0.1, -, x_y                  0.7, -               -            -
//
// Run names are run-one, run-two, Run-three, run-four and run-five.
type searchFixture struct {
	s        *sqlstore.TrackingStore
	expA     string
	expB     string
	nameByID map[string]string
}

func newSearchFixture(t *testing.T, db *sqlstore.DB) *searchFixture {
	t.Helper()
	s, ctx := MustTrackingStore(t, db), context.Background()
	f := &searchFixture{s: s, expA: MustCreateExperiment(t, s, "A"), expB: MustCreateExperiment(t, s, "B"), nameByID: map[string]string{}}
	type run struct {
		n             int
		exp           string
		name          string
		start         int64
		end           *int64
		status        string
		params        []tracking.Param
		metrics       map[string]float64
		tags          []tracking.Tag
		dataset, dctx string
		digest        string
	}
	p := func(kv ...string) []tracking.Param {
		var out []tracking.Param
		for i := 0; i < len(kv); i += 2 {
			out = append(out, tracking.Param{Key: kv[i], Value: kv[i+1]})
		}
		return out
	}
	runs := []run{
		{1, f.expA, "run-one", 100, ptr(int64(200)), tracking.RunFinished, p("alpha", "0.1", "model", "CNN", "note", "xzy"),
			map[string]float64{"acc": 0.9, "loss": 0.3}, []tracking.Tag{{Key: "team", Value: "Red"}}, "train", "training", "d1"},
		{2, f.expA, "run-two", 200, nil, tracking.RunRunning, p("alpha", "0.2", "model", "cnn"),
			map[string]float64{"acc": math.NaN(), "loss": 0.1}, []tracking.Tag{{Key: "team", Value: "red"}}, "eval", "eval", "d2"},
		{3, f.expA, "Run-three", 300, ptr(int64(400)), tracking.RunFailed, p("alpha", "0.3", "model", "a*b"),
			map[string]float64{"acc": 0.5}, nil, "", "", ""},
		{4, f.expA, "run-four", 300, nil, tracking.RunRunning, nil,
			map[string]float64{"acc": math.Inf(1), "loss": math.Inf(-1)}, nil, "", "", ""},
		{5, f.expB, "run-five", 50, nil, tracking.RunRunning, p("alpha", "0.1", "note", "x_y"),
			map[string]float64{"acc": 0.7}, nil, "", "", ""},
	}
	for _, r := range runs {
		id := runID(r.n)
		f.nameByID[id] = r.name
		if err := s.CreateRun(ctx, &tracking.Run{Info: tracking.RunInfo{RunID: id, RunName: r.name, ExperimentID: r.exp,
			Status: r.status, StartTime: r.start, EndTime: r.end}, Tags: r.tags}); err != nil {
			t.Fatalf("create run %d: %v", r.n, err)
		}
		var ms []tracking.Metric
		for k, v := range r.metrics {
			ms = append(ms, tracking.Metric{Key: k, Value: v, Timestamp: 1, Step: 0})
		}
		MustLogBatch(t, s, id, ms, r.params, nil)
		if r.dataset != "" {
			if err := s.LogInputs(ctx, id, []tracking.DatasetInput{{Dataset: tracking.Dataset{Name: r.dataset, Digest: r.digest},
				Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: r.dctx}}}}, nil); err != nil {
				t.Fatalf("log inputs of run %d: %v", r.n, err)
			}
		}
	}
	if err := s.SetRunLifecycle(ctx, runID(4), tracking.LifecycleDeleted, 1); err != nil {
		t.Fatal(err)
	}
	return f
}

// names returns the names of runs, in order.
func (f *searchFixture) names(runs []*tracking.Run) []string {
	out := []string{}
	for _, r := range runs {
		out = append(out, f.nameByID[r.Info.RunID])
	}
	return out
}

func cmp(entity, key, op string, value any) tracking.Comparison {
	return tracking.Comparison{Entity: entity, Key: key, Op: op, Value: value}
}

func TestTrackingStore_SearchRunsFilter(t *testing.T) {
	const (
		attr    = tracking.EntityAttribute
		metric  = tracking.EntityMetric
		param   = tracking.EntityParam
		tag     = tracking.EntityTag
		dataset = tracking.EntityDataset
	)
	tests := []struct {
		name   string
		filter tracking.Filter
		view   string
		want   []string
	}{
		{"no filter: start_time desc", nil, "", []string{"Run-three", "run-two", "run-one", "run-five"}},
		{"deleted only", nil, tracking.ViewDeletedOnly, []string{"run-four"}},
		{"all: start_time ties by run id", nil, tracking.ViewAll, []string{"Run-three", "run-four", "run-two", "run-one", "run-five"}},
		{"metric >", tracking.Filter{cmp(metric, "acc", ">", 0.6)}, "", []string{"run-one", "run-five"}},
		{"metric != matches NaN", tracking.Filter{cmp(metric, "acc", "!=", 0.9)}, "", []string{"Run-three", "run-two", "run-five"}},
		{"metric <= skips runs without it", tracking.Filter{cmp(metric, "loss", "<=", 0.3)}, "", []string{"run-two", "run-one"}},
		{"metric = NaN never", tracking.Filter{cmp(metric, "acc", "=", 0.0)}, "", []string{}},
		{"metric -Inf", tracking.Filter{cmp(metric, "loss", "<", -1e308)}, tracking.ViewAll, []string{"run-four"}},
		{"metric IS NULL", tracking.Filter{cmp(metric, "loss", "IS NULL", nil)}, "", []string{"Run-three", "run-five"}},
		{"param = is case-sensitive", tracking.Filter{cmp(param, "model", "=", "cnn")}, "", []string{"run-two"}},
		{"param LIKE is case-sensitive", tracking.Filter{cmp(param, "model", "LIKE", "C%")}, "", []string{"run-one"}},
		{"param ILIKE", tracking.Filter{cmp(param, "model", "ILIKE", "c%")}, "", []string{"run-two", "run-one"}},
		{"param LIKE with glob characters", tracking.Filter{cmp(param, "model", "LIKE", "a*%")}, "", []string{"Run-three"}},
		{"param LIKE _ wildcard", tracking.Filter{cmp(param, "note", "LIKE", "x_y")}, "", []string{"run-one", "run-five"}},
		{"param LIKE escaped _", tracking.Filter{cmp(param, "note", "LIKE", `x\_y`)}, "", []string{"run-five"}},
		{"param ILIKE escaped _", tracking.Filter{cmp(param, "note", "ILIKE", `X\_Y`)}, "", []string{"run-five"}},
		{"param !=", tracking.Filter{cmp(param, "alpha", "!=", "0.1")}, "", []string{"Run-three", "run-two"}},
		{"param IS NOT NULL", tracking.Filter{cmp(param, "model", "IS NOT NULL", nil)}, "", []string{"Run-three", "run-two", "run-one"}},
		{"tag =", tracking.Filter{cmp(tag, "team", "=", "red")}, "", []string{"run-two"}},
		{"tag ILIKE", tracking.Filter{cmp(tag, "team", "ILIKE", "RED")}, "", []string{"run-two", "run-one"}},
		{"tag IS NULL", tracking.Filter{cmp(tag, "team", "IS NULL", nil)}, "", []string{"Run-three", "run-five"}},
		{"tag mlflow.runName", tracking.Filter{cmp(tag, "mlflow.runName", "=", "run-five")}, "", []string{"run-five"}},
		{"status =", tracking.Filter{cmp(attr, "status", "=", "FINISHED")}, "", []string{"run-one"}},
		{"status IN", tracking.Filter{cmp(attr, "status", "IN", []string{"FINISHED", "FAILED"})}, "", []string{"Run-three", "run-one"}},
		{"status NOT IN", tracking.Filter{cmp(attr, "status", "NOT IN", []string{"FINISHED", "FAILED"})}, "", []string{"run-two", "run-five"}},
		{"run_id IN", tracking.Filter{cmp(attr, "run_id", "IN", []string{runID(1), runID(3), runID(4)})}, "", []string{"Run-three", "run-one"}},
		{"run_id IN empty", tracking.Filter{cmp(attr, "run_id", "IN", []string{})}, "", []string{}},
		{"run_name =", tracking.Filter{cmp(attr, "run_name", "=", "run-one")}, "", []string{"run-one"}},
		{"run_name LIKE", tracking.Filter{cmp(attr, "run_name", "LIKE", "run-%")}, "", []string{"run-two", "run-one", "run-five"}},
		{"run_name ILIKE", tracking.Filter{cmp(attr, "run_name", "ILIKE", "run-%")}, "", []string{"Run-three", "run-two", "run-one", "run-five"}},
		{"start_time >=", tracking.Filter{cmp(attr, "start_time", ">=", 200.0)}, "", []string{"Run-three", "run-two"}},
		{"end_time IS NULL", tracking.Filter{cmp(attr, "end_time", "IS NULL", nil)}, "", []string{"run-two", "run-five"}},
		{"end_time >", tracking.Filter{cmp(attr, "end_time", ">", 150.0)}, "", []string{"Run-three", "run-one"}},
		{"lifecycle_stage", tracking.Filter{cmp(attr, "lifecycle_stage", "=", "deleted")}, tracking.ViewAll, []string{"run-four"}},
		{"dataset name", tracking.Filter{cmp(dataset, "name", "=", "train")}, "", []string{"run-one"}},
		{"dataset context", tracking.Filter{cmp(dataset, "context", "=", "eval")}, "", []string{"run-two"}},
		{"dataset digest IN", tracking.Filter{cmp(dataset, "digest", "IN", []string{"d1", "d2"})}, "", []string{"run-two", "run-one"}},
		{"dataset name IS NULL", tracking.Filter{cmp(dataset, "name", "IS NULL", nil)}, "", []string{"Run-three", "run-five"}},
		{"metric and param", tracking.Filter{cmp(metric, "acc", ">", 0.6), cmp(param, "alpha", "=", "0.1")}, "", []string{"run-one", "run-five"}},
		{"three clauses", tracking.Filter{cmp(metric, "acc", ">", 0.6), cmp(param, "alpha", "=", "0.1"), cmp(attr, "start_time", ">", 60.0)}, "",
			[]string{"run-one"}},
	}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		f := newSearchFixture(t, db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				runs, err := f.s.SearchRuns(context.Background(), tracking.RunQuery{
					ExperimentIDs: []string{f.expA, f.expB}, Filter: tt.filter, ViewType: tt.view, MaxResults: 100})
				if err != nil {
					t.Fatalf("search: %v", err)
				}
				if got := f.names(runs); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("search %v:\ngot  %v\nwant %v", tt.filter, got, tt.want)
				}
			})
		}
	})
}

func TestTrackingStore_SearchRunsOrder(t *testing.T) {
	ob := func(entity, key string, asc bool) tracking.OrderBy {
		return tracking.OrderBy{Entity: entity, Key: key, Asc: asc}
	}
	tests := []struct {
		name  string
		order []tracking.OrderBy
		view  string
		want  []string
	}{
		{"metric desc: NaN after numbers", []tracking.OrderBy{ob("metric", "acc", false)}, "", []string{"run-one", "run-five", "Run-three", "run-two"}},
		{"metric asc: NaN after numbers", []tracking.OrderBy{ob("metric", "acc", true)}, "", []string{"Run-three", "run-five", "run-one", "run-two"}},
		{"metric with infinities", []tracking.OrderBy{ob("metric", "loss", true)}, tracking.ViewAll, []string{"run-four", "run-two", "run-one", "Run-three", "run-five"}},
		{"metric asc: missing last", []tracking.OrderBy{ob("metric", "loss", true)}, "", []string{"run-two", "run-one", "Run-three", "run-five"}},
		{"metric desc: missing last", []tracking.OrderBy{ob("metric", "loss", false)}, "", []string{"run-one", "run-two", "Run-three", "run-five"}},
		{"param desc, ties by start_time", []tracking.OrderBy{ob("param", "alpha", false)}, "", []string{"Run-three", "run-two", "run-one", "run-five"}},
		{"tag asc by bytes, missing last", []tracking.OrderBy{ob("tag", "team", true)}, "", []string{"run-one", "run-two", "Run-three", "run-five"}},
		{"start_time asc replaces the default", []tracking.OrderBy{ob("attribute", "start_time", true)}, "", []string{"run-five", "run-one", "run-two", "Run-three"}},
		{"end_time desc: missing last", []tracking.OrderBy{ob("attribute", "end_time", false)}, "", []string{"Run-three", "run-one", "run-two", "run-five"}},
		{"run_name asc by bytes", []tracking.OrderBy{ob("attribute", "run_name", true)}, "", []string{"Run-three", "run-five", "run-one", "run-two"}},
		{"two terms", []tracking.OrderBy{ob("param", "alpha", true), ob("metric", "acc", false)}, "", []string{"run-one", "run-five", "run-two", "Run-three"}},
	}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		f := newSearchFixture(t, db)
		ctx := context.Background()
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				runs, err := f.s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{f.expA, f.expB}, OrderBy: tt.order, ViewType: tt.view})
				if err != nil {
					t.Fatalf("search: %v", err)
				}
				if got := f.names(runs); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("order %v:\ngot  %v\nwant %v", tt.order, got, tt.want)
				}
			})
		}
		// Paging over the default order.
		runs, err := f.s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{f.expA, f.expB}, MaxResults: 2, Offset: 1})
		if got, want := f.names(runs), []string{"run-two", "run-one"}; err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("page: got %v, %v want %v", got, err, want)
		}
		runs, err = f.s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{f.expB, "nope"}, Offset: 1})
		if err != nil || len(runs) != 0 {
			t.Errorf("offset past the end: got %v, %v want none", f.names(runs), err)
		}
		_, err = f.s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{f.expA},
			OrderBy: []tracking.OrderBy{ob("metric", "acc", true), ob("metric", "acc", false)}})
		assertError(t, err, mloop.EINVALID, "")
	})
}

func TestTrackingStore_SearchRunsData(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		f := newSearchFixture(t, db)
		ctx := context.Background()
		runs, err := f.s.SearchRuns(ctx, tracking.RunQuery{ExperimentIDs: []string{f.expA}, ViewType: tracking.ViewAll})
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		for _, r := range runs {
			got := MustGetRun(t, f.s, r.Info.RunID)
			// NaN != NaN: compare run two's metrics apart.
			if r.Info.RunID == runID(2) {
				if len(r.Metrics) != 2 || !math.IsNaN(r.Metrics[0].Value) || r.Metrics[1] != got.Metrics[1] {
					t.Errorf("run two metrics: got %v want NaN acc and %v", r.Metrics, got.Metrics[1])
				}
				r.Metrics, got.Metrics = nil, nil
			}
			if !reflect.DeepEqual(r, got) {
				t.Errorf("search result of %s differs from GetRun:\ngot  %+v\nwant %+v", r.Info.RunID, r, got)
			}
		}
		r1 := MustGetRun(t, f.s, runID(1))
		if len(r1.Params) != 3 || len(r1.Metrics) != 2 || len(r1.Tags) != 2 || len(r1.Inputs) != 1 || r1.Inputs[0].Dataset.Name != "train" {
			t.Errorf("run one data: got %+v want 3 params, 2 metrics, 2 tags, input train", r1)
		}
	})
}

func TestTrackingStore_SearchRunsInvalid(t *testing.T) {
	tests := []struct {
		name   string
		filter tracking.Filter
		order  []tracking.OrderBy
		view   string
	}{
		{name: "unknown attribute", filter: tracking.Filter{cmp("attribute", "color", "=", "red")}},
		{name: "unknown entity", filter: tracking.Filter{cmp("model", "x", "=", "red")}},
		{name: "metric with a string", filter: tracking.Filter{cmp("metric", "acc", ">", "0.5")}},
		{name: "metric LIKE", filter: tracking.Filter{cmp("metric", "acc", "LIKE", "0.5")}},
		{name: "param with a number", filter: tracking.Filter{cmp("param", "alpha", "=", 0.5)}},
		{name: "IN without a list", filter: tracking.Filter{cmp("attribute", "run_id", "IN", "x")}},
		{name: "unknown operator", filter: tracking.Filter{cmp("param", "alpha", "~", "x")}},
		{name: "pattern ending with an escape", filter: tracking.Filter{cmp("param", "alpha", "LIKE", `0\`)}},
		{name: "unknown dataset key", filter: tracking.Filter{cmp("dataset", "size", "=", "1")}},
		{name: "unknown order attribute", order: []tracking.OrderBy{{Entity: "attribute", Key: "color"}}},
		{name: "unknown order entity", order: []tracking.OrderBy{{Entity: "dataset", Key: "name"}}},
		{name: "unknown view type", view: "SOME"},
	}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s := MustTrackingStore(t, db)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := s.SearchRuns(context.Background(), tracking.RunQuery{ExperimentIDs: []string{"0"}, Filter: tt.filter, OrderBy: tt.order, ViewType: tt.view})
				assertError(t, err, mloop.EINVALID, "")
			})
		}
	})
}

func TestTrackingStore_SearchExperiments(t *testing.T) {
	attr := func(key, op string, v any) tracking.Comparison { return cmp("attribute", key, op, v) }
	ob := func(key string, asc bool) tracking.OrderBy {
		return tracking.OrderBy{Entity: "attribute", Key: key, Asc: asc}
	}
	tests := []struct {
		name   string
		filter tracking.Filter
		order  []tracking.OrderBy
		view   string
		want   []string
	}{
		{name: "default order: creation_time desc, id", want: []string{"Default", "Beta", "alpha"}},
		{name: "all", view: tracking.ViewAll, want: []string{"Default", "Beta", "gamma", "alpha"}},
		{name: "deleted only", view: tracking.ViewDeletedOnly, want: []string{"gamma"}},
		{name: "name =", filter: tracking.Filter{attr("name", "=", "alpha")}, want: []string{"alpha"}},
		{name: "name !=", filter: tracking.Filter{attr("name", "!=", "alpha")}, want: []string{"Default", "Beta"}},
		{name: "name LIKE", filter: tracking.Filter{attr("name", "LIKE", "%a")}, want: []string{"Beta", "alpha"}},
		{name: "name LIKE is case-sensitive", filter: tracking.Filter{attr("name", "LIKE", "b%")}, want: []string{}},
		{name: "name ILIKE", filter: tracking.Filter{attr("name", "ILIKE", "b%")}, want: []string{"Beta"}},
		{name: "creation_time >=", filter: tracking.Filter{attr("creation_time", ">=", 200.0)}, want: []string{"Default", "Beta"}},
		{name: "creation_time =", filter: tracking.Filter{attr("creation_time", "=", 100.0)}, want: []string{"alpha"}},
		{name: "last_update_time <", filter: tracking.Filter{attr("last_update_time", "<", 1000.0)}, want: []string{"Beta", "alpha"}},
		{name: "tag =", filter: tracking.Filter{cmp("tag", "owner", "=", "ann")}, want: []string{"alpha"}},
		{name: "tag LIKE", filter: tracking.Filter{cmp("tag", "owner", "LIKE", "%b")}, want: []string{"Beta"}},
		{name: "tag IS NULL", filter: tracking.Filter{cmp("tag", "owner", "IS NULL", nil)}, want: []string{"Default"}},
		{name: "name asc by bytes", order: []tracking.OrderBy{ob("name", true)}, want: []string{"Beta", "Default", "alpha"}},
		{name: "creation_time asc", order: []tracking.OrderBy{ob("creation_time", true)}, want: []string{"alpha", "Beta", "Default"}},
		{name: "creation_time desc: ties by id desc", order: []tracking.OrderBy{ob("creation_time", false)}, view: tracking.ViewAll,
			want: []string{"Default", "gamma", "Beta", "alpha"}},
		{name: "experiment_id desc", order: []tracking.OrderBy{ob("experiment_id", false)}, want: []string{"Beta", "alpha", "Default"}},
		{name: "last_update_time asc", order: []tracking.OrderBy{ob("last_update_time", true)}, want: []string{"alpha", "Beta", "Default"}},
	}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		for _, e := range []tracking.Experiment{
			{Name: "alpha", CreationTime: 100, LastUpdateTime: 100, Tags: []tracking.Tag{{Key: "owner", Value: "ann"}}},
			{Name: "Beta", CreationTime: 200, LastUpdateTime: 200, Tags: []tracking.Tag{{Key: "owner", Value: "bob"}}},
			{Name: "gamma", CreationTime: 200, LastUpdateTime: 200},
		} {
			if _, err := s.CreateExperiment(ctx, &e, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.SetExperimentLifecycle(ctx, "3", tracking.LifecycleDeleted, 300); err != nil {
			t.Fatal(err)
		}
		names := func(exps []*tracking.Experiment) []string {
			out := []string{}
			for _, e := range exps {
				out = append(out, e.Name)
			}
			return out
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				exps, err := s.SearchExperiments(ctx, tracking.ExperimentQuery{Filter: tt.filter, OrderBy: tt.order, ViewType: tt.view, MaxResults: 10})
				if err != nil {
					t.Fatalf("search: %v", err)
				}
				if got := names(exps); !reflect.DeepEqual(got, tt.want) {
					t.Errorf("search:\ngot  %v\nwant %v", got, tt.want)
				}
			})
		}
		exps, err := s.SearchExperiments(ctx, tracking.ExperimentQuery{MaxResults: 1, Offset: 1})
		if err != nil || len(exps) != 1 || exps[0].Name != "Beta" || len(exps[0].Tags) != 1 || exps[0].Tags[0].Value != "bob" {
			t.Errorf("page 2 of size 1: got %+v, %v want Beta with its tag", exps, err)
		}
		for _, q := range []tracking.ExperimentQuery{
			{Filter: tracking.Filter{attr("lifecycle_stage", "=", "x")}},
			{Filter: tracking.Filter{cmp("param", "a", "=", "x")}},
			{Filter: tracking.Filter{attr("creation_time", "=", "x")}},
			{OrderBy: []tracking.OrderBy{{Entity: "tag", Key: "owner"}}},
			{OrderBy: []tracking.OrderBy{ob("artifact_location", true)}},
			{ViewType: "NONE"},
		} {
			_, err := s.SearchExperiments(ctx, q)
			assertError(t, err, mloop.EINVALID, "")
		}
	})
}

// TestTrackingStore_SearchRunsPagesByMetric checks that pages of a search
// ordered by a metric, which may be answered by a bounded scan of the
// metric's values in order, are the slices of the complete ordering: with
// tied values (also at the scan's bound), NaN and missing values, deleted
// runs, runs of another experiment, filters of every selectivity and
// offsets.
func TestTrackingStore_SearchRunsPagesByMetric(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp, other := MustCreateExperiment(t, s, "paged"), MustCreateExperiment(t, s, "other")
		const runs = 160
		for i := range runs {
			id, e := runID(100+i), exp
			if i%23 == 0 {
				e = other
			}
			if err := s.CreateRun(ctx, &tracking.Run{Info: tracking.RunInfo{RunID: id, ExperimentID: e,
				Status: tracking.RunFinished, StartTime: int64(i % 7)}}); err != nil {
				t.Fatalf("create run %d: %v", i, err)
			}
			var ms []tracking.Metric
			switch {
			case i%11 == 0: // no m
			case i%13 == 0:
				ms = append(ms, tracking.Metric{Key: "m", Value: math.NaN(), Timestamp: 1})
			default:
				ms = append(ms, tracking.Metric{Key: "m", Value: float64(i % 17), Timestamp: 1}) // many ties
			}
			ms = append(ms, tracking.Metric{Key: "n", Value: float64(i % 5), Timestamp: 1})
			MustLogBatch(t, s, id, ms, []tracking.Param{{Key: "p", Value: fmt.Sprint(i % 3)}}, nil)
			if i%19 == 0 {
				if err := s.SetRunLifecycle(ctx, id, tracking.LifecycleDeleted, 1); err != nil {
					t.Fatalf("delete run %d: %v", i, err)
				}
			}
		}
		filters := map[string]tracking.Filter{
			"none":            nil,
			"broad":           {cmp("metric", "n", ">=", 1.0)},
			"selective":       {cmp("param", "p", "=", "1"), cmp("metric", "n", "=", 2.0)},
			"nothing":         {cmp("param", "p", "=", "9")},
			"missing m":       {cmp("metric", "m", "IS NULL", nil)},
			"m not a number":  {cmp("metric", "m", "!=", 3.0), cmp("param", "p", "!=", "0")},
			"high m, param 2": {cmp("metric", "m", ">", 12.0), cmp("param", "p", "=", "2")},
		}
		for name, filter := range filters {
			for _, order := range [][]tracking.OrderBy{
				{{Entity: "metric", Key: "m"}},
				{{Entity: "metric", Key: "m", Asc: true}},
				{{Entity: "metric", Key: "m"}, {Entity: "metric", Key: "n", Asc: true}},
				{{Entity: "metric", Key: "absent"}},
			} {
				for _, view := range []string{tracking.ViewActiveOnly, tracking.ViewAll} {
					q := tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: filter, OrderBy: order, ViewType: view}
					all, err := s.SearchRuns(ctx, q)
					if err != nil {
						t.Fatalf("%s %v: %v", name, order, err)
					}
					for _, page := range []struct{ max, offset int }{{1, 0}, {3, 0}, {3, 2}, {10, 7}, {50, 0}, {200, 0}} {
						q.MaxResults, q.Offset = page.max, page.offset
						got, err := s.SearchRuns(ctx, q)
						if err != nil {
							t.Fatalf("%s %v %+v: %v", name, order, page, err)
						}
						want := all[min(page.offset, len(all)):min(page.offset+page.max, len(all))]
						if !reflect.DeepEqual(runIDs(got), runIDs(want)) {
							t.Errorf("%s, order %v, view %q, page %+v: got %v, want %v", name, order, view, page, runIDs(got), runIDs(want))
						}
					}
				}
			}
		}
	})
}

// runIDs returns the ids of runs, in order.
func runIDs(runs []*tracking.Run) []string {
	ids := make([]string, len(runs))
	for i, r := range runs {
		ids[i] = r.Info.RunID
	}
	return ids
}
