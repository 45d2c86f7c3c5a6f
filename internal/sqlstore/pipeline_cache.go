package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

// pipelineCacheColumns are the columns scanCacheEntry reads, in order.
const pipelineCacheColumns = `key, pipeline, step, run_id, mlflow_run_id, input, outputs, metrics, created_at`

// scanCacheEntry reads a row of pipelineCacheColumns.
func scanCacheEntry(sc scanner) (*pipeline.CacheEntry, error) {
	var (
		e                       pipeline.CacheEntry
		input, outputs, metrics string
		created                 int64
	)
	if err := sc.Scan(&e.Key, &e.Pipeline, &e.Step, &e.RunID, &e.MLflowRunID, &input, &outputs, &metrics, &created); err != nil {
		return nil, err
	}
	if err := decodeJSON("input of cache entry "+e.Key, input, &e.Input); err != nil {
		return nil, err
	}
	var err error
	if e.Outputs, err = decodeMap[pipeline.OutputRecord]("outputs of cache entry "+e.Key, outputs); err != nil {
		return nil, err
	}
	if e.Metrics, err = decodeMap[float64]("metrics of cache entry "+e.Key, metrics); err != nil {
		return nil, err
	}
	e.CreatedAt = time.UnixMilli(created).UTC()
	return &e, nil
}

// readCacheEntry runs a query for one row of pipelineCacheColumns;
// notFound is returned when there is none.
func (s *PipelineStore) readCacheEntry(ctx context.Context, what string, notFound error, q string, args ...any) (*pipeline.CacheEntry, error) {
	var e *pipeline.CacheEntry
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		e, err = scanCacheEntry(tx.QueryRow(ctx, q, args...))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound
	} else if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return e, nil
}

// GetCache returns the entry with the key; ENOTFOUND when there is none.
func (s *PipelineStore) GetCache(ctx context.Context, key string) (*pipeline.CacheEntry, error) {
	return s.readCacheEntry(ctx, fmt.Sprintf("get cache entry %q", key),
		mloop.Errorf(mloop.ENOTFOUND, "No cached step result has key %q.", key),
		`SELECT `+pipelineCacheColumns+` FROM pipeline_cache WHERE key = ?`, key)
}

// LatestCache returns the newest entry of a pipeline's step, whatever its
// key (entries recorded in the same millisecond are ordered by key);
// ENOTFOUND when there is none.
func (s *PipelineStore) LatestCache(ctx context.Context, pipelineName, step string) (*pipeline.CacheEntry, error) {
	return s.readCacheEntry(ctx, fmt.Sprintf("latest cache entry of step %q of pipeline %q", step, pipelineName),
		mloop.Errorf(mloop.ENOTFOUND, "Step %q of pipeline %q has no cached result.", step, pipelineName),
		`SELECT `+pipelineCacheColumns+` FROM pipeline_cache WHERE pipeline = ? AND step = ?
		ORDER BY created_at DESC, key DESC LIMIT 1`, pipelineName, step)
}

// PutCache stores an entry, replacing one with the same key. A zero
// e.CreatedAt is set to now (in e too). EINVALID when the entry has no key,
// pipeline or step, or metrics JSON cannot hold (NaN, infinities).
func (s *PipelineStore) PutCache(ctx context.Context, e *pipeline.CacheEntry) error {
	if e.Key == "" || e.Pipeline == "" || e.Step == "" {
		return mloop.Errorf(mloop.EINVALID, "A cache entry needs a key, a pipeline and a step (got key %q, pipeline %q, step %q).",
			e.Key, e.Pipeline, e.Step)
	}
	if e.CreatedAt.IsZero() {
		e.CreatedAt = s.now().UTC()
	}
	input, err := jsonText("cache input", e.Input)
	if err != nil {
		return fmt.Errorf("put cache entry %q: %w", e.Key, err)
	}
	outputs, err := jsonMap("outputs", e.Outputs)
	if err != nil {
		return fmt.Errorf("put cache entry %q: %w", e.Key, err)
	}
	metrics, err := jsonMap("metrics", e.Metrics)
	if err != nil {
		return fmt.Errorf("put cache entry %q: %w", e.Key, err)
	}
	err = s.db.Write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO pipeline_cache (`+pipelineCacheColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET pipeline = excluded.pipeline, step = excluded.step,
			run_id = excluded.run_id, mlflow_run_id = excluded.mlflow_run_id, input = excluded.input,
			outputs = excluded.outputs, metrics = excluded.metrics, created_at = excluded.created_at`,
			e.Key, e.Pipeline, e.Step, e.RunID, e.MLflowRunID, input, outputs, metrics, e.CreatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("put cache entry %q: %w", e.Key, err)
	}
	return nil
}
