package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// This file holds LogBatch and the metric history reads.
//
// A metric series (one key of one run) is a latest_metrics row with an
// integer series_id; its points live in metrics, clustered by (series_id,
// step, timestamp, value, is_nan). LogBatch writes a batch in one transaction
// with a handful of statements whatever its size: lock the run, read and
// check the params, read the series rows of the batch's keys, upsert them
// with their new latest point and step statistics (computed in Go, once per
// key), and insert all points with multi-row inserts that skip identical
// points on the primary key.

// storedPoint is a metric point as stored: a NaN value becomes 0 with isNaN
// set, as in MLflow's schema.
type storedPoint struct {
	step, timestamp int64
	value           float64
	isNaN           bool
}

func toStored(m tracking.Metric) storedPoint {
	if math.IsNaN(m.Value) {
		return storedPoint{step: m.Step, timestamp: m.Timestamp, isNaN: true}
	}
	return storedPoint{step: m.Step, timestamp: m.Timestamp, value: m.Value}
}

// newerThan reports whether p is strictly more recent than q by (step,
// timestamp, value), MLflow's rule for latest_metrics (NaN counts as 0).
func (p storedPoint) newerThan(q storedPoint) bool {
	if p.step != q.step {
		return p.step > q.step
	}
	if p.timestamp != q.timestamp {
		return p.timestamp > q.timestamp
	}
	return p.value > q.value
}

// comparePoints orders points by the primary key of metrics.
func comparePoints(a, b storedPoint) int {
	if c := cmp.Compare(a.step, b.step); c != 0 {
		return c
	}
	if c := cmp.Compare(a.timestamp, b.timestamp); c != 0 {
		return c
	}
	if c := cmp.Compare(a.value, b.value); c != 0 {
		return c
	}
	switch {
	case a.isNaN == b.isNaN:
		return 0
	case b.isNaN:
		return -1
	}
	return 1
}

// metricValue returns the value of a stored point: NaN when flagged.
func metricValue(v float64, isNaN bool) float64 {
	if isNaN {
		return math.NaN()
	}
	return v
}

// keyBatch is the part of a batch that goes to one metric key.
type keyBatch struct {
	key    string
	points []storedPoint // in primary-key order
	steps  []int64       // distinct steps, ascending
	best   storedPoint   // the newest point, the first of equals winning
}

// groupMetrics splits metrics by key, in key order.
func groupMetrics(metrics []tracking.Metric) []*keyBatch {
	if len(metrics) == 0 {
		return nil
	}
	byKey := make(map[string]*keyBatch)
	var batches []*keyBatch
	for _, m := range metrics {
		b := byKey[m.Key]
		p := toStored(m)
		if b == nil {
			b = &keyBatch{key: m.Key, best: p}
			byKey[m.Key] = b
			batches = append(batches, b)
		} else if p.newerThan(b.best) {
			b.best = p
		}
		b.points = append(b.points, p)
	}
	for _, b := range batches {
		if !slices.IsSortedFunc(b.points, comparePoints) {
			slices.SortFunc(b.points, comparePoints)
		}
		for i, p := range b.points {
			if i == 0 || p.step != b.points[i-1].step {
				b.steps = append(b.steps, p.step)
			}
		}
	}
	slices.SortFunc(batches, func(a, b *keyBatch) int { return cmp.Compare(a.key, b.key) })
	return batches
}

// series is the state of one metric series: its latest point and the
// statistics of its distinct steps (see tracking_steps.go).
type series struct {
	id        int64
	exists    bool
	latest    storedPoint
	minStep   int64
	count     int64         // distinct steps
	segments  []stepSegment // the steps as arithmetic runs; nil when irregular
	irregular bool          // the steps needed more than maxSegments runs
	// onePerStep is true while every step holds exactly one point. It is
	// kept conservatively: a point logged at a step that already has one
	// clears it, even when it is a duplicate that is not stored.
	onePerStep bool
}

// scanSeries scans the series columns that seriesSelect lists.
func scanSeries(sc scanner, st *series) error {
	var segs []byte
	if err := sc.Scan(&st.id, &st.latest.value, &st.latest.isNaN, &st.latest.timestamp, &st.latest.step,
		&st.minStep, &st.count, &segs, &st.onePerStep); err != nil {
		return err
	}
	var err error
	st.exists = true
	st.segments, err = decodeSegments(segs)
	st.irregular = st.segments == nil
	return err
}

// pointColumns are the columns pointScanner reads: a NaN value comes back
// as NULL, which saves reading is_nan as a column of its own.
const pointColumns = "step, timestamp, CASE WHEN is_nan THEN NULL ELSE value END"

// pointScanner scans history rows (pointColumns) into metrics. It scans into
// interface values, which database/sql assigns without reflection, and
// converts them itself: history reads move millions of rows.
type pointScanner struct {
	step, timestamp, value any
	dest                   [3]any
}

func (p *pointScanner) scan(sc scanner, m *tracking.Metric) error {
	if p.dest[0] == nil {
		p.dest = [3]any{&p.step, &p.timestamp, &p.value}
	}
	if err := sc.Scan(p.dest[:]...); err != nil {
		return err
	}
	var ok1, ok2 bool
	m.Step, ok1 = p.step.(int64)
	m.Timestamp, ok2 = p.timestamp.(int64)
	switch v := p.value.(type) {
	case float64:
		m.Value = v
	case nil:
		m.Value = math.NaN()
	default:
		ok1 = false
	}
	if !ok1 || !ok2 {
		return fmt.Errorf("unexpected history row types %T, %T, %T", p.step, p.timestamp, p.value)
	}
	return nil
}

// keyScanner scans a leading key column into key and the other columns into
// the destinations it is given.
type keyScanner struct {
	sc  scanner
	key *string
}

func (k keyScanner) Scan(dest ...any) error { return k.sc.Scan(append([]any{k.key}, dest...)...) }

// seriesSelect lists the columns scanSeries reads.
const seriesSelect = "series_id, value, is_nan, timestamp, step, min_step, step_count, step_segments, one_point_per_step"

// addSteps folds new distinct steps (ascending, none already present) into
// the statistics.
func (s *series) addSteps(steps []int64) {
	if len(steps) == 0 {
		return
	}
	if s.count == 0 || steps[0] < s.minStep {
		s.minStep = steps[0]
	}
	s.count += int64(len(steps))
	if s.irregular {
		return
	}
	s.segments = mergeSegments(s.segments, steps)
	if len(s.segments) > maxSegments {
		s.segments, s.irregular = nil, true
	}
}

// errParamChanged is MLflow's error for logging a param again with another value.
func errParamChanged(runID, key, old, new string) error {
	return mloop.Errorf(mloop.EINVALID, "Changing param values is not allowed. Param with key='%s' was already logged "+
		"with value='%s' for run ID='%s'. Attempted logging new value '%s'.", key, old, runID, new)
}

// LogBatch writes metrics, params and tags of an active run in one
// transaction. A param logged again with its value is a no-op and with
// another value EINVALID, with nothing of the batch written. Identical
// metric points are stored once; each key's latest point is the one with the
// largest (step, timestamp, value). Tags are upserted, the last of equal
// keys winning; a non-empty mlflow.runName tag also renames the run and an
// empty one is ignored, as in MLflow.
func (s *TrackingStore) LogBatch(ctx context.Context, runID string, metrics []tracking.Metric, params []tracking.Param, tags []tracking.Tag) error {
	batches := groupMetrics(metrics)
	if s.db.Dialect == SQLite {
		if err := s.stmts.prepare(ctx, s.db.w); err != nil {
			return fmt.Errorf("log batch: %w", err)
		}
	}
	return s.db.Write(ctx, func(tx *Tx) error {
		if _, err := s.lockActiveRun(ctx, tx, runID); err != nil {
			return err
		}
		if err := s.logParams(ctx, tx, runID, params); err != nil {
			return err
		}
		if err := s.logMetrics(ctx, tx, runID, batches); err != nil {
			return err
		}
		return s.setRunTags(ctx, tx, runID, tags)
	})
}

// logParams checks params against each other and the stored ones, then
// inserts the new ones.
func (s *TrackingStore) logParams(ctx context.Context, tx *Tx, runID string, params []tracking.Param) error {
	if len(params) == 0 {
		return nil
	}
	values := make(map[string]string, len(params))
	var keys []any
	for _, p := range params {
		if old, ok := values[p.Key]; ok {
			if old != p.Value {
				return errParamChanged(runID, p.Key, old, p.Value)
			}
			continue
		}
		values[p.Key] = p.Value
		keys = append(keys, p.Key)
	}
	stored := make(map[string]string)
	err := forChunks(len(keys), inChunk, func(lo, hi int) error {
		in := padIn(append([]any{}, keys[lo:hi]...))
		return s.stmts.queryEach(ctx, tx, "SELECT key, value FROM params WHERE run_uuid = ? AND key IN ("+placeholders(len(in))+")",
			append([]any{runID}, in...), func(sc scanner) error {
				var k, v string
				if err := sc.Scan(&k, &v); err != nil {
					return err
				}
				stored[k] = v
				return nil
			})
	})
	if err != nil {
		return fmt.Errorf("log params: %w", err)
	}
	args := make([]any, 0, 3*len(keys))
	for _, k := range keys {
		key := k.(string)
		if old, ok := stored[key]; ok {
			if old != values[key] {
				return errParamChanged(runID, key, old, values[key])
			}
			continue
		}
		args = append(args, runID, key, values[key])
	}
	if err := s.stmts.insertValues(ctx, tx, "INSERT INTO params (run_uuid, key, value)", "ON CONFLICT (run_uuid, key) DO NOTHING", 3, args); err != nil {
		return fmt.Errorf("log params: %w", err)
	}
	return nil
}

// setRunTags upserts run tags; mlflow.runName also renames the run.
func (s *TrackingStore) setRunTags(ctx context.Context, tx *Tx, runID string, tags []tracking.Tag) error {
	tags = dedupeTags(tags)
	for i := 0; i < len(tags); i++ {
		if tags[i].Key != runNameTag {
			continue
		}
		if tags[i].Value == "" { // MLflow ignores an empty run name
			tags = slices.Delete(tags, i, i+1)
			break
		}
		if _, err := tx.Exec(ctx, "UPDATE runs SET name = ? WHERE run_uuid = ?", tags[i].Value, runID); err != nil {
			return fmt.Errorf("rename run %s: %w", runID, err)
		}
	}
	return s.upsertTags(ctx, tx, "tags", "run_uuid", runID, tags)
}

// logMetrics writes the points of batches and updates their series rows.
func (s *TrackingStore) logMetrics(ctx context.Context, tx *Tx, runID string, batches []*keyBatch) error {
	if len(batches) == 0 {
		return nil
	}
	states, err := s.loadSeries(ctx, tx, runID, batches)
	if err != nil {
		return err
	}
	if err := newSeriesIDs(ctx, tx, states); err != nil {
		return err
	}
	// Per key: which steps are new, the new latest point, the new statistics.
	var upserts []any
	for i, b := range batches {
		st := states[i]
		newSteps, err := s.newSteps(ctx, tx, st, b.steps)
		if err != nil {
			return err
		}
		// The batch keeps one point per step when each of its points is
		// alone at a step the series did not have.
		onePerStep := (st.onePerStep || !st.exists) && len(b.points) == len(b.steps) && len(newSteps) == len(b.steps)
		changed := !st.exists || len(newSteps) > 0 || onePerStep != st.onePerStep
		st.onePerStep = onePerStep
		if !st.exists || b.best.newerThan(st.latest) {
			st.latest = b.best
			changed = true
		}
		st.addSteps(newSteps)
		if changed {
			upserts = append(upserts, runID, b.key, st.id, st.latest.value, st.latest.isNaN, st.latest.timestamp, st.latest.step,
				st.minStep, st.count, encodeSegments(st.segments), st.onePerStep)
		}
	}
	const prefix = `INSERT INTO latest_metrics (run_uuid, key, series_id, value, is_nan, timestamp, step, min_step, step_count,
		step_segments, one_point_per_step)`
	const suffix = `ON CONFLICT (run_uuid, key) DO UPDATE SET value = excluded.value, is_nan = excluded.is_nan,
		timestamp = excluded.timestamp, step = excluded.step, min_step = excluded.min_step,
		step_count = excluded.step_count, step_segments = excluded.step_segments,
		one_point_per_step = excluded.one_point_per_step`
	if err := s.stmts.insertValues(ctx, tx, prefix, suffix, 11, upserts); err != nil {
		return fmt.Errorf("log metrics: write series: %w", err)
	}
	return s.insertPoints(ctx, tx, batches, states)
}

// loadSeries reads the series rows of the batches' keys; keys without one
// get a zero series with exists false.
func (s *TrackingStore) loadSeries(ctx context.Context, tx *Tx, runID string, batches []*keyBatch) ([]*series, error) {
	states := make([]*series, len(batches))
	index := make(map[string]int, len(batches))
	keys := make([]any, len(batches))
	for i, b := range batches {
		states[i] = &series{}
		index[b.key] = i
		keys[i] = b.key
	}
	err := forChunks(len(keys), inChunk, func(lo, hi int) error {
		in := padIn(append([]any{}, keys[lo:hi]...))
		return s.stmts.queryEach(ctx, tx, "SELECT key, "+seriesSelect+" FROM latest_metrics WHERE run_uuid = ? AND key IN ("+
			placeholders(len(in))+")", append([]any{runID}, in...),
			func(sc scanner) error {
				var key string
				var st series
				if err := scanSeries(keyScanner{sc, &key}, &st); err != nil {
					return fmt.Errorf("metric %s: %w", key, err)
				}
				*states[index[key]] = st
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("log metrics: read series: %w", err)
	}
	return states, nil
}

// newSteps returns the steps (ascending) that st does not have yet: from its
// segments, or for an irregular series by looking up the steps within
// [minStep, latest step] in the history.
func (s *TrackingStore) newSteps(ctx context.Context, tx *Tx, st *series, steps []int64) ([]int64, error) {
	if !st.exists {
		return steps, nil
	}
	if !st.irregular {
		out := make([]int64, 0, len(steps))
		for _, step := range steps {
			if !segmentsContain(st.segments, step) {
				out = append(out, step)
			}
		}
		return out, nil
	}
	var inside []any
	for _, step := range steps {
		if step >= st.minStep && step <= st.latest.step {
			inside = append(inside, step)
		}
	}
	if len(inside) == 0 {
		return steps, nil
	}
	present := make(map[int64]bool, len(inside))
	err := forChunks(len(inside), inChunk, func(lo, hi int) error {
		return queryEach(ctx, tx, "SELECT DISTINCT step FROM metrics WHERE series_id = ? AND step IN ("+placeholders(hi-lo)+")",
			append([]any{st.id}, inside[lo:hi]...), func(sc scanner) error {
				var step int64
				if err := sc.Scan(&step); err != nil {
					return err
				}
				present[step] = true
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("log metrics: read steps: %w", err)
	}
	out := make([]int64, 0, len(steps)-len(present))
	for _, step := range steps {
		if !present[step] {
			out = append(out, step)
		}
	}
	return out, nil
}

// newSeriesIDs gives the series that do not exist yet their ids: from the
// identity sequence of latest_metrics on PostgreSQL, after the largest id on
// SQLite (whose single writer makes that safe).
func newSeriesIDs(ctx context.Context, tx *Tx, states []*series) error {
	var fresh []*series
	for _, st := range states {
		if !st.exists {
			fresh = append(fresh, st)
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	if tx.Dialect() == Postgres {
		i := 0
		err := queryEach(ctx, tx, "SELECT nextval(pg_get_serial_sequence('latest_metrics', 'series_id')) FROM generate_series(1, ?)",
			[]any{len(fresh)}, func(sc scanner) error {
				if i == len(fresh) {
					return errors.New("too many ids")
				}
				i++
				return sc.Scan(&fresh[i-1].id)
			})
		if err == nil && i < len(fresh) {
			err = errors.New("too few ids")
		}
		if err != nil {
			return fmt.Errorf("log metrics: new series ids: %w", err)
		}
		return nil
	}
	var last int64
	if err := tx.QueryRow(ctx, "SELECT COALESCE(max(series_id), 0) FROM latest_metrics").Scan(&last); err != nil {
		return fmt.Errorf("log metrics: new series ids: %w", err)
	}
	for i, st := range fresh {
		st.id = last + 1 + int64(i)
	}
	return nil
}

// insertPoints inserts every point of batches, skipping identical points.
// PostgreSQL takes all of them in one statement through unnest of arrays;
// SQLite takes multi-row inserts through statements prepared once.
func (s *TrackingStore) insertPoints(ctx context.Context, tx *Tx, batches []*keyBatch, states []*series) error {
	n := 0
	for _, b := range batches {
		n += len(b.points)
	}
	if tx.Dialect() == Postgres {
		ids, steps, times := make([]int64, 0, n), make([]int64, 0, n), make([]int64, 0, n)
		values, nans := make([]float64, 0, n), make([]bool, 0, n)
		for i, b := range batches {
			for _, p := range b.points {
				ids, steps, times = append(ids, states[i].id), append(steps, p.step), append(times, p.timestamp)
				values, nans = append(values, p.value), append(nans, p.isNaN)
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO metrics (series_id, step, timestamp, value, is_nan)
			SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::bigint[], ?::double precision[], ?::boolean[])
			ON CONFLICT DO NOTHING`, ids, steps, times, values, nans); err != nil {
			return fmt.Errorf("log metrics: insert points: %w", err)
		}
		return nil
	}
	args := make([]any, 0, 5*n)
	for i, b := range batches {
		id := states[i].id
		for _, p := range b.points {
			args = append(args, id, p.step, p.timestamp, p.value, p.isNaN)
		}
	}
	if err := s.stmts.insertValues(ctx, tx, "INSERT INTO metrics (series_id, step, timestamp, value, is_nan)",
		"ON CONFLICT DO NOTHING", 5, args); err != nil {
		return fmt.Errorf("log metrics: insert points: %w", err)
	}
	return nil
}

// readSeries returns the series of key in run runID; ok is false when the
// run has no such metric, and an unknown run is ENOTFOUND.
func readSeries(ctx context.Context, tx *Tx, runID, key string) (st series, ok bool, err error) {
	found := false
	err = queryEach(ctx, tx, "SELECT "+seriesSelect+" FROM latest_metrics WHERE run_uuid = ? AND key = ?", []any{runID, key},
		func(sc scanner) error {
			found = true
			return scanSeries(sc, &st)
		})
	if err != nil {
		return st, false, fmt.Errorf("read metric %s of run %s: %w", key, runID, err)
	} else if found {
		return st, true, nil
	}
	var one int
	err = tx.QueryRow(ctx, "SELECT 1 FROM runs WHERE run_uuid = ?", runID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, errRunNotFound(runID)
	} else if err != nil {
		return st, false, fmt.Errorf("read run %s: %w", runID, err)
	}
	return st, false, nil
}

// GetMetricHistory returns up to maxResults points (all when maxResults <= 0)
// of key in runID ordered by (step, timestamp, value), skipping the first
// offset. A key the run never logged has no points; an unknown run is
// ENOTFOUND.
func (s *TrackingStore) GetMetricHistory(ctx context.Context, runID, key string, offset, maxResults int) ([]tracking.Metric, error) {
	out := []tracking.Metric{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		st, ok, err := readSeries(ctx, tx, runID, key)
		if err != nil || !ok {
			return err
		}
		limit := int64(maxResults)
		if maxResults <= 0 {
			limit = -1
			if tx.Dialect() == Postgres {
				limit = math.MaxInt64
			}
		}
		offset = max(offset, 0)
		// Usually one point per step: size the result once.
		out = make([]tracking.Metric, 0, min(uint64(limit), uint64(st.count)+16, 1<<22))
		// When every step holds one point, the point at offset is the step of
		// that rank: start there instead of skipping offset rows, so reading
		// a long history page by page costs each page, not everything before.
		from := int64(math.MinInt64)
		if offset > 0 && st.onePerStep && !st.irregular {
			if int64(offset) >= st.count {
				return nil
			}
			from, offset = stepAtRank(st.segments, uint64(offset)), 0
		}
		rows, err := tx.Query(ctx, `SELECT `+pointColumns+` FROM metrics WHERE series_id = ? AND step >= ?
			ORDER BY step, timestamp, value, is_nan LIMIT ? OFFSET ?`, st.id, from, limit, offset)
		if err != nil {
			return fmt.Errorf("get metric history: %w", err)
		}
		defer rows.Close()
		var p pointScanner
		for rows.Next() {
			m := tracking.Metric{Key: key}
			if err := p.scan(rows, &m); err != nil {
				return fmt.Errorf("get metric history: %w", err)
			}
			out = append(out, m)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// MetricStepRange returns the smallest and largest step of key in runID; ok
// is false when the run has no such metric. An unknown run is ENOTFOUND.
func (s *TrackingStore) MetricStepRange(ctx context.Context, runID, key string) (lo, hi int64, ok bool, err error) {
	err = s.db.Read(ctx, func(tx *Tx) error {
		st, found, err := readSeries(ctx, tx, runID, key)
		lo, hi, ok = st.minStep, st.latest.step, found
		return err
	})
	if err != nil || !ok {
		return 0, 0, false, err
	}
	return lo, hi, true, nil
}

// MetricsAtSteps returns up to maxResults points (all when maxResults <= 0)
// of key in runID whose step is in steps, ordered by (step, timestamp,
// value), each with RunID set. An unknown run is ENOTFOUND.
func (s *TrackingStore) MetricsAtSteps(ctx context.Context, runID, key string, steps []int64, maxResults int) ([]tracking.Metric, error) {
	want := slices.Clone(steps)
	slices.Sort(want)
	want = slices.Compact(want)
	out := []tracking.Metric{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		st, ok, err := readSeries(ctx, tx, runID, key)
		if err != nil || !ok {
			return err
		}
		// Chunks of ascending steps come back in order one after the other.
		return forChunks(len(want), inChunk, func(lo, hi int) error {
			if maxResults > 0 && len(out) >= maxResults {
				return nil
			}
			var p pointScanner
			args := make([]any, 0, hi-lo+1)
			args = append(args, st.id)
			for _, step := range want[lo:hi] {
				args = append(args, step)
			}
			return queryEach(ctx, tx, `SELECT `+pointColumns+` FROM metrics WHERE series_id = ? AND step IN (`+
				placeholders(hi-lo)+`) ORDER BY step, timestamp, value, is_nan`, args, func(sc scanner) error {
				if maxResults > 0 && len(out) >= maxResults {
					return nil
				}
				m := tracking.Metric{Key: key, RunID: runID}
				if err := p.scan(sc, &m); err != nil {
					return err
				}
				out = append(out, m)
				return nil
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("metrics at steps: %w", err)
	}
	return out, nil
}

// SampledMetricSteps returns the distinct steps of key in runID within
// [start, end], ascending, sampled by MLflow's rule
// (handlers._get_sampled_steps_from_steps): all of them when there are at
// most maxResults, else the steps at ranks int(i * n/maxResults) for i in
// [0, maxResults) plus the last one. It never reads the steps into Go: a
// series whose steps form few arithmetic runs (0, 1, 2, …; every k-th step;
// and so on) is sampled from its step segments alone, any other one with
// index probes in SQL. An unknown run is ENOTFOUND.
func (s *TrackingStore) SampledMetricSteps(ctx context.Context, runID, key string, start, end int64, maxResults int) ([]int64, error) {
	if maxResults <= 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "max_results must be positive, got %d.", maxResults)
	}
	out := []int64{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		st, ok, err := readSeries(ctx, tx, runID, key)
		if err != nil || !ok {
			return err
		}
		lo, hi := max(start, st.minStep), min(end, st.latest.step)
		if lo > hi {
			return nil
		}
		if !st.irregular {
			out = sampleSegments(st.segments, lo, hi, maxResults)
			return nil
		}
		out, err = sampleIrregular(ctx, tx, st, lo, hi, maxResults)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// sampleIrregular samples the distinct steps of an irregular series within
// [lo, hi] (inside its step range) in SQL: it counts them (or knows the count
// when the range covers the series), then finds each picked rank with one
// index probe that skips from the previous pick inside SQLite or PostgreSQL.
func sampleIrregular(ctx context.Context, tx *Tx, st series, lo, hi int64, maxResults int) ([]int64, error) {
	n := st.count
	if lo > st.minStep || hi < st.latest.step {
		if err := tx.QueryRow(ctx, "SELECT count(DISTINCT step) FROM metrics WHERE series_id = ? AND step BETWEEN ? AND ?",
			st.id, lo, hi).Scan(&n); err != nil {
			return nil, fmt.Errorf("sample steps: count: %w", err)
		}
	}
	out := make([]int64, 0, min(n, int64(maxResults)+1))
	if n <= int64(maxResults) {
		err := queryEach(ctx, tx, "SELECT DISTINCT step FROM metrics WHERE series_id = ? AND step BETWEEN ? AND ? ORDER BY step",
			[]any{st.id, lo, hi}, func(sc scanner) error {
				var step int64
				err := sc.Scan(&step)
				out = append(out, step)
				return err
			})
		if err != nil {
			return nil, fmt.Errorf("sample steps: %w", err)
		}
		return out, nil
	}
	probe, err := tx.Tx.PrepareContext(ctx, tx.db.Rebind(`SELECT DISTINCT step FROM metrics
		WHERE series_id = ? AND step >= ? AND step <= ? ORDER BY step LIMIT 1 OFFSET ?`))
	if err != nil {
		return nil, fmt.Errorf("sample steps: %w", err)
	}
	defer probe.Close()
	from, fromRank := lo, int64(0)
	for _, r := range sampleRanks(n, maxResults) {
		if err := probe.QueryRowContext(ctx, st.id, from, hi, r-fromRank).Scan(&from); err != nil {
			return nil, fmt.Errorf("sample steps: step at rank %d: %w", r, err)
		}
		fromRank = r
		out = append(out, from)
	}
	return out, nil
}
