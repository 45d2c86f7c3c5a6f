package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

const lineageUsage = `Usage: mloop lineage REF [flags]

Shows the lineage of REF: what produced it (--up), what used it (--down), or
both (the default). Every pipeline step records which dataset versions and
artifacts it read, which artifacts it wrote, and which model versions were
registered from them.

REF is a dataset version (data://flights@3), a pipeline run (pr-…), a step's
MLflow run id, an artifact URI or a model version (models:/NAME/3).
`

// runLineage runs `mloop lineage REF`.
func runLineage(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d := &dataCmd{name: "mloop lineage", stdout: stdout, stderr: stderr}
	fs := d.flags(lineageUsage)
	up := fs.Bool("up", false, "only what produced REF")
	down := fs.Bool("down", false, "only what used REF")
	depth := fs.Int("depth", 0, "follow at most this many links (0: no limit)")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	dir := pipeline.Both
	switch {
	case *up && *down:
		return d.usageError("--up and --down together are the default: give neither")
	case *up:
		dir = pipeline.Up
	case *down:
		dir = pipeline.Down
	}
	if *depth < 0 {
		return d.usageError("invalid --depth %d: want 0 (no limit) or more", *depth)
	}
	l, err := d.client.Lineage(ctx, pos[0], dir, *depth)
	if err != nil {
		d.fail(err)
		if mloop.IsNotFound(err) || mloop.ErrorCode(err) == mloop.EINVALID {
			fmt.Fprintln(d.stderr, "  a REF is data://NAME@N, pr-…, a step's MLflow run id, an artifact URI or models:/NAME/N")
		}
		return exitFailure
	}
	if d.json {
		return d.writeJSON(l)
	}
	if err := writeLineage(d.stdout, l); err != nil {
		return d.fail(fmt.Errorf("write output: %w", err))
	}
	return exitOK
}

// writeLineage writes the lineage graph as one line per edge, in the order
// the server walked it.
func writeLineage(w io.Writer, l *pipeline.Lineage) error {
	steps := stepNames(l.Edges)
	var b strings.Builder
	what := map[pipeline.Direction]string{pipeline.Up: "what produced", pipeline.Down: "what used", pipeline.Both: "lineage of"}[l.Direction]
	if what == "" {
		what = "lineage of"
	}
	fmt.Fprintf(&b, "%s %s:\n", what, nodeText(l.Root, steps))
	if len(l.Edges) == 0 {
		b.WriteString("  nothing recorded\n")
	}
	for _, e := range l.Edges {
		rel := e.Relation
		if e.Name != "" && e.Relation != "step" {
			rel += ":" + e.Name
		}
		fmt.Fprintf(&b, "  %s ──%s──▶ %s\n", nodeText(e.From, steps), rel, nodeText(e.To, steps))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// stepNames maps step runs to their step's name, read from the "step"
// edges that tie them to their pipeline run.
func stepNames(edges []pipeline.Edge) map[string]string {
	names := map[string]string{}
	for _, e := range edges {
		if e.Relation == "step" && e.To.Kind == pipeline.NodeStepRun && e.Name != "" {
			names[e.To.ID] = e.Name
		}
	}
	return names
}

// nodeText writes a lineage node for people: "data flights@3",
// "step train (run 1a2b3c4d…)", "model flights/3".
func nodeText(n pipeline.Node, steps map[string]string) string {
	switch n.Kind {
	case pipeline.NodeDataset:
		return "data " + n.ID
	case pipeline.NodePipelineRun:
		return "pipeline run " + n.ID
	case pipeline.NodeStepRun:
		if name := steps[n.ID]; name != "" {
			return fmt.Sprintf("step %s (run %s)", name, shortID(n.ID))
		}
		return "step run " + shortID(n.ID)
	case pipeline.NodeArtifact:
		return "artifact " + n.ID
	case pipeline.NodeModel:
		return "model " + n.ID
	}
	return string(n.Kind) + " " + n.ID
}

// shortID abbreviates a long id to its first 8 characters.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:8] + "…"
	}
	return id
}
