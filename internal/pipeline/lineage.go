package pipeline

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// Lineage is the answer to a lineage query: the edges reachable from Root
// walking in Direction, and every node they touch.
type Lineage struct {
	// Root is the node the query started from.
	Root Node `json:"root"`
	// Direction is the way the query walked.
	Direction Direction `json:"direction"`
	// Edges are the edges found, each once.
	Edges []Edge `json:"edges"`
	// Nodes are Root and every node of Edges, each once: Root first, the
	// others by kind and id.
	Nodes []Node `json:"nodes"`
}

// refForms lists the references ResolveNode accepts, for error messages.
const refForms = "data://NAME@VERSION (or NAME@VERSION; VERSION a number, latest or sha256:PREFIX), " +
	"models:/NAME/VERSION, models:/NAME@ALIAS, runs:/RUN_ID (an MLflow run; runs:/RUN_ID/PATH for one of its artifacts), " +
	"a 32-hex-digit MLflow run id, a pipeline run id pr-…, or an artifact URI (mlflow-artifacts:/…, s3://…, file://…)"

var (
	mlflowRunIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)
	uriSchemeRE   = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
)

// nodeRef is a parsed lineage reference, before it is looked up.
type nodeRef struct {
	kind NodeKind
	// dataset is the reference of a dataset node.
	dataset dataset.Ref
	// model and version, or model and alias, name a model version.
	model, version, alias string
	// id is the run id of a step run (and of runs:/ID/PATH), the pipeline
	// run id, or the artifact URI.
	id string
	// path is the artifact path of runs:/ID/PATH.
	path string
}

// parseNodeRef parses a lineage reference without looking anything up.
// Malformed references are EINVALID errors listing the accepted forms.
func parseNodeRef(ref string) (nodeRef, error) {
	bad := func(why string) (nodeRef, error) {
		return nodeRef{}, mloop.Errorf(mloop.EINVALID, "invalid lineage reference %q: %s; give one of: %s", ref, why, refForms)
	}
	ref = strings.TrimSpace(ref)
	switch {
	case ref == "":
		return bad("it is empty")
	case strings.HasPrefix(ref, "data://"), strings.HasPrefix(ref, "data:"):
		r, err := dataset.ParseRef(strings.TrimPrefix(strings.TrimPrefix(ref, "data:"), "//"))
		if err != nil {
			return bad(mloop.ErrorMessage(err))
		}
		return nodeRef{kind: NodeDataset, dataset: r}, nil
	case strings.HasPrefix(ref, "models:"):
		p := strings.TrimPrefix(ref, "models:")
		if !strings.HasPrefix(p, "/") {
			return bad("a models URI is models:/NAME/VERSION or models:/NAME@ALIAS")
		}
		p = strings.TrimLeft(p, "/")
		if name, alias, ok := strings.Cut(p, "@"); ok && !strings.Contains(p, "/") {
			if name == "" || alias == "" {
				return bad("a models URI is models:/NAME/VERSION or models:/NAME@ALIAS")
			}
			return nodeRef{kind: NodeModel, model: name, alias: alias}, nil
		}
		name, v, ok := strings.Cut(p, "/")
		if !ok || name == "" || strings.Contains(v, "/") {
			return bad("a models URI is models:/NAME/VERSION or models:/NAME@ALIAS")
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 || strconv.FormatInt(n, 10) != v {
			return bad("the version of a models URI must be a positive number (stages and latest are not lineage nodes)")
		}
		return nodeRef{kind: NodeModel, model: name, version: v}, nil
	case strings.HasPrefix(ref, "runs:"):
		p := strings.TrimPrefix(ref, "runs:")
		if !strings.HasPrefix(p, "/") {
			return bad("a runs URI is runs:/RUN_ID or runs:/RUN_ID/PATH")
		}
		id, path, _ := strings.Cut(strings.TrimLeft(p, "/"), "/")
		if strings.TrimSpace(id) == "" {
			return bad("a runs URI is runs:/RUN_ID or runs:/RUN_ID/PATH")
		}
		path = strings.Trim(path, "/")
		if path != "" {
			return nodeRef{kind: NodeArtifact, id: id, path: path}, nil
		}
		return nodeRef{kind: NodeStepRun, id: id}, nil
	case mlflowRunIDRE.MatchString(ref):
		return nodeRef{kind: NodeStepRun, id: ref}, nil
	case strings.HasPrefix(ref, "pr-") && !strings.Contains(ref, "@"):
		return nodeRef{kind: NodePipelineRun, id: ref}, nil
	case uriSchemeRE.MatchString(ref):
		// Dataset names hold no ':', so NAME@sha256:… never gets here.
		return nodeRef{kind: NodeArtifact, id: strings.TrimRight(ref, "/")}, nil
	case strings.Contains(ref, "@"):
		r, err := dataset.ParseRef(ref)
		if err != nil {
			return bad(mloop.ErrorMessage(err))
		}
		return nodeRef{kind: NodeDataset, dataset: r}, nil
	}
	return bad("it names nothing mloop knows")
}

// ResolveNode turns a reference into a lineage node, looking it up:
//
//   - data://NAME@SEL, data:NAME@SEL or NAME@SEL (SEL a version number,
//     latest or sha256:PREFIX): the dataset version, as "NAME@N";
//   - models:/NAME/N and models:/NAME@ALIAS: the model version "NAME/N";
//   - runs:/RUN_ID or a 32-hex-digit MLflow run id: the step run (an MLflow
//     run id); runs:/RUN_ID/PATH: the artifact at PATH in the run's
//     artifacts;
//   - pr-…: the pipeline run;
//   - any other URI (mlflow-artifacts:/…, s3://…, file://…): the artifact,
//     its trailing slashes removed.
//
// A malformed reference is EINVALID, listing the accepted forms; a
// dataset version, model version, MLflow run or pipeline run that does not
// exist is ENOTFOUND (an unknown alias EINVALID, as the registry says).
// Artifacts are not looked up.
func (s *Service) ResolveNode(ctx context.Context, ref string) (Node, error) {
	r, err := parseNodeRef(ref)
	if err != nil {
		return Node{}, err
	}
	switch r.kind {
	case NodeDataset:
		if s.Datasets == nil {
			return Node{}, mloop.Errorf(mloop.EUNAVAILABLE, "resolve %s: the pipeline service has no dataset service", ref)
		}
		v, err := s.Datasets.GetVersion(ctx, r.dataset, false)
		if err != nil {
			return Node{}, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return Node{Kind: NodeDataset, ID: v.Ref()}, nil
	case NodeModel:
		if s.Registry == nil {
			return Node{}, mloop.Errorf(mloop.EUNAVAILABLE, "resolve %s: the pipeline service has no model registry", ref)
		}
		if r.alias != "" {
			mv, err := s.Registry.GetModelVersionByAlias(ctx, r.model, r.alias)
			if err != nil {
				return Node{}, fmt.Errorf("resolve %s: %w", ref, err)
			}
			return Node{Kind: NodeModel, ID: mv.Name + "/" + strconv.FormatInt(mv.Version, 10)}, nil
		}
		mv, err := s.Registry.GetModelVersion(ctx, r.model, r.version)
		if err != nil {
			return Node{}, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return Node{Kind: NodeModel, ID: mv.Name + "/" + strconv.FormatInt(mv.Version, 10)}, nil
	case NodeStepRun:
		if s.Tracking != nil {
			if _, err := s.Tracking.GetRun(ctx, r.id); err != nil {
				return Node{}, fmt.Errorf("resolve %s: %w", ref, err)
			}
		}
		return Node{Kind: NodeStepRun, ID: r.id}, nil
	case NodePipelineRun:
		if s.Store != nil {
			if _, err := s.Store.GetRun(ctx, r.id); err != nil {
				return Node{}, fmt.Errorf("resolve %s: %w", ref, err)
			}
		}
		return Node{Kind: NodePipelineRun, ID: r.id}, nil
	}
	if r.path != "" {
		if s.Tracking == nil {
			return Node{}, mloop.Errorf(mloop.EUNAVAILABLE, "resolve %s: the pipeline service has no tracking service", ref)
		}
		run, err := s.Tracking.GetRun(ctx, r.id)
		if err != nil {
			return Node{}, fmt.Errorf("resolve %s: %w", ref, err)
		}
		return Node{Kind: NodeArtifact, ID: strings.TrimRight(run.Info.ArtifactURI, "/") + "/" + r.path}, nil
	}
	return Node{Kind: NodeArtifact, ID: r.id}, nil
}

// Lineage resolves ref (see ResolveNode) and returns the lineage edges
// reachable from it walking in direction d (Up: what produced it; Down:
// what used it; Both, also when d is ""), at most depth hops (depth <= 0:
// no limit). Another direction is EINVALID.
//
// Edges come from the lineage store. One addition covers model versions
// registered outside pipelines: walking up from a model version that has
// no stored edge leading to it, the query adds the edge step_run(RunID) →
// model version (relation "output") from the registry's record of the
// version, when it has a run, and continues up from that run with the
// stored edges.
func (s *Service) Lineage(ctx context.Context, ref string, d Direction, depth int) (*Lineage, error) {
	switch d {
	case Up, Down, Both:
	case "":
		d = Both
	default:
		return nil, mloop.Errorf(mloop.EINVALID, "invalid lineage direction %q: give up (what produced it), down (what used it) or both", d)
	}
	root, err := s.ResolveNode(ctx, ref)
	if err != nil {
		return nil, err
	}
	if s.Store == nil {
		return nil, mloop.Errorf(mloop.EUNAVAILABLE, "lineage of %s: the pipeline service has no store", ref)
	}
	edges, err := s.Store.Edges(ctx, root, d, depth)
	if err != nil {
		return nil, fmt.Errorf("lineage of %s: %w", root, err)
	}
	if root.Kind == NodeModel && d != Down && s.Registry != nil && !hasEdgeTo(edges, root) {
		extra, err := s.registryEdges(ctx, root, depth)
		if err != nil {
			return nil, fmt.Errorf("lineage of %s: %w", root, err)
		}
		edges = append(edges, extra...)
	}
	l := &Lineage{Root: root, Direction: d, Edges: dedupeEdges(edges)}
	seen := map[Node]bool{root: true}
	var others []Node
	for _, e := range l.Edges {
		for _, n := range []Node{e.From, e.To} {
			if !seen[n] {
				seen[n] = true
				others = append(others, n)
			}
		}
	}
	sort.Slice(others, func(i, j int) bool {
		if others[i].Kind != others[j].Kind {
			return nodeKindOrder(others[i].Kind) < nodeKindOrder(others[j].Kind)
		}
		return others[i].ID < others[j].ID
	})
	l.Nodes = append([]Node{root}, others...)
	if l.Edges == nil {
		l.Edges = []Edge{}
	}
	return l, nil
}

// registryEdges returns the edge from a model version's run to it, from the
// registry, and the stored edges up from that run (depth-1 hops more).
func (s *Service) registryEdges(ctx context.Context, root Node, depth int) ([]Edge, error) {
	name, version, ok := strings.Cut(root.ID, "/")
	if !ok {
		return nil, nil
	}
	mv, err := s.Registry.GetModelVersion(ctx, name, version)
	if err != nil {
		return nil, err
	}
	if mv.RunID == "" {
		return nil, nil
	}
	run := Node{Kind: NodeStepRun, ID: mv.RunID}
	at := time.UnixMilli(mv.CreationTimestamp).UTC()
	edges := []Edge{{From: run, To: root, Relation: "output", CreatedAt: at}}
	if depth == 1 {
		return edges, nil
	}
	more := 0
	if depth > 1 {
		more = depth - 1
	}
	up, err := s.Store.Edges(ctx, run, Up, more)
	if err != nil {
		return nil, err
	}
	return append(edges, up...), nil
}

// hasEdgeTo reports whether an edge leads to n.
func hasEdgeTo(edges []Edge, n Node) bool {
	for _, e := range edges {
		if e.To == n {
			return true
		}
	}
	return false
}

// dedupeEdges keeps the first of edges with the same From, To and Relation.
func dedupeEdges(edges []Edge) []Edge {
	type key struct {
		from, to Node
		rel      string
	}
	seen := map[key]bool{}
	out := edges[:0:0]
	for _, e := range edges {
		k := key{e.From, e.To, e.Relation}
		if !seen[k] {
			seen[k] = true
			out = append(out, e)
		}
	}
	return out
}

// nodeKindOrder orders node kinds along the flow of the loop.
func nodeKindOrder(k NodeKind) int {
	switch k {
	case NodeDataset:
		return 0
	case NodePipelineRun:
		return 1
	case NodeStepRun:
		return 2
	case NodeArtifact:
		return 3
	case NodeModel:
		return 4
	}
	return 5
}
