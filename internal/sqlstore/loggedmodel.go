package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// LoggedModelStore implements tracking.LoggedModelStore: MLflow 3 logged
// models in the tables logged_models, logged_model_tags, logged_model_params
// and logged_model_metrics (migration 0003). Empty optional strings are
// stored as NULL.
type LoggedModelStore struct {
	db *DB
}

var _ tracking.LoggedModelStore = (*LoggedModelStore)(nil)

// NewLoggedModelStore returns a logged-model store on db.
func NewLoggedModelStore(db *DB) *LoggedModelStore {
	return &LoggedModelStore{db: db}
}

// loggedModelColumns are the columns scanLoggedModel reads, in order.
const loggedModelColumns = `m.model_id, m.experiment_id, m.name, m.artifact_location,
	m.creation_timestamp_ms, m.last_updated_timestamp_ms, m.status, m.lifecycle_stage,
	m.model_type, m.source_run_id, m.status_message`

// CreateLoggedModel implements tracking.LoggedModelStore.
func (s *LoggedModelStore) CreateLoggedModel(ctx context.Context, m *tracking.LoggedModel) error {
	expID, ok := parseExperimentID(m.ExperimentID)
	if !ok {
		return errExperimentNotFound(m.ExperimentID)
	}
	return s.db.Write(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM experiments WHERE experiment_id = ?`, expID).Scan(&n); err != nil {
			return fmt.Errorf("find experiment %d: %w", expID, err)
		}
		if n == 0 {
			return errExperimentNotFound(m.ExperimentID)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO logged_models (model_id, experiment_id, name, artifact_location,
			creation_timestamp_ms, last_updated_timestamp_ms, status, lifecycle_stage, model_type, source_run_id, status_message)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.ModelID, expID, m.Name, m.ArtifactLocation, m.CreationTimestamp, m.LastUpdatedTimestamp,
			m.Status, m.LifecycleStage, textOrNull(m.ModelType), textOrNull(m.SourceRunID), textOrNull(m.StatusMessage)); err != nil {
			return fmt.Errorf("insert logged model %s: %w", m.ModelID, err)
		}
		if err := upsertLoggedModelTags(ctx, tx, m.ModelID, m.Tags); err != nil {
			return err
		}
		return insertLoggedModelParams(ctx, tx, m.ModelID, m.Params)
	})
}

// GetLoggedModel implements tracking.LoggedModelStore.
func (s *LoggedModelStore) GetLoggedModel(ctx context.Context, id string) (*tracking.LoggedModel, error) {
	var m *tracking.LoggedModel
	err := s.db.Read(ctx, func(tx *Tx) error {
		var err error
		m, err = getLoggedModel(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// FinalizeLoggedModel implements tracking.LoggedModelStore.
func (s *LoggedModelStore) FinalizeLoggedModel(ctx context.Context, id, status string, now int64) (*tracking.LoggedModel, error) {
	var m *tracking.LoggedModel
	err := s.db.Write(ctx, func(tx *Tx) error {
		if err := updateLoggedModel(ctx, tx, id, `status = ?, last_updated_timestamp_ms = ?`, status, now); err != nil {
			return err
		}
		var err error
		m, err = getLoggedModel(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// DeleteLoggedModel implements tracking.LoggedModelStore.
func (s *LoggedModelStore) DeleteLoggedModel(ctx context.Context, id string, now int64) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		return updateLoggedModel(ctx, tx, id, `lifecycle_stage = ?, last_updated_timestamp_ms = ?`, tracking.LifecycleDeleted, now)
	})
}

// SetLoggedModelTags implements tracking.LoggedModelStore.
func (s *LoggedModelStore) SetLoggedModelTags(ctx context.Context, id string, tags []tracking.Tag) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := lockLoggedModel(ctx, tx, id); err != nil {
			return err
		}
		return upsertLoggedModelTags(ctx, tx, id, tags)
	})
}

// DeleteLoggedModelTag implements tracking.LoggedModelStore.
func (s *LoggedModelStore) DeleteLoggedModelTag(ctx context.Context, id, key string) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := lockLoggedModel(ctx, tx, id); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM logged_model_tags WHERE model_id = ? AND tag_key = ?`, id, key)
		notFound := mloop.Errorf(mloop.ENOTFOUND, "No tag with key '%s' found for model with ID '%s'.", key, id)
		if err := mustAffect(res, err, notFound); err != nil {
			return fmt.Errorf("delete tag %q of logged model %s: %w", key, id, err)
		}
		return nil
	})
}

// UpdateLoggedModelTag implements tracking.LoggedModelStore.
func (s *LoggedModelStore) UpdateLoggedModelTag(ctx context.Context, id, key string, update func(old string, ok bool) (string, error)) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := lockLoggedModel(ctx, tx, id); err != nil {
			return err
		}
		var old string
		found := true
		err := tx.QueryRow(ctx, `SELECT tag_value FROM logged_model_tags WHERE model_id = ? AND tag_key = ?`, id, key).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			found = false
		} else if err != nil {
			return fmt.Errorf("read tag %q of logged model %s: %w", key, id, err)
		}
		value, err := update(old, found)
		if err != nil {
			return err
		}
		if found && value == old {
			return nil
		}
		return upsertLoggedModelTags(ctx, tx, id, []tracking.Tag{{Key: key, Value: value}})
	})
}

// LogLoggedModelParams implements tracking.LoggedModelStore.
func (s *LoggedModelStore) LogLoggedModelParams(ctx context.Context, id string, params []tracking.Param) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := lockLoggedModel(ctx, tx, id); err != nil {
			return err
		}
		return insertLoggedModelParams(ctx, tx, id, params)
	})
}

// LogLoggedModelMetrics implements tracking.LoggedModelStore.
func (s *LoggedModelStore) LogLoggedModelMetrics(ctx context.Context, metrics []tracking.ModelMetric) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		checked := map[string]bool{}
		for _, m := range metrics {
			if !checked["m:"+m.ModelID] {
				if err := lockLoggedModel(ctx, tx, m.ModelID); err != nil {
					return err
				}
				checked["m:"+m.ModelID] = true
			}
			if !checked["r:"+m.RunID] {
				var n int
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM runs WHERE run_uuid = ?`, m.RunID).Scan(&n); err != nil {
					return fmt.Errorf("find run %s: %w", m.RunID, err)
				}
				if n == 0 {
					return errRunNotFound(m.RunID)
				}
				checked["r:"+m.RunID] = true
			}
			value, isNaN := m.Value, math.IsNaN(m.Value)
			if isNaN {
				value = 0
			}
			if _, err := tx.Exec(ctx, `INSERT INTO logged_model_metrics (model_id, metric_name, metric_timestamp_ms,
				metric_step, metric_value, is_nan, run_id, dataset_name, dataset_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT (model_id, metric_name, metric_timestamp_ms, metric_step, run_id) DO NOTHING`,
				m.ModelID, m.Key, m.Timestamp, m.Step, value, isNaN, m.RunID,
				textOrNull(m.DatasetName), textOrNull(m.DatasetDigest)); err != nil {
				return fmt.Errorf("insert metric %q of logged model %s: %w", m.Key, m.ModelID, err)
			}
		}
		return nil
	})
}

// SearchLoggedModels implements tracking.LoggedModelStore.
func (s *LoggedModelStore) SearchLoggedModels(ctx context.Context, q tracking.LoggedModelQuery) ([]*tracking.LoggedModel, error) {
	query, args, err := searchLoggedModelsSQL(s.db.Dialect, q)
	if err != nil {
		return nil, err
	}
	var models []*tracking.LoggedModel
	err = s.db.Read(ctx, func(tx *Tx) error {
		models = nil
		err := queryEach(ctx, tx, query, args, func(rows scanner) error {
			m, err := scanLoggedModel(rows)
			if err != nil {
				return err
			}
			models = append(models, m)
			return nil
		})
		if err != nil {
			return fmt.Errorf("search logged models: %w", err)
		}
		return loadModelChildren(ctx, tx, models)
	})
	if err != nil {
		return nil, err
	}
	return models, nil
}

// loggedModelAttributes are the columns of the attributes a logged-model
// search filters and orders on, by canonical name.
var loggedModelAttributes = map[string]searchColumn{
	"name":                   {Expr: "m.name"},
	"model_id":               {Expr: "m.model_id"},
	"model_type":             {Expr: "m.model_type"},
	"status":                 {Expr: "m.status"},
	"source_run_id":          {Expr: "m.source_run_id"},
	"creation_timestamp":     {Expr: "m.creation_timestamp_ms", Numeric: true},
	"last_updated_timestamp": {Expr: "m.last_updated_timestamp_ms", Numeric: true},
}

// Key/value tables of logged models, for filters on params, tags and metrics.
var (
	loggedModelParams  = keyValueTable{Table: "logged_model_params", Owner: "model_id", Key: "param_key", Value: "param_value"}
	loggedModelTags    = keyValueTable{Table: "logged_model_tags", Owner: "model_id", Key: "tag_key", Value: "tag_value"}
	loggedModelMetrics = keyValueTable{Table: "logged_model_metrics", Owner: "model_id", Key: "metric_name", Value: "metric_value", Numeric: true, NaN: "is_nan"}
)

// searchLoggedModelsSQL builds the statement of a logged-model search, with
// MLflow's semantics: a metric comparison matches when any logged value of
// the metric (on one of q.Datasets, if any) satisfies it; metric ordering
// uses the latest value (by timestamp, then step) and puts models without
// one last; ties go to the newest model, then to the smallest id.
func searchLoggedModelsSQL(dialect string, q tracking.LoggedModelQuery) (string, []any, error) {
	b := newSelect(dialect, loggedModelColumns, "logged_models m")
	b.Where("m.lifecycle_stage = ?", tracking.LifecycleActive)
	ids := make([]any, len(q.ExperimentIDs))
	for i, id := range q.ExperimentIDs {
		n, ok := parseExperimentID(id)
		if !ok {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid value '%s' for parameter 'experiment_ids' supplied: experiment ids are integers.", id)
		}
		ids[i] = n
	}
	if len(ids) == 0 {
		b.Where("1 = 0")
	} else {
		b.Where("m.experiment_id IN ("+placeholders(len(ids))+")", ids...)
	}

	onDatasets, datasetArgs := datasetCondition("mm", q.Datasets)
	metricFilter := false
	for _, c := range q.Filter {
		var err error
		switch c.Entity {
		case tracking.EntityAttribute:
			col, ok := loggedModelAttributes[c.Key]
			if !ok {
				return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid attribute key '%s' specified.", c.Key)
			}
			err = b.WhereColumn(col, c.Op, c.Value, "attribute '"+c.Key+"'")
		case tracking.EntityParam:
			err = b.WhereKeyValue(loggedModelParams, "m.model_id", c.Key, c.Op, c.Value, "param '"+c.Key+"'")
		case tracking.EntityTag:
			err = b.WhereKeyValue(loggedModelTags, "m.model_id", c.Key, c.Op, c.Value, "tag '"+c.Key+"'")
		case tracking.EntityMetric:
			metricFilter = true
			if len(q.Datasets) == 0 {
				err = b.WhereKeyValue(loggedModelMetrics, "m.model_id", c.Key, c.Op, c.Value, "metric '"+c.Key+"'")
				break
			}
			// The value that matches must be on one of the datasets, so the
			// dataset condition joins the comparison in one subquery.
			var cond string
			var args []any
			cond, args, err = compareSQL(dialect, "mm.metric_value", true, c.Op, c.Value, "metric '"+c.Key+"'")
			if err != nil {
				break
			}
			// NaN matches != and nothing else, as in WhereKeyValue.
			if c.Op == tracking.OpNe {
				cond = "(mm.is_nan OR " + cond + ")"
			} else {
				cond = "NOT mm.is_nan AND " + cond
			}
			b.Where("m.model_id IN (SELECT mm.model_id FROM logged_model_metrics mm WHERE mm.metric_name = ? AND "+cond+" AND "+onDatasets+")",
				append(append([]any{c.Key}, args...), datasetArgs...)...)
		default:
			err = mloop.Errorf(mloop.EINVALID, "Invalid entity type '%s' in a logged model filter.", c.Entity)
		}
		if err != nil {
			return "", nil, err
		}
	}
	if len(q.Datasets) > 0 && !metricFilter {
		// Without metric comparisons, datasets select the models that have
		// any metric on one of them.
		b.Where("m.model_id IN (SELECT mm.model_id FROM logged_model_metrics mm WHERE "+onDatasets+")", datasetArgs...)
	}

	byCreation := false
	for _, o := range q.OrderBy {
		switch o.Entity {
		case tracking.EntityAttribute:
			col, ok := loggedModelAttributes[o.Key]
			if !ok {
				return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid order by field name: %s.", o.Key)
			}
			byCreation = byCreation || o.Key == "creation_timestamp"
			b.OrderColumn(col, o.Asc, "")
		case tracking.EntityMetric:
			a := b.alias("o")
			cond, args := "metric_name = ?", []any{o.Key}
			if o.DatasetName != "" {
				cond += " AND dataset_name = ?"
				args = append(args, o.DatasetName)
			}
			if o.DatasetDigest != "" {
				cond += " AND dataset_digest = ?"
				args = append(args, o.DatasetDigest)
			}
			b.Join(fmt.Sprintf(`LEFT JOIN (SELECT model_id, metric_value, is_nan, ROW_NUMBER() OVER (PARTITION BY model_id
				ORDER BY metric_timestamp_ms DESC, metric_step DESC, run_id DESC) AS rn
				FROM logged_model_metrics WHERE %s) %s ON %s.model_id = m.model_id AND %s.rn = 1`, cond, a, a, a), args...)
			b.OrderColumn(searchColumn{Expr: a + ".metric_value", Numeric: true}, o.Asc, a+".is_nan")
		default:
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid order by field name: %s.%s.", o.Entity, o.Key)
		}
	}
	if !byCreation {
		b.OrderPlain(loggedModelAttributes["creation_timestamp"], false)
	}
	b.OrderPlain(loggedModelAttributes["model_id"], true)
	b.Limit, b.Offset = q.MaxResults, q.Offset
	query, args := b.SQL()
	return query, args, nil
}

// datasetCondition returns the condition that a metric row of alias a was
// computed on one of datasets (matching the digest when one is given), and
// its arguments.
func datasetCondition(a string, datasets []tracking.DatasetRef) (string, []any) {
	var ors []string
	var args []any
	for _, d := range datasets {
		if d.Digest != "" {
			ors = append(ors, fmt.Sprintf("(%s.dataset_name = ? AND %s.dataset_digest = ?)", a, a))
			args = append(args, d.Name, d.Digest)
		} else {
			ors = append(ors, a+".dataset_name = ?")
			args = append(args, d.Name)
		}
	}
	if len(ors) == 0 {
		return "1 = 1", nil
	}
	return "(" + strings.Join(ors, " OR ") + ")", args
}

// getLoggedModel reads one model with its tags, params and metrics.
func getLoggedModel(ctx context.Context, tx *Tx, id string) (*tracking.LoggedModel, error) {
	q := "SELECT " + loggedModelColumns + " FROM logged_models m WHERE m.model_id = ?"
	m, err := scanLoggedModel(tx.QueryRow(ctx, q, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tracking.LoggedModelNotFound(id)
	} else if err != nil {
		return nil, err
	}
	if err := loadModelChildren(ctx, tx, []*tracking.LoggedModel{m}); err != nil {
		return nil, err
	}
	return m, nil
}

// lockLoggedModel checks that a model exists and locks its row until the
// transaction ends, so writers of one model's tags and params serialise.
func lockLoggedModel(ctx context.Context, tx *Tx, id string) error {
	var got string
	err := tx.QueryRow(ctx, "SELECT model_id FROM logged_models WHERE model_id = ?"+forUpdate(tx.Dialect()), id).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return tracking.LoggedModelNotFound(id)
	} else if err != nil {
		return fmt.Errorf("find logged model %s: %w", id, err)
	}
	return nil
}

// updateLoggedModel runs UPDATE logged_models SET <set> on one model.
func updateLoggedModel(ctx context.Context, tx *Tx, id, set string, args ...any) error {
	res, err := tx.Exec(ctx, "UPDATE logged_models SET "+set+" WHERE model_id = ?", append(args, id)...)
	if err := mustAffect(res, err, tracking.LoggedModelNotFound(id)); err != nil {
		return fmt.Errorf("update logged model %s: %w", id, err)
	}
	return nil
}

// scanLoggedModel reads the loggedModelColumns of a row.
func scanLoggedModel(row scanner) (*tracking.LoggedModel, error) {
	var (
		m                                     tracking.LoggedModel
		expID                                 int64
		modelType, sourceRunID, statusMessage sql.NullString
	)
	err := row.Scan(&m.ModelID, &expID, &m.Name, &m.ArtifactLocation, &m.CreationTimestamp,
		&m.LastUpdatedTimestamp, &m.Status, &m.LifecycleStage, &modelType, &sourceRunID, &statusMessage)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("read logged model: %w", err)
	}
	m.ExperimentID = strconv.FormatInt(expID, 10)
	m.ModelType, m.SourceRunID, m.StatusMessage = modelType.String, sourceRunID.String, statusMessage.String
	return &m, nil
}

// loadModelChildren fills in the tags, params and metrics of models.
func loadModelChildren(ctx context.Context, tx *Tx, models []*tracking.LoggedModel) error {
	byID := make(map[string]*tracking.LoggedModel, len(models))
	ids := make([]string, len(models))
	for i, m := range models {
		byID[m.ModelID] = m
		ids[i] = m.ModelID
	}
	return inBatches(ids, func(batch []string) error {
		in := "(" + placeholders(len(batch)) + ")"
		args := stringArgs(batch)
		err := queryPairs(ctx, tx, `SELECT model_id, tag_key, tag_value FROM logged_model_tags
			WHERE model_id IN `+in+` ORDER BY model_id, tag_key`, args, func(id, key, value string) {
			byID[id].Tags = append(byID[id].Tags, tracking.Tag{Key: key, Value: value})
		})
		if err != nil {
			return fmt.Errorf("read logged model tags: %w", err)
		}
		err = queryPairs(ctx, tx, `SELECT model_id, param_key, param_value FROM logged_model_params
			WHERE model_id IN `+in+` ORDER BY model_id, param_key`, args, func(id, key, value string) {
			byID[id].Params = append(byID[id].Params, tracking.Param{Key: key, Value: value})
		})
		if err != nil {
			return fmt.Errorf("read logged model params: %w", err)
		}
		err = queryEach(ctx, tx, `SELECT model_id, metric_name, metric_value, is_nan, metric_timestamp_ms, metric_step,
			run_id, dataset_name, dataset_digest FROM logged_model_metrics WHERE model_id IN `+in+`
			ORDER BY model_id, metric_timestamp_ms, metric_step, metric_name, run_id`, args, func(rows scanner) error {
			var (
				mm              tracking.ModelMetric
				isNaN           bool
				dataset, digest sql.NullString
			)
			if err := rows.Scan(&mm.ModelID, &mm.Key, &mm.Value, &isNaN, &mm.Timestamp, &mm.Step, &mm.RunID, &dataset, &digest); err != nil {
				return err
			}
			mm.Value = metricValue(mm.Value, isNaN)
			mm.DatasetName, mm.DatasetDigest = dataset.String, digest.String
			byID[mm.ModelID].Metrics = append(byID[mm.ModelID].Metrics, mm)
			return nil
		})
		if err != nil {
			return fmt.Errorf("read logged model metrics: %w", err)
		}
		return nil
	})
}

// upsertLoggedModelTags inserts tags of a logged model or replaces their values.
func upsertLoggedModelTags(ctx context.Context, tx *Tx, id string, tags []tracking.Tag) error {
	for _, t := range tags {
		if _, err := tx.Exec(ctx, `INSERT INTO logged_model_tags (model_id, tag_key, tag_value) VALUES (?, ?, ?)
			ON CONFLICT (model_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value`, id, t.Key, t.Value); err != nil {
			return fmt.Errorf("set tag %q of logged model %s: %w", t.Key, id, err)
		}
	}
	return nil
}

// insertLoggedModelParams inserts params of a logged model; a param already logged with
// the same value is left alone, with another value it is EINVALID.
func insertLoggedModelParams(ctx context.Context, tx *Tx, id string, params []tracking.Param) error {
	for _, p := range params {
		if _, err := tx.Exec(ctx, `INSERT INTO logged_model_params (model_id, param_key, param_value) VALUES (?, ?, ?)
			ON CONFLICT (model_id, param_key) DO NOTHING`, id, p.Key, p.Value); err != nil {
			return fmt.Errorf("log param %q of logged model %s: %w", p.Key, id, err)
		}
		var stored string
		if err := tx.QueryRow(ctx, `SELECT param_value FROM logged_model_params WHERE model_id = ? AND param_key = ?`,
			id, p.Key).Scan(&stored); err != nil {
			return fmt.Errorf("log param %q of logged model %s: %w", p.Key, id, err)
		}
		if stored != p.Value {
			return mloop.Errorf(mloop.EINVALID, "Changing param values is not allowed. Param with key='%s' was already logged with value='%s' for logged model ID='%s'. Attempted logging new value '%s'.",
				p.Key, stored, id, p.Value)
		}
	}
	return nil
}

// textOrNull stores "" as NULL.
func textOrNull(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}
