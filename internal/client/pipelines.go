package client

// Pipeline runs, their logs, triggers, events and lineage
// (docs/pipelines-api.md).

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/mloop/mloop/internal/pipeline"
)

// PipelineRunRequest asks the server to run a pipeline.
type PipelineRunRequest struct {
	// SpecFile is the absolute path of the spec file on the server's
	// machine; ProjectDir the absolute project folder (default: the spec's
	// folder).
	SpecFile   string `json:"spec_file,omitempty"`
	ProjectDir string `json:"project_dir,omitempty"`
	// Spec is the spec's text; when given, the server runs it instead of
	// reading SpecFile (which then only names the run's spec).
	Spec string `json:"spec,omitempty"`
	// Params override the pipeline's parameter defaults.
	Params map[string]string `json:"params,omitempty"`
	// Explain marks the run as one whose client prints why each step ran.
	Explain bool `json:"explain,omitempty"`
	// User and Cause say who and what started the run.
	User  string `json:"user,omitempty"`
	Cause string `json:"cause,omitempty"`
}

// pipelineRunPath returns /api/v1/pipeline-runs/{id} followed by suffix.
func pipelineRunPath(id, suffix string) string {
	return "/api/v1/pipeline-runs/" + url.PathEscape(id) + suffix
}

// triggerPath returns /api/v1/triggers/{name} followed by suffix.
func triggerPath(name, suffix string) string {
	return "/api/v1/triggers/" + url.PathEscape(name) + suffix
}

// SubmitPipelineRun creates a pipeline run and returns it, queued.
func (c *Client) SubmitPipelineRun(ctx context.Context, req PipelineRunRequest) (*pipeline.Run, error) {
	var run pipeline.Run
	if _, err := c.callJSON(ctx, http.MethodPost, "/api/v1/pipeline-runs", nil, req, &run); err != nil {
		return nil, fmt.Errorf("submit pipeline run: %w", err)
	}
	return &run, nil
}

// GetPipelineRun returns a pipeline run with its steps; ENOTFOUND when there is none.
func (c *Client) GetPipelineRun(ctx context.Context, id string) (*pipeline.Run, error) {
	var run pipeline.Run
	if _, err := c.callJSON(ctx, http.MethodGet, pipelineRunPath(id, ""), nil, nil, &run); err != nil {
		return nil, fmt.Errorf("get pipeline run %s: %w", id, err)
	}
	return &run, nil
}

// ListPipelineRuns returns one page of pipeline runs, newest first, and the token of
// the next page ("" at the end).
func (c *Client) ListPipelineRuns(ctx context.Context, f pipeline.RunFilter) ([]*pipeline.Run, string, error) {
	q := url.Values{}
	if f.Pipeline != "" {
		q.Set("pipeline", f.Pipeline)
	}
	if f.Trigger != "" {
		q.Set("trigger", f.Trigger)
	}
	if len(f.Statuses) > 0 {
		ss := make([]string, len(f.Statuses))
		for i, s := range f.Statuses {
			ss[i] = string(s)
		}
		q.Set("status", strings.Join(ss, ","))
	}
	if f.MaxResults > 0 {
		q.Set("max_results", strconv.Itoa(f.MaxResults))
	}
	if f.PageToken != "" {
		q.Set("page_token", f.PageToken)
	}
	var out struct {
		Runs []*pipeline.Run `json:"runs"`
		Next string          `json:"next_page_token"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/pipeline-runs", q, nil, &out); err != nil {
		return nil, "", fmt.Errorf("list pipeline runs: %w", err)
	}
	return out.Runs, out.Next, nil
}

// CancelPipelineRun asks the server to cancel a run and returns the run as
// it is then. A run already finished is ECONFLICT.
func (c *Client) CancelPipelineRun(ctx context.Context, id string) (*pipeline.Run, error) {
	var run pipeline.Run
	if _, err := c.callJSON(ctx, http.MethodPost, pipelineRunPath(id, "/cancel"), nil, nil, &run); err != nil {
		return nil, fmt.Errorf("cancel pipeline run %s: %w", id, err)
	}
	return &run, nil
}

// PipelineRunLogs opens the log of a run's step from byte offset, or, with step
// empty, every step's log under "==> STEP <==" headers (offset must then be
// 0). With follow, the answer streams until the step is done (bound it with
// ctx). The caller closes the reader.
func (c *Client) PipelineRunLogs(ctx context.Context, runID, step string, offset int64, follow bool) (io.ReadCloser, error) {
	q := url.Values{}
	if step != "" {
		q.Set("step", step)
	}
	if offset > 0 {
		q.Set("offset", strconv.FormatInt(offset, 10))
	}
	if follow {
		q.Set("follow", "true")
	}
	resp, err := c.send(ctx, request{method: http.MethodGet, path: pipelineRunPath(runID, "/logs"), query: q})
	if err != nil {
		if step != "" {
			return nil, fmt.Errorf("logs of step %s of run %s: %w", step, runID, err)
		}
		return nil, fmt.Errorf("logs of run %s: %w", runID, err)
	}
	return resp.Body, nil
}

// triggerCall sends a trigger request and decodes the trigger answered.
func (c *Client) triggerCall(ctx context.Context, method, path string, in any) (*pipeline.Trigger, error) {
	var out pipeline.Trigger
	if _, err := c.callJSON(ctx, method, path, nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CreateTrigger creates a trigger from t's definition fields (name, spec,
// kind and its source, guardrails) and returns it as stored. EEXISTS when
// the name is taken.
func (c *Client) CreateTrigger(ctx context.Context, t *pipeline.Trigger) (*pipeline.Trigger, error) {
	out, err := c.triggerCall(ctx, http.MethodPost, "/api/v1/triggers", t)
	if err != nil {
		return nil, fmt.Errorf("create trigger %q: %w", t.Name, err)
	}
	return out, nil
}

// GetTrigger returns a trigger; ENOTFOUND when there is none.
func (c *Client) GetTrigger(ctx context.Context, name string) (*pipeline.Trigger, error) {
	out, err := c.triggerCall(ctx, http.MethodGet, triggerPath(name, ""), nil)
	if err != nil {
		return nil, fmt.Errorf("get trigger %q: %w", name, err)
	}
	return out, nil
}

// ListTriggers returns every trigger by name.
func (c *Client) ListTriggers(ctx context.Context) ([]*pipeline.Trigger, error) {
	var out struct {
		Triggers []*pipeline.Trigger `json:"triggers"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/triggers", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	return out.Triggers, nil
}

// PauseTrigger pauses a trigger with a reason and returns it.
func (c *Client) PauseTrigger(ctx context.Context, name, reason string) (*pipeline.Trigger, error) {
	out, err := c.triggerCall(ctx, http.MethodPost, triggerPath(name, "/pause"), map[string]string{"reason": reason})
	if err != nil {
		return nil, fmt.Errorf("pause trigger %q: %w", name, err)
	}
	return out, nil
}

// ResumeTrigger resumes a paused trigger and returns it.
func (c *Client) ResumeTrigger(ctx context.Context, name string) (*pipeline.Trigger, error) {
	out, err := c.triggerCall(ctx, http.MethodPost, triggerPath(name, "/resume"), nil)
	if err != nil {
		return nil, fmt.Errorf("resume trigger %q: %w", name, err)
	}
	return out, nil
}

// DeleteTrigger deletes a trigger; ENOTFOUND when there is none.
func (c *Client) DeleteTrigger(ctx context.Context, name string) error {
	if _, err := c.callJSON(ctx, http.MethodDelete, triggerPath(name, ""), nil, nil, nil); err != nil {
		return fmt.Errorf("delete trigger %q: %w", name, err)
	}
	return nil
}

// FireTrigger records a manual event for a trigger, with an optional JSON
// payload, and returns the event (pending: the server's controller decides,
// within the trigger's guardrails, whether it starts a run).
func (c *Client) FireTrigger(ctx context.Context, name string, payload json.RawMessage) (*pipeline.TriggerEvent, error) {
	var in any
	if len(payload) > 0 {
		in = map[string]json.RawMessage{"payload": payload}
	}
	var ev pipeline.TriggerEvent
	if _, err := c.callJSON(ctx, http.MethodPost, triggerPath(name, "/fire"), nil, in, &ev); err != nil {
		return nil, fmt.Errorf("fire trigger %q: %w", name, err)
	}
	return &ev, nil
}

// TriggerEvents returns a trigger's events, newest first, at most limit
// (0: the server's default).
func (c *Client) TriggerEvents(ctx context.Context, name string, limit int) ([]*pipeline.TriggerEvent, error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out struct {
		Events []*pipeline.TriggerEvent `json:"events"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, triggerPath(name, "/events"), q, nil, &out); err != nil {
		return nil, fmt.Errorf("events of trigger %q: %w", name, err)
	}
	return out.Events, nil
}

// PostEvent posts an event of type typ; every trigger listening to that
// type records it. It returns the events stored, one per trigger (none when
// no trigger listens or each already had dedupKey).
func (c *Client) PostEvent(ctx context.Context, typ, subject string, payload json.RawMessage, dedupKey string) ([]*pipeline.TriggerEvent, error) {
	in := struct {
		Type     string          `json:"type"`
		Subject  string          `json:"subject,omitempty"`
		Payload  json.RawMessage `json:"payload,omitempty"`
		DedupKey string          `json:"dedup_key,omitempty"`
	}{typ, subject, payload, dedupKey}
	var out struct {
		Events []*pipeline.TriggerEvent `json:"events"`
	}
	if _, err := c.callJSON(ctx, http.MethodPost, "/api/v1/events", nil, in, &out); err != nil {
		return nil, fmt.Errorf("post event %q: %w", typ, err)
	}
	return out.Events, nil
}

// Lineage walks the lineage graph from ref in direction d, at most depth
// hops (0: no limit).
func (c *Client) Lineage(ctx context.Context, ref string, d pipeline.Direction, depth int) (*pipeline.Lineage, error) {
	q := url.Values{"ref": {ref}}
	if d != "" {
		q.Set("direction", string(d))
	}
	if depth > 0 {
		q.Set("depth", strconv.Itoa(depth))
	}
	var out pipeline.Lineage
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/lineage", q, nil, &out); err != nil {
		return nil, fmt.Errorf("lineage of %s: %w", ref, err)
	}
	return &out, nil
}
