package sqlstore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

// PipelineStore implements pipeline.Store on SQLite or PostgreSQL: pipeline
// runs and their steps, the step cache, lineage edges, and triggers with
// their events. Every method runs in one transaction. It is safe for
// concurrent use, also by several servers sharing one PostgreSQL database.
type PipelineStore struct {
	db *DB
	// now returns the current time; tests of the package may replace it.
	now func() time.Time
}

var _ pipeline.Store = (*PipelineStore)(nil)

// NewPipelineStore returns a pipeline store on db.
func NewPipelineStore(db *DB) *PipelineStore {
	return &PipelineStore{db: db, now: time.Now}
}

// Listing bounds of ListRuns and ListEvents.
const (
	defaultPipelineList = 100
	maxPipelineList     = 1000
)

// runNotFound is the error of a missing pipeline run.
func runNotFound(id string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "Pipeline run %q does not exist.", id)
}

// msOrNull returns t as milliseconds since the epoch, or NULL for the zero time.
func msOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// timeFromMS returns the UTC time of a nullable millisecond column; the zero
// time for NULL.
func timeFromMS(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.UnixMilli(n.Int64).UTC()
}

// jsonText encodes v as JSON text for a column. what names the value in the
// error, which is EINVALID: only values that JSON cannot hold (NaN metrics,
// say) fail.
func jsonText(what string, v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", mloop.Errorf(mloop.EINVALID, "The %s cannot be stored as JSON: %v.", what, err)
	}
	return string(b), nil
}

// jsonMap encodes a map as a JSON object, "{}" for nil.
func jsonMap[V any](what string, m map[string]V) (string, error) {
	if m == nil {
		return "{}", nil
	}
	return jsonText(what, m)
}

// jsonList encodes a slice as a JSON array, "[]" for nil.
func jsonList[V any](what string, s []V) (string, error) {
	if s == nil {
		return "[]", nil
	}
	return jsonText(what, s)
}

// decodeMap decodes a JSON object column; an empty object gives nil.
func decodeMap[V any](what, text string) (map[string]V, error) {
	var m map[string]V
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}

// decodeJSON decodes a JSON column into v.
func decodeJSON(what, text string, v any) error {
	if err := json.Unmarshal([]byte(text), v); err != nil {
		return fmt.Errorf("decode %s: %w", what, err)
	}
	return nil
}

// decodeList decodes a JSON array column; an empty array gives nil.
func decodeList[V any](what, text string) ([]V, error) {
	var s []V
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	if len(s) == 0 {
		return nil, nil
	}
	return s, nil
}

// setList collects the "column = ?" assignments of an UPDATE.
type setList struct {
	cols []string
	args []any
}

func (s *setList) add(col string, v any) {
	s.cols = append(s.cols, col+" = ?")
	s.args = append(s.args, v)
}

func (s *setList) empty() bool { return len(s.cols) == 0 }

func (s *setList) sql() string { return strings.Join(s.cols, ", ") }

// CreateRun stores a new run and its steps, in the order given. A step
// without a status is stored StepPending, a run without one RunQueued, and
// a zero r.CreatedAt is set to now (in r too). EEXISTS when the id is taken;
// EINVALID when the run has no id or pipeline, or two steps share a name.
func (s *PipelineStore) CreateRun(ctx context.Context, r *pipeline.Run) error {
	if r.CreatedAt.IsZero() {
		r.CreatedAt = s.now().UTC()
	}
	err := s.db.Write(ctx, func(tx *Tx) error { return insertRun(ctx, tx, r) })
	if err != nil {
		return fmt.Errorf("create pipeline run %q: %w", r.ID, err)
	}
	return nil
}

// insertRun inserts r and its steps; r.CreatedAt must be set.
func insertRun(ctx context.Context, tx *Tx, r *pipeline.Run) error {
	if r.ID == "" {
		return mloop.Errorf(mloop.EINVALID, "A pipeline run needs an id.")
	}
	if r.Pipeline == "" {
		return mloop.Errorf(mloop.EINVALID, "Pipeline run %q needs the name of its pipeline.", r.ID)
	}
	seen := make(map[string]bool, len(r.Steps))
	for _, st := range r.Steps {
		if st == nil || st.Name == "" {
			return mloop.Errorf(mloop.EINVALID, "Every step of pipeline run %q needs a name.", r.ID)
		}
		if seen[st.Name] {
			return mloop.Errorf(mloop.EINVALID, "Pipeline run %q has two steps named %q: step names must be unique.", r.ID, st.Name)
		}
		seen[st.Name] = true
	}
	params, err := jsonMap("params", r.Params)
	if err != nil {
		return err
	}
	datasets, err := jsonMap("datasets", r.Datasets)
	if err != nil {
		return err
	}
	events, err := jsonList("event ids", r.EventIDs)
	if err != nil {
		return err
	}
	status := r.Status
	if status == "" {
		status = pipeline.RunQueued
	}
	_, err = tx.Exec(ctx, `INSERT INTO pipeline_runs (id, pipeline, spec_file, project_dir, spec, params, datasets,
		status, trigger_name, cause, event_ids, inputs_key, experiment_id, mlflow_run_id, error, cancel_requested,
		owner, explain, created_at, started_at, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Pipeline, r.SpecFile, r.ProjectDir, r.Spec, params, datasets, string(status), r.Trigger, r.Cause,
		events, r.InputsKey, r.ExperimentID, r.MLflowRunID, r.Error, r.CancelRequested, r.Owner, r.Explain,
		r.CreatedAt.UnixMilli(), msOrNull(r.StartedAt), msOrNull(r.FinishedAt))
	if isUniqueViolation(err) {
		return mloop.Errorf(mloop.EEXISTS, "Pipeline run %q already exists.", r.ID)
	} else if err != nil {
		return err
	}
	const width = 18
	args := make([]any, 0, width*len(r.Steps))
	for i, st := range r.Steps {
		explain, err := jsonList("explanation of step "+st.Name, st.Explain)
		if err != nil {
			return err
		}
		outputs, err := jsonMap("outputs of step "+st.Name, st.Outputs)
		if err != nil {
			return err
		}
		metrics, err := jsonMap("metrics of step "+st.Name, st.Metrics)
		if err != nil {
			return err
		}
		stStatus := st.Status
		if stStatus == "" {
			stStatus = pipeline.StepPending
		}
		var exit any
		if st.ExitCode != nil {
			exit = int64(*st.ExitCode)
		}
		args = append(args, r.ID, st.Name, i, string(stStatus), st.Attempt, st.CacheKey, st.CachedFrom, explain,
			st.MLflowRunID, st.Executor, st.TaskID, st.Handle, exit, st.Error, outputs, metrics,
			msOrNull(st.StartedAt), msOrNull(st.FinishedAt))
	}
	return forChunks(len(r.Steps), maxInsertRows/width, func(lo, hi int) error {
		_, err := tx.Exec(ctx, valuesStatement(`INSERT INTO pipeline_steps (run_id, name, position, status, attempt,
			cache_key, cached_from, explain, mlflow_run_id, executor, task_id, handle, exit_code, error, outputs,
			metrics, started_at, finished_at)`, "", width, hi-lo), args[lo*width:hi*width]...)
		return err
	})
}

// pipelineRunColumns are the columns scanRun reads, in order, before the
// optional spec.
const pipelineRunColumns = `id, pipeline, spec_file, project_dir, params, datasets, status, trigger_name, cause,
	event_ids, inputs_key, experiment_id, mlflow_run_id, error, cancel_requested, owner, explain, created_at,
	started_at, finished_at`

// scanRun reads a row of pipelineRunColumns (plus spec when withSpec).
func scanRun(sc scanner, withSpec bool) (*pipeline.Run, error) {
	var (
		r                                pipeline.Run
		params, datasets, events, status string
		created                          int64
		started, finished                sql.NullInt64
		cancelRequested, explain         bool
	)
	dest := []any{&r.ID, &r.Pipeline, &r.SpecFile, &r.ProjectDir, &params, &datasets, &status, &r.Trigger, &r.Cause,
		&events, &r.InputsKey, &r.ExperimentID, &r.MLflowRunID, &r.Error, &cancelRequested, &r.Owner, &explain,
		&created, &started, &finished}
	if withSpec {
		dest = append(dest, &r.Spec)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	var err error
	if r.Params, err = decodeMap[string]("params of run "+r.ID, params); err != nil {
		return nil, err
	}
	if r.Datasets, err = decodeMap[pipeline.InputHash]("datasets of run "+r.ID, datasets); err != nil {
		return nil, err
	}
	if r.EventIDs, err = decodeList[int64]("event ids of run "+r.ID, events); err != nil {
		return nil, err
	}
	r.Status = pipeline.RunStatus(status)
	r.CancelRequested, r.Explain = cancelRequested, explain
	r.CreatedAt = time.UnixMilli(created).UTC()
	r.StartedAt, r.FinishedAt = timeFromMS(started), timeFromMS(finished)
	r.Steps = []*pipeline.StepRun{}
	return &r, nil
}

// pipelineStepColumns are the columns scanStep reads, in order.
const pipelineStepColumns = `run_id, name, status, attempt, cache_key, cached_from, explain, mlflow_run_id, executor,
	task_id, handle, exit_code, error, outputs, metrics, started_at, finished_at`

// scanStep reads a row of pipelineStepColumns.
func scanStep(sc scanner) (*pipeline.StepRun, error) {
	var (
		st                               pipeline.StepRun
		status, explain, outputs, metric string
		exit, started, finished          sql.NullInt64
	)
	if err := sc.Scan(&st.RunID, &st.Name, &status, &st.Attempt, &st.CacheKey, &st.CachedFrom, &explain,
		&st.MLflowRunID, &st.Executor, &st.TaskID, &st.Handle, &exit, &st.Error, &outputs, &metric,
		&started, &finished); err != nil {
		return nil, err
	}
	what := "step " + st.Name + " of run " + st.RunID
	var err error
	if st.Explain, err = decodeList[string]("explanation of "+what, explain); err != nil {
		return nil, err
	}
	if st.Outputs, err = decodeMap[pipeline.OutputRecord]("outputs of "+what, outputs); err != nil {
		return nil, err
	}
	if st.Metrics, err = decodeMap[float64]("metrics of "+what, metric); err != nil {
		return nil, err
	}
	st.Status = pipeline.StepStatus(status)
	if exit.Valid {
		code := int(exit.Int64)
		st.ExitCode = &code
	}
	st.StartedAt, st.FinishedAt = timeFromMS(started), timeFromMS(finished)
	return &st, nil
}

// loadSteps appends to runs their steps in plan order.
func loadSteps(ctx context.Context, tx *Tx, runs []*pipeline.Run) error {
	byID := make(map[string]*pipeline.Run, len(runs))
	ids := make([]any, 0, len(runs))
	for _, r := range runs {
		byID[r.ID] = r
		ids = append(ids, r.ID)
	}
	return forChunks(len(ids), inChunk, func(lo, hi int) error {
		return queryEach(ctx, tx, `SELECT `+pipelineStepColumns+` FROM pipeline_steps WHERE run_id IN (`+
			placeholders(hi-lo)+`) ORDER BY run_id, position`, ids[lo:hi], func(sc scanner) error {
			st, err := scanStep(sc)
			if err != nil {
				return err
			}
			if r := byID[st.RunID]; r != nil {
				r.Steps = append(r.Steps, st)
			}
			return nil
		})
	})
}

// getRun reads a run with its spec and steps.
func getRun(ctx context.Context, tx *Tx, id string) (*pipeline.Run, error) {
	r, err := scanRun(tx.QueryRow(ctx, `SELECT `+pipelineRunColumns+`, spec FROM pipeline_runs WHERE id = ?`, id), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, runNotFound(id)
	} else if err != nil {
		return nil, err
	}
	if err := loadSteps(ctx, tx, []*pipeline.Run{r}); err != nil {
		return nil, err
	}
	return r, nil
}

// GetRun returns a run with its spec and its steps in plan order; ENOTFOUND
// when there is none.
func (s *PipelineStore) GetRun(ctx context.Context, id string) (*pipeline.Run, error) {
	var r *pipeline.Run
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		r, err = getRun(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("get pipeline run %q: %w", id, err)
	}
	return r, nil
}

// runPageToken encodes the position after the last run of a page: its
// creation time and id, the listing's order.
func runPageToken(r *pipeline.Run) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(r.CreatedAt.UnixMilli(), 10) + ":" + r.ID))
}

// parseRunPageToken decodes a token of runPageToken.
func parseRunPageToken(tok string) (created int64, id string, err error) {
	bad := mloop.Errorf(mloop.EINVALID, "Invalid page token %q: pass the next page token of an earlier listing unchanged.", tok)
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", bad
	}
	ms, id, ok := strings.Cut(string(b), ":")
	if !ok || id == "" {
		return 0, "", bad
	}
	created, err = strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return 0, "", bad
	}
	return created, id, nil
}

// ListRuns returns runs newest first (oldest first with f.OldestFirst; by
// creation time, then id), without
// their Spec text but with their steps, and a token for the next page (""
// at the end). MaxResults defaults to 100 and is capped at 1000; a page
// token that ListRuns did not return is EINVALID.
func (s *PipelineStore) ListRuns(ctx context.Context, f pipeline.RunFilter) ([]*pipeline.Run, string, error) {
	limit := f.MaxResults
	if limit <= 0 {
		limit = defaultPipelineList
	}
	limit = min(limit, maxPipelineList)
	var (
		where []string
		args  []any
	)
	if f.Pipeline != "" {
		where, args = append(where, "pipeline = ?"), append(args, f.Pipeline)
	}
	if f.Trigger != "" {
		where, args = append(where, "trigger_name = ?"), append(args, f.Trigger)
	}
	if len(f.Statuses) > 0 {
		where = append(where, "status IN ("+placeholders(len(f.Statuses))+")")
		for _, st := range f.Statuses {
			args = append(args, string(st))
		}
	}
	cmp, order := "<", "DESC"
	if f.OldestFirst {
		cmp, order = ">", "ASC"
	}
	if f.PageToken != "" {
		created, id, err := parseRunPageToken(f.PageToken)
		if err != nil {
			return nil, "", err
		}
		where = append(where, "(created_at "+cmp+" ? OR (created_at = ? AND id "+cmp+" ?))")
		args = append(args, created, created, id)
	}
	q := `SELECT ` + pipelineRunColumns + ` FROM pipeline_runs`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at ` + order + `, id ` + order + ` LIMIT ?`
	args = append(args, limit+1)
	runs := []*pipeline.Run{}
	more := false
	err := s.db.Read(ctx, func(tx *Tx) error {
		err := queryEach(ctx, tx, q, args, func(sc scanner) error {
			r, err := scanRun(sc, false)
			if err != nil {
				return err
			}
			runs = append(runs, r)
			return nil
		})
		if err != nil {
			return err
		}
		if len(runs) > limit {
			runs, more = runs[:limit], true
		}
		return loadSteps(ctx, tx, runs)
	})
	if err != nil {
		return nil, "", fmt.Errorf("list pipeline runs: %w", err)
	}
	next := ""
	if more {
		next = runPageToken(runs[len(runs)-1])
	}
	return runs, next, nil
}

// ClaimRun moves a queued run to running for owner, setting StartedAt, and
// reports whether this call did it. The conditional UPDATE makes exactly one
// of concurrent claims win: SQLite serialises writers, and PostgreSQL
// re-checks the condition once the row lock is free.
func (s *PipelineStore) ClaimRun(ctx context.Context, id, owner string, now time.Time) (bool, error) {
	var claimed bool
	err := s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE pipeline_runs SET status = ?, owner = ?, started_at = ? WHERE id = ? AND status = ?`,
			string(pipeline.RunRunning), owner, now.UnixMilli(), id, string(pipeline.RunQueued))
		if err != nil {
			return err
		}
		n, err := rowsAffected(res, "claim")
		if err != nil {
			return err
		}
		if n > 0 {
			claimed = true
			return nil
		}
		return runExists(ctx, tx, id)
	})
	if err != nil {
		return false, fmt.Errorf("claim pipeline run %q: %w", id, err)
	}
	return claimed, nil
}

// runExists returns ENOTFOUND unless the run exists.
func runExists(ctx context.Context, tx *Tx, id string) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM pipeline_runs WHERE id = ?`, id).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return runNotFound(id)
	}
	return nil
}

// UpdateRun changes a run; nil fields are left alone and a zero time clears
// StartedAt or FinishedAt. ENOTFOUND when there is no such run.
func (s *PipelineStore) UpdateRun(ctx context.Context, id string, u pipeline.RunUpdate) error {
	var set setList
	if u.Status != nil {
		set.add("status", string(*u.Status))
	}
	if u.Error != nil {
		set.add("error", *u.Error)
	}
	if u.ExperimentID != nil {
		set.add("experiment_id", *u.ExperimentID)
	}
	if u.MLflowRunID != nil {
		set.add("mlflow_run_id", *u.MLflowRunID)
	}
	if u.CancelRequested != nil {
		set.add("cancel_requested", *u.CancelRequested)
	}
	if u.StartedAt != nil {
		set.add("started_at", msOrNull(*u.StartedAt))
	}
	if u.FinishedAt != nil {
		set.add("finished_at", msOrNull(*u.FinishedAt))
	}
	err := s.db.Write(ctx, func(tx *Tx) error {
		if set.empty() {
			return runExists(ctx, tx, id)
		}
		res, err := tx.Exec(ctx, `UPDATE pipeline_runs SET `+set.sql()+` WHERE id = ?`, append(set.args, id)...)
		return mustAffect(res, err, runNotFound(id))
	})
	if err != nil {
		return fmt.Errorf("update pipeline run %q: %w", id, err)
	}
	return nil
}

// UpdateStep changes one step of a run; nil fields are left alone, non-nil
// Explain, Outputs and Metrics replace the stored ones, and a zero time
// clears StartedAt or FinishedAt. ENOTFOUND when there is no such step.
func (s *PipelineStore) UpdateStep(ctx context.Context, runID, step string, u pipeline.StepUpdate) error {
	var set setList
	if u.Status != nil {
		set.add("status", string(*u.Status))
	}
	if u.Attempt != nil {
		set.add("attempt", *u.Attempt)
	}
	if u.CacheKey != nil {
		set.add("cache_key", *u.CacheKey)
	}
	if u.CachedFrom != nil {
		set.add("cached_from", *u.CachedFrom)
	}
	if u.Explain != nil {
		v, err := jsonList("explanation", u.Explain)
		if err != nil {
			return fmt.Errorf("update step %q of pipeline run %q: %w", step, runID, err)
		}
		set.add("explain", v)
	}
	if u.MLflowRunID != nil {
		set.add("mlflow_run_id", *u.MLflowRunID)
	}
	if u.Executor != nil {
		set.add("executor", *u.Executor)
	}
	if u.TaskID != nil {
		set.add("task_id", *u.TaskID)
	}
	if u.Handle != nil {
		set.add("handle", *u.Handle)
	}
	if u.ExitCode != nil {
		set.add("exit_code", int64(*u.ExitCode))
	}
	if u.Error != nil {
		set.add("error", *u.Error)
	}
	if u.Outputs != nil {
		v, err := jsonMap("outputs", u.Outputs)
		if err != nil {
			return fmt.Errorf("update step %q of pipeline run %q: %w", step, runID, err)
		}
		set.add("outputs", v)
	}
	if u.Metrics != nil {
		v, err := jsonMap("metrics", u.Metrics)
		if err != nil {
			return fmt.Errorf("update step %q of pipeline run %q: %w", step, runID, err)
		}
		set.add("metrics", v)
	}
	if u.StartedAt != nil {
		set.add("started_at", msOrNull(*u.StartedAt))
	}
	if u.FinishedAt != nil {
		set.add("finished_at", msOrNull(*u.FinishedAt))
	}
	notFound := mloop.Errorf(mloop.ENOTFOUND, "Pipeline run %q has no step %q.", runID, step)
	err := s.db.Write(ctx, func(tx *Tx) error {
		if set.empty() {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM pipeline_steps WHERE run_id = ? AND name = ?`,
				runID, step).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return notFound
			}
			return nil
		}
		res, err := tx.Exec(ctx, `UPDATE pipeline_steps SET `+set.sql()+` WHERE run_id = ? AND name = ?`,
			append(set.args, runID, step)...)
		return mustAffect(res, err, notFound)
	})
	if err != nil {
		return fmt.Errorf("update step %q of pipeline run %q: %w", step, runID, err)
	}
	return nil
}
