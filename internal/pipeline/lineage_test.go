package pipeline_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
)

func TestResolveNode(t *testing.T) {
	e := mustBuiltinEnv(t)
	ctx := context.Background()
	v1, _ := e.mustPushCSV(t, "flights", "origin,delay\nSFO,1\n")
	e.mustPushCSV(t, "flights", "origin,delay\nSFO,2\n")
	champ := e.mustChampion(t, "delays", "champion", "")
	run := e.mustRun(t, "train")
	if err := e.svc.Store.CreateRun(ctx, &pipeline.Run{ID: "pr-0123456789ab", Pipeline: "p", Status: pipeline.RunQueued}); err != nil {
		t.Fatalf("create pipeline run: %v", err)
	}
	prefix := strings.TrimPrefix(v1.Digest, "sha256:")[:12]
	tests := []struct {
		ref  string
		want pipeline.Node
	}{
		{"data://flights@latest", pipeline.Node{Kind: pipeline.NodeDataset, ID: "flights@2"}},
		{"data://flights@1", pipeline.Node{Kind: pipeline.NodeDataset, ID: "flights@1"}},
		{"data:flights", pipeline.Node{Kind: pipeline.NodeDataset, ID: "flights@2"}},
		{"flights@sha256:" + prefix, pipeline.Node{Kind: pipeline.NodeDataset, ID: "flights@1"}},
		{"models:/delays/1", pipeline.Node{Kind: pipeline.NodeModel, ID: "delays/1"}},
		{"models:/delays@champion", pipeline.Node{Kind: pipeline.NodeModel, ID: "delays/1"}},
		{"runs:/" + run.Info.RunID, pipeline.Node{Kind: pipeline.NodeStepRun, ID: run.Info.RunID}},
		{run.Info.RunID, pipeline.Node{Kind: pipeline.NodeStepRun, ID: run.Info.RunID}},
		{"runs:/" + run.Info.RunID + "/outputs/model/", pipeline.Node{Kind: pipeline.NodeArtifact, ID: run.Info.ArtifactURI + "/outputs/model"}},
		{"pr-0123456789ab", pipeline.Node{Kind: pipeline.NodePipelineRun, ID: "pr-0123456789ab"}},
		{"mlflow-artifacts:/1/abc/artifacts/outputs/model/", pipeline.Node{Kind: pipeline.NodeArtifact, ID: "mlflow-artifacts:/1/abc/artifacts/outputs/model"}},
		{"s3://bucket/key", pipeline.Node{Kind: pipeline.NodeArtifact, ID: "s3://bucket/key"}},
		{champ.Source, pipeline.Node{Kind: pipeline.NodeArtifact, ID: champ.Source}},
	}
	for _, tt := range tests {
		got, err := e.svc.ResolveNode(ctx, tt.ref)
		if err != nil || got != tt.want {
			t.Errorf("ResolveNode(%q) = %v, %v; want %v", tt.ref, got, err, tt.want)
		}
	}

	bad := []struct{ ref, kind, msg string }{
		{"", mloop.EINVALID, "it is empty"},
		{"flights", mloop.EINVALID, "names nothing"},
		{"models:/delays/latest", mloop.EINVALID, "must be a positive number"},
		{"models:/a/1/2", mloop.EINVALID, "models:/NAME/VERSION"},
		{"models:delays/1", mloop.EINVALID, "models:/NAME/VERSION"},
		{"runs:/", mloop.EINVALID, "runs:/RUN_ID"},
		{"data://bad name@1", mloop.EINVALID, "Invalid dataset name"},
		{"data://flights@0", mloop.EINVALID, "version numbers start at 1"},
		{"data://flights@9", mloop.ENOTFOUND, ""},
		{"data://trains@1", mloop.ENOTFOUND, ""},
		{"models:/delays/7", mloop.ENOTFOUND, ""},
		{"models:/delays@nope", mloop.EINVALID, "alias nope not found"},
		{"runs:/0123456789abcdef0123456789abcdef", mloop.ENOTFOUND, ""},
		{"pr-ffffffffffff", mloop.ENOTFOUND, ""},
	}
	for _, tt := range bad {
		_, err := e.svc.ResolveNode(ctx, tt.ref)
		if err == nil || mloop.ErrorCode(err) != tt.kind || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ResolveNode(%q) = %v (kind %q); want %s containing %q", tt.ref, err, mloop.ErrorCode(err), tt.kind, tt.msg)
		}
		if tt.kind == mloop.EINVALID && tt.ref != "models:/delays@nope" && !strings.Contains(err.Error(), "models:/NAME@ALIAS") {
			t.Errorf("ResolveNode(%q) error does not list the accepted forms: %v", tt.ref, err)
		}
	}
}

func TestLineage(t *testing.T) {
	e := mustBuiltinEnv(t)
	ctx := context.Background()
	e.mustPushCSV(t, "flights", "origin,delay\nSFO,1\n")
	train, train2 := e.mustRun(t, "train"), e.mustRun(t, "train-outside")
	data := pipeline.Node{Kind: pipeline.NodeDataset, ID: "flights@1"}
	pr := pipeline.Node{Kind: pipeline.NodePipelineRun, ID: "pr-0123456789ab"}
	step := pipeline.Node{Kind: pipeline.NodeStepRun, ID: train.Info.RunID}
	art := pipeline.Node{Kind: pipeline.NodeArtifact, ID: train.Info.ArtifactURI + "/outputs/model"}
	model := pipeline.Node{Kind: pipeline.NodeModel, ID: "delays/1"}
	step2 := pipeline.Node{Kind: pipeline.NodeStepRun, ID: train2.Info.RunID}
	if err := e.svc.Store.AddEdges(ctx, []pipeline.Edge{
		{From: pr, To: step, Relation: "step"},
		{From: data, To: step, Relation: "input", Name: "data"},
		{From: step, To: art, Relation: "output", Name: "model"},
		{From: art, To: model, Relation: "registered", Name: "model"},
		{From: data, To: step2, Relation: "input", Name: "data"},
	}); err != nil {
		t.Fatalf("add edges: %v", err)
	}
	// delays/1 was registered by a pipeline; delays/2 by a client, from train2.
	for _, r := range []string{train.Info.RunID, train2.Info.RunID} {
		if _, err := e.registry.CreateRegisteredModel(ctx, "delays", nil, ""); err != nil && mloop.ErrorCode(err) != mloop.EEXISTS {
			t.Fatal(err)
		}
		run, _ := e.tracking.GetRun(ctx, r)
		if _, err := e.registry.CreateModelVersion(ctx, registry.CreateModelVersionRequest{
			Name: "delays", Source: run.Info.ArtifactURI + "/model", RunID: r}); err != nil {
			t.Fatal(err)
		}
	}

	has := func(l *pipeline.Lineage, from, to pipeline.Node, rel string) bool {
		for _, ed := range l.Edges {
			if ed.From == from && ed.To == to && ed.Relation == rel {
				return true
			}
		}
		return false
	}
	up, err := e.svc.Lineage(ctx, "models:/delays/1", pipeline.Up, 0)
	if err != nil {
		t.Fatalf("Lineage up: %v", err)
	}
	if up.Root != model || up.Direction != pipeline.Up || len(up.Edges) != 4 ||
		!has(up, art, model, "registered") || !has(up, step, art, "output") || !has(up, data, step, "input") || !has(up, pr, step, "step") {
		t.Errorf("up from delays/1 = %+v", up.Edges)
	}
	if len(up.Nodes) != 5 || up.Nodes[0] != model || up.Nodes[1] != data {
		t.Errorf("nodes = %v, want the root first, then by kind", up.Nodes)
	}

	down, err := e.svc.Lineage(ctx, "data://flights@latest", pipeline.Down, 0)
	if err != nil {
		t.Fatalf("Lineage down: %v", err)
	}
	if len(down.Edges) != 4 || !has(down, art, model, "registered") || !has(down, data, step2, "input") || has(down, pr, step, "step") {
		t.Errorf("down from flights@1 = %+v", down.Edges)
	}

	one, err := e.svc.Lineage(ctx, "models:/delays/1", pipeline.Up, 1)
	if err != nil || len(one.Edges) != 1 || !has(one, art, model, "registered") {
		t.Errorf("depth 1 = %+v, %v", one, err)
	}

	// A version registered outside pipelines: its run from the registry,
	// then the stored edges above that run.
	out, err := e.svc.Lineage(ctx, "models:/delays/2", pipeline.Up, 0)
	if err != nil {
		t.Fatalf("Lineage of delays/2: %v", err)
	}
	model2 := pipeline.Node{Kind: pipeline.NodeModel, ID: "delays/2"}
	if len(out.Edges) != 2 || !has(out, step2, model2, "output") || !has(out, data, step2, "input") {
		t.Errorf("up from delays/2 = %+v", out.Edges)
	}
	out, err = e.svc.Lineage(ctx, "models:/delays/2", pipeline.Up, 1)
	if err != nil || len(out.Edges) != 1 || !has(out, step2, model2, "output") {
		t.Errorf("depth 1 from delays/2 = %+v, %v", out, err)
	}
	if out, err = e.svc.Lineage(ctx, "models:/delays/2", pipeline.Down, 0); err != nil || len(out.Edges) != 0 || len(out.Nodes) != 1 {
		t.Errorf("down from delays/2 = %+v, %v; want nothing", out, err)
	}

	if _, err := e.svc.Lineage(ctx, "models:/delays/1", "sideways", 0); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("bad direction: %v", err)
	}
}

// FuzzResolveNode checks that no reference makes ResolveNode panic, that
// malformed ones are EINVALID, and that what it resolves is a whole node.
func FuzzResolveNode(f *testing.F) {
	for _, s := range []string{
		"data://flights@latest", "data:flights@sha256:abcdef", "flights@3", "models:/m/1", "models:/m@champion",
		"models:/m/1/2", "runs:/abc", "runs:/abc/outputs/x", "0123456789abcdef0123456789abcdef", "pr-0123456789ab",
		"s3://b/k", "mlflow-artifacts:/", "file:///tmp/x", "", "@", "data://", "models:/@", "x:@y",
	} {
		f.Add(s)
	}
	// No services: lookups answer EUNAVAILABLE, so only parsing is exercised.
	svc := pipeline.NewService(nil, nil, nil, nil, nil, "")
	f.Fuzz(func(t *testing.T, ref string) {
		n, err := svc.ResolveNode(context.Background(), ref)
		if err != nil {
			if k := mloop.ErrorCode(err); k != mloop.EINVALID && k != mloop.EUNAVAILABLE {
				t.Fatalf("ResolveNode(%q) = %v, want EINVALID or EUNAVAILABLE", ref, err)
			}
			return
		}
		if n.Kind == "" || n.ID == "" {
			t.Fatalf("ResolveNode(%q) = %+v, want a kind and an id", ref, n)
		}
	})
}
