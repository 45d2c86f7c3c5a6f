package httpapi

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
)

// pipelineServer is a running test server with every service wired as
// cmd/mloop wires them, the pipeline service running its controllers.
type pipelineServer struct {
	*datasetServer
	svc *pipeline.Service
	// shutdown closes the Server's Done channel, as cmd/mloop does when it
	// begins to shut down (once only).
	shutdown func()
}

// newPipelineTestServer starts the real HTTP API over real services on one
// SQLite database and artifact folder in tb.TempDir(), with the pipeline
// service open (steps log to MLflow through the server itself).
func newPipelineTestServer(tb testing.TB) *pipelineServer {
	tb.Helper()
	st := pipelinetest.NewStack(tb)
	ps := st.NewService(tb)
	ps.PollInterval = 50 * time.Millisecond
	done := make(chan struct{})
	s := &Server{
		Tracking:     st.Tracking,
		LoggedModels: st.LoggedModels,
		Registry:     st.Registry,
		Datasets:     st.Datasets,
		Pipelines:    ps,
		Done:         done,
		Artifacts:    st.Artifacts,
		Ready:        st.DB.Ping,
		Logger:       st.Logger,
		Version:      "test",
	}
	srv := httptest.NewServer(s.Handler())
	ps.TrackingURI = srv.URL
	if err := ps.Open(context.Background()); err != nil {
		srv.Close()
		tb.Fatalf("open pipeline service: %v", err)
	}
	// Cleanups run last-in first-out: end streams, stop serving, then
	// stop the pipelines, before the stores close.
	tb.Cleanup(func() { ps.Close() })
	tb.Cleanup(srv.Close)
	var once sync.Once
	shutdown := func() { once.Do(func() { close(done) }) }
	tb.Cleanup(shutdown)
	return &pipelineServer{datasetServer: &datasetServer{Server: srv}, svc: ps, shutdown: shutdown}
}

// writePipeline writes spec as mloop.yaml in a new folder and returns its
// absolute path.
func writePipeline(tb testing.TB, spec string) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), "mloop.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// waitRun polls a run until it is done and returns it.
func (p *pipelineServer) waitRun(tb testing.TB, id string) *pipeline.Run {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var r pipeline.Run
		p.want(tb, "GET", "/api/v1/pipeline-runs/"+id, nil, http.StatusOK, &r)
		if r.Status.Done() {
			return &r
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("run %s did not finish within 60s", id)
	return nil
}

const echoPipeline = `name: echo
params:
  word: hello
steps:
  say:
    run: echo "${{ params.word }}"; echo second line
  fail:
    run: echo failing; exit 3
`

func TestPipelineRunsHTTP(t *testing.T) {
	p := newPipelineTestServer(t)
	file := writePipeline(t, echoPipeline)

	var r pipeline.Run
	p.want(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file, "params": map[string]string{"word": "hi"}, "user": "alice"},
		http.StatusCreated, &r)
	if !strings.HasPrefix(r.ID, "pr-") || r.Pipeline != "echo" || r.ProjectDir != filepath.Dir(file) || len(r.Steps) != 2 {
		t.Fatalf("submit: got %+v, want a run of echo with 2 steps in the spec's folder", r)
	}
	done := p.waitRun(t, r.ID)
	if done.Status != pipeline.RunFailed || done.Step("say").Status != pipeline.StepSucceeded || done.Step("fail").Status != pipeline.StepFailed {
		t.Fatalf("run: got %s (say %s, fail %s), want failed with say succeeded", done.Status, done.Step("say").Status, done.Step("fail").Status)
	}

	// Logs: one step, from an offset, or every step under headers.
	code, h, body := p.do(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs?step=say", nil)
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.Contains(string(body), "\nhi\nsecond line\n") {
		t.Fatalf("logs of say: got %d %q %q", code, h.Get("Content-Type"), body)
	}
	i := strings.Index(string(body), "second line")
	_, _, tail := p.do(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs?step=say&offset="+strconv.Itoa(i), nil)
	if !strings.HasPrefix(string(tail), "second line\n") || len(tail) != len(body)-i {
		t.Errorf("logs from offset %d: got %q, want the log's bytes from there", i, tail)
	}
	_, _, all := p.do(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs", nil)
	if s := string(all); !strings.HasPrefix(s, "==> say <==\n") || !strings.Contains(s, "\n\n==> fail <==\n") || !strings.Contains(s, "failing\n") {
		t.Errorf("logs of every step: got %q", all)
	}
	// follow on a finished step answers at once with the whole log.
	_, _, followed := p.do(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs?step=say&follow=true", nil)
	if string(followed) != string(body) {
		t.Errorf("follow of a finished step: got %q, want %q", followed, body)
	}

	// Listing, filtered and paged.
	var second pipeline.Run
	p.want(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file, "project_dir": filepath.Dir(file)}, http.StatusCreated, &second)
	p.waitRun(t, second.ID)
	var list struct {
		Runs []*pipeline.Run `json:"runs"`
		Next string          `json:"next_page_token"`
	}
	p.want(t, "GET", "/api/v1/pipeline-runs?pipeline=echo&status=failed,canceled&max_results=1", nil, http.StatusOK, &list)
	if len(list.Runs) != 1 || list.Runs[0].ID != second.ID || list.Next == "" {
		t.Fatalf("list page 1: got %d runs (first %v), next %q; want %s and a next page", len(list.Runs), list.Runs, list.Next, second.ID)
	}
	p.want(t, "GET", "/api/v1/pipeline-runs?max_results=1&page_token="+list.Next, nil, http.StatusOK, &list)
	if len(list.Runs) != 1 || list.Runs[0].ID != r.ID {
		t.Fatalf("list page 2: got %v, want %s", list.Runs, r.ID)
	}
	p.want(t, "GET", "/api/v1/pipeline-runs?pipeline=nosuch", nil, http.StatusOK, &list)
	if list.Runs == nil || len(list.Runs) != 0 {
		t.Errorf("list of an unknown pipeline: got %v, want an empty list", list.Runs)
	}

	// Errors.
	p.wantError(t, "GET", "/api/v1/pipeline-runs/pr-000000000000", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "pr-000000000000")
	p.wantError(t, "GET", "/api/v1/pipeline-runs/pr-000000000000/logs?step=say", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "pr-000000000000")
	p.wantError(t, "POST", "/api/v1/pipeline-runs/pr-000000000000/cancel", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "pr-000000000000")
	p.wantError(t, "POST", "/api/v1/pipeline-runs/"+r.ID+"/cancel", nil, http.StatusBadRequest, "INVALID_STATE", "already failed")
	p.wantError(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs?step=nosuch", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "say, fail")
	p.wantError(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs?step=say&offset=-1", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'offset'")
	p.wantError(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs?offset=3", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'step'")
	p.wantError(t, "GET", "/api/v1/pipeline-runs/"+r.ID+"/logs?step=say&follow=maybe", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'follow'")
	p.wantError(t, "GET", "/api/v1/pipeline-runs?status=done", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'status'")
	p.wantError(t, "GET", "/api/v1/pipeline-runs?max_results=0", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'max_results'")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", "", http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "empty")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", "{", http.StatusBadRequest, "BAD_REQUEST", "Malformed JSON")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'spec_file'")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": "mloop.yaml"}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'spec_file'")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file + ".missing"}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "no pipeline spec")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": filepath.Dir(file)}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "not a regular file")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file, "project_dir": "rel"}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'project_dir'")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file, "params": []string{"a"}}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'params'")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file, "params": map[string]string{"nosuch": "1"}}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "nosuch")
	p.wantError(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file, "spec": "name: x\nsteps: {a: {bogus: 1}}\n"}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "bogus")
}

func TestPipelineLogFollowHTTP(t *testing.T) {
	p := newPipelineTestServer(t)
	file := writePipeline(t, `name: ticker
steps:
  tick:
    run: for i in 1 2 3 4 5; do echo tick $i; sleep 0.1; done
`)
	var r pipeline.Run
	p.want(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file}, http.StatusCreated, &r)

	// The follow answer streams: its first line arrives before the step
	// ends, and the answer ends once the step did, with every line.
	resp, err := p.Client().Get(p.URL + "/api/v1/pipeline-runs/" + r.ID + "/logs?step=tick&follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	var ticks []string
	for _, l := range lines {
		if strings.HasPrefix(l, "tick ") {
			ticks = append(ticks, l)
		}
	}
	if strings.Join(ticks, ",") != "tick 1,tick 2,tick 3,tick 4,tick 5" {
		t.Fatalf("followed log: got %q, want the five ticks in order", lines)
	}
	var now pipeline.Run
	p.want(t, "GET", "/api/v1/pipeline-runs/"+r.ID, nil, http.StatusOK, &now)
	if st := now.Step("tick").Status; !st.Done() {
		t.Errorf("the followed log ended while the step was %s", st)
	}

	// A client that goes away ends the stream; cancel ends the run.
	var slow pipeline.Run
	file = writePipeline(t, "name: slow\nsteps:\n  wait:\n    run: echo started; sleep 60\n")
	p.want(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file}, http.StatusCreated, &slow)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", p.URL+"/api/v1/pipeline-runs/"+slow.ID+"/logs?step=wait&follow=true", nil)
	resp2, err := p.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp2.Body)
	line, err := br.ReadString('\n')
	for err == nil && !strings.HasPrefix(line, "started") {
		line, err = br.ReadString('\n')
	}
	if err != nil {
		t.Fatalf("follow of a running step: %v before its first line", err)
	}
	cancel()
	resp2.Body.Close()
	var canceled pipeline.Run
	p.want(t, "POST", "/api/v1/pipeline-runs/"+slow.ID+"/cancel", nil, http.StatusOK, &canceled)
	if !canceled.CancelRequested && canceled.Status != pipeline.RunCanceled {
		t.Errorf("cancel: got %+v, want the cancel requested", canceled)
	}
	if got := p.waitRun(t, slow.ID); got.Status != pipeline.RunCanceled {
		t.Errorf("canceled run: got %s, want canceled", got.Status)
	}
}

func TestPipelineLogFollowEndsOnShutdown(t *testing.T) {
	p := newPipelineTestServer(t)
	file := writePipeline(t, "name: slow\nsteps:\n  wait:\n    run: echo started; sleep 60\n")
	var r pipeline.Run
	p.want(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file}, http.StatusCreated, &r)
	resp, err := p.Client().Get(p.URL + "/api/v1/pipeline-runs/" + r.ID + "/logs?step=wait&follow=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("follow of a running step: %v before its first line", err)
		}
		if strings.HasPrefix(line, "started") {
			break
		}
	}
	// The server begins to shut down: the stream ends although the step
	// still runs.
	p.shutdown()
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Fatalf("stream after shutdown: %v, want a clean end", err)
	}
	var now pipeline.Run
	p.want(t, "GET", "/api/v1/pipeline-runs/"+r.ID, nil, http.StatusOK, &now)
	if st := now.Step("wait").Status; st != pipeline.StepRunning {
		t.Errorf("step after the stream ended: got %s, want still running", st)
	}
	p.want(t, "POST", "/api/v1/pipeline-runs/"+r.ID+"/cancel", nil, http.StatusOK, nil)
	p.waitRun(t, r.ID)
}

// triggerReply is a trigger as the API answers it.
type triggerReply struct {
	Name          string `json:"name"`
	Pipeline      string `json:"pipeline"`
	Kind          string `json:"kind"`
	Event         string `json:"event"`
	Cooldown      string `json:"cooldown"`
	BatchWindow   string `json:"batch_window"`
	MaxConcurrent int    `json:"max_concurrent"`
	Overlap       string `json:"overlap"`
	Paused        bool   `json:"paused"`
	PauseReason   string `json:"pause_reason"`
}

func TestTriggersHTTP(t *testing.T) {
	p := newPipelineTestServer(t)
	file := writePipeline(t, echoPipeline)

	var tr triggerReply
	p.want(t, "POST", "/api/v1/triggers", map[string]any{"name": "hourly", "spec_file": file, "kind": "manual",
		"cooldown": "10m", "batch_window": "90s", "overlap": "skip"}, http.StatusCreated, &tr)
	if tr.Name != "hourly" || tr.Pipeline != "echo" || tr.Kind != "manual" || tr.Cooldown != "10m0s" || tr.BatchWindow != "1m30s" ||
		tr.MaxConcurrent != 1 || tr.Overlap != "skip" {
		t.Fatalf("create: got %+v, want the trigger with its durations as Go durations and defaults filled", tr)
	}
	p.want(t, "POST", "/api/v1/triggers", map[string]any{"name": "now", "spec_file": file, "kind": "manual"}, http.StatusCreated, &tr)
	p.want(t, "POST", "/api/v1/triggers", map[string]any{"name": "ondrift", "spec_file": file, "event": "drift"}, http.StatusCreated, &tr)
	if tr.Kind != "event" || tr.Event != "drift" {
		t.Fatalf("create by event: got %+v", tr)
	}

	p.wantError(t, "POST", "/api/v1/triggers", map[string]any{"name": "hourly", "spec_file": file, "kind": "manual"},
		http.StatusBadRequest, "RESOURCE_ALREADY_EXISTS", "hourly")
	p.wantError(t, "POST", "/api/v1/triggers", map[string]any{"name": "x", "spec_file": file, "kind": "manual", "cooldown": "ten minutes"},
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'cooldown'")
	p.wantError(t, "POST", "/api/v1/triggers", map[string]any{"name": "x", "spec_file": file, "kind": "manual", "batch_window": "-1s"},
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'batch_window'")
	p.wantError(t, "POST", "/api/v1/triggers", map[string]any{"name": "x", "spec_file": file, "kind": "manual", "cooldown": 600},
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'cooldown'")
	p.wantError(t, "POST", "/api/v1/triggers", map[string]any{"name": "x", "kind": "manual"},
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'spec_file'")
	p.wantError(t, "POST", "/api/v1/triggers", map[string]any{"name": "x", "spec_file": file, "kind": "sometimes"},
		http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "sometimes")

	var list struct {
		Triggers []triggerReply `json:"triggers"`
	}
	p.want(t, "GET", "/api/v1/triggers", nil, http.StatusOK, &list)
	if len(list.Triggers) != 3 || list.Triggers[0].Name != "hourly" || list.Triggers[2].Name != "ondrift" {
		t.Fatalf("list: got %+v, want hourly, now and ondrift", list.Triggers)
	}

	p.want(t, "POST", "/api/v1/triggers/hourly/pause", map[string]string{"reason": "maintenance"}, http.StatusOK, &tr)
	if !tr.Paused || tr.PauseReason != "maintenance" {
		t.Errorf("pause: got %+v", tr)
	}
	p.want(t, "POST", "/api/v1/triggers/hourly/resume", nil, http.StatusOK, &tr)
	if tr.Paused {
		t.Errorf("resume: got %+v", tr)
	}

	// fire: 202 with the pending event; the controller starts a run.
	var ev pipeline.TriggerEvent
	p.want(t, "POST", "/api/v1/triggers/now/fire", map[string]any{"payload": map[string]string{"user": "alice"}}, http.StatusAccepted, &ev)
	if ev.ID == 0 || ev.Trigger != "now" || ev.Source != "manual" || ev.Status != pipeline.EventPending {
		t.Fatalf("fire: got %+v", ev)
	}
	runID := p.waitEventRun(t, "now", ev.ID)
	if r := p.waitRun(t, runID); r.Trigger != "now" {
		t.Errorf("triggered run: got trigger %q, want now", r.Trigger)
	}
	p.want(t, "POST", "/api/v1/triggers/hourly/fire", nil, http.StatusAccepted, &ev)

	// events: posted to every trigger listening to the type.
	var posted struct {
		Events []pipeline.TriggerEvent `json:"events"`
	}
	p.want(t, "POST", "/api/v1/events", map[string]any{"type": "drift", "subject": "model-a", "payload": map[string]float64{"psi": 0.3}, "dedup_key": "k"},
		http.StatusAccepted, &posted)
	if len(posted.Events) != 1 || posted.Events[0].Trigger != "ondrift" || posted.Events[0].Subject != "model-a" {
		t.Fatalf("post event: got %+v, want one event for ondrift", posted.Events)
	}
	p.want(t, "POST", "/api/v1/events", map[string]any{"type": "drift", "dedup_key": "k"}, http.StatusAccepted, &posted)
	if len(posted.Events) != 0 {
		t.Errorf("post event again with the same dedup key: got %+v, want none stored", posted.Events)
	}
	p.want(t, "POST", "/api/v1/events", map[string]any{"type": "nobody-listens"}, http.StatusAccepted, &posted)
	if posted.Events == nil || len(posted.Events) != 0 {
		t.Errorf("post event no trigger listens to: got %v, want an empty list", posted.Events)
	}
	p.wantError(t, "POST", "/api/v1/events", map[string]any{"subject": "x"}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'type'")
	p.wantError(t, "POST", "/api/v1/events", map[string]any{"type": 3}, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'type'")

	var evs struct {
		Events []pipeline.TriggerEvent `json:"events"`
	}
	p.want(t, "GET", "/api/v1/triggers/hourly/events?limit=1", nil, http.StatusOK, &evs)
	if len(evs.Events) != 1 {
		t.Errorf("events?limit=1: got %d events", len(evs.Events))
	}
	p.wantError(t, "GET", "/api/v1/triggers/hourly/events?limit=x", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'limit'")
	p.wantError(t, "GET", "/api/v1/triggers/nosuch/events", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "nosuch")
	p.wantError(t, "POST", "/api/v1/triggers/nosuch/fire", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "nosuch")
	p.wantError(t, "POST", "/api/v1/triggers/nosuch/pause", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "nosuch")
	p.wantError(t, "POST", "/api/v1/triggers/hourly/fire", `{"payload": {`, http.StatusBadRequest, "BAD_REQUEST", "Malformed JSON")

	p.want(t, "DELETE", "/api/v1/triggers/hourly", nil, http.StatusOK, nil)
	p.wantError(t, "GET", "/api/v1/triggers/hourly", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "hourly")
	p.wantError(t, "DELETE", "/api/v1/triggers/hourly", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "hourly")
}

// waitEventRun polls a trigger's events until event id is fired and returns
// its run id.
func (p *pipelineServer) waitEventRun(tb testing.TB, trigger string, id int64) string {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		var evs struct {
			Events []pipeline.TriggerEvent `json:"events"`
		}
		p.want(tb, "GET", "/api/v1/triggers/"+trigger+"/events", nil, http.StatusOK, &evs)
		for _, e := range evs.Events {
			if e.ID != id || e.Status == pipeline.EventPending {
				continue
			}
			if e.Status != pipeline.EventFired {
				tb.Fatalf("event %d of %s: got %s (%s), want fired", id, trigger, e.Status, e.Reason)
			}
			return e.RunID
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("event %d of trigger %s was not fired within 60s", id, trigger)
	return ""
}

func TestLineageHTTP(t *testing.T) {
	p := newPipelineTestServer(t)
	file := writePipeline(t, `name: lin
steps:
  make:
    run: echo x > "$MLOOP_OUTPUT_OUT"
    outputs:
      out: out.txt
`)
	var r pipeline.Run
	p.want(t, "POST", "/api/v1/pipeline-runs", map[string]any{"spec_file": file}, http.StatusCreated, &r)
	if got := p.waitRun(t, r.ID); got.Status != pipeline.RunSucceeded {
		t.Fatalf("run: got %s (%s)", got.Status, got.Error)
	}
	var l pipeline.Lineage
	p.want(t, "GET", "/api/v1/lineage?ref="+r.ID+"&direction=down&depth=2", nil, http.StatusOK, &l)
	if l.Root.ID != r.ID || l.Direction != pipeline.Down || len(l.Edges) == 0 {
		t.Fatalf("lineage down from the run: got %+v, want edges from %s", l, r.ID)
	}
	var found bool
	for _, e := range l.Edges {
		found = found || (e.Relation == "output" && e.To.Kind == pipeline.NodeArtifact)
	}
	if !found {
		t.Errorf("lineage down from the run: got %+v, want the step's output artifact", l.Edges)
	}
	p.want(t, "GET", "/api/v1/lineage?ref="+r.ID, nil, http.StatusOK, &l)
	if l.Direction != pipeline.Both {
		t.Errorf("lineage without direction: got %s, want both", l.Direction)
	}

	p.wantError(t, "GET", "/api/v1/lineage", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'ref'")
	p.wantError(t, "GET", "/api/v1/lineage?ref="+r.ID+"&direction=sideways", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'direction'")
	p.wantError(t, "GET", "/api/v1/lineage?ref="+r.ID+"&depth=-1", nil, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "'depth'")
	p.wantError(t, "GET", "/api/v1/lineage?ref=pr-000000000000", nil, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "")
}

func TestPipelinesNotConfigured(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, path := range []string{"/api/v1/pipeline-runs", "/api/v1/triggers", "/api/v1/lineage?ref=x"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotImplemented {
			t.Errorf("GET %s without a pipeline service: got %d, want 501", path, resp.StatusCode)
		}
	}
}
