package pipeline

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/mloop/mloop"
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
