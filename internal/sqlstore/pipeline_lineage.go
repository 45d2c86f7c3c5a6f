package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

// maxLineageEdges bounds the edges one Edges call returns, so a walk of a
// huge graph ends; the walk stops once it has found that many.
const maxLineageEdges = 10000

// lineageFrontierChunk is how many nodes one query of a walk expands.
const lineageFrontierChunk = 500

// AddEdges records edges in one transaction; an edge already recorded (same
// From, To and Relation) is kept once, with its first Name and CreatedAt. A
// zero CreatedAt is recorded as now. EINVALID when an edge lacks a node kind
// or id, or a relation.
func (s *PipelineStore) AddEdges(ctx context.Context, edges []pipeline.Edge) error {
	if len(edges) == 0 {
		return nil
	}
	now := s.now().UnixMilli()
	const width = 7
	args := make([]any, 0, width*len(edges))
	for _, e := range edges {
		if e.From.Kind == "" || e.From.ID == "" || e.To.Kind == "" || e.To.ID == "" || e.Relation == "" {
			return mloop.Errorf(mloop.EINVALID, "Lineage edge %s -> %s (%q) needs the kind and id of both nodes and a relation.",
				e.From, e.To, e.Relation)
		}
		created := now
		if !e.CreatedAt.IsZero() {
			created = e.CreatedAt.UnixMilli()
		}
		args = append(args, string(e.From.Kind), e.From.ID, string(e.To.Kind), e.To.ID, e.Relation, e.Name, created)
	}
	err := s.db.Write(ctx, func(tx *Tx) error {
		return forChunks(len(edges), maxInsertRows/width, func(lo, hi int) error {
			_, err := tx.Exec(ctx, valuesStatement(`INSERT INTO lineage_edges
				(from_kind, from_id, to_kind, to_id, relation, name, created_at)`,
				`ON CONFLICT (from_kind, from_id, to_kind, to_id, relation) DO NOTHING`, width, hi-lo),
				args[lo*width:hi*width]...)
			return err
		})
	})
	if err != nil {
		return fmt.Errorf("add %d lineage edges: %w", len(edges), err)
	}
	return nil
}

// Edges returns the edges reachable from n walking in direction d, at most
// depth hops (depth <= 0 means no limit), each once, in breadth-first order
// (within one hop, oldest first). Up follows edges to their From node (what
// produced n), Down to their To node (what used n), and Both returns the
// union of the two walks (n's ancestors and descendants, not its siblings).
// Each node is expanded once, so cycles end; the walk stops after 10000
// edges. EINVALID for an unknown direction.
func (s *PipelineStore) Edges(ctx context.Context, n pipeline.Node, d pipeline.Direction, depth int) ([]pipeline.Edge, error) {
	var dirs []pipeline.Direction
	switch d {
	case pipeline.Up, pipeline.Down:
		dirs = []pipeline.Direction{d}
	case pipeline.Both:
		dirs = []pipeline.Direction{pipeline.Up, pipeline.Down}
	default:
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid lineage direction %q: use %q, %q or %q.", d, pipeline.Up, pipeline.Down, pipeline.Both)
	}
	w := &lineageWalk{seen: map[edgeKey]bool{}, out: []pipeline.Edge{}}
	err := s.db.Read(ctx, func(tx *Tx) error {
		for _, dir := range dirs {
			if err := w.walk(ctx, tx, n, dir, depth); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("lineage of %s (%s): %w", n, d, err)
	}
	return w.out, nil
}

// edgeKey identifies a stored edge.
type edgeKey struct {
	from, to pipeline.Node
	relation string
}

// lineageWalk collects the edges of one Edges call.
type lineageWalk struct {
	seen map[edgeKey]bool
	out  []pipeline.Edge
}

// full reports whether the walk reached maxLineageEdges.
func (w *lineageWalk) full() bool { return len(w.out) >= maxLineageEdges }

// walk expands, breadth first, the nodes reachable from start in direction
// dir (Up or Down), one query per hop and chunk of the frontier.
func (w *lineageWalk) walk(ctx context.Context, tx *Tx, start pipeline.Node, dir pipeline.Direction, depth int) error {
	near, far := "to", "from" // Up: edges into the frontier lead to their From node
	if dir == pipeline.Down {
		near, far = "from", "to"
	}
	visited := map[pipeline.Node]bool{start: true}
	frontier := []pipeline.Node{start}
	for hop := 1; len(frontier) > 0 && (depth <= 0 || hop <= depth) && !w.full(); hop++ {
		var next []pipeline.Node
		for lo := 0; lo < len(frontier) && !w.full(); lo += lineageFrontierChunk {
			chunk := frontier[lo:min(lo+lineageFrontierChunk, len(frontier))]
			args := make([]any, 0, 2*len(chunk))
			rows := make([]string, len(chunk))
			for i, nd := range chunk {
				rows[i] = "(?, ?)"
				args = append(args, string(nd.Kind), nd.ID)
			}
			q := `SELECT from_kind, from_id, to_kind, to_id, relation, name, created_at FROM lineage_edges
				WHERE (` + near + `_kind, ` + near + `_id) IN (VALUES ` + strings.Join(rows, ", ") + `)
				ORDER BY created_at, from_kind, from_id, to_kind, to_id, relation`
			err := queryEach(ctx, tx, q, args, func(sc scanner) error {
				if w.full() {
					return nil
				}
				var (
					e                pipeline.Edge
					fromKind, toKind string
					created          int64
				)
				if err := sc.Scan(&fromKind, &e.From.ID, &toKind, &e.To.ID, &e.Relation, &e.Name, &created); err != nil {
					return err
				}
				e.From.Kind, e.To.Kind = pipeline.NodeKind(fromKind), pipeline.NodeKind(toKind)
				e.CreatedAt = time.UnixMilli(created).UTC()
				k := edgeKey{from: e.From, to: e.To, relation: e.Relation}
				if !w.seen[k] {
					w.seen[k] = true
					w.out = append(w.out, e)
				}
				other := e.From
				if far == "to" {
					other = e.To
				}
				if !visited[other] {
					visited[other] = true
					next = append(next, other)
				}
				return nil
			})
			if err != nil {
				return err
			}
		}
		frontier = next
	}
	return nil
}
