package sqlstore_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/pipeline/storetest"
	"github.com/mloop/mloop/internal/sqlstore"
)

// TestPipelineStore runs the pipeline.Store conformance suite on SQLite and
// PostgreSQL.
func TestPipelineStore(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) pipeline.Store {
				return sqlstore.NewPipelineStore(MustOpenDB(t, d))
			})
		})
	}
}

// TestPipelineEdgesBound checks that a lineage walk of a huge graph stops
// at 10000 edges instead of reading the whole graph.
func TestPipelineEdgesBound(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		s := sqlstore.NewPipelineStore(db)
		run := pipeline.Node{Kind: pipeline.NodeStepRun, ID: "run-wide"}
		edges := make([]pipeline.Edge, 10050)
		for i := range edges {
			edges[i] = pipeline.Edge{From: run, To: pipeline.Node{Kind: pipeline.NodeArtifact, ID: fmt.Sprintf("file:///out/%05d", i)},
				Relation: "output", Name: "out"}
		}
		if err := s.AddEdges(ctx, edges); err != nil {
			t.Fatalf("AddEdges: %v", err)
		}
		got, err := s.Edges(ctx, run, pipeline.Down, 0)
		if err != nil {
			t.Fatalf("Edges: %v", err)
		}
		if len(got) != 10000 {
			t.Fatalf("Edges of a node with %d edges: got %d, want the bound 10000", len(edges), len(got))
		}
	})
}
