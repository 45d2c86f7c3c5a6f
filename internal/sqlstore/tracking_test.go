package sqlstore_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// This file is the conformance suite of tracking.Store: every test runs on
// SQLite and on PostgreSQL through forEachDialect. Metric tests live in
// tracking_metrics_test.go and search tests in tracking_search_test.go.

// runID returns a fixed, valid 32-hex run id for n, so tests can predict
// the run_uuid tie-breaker of searches.
func runID(n int) string { return fmt.Sprintf("%032d", n) }

// MustTrackingStore returns a tracking store on db.
func MustTrackingStore(tb testing.TB, db *sqlstore.DB) *sqlstore.TrackingStore {
	tb.Helper()
	s := sqlstore.NewTrackingStore(db)
	tb.Cleanup(func() { s.Close() })
	return s
}

// MustCreateExperiment creates an experiment named name and returns its id.
func MustCreateExperiment(tb testing.TB, s *sqlstore.TrackingStore, name string, tags ...tracking.Tag) string {
	tb.Helper()
	id, err := s.CreateExperiment(context.Background(), &tracking.Experiment{Name: name, Tags: tags, CreationTime: 1, LastUpdateTime: 1},
		func(id string) string { return "mlflow-artifacts:/" + id })
	if err != nil {
		tb.Fatalf("create experiment %q: %v", name, err)
	}
	return id
}

// MustCreateRun creates a running run with id in experiment expID.
func MustCreateRun(tb testing.TB, s *sqlstore.TrackingStore, expID, id string, tags ...tracking.Tag) *tracking.Run {
	tb.Helper()
	r := &tracking.Run{Info: tracking.RunInfo{RunID: id, ExperimentID: expID, UserID: "ann", StartTime: 1000}, Tags: tags}
	if err := s.CreateRun(context.Background(), r); err != nil {
		tb.Fatalf("create run %s: %v", id, err)
	}
	return r
}

// MustLogBatch logs a batch and fails the test on error.
func MustLogBatch(tb testing.TB, s *sqlstore.TrackingStore, id string, metrics []tracking.Metric, params []tracking.Param, tags []tracking.Tag) {
	tb.Helper()
	if err := s.LogBatch(context.Background(), id, metrics, params, tags); err != nil {
		tb.Fatalf("log batch to run %s: %v", id, err)
	}
}

// MustGetRun returns a run and fails the test on error.
func MustGetRun(tb testing.TB, s *sqlstore.TrackingStore, id string) *tracking.Run {
	tb.Helper()
	r, err := s.GetRun(context.Background(), id)
	if err != nil {
		tb.Fatalf("get run %s: %v", id, err)
	}
	return r
}

// assertError checks err's kind and, when msg is not empty, its message.
func assertError(tb testing.TB, err error, code, msg string) {
	tb.Helper()
	if got := mloop.ErrorCode(err); got != code {
		tb.Fatalf("error kind: got %q want %q (error: %v)", got, code, err)
	}
	if msg != "" {
		if got := mloop.ErrorMessage(err); got != msg {
			tb.Fatalf("error message:\ngot  %q\nwant %q", got, msg)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestTrackingStore_DefaultExperiment(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		for _, get := range []func() (*tracking.Experiment, error){
			func() (*tracking.Experiment, error) { return s.GetExperiment(ctx, tracking.DefaultExperimentID) },
			func() (*tracking.Experiment, error) { return s.GetExperimentByName(ctx, "Default") },
		} {
			e, err := get()
			if err != nil {
				t.Fatalf("get default experiment: %v", err)
			}
			if e.ID != "0" || e.Name != "Default" || e.ArtifactLocation != "" || e.LifecycleStage != tracking.LifecycleActive {
				t.Errorf("default experiment: got %+v want id 0, name Default, no stored location (the service places it under its root), active", e)
			}
			if e.CreationTime == 0 || e.LastUpdateTime != e.CreationTime {
				t.Errorf("default experiment times: got creation %d, last update %d, want equal and set", e.CreationTime, e.LastUpdateTime)
			}
		}
	})
}

func TestTrackingStore_CreateExperiment(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		var asked string
		id, err := s.CreateExperiment(ctx, &tracking.Experiment{
			Name: "exp", CreationTime: 10, LastUpdateTime: 11,
			Tags: []tracking.Tag{{Key: "b", Value: "1"}, {Key: "a", Value: "2"}, {Key: "b", Value: "3"}},
		}, func(id string) string { asked = id; return "s3://bucket/" + id })
		if err != nil {
			t.Fatalf("create experiment: %v", err)
		}
		if id != "1" || asked != "1" {
			t.Errorf("new experiment id: got %q (callback got %q) want 1", id, asked)
		}
		want := &tracking.Experiment{ID: "1", Name: "exp", ArtifactLocation: "s3://bucket/1", LifecycleStage: tracking.LifecycleActive,
			CreationTime: 10, LastUpdateTime: 11, Tags: []tracking.Tag{{Key: "a", Value: "2"}, {Key: "b", Value: "3"}}}
		got, err := s.GetExperiment(ctx, id)
		if err != nil {
			t.Fatalf("get experiment: %v", err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("get experiment:\ngot  %+v\nwant %+v", got, want)
		}
		if got, err = s.GetExperimentByName(ctx, "exp"); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("get experiment by name: got %+v, %v want %+v", got, err, want)
		}

		id2, err := s.CreateExperiment(ctx, &tracking.Experiment{Name: "explicit", ArtifactLocation: "file:///tmp/x"},
			func(string) string { t.Error("callback called although the location was given"); return "" })
		if err != nil {
			t.Fatalf("create experiment with location: %v", err)
		}
		if e, err := s.GetExperiment(ctx, id2); err != nil || e.ArtifactLocation != "file:///tmp/x" || id2 != "2" {
			t.Errorf("explicit location: got id %s, %+v, %v want id 2 and file:///tmp/x", id2, e, err)
		}

		_, err = s.CreateExperiment(ctx, &tracking.Experiment{Name: "exp"}, nil)
		assertError(t, err, mloop.EEXISTS, "Experiment(name=exp) already exists.")
		// Names are case-sensitive.
		if _, err := s.CreateExperiment(ctx, &tracking.Experiment{Name: "EXP"}, nil); err != nil {
			t.Errorf("create EXP next to exp: %v", err)
		}
	})
}

func TestTrackingStore_GetExperimentNotFound(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		for _, id := range []string{"999", "abc", ""} {
			_, err := s.GetExperiment(ctx, id)
			assertError(t, err, mloop.ENOTFOUND, "No Experiment with id="+id+" exists")
		}
		_, err := s.GetExperimentByName(ctx, "nope")
		assertError(t, err, mloop.ENOTFOUND, "Could not find experiment with name 'nope'")
	})
}

func TestTrackingStore_RenameExperiment(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		a := MustCreateExperiment(t, s, "a")
		MustCreateExperiment(t, s, "b")
		gone := MustCreateExperiment(t, s, "gone")
		if err := s.SetExperimentLifecycle(ctx, gone, tracking.LifecycleDeleted, 5); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name, id, newName, code, msg string
		}{
			{"new name", a, "a2", "", ""},
			{"own name", a, "a2", "", ""},
			{"taken", a, "b", mloop.EEXISTS, "Experiment(name=b) already exists."},
			{"deleted", gone, "x", mloop.ECONFLICT, "Cannot rename a non-active experiment."},
			{"unknown", "42", "x", mloop.ENOTFOUND, "No Experiment with id=42 exists"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := s.RenameExperiment(ctx, tt.id, tt.newName, 77)
				assertError(t, err, tt.code, tt.msg)
			})
		}
		e, err := s.GetExperiment(ctx, a)
		if err != nil || e.Name != "a2" || e.LastUpdateTime != 77 {
			t.Errorf("renamed experiment: got %+v, %v want name a2, last update 77", e, err)
		}
	})
}

func TestTrackingStore_ExperimentLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		MustCreateRun(t, s, exp, runID(1))
		MustCreateRun(t, s, exp, runID(2))
		other := MustCreateExperiment(t, s, "other")
		MustCreateRun(t, s, other, runID(3))
		if err := s.SetRunLifecycle(ctx, runID(2), tracking.LifecycleDeleted, 3); err != nil {
			t.Fatal(err)
		}
		stages := func() []string {
			var out []string
			for _, id := range []string{runID(1), runID(2), runID(3)} {
				out = append(out, MustGetRun(t, s, id).Info.LifecycleStage)
			}
			return out
		}

		if err := s.SetExperimentLifecycle(ctx, exp, tracking.LifecycleDeleted, 50); err != nil {
			t.Fatalf("delete experiment: %v", err)
		}
		if e, _ := s.GetExperiment(ctx, exp); e.LifecycleStage != tracking.LifecycleDeleted || e.LastUpdateTime != 50 {
			t.Errorf("deleted experiment: got %+v want deleted, last update 50", e)
		}
		if got, want := stages(), []string{"deleted", "deleted", "active"}; !reflect.DeepEqual(got, want) {
			t.Errorf("run stages after delete: got %v want %v", got, want)
		}
		err := s.SetExperimentLifecycle(ctx, exp, tracking.LifecycleDeleted, 51)
		assertError(t, err, mloop.ENOTFOUND, "No Experiment with id="+exp+" exists")
		err = s.CreateRun(ctx, &tracking.Run{Info: tracking.RunInfo{RunID: runID(9), ExperimentID: exp}})
		assertError(t, err, mloop.EINVALID, "The experiment "+exp+" must be in the 'active' state. Current state is deleted.")

		// Restoring restores every run of the experiment, as MLflow does.
		if err := s.SetExperimentLifecycle(ctx, exp, tracking.LifecycleActive, 60); err != nil {
			t.Fatalf("restore experiment: %v", err)
		}
		if got, want := stages(), []string{"active", "active", "active"}; !reflect.DeepEqual(got, want) {
			t.Errorf("run stages after restore: got %v want %v", got, want)
		}
		err = s.SetExperimentLifecycle(ctx, exp, tracking.LifecycleActive, 61)
		assertError(t, err, mloop.ENOTFOUND, "No Experiment with id="+exp+" exists")
		err = s.SetExperimentLifecycle(ctx, "404", tracking.LifecycleDeleted, 61)
		assertError(t, err, mloop.ENOTFOUND, "No Experiment with id=404 exists")
		err = s.SetExperimentLifecycle(ctx, exp, "archived", 61)
		assertError(t, err, mloop.EINVALID, "")
	})
}

func TestTrackingStore_ExperimentTags(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e", tracking.Tag{Key: "k", Value: "v0"})
		for _, tag := range []tracking.Tag{{Key: "k", Value: "v1"}, {Key: "j", Value: "w"}} {
			if err := s.SetExperimentTag(ctx, exp, tag); err != nil {
				t.Fatalf("set tag %v: %v", tag, err)
			}
		}
		e, _ := s.GetExperiment(ctx, exp)
		if want := []tracking.Tag{{Key: "j", Value: "w"}, {Key: "k", Value: "v1"}}; !reflect.DeepEqual(e.Tags, want) {
			t.Errorf("tags after upsert: got %v want %v", e.Tags, want)
		}
		if err := s.DeleteExperimentTag(ctx, exp, "j"); err != nil {
			t.Fatalf("delete tag: %v", err)
		}
		e, _ = s.GetExperiment(ctx, exp)
		if want := []tracking.Tag{{Key: "k", Value: "v1"}}; !reflect.DeepEqual(e.Tags, want) {
			t.Errorf("tags after delete: got %v want %v", e.Tags, want)
		}
		err := s.DeleteExperimentTag(ctx, exp, "j")
		assertError(t, err, mloop.ENOTFOUND, "No tag with name: j in experiment with id "+exp)
		assertError(t, s.SetExperimentTag(ctx, "77", tracking.Tag{Key: "a"}), mloop.ENOTFOUND, "No Experiment with id=77 exists")
		assertError(t, s.DeleteExperimentTag(ctx, "77", "a"), mloop.ENOTFOUND, "No Experiment with id=77 exists")

		if err := s.SetExperimentLifecycle(ctx, exp, tracking.LifecycleDeleted, 1); err != nil {
			t.Fatal(err)
		}
		msg := "The experiment " + exp + " must be in the 'active' state. Current state is deleted."
		assertError(t, s.SetExperimentTag(ctx, exp, tracking.Tag{Key: "a"}), mloop.EINVALID, msg)
		assertError(t, s.DeleteExperimentTag(ctx, exp, "k"), mloop.EINVALID, msg)
	})
}

func TestTrackingStore_CreateRun(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		tests := []struct {
			name     string
			run      tracking.RunInfo
			tags     []tracking.Tag
			wantName string
			wantTags []tracking.Tag
			code     string
		}{
			{name: "name adds the tag", run: tracking.RunInfo{RunName: "n1"}, wantName: "n1",
				wantTags: []tracking.Tag{{Key: "mlflow.runName", Value: "n1"}}},
			{name: "tag sets the name", run: tracking.RunInfo{}, tags: []tracking.Tag{{Key: "mlflow.runName", Value: "n2"}, {Key: "x", Value: "y"}},
				wantName: "n2", wantTags: []tracking.Tag{{Key: "mlflow.runName", Value: "n2"}, {Key: "x", Value: "y"}}},
			{name: "equal name and tag", run: tracking.RunInfo{RunName: "n3"}, tags: []tracking.Tag{{Key: "mlflow.runName", Value: "n3"}},
				wantName: "n3", wantTags: []tracking.Tag{{Key: "mlflow.runName", Value: "n3"}}},
			{name: "different name and tag", run: tracking.RunInfo{RunName: "n4"}, tags: []tracking.Tag{{Key: "mlflow.runName", Value: "other"}},
				code: mloop.EINVALID},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.run.RunID, tt.run.ExperimentID, tt.run.StartTime = runID(i+1), exp, 123
				r := &tracking.Run{Info: tt.run, Tags: tt.tags}
				err := s.CreateRun(ctx, r)
				assertError(t, err, tt.code, "")
				if tt.code != "" {
					return
				}
				want := tracking.RunInfo{RunID: runID(i + 1), RunName: tt.wantName, ExperimentID: exp, Status: tracking.RunRunning,
					StartTime: 123, ArtifactURI: "mlflow-artifacts:/" + exp + "/" + runID(i+1) + "/artifacts", LifecycleStage: tracking.LifecycleActive}
				if !reflect.DeepEqual(r.Info, want) {
					t.Errorf("run info written back:\ngot  %+v\nwant %+v", r.Info, want)
				}
				got := MustGetRun(t, s, runID(i+1))
				if !reflect.DeepEqual(got.Info, want) || !reflect.DeepEqual(got.Tags, tt.wantTags) {
					t.Errorf("get run:\ngot  %+v %v\nwant %+v %v", got.Info, got.Tags, want, tt.wantTags)
				}
			})
		}

		r := &tracking.Run{Info: tracking.RunInfo{RunID: runID(50), ExperimentID: exp, Status: tracking.RunScheduled,
			EndTime: ptr(int64(9)), ArtifactURI: "s3://b/r"}}
		if err := s.CreateRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		if got := MustGetRun(t, s, runID(50)).Info; got.Status != tracking.RunScheduled || got.ArtifactURI != "s3://b/r" || got.EndTime == nil || *got.EndTime != 9 {
			t.Errorf("explicit fields: got %+v want SCHEDULED, s3://b/r, end 9", got)
		}
		err := s.CreateRun(ctx, &tracking.Run{Info: tracking.RunInfo{RunID: runID(50), ExperimentID: exp}})
		assertError(t, err, mloop.EEXISTS, "")
		err = s.CreateRun(ctx, &tracking.Run{Info: tracking.RunInfo{RunID: runID(51), ExperimentID: "404"}})
		assertError(t, err, mloop.ENOTFOUND, "No Experiment with id=404 exists")
		_, err = s.GetRun(ctx, runID(99))
		assertError(t, err, mloop.ENOTFOUND, "Run with id="+runID(99)+" not found")
	})
}

func TestTrackingStore_UpdateRun(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		MustCreateRun(t, s, exp, runID(1), tracking.Tag{Key: "mlflow.runName", Value: "first"})

		info, err := s.UpdateRun(ctx, runID(1), tracking.RunUpdate{Status: ptr(tracking.RunFinished), EndTime: ptr(int64(2000)), RunName: ptr("second")})
		if err != nil {
			t.Fatalf("update run: %v", err)
		}
		if info.Status != tracking.RunFinished || info.EndTime == nil || *info.EndTime != 2000 || info.RunName != "second" {
			t.Errorf("updated info: got %+v want FINISHED, end 2000, name second", info)
		}
		r := MustGetRun(t, s, runID(1))
		if want := []tracking.Tag{{Key: "mlflow.runName", Value: "second"}}; !reflect.DeepEqual(r.Info, *info) || !reflect.DeepEqual(r.Tags, want) {
			t.Errorf("run after update: got %+v %v want %+v %v", r.Info, r.Tags, *info, want)
		}
		// An empty name changes nothing, as in MLflow.
		if info, err = s.UpdateRun(ctx, runID(1), tracking.RunUpdate{RunName: ptr("")}); err != nil || info.RunName != "second" {
			t.Errorf("update with empty name: got %+v, %v want name second", info, err)
		}

		_, err = s.UpdateRun(ctx, runID(7), tracking.RunUpdate{})
		assertError(t, err, mloop.ENOTFOUND, "Run with id="+runID(7)+" not found")
		if err := s.SetRunLifecycle(ctx, runID(1), tracking.LifecycleDeleted, 1); err != nil {
			t.Fatal(err)
		}
		_, err = s.UpdateRun(ctx, runID(1), tracking.RunUpdate{Status: ptr(tracking.RunKilled)})
		assertError(t, err, mloop.EINVALID, "The run "+runID(1)+" must be in the 'active' state. Current state is deleted.")
	})
}

func TestTrackingStore_SetRunLifecycle(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		MustCreateRun(t, s, exp, runID(1))
		for _, stage := range []string{tracking.LifecycleDeleted, tracking.LifecycleDeleted, tracking.LifecycleActive} {
			if err := s.SetRunLifecycle(ctx, runID(1), stage, 5); err != nil {
				t.Fatalf("set run %s: %v", stage, err)
			}
			if got := MustGetRun(t, s, runID(1)).Info.LifecycleStage; got != stage {
				t.Errorf("lifecycle stage: got %s want %s", got, stage)
			}
		}
		assertError(t, s.SetRunLifecycle(ctx, runID(2), tracking.LifecycleDeleted, 5), mloop.ENOTFOUND, "Run with id="+runID(2)+" not found")
		assertError(t, s.SetRunLifecycle(ctx, runID(1), "gone", 5), mloop.EINVALID, "")
	})
}

func TestTrackingStore_LogBatchParams(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		id := runID(1)
		MustCreateRun(t, s, exp, id)
		MustLogBatch(t, s, id, nil, []tracking.Param{{Key: "lr", Value: "0.1"}, {Key: "depth", Value: "3"}}, nil)
		// The same value again is fine, within a batch and across batches.
		MustLogBatch(t, s, id, nil, []tracking.Param{{Key: "lr", Value: "0.1"}, {Key: "lr", Value: "0.1"}, {Key: "new", Value: ""}}, nil)

		// A changed value fails the whole batch: nothing of it is written.
		err := s.LogBatch(ctx, id,
			[]tracking.Metric{{Key: "m", Value: 1, Timestamp: 1, Step: 1}},
			[]tracking.Param{{Key: "other", Value: "x"}, {Key: "lr", Value: "0.2"}},
			[]tracking.Tag{{Key: "t", Value: "v"}})
		assertError(t, err, mloop.EINVALID, "Changing param values is not allowed. Param with key='lr' was already logged with value='0.1' for run ID='"+
			id+"'. Attempted logging new value '0.2'.")
		err = s.LogBatch(ctx, id, nil, []tracking.Param{{Key: "z", Value: "1"}, {Key: "z", Value: "2"}}, nil)
		assertError(t, err, mloop.EINVALID, "Changing param values is not allowed. Param with key='z' was already logged with value='1' for run ID='"+
			id+"'. Attempted logging new value '2'.")

		r := MustGetRun(t, s, id)
		want := []tracking.Param{{Key: "depth", Value: "3"}, {Key: "lr", Value: "0.1"}, {Key: "new", Value: ""}}
		if !reflect.DeepEqual(r.Params, want) || len(r.Metrics) != 0 || len(r.Tags) != 0 {
			t.Errorf("run after failed batch: got params %v, metrics %v, tags %v want params %v and nothing else", r.Params, r.Metrics, r.Tags, want)
		}
		if h, err := s.GetMetricHistory(ctx, id, "m", 0, 0); err != nil || len(h) != 0 {
			t.Errorf("history after failed batch: got %v, %v want none", h, err)
		}
	})
}

// TestTrackingStore_InactiveRun checks that every write to a deleted run is
// MLflow's _check_run_is_active error, and to an unknown run ENOTFOUND.
func TestTrackingStore_InactiveRun(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		id := runID(1)
		MustCreateRun(t, s, exp, id, tracking.Tag{Key: "t", Value: "v"})
		if err := s.SetRunLifecycle(ctx, id, tracking.LifecycleDeleted, 1); err != nil {
			t.Fatal(err)
		}
		writes := map[string]func(id string) error{
			"LogBatch metrics": func(id string) error {
				return s.LogBatch(ctx, id, []tracking.Metric{{Key: "m", Value: 1}}, nil, nil)
			},
			"LogBatch params": func(id string) error { return s.LogBatch(ctx, id, nil, []tracking.Param{{Key: "p", Value: "1"}}, nil) },
			"LogBatch tags":   func(id string) error { return s.LogBatch(ctx, id, nil, nil, []tracking.Tag{{Key: "t", Value: "w"}}) },
			"UpdateRun":       func(id string) error { _, err := s.UpdateRun(ctx, id, tracking.RunUpdate{}); return err },
			"DeleteTag":       func(id string) error { return s.DeleteTag(ctx, id, "t") },
			"UpdateTag": func(id string) error {
				return s.UpdateTag(ctx, id, "t", func(string, bool) (string, error) { return "w", nil })
			},
			"LogInputs": func(id string) error {
				return s.LogInputs(ctx, id, nil, []tracking.ModelInput{{ModelID: "m-1"}})
			},
			"LogOutputs": func(id string) error { return s.LogOutputs(ctx, id, []tracking.ModelOutput{{ModelID: "m-1"}}) },
		}
		for name, write := range writes {
			t.Run(name, func(t *testing.T) {
				assertError(t, write(id), mloop.EINVALID, "The run "+id+" must be in the 'active' state. Current state is deleted.")
				assertError(t, write(runID(2)), mloop.ENOTFOUND, "Run with id="+runID(2)+" not found")
			})
		}
	})
}

func TestTrackingStore_Tags(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		id := runID(1)
		MustCreateRun(t, s, exp, id, tracking.Tag{Key: "mlflow.runName", Value: "start"})
		MustLogBatch(t, s, id, nil, nil, []tracking.Tag{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}, {Key: "a", Value: "3"}})
		MustLogBatch(t, s, id, nil, nil, []tracking.Tag{{Key: "b", Value: "4"}})

		// Setting mlflow.runName renames the run; an empty one is ignored, as MLflow.
		MustLogBatch(t, s, id, nil, nil, []tracking.Tag{{Key: "mlflow.runName", Value: "renamed"}})
		MustLogBatch(t, s, id, nil, nil, []tracking.Tag{{Key: "mlflow.runName", Value: ""}})
		r := MustGetRun(t, s, id)
		want := []tracking.Tag{{Key: "a", Value: "3"}, {Key: "b", Value: "4"}, {Key: "mlflow.runName", Value: "renamed"}}
		if r.Info.RunName != "renamed" || !reflect.DeepEqual(r.Tags, want) {
			t.Errorf("after tags: got name %q, tags %v want renamed, %v", r.Info.RunName, r.Tags, want)
		}

		if err := s.DeleteTag(ctx, id, "a"); err != nil {
			t.Fatalf("delete tag: %v", err)
		}
		assertError(t, s.DeleteTag(ctx, id, "a"), mloop.ENOTFOUND, "No tag with name: a in run with id "+id)
		if r := MustGetRun(t, s, id); len(r.Tags) != 2 || r.Tags[0].Key != "b" {
			t.Errorf("tags after delete: got %v want b and mlflow.runName", r.Tags)
		}
	})
}

func TestTrackingStore_LogInputsAndOutputs(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		MustCreateRun(t, s, exp, runID(1))
		MustCreateRun(t, s, exp, runID(2))
		train := tracking.Dataset{Name: "train", Digest: "d1", SourceType: "local", Source: `{"uri":"x"}`, Schema: "{}", Profile: `{"rows":3}`}
		eval := tracking.Dataset{Name: "eval", Digest: "d2", SourceType: "s3", Source: "s3://b/e"}
		ctxTag := func(v string) []tracking.Tag { return []tracking.Tag{{Key: "mlflow.data.context", Value: v}} }

		if err := s.LogInputs(ctx, runID(1), []tracking.DatasetInput{
			{Dataset: train, Tags: ctxTag("training")},
			{Dataset: eval, Tags: ctxTag("eval")},
			{Dataset: train, Tags: ctxTag("ignored: same name and digest")},
		}, []tracking.ModelInput{{ModelID: "m-a"}, {ModelID: "m-a"}}); err != nil {
			t.Fatalf("log inputs: %v", err)
		}
		// Logging a dataset the run already uses keeps its tags.
		if err := s.LogInputs(ctx, runID(1), []tracking.DatasetInput{{Dataset: train, Tags: ctxTag("other")}}, nil); err != nil {
			t.Fatalf("log inputs again: %v", err)
		}
		// Another run of the experiment reuses the dataset.
		if err := s.LogInputs(ctx, runID(2), []tracking.DatasetInput{{Dataset: train}}, nil); err != nil {
			t.Fatalf("log inputs to run 2: %v", err)
		}
		if err := s.LogOutputs(ctx, runID(1), []tracking.ModelOutput{{ModelID: "m-b", Step: 7}, {ModelID: "m-c"}}); err != nil {
			t.Fatalf("log outputs: %v", err)
		}

		r := MustGetRun(t, s, runID(1))
		wantInputs := []tracking.DatasetInput{{Dataset: eval, Tags: ctxTag("eval")}, {Dataset: train, Tags: ctxTag("training")}}
		if !reflect.DeepEqual(r.Inputs, wantInputs) {
			t.Errorf("inputs:\ngot  %+v\nwant %+v", r.Inputs, wantInputs)
		}
		if want := []tracking.ModelInput{{ModelID: "m-a"}}; !reflect.DeepEqual(r.ModelInputs, want) {
			t.Errorf("model inputs: got %v want %v", r.ModelInputs, want)
		}
		if want := []tracking.ModelOutput{{ModelID: "m-b", Step: 7}, {ModelID: "m-c"}}; !reflect.DeepEqual(r.ModelOutputs, want) {
			t.Errorf("model outputs: got %v want %v", r.ModelOutputs, want)
		}
		if r2 := MustGetRun(t, s, runID(2)); !reflect.DeepEqual(r2.Inputs, []tracking.DatasetInput{{Dataset: train}}) {
			t.Errorf("inputs of run 2: got %+v want train without tags", r2.Inputs)
		}
		var datasets int
		if err := db.Read(ctx, func(tx *sqlstore.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM datasets").Scan(&datasets)
		}); err != nil || datasets != 2 {
			t.Errorf("dataset rows: got %d, %v want 2 (train reused)", datasets, err)
		}
	})
}

// TestTrackingStore_UpdateTag checks that UpdateTag rewrites a tag in one
// transaction: concurrent appends all land, and a refused update writes nothing.
func TestTrackingStore_UpdateTag(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		id := runID(1)
		MustCreateRun(t, s, exp, id)
		appendOne := func(old string, _ bool) (string, error) { return old + "x", nil }

		// Concurrent read-modify-writes of one tag lose none of the updates.
		const workers = 16
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := s.UpdateTag(ctx, id, "counter", appendOne); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if got, want := MustGetRun(t, s, id).Tags, []tracking.Tag{{Key: "counter", Value: strings.Repeat("x", workers)}}; !reflect.DeepEqual(got, want) {
			t.Errorf("tags after concurrent updates: got %v want %v", got, want)
		}

		// update sees whether the tag is set; its error is returned as it
		// is and nothing is written.
		var seen []bool
		for _, key := range []string{"fresh", "fresh"} {
			err := s.UpdateTag(ctx, id, key, func(old string, ok bool) (string, error) {
				seen = append(seen, ok)
				return old + "1", nil
			})
			if err != nil {
				t.Fatalf("update %s: %v", key, err)
			}
		}
		if want := []bool{false, true}; !reflect.DeepEqual(seen, want) {
			t.Errorf("ok seen by update: got %v want %v", seen, want)
		}
		refused := mloop.Errorf(mloop.EINVALID, "refused")
		err := s.UpdateTag(ctx, id, "fresh", func(string, bool) (string, error) { return "", refused })
		assertError(t, err, mloop.EINVALID, "refused")
		want := []tracking.Tag{{Key: "counter", Value: strings.Repeat("x", workers)}, {Key: "fresh", Value: "11"}}
		if got := MustGetRun(t, s, id).Tags; !reflect.DeepEqual(got, want) {
			t.Errorf("tags after a refused update: got %v want %v", got, want)
		}
	})
}

// TestTrackingStore_ConcurrentLogBatch has 32 goroutines log batches at once,
// half into one shared run and half into runs of their own: no point is
// lost, no write fails (no "database is locked"), params and tags agree.
func TestTrackingStore_ConcurrentLogBatch(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		shared := runID(0)
		MustCreateRun(t, s, exp, shared)
		const workers, batches, points = 32, 10, 50
		for w := range workers {
			MustCreateRun(t, s, exp, runID(w+1))
		}
		var wg sync.WaitGroup
		errs := make(chan error, workers*batches)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				target := shared
				if w%2 == 1 {
					target = runID(w + 1)
				}
				for b := range batches {
					metrics := make([]tracking.Metric, 0, points)
					for p := range points {
						step := int64(b*points + p)
						// One key shared by all workers (distinct timestamps) and one of its own.
						metrics = append(metrics,
							tracking.Metric{Key: "loss", Value: float64(w), Timestamp: int64(w), Step: step},
							tracking.Metric{Key: fmt.Sprintf("w%02d", w), Value: float64(p), Timestamp: 1, Step: step})
					}
					params := []tracking.Param{{Key: "shared", Value: "same"}, {Key: fmt.Sprintf("p%02d", w), Value: fmt.Sprint(w)}}
					tags := []tracking.Tag{{Key: "last", Value: fmt.Sprint(w)}, {Key: fmt.Sprintf("t%02d", w), Value: fmt.Sprint(b)}}
					if err := s.LogBatch(ctx, target, metrics, params, tags); err != nil {
						errs <- fmt.Errorf("worker %d batch %d: %w", w, b, err)
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}

		sharedWorkers := workers / 2
		h, err := s.GetMetricHistory(ctx, shared, "loss", 0, 0)
		if err != nil || len(h) != sharedWorkers*batches*points {
			t.Fatalf("shared loss history: got %d points, %v want %d", len(h), err, sharedWorkers*batches*points)
		}
		r := MustGetRun(t, s, shared)
		if len(r.Params) != 1+sharedWorkers || len(r.Tags) != 1+sharedWorkers || len(r.Metrics) != 1+sharedWorkers {
			t.Errorf("shared run: got %d params, %d tags, %d metrics want %d each", len(r.Params), len(r.Tags), len(r.Metrics), 1+sharedWorkers)
		}
		// The latest loss is at the largest step with the largest timestamp: worker 30's.
		for _, m := range r.Metrics {
			if m.Key == "loss" && (m.Step != batches*points-1 || m.Timestamp != 30 || m.Value != 30) {
				t.Errorf("latest shared loss: got %+v want step %d, timestamp 30, value 30", m, batches*points-1)
			}
		}
		for w := 1; w < workers; w += 2 {
			for _, key := range []string{"loss", fmt.Sprintf("w%02d", w)} {
				h, err := s.GetMetricHistory(ctx, runID(w+1), key, 0, 0)
				if err != nil || len(h) != batches*points {
					t.Errorf("run %d %s history: got %d points, %v want %d", w+1, key, len(h), err, batches*points)
				}
			}
			lo, hi, ok, err := s.MetricStepRange(ctx, runID(w+1), "loss")
			if err != nil || !ok || lo != 0 || hi != batches*points-1 {
				t.Errorf("run %d step range: got %d..%d, %v, %v want 0..%d", w+1, lo, hi, ok, err, batches*points-1)
			}
		}
	})
}

// TestTrackingStore_NoNilNotFound checks that unknown ids never come back as
// a nil result without an error.
func TestTrackingStore_NoNilNotFound(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		unknown := runID(404)
		checks := map[string]func() (any, error){
			"GetRun":           func() (any, error) { return s.GetRun(ctx, unknown) },
			"GetMetricHistory": func() (any, error) { return s.GetMetricHistory(ctx, unknown, "m", 0, 10) },
			"MetricsAtSteps":   func() (any, error) { return s.MetricsAtSteps(ctx, unknown, "m", []int64{1}, 10) },
			"SampledMetricSteps": func() (any, error) {
				return s.SampledMetricSteps(ctx, unknown, "m", 0, 10, 10)
			},
			"MetricStepRange": func() (any, error) { _, _, _, err := s.MetricStepRange(ctx, unknown, "m"); return nil, err },
		}
		for name, check := range checks {
			_, err := check()
			if !strings.Contains(mloop.ErrorMessage(err), unknown) {
				t.Errorf("%s of an unknown run: got %v want ENOTFOUND naming the run", name, err)
			}
			assertError(t, err, mloop.ENOTFOUND, "Run with id="+unknown+" not found")
		}
	})
}

// assertFloatEqual compares floats treating NaN as equal to NaN.
func floatEqual(a, b float64) bool {
	return a == b || (math.IsNaN(a) && math.IsNaN(b))
}

// Benchmarks, on SQLite (the default single-machine store). They report
// their figures with b.ReportMetric; nothing asserts on time.

// benchBatch returns a batch of keys × steps metric points, steps from first.
func benchBatch(keys, steps int, first int64) []tracking.Metric {
	ms := make([]tracking.Metric, 0, keys*steps)
	for s := range steps {
		for k := range keys {
			step := first + int64(s)
			ms = append(ms, tracking.Metric{Key: fmt.Sprintf("metric_%d", k), Value: float64(step) * 0.001, Timestamp: 1_700_000_000_000 + step, Step: step})
		}
	}
	return ms
}

// shiftBatch moves every point of ms by delta steps.
func shiftBatch(ms []tracking.Metric, delta int64) {
	for i := range ms {
		ms[i].Step += delta
		ms[i].Timestamp += delta
	}
}

// BenchmarkLogBatch measures LogBatch of 1000 points (10 keys × 100 steps)
// on SQLite, from one client and from 8 concurrent clients on runs of their
// own, and reports points/s.
func BenchmarkLogBatch(b *testing.B) {
	const keys, steps = 10, 100
	b.Run("clients=1", func(b *testing.B) {
		s := MustTrackingStore(b, MustOpenDB(b, sqlstore.SQLite))
		MustCreateRun(b, s, "0", runID(1))
		ms := benchBatch(keys, steps, 0)
		b.ResetTimer()
		for range b.N {
			if err := s.LogBatch(context.Background(), runID(1), ms, nil, nil); err != nil {
				b.Fatal(err)
			}
			shiftBatch(ms, steps)
		}
		b.ReportMetric(float64(b.N*keys*steps)/b.Elapsed().Seconds(), "points/s")
	})
	b.Run("clients=8", func(b *testing.B) {
		s := MustTrackingStore(b, MustOpenDB(b, sqlstore.SQLite))
		var next sync.Mutex
		n := 0
		for i := range 64 {
			MustCreateRun(b, s, "0", runID(i))
		}
		b.SetParallelism(max(1, 8/runtimeProcs()))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			next.Lock()
			id := runID(n)
			n++
			next.Unlock()
			ms := benchBatch(keys, steps, 0)
			for pb.Next() {
				if err := s.LogBatch(context.Background(), id, ms, nil, nil); err != nil {
					b.Error(err)
					return
				}
				shiftBatch(ms, steps)
			}
		})
		b.ReportMetric(float64(b.N*keys*steps)/b.Elapsed().Seconds(), "points/s")
	})
}

func runtimeProcs() int { return runtime.GOMAXPROCS(0) }

// BenchmarkLogBatchPostgres is BenchmarkLogBatch's single client on PostgreSQL.
func BenchmarkLogBatchPostgres(b *testing.B) {
	const keys, steps = 10, 100
	s := MustTrackingStore(b, MustOpenDB(b, sqlstore.Postgres))
	MustCreateRun(b, s, "0", runID(1))
	ms := benchBatch(keys, steps, 0)
	b.ResetTimer()
	for range b.N {
		if err := s.LogBatch(context.Background(), runID(1), ms, nil, nil); err != nil {
			b.Fatal(err)
		}
		shiftBatch(ms, steps)
	}
	b.ReportMetric(float64(b.N*keys*steps)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkSampledMetricSteps downsamples a 1,000,000-point metric to 1,000
// steps on SQLite, for a series logged at steps 0, 1, 2, … (a grid, sampled
// from its statistics) and for one with irregular gaps (sampled in SQL), and
// then fetches the points at the sampled steps, as the bulk-interval
// endpoint does.
func BenchmarkSampledMetricSteps(b *testing.B) {
	const points, batch = 1_000_000, 1000
	s := MustTrackingStore(b, MustOpenDB(b, sqlstore.SQLite))
	MustCreateRun(b, s, "0", runID(1))
	ctx := context.Background()
	ms := make([]tracking.Metric, 0, 2*batch)
	irregular := int64(0)
	for i := range int64(points) {
		irregular += 1 + i%7
		ms = append(ms, tracking.Metric{Key: "grid", Value: float64(i), Timestamp: i, Step: i},
			tracking.Metric{Key: "irregular", Value: float64(i), Timestamp: i, Step: irregular})
		if len(ms) == cap(ms) {
			MustLogBatch(b, s, runID(1), ms, nil, nil)
			ms = ms[:0]
		}
	}
	for _, key := range []string{"grid", "irregular"} {
		b.Run(key, func(b *testing.B) {
			for range b.N {
				lo, hi, _, err := s.MetricStepRange(ctx, runID(1), key)
				if err != nil {
					b.Fatal(err)
				}
				steps, err := s.SampledMetricSteps(ctx, runID(1), key, lo, hi, 1000)
				if err != nil || len(steps) != 1001 {
					b.Fatalf("sampled %d steps, %v; want 1001", len(steps), err)
				}
				got, err := s.MetricsAtSteps(ctx, runID(1), key, steps, 0)
				if err != nil || len(got) != 1001 {
					b.Fatalf("got %d points, %v; want 1001", len(got), err)
				}
			}
		})
	}
}

// BenchmarkGetMetricHistory reads a 1,000,000-point metric on SQLite, whole
// and in pages of 25,000 points (MLflow's page size), and reports points/s.
func BenchmarkGetMetricHistory(b *testing.B) {
	const points = 1_000_000
	s := MustTrackingStore(b, MustOpenDB(b, sqlstore.SQLite))
	MustCreateRun(b, s, "0", runID(1))
	ms := benchBatch(1, 1000, 0)
	for range points / 1000 {
		MustLogBatch(b, s, runID(1), ms, nil, nil)
		shiftBatch(ms, 1000)
	}
	for _, page := range []int{points, 25_000} {
		b.Run(fmt.Sprintf("page=%d", page), func(b *testing.B) {
			for range b.N {
				for offset := 0; offset < points; offset += page {
					h, err := s.GetMetricHistory(context.Background(), runID(1), "metric_0", offset, page)
					if err != nil || len(h) != page {
						b.Fatalf("got %d points, %v; want %d", len(h), err, page)
					}
				}
			}
			b.ReportMetric(float64(b.N*points)/b.Elapsed().Seconds(), "points/s")
		})
	}
}

// bulkInsert inserts rows into table with multi-row INSERT statements, for
// seeding benchmarks quickly.
func bulkInsert(tb testing.TB, db *sqlstore.DB, table string, columns []string, rows [][]any) {
	tb.Helper()
	ctx := context.Background()
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(columns)), ", ") + ")"
	const chunk = 500
	err := db.Write(ctx, func(tx *sqlstore.Tx) error {
		for lo := 0; lo < len(rows); lo += chunk {
			part := rows[lo:min(lo+chunk, len(rows))]
			args := make([]any, 0, len(part)*len(columns))
			for _, r := range part {
				args = append(args, r...)
			}
			q := "INSERT INTO " + table + " (" + strings.Join(columns, ", ") + ") VALUES " +
				strings.TrimSuffix(strings.Repeat(row+", ", len(part)), ", ")
			if _, err := tx.Exec(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed %s: %v", table, err)
	}
}

// BenchmarkSearchRuns searches 100,000 runs with 10 params, 10 metrics and 5
// tags each on SQLite: a filter with one metric and one param comparison,
// ordered by a metric, 100 results. It reports the median and 95th
// percentile latency; "selective" keeps about 5% of the runs, "broad" about
// 80% (every one of which must be looked at to order them).
func BenchmarkSearchRuns(b *testing.B) {
	const runs = 100_000
	db := MustOpenDB(b, sqlstore.SQLite)
	s := MustTrackingStore(b, db)
	exp := MustCreateExperiment(b, s, "bench")
	rng := rand.New(rand.NewPCG(5, 6))
	var runRows, paramRows, tagRows, metricRows [][]any
	for i := range runs {
		id := fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64()) // random, as real run ids
		runRows = append(runRows, []any{id, fmt.Sprintf("run-%d", i), 1, "ann", tracking.RunFinished, int64(1_700_000_000_000 + i),
			"mlflow-artifacts:/1/" + id + "/artifacts", tracking.LifecycleActive})
		for k := range 10 {
			paramRows = append(paramRows, []any{id, fmt.Sprintf("p%d", k), fmt.Sprintf("v%d", rng.IntN(10))})
			metricRows = append(metricRows, []any{id, fmt.Sprintf("m%d", k), rng.Float64(), false, int64(1), int64(99), int64(0), int64(100), true, int64(i*10 + k + 1)})
		}
		for k := range 5 {
			tagRows = append(tagRows, []any{id, fmt.Sprintf("t%d", k), fmt.Sprintf("tag%d", rng.IntN(100))})
		}
	}
	bulkInsert(b, db, "runs", []string{"run_uuid", "name", "experiment_id", "user_id", "status", "start_time", "artifact_uri", "lifecycle_stage"}, runRows)
	bulkInsert(b, db, "params", []string{"run_uuid", "key", "value"}, paramRows)
	bulkInsert(b, db, "tags", []string{"run_uuid", "key", "value"}, tagRows)
	bulkInsert(b, db, "latest_metrics", []string{"run_uuid", "key", "value", "is_nan", "timestamp", "step", "min_step", "step_count", "one_point_per_step", "series_id"}, metricRows)

	queries := map[string]tracking.Filter{
		"selective": {cmp("metric", "m0", ">", 0.5), cmp("param", "p1", "=", "v3")},
		"broad":     {cmp("metric", "m0", ">", 0.1), cmp("param", "p1", "!=", "v3")},
	}
	for name, filter := range queries {
		b.Run(name, func(b *testing.B) {
			q := tracking.RunQuery{ExperimentIDs: []string{exp}, Filter: filter, MaxResults: 100,
				OrderBy: []tracking.OrderBy{{Entity: "metric", Key: "m2"}}}
			var took []time.Duration
			for range b.N {
				start := time.Now()
				got, err := s.SearchRuns(context.Background(), q)
				took = append(took, time.Since(start))
				if err != nil || len(got) != 100 || len(got[0].Params) != 10 || len(got[0].Metrics) != 10 || len(got[0].Tags) != 5 {
					b.Fatalf("got %d runs, %v; want 100 with their data", len(got), err)
				}
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(took[len(took)*95/100].Microseconds())/1000, "p95-ms")
		})
	}
}
