package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

// triggerNotFound is the error of a missing trigger.
func triggerNotFound(name string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "Trigger %q does not exist.", name)
}

// triggerColumns are the columns scanTrigger reads, in order.
const triggerColumns = `name, spec_file, project_dir, params, pipeline, kind, dataset, cron, timezone, event,
	cooldown_ms, batch_window_ms, max_concurrent, overlap, dedup, max_failures, paused, pause_reason,
	consecutive_failures, dataset_cursor, next_fire, last_fired, created_at, updated_at, last_error`

// scanTrigger reads a row of triggerColumns.
func scanTrigger(sc scanner) (*pipeline.Trigger, error) {
	var (
		t                     pipeline.Trigger
		params, kind, overlap string
		cooldown, batch       int64
		nextFire, lastFired   sql.NullInt64
		created, updated      int64
		dedup, paused         bool
	)
	if err := sc.Scan(&t.Name, &t.SpecFile, &t.ProjectDir, &params, &t.Pipeline, &kind, &t.Dataset, &t.Cron,
		&t.Timezone, &t.Event, &cooldown, &batch, &t.MaxConcurrent, &overlap, &dedup, &t.MaxFailures, &paused,
		&t.PauseReason, &t.ConsecutiveFailures, &t.DatasetCursor, &nextFire, &lastFired, &created, &updated, &t.LastError); err != nil {
		return nil, err
	}
	var err error
	if t.Params, err = decodeMap[string]("params of trigger "+t.Name, params); err != nil {
		return nil, err
	}
	t.Kind, t.Overlap = pipeline.TriggerKind(kind), pipeline.OverlapPolicy(overlap)
	t.Cooldown, t.BatchWindow = time.Duration(cooldown)*time.Millisecond, time.Duration(batch)*time.Millisecond
	t.Dedup, t.Paused = dedup, paused
	t.NextFire, t.LastFired = timeFromMS(nextFire), timeFromMS(lastFired)
	t.CreatedAt, t.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
	return &t, nil
}

// CreateTrigger stores a trigger as given; defaults (MaxConcurrent,
// Overlap) are the caller's to fill. A zero CreatedAt or UpdatedAt is set to
// now (in t too). EEXISTS when the name is taken; EINVALID without a name or
// kind.
func (s *PipelineStore) CreateTrigger(ctx context.Context, t *pipeline.Trigger) error {
	if t.Name == "" || t.Kind == "" {
		return mloop.Errorf(mloop.EINVALID, "A trigger needs a name and a kind (got name %q, kind %q).", t.Name, t.Kind)
	}
	now := s.now().UTC()
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now
	}
	if t.UpdatedAt.IsZero() {
		t.UpdatedAt = t.CreatedAt
	}
	params, err := jsonMap("params", t.Params)
	if err != nil {
		return fmt.Errorf("create trigger %q: %w", t.Name, err)
	}
	err = s.db.Write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO triggers (`+triggerColumns+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			t.Name, t.SpecFile, t.ProjectDir, params, t.Pipeline, string(t.Kind), t.Dataset, t.Cron, t.Timezone,
			t.Event, t.Cooldown.Milliseconds(), t.BatchWindow.Milliseconds(), t.MaxConcurrent, string(t.Overlap),
			t.Dedup, t.MaxFailures, t.Paused, t.PauseReason, t.ConsecutiveFailures, t.DatasetCursor,
			msOrNull(t.NextFire), msOrNull(t.LastFired), t.CreatedAt.UnixMilli(), t.UpdatedAt.UnixMilli(), t.LastError)
		if isUniqueViolation(err) {
			return mloop.Errorf(mloop.EEXISTS, "Trigger %q already exists: pick another name or delete it first.", t.Name)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create trigger %q: %w", t.Name, err)
	}
	return nil
}

// GetTrigger returns a trigger; ENOTFOUND when there is none.
func (s *PipelineStore) GetTrigger(ctx context.Context, name string) (*pipeline.Trigger, error) {
	var t *pipeline.Trigger
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		t, err = scanTrigger(tx.QueryRow(ctx, `SELECT `+triggerColumns+` FROM triggers WHERE name = ?`, name))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, triggerNotFound(name)
	} else if err != nil {
		return nil, fmt.Errorf("get trigger %q: %w", name, err)
	}
	return t, nil
}

// ListTriggers returns all triggers by name.
func (s *PipelineStore) ListTriggers(ctx context.Context) ([]*pipeline.Trigger, error) {
	out := []*pipeline.Trigger{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT `+triggerColumns+` FROM triggers ORDER BY name`, nil, func(sc scanner) error {
			t, err := scanTrigger(sc)
			if err != nil {
				return err
			}
			out = append(out, t)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list triggers: %w", err)
	}
	return out, nil
}

// triggerSet returns the assignments of u, with updated_at, or an empty
// list when u changes nothing. A zero NextFire or LastFired clears it.
func triggerSet(u pipeline.TriggerUpdate, now time.Time) setList {
	var set setList
	if u.Paused != nil {
		set.add("paused", *u.Paused)
	}
	if u.PauseReason != nil {
		set.add("pause_reason", *u.PauseReason)
	}
	if u.ConsecutiveFailures != nil {
		set.add("consecutive_failures", *u.ConsecutiveFailures)
	}
	if u.DatasetCursor != nil {
		set.add("dataset_cursor", *u.DatasetCursor)
	}
	if u.NextFire != nil {
		set.add("next_fire", msOrNull(*u.NextFire))
	}
	if u.LastFired != nil {
		set.add("last_fired", msOrNull(*u.LastFired))
	}
	if u.LastError != nil {
		set.add("last_error", *u.LastError)
	}
	if !set.empty() {
		set.add("updated_at", now.UnixMilli())
	}
	return set
}

// lockTrigger returns ENOTFOUND unless the trigger exists, and on
// PostgreSQL locks its row until the transaction ends, so the writers of one
// trigger's state and events queue.
func lockTrigger(ctx context.Context, tx *Tx, name string) error {
	var got string
	err := tx.QueryRow(ctx, `SELECT name FROM triggers WHERE name = ?`+forUpdate(tx.Dialect()), name).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return triggerNotFound(name)
	}
	return err
}

// applyTriggerUpdate applies u to a trigger whose row exists.
func applyTriggerUpdate(ctx context.Context, tx *Tx, name string, u pipeline.TriggerUpdate, now time.Time) error {
	set := triggerSet(u, now)
	if set.empty() {
		return lockTrigger(ctx, tx, name)
	}
	res, err := tx.Exec(ctx, `UPDATE triggers SET `+set.sql()+` WHERE name = ?`, append(set.args, name)...)
	return mustAffect(res, err, triggerNotFound(name))
}

// UpdateTrigger changes a trigger and its UpdatedAt; nil fields are left
// alone. ENOTFOUND when there is none.
func (s *PipelineStore) UpdateTrigger(ctx context.Context, name string, u pipeline.TriggerUpdate) error {
	err := s.db.Write(ctx, func(tx *Tx) error { return applyTriggerUpdate(ctx, tx, name, u, s.now()) })
	if err != nil {
		return fmt.Errorf("update trigger %q: %w", name, err)
	}
	return nil
}

// DeleteTrigger deletes a trigger and marks its pending events skipped
// ("trigger deleted"); its other events stay as a record. ENOTFOUND when
// there is none.
func (s *PipelineStore) DeleteTrigger(ctx context.Context, name string) error {
	now := s.now().UnixMilli()
	err := s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM triggers WHERE name = ?`, name)
		if err := mustAffect(res, err, triggerNotFound(name)); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE trigger_events SET status = ?, reason = ?, decided_at = ?
			WHERE trigger_name = ? AND status = ?`,
			string(pipeline.EventSkipped), "trigger deleted", now, name, string(pipeline.EventPending))
		if err != nil {
			return err
		}
		// The events stay as a record, but their de-duplication keys are
		// released: a trigger created again under the same name starts
		// fresh instead of silently ignoring what its predecessor saw.
		_, err = tx.Exec(ctx, `UPDATE trigger_events SET dedup_key = '' WHERE trigger_name = ?`, name)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete trigger %q: %w", name, err)
	}
	return nil
}

// AddEvents stores events for a trigger and applies u to it in one
// transaction. An event without a status is stored pending; a zero
// CreatedAt is set to now. An event whose non-empty DedupKey repeats one of
// the same trigger (stored earlier or earlier in events) is not stored.
// The returned slice holds the stored events, which are also updated in
// place (ID, Trigger, Status, CreatedAt) once the transaction committed.
// ENOTFOUND when there is no such trigger.
func (s *PipelineStore) AddEvents(ctx context.Context, trigger string, events []*pipeline.TriggerEvent, u pipeline.TriggerUpdate) ([]*pipeline.TriggerEvent, error) {
	now := s.now().UTC()
	var (
		stored []*pipeline.TriggerEvent
		ids    []int64
		times  []time.Time
	)
	err := s.db.Write(ctx, func(tx *Tx) error {
		stored, ids, times = stored[:0], ids[:0], times[:0]
		if err := lockTrigger(ctx, tx, trigger); err != nil {
			return err
		}
		for _, e := range events {
			status := e.Status
			if status == "" {
				status = pipeline.EventPending
			}
			created := e.CreatedAt
			if created.IsZero() {
				created = now
			}
			var payload any // NULL without a payload
			if len(e.Payload) > 0 {
				payload = string(e.Payload)
			}
			var id int64
			err := tx.QueryRow(ctx, `INSERT INTO trigger_events (trigger_name, source, subject, payload, dedup_key,
				status, run_id, reason, created_at, decided_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (trigger_name, dedup_key) WHERE dedup_key <> '' DO NOTHING RETURNING id`,
				trigger, e.Source, e.Subject, payload, e.DedupKey, string(status), e.RunID, e.Reason,
				created.UnixMilli(), msOrNull(e.DecidedAt)).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				continue // a repeated dedup key
			} else if err != nil {
				return err
			}
			stored, ids, times = append(stored, e), append(ids, id), append(times, created)
		}
		return applyTriggerUpdate(ctx, tx, trigger, u, now)
	})
	if err != nil {
		return nil, fmt.Errorf("add %d events to trigger %q: %w", len(events), trigger, err)
	}
	for i, e := range stored {
		e.ID, e.Trigger, e.CreatedAt = ids[i], trigger, times[i].UTC().Truncate(time.Millisecond)
		if e.Status == "" {
			e.Status = pipeline.EventPending
		}
	}
	if stored == nil {
		stored = []*pipeline.TriggerEvent{}
	}
	return stored, nil
}

// triggerEventColumns are the columns scanTriggerEvent reads, in order.
const triggerEventColumns = `id, trigger_name, source, subject, payload, dedup_key, status, run_id, reason, created_at, decided_at`

// scanTriggerEvent reads a row of triggerEventColumns.
func scanTriggerEvent(sc scanner) (*pipeline.TriggerEvent, error) {
	var (
		e       pipeline.TriggerEvent
		payload sql.NullString
		status  string
		created int64
		decided sql.NullInt64
	)
	if err := sc.Scan(&e.ID, &e.Trigger, &e.Source, &e.Subject, &payload, &e.DedupKey, &status, &e.RunID, &e.Reason,
		&created, &decided); err != nil {
		return nil, err
	}
	if payload.Valid {
		e.Payload = json.RawMessage(payload.String)
	}
	e.Status = pipeline.EventStatus(status)
	e.CreatedAt, e.DecidedAt = time.UnixMilli(created).UTC(), timeFromMS(decided)
	return &e, nil
}

// ListEvents returns a trigger's events, newest first, with the given
// statuses (all when none), at most limit (default 100, capped at 1000).
// The events of a deleted trigger are still listed.
func (s *PipelineStore) ListEvents(ctx context.Context, trigger string, statuses []pipeline.EventStatus, limit int) ([]*pipeline.TriggerEvent, error) {
	if limit <= 0 {
		limit = defaultPipelineList
	}
	limit = min(limit, maxPipelineList)
	q := `SELECT ` + triggerEventColumns + ` FROM trigger_events WHERE trigger_name = ?`
	args := []any{trigger}
	if len(statuses) > 0 {
		q += ` AND status IN (` + placeholders(len(statuses)) + `)`
		for _, st := range statuses {
			args = append(args, string(st))
		}
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	out := []*pipeline.TriggerEvent{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, q, args, func(sc scanner) error {
			e, err := scanTriggerEvent(sc)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list events of trigger %q: %w", trigger, err)
	}
	return out, nil
}

// uniqueIDs returns ids sorted without repeats, as query arguments.
func uniqueIDs(ids []int64) []any {
	s := slices.Clone(ids)
	slices.Sort(s)
	s = slices.Compact(s)
	out := make([]any, len(s))
	for i, id := range s {
		out[i] = id
	}
	return out
}

// lockEvents locks, on PostgreSQL, the rows of the events in id order, so
// that transactions deciding overlapping sets of events queue instead of
// deadlocking. SQLite's one writer already serialises them.
func lockEvents(ctx context.Context, tx *Tx, ids []any) error {
	if tx.Dialect() != Postgres {
		return nil
	}
	return forChunks(len(ids), inChunk, func(lo, hi int) error {
		return queryEach(ctx, tx, `SELECT id FROM trigger_events WHERE id IN (`+placeholders(hi-lo)+`) ORDER BY id`+
			forUpdate(tx.Dialect()), ids[lo:hi], func(scanner) error { return nil })
	})
}

// decidePending sets status, reason, decided_at and (when runID is not
// empty) run_id of the pending events among ids, restricted to one trigger
// when trigger is not empty, and returns how many it changed.
func decidePending(ctx context.Context, tx *Tx, ids []any, trigger string, status pipeline.EventStatus, runID, reason string, now int64) (int64, error) {
	if err := lockEvents(ctx, tx, ids); err != nil {
		return 0, err
	}
	var total int64
	err := forChunks(len(ids), inChunk, func(lo, hi int) error {
		q := `UPDATE trigger_events SET status = ?, reason = ?, decided_at = ?`
		args := []any{string(status), reason, now}
		if runID != "" {
			q += `, run_id = ?`
			args = append(args, runID)
		}
		q += ` WHERE status = ? AND id IN (` + placeholders(hi-lo) + `)`
		args = append(append(args, string(pipeline.EventPending)), ids[lo:hi]...)
		if trigger != "" {
			q += ` AND trigger_name = ?`
			args = append(args, trigger)
		}
		res, err := tx.Exec(ctx, q, args...)
		if err != nil {
			return err
		}
		n, err := rowsAffected(res, "decide events")
		total += n
		return err
	})
	return total, err
}

// Fire creates run (as CreateRun), marks the events Fired with its id and
// sets the trigger's LastFired to now, in one transaction. A nil
// run.EventIDs is set to eventIDs, and a zero run.CreatedAt to now. It
// fails with ECONFLICT, changing nothing, when one of the events is not a
// pending event of run.Trigger; ENOTFOUND when the trigger does not exist;
// EINVALID when the run names no trigger.
func (s *PipelineStore) Fire(ctx context.Context, run *pipeline.Run, eventIDs []int64, now time.Time) error {
	if run.Trigger == "" {
		return mloop.Errorf(mloop.EINVALID, "Pipeline run %q is fired by a trigger but names none.", run.ID)
	}
	if run.EventIDs == nil && len(eventIDs) > 0 {
		run.EventIDs = slices.Clone(eventIDs)
	}
	if run.CreatedAt.IsZero() {
		run.CreatedAt = now.UTC()
	}
	ids := uniqueIDs(eventIDs)
	err := s.db.Write(ctx, func(tx *Tx) error {
		// The decision to fire was made on the trigger as it was read a
		// moment ago: a pause since then (by a user, or after a failed run)
		// wins, and the events stay pending.
		var paused bool
		err := tx.QueryRow(ctx, `SELECT paused FROM triggers WHERE name = ?`+forUpdate(tx.Dialect()), run.Trigger).Scan(&paused)
		if errors.Is(err, sql.ErrNoRows) {
			return triggerNotFound(run.Trigger)
		} else if err != nil {
			return err
		}
		if paused {
			return mloop.Errorf(mloop.ECONFLICT, "Trigger %q was paused meanwhile: its events stay pending.", run.Trigger)
		}
		n, err := decidePending(ctx, tx, ids, run.Trigger, pipeline.EventFired, run.ID, "", now.UnixMilli())
		if err != nil {
			return err
		}
		if n != int64(len(ids)) {
			return mloop.Errorf(mloop.ECONFLICT, "%d of the %d events of trigger %q are no longer pending: another controller decided them; reload the trigger's events.",
				int64(len(ids))-n, len(ids), run.Trigger)
		}
		if err := insertRun(ctx, tx, run); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE triggers SET last_fired = ?, updated_at = ? WHERE name = ?`,
			now.UnixMilli(), now.UnixMilli(), run.Trigger)
		return err
	})
	if err != nil {
		return fmt.Errorf("fire trigger %q as run %q: %w", run.Trigger, run.ID, err)
	}
	return nil
}

// DecideEvents marks the pending events among eventIDs with a final status
// and reason; events already decided are left alone. EINVALID when status
// is not final.
func (s *PipelineStore) DecideEvents(ctx context.Context, eventIDs []int64, status pipeline.EventStatus, reason string, now time.Time) error {
	switch status {
	case pipeline.EventFired, pipeline.EventSkipped, pipeline.EventDeduped:
	default:
		return mloop.Errorf(mloop.EINVALID, "Invalid final event status %q: use %q, %q or %q.",
			status, pipeline.EventFired, pipeline.EventSkipped, pipeline.EventDeduped)
	}
	ids := uniqueIDs(eventIDs)
	if len(ids) == 0 {
		return nil
	}
	err := s.db.Write(ctx, func(tx *Tx) error {
		_, err := decidePending(ctx, tx, ids, "", status, "", reason, now.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("decide %d trigger events: %w", len(ids), err)
	}
	return nil
}
