package httpapi

// Handlers of mloop's /api/v1 for pipeline runs, their logs, triggers,
// events and lineage. The wire format is documented in
// docs/pipelines-api.md; errors have the MLflow shape and status mapping.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

// logPollInterval is how often a followed log is polled for new bytes and
// its step for its state.
const logPollInterval = 100 * time.Millisecond

// pipelines returns the pipeline service, or a NOT_IMPLEMENTED error when
// the server runs without one.
func (s *Server) pipelines() (*pipeline.Service, error) {
	if s.Pipelines == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server does not run pipelines.")
	}
	return s.Pipelines, nil
}

// submitRunRequest is the body of POST /api/v1/pipeline-runs.
type submitRunRequest struct {
	SpecFile   string            `json:"spec_file"`
	ProjectDir string            `json:"project_dir"`
	Spec       string            `json:"spec"`
	Params     map[string]string `json:"params"`
	Explain    bool              `json:"explain"`
	User       string            `json:"user"`
	Cause      string            `json:"cause"`
}

// submitPipelineRun creates a pipeline run: 201 with the queued run.
func (s *Server) submitPipelineRun(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	var req submitRunRequest
	if err := s.decodeJSON(r, &req, false); err != nil {
		return err
	}
	switch {
	case req.SpecFile == "":
		return mloop.Errorf(mloop.EINVALID, "Missing value for field 'spec_file': give the absolute path of the pipeline spec.")
	case !filepath.IsAbs(req.SpecFile):
		return mloop.Errorf(mloop.EINVALID, "Invalid value for field 'spec_file': %q is not an absolute path (the server does not share the client's working folder).", req.SpecFile)
	case req.ProjectDir == "":
		req.ProjectDir = filepath.Dir(req.SpecFile)
	case !filepath.IsAbs(req.ProjectDir):
		return mloop.Errorf(mloop.EINVALID, "Invalid value for field 'project_dir': %q is not an absolute path.", req.ProjectDir)
	}
	run, err := ps.Submit(r.Context(), pipeline.SubmitRequest{
		SpecFile: req.SpecFile, ProjectDir: req.ProjectDir, Spec: req.Spec, Params: req.Params,
		Explain: req.Explain, User: req.User, Cause: req.Cause,
	})
	if err != nil {
		return specError(err)
	}
	writeJSON(w, http.StatusCreated, run)
	return nil
}

// specError returns err as an EINVALID error whose message lists the
// problems, one "file:line:column: message" per line, when err holds
// *pipeline.SpecError values (an invalid spec); other errors unchanged.
func specError(err error) error {
	var se *pipeline.SpecError
	if mloop.ErrorCode(err) != mloop.EINTERNAL || !errors.As(err, &se) {
		return err
	}
	return &mloop.Error{Code: mloop.EINVALID, Message: "Invalid pipeline spec:\n" + err.Error()}
}

// runStatuses are the valid values of the status filter.
var runStatuses = []pipeline.RunStatus{pipeline.RunQueued, pipeline.RunRunning, pipeline.RunSucceeded, pipeline.RunFailed, pipeline.RunCanceled}

// listPipelineRuns lists runs newest first, a page at a time.
func (s *Server) listPipelineRuns(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := pipeline.RunFilter{Pipeline: q.Get("pipeline"), Trigger: q.Get("trigger"), PageToken: q.Get("page_token")}
	for _, v := range strings.Split(q.Get("status"), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		st := pipeline.RunStatus(v)
		if !slices.Contains(runStatuses, st) {
			return mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'status': use one or more of queued, running, succeeded, failed, canceled, separated by commas.", v)
		}
		f.Statuses = append(f.Statuses, st)
	}
	if f.MaxResults, err = positiveInt(q, "max_results"); err != nil {
		return err
	}
	runs, next, err := ps.ListRuns(r.Context(), f)
	if err != nil {
		return err
	}
	if runs == nil {
		runs = []*pipeline.Run{}
	}
	out := map[string]any{"runs": runs}
	if next != "" {
		out["next_page_token"] = next
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// positiveInt reads the optional query parameter name as an integer >= 1; 0
// when it is absent.
func positiveInt(q map[string][]string, name string) (int, error) {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(vs[0])
	if err != nil || n < 1 {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter '%s': want a positive integer.", vs[0], name)
	}
	return n, nil
}

// getPipelineRun returns one run with its steps.
func (s *Server) getPipelineRun(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	run, err := ps.GetRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// cancelPipelineRun asks for a run to be canceled and returns it.
func (s *Server) cancelPipelineRun(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	run, err := ps.Cancel(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, run)
	return nil
}

// pipelineRunLogs answers a step's log as text, from a byte offset, or
// every step's log one after the other under "==> STEP <==" headers. With
// follow=true it streams the log as it grows until the step is done.
func (s *Server) pipelineRunLogs(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	id, stepName := r.PathValue("id"), q.Get("step")
	var offset int64
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.ParseInt(v, 10, 64); err != nil || offset < 0 {
			return mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'offset': want a byte offset >= 0.", v)
		}
		if stepName == "" {
			return mloop.Errorf(mloop.EINVALID, "Parameter 'offset' needs 'step': offsets are within one step's log.")
		}
	}
	follow := false
	if v := q.Get("follow"); v != "" {
		if follow, err = strconv.ParseBool(v); err != nil {
			return mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'follow': use true or false.", v)
		}
	}
	run, err := ps.GetRun(r.Context(), id)
	if err != nil {
		return err
	}
	steps := run.Steps
	if stepName != "" {
		st := run.Step(stepName)
		if st == nil {
			names := make([]string, len(run.Steps))
			for i, st := range run.Steps {
				names[i] = st.Name
			}
			return mloop.Errorf(mloop.ENOTFOUND, "Pipeline run %s has no step %q (its steps: %s).", id, stepName, strings.Join(names, ", "))
		}
		steps = []*pipeline.StepRun{st}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	lw := &logWriter{w: w, rc: http.NewResponseController(w)}
	for _, st := range steps {
		if stepName == "" {
			lw.header = "==> " + st.Name + " <==\n"
		}
		if follow {
			err = s.followStepLog(r.Context(), ps, lw, id, st.Name, offset)
		} else {
			err = copyStepLog(r.Context(), ps, lw, id, st.Name, offset)
		}
		if err != nil {
			if r.Context().Err() == nil && !errors.Is(err, errClientGone) {
				s.Logger.Warn("pipeline log stream ended", "run", id, "step", st.Name, "err", err)
			}
			// The status is sent: all that is left is to end the body.
			return nil
		}
	}
	return nil
}

// errClientGone reports that a write to the client failed.
var errClientGone = errors.New("client went away")

// logWriter writes logs to the response, preceded once by a pending header
// (the "==> STEP <==" line of a multi-step answer), and flushes on demand.
type logWriter struct {
	w      io.Writer
	rc     *http.ResponseController
	header string
	wrote  bool
}

// Write writes p after the pending header.
func (lw *logWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if lw.header != "" {
		h := lw.header
		if lw.wrote {
			h = "\n" + h
		}
		lw.header = ""
		if _, err := io.WriteString(lw.w, h); err != nil {
			return 0, errClientGone
		}
	}
	n, err := lw.w.Write(p)
	if n > 0 {
		lw.wrote = true
	}
	if err != nil {
		return n, errClientGone
	}
	return n, nil
}

// flush sends what was written so far.
func (lw *logWriter) flush() error {
	if err := lw.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return errClientGone
	}
	return nil
}

// copyStepLog writes a step's log from offset; a step that has no log yet
// (not started, or cached) writes nothing.
func copyStepLog(ctx context.Context, ps *pipeline.Service, lw *logWriter, runID, step string, offset int64) error {
	rc, err := ps.OpenLog(ctx, runID, step)
	if mloop.IsNotFound(err) {
		return nil
	} else if err != nil {
		return fmt.Errorf("open log of step %s: %w", step, err)
	}
	defer rc.Close()
	if err := skip(rc, offset); err != nil {
		return fmt.Errorf("read log of step %s: %w", step, err)
	}
	if _, err := io.Copy(lw, rc); err != nil {
		return fmt.Errorf("read log of step %s: %w", step, err)
	}
	return nil
}

// skip discards the first n bytes of r, seeking when r can.
func skip(r io.Reader, n int64) error {
	if n == 0 {
		return nil
	}
	if sk, ok := r.(io.Seeker); ok {
		_, err := sk.Seek(n, io.SeekStart)
		return err
	}
	_, err := io.CopyN(io.Discard, r, n)
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// followStepLog streams a step's log file from offset as it grows, until the
// step is done and every byte is sent, the client goes away or the server
// shuts down. A step already done when asked is answered as copyStepLog.
func (s *Server) followStepLog(ctx context.Context, ps *pipeline.Service, lw *logWriter, runID, step string, offset int64) error {
	done := func() (bool, error) {
		run, err := ps.GetRun(ctx, runID)
		if err != nil {
			return false, err
		}
		st := run.Step(step)
		return st == nil || st.Status.Done() || (run.Status.Done() && st.Status != pipeline.StepRunning), nil
	}
	if fin, err := done(); err != nil {
		return err
	} else if fin {
		if err := copyStepLog(ctx, ps, lw, runID, step, offset); err != nil {
			return err
		}
		return lw.flush()
	}
	path := ps.LogPath(runID, step)
	var f *os.File
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	tick := time.NewTicker(logPollInterval)
	defer tick.Stop()
	for {
		// Look at the state before reading: once the step is done, the
		// read that follows sees everything it wrote.
		fin, err := done()
		if err != nil {
			return err
		}
		if f == nil {
			switch f, err = os.Open(path); {
			case err == nil:
				if err := skip(f, offset); err != nil {
					return fmt.Errorf("read log of step %s: %w", step, err)
				}
			case errors.Is(err, os.ErrNotExist):
				f = nil
				if fin {
					// The log never appeared here: the service may keep it
					// elsewhere (the artifact store).
					if err := copyStepLog(ctx, ps, lw, runID, step, offset); err != nil {
						return err
					}
					return lw.flush()
				}
			default:
				return fmt.Errorf("open log of step %s: %w", step, err)
			}
		}
		if f != nil {
			if _, err := io.Copy(lw, f); err != nil {
				return fmt.Errorf("read log of step %s: %w", step, err)
			}
		}
		if err := lw.flush(); err != nil {
			return err
		}
		if fin {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.Done:
			return nil
		case <-tick.C:
		}
	}
}

// createTrigger creates a trigger: 201 with it.
func (s *Server) createTrigger(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	var req pipeline.Trigger
	if err := s.decodeJSON(r, &req, false); err != nil {
		return err
	}
	switch {
	case req.SpecFile == "":
		return mloop.Errorf(mloop.EINVALID, "Missing value for field 'spec_file': give the absolute path of the pipeline spec to run.")
	case !filepath.IsAbs(req.SpecFile):
		return mloop.Errorf(mloop.EINVALID, "Invalid value for field 'spec_file': %q is not an absolute path.", req.SpecFile)
	case req.ProjectDir != "" && !filepath.IsAbs(req.ProjectDir):
		return mloop.Errorf(mloop.EINVALID, "Invalid value for field 'project_dir': %q is not an absolute path.", req.ProjectDir)
	}
	// What a request may define; the state is the server's.
	t := &pipeline.Trigger{
		Name: req.Name, SpecFile: req.SpecFile, ProjectDir: req.ProjectDir, Params: req.Params,
		Kind: req.Kind, Dataset: req.Dataset, Cron: req.Cron, Timezone: req.Timezone, Event: req.Event,
		Cooldown: req.Cooldown, BatchWindow: req.BatchWindow, MaxConcurrent: req.MaxConcurrent, Overlap: req.Overlap,
		Dedup: req.Dedup, MaxFailures: req.MaxFailures, Paused: req.Paused, PauseReason: req.PauseReason,
	}
	created, err := ps.CreateTrigger(r.Context(), t)
	if err != nil {
		return specError(err)
	}
	writeJSON(w, http.StatusCreated, created)
	return nil
}

// listTriggers lists every trigger by name.
func (s *Server) listTriggers(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	ts, err := ps.ListTriggers(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"triggers": ts})
	return nil
}

// getTrigger returns one trigger.
func (s *Server) getTrigger(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	t, err := ps.GetTrigger(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// deleteTrigger deletes a trigger; its pending events are skipped.
func (s *Server) deleteTrigger(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	if err := ps.DeleteTrigger(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{})
	return nil
}

// pauseTrigger pauses a trigger (body {"reason": …}, optional) and returns it.
func (s *Server) pauseTrigger(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := s.decodeJSON(r, &req, true); err != nil {
		return err
	}
	t, err := ps.PauseTrigger(r.Context(), r.PathValue("name"), req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// resumeTrigger resumes a paused trigger and returns it.
func (s *Server) resumeTrigger(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	t, err := ps.ResumeTrigger(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

// fireTrigger records a manual event for a trigger (body {"payload": …},
// optional): 202 with the event, which the controller then decides on.
func (s *Server) fireTrigger(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	var req struct {
		Payload json.RawMessage `json:"payload"`
	}
	if err := s.decodeJSON(r, &req, true); err != nil {
		return err
	}
	ev, err := ps.FireTrigger(r.Context(), r.PathValue("name"), nullToEmpty(req.Payload))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, ev)
	return nil
}

// nullToEmpty returns nil for an absent or null JSON value.
func nullToEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	return raw
}

// triggerEvents lists a trigger's events, newest first (?limit=N).
func (s *Server) triggerEvents(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	limit, err := positiveInt(r.URL.Query(), "limit")
	if err != nil {
		return err
	}
	evs, err := ps.TriggerEvents(r.Context(), r.PathValue("name"), limit)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []*pipeline.TriggerEvent{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": evs})
	return nil
}

// postEvent records an event for every trigger listening to its type: 202
// with the events stored (none when no trigger listens, or when each one
// already had an event with the same dedup_key).
func (s *Server) postEvent(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	var req struct {
		Type     string          `json:"type"`
		Subject  string          `json:"subject"`
		Payload  json.RawMessage `json:"payload"`
		DedupKey string          `json:"dedup_key"`
	}
	if err := s.decodeJSON(r, &req, false); err != nil {
		return err
	}
	if strings.TrimSpace(req.Type) == "" {
		return mloop.Errorf(mloop.EINVALID, "Missing value for field 'type': name the kind of event, such as drift.")
	}
	evs, err := ps.PostEvent(r.Context(), req.Type, req.Subject, nullToEmpty(req.Payload), req.DedupKey)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []*pipeline.TriggerEvent{}
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"events": evs})
	return nil
}

// lineage walks the lineage graph from ?ref= (direction up, down or both;
// depth hops, 0 for no limit).
func (s *Server) lineage(w http.ResponseWriter, r *http.Request) error {
	ps, err := s.pipelines()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	ref := strings.TrimSpace(q.Get("ref"))
	if ref == "" {
		return mloop.Errorf(mloop.EINVALID, "Missing parameter 'ref': name a dataset version (data://NAME@N), a pipeline run (pr-…), a step run, an artifact URI or a model version (models:/NAME/N).")
	}
	d := pipeline.Both
	switch v := q.Get("direction"); v {
	case "", "both":
	case "up":
		d = pipeline.Up
	case "down":
		d = pipeline.Down
	default:
		return mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'direction': use up (what produced it), down (what used it) or both.", v)
	}
	depth := 0
	if v := q.Get("depth"); v != "" {
		if depth, err = strconv.Atoi(v); err != nil || depth < 0 {
			return mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'depth': want a number of hops >= 0 (0: no limit).", v)
		}
	}
	l, err := ps.Lineage(r.Context(), ref, d, depth)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, l)
	return nil
}
