package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// This file executes one pipeline run: its MLflow parent run, the scheduling
// of its steps in DAG order with bounded parallelism, and its end.

// runExec is one run being executed by this process.
type runExec struct {
	s    *Service
	spec *Spec
	plan *Plan
	// expID and mlflowRunID are the run's MLflow experiment and parent run.
	expID, mlflowRunID string
	// attached are steps re-attached after a restart.
	attached map[string]Handle

	mu  sync.Mutex
	run *Run // steps are updated in memory as in the store
}

// executeRun executes a run claimed by this process until it ends, or until
// ctx ends: canceled by Cancel (the run ends Canceled) or by Close (the run
// stays Running for the next start to resume).
func (s *Service) executeRun(ctx context.Context, id string, attached map[string]Handle) {
	bg := context.WithoutCancel(ctx)
	r, err := s.Store.GetRun(bg, id)
	if err != nil {
		s.logger().Error("load claimed pipeline run", "run", id, "err", err)
		return
	}
	ex := &runExec{s: s, run: r, attached: attached}
	spec, plan, err := loadPlan(r.SpecFile, r.Spec, r.Params)
	if err != nil {
		ex.finish(bg, RunFailed, fmt.Sprintf("invalid spec: %v", err))
		return
	}
	ex.spec, ex.plan = spec, plan
	if r.CancelRequested {
		for _, sr := range ex.steps() {
			if !sr.Status.Done() {
				st, msg, now := StepSkipped, "run canceled before it started", s.now().UTC()
				ex.updateStep(sr.Name, StepUpdate{Status: &st, Error: &msg, FinishedAt: &now})
			}
		}
		ex.finish(bg, RunCanceled, "")
		return
	}
	if err := ex.track(bg); err != nil {
		ex.finish(bg, RunFailed, fmt.Sprintf("track the run in MLflow: %v", err))
		return
	}
	s.logger().Info("pipeline run started", "run", r.ID, "pipeline", r.Pipeline, "steps", len(r.Steps))
	canceled := ex.schedule(ctx)
	if !canceled && ctx.Err() != nil {
		s.logger().Info("pipeline run interrupted by shutdown; it resumes on the next start", "run", r.ID)
		return
	}
	if canceled {
		ex.finish(bg, RunCanceled, "")
		return
	}
	var failed []string
	for _, sr := range ex.steps() {
		if sr.Status == StepFailed {
			failed = append(failed, fmt.Sprintf("step %s failed: %s", sr.Name, sr.Error))
		}
	}
	if len(failed) > 0 {
		ex.finish(bg, RunFailed, strings.Join(failed, "; "))
		return
	}
	ex.finish(bg, RunSucceeded, "")
}

// steps returns a copy of the run's step records.
func (ex *runExec) steps() []StepRun {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	out := make([]StepRun, len(ex.run.Steps))
	for i, sr := range ex.run.Steps {
		out[i] = *sr
	}
	return out
}

// step returns a copy of one step's record.
func (ex *runExec) step(name string) StepRun {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if sr := ex.run.Step(name); sr != nil {
		return *sr
	}
	return StepRun{Name: name}
}

// updateStep writes a step change to the store and to the in-memory run.
// Store failures are logged: the run goes on, and a restart recovers.
func (ex *runExec) updateStep(name string, u StepUpdate) {
	ctx := context.Background()
	if err := ex.s.Store.UpdateStep(ctx, ex.run.ID, name, u); err != nil {
		ex.s.logger().Error("update pipeline step", "run", ex.run.ID, "step", name, "err", err)
	}
	ex.mu.Lock()
	defer ex.mu.Unlock()
	sr := ex.run.Step(name)
	if sr == nil {
		return
	}
	applyStepUpdate(sr, u)
}

func applyStepUpdate(sr *StepRun, u StepUpdate) {
	if u.Status != nil {
		sr.Status = *u.Status
	}
	if u.Attempt != nil {
		sr.Attempt = *u.Attempt
	}
	if u.CacheKey != nil {
		sr.CacheKey = *u.CacheKey
	}
	if u.CachedFrom != nil {
		sr.CachedFrom = *u.CachedFrom
	}
	if u.Explain != nil {
		sr.Explain = u.Explain
	}
	if u.MLflowRunID != nil {
		sr.MLflowRunID = *u.MLflowRunID
	}
	if u.Executor != nil {
		sr.Executor = *u.Executor
	}
	if u.TaskID != nil {
		sr.TaskID = *u.TaskID
	}
	if u.Handle != nil {
		sr.Handle = *u.Handle
	}
	if u.ExitCode != nil {
		c := *u.ExitCode
		sr.ExitCode = &c
	}
	if u.Error != nil {
		sr.Error = *u.Error
	}
	if u.Outputs != nil {
		sr.Outputs = u.Outputs
	}
	if u.Metrics != nil {
		sr.Metrics = u.Metrics
	}
	if u.StartedAt != nil {
		sr.StartedAt = *u.StartedAt
	}
	if u.FinishedAt != nil {
		sr.FinishedAt = *u.FinishedAt
	}
}

// schedule runs the steps in DAG order, independent ones in parallel up to
// StepParallelism, until every step has ended or ctx ended and the running
// steps stopped. It reports whether the run was canceled.
func (ex *runExec) schedule(ctx context.Context) bool {
	s := ex.s
	limit := s.StepParallelism
	if limit <= 0 {
		limit = 4
	}
	poll := s.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	ticker := time.NewTicker(poll)
	defer ticker.Stop()
	done := make(chan string)
	running := map[string]bool{}
	canceled := false
	ctxDone := ctx.Done()
	for {
		if ctx.Err() == nil {
			for _, name := range ex.plan.Order {
				if len(running) >= limit {
					break
				}
				sr := ex.step(name)
				if running[name] {
					continue
				}
				switch sr.Status {
				case StepPending:
				case StepRunning: // re-attached after a restart
					if ex.attached[name] == nil {
						continue
					}
				default:
					continue
				}
				ready, blocked := true, ""
				for _, d := range ex.plan.Deps(name) {
					ds := ex.step(d).Status
					if !ds.Done() {
						ready = false
					} else if !ds.OK() && blocked == "" {
						blocked = fmt.Sprintf("upstream step %s %s", d, ds)
					}
				}
				if blocked != "" {
					st, now := StepSkipped, s.now().UTC()
					ex.updateStep(name, StepUpdate{Status: &st, Error: &blocked, FinishedAt: &now})
					continue
				}
				if !ready {
					continue
				}
				running[name] = true
				go func(name string) {
					defer func() { done <- name }()
					ex.runStep(ctx, name)
				}(name)
			}
		}
		if len(running) == 0 {
			break
		}
		select {
		case name := <-done:
			delete(running, name)
		case <-ticker.C:
			if r, err := s.Store.GetRun(ctx, ex.run.ID); err == nil && r.CancelRequested {
				s.signalCancel(ex.run.ID)
			}
		case <-ctxDone:
			ctxDone = nil
		}
	}
	if errors.Is(context.Cause(ctx), errRunCanceled) {
		canceled = true
	} else if ctx.Err() == nil {
		if r, err := s.Store.GetRun(context.WithoutCancel(ctx), ex.run.ID); err == nil && r.CancelRequested {
			canceled = true
		}
	}
	if canceled {
		for _, sr := range ex.steps() {
			if !sr.Status.Done() {
				st, msg, now := StepSkipped, "run canceled", s.now().UTC()
				ex.updateStep(sr.Name, StepUpdate{Status: &st, Error: &msg, FinishedAt: &now})
			}
		}
	}
	return canceled
}

// finish ends the run with a final status.
func (ex *runExec) finish(ctx context.Context, status RunStatus, msg string) {
	s, r := ex.s, ex.run
	if ex.mlflowRunID != "" {
		ml := map[RunStatus]string{RunSucceeded: tracking.RunFinished, RunFailed: tracking.RunFailed, RunCanceled: tracking.RunKilled}[status]
		end := s.now().UnixMilli()
		if _, err := s.Tracking.UpdateRun(ctx, ex.mlflowRunID, tracking.RunUpdate{Status: &ml, EndTime: &end}); err != nil {
			s.logger().Warn("end MLflow run of pipeline run", "run", r.ID, "err", err)
		}
	}
	now := s.now().UTC()
	u := RunUpdate{Status: &status, FinishedAt: &now}
	if msg != "" {
		u.Error = &msg
	}
	// The run's trigger learns the outcome (and pauses after too many
	// failures) before the run stops counting as active, so its controller
	// never starts the next run on a trigger about to pause.
	ended := *r
	ended.Status, ended.FinishedAt, ended.Error = status, now, msg
	s.runFinished(ctx, &ended)
	// The final status must be written: a run left Running would hold its
	// trigger's concurrency slot until the next restart (which resumes it).
	// A passing database error gets retries (about 25 s in all).
	delay := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := s.Store.UpdateRun(ctx, r.ID, u)
		if err == nil {
			break
		}
		if attempt == finishAttempts || ctx.Err() != nil {
			s.logger().Error("end pipeline run; it stays running until the next start", "run", r.ID, "err", err)
			return
		}
		s.logger().Warn("end pipeline run; retrying", "run", r.ID, "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(2*delay, 5*time.Second)
	}
	r.Status = status
	s.logger().Info("pipeline run ended", "run", r.ID, "pipeline", r.Pipeline, "status", status, "error", msg)
	s.afterRun(ctx, r)
}

// track creates (or, after a restart, finds) the run's MLflow experiment
// and parent run.
func (ex *runExec) track(ctx context.Context) error {
	s, r := ex.s, ex.run
	if s.Tracking == nil {
		return mloop.Errorf(mloop.EUNAVAILABLE, "no tracking service")
	}
	expID := r.ExperimentID
	if expID == "" {
		exp, err := s.Tracking.GetExperimentByName(ctx, r.Pipeline)
		switch {
		case err == nil:
			expID = exp.ID
		case mloop.IsNotFound(err):
			expID, err = s.Tracking.CreateExperiment(ctx, r.Pipeline, "", []tracking.Tag{{Key: "mloop.pipeline", Value: "true"}})
			if mloop.ErrorCode(err) == mloop.EEXISTS {
				exp, err2 := s.Tracking.GetExperimentByName(ctx, r.Pipeline)
				if err2 != nil {
					return err2
				}
				expID, err = exp.ID, nil
			}
			if err != nil {
				return err
			}
		default:
			return err
		}
	}
	ex.expID = expID
	if r.MLflowRunID != "" {
		ex.mlflowRunID = r.MLflowRunID
		return nil
	}
	tags := []tracking.Tag{
		{Key: "mloop.pipeline_run_id", Value: r.ID},
		{Key: "mloop.cause", Value: truncate(r.Cause, tracking.MaxTagValueLength)},
		{Key: "mlflow.source.name", Value: r.SpecFile},
		{Key: "mlflow.source.type", Value: "JOB"},
	}
	if r.Trigger != "" {
		tags = append(tags, tracking.Tag{Key: "mloop.trigger", Value: r.Trigger})
	}
	tr, err := s.Tracking.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID, RunName: r.ID, StartTime: s.now().UnixMilli(), Tags: tags})
	if err != nil {
		return err
	}
	ex.mlflowRunID = tr.Info.RunID
	if err := s.Store.UpdateRun(ctx, r.ID, RunUpdate{ExperimentID: &expID, MLflowRunID: &ex.mlflowRunID}); err != nil {
		return err
	}
	var params []tracking.Param
	for _, p := range ex.spec.Params {
		params = append(params, tracking.Param{Key: p.Name, Value: truncate(p.Default, tracking.MaxParamValueLength)})
	}
	if err := s.logBatch(ctx, ex.mlflowRunID, nil, params, nil); err != nil {
		s.logger().Warn("log pipeline params", "run", r.ID, "err", err)
	}
	return nil
}

// logBatch logs metrics, params and tags in batches within MLflow's limits.
func (s *Service) logBatch(ctx context.Context, runID string, metrics []tracking.Metric, params []tracking.Param, tags []tracking.Tag) error {
	const chunk = 100
	for len(metrics) > 0 || len(params) > 0 || len(tags) > 0 {
		m, p, t := min(len(metrics), chunk*10), min(len(params), chunk), min(len(tags), chunk)
		if err := s.Tracking.LogBatch(ctx, runID, metrics[:m], params[:p], tags[:t]); err != nil {
			return err
		}
		metrics, params, tags = metrics[m:], params[p:], tags[t:]
	}
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}
