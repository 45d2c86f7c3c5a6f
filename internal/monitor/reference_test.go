package monitor_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline"
)

// lineageOf answers one fixed lineage.
type lineageOf struct {
	lin *pipeline.Lineage
	got string
}

func (l *lineageOf) Lineage(ctx context.Context, ref string, d pipeline.Direction, depth int) (*pipeline.Lineage, error) {
	l.got = ref
	return l.lin, nil
}

// versions holds dataset versions with profiles, and schemas.
type versions struct {
	profiles map[string]*dataset.Profile // "name@N"
	schemas  map[string]string
}

func (v versions) GetVersion(ctx context.Context, ref dataset.Ref, withProfile bool) (*dataset.Version, error) {
	p, ok := v.profiles[ref.Name+"@"+itoa(ref.Version)]
	if !ok {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "no version")
	}
	return &dataset.Version{Dataset: ref.Name, Version: ref.Version, Profile: p}, nil
}

func (v versions) GetSchema(ctx context.Context, name string) ([]byte, error) {
	s, ok := v.schemas[name]
	if !ok {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "no schema")
	}
	return []byte(s), nil
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestLineageReferences finds the training dataset in a model version's
// lineage (the input named train wins over a nearer test set) with its
// profile and schema; a model version without a dataset has none.
func TestLineageReferences(t *testing.T) {
	node := func(k pipeline.NodeKind, id string) pipeline.Node { return pipeline.Node{Kind: k, ID: id} }
	model := node(pipeline.NodeModel, "clf/3")
	art := node(pipeline.NodeArtifact, "mlflow-artifacts:/1/model")
	run := node(pipeline.NodeStepRun, "0123456789abcdef0123456789abcdef")
	lin := &pipeline.Lineage{Root: model, Edges: []pipeline.Edge{
		{From: art, To: model, Relation: "registered"},
		{From: run, To: art, Relation: "output"},
		{From: node(pipeline.NodeDataset, "holdout@2"), To: run, Relation: "input", Name: "test"},
		{From: node(pipeline.NodeDataset, "flights@7"), To: run, Relation: "input", Name: "train"},
	}}
	prof := &dataset.Profile{Rows: 3}
	src := &monitor.LineageReferences{
		Lineage:  &lineageOf{lin: lin},
		Datasets: versions{profiles: map[string]*dataset.Profile{"flights@7": prof, "holdout@2": {}}, schemas: map[string]string{"flights": "columns:\n  - name: x\n    type: float\n"}},
	}
	ref, err := src.Reference(context.Background(), "clf", 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := src.Lineage.(*lineageOf).got; got != "models:/clf/3" {
		t.Errorf("lineage asked for %q, want models:/clf/3", got)
	}
	if ref.Dataset != "flights@7" || ref.Profile != prof || ref.Schema == nil || ref.Schema.Column("x") == nil {
		t.Fatalf("got reference %+v, want flights@7 with its profile and schema", ref)
	}
	none := &monitor.LineageReferences{Lineage: &lineageOf{lin: &pipeline.Lineage{Root: model}}, Datasets: versions{}}
	_, err = none.Reference(context.Background(), "clf", 3)
	if !mloop.IsNotFound(err) {
		t.Fatalf("no dataset in the lineage: got %v, want ENOTFOUND", err)
	}
}

// FuzzQualityJSON reads arbitrary stored quality: it is refused or reads
// into a state whose metrics compute and which merges with itself.
func FuzzQualityJSON(f *testing.F) {
	for _, task := range []monitor.Task{monitor.Binary, monitor.Multiclass, monitor.Regression} {
		q := monitor.NewQuality(task)
		_ = q.AddLabel(1, []float32{0.7, 0.3})
		b, _ := json.Marshal(q)
		f.Add(b)
	}
	f.Add([]byte(`{"task":"binary","bins":1000,"pos":[[999,1]],"neg":[[-1,2]]}`))
	f.Add([]byte(`{"task":"multiclass","classes":2,"confusion":[1]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var q monitor.Quality
		if err := json.Unmarshal(data, &q); err != nil {
			return
		}
		_ = q.Metrics()
		if err := q.Merge(q.Clone()); err != nil {
			t.Fatalf("merge a quality with its copy: %v", err)
		}
		if _, err := json.Marshal(&q); err != nil {
			t.Fatalf("marshal: %v", err)
		}
	})
}
