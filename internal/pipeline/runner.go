package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// Retry backoff: an attempt that failed is retried after retryBackoff ×
// attempt number, at most maxRetryBackoff.
const (
	retryBackoff    = time.Second
	maxRetryBackoff = 10 * time.Second
)

// errRunCanceled is the cause of a run context canceled by Cancel; any other
// cause (the service's Close) means the server is shutting down.
var errRunCanceled = errors.New("pipeline run canceled")

// finishAttempts bounds the writes of a run's final status.
const finishAttempts = 10

// runnerState is the runner's in-memory state inside Service.
type runnerState struct {
	mu sync.Mutex
	// wake wakes the loop (capacity 1; sends never block).
	wake chan struct{}
	// stop ends the loop and every run it started; wg waits for them.
	stop context.CancelFunc
	wg   sync.WaitGroup
	// active maps the runs this process is executing to their cancel
	// functions.
	active map[string]context.CancelCauseFunc
	// memo remembers file hashes across runs.
	memo *HashMemo
	// keyLocks serialize work on one key (a dataset version being
	// materialized, an output being downloaded).
	keyLocks map[string]*keyLock
	// projects tracks the attempts running in each project folder, to tell
	// who may have written outside its outputs.
	projects map[string]map[*attemptMark]bool
	// backoff overrides retryBackoff when positive (tests).
	backoff time.Duration
	// owner is the default controller name, computed once.
	owner string
	// lead is the controllers' lease (leader.go).
	lead leaderState
}

type keyLock struct {
	mu   sync.Mutex
	refs int
}

// attemptMark is one running attempt in a project folder, with the names of
// the attempts that ran in the same folder at some time during it.
type attemptMark struct {
	name       string
	overlapped map[string]bool
}

func (rs *runnerState) init() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.wake == nil {
		rs.wake = make(chan struct{}, 1)
	}
	if rs.active == nil {
		rs.active = map[string]context.CancelCauseFunc{}
	}
	if rs.keyLocks == nil {
		rs.keyLocks = map[string]*keyLock{}
	}
	if rs.projects == nil {
		rs.projects = map[string]map[*attemptMark]bool{}
	}
}

// lockKey locks key and returns its unlock function.
func (rs *runnerState) lockKey(key string) func() {
	rs.init()
	rs.mu.Lock()
	l := rs.keyLocks[key]
	if l == nil {
		l = &keyLock{}
		rs.keyLocks[key] = l
	}
	l.refs++
	rs.mu.Unlock()
	l.mu.Lock()
	return func() {
		l.mu.Unlock()
		rs.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(rs.keyLocks, key)
		}
		rs.mu.Unlock()
	}
}

// enterProject registers an attempt running in a project folder.
func (rs *runnerState) enterProject(dir, name string) *attemptMark {
	rs.init()
	rs.mu.Lock()
	defer rs.mu.Unlock()
	m := &attemptMark{name: name, overlapped: map[string]bool{}}
	set := rs.projects[dir]
	if set == nil {
		set = map[*attemptMark]bool{}
		rs.projects[dir] = set
	}
	for o := range set {
		o.overlapped[name] = true
		m.overlapped[o.name] = true
	}
	set[m] = true
	return m
}

// leaveProject unregisters an attempt and returns the attempts that ran in
// the same folder while it did.
func (rs *runnerState) leaveProject(dir string, m *attemptMark) []string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	delete(rs.projects[dir], m)
	if len(rs.projects[dir]) == 0 {
		delete(rs.projects, dir)
	}
	return sortedKeys(m.overlapped)
}

func (s *Service) retryDelay(attempt int) time.Duration {
	base := retryBackoff
	if s.rs.backoff > 0 {
		base = s.rs.backoff
	}
	return min(base*time.Duration(attempt), maxRetryBackoff)
}

// owner returns the name this controller claims runs with.
func (s *Service) owner() string {
	if s.Owner != "" {
		return s.Owner
	}
	s.rs.mu.Lock()
	defer s.rs.mu.Unlock()
	if s.rs.owner == "" {
		host, _ := os.Hostname()
		s.rs.owner = host + ":" + strconv.Itoa(os.Getpid()) + ":" + strconv.FormatInt(time.Now().UnixNano(), 10)
	}
	return s.rs.owner
}

func (s *Service) memo() *HashMemo {
	s.rs.mu.Lock()
	defer s.rs.mu.Unlock()
	if s.rs.memo == nil {
		s.rs.memo = NewHashMemo()
	}
	return s.rs.memo
}

// wakeRunner makes the runner look for queued runs now; it never blocks.
func (s *Service) wakeRunner() {
	s.rs.mu.Lock()
	wake := s.rs.wake
	s.rs.mu.Unlock()
	if wake == nil {
		return
	}
	select {
	case wake <- struct{}{}:
	default:
	}
}

// signalCancel cancels a run this process is executing, if it is.
func (s *Service) signalCancel(id string) {
	s.rs.mu.Lock()
	cancel := s.rs.active[id]
	s.rs.mu.Unlock()
	if cancel != nil {
		cancel(errRunCanceled)
	}
}

// Open starts the service: it loads the hash memo and, once this process
// holds the controllers' lease (at once, unless another live server on the
// same database holds it), recovers the runs that were running when their
// controller stopped and starts the runner loop and the trigger controller.
// Without the lease the service stands by: it accepts runs and events, which
// the leader executes, and takes over when the leader's lease lapses.
//
// Recovery takes over every run found Running: only the lease holder runs
// controllers, and a holder that cannot renew its lease stops its own
// before the lease expires (see leader.go). A step that was running is re-attached when
// the executor can; otherwise the attempt counts as failed ("the server
// stopped while attempt N was running"), what is left of its process group
// is killed, and the step is retried when attempts remain. Steps that had
// succeeded or were cached are kept. A run is never started twice: queued
// runs are claimed atomically (Store.ClaimRun).
func (s *Service) Open(ctx context.Context) error {
	s.rs.init()
	if s.WorkDir == "" {
		return mloop.Errorf(mloop.EINVALID, "pipeline service: no work folder is set")
	}
	// Steps run in their project folder: every path given to them must be
	// absolute.
	abs, err := filepath.Abs(s.WorkDir)
	if err != nil {
		return fmt.Errorf("pipeline service: work folder: %w", err)
	}
	s.WorkDir = abs
	if err := os.MkdirAll(s.WorkDir, 0o755); err != nil {
		return fmt.Errorf("pipeline service: create work folder: %w", err)
	}
	memo, err := LoadHashMemo(s.memoPath())
	if err != nil {
		s.logger().Warn("hash memo unreadable; starting with an empty one", "err", err)
		memo = NewHashMemo()
	}
	s.rs.mu.Lock()
	s.rs.memo = memo
	s.rs.mu.Unlock()
	return s.openLeadership(ctx)
}

// startControllers recovers the runs left running, starts the runner loop
// and the trigger controller. The caller holds the controllers' lease.
func (s *Service) startControllers(ctx context.Context) error {
	loopCtx, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.rs.mu.Lock()
	s.rs.stop = stop
	s.rs.mu.Unlock()
	if err := s.recoverRuns(ctx, loopCtx); err != nil {
		s.stopControllers()
		return err
	}
	s.rs.wg.Add(1)
	go s.loop(loopCtx)
	s.startTriggerController(ctx)
	return nil
}

// stopControllers stops the trigger controller, the runner loop and the
// runs it executes (their running steps are recorded as interrupted, to be
// retried by whoever runs the controllers next), and waits for them. It
// does nothing when they are not running.
func (s *Service) stopControllers() {
	s.rs.mu.Lock()
	stop := s.rs.stop
	s.rs.stop = nil
	s.rs.mu.Unlock()
	s.stopTriggerController()
	if stop != nil {
		stop()
	}
	s.rs.wg.Wait()
}

// privateDirs returns WorkDir and PrivateDirs as absolute, clean paths.
func (s *Service) privateDirs() []string {
	dirs := []string{filepath.Clean(s.WorkDir)}
	for _, d := range s.PrivateDirs {
		if abs, err := filepath.Abs(d); err == nil {
			dirs = append(dirs, abs)
		}
	}
	return dirs
}

// Close stops the runner loop and the runs this process executes: their
// running steps are stopped and put back to pending without spending an
// attempt ("server shutting down"), to run again when a service opens on the
// database. It waits for them, releases the controllers' lease and saves
// the hash memo.
func (s *Service) Close() error {
	s.rs.mu.Lock()
	memo := s.rs.memo
	s.rs.mu.Unlock()
	s.closeLeadership()
	if memo != nil {
		if err := s.saveMemo(); err != nil {
			return fmt.Errorf("close pipeline service: %w", err)
		}
	}
	return nil
}

// saveMemo saves the hash memo into the work folder.
func (s *Service) saveMemo() error {
	if s.WorkDir == "" {
		return nil
	}
	if err := os.MkdirAll(s.WorkDir, 0o755); err != nil {
		return fmt.Errorf("save hash memo: %w", err)
	}
	return s.memo().Save(s.memoPath())
}

// loop claims queued runs until ctx ends.
func (s *Service) loop(ctx context.Context) {
	defer s.rs.wg.Done()
	poll := s.PollInterval
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		if err := s.claimQueued(ctx); err != nil && ctx.Err() == nil {
			s.logger().Warn("claim queued pipeline runs", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.rs.wake:
		case <-t.C:
		}
	}
}

// claimQueued claims the oldest queued runs, as many as RunParallelism
// allows, and starts them.
func (s *Service) claimQueued(ctx context.Context) error {
	limit := s.RunParallelism
	if limit <= 0 {
		limit = 4
	}
	s.rs.mu.Lock()
	free := limit - len(s.rs.active)
	s.rs.mu.Unlock()
	if free <= 0 {
		return nil
	}
	// The oldest queued runs first; a few more than there is room for, in
	// case another controller claims some of them meanwhile.
	runs, _, err := s.Store.ListRuns(ctx, RunFilter{Statuses: []RunStatus{RunQueued}, MaxResults: 2 * free, OldestFirst: true})
	if err != nil {
		return err
	}
	for _, r := range runs {
		if free == 0 {
			break
		}
		ok, err := s.Store.ClaimRun(ctx, r.ID, s.owner(), s.now().UTC())
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		free--
		s.startRun(ctx, r.ID, nil)
	}
	return nil
}

// startRun executes a claimed run in a goroutine of its own.
func (s *Service) startRun(loopCtx context.Context, id string, attached map[string]Handle) {
	ctx, cancel := context.WithCancelCause(loopCtx)
	s.rs.mu.Lock()
	s.rs.active[id] = cancel
	s.rs.mu.Unlock()
	s.rs.wg.Add(1)
	go func() {
		defer s.rs.wg.Done()
		defer func() {
			s.rs.mu.Lock()
			delete(s.rs.active, id)
			s.rs.mu.Unlock()
			cancel(nil)
			s.wakeRunner()
		}()
		s.executeRun(ctx, id, attached)
	}()
}

// orphanKiller is implemented by executors that can kill what is left of a
// task started by an earlier process, given its task ID and recorded handle
// (which may be empty when the process died before recording it).
type orphanKiller interface {
	KillTask(taskID, handle string) error
}

// recoverRuns takes over the runs left Running by an earlier process.
func (s *Service) recoverRuns(ctx, loopCtx context.Context) error {
	var runs []*Run
	token := ""
	for {
		page, next, err := s.Store.ListRuns(ctx, RunFilter{Statuses: []RunStatus{RunRunning}, MaxResults: 1000, PageToken: token})
		if err != nil {
			return fmt.Errorf("recover pipeline runs: %w", err)
		}
		runs = append(runs, page...)
		if next == "" {
			break
		}
		token = next
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r, err := s.Store.GetRun(ctx, runs[i].ID)
		if err != nil {
			return fmt.Errorf("recover pipeline run %s: %w", runs[i].ID, err)
		}
		attached, err := s.recoverSteps(ctx, r)
		if err != nil {
			return fmt.Errorf("recover pipeline run %s: %w", r.ID, err)
		}
		s.logger().Info("resuming pipeline run after a restart", "run", r.ID, "pipeline", r.Pipeline, "previous_owner", r.Owner)
		s.startRun(loopCtx, r.ID, attached)
	}
	return nil
}

// recoverSteps re-attaches to or fails the running steps of a run.
func (s *Service) recoverSteps(ctx context.Context, r *Run) (map[string]Handle, error) {
	retries := map[string]int{}
	if spec, _, err := loadPlan(r.SpecFile, r.Spec, r.Params); err == nil {
		for _, st := range spec.Steps {
			retries[st.Name] = st.Retries
		}
	}
	attached := map[string]Handle{}
	for _, sr := range r.Steps {
		if sr.Status != StepRunning {
			continue
		}
		if sr.TaskID != "" && s.Executor != nil {
			if h, err := s.Executor.Attach(ctx, sr.TaskID); err == nil {
				attached[sr.Name] = h
				continue
			}
		}
		if sr.TaskID != "" || sr.Handle != "" {
			if k, ok := s.Executor.(orphanKiller); ok {
				if err := k.KillTask(sr.TaskID, sr.Handle); err != nil {
					s.logger().Warn("kill leftover process group of an interrupted step", "run", r.ID, "step", sr.Name, "handle", sr.Handle, "err", err)
				}
			}
		}
		msg := fmt.Sprintf("the server stopped while attempt %d was running", sr.Attempt)
		status := StepFailed
		if sr.Attempt <= retries[sr.Name] {
			status = StepPending
		}
		appendLog(s.LogPath(r.ID, sr.Name), fmt.Sprintf("--- attempt %d failed: %s\n", sr.Attempt, msg))
		now := s.now().UTC()
		u := StepUpdate{Status: &status, Error: &msg, FinishedAt: &now}
		if err := s.Store.UpdateStep(ctx, r.ID, sr.Name, u); err != nil {
			return nil, err
		}
		s.logger().Warn("step interrupted by a server stop", "run", r.ID, "step", sr.Name, "attempt", sr.Attempt, "next", status)
	}
	return attached, nil
}

// appendLog appends a line to a log file, ignoring failures (the log is
// best effort; the store records the same fact).
func appendLog(path, line string) {
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	f.WriteString(line)
	f.Close()
}

// afterRun is called once a run's end is stored: it saves the hash memo and
// wakes the trigger controller (finish has told the run's trigger already).
func (s *Service) afterRun(ctx context.Context, r *Run) {
	if err := s.saveMemo(); err != nil {
		s.logger().Warn("save hash memo", "err", err)
	}
	s.wakeTriggers()
}

func dirOf(p string) string { return filepath.Dir(p) }

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

// stepPrep is what the runner works out for a step before deciding whether
// to run it.
type stepPrep struct {
	st *Step
	// params are the step's resolved params.
	params map[string]string
	// input is the cache input and key its cache key.
	input CacheInput
	key   string
	// inputs are the resolved inputs; localized tells whether their local
	// paths are set (data materialized, upstream outputs downloaded).
	inputs    map[string]ResolvedInput
	localized bool
	// mlRunID and artifactURI are the step's nested MLflow run.
	mlRunID, artifactURI string
}

// attemptResult is how one attempt ended.
type attemptResult struct {
	ok          bool
	interrupted bool
	msg         string
	exit        *int
	metrics     map[string]float64
	tags        map[string]string
	edges       []Edge
}

// runStep takes a step from pending (or re-attached running) to a final
// state, or, when the server shuts down, to pending or failed per its
// retry policy.
func (ex *runExec) runStep(ctx context.Context, name string) {
	s, r := ex.s, ex.run
	st := ex.spec.Step(name)
	sr := ex.step(name)
	p, err := ex.prepare(ctx, st)
	if err == nil {
		err = ex.trackStep(ctx, p, sr)
	}
	if err != nil {
		if ctx.Err() != nil {
			ex.interrupted(ctx, p, st, sr.Attempt, nil, false)
			return
		}
		ex.fail(p, st, fmt.Sprintf("prepare step %s: %s", name, errText(err)), nil)
		return
	}
	if h := ex.attached[name]; h != nil && sr.Status == StepRunning {
		res := ex.waitAttached(ctx, p, h, sr.Attempt)
		ex.afterAttempt(ctx, p, sr.Attempt, res)
		return
	}

	// Cache.
	var explain []string
	if st.Cache {
		e, err := s.Store.GetCache(ctx, p.key)
		switch {
		case err == nil:
			why, err := ex.usable(ctx, st, e)
			if err != nil {
				s.logger().Warn("check cached outputs", "run", r.ID, "step", name, "err", err)
				why = "the outputs of run " + e.RunID + " could not be checked: " + errText(err)
			}
			if why == "" {
				ex.cacheHit(ctx, p, e)
				return
			}
			explain = []string{"cache miss: " + why}
		case !mloop.IsNotFound(err):
			s.logger().Warn("look up step cache", "run", r.ID, "step", name, "err", err)
		}
	}
	if explain == nil {
		if !st.Cache {
			explain = []string{"cache disabled (cache: false)"}
		} else if prev, err := s.Store.LatestCache(ctx, r.Pipeline, name); err == nil {
			explain = ExplainDiff(prev.Input, p.input)
			if len(explain) == 0 {
				explain = []string{"the earlier result with the same inputs (run " + prev.RunID + ") cannot be reused"}
			}
		} else {
			explain = []string{"no earlier result for this step"}
		}
	}
	ex.updateStep(name, StepUpdate{CacheKey: &p.key, Explain: explain})
	ex.tagStep(ctx, p, map[string]string{"mloop.cache_key": p.key, "mloop.cached": "false"})

	maxAttempts := 1 + st.Retries
	for {
		attempt := ex.step(name).Attempt + 1
		if attempt > maxAttempts {
			ex.fail(p, st, fmt.Sprintf("step %s has no attempts left (%d of %d made)", name, attempt-1, maxAttempts), nil)
			return
		}
		res := ex.attempt(ctx, p, attempt, maxAttempts)
		if !ex.afterAttempt(ctx, p, attempt, res) {
			return
		}
		delay := s.retryDelay(attempt)
		appendLog(s.LogPath(r.ID, name), fmt.Sprintf("--- retrying in %s\n", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			ex.interrupted(ctx, p, st, attempt, res.exit, true)
			return
		case <-t.C:
		}
	}
}

// afterAttempt records how an attempt ended and reports whether the step
// should be tried again.
func (ex *runExec) afterAttempt(ctx context.Context, p *stepPrep, attempt int, res attemptResult) bool {
	st := p.st
	switch {
	case res.interrupted:
		ex.interrupted(ctx, p, st, attempt, res.exit, true)
		return false
	case res.ok:
		ex.succeed(ctx, p, res)
		return false
	}
	appendLog(ex.s.LogPath(ex.run.ID, st.Name), fmt.Sprintf("--- attempt %d/%d failed: %s\n", attempt, 1+st.Retries, res.msg))
	if attempt < 1+st.Retries {
		msg := fmt.Sprintf("attempt %d failed: %s", attempt, res.msg)
		ex.updateStep(st.Name, StepUpdate{Error: &msg, ExitCode: res.exit})
		return true
	}
	ex.fail(p, st, res.msg, res.exit)
	return false
}

// prepare resolves a step's params and inputs and computes its cache key.
func (ex *runExec) prepare(ctx context.Context, st *Step) (*stepPrep, error) {
	s, r := ex.s, ex.run
	p := &stepPrep{st: st, params: map[string]string{}, inputs: map[string]ResolvedInput{}}
	pipelineParam := func(scope, name string) (string, error) {
		if v, ok := ex.spec.Param(name); ok && scope == "params" {
			return v, nil
		}
		return "", fmt.Errorf("undefined %s.%s", scope, name)
	}
	for k, v := range st.Params {
		rv, err := Substitute(v, pipelineParam)
		if err != nil {
			return p, fmt.Errorf("param %s: %w", k, err)
		}
		p.params[k] = rv
	}
	// The key sees params substituted and inputs and outputs as written:
	// their local paths differ from run to run.
	keyLookup := func(scope, name string) (string, error) {
		if scope == "params" {
			return p.param(ex.spec, name)
		}
		return "${{ " + scope + "." + name + " }}", nil
	}
	in := CacheInput{Engine: EngineSalt, Image: st.Image, Params: map[string]string{}}
	for k, v := range p.params {
		in.Params[k] = v
	}
	for _, o := range st.Outputs {
		if in.Outputs == nil {
			in.Outputs = map[string]string{}
		}
		in.Outputs[o.Name] = strings.TrimSpace(o.Path + " " + o.Type + " " + o.Flavor)
	}
	if st.Uses != "" {
		with, err := json.Marshal(st.With)
		if err != nil {
			return p, fmt.Errorf("encode with: %w", err)
		}
		in.Command = []string{"uses:" + st.Uses, string(with)}
		b := s.Builtins[st.Uses]
		if b == nil {
			return p, mloop.Errorf(mloop.EINVALID, "unknown built-in step %q", st.Uses)
		}
	} else {
		argv, err := substituteAll(st, keyLookup)
		if err != nil {
			return p, err
		}
		in.Command = argv
	}
	if len(st.Env) > 0 {
		in.Env = map[string]string{}
		for k, v := range st.Env {
			rv, err := Substitute(v, keyLookup)
			if err != nil {
				return p, fmt.Errorf("env %s: %w", k, err)
			}
			in.Env[k] = rv
		}
	}
	for _, i := range st.Inputs {
		ri := ResolvedInput{Name: i.Name, Kind: i.Kind}
		switch i.Kind {
		case InputPath:
			abs := filepath.Join(r.ProjectDir, filepath.FromSlash(i.Path))
			h, err := HashTree(ctx, abs, s.memo())
			if err != nil {
				return p, fmt.Errorf("code input %s (%s): %w", i.Name, i.Path, err)
			}
			ri.Path, ri.Hash = abs, h
			if in.Code == nil {
				in.Code = map[string]InputHash{}
			}
			in.Code[i.Name] = InputHash{Ref: i.Path, Hash: h}
		case InputData:
			v, pin, err := s.pinnedVersion(ctx, r, i)
			if err != nil {
				return p, fmt.Errorf("data input %s: %w", i.Name, err)
			}
			ri.Dataset, ri.Hash = v, pin.Hash
			if in.Data == nil {
				in.Data = map[string]InputHash{}
			}
			in.Data[i.Name] = pin
		case InputStep:
			up := ex.step(i.Step)
			rec, ok := up.Outputs[i.Output]
			if !ok {
				return p, fmt.Errorf("input %s: step %s recorded no output %s", i.Name, i.Step, i.Output)
			}
			ri.Step, ri.Output, ri.Record, ri.StepMLflowRunID, ri.Hash = i.Step, i.Output, &rec, up.MLflowRunID, rec.Hash
			if in.Upstream == nil {
				in.Upstream = map[string]InputHash{}
			}
			in.Upstream[i.Name] = InputHash{Ref: i.Ref, Hash: rec.Hash}
		}
		p.inputs[i.Name] = ri
	}
	// Built-ins add what their result depends on besides their inputs,
	// knowing the inputs' hashes.
	if k, ok := s.Builtins[st.Uses].(CacheKeyer); ok && st.Uses != "" {
		extra, err := k.CacheKeyExtra(ctx, s, ex.run, st, p.inputs)
		if err != nil {
			return p, fmt.Errorf("built-in %s: %w", st.Uses, err)
		}
		for ek, ev := range extra {
			in.Params["uses."+ek] = ev
		}
	}
	p.input = in
	p.key = CacheKey(in)
	return p, nil
}

// param resolves ${{ params.NAME }} in run and env: a step parameter, else
// the pipeline's.
func (p *stepPrep) param(spec *Spec, name string) (string, error) {
	if v, ok := p.params[name]; ok {
		return v, nil
	}
	if v, ok := spec.Param(name); ok {
		return v, nil
	}
	return "", fmt.Errorf("undefined parameter %q", name)
}

// substituteAll returns a command step's argv with lookup applied; a shell
// step is ["sh", "-c", text].
func substituteAll(st *Step, lookup func(scope, name string) (string, error)) ([]string, error) {
	var argv []string
	for _, a := range st.Run {
		v, err := Substitute(a, lookup)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		argv = append(argv, v)
	}
	if st.Shell {
		argv = append([]string{"sh", "-c"}, argv...)
	}
	return argv, nil
}

// trackStep creates the step's nested MLflow run (or finds it after a
// restart), logs its params and data inputs and records its input lineage.
func (ex *runExec) trackStep(ctx context.Context, p *stepPrep, sr StepRun) error {
	s, r, st := ex.s, ex.run, p.st
	if sr.MLflowRunID != "" {
		tr, err := s.Tracking.GetRun(ctx, sr.MLflowRunID)
		if err != nil {
			return fmt.Errorf("find MLflow run of the step: %w", err)
		}
		p.mlRunID, p.artifactURI = tr.Info.RunID, tr.Info.ArtifactURI
		return nil
	}
	tr, err := s.Tracking.CreateRun(ctx, tracking.CreateRunRequest{
		ExperimentID: ex.expID,
		RunName:      st.Name,
		StartTime:    s.now().UnixMilli(),
		Tags: []tracking.Tag{
			{Key: "mlflow.parentRunId", Value: ex.mlflowRunID},
			{Key: "mloop.pipeline_run_id", Value: r.ID},
			{Key: "mloop.step", Value: st.Name},
			{Key: "mlflow.source.name", Value: r.SpecFile},
			{Key: "mlflow.source.type", Value: "JOB"},
		},
	})
	if err != nil {
		return fmt.Errorf("create MLflow run of the step: %w", err)
	}
	p.mlRunID, p.artifactURI = tr.Info.RunID, tr.Info.ArtifactURI
	ex.updateStep(st.Name, StepUpdate{MLflowRunID: &p.mlRunID})
	var params []tracking.Param
	for _, k := range sortedKeys(p.params) {
		params = append(params, tracking.Param{Key: k, Value: truncate(p.params[k], tracking.MaxParamValueLength)})
	}
	if err := s.logBatch(ctx, p.mlRunID, nil, params, nil); err != nil {
		s.logger().Warn("log step params", "run", r.ID, "step", st.Name, "err", err)
	}
	self := Node{Kind: NodeStepRun, ID: p.mlRunID}
	now := s.now().UTC()
	edges := []Edge{{From: Node{Kind: NodePipelineRun, ID: r.ID}, To: self, Relation: "step", Name: st.Name, CreatedAt: now}}
	var inputs []tracking.DatasetInput
	for _, i := range st.Inputs {
		ri := p.inputs[i.Name]
		switch i.Kind {
		case InputData:
			v := ri.Dataset
			digest := strings.TrimPrefix(v.Digest, "sha256:")
			inputs = append(inputs, tracking.DatasetInput{
				Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: i.Name}},
				Dataset: tracking.Dataset{Name: v.Dataset, Digest: digest[:min(len(digest), tracking.MaxDatasetDigestLength)],
					SourceType: "mloop", Source: "data://" + v.Ref()},
			})
			edges = append(edges, Edge{From: Node{Kind: NodeDataset, ID: v.Ref()}, To: self, Relation: "input", Name: i.Name, CreatedAt: now})
		case InputStep:
			edges = append(edges, Edge{From: Node{Kind: NodeArtifact, ID: ri.Record.URI}, To: self, Relation: "input", Name: i.Name, CreatedAt: now})
		}
	}
	if len(inputs) > 0 {
		if err := s.Tracking.LogInputs(ctx, p.mlRunID, inputs, nil); err != nil {
			s.logger().Warn("log step dataset inputs", "run", r.ID, "step", st.Name, "err", err)
		}
	}
	if err := s.Store.AddEdges(ctx, edges); err != nil {
		s.logger().Warn("record step lineage", "run", r.ID, "step", st.Name, "err", err)
	}
	return nil
}

// tagStep sets tags on the step's MLflow run, best effort.
func (ex *runExec) tagStep(ctx context.Context, p *stepPrep, tags map[string]string) {
	var ts []tracking.Tag
	for _, k := range sortedKeys(tags) {
		ts = append(ts, tracking.Tag{Key: k, Value: truncate(tags[k], tracking.MaxTagValueLength)})
	}
	if err := ex.s.logBatch(ctx, p.mlRunID, nil, nil, ts); err != nil {
		ex.s.logger().Warn("tag step run", "run", ex.run.ID, "step", p.st.Name, "err", err)
	}
}

// endStepRun sets the final status of the step's MLflow run, best effort.
func (ex *runExec) endStepRun(p *stepPrep, status string) {
	if p == nil || p.mlRunID == "" {
		return
	}
	end := ex.s.now().UnixMilli()
	if _, err := ex.s.Tracking.UpdateRun(context.Background(), p.mlRunID, tracking.RunUpdate{Status: &status, EndTime: &end}); err != nil {
		ex.s.logger().Warn("end step run", "run", ex.run.ID, "step", p.st.Name, "err", err)
	}
}

// usable says why a cache entry cannot be reused ("" when it can): an
// output the step declares is missing from it or from the artifact store.
func (ex *runExec) usable(ctx context.Context, st *Step, e *CacheEntry) (string, error) {
	for _, o := range st.Outputs {
		rec, ok := e.Outputs[o.Name]
		if !ok || !strings.HasSuffix(rec.URI, "/outputs/"+o.Path) {
			return fmt.Sprintf("the result of run %s has no output %s at %s", e.RunID, o.Name, o.Path), nil
		}
		ok, err := ex.s.outputExists(ctx, rec)
		if err != nil {
			return "", err
		}
		if !ok {
			return fmt.Sprintf("output %s of run %s is gone from the artifact store", o.Name, e.RunID), nil
		}
	}
	return "", nil
}

// cacheHit records a step as cached from entry e.
func (ex *runExec) cacheHit(ctx context.Context, p *stepPrep, e *CacheEntry) {
	s, st := ex.s, p.st
	now := s.now().UTC()
	status := StepCached
	explain := []string{"cache hit: same inputs as run " + e.RunID}
	metrics := e.Metrics
	if metrics == nil {
		metrics = map[string]float64{}
	}
	ex.tagStep(ctx, p, map[string]string{"mloop.cache_key": p.key, "mloop.cached": "true", "mloop.cached_from": e.MLflowRunID})
	if err := s.logBatch(ctx, p.mlRunID, metricList(metrics, now), nil, nil); err != nil {
		s.logger().Warn("copy cached metrics", "run", ex.run.ID, "step", st.Name, "err", err)
	}
	// The cached step run reuses the outputs of the run that produced them:
	// "reused" edges keep walks from its inputs going to what used them,
	// while "output" edges still name the one producer.
	var edges []Edge
	for _, name := range sortedKeys(e.Outputs) {
		edges = append(edges, Edge{From: Node{Kind: NodeStepRun, ID: p.mlRunID}, To: Node{Kind: NodeArtifact, ID: e.Outputs[name].URI},
			Relation: "reused", Name: name, CreatedAt: now})
	}
	if err := s.Store.AddEdges(ctx, edges); err != nil {
		s.logger().Warn("record cached step lineage", "run", ex.run.ID, "step", st.Name, "err", err)
	}
	empty := ""
	ex.updateStep(st.Name, StepUpdate{Status: &status, CacheKey: &p.key, CachedFrom: &e.RunID, Explain: explain,
		Outputs: e.Outputs, Metrics: metrics, Error: &empty, StartedAt: &now, FinishedAt: &now})
	ex.endStepRun(p, tracking.RunFinished)
}

func metricList(m map[string]float64, at time.Time) []tracking.Metric {
	var out []tracking.Metric
	for _, k := range sortedKeys(m) {
		out = append(out, tracking.Metric{Key: k, Value: m[k], Timestamp: at.UnixMilli()})
	}
	return out
}

// errText is an error's message for people: the message of an *mloop.Error
// at its root, else the error's text.
func errText(err error) string {
	var me *mloop.Error
	if errors.As(err, &me) {
		return strings.Replace(err.Error(), me.Error(), me.Message, 1)
	}
	return err.Error()
}

// localize makes a step's inputs available locally: dataset versions
// materialized, upstream outputs downloaded when they are not on disk (an
// upstream step cached from an older run, or a restart in between).
func (ex *runExec) localize(ctx context.Context, p *stepPrep) error {
	if p.localized {
		return nil
	}
	s, r := ex.s, ex.run
	for name, ri := range p.inputs {
		switch ri.Kind {
		case InputData:
			dir, err := s.materializeDataset(ctx, ri.Dataset)
			if err != nil {
				return fmt.Errorf("input %s: %w", name, err)
			}
			ri.Path = dir
		case InputStep:
			o := ex.spec.Step(ri.Step).Output(ri.Output)
			local := s.outputPath(r.ID, ri.Step, *o)
			if err := func() error {
				unlock := s.rs.lockKey("output:" + local)
				defer unlock()
				if _, err := os.Stat(local); err == nil {
					return nil
				}
				return s.downloadOutput(ctx, *ri.Record, local)
			}(); err != nil {
				return fmt.Errorf("input %s (output %s of step %s): %w", name, ri.Output, ri.Step, err)
			}
			ri.Path = local
		}
		p.inputs[name] = ri
	}
	p.localized = true
	return nil
}

// syncWriter serializes writes of stdout and stderr to one log file.
type syncWriter struct {
	mu sync.Mutex
	f  *os.File
	// midLine is set when the last byte written was not a newline.
	midLine bool
}

func (w *syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.f.Write(b)
	if n > 0 {
		w.midLine = b[n-1] != '\n'
	}
	return n, err
}

// endLine writes a newline when the output so far does not end with one, so
// that what the runner adds to the log starts on its own line.
func (w *syncWriter) endLine() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.midLine {
		w.f.Write([]byte{'\n'})
		w.midLine = false
	}
}

// attempt makes one attempt of a step.
func (ex *runExec) attempt(ctx context.Context, p *stepPrep, attempt, maxAttempts int) attemptResult {
	s, r, st := ex.s, ex.run, p.st
	outDir := s.outputsDir(r.ID, st.Name)
	if err := os.RemoveAll(outDir); err != nil {
		return attemptResult{msg: fmt.Sprintf("clean outputs folder: %v", err)}
	}
	outputs := map[string]string{}
	for _, o := range st.Outputs {
		local := s.outputPath(r.ID, st.Name, o)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return attemptResult{msg: fmt.Sprintf("create outputs folder: %v", err)}
		}
		outputs[o.Name] = local
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return attemptResult{msg: fmt.Sprintf("create outputs folder: %v", err)}
	}
	logPath := s.LogPath(r.ID, st.Name)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return attemptResult{msg: fmt.Sprintf("open log: %v", err)}
	}
	defer logf.Close()
	now := s.now().UTC()
	fmt.Fprintf(logf, "--- attempt %d/%d (started %s)\n", attempt, maxAttempts, now.Format(time.RFC3339))

	status, empty := StepRunning, ""
	taskID := fmt.Sprintf("%s/%s/%d", r.ID, st.Name, attempt)
	executor := "builtin"
	if st.Uses == "" && s.Executor != nil {
		executor = s.Executor.Name()
	}
	ex.updateStep(st.Name, StepUpdate{Status: &status, Attempt: &attempt, StartedAt: &now, Error: &empty,
		Executor: &executor, TaskID: &taskID, Handle: &empty})

	if err := ex.localize(ctx, p); err != nil {
		if ctx.Err() != nil {
			return attemptResult{interrupted: true}
		}
		fmt.Fprintf(logf, "mloop: %s\n", errText(err))
		return attemptResult{msg: errText(err)}
	}
	var res attemptResult
	if st.Uses != "" {
		res = ex.runBuiltin(ctx, p, outputs, logf)
	} else {
		res = ex.runCommand(ctx, p, taskID, outputs, &syncWriter{f: logf})
	}
	if res.interrupted || res.msg != "" {
		return res
	}
	return ex.checkOutputs(p, outputs, res)
}

// runBuiltin runs a built-in step in-process.
func (ex *runExec) runBuiltin(ctx context.Context, p *stepPrep, outputs map[string]string, log *os.File) attemptResult {
	st := p.st
	b := ex.s.Builtins[st.Uses]
	sr := ex.step(st.Name)
	ex.mu.Lock()
	runCopy := *ex.run
	ex.mu.Unlock()
	bc := &BuiltinContext{Service: ex.s, Run: &runCopy, Step: st, StepRun: &sr, Inputs: p.inputs, Outputs: outputs,
		Log: log, Metrics: map[string]float64{}, Tags: map[string]string{}}
	bctx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	err := b.Run(bctx, bc)
	zero := 0
	if ctx.Err() != nil {
		return attemptResult{interrupted: true}
	}
	if bctx.Err() != nil {
		one := 1
		msg := fmt.Sprintf("timed out after %s", st.Timeout)
		fmt.Fprintf(log, "mloop: %s\n", msg)
		return attemptResult{msg: msg, exit: &one}
	}
	if err != nil {
		one := 1
		fmt.Fprintf(log, "mloop: %s\n", errText(err))
		return attemptResult{msg: errText(err), exit: &one}
	}
	return attemptResult{ok: true, exit: &zero, metrics: bc.Metrics, tags: bc.Tags, edges: bc.Edges}
}

// stepEnv builds the exact environment of a command step.
func (ex *runExec) stepEnv(p *stepPrep, outputs map[string]string, lookup func(scope, name string) (string, error)) (map[string]string, error) {
	s, r, st := ex.s, ex.run, p.st
	env := map[string]string{}
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	if s.TrackingURI != "" {
		env["MLFLOW_TRACKING_URI"] = s.TrackingURI
	}
	env["MLFLOW_RUN_ID"] = p.mlRunID
	env["MLFLOW_EXPERIMENT_ID"] = ex.expID
	env["MLOOP_RUN_ID"] = r.ID
	env["MLOOP_STEP"] = st.Name
	env["MLOOP_OUTPUTS_DIR"] = s.outputsDir(r.ID, st.Name)
	for name, ri := range p.inputs {
		env["MLOOP_INPUT_"+envName(name)] = ri.Path
	}
	for name, path := range outputs {
		env["MLOOP_OUTPUT_"+envName(name)] = path
	}
	for name, v := range p.params {
		env["MLOOP_PARAM_"+envName(name)] = v
	}
	env["PYTHONUNBUFFERED"] = "1"
	env["PYTHONDONTWRITEBYTECODE"] = "1"
	for k, v := range st.Env {
		rv, err := Substitute(v, lookup)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", k, err)
		}
		env[k] = rv
	}
	return env, nil
}

// runCommand runs a command step's attempt through the executor.
func (ex *runExec) runCommand(ctx context.Context, p *stepPrep, taskID string, outputs map[string]string, log *syncWriter) attemptResult {
	s, r, st := ex.s, ex.run, p.st
	lookup := func(scope, name string) (string, error) {
		switch scope {
		case "params":
			return p.param(ex.spec, name)
		case "inputs":
			if ri, ok := p.inputs[name]; ok {
				return ri.Path, nil
			}
		case "outputs":
			if o, ok := outputs[name]; ok {
				return o, nil
			}
		}
		return "", fmt.Errorf("undefined %s.%s", scope, name)
	}
	argv, err := substituteAll(st, lookup)
	if err != nil {
		return attemptResult{msg: err.Error()}
	}
	env, err := ex.stepEnv(p, outputs, lookup)
	if err != nil {
		return attemptResult{msg: err.Error()}
	}
	if s.Executor == nil {
		return attemptResult{msg: "no executor is configured"}
	}
	mark := s.rs.enterProject(r.ProjectDir, r.ID+"/"+st.Name)
	var overlapped []string
	left := false
	leave := func() {
		if !left {
			left = true
			overlapped = s.rs.leaveProject(r.ProjectDir, mark)
		}
	}
	defer leave()
	skip := s.privateDirs()
	before, err := snapshotProject(r.ProjectDir, skip)
	if err != nil {
		return attemptResult{msg: err.Error()}
	}
	h, err := s.Executor.Start(ctx, Task{ID: taskID, Argv: argv, Dir: r.ProjectDir, Env: env, Image: st.Image,
		Timeout: st.Timeout, Stdout: log, Stderr: log})
	if err != nil {
		if ctx.Err() != nil {
			return attemptResult{interrupted: true}
		}
		fmt.Fprintf(log, "mloop: %s\n", errText(err))
		return attemptResult{msg: "start: " + errText(err)}
	}
	if lh, ok := h.(*LocalHandle); ok {
		handle := strconv.Itoa(lh.PID())
		ex.updateStep(st.Name, StepUpdate{Handle: &handle})
	}
	res, werr := ex.wait(ctx, h)
	code := res.ExitCode
	log.endLine()
	fmt.Fprintf(log, "--- attempt ended: %s after %s\n", res.String(), res.Finished.Sub(res.Started).Round(time.Millisecond))
	if werr != nil {
		return attemptResult{interrupted: true, exit: &code}
	}
	if !res.Success() {
		return attemptResult{msg: res.String(), exit: &code}
	}
	after, err := snapshotProject(r.ProjectDir, skip)
	leave()
	if err != nil {
		return attemptResult{msg: err.Error(), exit: &code}
	}
	if changes, n := diffSnapshots(before, after, 5); n > 0 {
		more := ""
		if n > len(changes) {
			more = fmt.Sprintf(" and %d more", n-len(changes))
		}
		who := ""
		if len(overlapped) > 0 {
			who = fmt.Sprintf(" (or %s, which ran at the same time)", strings.Join(overlapped, ", "))
		}
		msg := fmt.Sprintf("step %s wrote outside its outputs folder%s: %s%s; write files under $MLOOP_OUTPUTS_DIR (%s) or to the declared outputs ($MLOOP_OUTPUT_<NAME>)",
			st.Name, who, strings.Join(changes, ", "), more, s.outputsDir(r.ID, st.Name))
		fmt.Fprintf(log, "mloop: %s\n", msg)
		return attemptResult{msg: msg, exit: &code}
	}
	return attemptResult{ok: true, exit: &code}
}

// wait waits for a task; when ctx ends first it stops the task and reports
// ctx's error with the task's result.
func (ex *runExec) wait(ctx context.Context, h Handle) (Result, error) {
	res, err := h.Wait(ctx)
	if err == nil {
		return res, nil
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cerr := h.Cancel(stopCtx); cerr != nil {
		ex.s.logger().Warn("stop step", "run", ex.run.ID, "task", h.ID(), "err", cerr)
	}
	res, _ = h.Wait(stopCtx)
	return res, err
}

// waitAttached waits for an attempt re-attached after a restart.
func (ex *runExec) waitAttached(ctx context.Context, p *stepPrep, h Handle, attempt int) attemptResult {
	res, err := ex.wait(ctx, h)
	code := res.ExitCode
	appendLog(ex.s.LogPath(ex.run.ID, p.st.Name), fmt.Sprintf("--- attempt %d (re-attached) ended: %s\n", attempt, res.String()))
	if err != nil {
		return attemptResult{interrupted: true, exit: &code}
	}
	if !res.Success() {
		return attemptResult{msg: res.String(), exit: &code}
	}
	outputs := map[string]string{}
	for _, o := range p.st.Outputs {
		outputs[o.Name] = ex.s.outputPath(ex.run.ID, p.st.Name, o)
	}
	return ex.checkOutputs(p, outputs, attemptResult{ok: true, exit: &code})
}

// checkOutputs checks that a successful attempt wrote every declared output
// and reads its metrics outputs.
func (ex *runExec) checkOutputs(p *stepPrep, outputs map[string]string, res attemptResult) attemptResult {
	st := p.st
	metrics := map[string]float64{}
	for k, v := range res.metrics {
		metrics[k] = v
	}
	fail := func(msg string) attemptResult {
		appendLog(ex.s.LogPath(ex.run.ID, st.Name), "mloop: "+msg+"\n")
		return attemptResult{msg: msg, exit: res.exit}
	}
	for _, o := range st.Outputs {
		local := outputs[o.Name]
		if _, err := os.Stat(local); err != nil {
			return fail(fmt.Sprintf("step %s did not write its declared output %s (expected at %s; write it to $MLOOP_OUTPUT_%s)",
				st.Name, o.Name, local, envName(o.Name)))
		}
		if o.Type == "metrics" {
			m, err := ReadMetricsFile(local)
			if err != nil {
				return fail(fmt.Sprintf("metrics output %s: %s", o.Name, errText(err)))
			}
			for k, v := range m.Flat() {
				metrics[k] = v
			}
		}
	}
	res.metrics = metrics
	return res
}

// succeed uploads a successful step's outputs and log, records them with
// its metrics and lineage, and stores its cache entry.
func (ex *runExec) succeed(ctx context.Context, p *stepPrep, res attemptResult) {
	s, r, st := ex.s, ex.run, p.st
	bg := context.WithoutCancel(ctx)
	records := map[string]OutputRecord{}
	now := s.now().UTC()
	self := Node{Kind: NodeStepRun, ID: p.mlRunID}
	var edges []Edge
	for _, o := range st.Outputs {
		local := s.outputPath(r.ID, st.Name, o)
		h, err := HashTree(bg, local, nil)
		if err == nil {
			var size int64
			var dir bool
			size, dir, err = treeSize(local)
			uri := strings.TrimSuffix(p.artifactURI, "/") + "/outputs/" + o.Path
			if err == nil {
				err = s.uploadPath(bg, local, uri)
			}
			records[o.Name] = OutputRecord{URI: uri, Hash: h, Size: size, Dir: dir, Type: o.Type, Flavor: o.Flavor}
			edges = append(edges, Edge{From: self, To: Node{Kind: NodeArtifact, ID: uri}, Relation: "output", Name: o.Name, CreatedAt: now})
		}
		if err != nil {
			ex.fail(p, st, fmt.Sprintf("store output %s: %s", o.Name, errText(err)), res.exit)
			return
		}
	}
	ex.uploadLog(bg, p)
	if err := s.logBatch(bg, p.mlRunID, metricList(res.metrics, now), nil, nil); err != nil {
		s.logger().Warn("log step metrics", "run", r.ID, "step", st.Name, "err", err)
	}
	if len(res.tags) > 0 {
		ex.tagStep(bg, p, res.tags)
	}
	status, empty := StepSucceeded, ""
	ex.updateStep(st.Name, StepUpdate{Status: &status, Outputs: records, Metrics: res.metrics, ExitCode: res.exit,
		Error: &empty, FinishedAt: &now})
	entry := &CacheEntry{Key: p.key, Pipeline: r.Pipeline, Step: st.Name, RunID: r.ID, MLflowRunID: p.mlRunID,
		Input: p.input, Outputs: records, Metrics: res.metrics, CreatedAt: now}
	if err := s.Store.PutCache(bg, entry); err != nil {
		s.logger().Warn("store step cache entry", "run", r.ID, "step", st.Name, "err", err)
	}
	edges = append(edges, res.edges...)
	if len(edges) > 0 {
		if err := s.Store.AddEdges(bg, edges); err != nil {
			s.logger().Warn("record step lineage", "run", r.ID, "step", st.Name, "err", err)
		}
	}
	ex.endStepRun(p, tracking.RunFinished)
}

// uploadLog uploads the step's log as the artifact log.txt of its run.
func (ex *runExec) uploadLog(ctx context.Context, p *stepPrep) {
	if p == nil || p.artifactURI == "" {
		return
	}
	local := ex.s.LogPath(ex.run.ID, p.st.Name)
	if _, err := os.Stat(local); err != nil {
		return
	}
	if err := ex.s.uploadPath(ctx, local, strings.TrimSuffix(p.artifactURI, "/")+"/log.txt"); err != nil {
		ex.s.logger().Warn("upload step log", "run", ex.run.ID, "step", p.st.Name, "err", err)
	}
}

// uploadPartial uploads, best effort, what a failed step left of its
// declared outputs, so that it can be inspected.
func (ex *runExec) uploadPartial(ctx context.Context, p *stepPrep) {
	if p == nil || p.artifactURI == "" {
		return
	}
	for _, o := range p.st.Outputs {
		local := ex.s.outputPath(ex.run.ID, p.st.Name, o)
		if _, err := os.Stat(local); err != nil {
			continue
		}
		if err := ex.s.uploadPath(ctx, local, strings.TrimSuffix(p.artifactURI, "/")+"/outputs/"+o.Path); err != nil {
			ex.s.logger().Warn("upload partial output", "run", ex.run.ID, "step", p.st.Name, "output", o.Name, "err", err)
		}
	}
}

// fail records a step as failed; its log and partial outputs are kept.
func (ex *runExec) fail(p *stepPrep, st *Step, msg string, exit *int) {
	bg := context.Background()
	ex.uploadLog(bg, p)
	ex.uploadPartial(bg, p)
	status, now := StepFailed, ex.s.now().UTC()
	ex.updateStep(st.Name, StepUpdate{Status: &status, Error: &msg, ExitCode: exit, FinishedAt: &now})
	ex.s.logger().Info("pipeline step failed", "run", ex.run.ID, "step", st.Name, "error", msg)
	ex.endStepRun(p, tracking.RunFailed)
}

// interrupted records a step stopped because its run was canceled, or
// because the server is shutting down (started tells whether an attempt
// was under way): then the step goes back to pending, or to failed when no
// attempts remain.
func (ex *runExec) interrupted(ctx context.Context, p *stepPrep, st *Step, attempt int, exit *int, started bool) {
	bg := context.Background()
	now := ex.s.now().UTC()
	if errors.Is(context.Cause(ctx), errRunCanceled) {
		appendLog(ex.s.LogPath(ex.run.ID, st.Name), "--- canceled\n")
		ex.uploadLog(bg, p)
		status, msg := StepCanceled, "run canceled"
		ex.updateStep(st.Name, StepUpdate{Status: &status, Error: &msg, ExitCode: exit, FinishedAt: &now})
		ex.endStepRun(p, tracking.RunKilled)
		return
	}
	if !started {
		return // still pending; the next start runs it
	}
	// A server that stops on purpose (a restart, an upgrade, a lost lease)
	// does not spend the step's attempts: the attempt is given back and the
	// step runs it again on the next start. Only a crash counts (recovery).
	msg := fmt.Sprintf("server shutting down during attempt %d; it runs again on the next start", attempt)
	appendLog(ex.s.LogPath(ex.run.ID, st.Name), "--- "+msg+"\n")
	status, again := StepPending, attempt-1
	ex.updateStep(st.Name, StepUpdate{Status: &status, Attempt: &again, Error: &msg, ExitCode: exit, FinishedAt: &now})
	ex.endStepRun(p, tracking.RunKilled)
}
