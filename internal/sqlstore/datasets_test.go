package sqlstore_test

import (
	"context"
	"reflect"
	"testing"

	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

func TestTrackingStore_SearchDatasets(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		e1 := MustCreateExperiment(t, s, "e1")
		e2 := MustCreateExperiment(t, s, "e2")
		e3 := MustCreateExperiment(t, s, "e3")
		MustCreateRun(t, s, e1, runID(1))
		MustCreateRun(t, s, e1, runID(2))
		MustCreateRun(t, s, e2, runID(3))
		MustCreateRun(t, s, e3, runID(4))
		train := tracking.Dataset{Name: "train", Digest: "d1", SourceType: "local", Source: "x"}
		eval := tracking.Dataset{Name: "eval", Digest: "d2", SourceType: "local", Source: "y"}
		withContext := func(v string) []tracking.Tag { return []tracking.Tag{{Key: "mlflow.data.context", Value: v}} }
		log := func(run string, inputs ...tracking.DatasetInput) {
			t.Helper()
			if err := s.LogInputs(ctx, run, inputs, nil); err != nil {
				t.Fatalf("log inputs to %s: %v", run, err)
			}
		}
		log(runID(1), tracking.DatasetInput{Dataset: train, Tags: withContext("training")},
			tracking.DatasetInput{Dataset: eval, Tags: []tracking.Tag{{Key: "other", Value: "tag"}}})
		// The same dataset in the same context from another run is one summary.
		log(runID(2), tracking.DatasetInput{Dataset: train, Tags: withContext("training")})
		log(runID(3), tracking.DatasetInput{Dataset: train, Tags: withContext("evaluation")})
		log(runID(4), tracking.DatasetInput{Dataset: eval, Tags: withContext("training")})
		// Deleted runs still count, as in MLflow.
		if err := s.SetRunLifecycle(ctx, runID(3), tracking.LifecycleDeleted, 5); err != nil {
			t.Fatal(err)
		}

		str := func(v string) *string { return &v }
		tests := []struct {
			name string
			ids  []string
			max  int
			want []tracking.DatasetSummary
		}{
			{"one experiment", []string{e1}, 100, []tracking.DatasetSummary{
				{ExperimentID: e1, Name: "eval", Digest: "d2"},
				{ExperimentID: e1, Name: "train", Digest: "d1", Context: str("training")},
			}},
			{"two experiments", []string{e2, e1}, 100, []tracking.DatasetSummary{
				{ExperimentID: e1, Name: "eval", Digest: "d2"},
				{ExperimentID: e1, Name: "train", Digest: "d1", Context: str("training")},
				{ExperimentID: e2, Name: "train", Digest: "d1", Context: str("evaluation")},
			}},
			{"limited", []string{e1, e2, e3}, 2, []tracking.DatasetSummary{
				{ExperimentID: e1, Name: "eval", Digest: "d2"},
				{ExperimentID: e1, Name: "train", Digest: "d1", Context: str("training")},
			}},
			{"ids that name no experiment", []string{"999", "id_1"}, 100, []tracking.DatasetSummary{}},
			{"an experiment without datasets", []string{tracking.DefaultExperimentID}, 100, []tracking.DatasetSummary{}},
		}
		for _, tt := range tests {
			got, err := s.SearchDatasets(ctx, tt.ids, tt.max)
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s: got %s, want %s", tt.name, summaries(got), summaries(tt.want))
			}
		}
	})
}

// summaries formats dataset summaries for failure messages.
func summaries(ss []tracking.DatasetSummary) string {
	out := "["
	for i, s := range ss {
		if i > 0 {
			out += ", "
		}
		c := "<none>"
		if s.Context != nil {
			c = *s.Context
		}
		out += s.ExperimentID + "/" + s.Name + "/" + s.Digest + "/" + c
	}
	return out + "]"
}
