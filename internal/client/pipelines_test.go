package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
)

// newPipelineServer starts the real HTTP API with the real services, the
// pipeline service running, on SQLite and a local artifact folder in
// tb.TempDir(), and returns a client of it.
func newPipelineServer(tb testing.TB) *Client {
	tb.Helper()
	st := pipelinetest.NewStack(tb)
	ps := st.NewService(tb)
	ps.PollInterval = 50 * time.Millisecond
	api := &httpapi.Server{Tracking: st.Tracking, LoggedModels: st.LoggedModels, Registry: st.Registry, Datasets: st.Datasets,
		Pipelines: ps, Artifacts: st.Artifacts, Logger: st.Logger, Version: "test"}
	srv := httptest.NewServer(api.Handler())
	ps.TrackingURI = srv.URL
	if err := ps.Open(context.Background()); err != nil {
		srv.Close()
		tb.Fatalf("open pipeline service: %v", err)
	}
	tb.Cleanup(func() { ps.Close() })
	tb.Cleanup(srv.Close)
	return New(srv.URL, nil)
}

// waitPipelineRun polls a run until it is done.
func waitPipelineRun(tb testing.TB, c *Client, id string) *pipeline.Run {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		r, err := c.GetPipelineRun(context.Background(), id)
		if err != nil {
			tb.Fatal(err)
		}
		if r.Status.Done() {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("run %s did not finish within 60s", id)
	return nil
}

func TestPipelineRunRoundTrip(t *testing.T) {
	c := newPipelineServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	spec := "name: greet\nparams:\n  who: world\nsteps:\n  hello:\n    run: echo hello ${{ params.who }}\n  slow:\n    run: sleep 60\n"
	file := filepath.Join(dir, "mloop.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	r, err := c.SubmitPipelineRun(ctx, PipelineRunRequest{SpecFile: file, ProjectDir: dir, Spec: spec,
		Params: map[string]string{"who": "mloop"}, Explain: true, User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Pipeline != "greet" || r.Params["who"] != "mloop" || !r.Explain || len(r.Steps) != 2 {
		t.Fatalf("submit: got %+v", r)
	}

	// Follow hello's log to its end, then cancel the run with slow in it.
	rc, err := c.PipelineRunLogs(ctx, r.ID, "hello", 0, true)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !strings.Contains(string(b), "hello mloop\n") {
		t.Fatalf("followed log of hello: got %q, %v", b, err)
	}
	rc, err = c.PipelineRunLogs(ctx, r.ID, "hello", int64(strings.Index(string(b), "hello mloop")), false)
	if err != nil {
		t.Fatal(err)
	}
	tail, _ := io.ReadAll(rc)
	rc.Close()
	if !strings.HasPrefix(string(tail), "hello mloop\n") {
		t.Errorf("log from an offset: got %q", tail)
	}
	if _, err := c.CancelPipelineRun(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if got := waitPipelineRun(t, c, r.ID); got.Status != pipeline.RunCanceled {
		t.Errorf("canceled run: got %s", got.Status)
	}
	if _, err := c.CancelPipelineRun(ctx, r.ID); mloop.ErrorCode(err) != mloop.ECONFLICT {
		t.Errorf("cancel of an ended run: got %v, want ECONFLICT", err)
	}

	runs, next, err := c.ListPipelineRuns(ctx, pipeline.RunFilter{Pipeline: "greet", Statuses: []pipeline.RunStatus{pipeline.RunCanceled}})
	if err != nil || len(runs) != 1 || runs[0].ID != r.ID || next != "" {
		t.Fatalf("list: got %v, %q, %v; want the canceled run", runs, next, err)
	}

	// Errors keep their kinds.
	if _, err := c.GetPipelineRun(ctx, "pr-000000000000"); !mloop.IsNotFound(err) {
		t.Errorf("get unknown run: got %v, want ENOTFOUND", err)
	}
	if _, err := c.PipelineRunLogs(ctx, r.ID, "nosuch", 0, false); !mloop.IsNotFound(err) {
		t.Errorf("logs of an unknown step: got %v, want ENOTFOUND", err)
	}
	_, err = c.SubmitPipelineRun(ctx, PipelineRunRequest{SpecFile: file, Spec: "name: x\nsteps:\n  a:\n    bogus: 1\n"})
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), "mloop.yaml:4:") {
		t.Errorf("submit an invalid spec: got %v, want EINVALID with file:line", err)
	}
	ctx2, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.GetPipelineRun(ctx2, r.ID); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: got %v", err)
	}
}

func TestTriggerRoundTrip(t *testing.T) {
	c := newPipelineServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	file := filepath.Join(dir, "mloop.yaml")
	if err := os.WriteFile(file, []byte("name: t\nsteps:\n  a:\n    run: echo a\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	in := &pipeline.Trigger{Name: "drifty", SpecFile: file, Kind: pipeline.OnEvent, Event: "drift",
		Cooldown: 90 * time.Second, BatchWindow: time.Millisecond, MaxConcurrent: 2, Overlap: pipeline.OverlapSkip, Dedup: true, MaxFailures: 3}
	got, err := c.CreateTrigger(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "drifty" || got.Pipeline != "t" || got.Cooldown != 90*time.Second || got.BatchWindow != time.Millisecond ||
		got.MaxConcurrent != 2 || got.Overlap != pipeline.OverlapSkip || !got.Dedup || got.MaxFailures != 3 || got.ProjectDir != dir {
		t.Fatalf("create: got %+v", got)
	}
	if _, err := c.CreateTrigger(ctx, in); mloop.ErrorCode(err) != mloop.EEXISTS {
		t.Errorf("create twice: got %v, want EEXISTS", err)
	}
	if g, err := c.GetTrigger(ctx, "drifty"); err != nil || g.Cooldown != got.Cooldown || g.CreatedAt.IsZero() {
		t.Errorf("get: got %+v, %v", g, err)
	}
	ts, err := c.ListTriggers(ctx)
	if err != nil || len(ts) != 1 || ts[0].Name != "drifty" {
		t.Errorf("list: got %v, %v", ts, err)
	}
	if p, err := c.PauseTrigger(ctx, "drifty", "hold on"); err != nil || !p.Paused || p.PauseReason != "hold on" {
		t.Errorf("pause: got %+v, %v", p, err)
	}
	if p, err := c.ResumeTrigger(ctx, "drifty"); err != nil || p.Paused {
		t.Errorf("resume: got %+v, %v", p, err)
	}

	evs, err := c.PostEvent(ctx, "drift", "model-a", json.RawMessage(`{"psi":0.4}`), "key-1")
	if err != nil || len(evs) != 1 || evs[0].Trigger != "drifty" || string(evs[0].Payload) != `{"psi":0.4}` {
		t.Fatalf("post event: got %+v, %v", evs, err)
	}
	if evs, err = c.PostEvent(ctx, "drift", "", nil, "key-1"); err != nil || len(evs) != 0 {
		t.Errorf("post the same dedup key again: got %+v, %v; want nothing stored", evs, err)
	}
	ev, err := c.FireTrigger(ctx, "drifty", nil)
	if err != nil || ev.Source != "manual" {
		t.Fatalf("fire: got %+v, %v", ev, err)
	}
	list, err := c.TriggerEvents(ctx, "drifty", 10)
	if err != nil || len(list) != 2 || list[0].ID != ev.ID {
		t.Errorf("events: got %+v, %v; want the fired event first of 2", list, err)
	}

	if err := c.DeleteTrigger(ctx, "drifty"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetTrigger(ctx, "drifty"); !mloop.IsNotFound(err) {
		t.Errorf("get deleted: got %v, want ENOTFOUND", err)
	}
	if _, err := c.FireTrigger(ctx, "drifty", nil); !mloop.IsNotFound(err) {
		t.Errorf("fire deleted: got %v, want ENOTFOUND", err)
	}
}

func TestLineageRoundTrip(t *testing.T) {
	c := newPipelineServer(t)
	ctx := context.Background()
	dir := t.TempDir()
	spec := "name: lin\nsteps:\n  make:\n    run: echo x > \"$MLOOP_OUTPUT_OUT\"\n    outputs:\n      out: out.txt\n"
	file := filepath.Join(dir, "mloop.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := c.SubmitPipelineRun(ctx, PipelineRunRequest{SpecFile: file, ProjectDir: dir, Spec: spec})
	if err != nil {
		t.Fatal(err)
	}
	if done := waitPipelineRun(t, c, r.ID); done.Status != pipeline.RunSucceeded {
		t.Fatalf("run: %s (%s)", done.Status, done.Error)
	}
	l, err := c.Lineage(ctx, r.ID, pipeline.Down, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l.Root != (pipeline.Node{Kind: pipeline.NodePipelineRun, ID: r.ID}) || len(l.Edges) < 2 || len(l.Nodes) < 3 {
		t.Errorf("lineage: got %+v, want the run's step and its output", l)
	}
	if _, err := c.Lineage(ctx, "pr-000000000000", pipeline.Up, 1); !mloop.IsNotFound(err) {
		t.Errorf("lineage of an unknown run: got %v, want ENOTFOUND", err)
	}
}
