package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"sync"
	"time"

	"github.com/mloop/mloop"
)

// The trigger controller is a reconciliation loop over the store: every
// PollInterval, and whenever an event is posted, a trigger is resumed or a
// run of a trigger ends, it
//
//  1. turns new dataset versions into events of OnDataset triggers and due
//     schedule times into events of OnSchedule triggers, each batch stored
//     with the advanced cursor in one AddEvents call;
//  2. decides each trigger's pending events with decide (guardrails), then
//     skips, deduplicates or fires them: one run for all of them, created
//     and the events marked fired in one Store.Fire transaction.
//
// It keeps no state that matters in memory: after a crash, the restarted
// controller reads the pending events and the cursors again and carries on.
// Each step is idempotent — events carry dedup keys and Fire fails with
// ECONFLICT, changing nothing, when another controller already took the
// events — so several controllers on one database never start a run twice.

// Tuning of the trigger controller.
const (
	// datasetLookback is how far before its cursor an OnDataset trigger
	// rescans versions: a version whose CreatedAt was stamped before a
	// concurrent push's but committed after it is still seen. The events'
	// dedup keys make the rescans harmless; versions created before the
	// trigger (up to its creation millisecond) are never scanned.
	datasetLookback = time.Minute
	// maxPendingPerFiring bounds the events one run answers; more wait for
	// the next firing.
	maxPendingPerFiring = 1000
	// maxRunsScanned bounds the runs read for concurrency and
	// de-duplication: the trigger's newest active runs and succeeded runs.
	maxRunsScanned = 1000
)

// triggerState is the trigger controller's in-memory state inside Service.
// None of it must survive a restart.
type triggerState struct {
	mu   sync.Mutex
	wake chan struct{}
	// cancel and done stop the controller's goroutine and say it stopped;
	// nil when it is not running.
	cancel context.CancelFunc
	done   chan struct{}
	// lastErr is the last error logged per trigger, so that a lasting
	// problem is logged when it starts and changes, not on every poll.
	lastErr map[string]string
	// seen remembers dataset events already stored (trigger\x00dedup key →
	// version creation time, ms) to spare the store repeated no-op writes
	// during the lookback.
	seen map[string]int64
	// failMu serializes runFinished's read-modify-write of failure counts.
	failMu sync.Mutex
}

// wakeChan returns the controller's wake-up channel, making it on first use.
func (s *Service) wakeChan() chan struct{} {
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	if s.ts.wake == nil {
		s.ts.wake = make(chan struct{}, 1)
	}
	return s.ts.wake
}

// wakeTriggers asks the trigger controller to reconcile now.
func (s *Service) wakeTriggers() {
	select {
	case s.wakeChan() <- struct{}{}:
	default:
	}
}

// startTriggerController starts the trigger controller's goroutine (once;
// later calls do nothing until stopTriggerController). It runs until
// stopTriggerController, whatever happens to ctx, from which it keeps only
// values.
func (s *Service) startTriggerController(ctx context.Context) {
	wake := s.wakeChan()
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	if s.ts.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	s.ts.cancel, s.ts.done = cancel, done
	go func() {
		defer close(done)
		s.triggerLoop(ctx, wake)
	}()
}

// stopTriggerController stops the controller and waits for it to return.
func (s *Service) stopTriggerController() {
	s.ts.mu.Lock()
	cancel, done := s.ts.cancel, s.ts.done
	s.ts.cancel, s.ts.done = nil, nil
	s.ts.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

func (s *Service) pollInterval() time.Duration {
	if s.PollInterval > 0 {
		return s.PollInterval
	}
	return time.Second
}

// triggerLoop reconciles until ctx ends.
func (s *Service) triggerLoop(ctx context.Context, wake <-chan struct{}) {
	s.logger().Debug("trigger controller started")
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			s.logger().Debug("trigger controller stopped")
			return
		case <-wake:
		case <-timer.C:
		}
		next := s.reconcileTriggers(ctx)
		d := s.pollInterval()
		if !next.IsZero() {
			if until := next.Sub(s.now()); until < d {
				d = max(until, 10*time.Millisecond)
			}
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(d)
	}
}

// reconcileTriggers reconciles every trigger once and returns the earliest
// time a waiting trigger may change by itself (zero: none).
func (s *Service) reconcileTriggers(ctx context.Context) time.Time {
	ts, err := s.Store.ListTriggers(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.noteTriggerError("", fmt.Errorf("list triggers: %w", err))
		}
		return time.Time{}
	}
	s.noteTriggerError("", nil)
	var next time.Time
	for _, t := range ts {
		if ctx.Err() != nil {
			return next
		}
		until, err := s.reconcileTrigger(ctx, t)
		if ctx.Err() != nil {
			return next
		}
		s.noteTriggerError(t.Name, err)
		s.recordTriggerError(ctx, t, err)
		if !until.IsZero() && (next.IsZero() || until.Before(next)) {
			next = until
		}
	}
	return next
}

// recordTriggerError stores err (or its absence) as t's LastError when that
// changes, so that `mloop trigger show` on any server says why pending
// events wait.
func (s *Service) recordTriggerError(ctx context.Context, t *Trigger, err error) {
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == t.LastError {
		return
	}
	if uerr := s.Store.UpdateTrigger(ctx, t.Name, TriggerUpdate{LastError: &msg}); uerr != nil && !mloop.IsNotFound(uerr) {
		s.logger().Warn("record trigger error", "trigger", t.Name, "err", uerr)
	}
}

// noteTriggerError logs err for trigger name when it differs from the last
// one logged, and a recovery when err is nil after an error.
func (s *Service) noteTriggerError(name string, err error) {
	s.ts.mu.Lock()
	if s.ts.lastErr == nil {
		s.ts.lastErr = map[string]string{}
	}
	last := s.ts.lastErr[name]
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if msg == "" {
		delete(s.ts.lastErr, name)
	} else {
		s.ts.lastErr[name] = msg
	}
	s.ts.mu.Unlock()
	switch {
	case msg != "" && msg != last:
		s.logger().Warn("trigger controller", "trigger", name, "err", err)
	case msg == "" && last != "":
		s.logger().Info("trigger controller recovered", "trigger", name)
	}
}

// reconcileTrigger turns what happened into t's events, then decides its
// pending events (even when looking for new ones failed: those already
// stored must not wait on an unrelated outage). It returns when a wait ends
// by itself (zero: no such wait).
func (s *Service) reconcileTrigger(ctx context.Context, t *Trigger) (time.Time, error) {
	var next time.Time
	var scanErr error
	switch t.Kind {
	case OnDataset:
		scanErr = s.scanDatasets(ctx, t)
	case OnSchedule:
		next, scanErr = s.scanSchedule(ctx, t)
	}
	until, err := s.decideTrigger(ctx, t)
	if !until.IsZero() && (next.IsZero() || until.Before(next)) {
		next = until
	}
	return next, errors.Join(scanErr, err)
}

// scanDatasets stores an event for each version, created since t's cursor,
// of a dataset matching t.Dataset, and advances the cursor in the same
// store call.
func (s *Service) scanDatasets(ctx context.Context, t *Trigger) error {
	if s.Datasets == nil {
		return mloop.Errorf(mloop.EUNAVAILABLE, "trigger %q watches datasets, but this server has no dataset service", t.Name)
	}
	// Versions stamped in the trigger's creation millisecond or before it
	// existed before the trigger (or raced its creation): they never fire.
	from := max(t.DatasetCursor-datasetLookback.Milliseconds(), t.CreatedAt.UnixMilli()+1)
	sums, err := s.Datasets.ListDatasets(ctx)
	if err != nil {
		return fmt.Errorf("list datasets: %w", err)
	}
	cursor := t.DatasetCursor
	var events []*TriggerEvent
	for _, sum := range sums {
		if ok, _ := path.Match(t.Dataset, sum.Name); !ok || sum.UpdatedAt.UnixMilli() < from {
			continue
		}
		token := ""
	pages:
		for {
			vs, next, err := s.Datasets.ListVersions(ctx, sum.Name, 100, token)
			if mloop.IsNotFound(err) {
				break
			} else if err != nil {
				return fmt.Errorf("list versions of dataset %s: %w", sum.Name, err)
			}
			for _, v := range vs {
				ms := v.CreatedAt.UnixMilli()
				if ms < from {
					break pages
				}
				cursor = max(cursor, ms)
				key := "dataset:" + v.Ref()
				if s.seenEvent(t.Name, key) {
					continue
				}
				payload, _ := json.Marshal(map[string]any{"dataset": v.Dataset, "version": v.Version, "digest": v.Digest, "created_at": v.CreatedAt})
				events = append(events, &TriggerEvent{Trigger: t.Name, Source: "dataset", Subject: v.Ref(), Payload: payload,
					DedupKey: key, Status: EventPending, CreatedAt: v.CreatedAt})
			}
			if next == "" {
				break
			}
			token = next
		}
	}
	if len(events) == 0 && cursor == t.DatasetCursor {
		s.forgetSeen(t.Name, from)
		return nil
	}
	if _, err := s.Store.AddEvents(ctx, t.Name, events, TriggerUpdate{DatasetCursor: &cursor}); err != nil {
		return fmt.Errorf("store dataset events: %w", err)
	}
	for _, e := range events {
		s.markSeen(t.Name, e.DedupKey, e.CreatedAt.UnixMilli())
		s.logger().Info("trigger event", "trigger", t.Name, "source", "dataset", "subject", e.Subject)
	}
	t.DatasetCursor = cursor
	s.forgetSeen(t.Name, from)
	return nil
}

func (s *Service) seenEvent(trigger, key string) bool {
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	_, ok := s.ts.seen[trigger+"\x00"+key]
	return ok
}

func (s *Service) markSeen(trigger, key string, ms int64) {
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	if s.ts.seen == nil {
		s.ts.seen = map[string]int64{}
	}
	s.ts.seen[trigger+"\x00"+key] = ms
}

// forgetSeen drops remembered events of trigger older than from (ms).
func (s *Service) forgetSeen(trigger string, from int64) {
	s.ts.mu.Lock()
	defer s.ts.mu.Unlock()
	prefix := trigger + "\x00"
	for k, ms := range s.ts.seen {
		if ms < from && len(k) > len(prefix) && k[:len(prefix)] == prefix {
			delete(s.ts.seen, k)
		}
	}
}

// scanSchedule stores an event when t's schedule is due and advances
// NextFire past now, in one store call. Ticks missed while no controller
// ran coalesce into one event, for the oldest missed time: a schedule
// answers "run now", not "run once per missed tick". It returns the next
// fire time.
func (s *Service) scanSchedule(ctx context.Context, t *Trigger) (time.Time, error) {
	sched, err := parseSchedule(t.Cron, t.Timezone)
	if err != nil {
		return time.Time{}, fmt.Errorf("schedule of trigger %q: %w", t.Name, err)
	}
	now := s.now()
	if t.NextFire.IsZero() {
		next := sched.next(now).UTC()
		if next.IsZero() {
			return time.Time{}, nil
		}
		if err := s.Store.UpdateTrigger(ctx, t.Name, TriggerUpdate{NextFire: &next}); err != nil {
			return time.Time{}, fmt.Errorf("set next fire time: %w", err)
		}
		t.NextFire = next
		return next, nil
	}
	if now.Before(t.NextFire) {
		return t.NextFire, nil
	}
	due := t.NextFire
	next := sched.next(now).UTC()
	if next.IsZero() {
		// The schedule never fires again: keep the due time (its dedup key
		// keeps the event single) rather than inventing one.
		next = due
	}
	at := due.In(sched.loc).Format(time.RFC3339)
	payload, _ := json.Marshal(map[string]any{"scheduled": at, "cron": t.Cron})
	ev := &TriggerEvent{Trigger: t.Name, Source: "cron", Subject: at, Payload: payload,
		DedupKey: cronEventKey(t.Cron, due, sched.loc), Status: EventPending}
	stored, err := s.Store.AddEvents(ctx, t.Name, []*TriggerEvent{ev}, TriggerUpdate{NextFire: &next})
	if err != nil {
		return time.Time{}, fmt.Errorf("store schedule event: %w", err)
	}
	if len(stored) > 0 {
		s.logger().Info("trigger event", "trigger", t.Name, "source", "cron", "subject", at, "next_fire", next)
	}
	t.NextFire = next
	return next, nil
}

// decideTrigger decides t's pending events and acts on the decision.
func (s *Service) decideTrigger(ctx context.Context, t *Trigger) (time.Time, error) {
	pending, err := s.Store.ListEvents(ctx, t.Name, []EventStatus{EventPending}, maxPendingPerFiring)
	if err != nil {
		return time.Time{}, fmt.Errorf("list pending events: %w", err)
	}
	if len(pending) == 0 {
		return time.Time{}, nil
	}
	active, err := s.triggerRuns(ctx, t, RunQueued, RunRunning)
	if err != nil {
		return time.Time{}, err
	}
	now := s.now()
	d := decide(t, pending, active, nil, now)
	var run *Run
	if d.kind == decideBuild || d.kind == decideFire {
		if run, err = s.buildTriggerRun(ctx, t, pending); err != nil {
			return time.Time{}, err
		}
	}
	if d.kind == decideBuild {
		succeeded, err := s.triggerRuns(ctx, t, RunSucceeded)
		if err != nil {
			return time.Time{}, err
		}
		d = decide(t, pending, active, &candidate{inputsKey: run.InputsKey, succeeded: succeeded}, now)
	}
	ids := make([]int64, len(pending))
	for i, e := range pending {
		ids[i] = e.ID
	}
	switch d.kind {
	case decideWait:
		return d.until, nil
	case decideSkip, decideDedup:
		status := EventSkipped
		if d.kind == decideDedup {
			status = EventDeduped
		}
		if err := s.Store.DecideEvents(ctx, ids, status, d.reason, now.UTC()); err != nil {
			return time.Time{}, fmt.Errorf("mark %d events %s: %w", len(ids), status, err)
		}
		s.logger().Info("trigger events not fired", "trigger", t.Name, "events", len(ids), "status", status, "reason", d.reason)
		return time.Time{}, nil
	case decideFire:
		for _, r := range d.cancel {
			if _, err := s.Cancel(ctx, r.ID); err != nil && mloop.ErrorCode(err) != mloop.ECONFLICT && !mloop.IsNotFound(err) {
				return time.Time{}, fmt.Errorf("cancel run %s (overlap policy cancel): %w", r.ID, err)
			}
			s.logger().Info("trigger canceled a run to start a new one", "trigger", t.Name, "run", r.ID)
		}
		run.Trigger = t.Name
		run.EventIDs = ids
		if err := s.Store.Fire(ctx, run, ids, now.UTC()); mloop.ErrorCode(err) == mloop.ECONFLICT {
			s.logger().Debug("trigger not fired: its events were decided elsewhere or it was paused meanwhile", "trigger", t.Name, "err", err)
			return time.Time{}, nil
		} else if err != nil {
			return time.Time{}, fmt.Errorf("fire run for %d events: %w", len(ids), err)
		}
		s.logger().Info("trigger fired", "trigger", t.Name, "run", run.ID, "events", len(ids), "cause", run.Cause)
		s.wakeRunner()
		return time.Time{}, nil
	}
	return time.Time{}, fmt.Errorf("unexpected decision %s", d.kind)
}

// buildTriggerRun builds (without storing) the run t would start for
// pending: the spec file as it is now, t's params, a cause naming the
// events.
func (s *Service) buildTriggerRun(ctx context.Context, t *Trigger, pending []*TriggerEvent) (*Run, error) {
	text, err := os.ReadFile(t.SpecFile)
	if err != nil {
		return nil, fmt.Errorf("read spec file of trigger %q: %w", t.Name, err)
	}
	user := "trigger " + t.Name
	for _, e := range pending {
		if e.Source == "manual" && e.Subject != "" {
			user = e.Subject
		}
	}
	r, err := s.NewRun(ctx, SubmitRequest{SpecFile: t.SpecFile, ProjectDir: t.ProjectDir, Spec: string(text),
		Params: t.Params, User: user, Cause: causeOf(t, pending)})
	if err != nil {
		return nil, fmt.Errorf("build run of trigger %q: %w", t.Name, err)
	}
	return r, nil
}

// triggerRuns returns up to maxRunsScanned of the newest runs of trigger t
// with one of the statuses, leaving out runs of an earlier trigger of the
// same name (created before t): a trigger created again starts fresh.
func (s *Service) triggerRuns(ctx context.Context, t *Trigger, statuses ...RunStatus) ([]*Run, error) {
	runs, _, err := s.Store.ListRuns(ctx, RunFilter{Trigger: t.Name, Statuses: statuses, MaxResults: maxRunsScanned})
	if err != nil {
		return nil, fmt.Errorf("list runs of trigger %q: %w", t.Name, err)
	}
	mine := runs[:0]
	for _, r := range runs {
		if !r.CreatedAt.Before(t.CreatedAt) {
			mine = append(mine, r)
		}
	}
	return mine, nil
}

// runFinished updates the trigger of a run that ended: a failed run counts
// one more consecutive failure and pauses the trigger when MaxFailures is
// reached; a succeeded run resets the count; a canceled run changes
// nothing. Then the controller is woken (a queued firing may now start).
// A crash between the end of a run and this update loses that one count.
func (s *Service) runFinished(ctx context.Context, r *Run) {
	if r == nil || r.Trigger == "" {
		return
	}
	defer s.wakeTriggers()
	s.ts.failMu.Lock()
	defer s.ts.failMu.Unlock()
	t, err := s.Store.GetTrigger(ctx, r.Trigger)
	if mloop.IsNotFound(err) {
		return
	} else if err != nil {
		s.logger().Warn("update trigger after run", "trigger", r.Trigger, "run", r.ID, "err", err)
		return
	}
	if r.CreatedAt.Before(t.CreatedAt) {
		return // a run of a deleted trigger of the same name
	}
	var u TriggerUpdate
	switch r.Status {
	case RunFailed:
		n := t.ConsecutiveFailures + 1
		u.ConsecutiveFailures = &n
		if t.MaxFailures > 0 && n >= t.MaxFailures && !t.Paused {
			yes := true
			reason := "paused after " + countNoun(n, "consecutive failed run") + " (last: " + r.ID + ")"
			u.Paused, u.PauseReason = &yes, &reason
			s.logger().Warn("trigger paused", "trigger", t.Name, "reason", reason)
		}
	case RunSucceeded:
		if t.ConsecutiveFailures == 0 {
			return
		}
		zero := 0
		u.ConsecutiveFailures = &zero
	default:
		return
	}
	if err := s.Store.UpdateTrigger(ctx, t.Name, u); err != nil && !mloop.IsNotFound(err) {
		s.logger().Warn("update trigger after run", "trigger", t.Name, "run", r.ID, "err", err)
	}
}
