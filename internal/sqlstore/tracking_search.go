package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// Searchable columns of runs (alias r), by the canonical attribute names of
// tracking.Comparison. run_name is the runs.name column, which the store
// keeps equal to the mlflow.runName tag.
var runAttributes = map[string]searchColumn{
	"run_id":          {Expr: "r.run_uuid"},
	"run_name":        {Expr: "r.name"},
	"status":          {Expr: "r.status"},
	"user_id":         {Expr: "r.user_id"},
	"artifact_uri":    {Expr: "r.artifact_uri"},
	"lifecycle_stage": {Expr: "r.lifecycle_stage"},
	"start_time":      {Expr: "r.start_time", Numeric: true},
	"end_time":        {Expr: "r.end_time", Numeric: true},
}

// Key/value tables of runs.
var (
	runParams  = keyValueTable{Table: "params", Owner: "run_uuid", Key: "key", Value: "value"}
	runTags    = keyValueTable{Table: "tags", Owner: "run_uuid", Key: "key", Value: "value"}
	runMetrics = keyValueTable{Table: "latest_metrics", Owner: "run_uuid", Key: "key", Value: "value", Numeric: true, NaN: "is_nan"}
)

// Searchable columns of experiments (alias e). experiment_id is orderable only.
var experimentAttributes = map[string]searchColumn{
	"name":             {Expr: "e.name"},
	"creation_time":    {Expr: "e.creation_time", Numeric: true},
	"last_update_time": {Expr: "e.last_update_time", Numeric: true},
}

// experimentID is the id column of experiments, orderable but not filterable.
var experimentID = searchColumn{Expr: "e.experiment_id", Numeric: true}

var experimentTags = keyValueTable{Table: "experiment_tags", Owner: "experiment_id", Key: "key", Value: "value"}

// lifecycleStages returns the lifecycle stages a view type selects; an empty
// view type is ACTIVE_ONLY.
func lifecycleStages(viewType string) ([]any, error) {
	switch viewType {
	case "", tracking.ViewActiveOnly:
		return []any{tracking.LifecycleActive}, nil
	case tracking.ViewDeletedOnly:
		return []any{tracking.LifecycleDeleted}, nil
	case tracking.ViewAll:
		return []any{tracking.LifecycleActive, tracking.LifecycleDeleted}, nil
	}
	return nil, mloop.Errorf(mloop.EINVALID, "Invalid view type '%s'.", viewType)
}

// SearchRuns returns the runs of q.ExperimentIDs in q.ViewType that match
// every comparison of q.Filter, ordered by q.OrderBy then, as MLflow, by
// start_time descending (unless ordered by it) and run id, skipping q.Offset
// and returning at most q.MaxResults (all when it is 0). The search itself
// selects run ids only, so that the candidates are checked against narrow
// indexes (a page ordered by a metric first tries searchRunsByMetricOrder);
// the page's runs and their data are then loaded with a few IN-list queries.
func (s *TrackingStore) SearchRuns(ctx context.Context, q tracking.RunQuery) ([]*tracking.Run, error) {
	stages, err := lifecycleStages(q.ViewType)
	if err != nil {
		return nil, err
	}
	var expIDs []any
	for _, id := range q.ExperimentIDs {
		if n, ok := parseExperimentID(id); ok {
			expIDs = append(expIDs, n)
		}
	}
	runs := []*tracking.Run{}
	if len(expIDs) == 0 {
		return runs, nil
	}
	full, err := newRunSearch(s.db.Dialect, "runs r", expIDs, stages, q.Filter)
	if err != nil {
		return nil, err
	}
	if err := orderRuns(full, q.OrderBy); err != nil {
		return nil, err
	}
	full.Limit, full.Offset = q.MaxResults, q.Offset
	err = s.db.Read(ctx, func(tx *Tx) error {
		ids, ok, err := searchRunsByMetricOrder(ctx, tx, expIDs, stages, q)
		if err != nil {
			return fmt.Errorf("search runs: %w", err)
		}
		if !ok {
			if ids, err = queryRunIDs(ctx, tx, full); err != nil {
				return fmt.Errorf("search runs: %w", err)
			}
		}
		byID := make(map[string]*tracking.Run, len(ids))
		err = forChunks(len(ids), inChunk, func(lo, hi int) error {
			return queryEach(ctx, tx, "SELECT "+runColumns+" FROM runs r WHERE r.run_uuid IN ("+placeholders(hi-lo)+")", stringArgs(ids[lo:hi]),
				func(sc scanner) error {
					r, err := scanRunInfo(sc)
					if err == nil {
						byID[r.Info.RunID] = r
					}
					return err
				})
		})
		if err != nil {
			return fmt.Errorf("search runs: load runs: %w", err)
		}
		for _, id := range ids {
			runs = append(runs, byID[id])
		}
		return s.loadRunData(ctx, tx, runs)
	})
	if err != nil {
		return nil, err
	}
	return runs, nil
}

// Ordering by a metric can scan that metric's values in index order and stop
// as soon as a page of matching runs is found, rather than sort every match.
// The scan is bounded to a window of the orderedScanFactor × (offset +
// max_results) best values, so that a filter few runs pass costs a bounded
// detour before the general plan; pages deeper than orderedScanMaxRows always
// take the general plan.
const (
	orderedScanFactor  = 40
	orderedScanMaxRows = 1000
)

// newRunSearch returns a builder selecting r.run_uuid from from (which must
// bind runs to alias r) for the runs of expIDs in stages matching filter.
func newRunSearch(dialect, from string, expIDs, stages []any, filter tracking.Filter) (*selectBuilder, error) {
	b := newSelect(dialect, "r.run_uuid", from)
	b.Where("r.experiment_id IN ("+placeholders(len(expIDs))+")", expIDs...)
	b.Where("r.lifecycle_stage IN ("+placeholders(len(stages))+")", stages...)
	for _, c := range filter {
		if err := whereRun(b, c); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// queryRunIDs runs the search b and returns the run ids it selects, in order.
func queryRunIDs(ctx context.Context, tx *Tx, b *selectBuilder) ([]string, error) {
	query, args := b.SQL()
	var ids []string
	err := queryEach(ctx, tx, query, args, func(sc scanner) error {
		var id string
		err := sc.Scan(&id)
		ids = append(ids, id)
		return err
	})
	return ids, err
}

// searchRunsByMetricOrder answers a run search whose first order_by is a
// metric by walking that metric's non-NaN values in order (best first) and
// checking each run against the filter, within the window of values better
// than the orderedScanFactor × (offset + max_results)-th best. Numbers sort
// before NaN and missing values in both directions, and the window holds
// every run whose value is strictly better than its bound, so when the window
// yields a full page that page is exactly the general query's. ok is false,
// and the caller must run the general query, when the search does not qualify
// or the window holds too few matching runs. The query must already be valid
// (orderRuns accepted q.OrderBy).
func searchRunsByMetricOrder(ctx context.Context, tx *Tx, expIDs, stages []any, q tracking.RunQuery) (ids []string, ok bool, err error) {
	want := q.MaxResults + q.Offset
	if q.MaxResults <= 0 || want > orderedScanMaxRows || len(q.OrderBy) == 0 || q.OrderBy[0].Entity != tracking.EntityMetric {
		return nil, false, nil
	}
	first := q.OrderBy[0]
	b, err := newRunSearch(tx.Dialect(), "latest_metrics w CROSS JOIN runs r", expIDs, stages, q.Filter)
	if err != nil {
		return nil, false, err
	}
	b.Where("r.run_uuid = w.run_uuid AND w.key = ? AND NOT w.is_nan", first.Key)
	dir, better := " DESC", " > ?"
	if first.Asc {
		dir, better = " ASC", " < ?"
	}
	var bound float64
	err = tx.QueryRow(ctx, "SELECT value FROM latest_metrics WHERE key = ? AND NOT is_nan ORDER BY value"+dir+" LIMIT 1 OFFSET ?",
		first.Key, orderedScanFactor*want-1).Scan(&bound)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The window holds every value of the metric.
	case err != nil:
		return nil, false, fmt.Errorf("bound the scan of metric %q: %w", first.Key, err)
	default:
		b.Where("w.value"+better, bound)
	}
	b.OrderPlain(searchColumn{Expr: "w.value", Numeric: true}, first.Asc)
	if err := orderRuns(b, q.OrderBy[1:]); err != nil {
		return nil, false, err
	}
	b.Limit, b.Offset = q.MaxResults, q.Offset
	if ids, err = queryRunIDs(ctx, tx, b); err != nil {
		return nil, false, err
	}
	return ids, len(ids) == q.MaxResults, nil
}

// whereRun adds one comparison of a run filter.
func whereRun(b *selectBuilder, c tracking.Comparison) error {
	field := c.Entity + "." + c.Key
	switch c.Entity {
	case tracking.EntityAttribute:
		col, ok := runAttributes[c.Key]
		if !ok {
			return mloop.Errorf(mloop.EINVALID, "Invalid attribute key '%s' specified.", c.Key)
		}
		return b.WhereColumn(col, c.Op, c.Value, field)
	case tracking.EntityParam:
		return b.WhereKeyValue(runParams, "r.run_uuid", c.Key, c.Op, c.Value, field)
	case tracking.EntityTag:
		return b.WhereKeyValue(runTags, "r.run_uuid", c.Key, c.Op, c.Value, field)
	case tracking.EntityMetric:
		return b.WhereKeyValue(runMetrics, "r.run_uuid", c.Key, c.Op, c.Value, field)
	case tracking.EntityDataset:
		return whereDataset(b, c, field)
	}
	return mloop.Errorf(mloop.EINVALID, "Invalid search expression type '%s'", c.Entity)
}

// whereDataset adds a comparison on the datasets a run used: datasets.name
// and datasets.digest compare with the dataset, datasets.context with its
// mlflow.data.context input tag. A run matches when one of its datasets
// does; IS NULL matches runs with no such dataset (or context).
func whereDataset(b *selectBuilder, c tracking.Comparison, field string) error {
	var from, col string
	args := []any{inputDataset, inputRun}
	switch c.Key {
	case "name", "digest":
		from = "inputs i JOIN datasets d ON d.dataset_uuid = i.source_id"
		col = "d." + c.Key
	case "context":
		from = "inputs i JOIN input_tags t ON t.input_uuid = i.input_uuid AND t.name = ?"
		col = "t.value"
		args = []any{datasetContextTag, inputDataset, inputRun}
	default:
		return mloop.Errorf(mloop.EINVALID, "Invalid dataset key '%s' specified. Valid keys are 'name', 'digest' and 'context'.", c.Key)
	}
	subquery := "SELECT i.destination_id FROM " + from + " WHERE i.source_type = ? AND i.destination_type = ?"
	switch c.Op {
	case tracking.OpIsNull:
		b.Where("r.run_uuid NOT IN ("+subquery+")", args...)
		return nil
	case tracking.OpIsNotNull:
		b.Where("r.run_uuid IN ("+subquery+")", args...)
		return nil
	}
	cond, condArgs, err := compareSQL(b.dialect, col, false, c.Op, c.Value, field)
	if err != nil {
		return err
	}
	b.Where("r.run_uuid IN ("+subquery+" AND "+cond+")", append(args, condArgs...)...)
	return nil
}

// orderRuns adds the order_by terms of a run search and MLflow's tie-breakers.
func orderRuns(b *selectBuilder, order []tracking.OrderBy) error {
	seen := make(map[tracking.OrderBy]bool, len(order))
	byStartTime := false
	for _, o := range order {
		k := tracking.OrderBy{Entity: o.Entity, Key: o.Key}
		if seen[k] {
			return mloop.Errorf(mloop.EINVALID, "`order_by` contains duplicate fields: %s.%s", o.Entity, o.Key)
		}
		seen[k] = true
		switch o.Entity {
		case tracking.EntityAttribute:
			col, ok := runAttributes[o.Key]
			if !ok {
				return mloop.Errorf(mloop.EINVALID, "Invalid order_by attribute key '%s' specified.", o.Key)
			}
			byStartTime = byStartTime || o.Key == "start_time"
			b.OrderColumn(col, o.Asc, "")
		case tracking.EntityParam:
			b.OrderKeyValue(runParams, "r.run_uuid", o.Key, o.Asc)
		case tracking.EntityTag:
			b.OrderKeyValue(runTags, "r.run_uuid", o.Key, o.Asc)
		case tracking.EntityMetric:
			b.OrderKeyValue(runMetrics, "r.run_uuid", o.Key, o.Asc)
		default:
			return mloop.Errorf(mloop.EINVALID, "Invalid order_by entity type '%s'", o.Entity)
		}
	}
	if !byStartTime {
		b.OrderPlain(runAttributes["start_time"], false)
	}
	b.OrderPlain(runAttributes["run_id"], true)
	return nil
}

// SearchExperiments returns the experiments in q.ViewType that match every
// comparison of q.Filter (attributes name, creation_time and
// last_update_time; tags), ordered by q.OrderBy (name, experiment_id,
// creation_time, last_update_time) then experiment_id descending, or by
// default creation_time descending then experiment_id, as MLflow; it skips
// q.Offset and returns at most q.MaxResults (all when it is 0).
func (s *TrackingStore) SearchExperiments(ctx context.Context, q tracking.ExperimentQuery) ([]*tracking.Experiment, error) {
	stages, err := lifecycleStages(q.ViewType)
	if err != nil {
		return nil, err
	}
	b := newSelect(s.db.Dialect, experimentColumns, "experiments e")
	b.Where("e.lifecycle_stage IN ("+placeholders(len(stages))+")", stages...)
	for _, c := range q.Filter {
		field := c.Entity + "." + c.Key
		switch c.Entity {
		case tracking.EntityAttribute:
			col, ok := experimentAttributes[c.Key]
			if !ok {
				return nil, mloop.Errorf(mloop.EINVALID, "Invalid attribute key '%s' specified.", c.Key)
			}
			err = b.WhereColumn(col, c.Op, c.Value, field)
		case tracking.EntityTag:
			err = b.WhereKeyValue(experimentTags, "e.experiment_id", c.Key, c.Op, c.Value, field)
		default:
			err = mloop.Errorf(mloop.EINVALID, "Invalid token type: %s", c.Entity)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(q.OrderBy) == 0 {
		b.OrderPlain(experimentAttributes["creation_time"], false)
		b.OrderPlain(experimentID, true)
	} else {
		byID := false
		for _, o := range q.OrderBy {
			if o.Entity != tracking.EntityAttribute {
				return nil, mloop.Errorf(mloop.EINVALID, "Invalid order_by entity: %s", o.Entity)
			}
			col, ok := experimentAttributes[o.Key]
			if o.Key == "experiment_id" {
				col, ok, byID = experimentID, true, true
			}
			if !ok {
				return nil, mloop.Errorf(mloop.EINVALID, "Invalid order_by attribute key '%s' specified.", o.Key)
			}
			b.OrderPlain(col, o.Asc)
		}
		if !byID {
			b.OrderPlain(experimentID, false)
		}
	}
	b.Limit, b.Offset = q.MaxResults, q.Offset
	query, args := b.SQL()
	exps := []*tracking.Experiment{}
	err = s.db.Read(ctx, func(tx *Tx) error {
		if err := queryEach(ctx, tx, query, args, func(sc scanner) error {
			e, err := scanExperiment(sc)
			if err != nil {
				return err
			}
			exps = append(exps, e)
			return nil
		}); err != nil {
			return fmt.Errorf("search experiments: %w", err)
		}
		return s.loadExperimentTags(ctx, tx, exps)
	})
	if err != nil {
		return nil, err
	}
	return exps, nil
}
