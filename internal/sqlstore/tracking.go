package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// runNameTag is the tag that holds a run's name, kept equal to runs.name.
const runNameTag = "mlflow.runName"

// datasetContextTag is the input tag holding a dataset's context (train, eval, …).
const datasetContextTag = "mlflow.data.context"

// Source and destination types of rows in the inputs table, as MLflow's.
const (
	inputDataset     = "DATASET"
	inputRun         = "RUN"
	inputRunInput    = "RUN_INPUT"
	inputModelInput  = "MODEL_INPUT"
	inputRunOutput   = "RUN_OUTPUT"
	inputModelOutput = "MODEL_OUTPUT"
)

// TrackingStore implements tracking.Store on SQLite or PostgreSQL. It is safe
// for concurrent use. Errors follow MLflow's SQL store: codes and messages
// come from mlflow/store/tracking/sqlalchemy_store.py.
type TrackingStore struct {
	db    *DB
	stmts stmtCache
}

var _ tracking.Store = (*TrackingStore)(nil)

// NewTrackingStore returns a tracking store on db.
func NewTrackingStore(db *DB) *TrackingStore {
	return &TrackingStore{db: db}
}

// Close releases the statements the store prepared; the DB stays open.
func (s *TrackingStore) Close() error { return s.stmts.close() }

// errExperimentNotFound is MLflow's error for an unknown experiment id.
func errExperimentNotFound(id string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "No Experiment with id=%s exists", id)
}

// errRunNotFound is MLflow's error for an unknown run id.
func errRunNotFound(id string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "Run with id=%s not found", id)
}

// parseExperimentID parses an experiment id; ids are integers, as MLflow's.
func parseExperimentID(id string) (int64, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	return n, err == nil
}

// dedupeTags returns tags with one entry per key, the last value winning, in
// key order.
func dedupeTags(tags []tracking.Tag) []tracking.Tag {
	if len(tags) == 0 {
		return nil
	}
	last := make(map[string]string, len(tags))
	for _, t := range tags {
		last[t.Key] = t.Value
	}
	out := make([]tracking.Tag, 0, len(last))
	for k, v := range last {
		out = append(out, tracking.Tag{Key: k, Value: v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// upsertTags sets tags (deduplicated, last value wins) on the row owned by
// owner in table, whose columns are (ownerColumn, key, value).
func (s *TrackingStore) upsertTags(ctx context.Context, tx *Tx, table, ownerColumn string, owner any, tags []tracking.Tag) error {
	tags = dedupeTags(tags)
	if len(tags) == 0 {
		return nil
	}
	args := make([]any, 0, 3*len(tags))
	for _, t := range tags {
		args = append(args, owner, t.Key, t.Value)
	}
	prefix := fmt.Sprintf("INSERT INTO %s (%s, key, value)", table, ownerColumn)
	suffix := fmt.Sprintf("ON CONFLICT (%s, key) DO UPDATE SET value = excluded.value", ownerColumn)
	if err := s.stmts.insertValues(ctx, tx, prefix, suffix, 3, args); err != nil {
		return fmt.Errorf("set %s: %w", table, err)
	}
	return nil
}

// ---- Experiments ----

const experimentColumns = "e.experiment_id, e.name, e.artifact_location, e.lifecycle_stage, e.creation_time, e.last_update_time"

func scanExperiment(sc scanner) (*tracking.Experiment, error) {
	var e tracking.Experiment
	var id int64
	if err := sc.Scan(&id, &e.Name, &e.ArtifactLocation, &e.LifecycleStage, &e.CreationTime, &e.LastUpdateTime); err != nil {
		return nil, err
	}
	e.ID = strconv.FormatInt(id, 10)
	return &e, nil
}

// CreateExperiment inserts e, active, and returns its new id. A duplicate
// name is EEXISTS.
func (s *TrackingStore) CreateExperiment(ctx context.Context, e *tracking.Experiment, artifactLocation func(id string) string) (string, error) {
	var id int64
	err := s.db.Write(ctx, func(tx *Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO experiments (name, artifact_location, lifecycle_stage, creation_time, last_update_time)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING RETURNING experiment_id`,
			e.Name, e.ArtifactLocation, tracking.LifecycleActive, e.CreationTime, e.LastUpdateTime).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return mloop.Errorf(mloop.EEXISTS, "Experiment(name=%s) already exists.", e.Name)
		} else if err != nil {
			return fmt.Errorf("insert experiment: %w", err)
		}
		if e.ArtifactLocation == "" && artifactLocation != nil {
			loc := artifactLocation(strconv.FormatInt(id, 10))
			if _, err := tx.Exec(ctx, "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", loc, id); err != nil {
				return fmt.Errorf("set artifact location: %w", err)
			}
		}
		return s.upsertTags(ctx, tx, "experiment_tags", "experiment_id", id, e.Tags)
	})
	if err != nil {
		return "", err
	}
	return strconv.FormatInt(id, 10), nil
}

// GetExperiment returns the experiment with id, in any lifecycle stage.
func (s *TrackingStore) GetExperiment(ctx context.Context, id string) (*tracking.Experiment, error) {
	n, ok := parseExperimentID(id)
	if !ok {
		return nil, errExperimentNotFound(id)
	}
	return s.getExperiment(ctx, "e.experiment_id = ?", n, errExperimentNotFound(id))
}

// GetExperimentByName returns the experiment named name, in any lifecycle stage.
func (s *TrackingStore) GetExperimentByName(ctx context.Context, name string) (*tracking.Experiment, error) {
	return s.getExperiment(ctx, "e.name = ?", name,
		mloop.Errorf(mloop.ENOTFOUND, "Could not find experiment with name '%s'", name))
}

func (s *TrackingStore) getExperiment(ctx context.Context, cond string, arg any, notFound error) (*tracking.Experiment, error) {
	var e *tracking.Experiment
	err := s.db.Read(ctx, func(tx *Tx) error {
		var err error
		e, err = scanExperiment(tx.QueryRow(ctx, "SELECT "+experimentColumns+" FROM experiments e WHERE "+cond, arg))
		if errors.Is(err, sql.ErrNoRows) {
			return notFound
		} else if err != nil {
			return fmt.Errorf("get experiment: %w", err)
		}
		return s.loadExperimentTags(ctx, tx, []*tracking.Experiment{e})
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

// loadExperimentTags fills the tags of exps, in key order.
func (s *TrackingStore) loadExperimentTags(ctx context.Context, tx *Tx, exps []*tracking.Experiment) error {
	byID := make(map[int64]*tracking.Experiment, len(exps))
	ids := make([]any, 0, len(exps))
	for _, e := range exps {
		n, _ := parseExperimentID(e.ID)
		byID[n] = e
		ids = append(ids, n)
	}
	return forChunks(len(ids), inChunk, func(lo, hi int) error {
		err := queryPairs(ctx, tx, "SELECT experiment_id, key, value FROM experiment_tags WHERE experiment_id IN ("+
			placeholders(hi-lo)+") ORDER BY experiment_id, key", ids[lo:hi], func(id int64, key, value string) {
			byID[id].Tags = append(byID[id].Tags, tracking.Tag{Key: key, Value: value})
		})
		if err != nil {
			return fmt.Errorf("load experiment tags: %w", err)
		}
		return nil
	})
}

// lockExperiment reads the lifecycle stage of experiment id, locking its row
// on PostgreSQL; an unknown id is ENOTFOUND.
func (s *TrackingStore) lockExperiment(ctx context.Context, tx *Tx, id string) (int64, string, error) {
	n, ok := parseExperimentID(id)
	if !ok {
		return 0, "", errExperimentNotFound(id)
	}
	var stage string
	err := tx.QueryRow(ctx, "SELECT lifecycle_stage FROM experiments WHERE experiment_id = ?"+forUpdate(tx.Dialect()), n).Scan(&stage)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", errExperimentNotFound(id)
	} else if err != nil {
		return 0, "", fmt.Errorf("get experiment %s: %w", id, err)
	}
	return n, stage, nil
}

// errExperimentNotActive is MLflow's _check_experiment_is_active error.
func errExperimentNotActive(id, stage string) error {
	return mloop.Errorf(mloop.EINVALID, "The experiment %s must be in the 'active' state. Current state is %s.", id, stage)
}

// RenameExperiment renames an active experiment: a deleted one is ECONFLICT
// and a name already taken EEXISTS.
func (s *TrackingStore) RenameExperiment(ctx context.Context, id, newName string, now int64) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		n, stage, err := s.lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != tracking.LifecycleActive {
			return mloop.Errorf(mloop.ECONFLICT, "Cannot rename a non-active experiment.")
		}
		var other int64
		err = tx.QueryRow(ctx, "SELECT experiment_id FROM experiments WHERE name = ?", newName).Scan(&other)
		if err == nil && other != n {
			return mloop.Errorf(mloop.EEXISTS, "Experiment(name=%s) already exists.", newName)
		} else if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("rename experiment %s: %w", id, err)
		}
		_, err = tx.Exec(ctx, "UPDATE experiments SET name = ?, last_update_time = ? WHERE experiment_id = ?", newName, now, n)
		if isUniqueViolation(err) { // a concurrent rename or create took the name
			return mloop.Errorf(mloop.EEXISTS, "Experiment(name=%s) already exists.", newName)
		} else if err != nil {
			return fmt.Errorf("rename experiment %s: %w", id, err)
		}
		return nil
	})
}

// SetExperimentLifecycle deletes (stage deleted) an active experiment or
// restores (stage active) a deleted one, with its runs, as MLflow does;
// an experiment not in the opposite stage is ENOTFOUND, like MLflow's lookup
// by view type.
func (s *TrackingStore) SetExperimentLifecycle(ctx context.Context, id, stage string, now int64) error {
	if stage != tracking.LifecycleActive && stage != tracking.LifecycleDeleted {
		return mloop.Errorf(mloop.EINVALID, "Invalid lifecycle stage '%s'.", stage)
	}
	return s.db.Write(ctx, func(tx *Tx) error {
		n, current, err := s.lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if current == stage {
			return errExperimentNotFound(id)
		}
		if _, err := tx.Exec(ctx, "UPDATE experiments SET lifecycle_stage = ?, last_update_time = ? WHERE experiment_id = ?", stage, now, n); err != nil {
			return fmt.Errorf("set experiment %s %s: %w", id, stage, err)
		}
		var deletedTime any
		if stage == tracking.LifecycleDeleted {
			deletedTime = now
		}
		if _, err := tx.Exec(ctx, "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE experiment_id = ?", stage, deletedTime, n); err != nil {
			return fmt.Errorf("set runs of experiment %s %s: %w", id, stage, err)
		}
		return nil
	})
}

// SetExperimentTag sets (or replaces) a tag of an active experiment.
func (s *TrackingStore) SetExperimentTag(ctx context.Context, id string, tag tracking.Tag) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		n, stage, err := s.lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != tracking.LifecycleActive {
			return errExperimentNotActive(id, stage)
		}
		return s.upsertTags(ctx, tx, "experiment_tags", "experiment_id", n, []tracking.Tag{tag})
	})
}

// DeleteExperimentTag deletes a tag of an active experiment; a missing tag is ENOTFOUND.
func (s *TrackingStore) DeleteExperimentTag(ctx context.Context, id, key string) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		n, stage, err := s.lockExperiment(ctx, tx, id)
		if err != nil {
			return err
		}
		if stage != tracking.LifecycleActive {
			return errExperimentNotActive(id, stage)
		}
		res, err := tx.Exec(ctx, "DELETE FROM experiment_tags WHERE experiment_id = ? AND key = ?", n, key)
		notFound := mloop.Errorf(mloop.ENOTFOUND, "No tag with name: %s in experiment with id %s", key, id)
		if err := mustAffect(res, err, notFound); err != nil {
			return fmt.Errorf("delete tag %q of experiment %s: %w", key, id, err)
		}
		return nil
	})
}

// ---- Runs ----

const runColumns = "r.run_uuid, r.name, r.experiment_id, r.user_id, r.status, r.start_time, r.end_time, r.artifact_uri, r.lifecycle_stage"

func scanRunInfo(sc scanner) (*tracking.Run, error) {
	var r tracking.Run
	var exp int64
	var end sql.NullInt64
	i := &r.Info
	if err := sc.Scan(&i.RunID, &i.RunName, &exp, &i.UserID, &i.Status, &i.StartTime, &end, &i.ArtifactURI, &i.LifecycleStage); err != nil {
		return nil, err
	}
	i.ExperimentID = strconv.FormatInt(exp, 10)
	if end.Valid {
		i.EndTime = &end.Int64
	}
	return &r, nil
}

// lockRun reads the experiment and lifecycle stage of run id, locking its row
// on PostgreSQL so that writers of one run queue up; an unknown id is ENOTFOUND.
func (s *TrackingStore) lockRun(ctx context.Context, tx *Tx, id string) (experimentID int64, stage string, err error) {
	found := false
	err = s.stmts.queryEach(ctx, tx, "SELECT experiment_id, lifecycle_stage FROM runs WHERE run_uuid = ?"+forUpdate(tx.Dialect()),
		[]any{id}, func(sc scanner) error {
			found = true
			return sc.Scan(&experimentID, &stage)
		})
	if err != nil {
		return 0, "", fmt.Errorf("get run %s: %w", id, err)
	} else if !found {
		return 0, "", errRunNotFound(id)
	}
	return experimentID, stage, nil
}

// lockActiveRun is lockRun that also requires the run to be active, with
// MLflow's _check_run_is_active error (INVALID_PARAMETER_VALUE) otherwise.
func (s *TrackingStore) lockActiveRun(ctx context.Context, tx *Tx, id string) (int64, error) {
	exp, stage, err := s.lockRun(ctx, tx, id)
	if err != nil {
		return 0, err
	}
	if stage != tracking.LifecycleActive {
		return 0, mloop.Errorf(mloop.EINVALID, "The run %s must be in the 'active' state. Current state is %s.", id, stage)
	}
	return exp, nil
}

// CreateRun inserts r with its tags in an active experiment. An empty status
// becomes RUNNING and an empty artifact URI
// <experiment artifact location>/<run id>/artifacts; both are written back to
// r.Info, as is the lifecycle stage (active). The run name and the
// mlflow.runName tag are kept equal: either fills the other, and two
// different values are EINVALID, as MLflow's create_run.
func (s *TrackingStore) CreateRun(ctx context.Context, r *tracking.Run) error {
	info := &r.Info
	tags := dedupeTags(r.Tags)
	nameTag := -1
	for i, t := range tags {
		if t.Key == runNameTag {
			nameTag = i
		}
	}
	switch {
	case nameTag >= 0 && info.RunName != "" && tags[nameTag].Value != info.RunName:
		return mloop.Errorf(mloop.EINVALID, "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "+
			"different values (run_name='%s', mlflow.runName='%s').", info.RunName, tags[nameTag].Value)
	case nameTag >= 0:
		info.RunName = tags[nameTag].Value
	case info.RunName != "":
		tags = append(tags, tracking.Tag{Key: runNameTag, Value: info.RunName})
	}
	if info.Status == "" {
		info.Status = tracking.RunRunning
	}
	return s.db.Write(ctx, func(tx *Tx) error {
		n, ok := parseExperimentID(info.ExperimentID)
		if !ok {
			return errExperimentNotFound(info.ExperimentID)
		}
		var location, stage string
		err := tx.QueryRow(ctx, "SELECT artifact_location, lifecycle_stage FROM experiments WHERE experiment_id = ?", n).Scan(&location, &stage)
		if errors.Is(err, sql.ErrNoRows) {
			return errExperimentNotFound(info.ExperimentID)
		} else if err != nil {
			return fmt.Errorf("create run: get experiment: %w", err)
		}
		if stage != tracking.LifecycleActive {
			return errExperimentNotActive(info.ExperimentID, stage)
		}
		if info.ArtifactURI == "" {
			info.ArtifactURI = strings.TrimRight(location, "/") + "/" + info.RunID + "/artifacts"
		}
		info.LifecycleStage = tracking.LifecycleActive
		res, err := tx.Exec(ctx, `INSERT INTO runs (run_uuid, name, experiment_id, user_id, status, start_time, end_time, artifact_uri, lifecycle_stage)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_uuid) DO NOTHING`,
			info.RunID, info.RunName, n, info.UserID, info.Status, info.StartTime, info.EndTime, info.ArtifactURI, info.LifecycleStage)
		if err != nil {
			return fmt.Errorf("insert run: %w", err)
		}
		if k, err := rowsAffected(res, "insert run"); err != nil {
			return err
		} else if k == 0 {
			return mloop.Errorf(mloop.EEXISTS, "Run with id=%s already exists.", info.RunID)
		}
		return s.upsertTags(ctx, tx, "tags", "run_uuid", info.RunID, tags)
	})
}

// GetRun returns the run with id, in any lifecycle stage, with its latest
// metrics, params, tags (each in key order) and inputs and outputs.
func (s *TrackingStore) GetRun(ctx context.Context, id string) (*tracking.Run, error) {
	var r *tracking.Run
	err := s.db.Read(ctx, func(tx *Tx) error {
		var err error
		r, err = scanRunInfo(tx.QueryRow(ctx, "SELECT "+runColumns+" FROM runs r WHERE r.run_uuid = ?", id))
		if errors.Is(err, sql.ErrNoRows) {
			return errRunNotFound(id)
		} else if err != nil {
			return fmt.Errorf("get run %s: %w", id, err)
		}
		return s.loadRunData(ctx, tx, []*tracking.Run{r})
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}

// UpdateRun changes the status, end time and name of an active run. An empty
// RunName changes nothing, as in MLflow; a new name also sets the
// mlflow.runName tag.
func (s *TrackingStore) UpdateRun(ctx context.Context, id string, u tracking.RunUpdate) (*tracking.RunInfo, error) {
	var info *tracking.RunInfo
	err := s.db.Write(ctx, func(tx *Tx) error {
		if _, err := s.lockActiveRun(ctx, tx, id); err != nil {
			return err
		}
		set, args := []string{}, []any{}
		if u.Status != nil {
			set, args = append(set, "status = ?"), append(args, *u.Status)
		}
		if u.EndTime != nil {
			set, args = append(set, "end_time = ?"), append(args, *u.EndTime)
		}
		if u.RunName != nil && *u.RunName != "" {
			set, args = append(set, "name = ?"), append(args, *u.RunName)
			if err := s.upsertTags(ctx, tx, "tags", "run_uuid", id, []tracking.Tag{{Key: runNameTag, Value: *u.RunName}}); err != nil {
				return err
			}
		}
		if len(set) > 0 {
			if _, err := tx.Exec(ctx, "UPDATE runs SET "+strings.Join(set, ", ")+" WHERE run_uuid = ?", append(args, id)...); err != nil {
				return fmt.Errorf("update run %s: %w", id, err)
			}
		}
		r, err := scanRunInfo(tx.QueryRow(ctx, "SELECT "+runColumns+" FROM runs r WHERE r.run_uuid = ?", id))
		if err != nil {
			return fmt.Errorf("update run %s: %w", id, err)
		}
		info = &r.Info
		return nil
	})
	if err != nil {
		return nil, err
	}
	return info, nil
}

// SetRunLifecycle deletes (stage deleted, recording now as the deletion
// time) or restores (stage active) a run. Like MLflow it does not check the
// current stage.
func (s *TrackingStore) SetRunLifecycle(ctx context.Context, id, stage string, now int64) error {
	var deletedTime any
	switch stage {
	case tracking.LifecycleDeleted:
		deletedTime = now
	case tracking.LifecycleActive:
	default:
		return mloop.Errorf(mloop.EINVALID, "Invalid lifecycle stage '%s'.", stage)
	}
	return s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, "UPDATE runs SET lifecycle_stage = ?, deleted_time = ? WHERE run_uuid = ?", stage, deletedTime, id)
		if err := mustAffect(res, err, errRunNotFound(id)); err != nil {
			return fmt.Errorf("set run %s %s: %w", id, stage, err)
		}
		return nil
	})
}

// UpdateTag sets tag key of an active run to what update returns given its
// current value, reading and writing it while the run's row is locked (on
// SQLite the one writer connection serialises write transactions).
func (s *TrackingStore) UpdateTag(ctx context.Context, runID, key string, update func(old string, ok bool) (string, error)) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if _, err := s.lockActiveRun(ctx, tx, runID); err != nil {
			return err
		}
		var old string
		err := tx.QueryRow(ctx, "SELECT value FROM tags WHERE run_uuid = ? AND key = ?", runID, key).Scan(&old)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read tag %q of run %s: %w", key, runID, err)
		}
		value, err := update(old, err == nil)
		if err != nil {
			return err
		}
		return s.setRunTags(ctx, tx, runID, []tracking.Tag{{Key: key, Value: value}})
	})
}

// DeleteTag deletes a tag of an active run; a missing tag is ENOTFOUND.
func (s *TrackingStore) DeleteTag(ctx context.Context, runID, key string) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if _, err := s.lockActiveRun(ctx, tx, runID); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "DELETE FROM tags WHERE run_uuid = ? AND key = ?", runID, key)
		notFound := mloop.Errorf(mloop.ENOTFOUND, "No tag with name: %s in run with id %s", key, runID)
		if err := mustAffect(res, err, notFound); err != nil {
			return fmt.Errorf("delete tag %q of run %s: %w", key, runID, err)
		}
		return nil
	})
}

// LogInputs records the datasets and MLflow 3 models an active run used, as
// MLflow's log_inputs: datasets are deduplicated by (name, digest), the first
// occurrence winning; a dataset already known to the run's experiment is
// reused; a dataset the run already uses keeps its input tags; a model input
// logged again is a no-op.
func (s *TrackingStore) LogInputs(ctx context.Context, runID string, inputs []tracking.DatasetInput, models []tracking.ModelInput) error {
	type nameDigest struct{ name, digest string }
	seen := make(map[nameDigest]bool, len(inputs))
	unique := make([]tracking.DatasetInput, 0, len(inputs))
	for _, in := range inputs {
		k := nameDigest{in.Dataset.Name, in.Dataset.Digest}
		if !seen[k] {
			seen[k] = true
			unique = append(unique, in)
		}
	}
	return s.db.Write(ctx, func(tx *Tx) error {
		exp, err := s.lockActiveRun(ctx, tx, runID)
		if err != nil {
			return err
		}
		for _, in := range unique {
			if err := s.logDatasetInput(ctx, tx, exp, runID, in); err != nil {
				return err
			}
		}
		for _, m := range models {
			if _, err := insertInput(ctx, tx, newUUID(), inputRunInput, runID, inputModelInput, m.ModelID, 0); err != nil {
				return fmt.Errorf("log model input %s: %w", m.ModelID, err)
			}
		}
		return nil
	})
}

// logDatasetInput links one dataset to a run, creating the dataset in the
// run's experiment when it is new.
func (s *TrackingStore) logDatasetInput(ctx context.Context, tx *Tx, experimentID int64, runID string, in tracking.DatasetInput) error {
	d := in.Dataset
	datasetID := newUUID()
	if _, err := tx.Exec(ctx, `INSERT INTO datasets (dataset_uuid, experiment_id, name, digest, dataset_source_type, dataset_source, dataset_schema, dataset_profile)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (experiment_id, name, digest) DO NOTHING`,
		datasetID, experimentID, d.Name, d.Digest, d.SourceType, d.Source, d.Schema, d.Profile); err != nil {
		return fmt.Errorf("log dataset %s: %w", d.Name, err)
	}
	if err := tx.QueryRow(ctx, "SELECT dataset_uuid FROM datasets WHERE experiment_id = ? AND name = ? AND digest = ?",
		experimentID, d.Name, d.Digest).Scan(&datasetID); err != nil {
		return fmt.Errorf("log dataset %s: %w", d.Name, err)
	}
	inputID := newUUID()
	inserted, err := insertInput(ctx, tx, inputID, inputDataset, datasetID, inputRun, runID, 0)
	if err != nil {
		return fmt.Errorf("log dataset input %s: %w", d.Name, err)
	} else if !inserted {
		return nil // the run already uses the dataset: keep its tags
	}
	tags := dedupeTags(in.Tags)
	args := make([]any, 0, 3*len(tags))
	for _, t := range tags {
		args = append(args, inputID, t.Key, t.Value)
	}
	if err := s.stmts.insertValues(ctx, tx, "INSERT INTO input_tags (input_uuid, name, value)", "", 3, args); err != nil {
		return fmt.Errorf("log dataset input tags %s: %w", d.Name, err)
	}
	return nil
}

// insertInput inserts an edge into inputs unless the same edge exists, and
// reports whether it did.
func insertInput(ctx context.Context, tx *Tx, id, sourceType, sourceID, destinationType, destinationID string, step int64) (bool, error) {
	res, err := tx.Exec(ctx, `INSERT INTO inputs (input_uuid, source_type, source_id, destination_type, destination_id, step)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source_type, source_id, destination_type, destination_id) DO NOTHING`,
		id, sourceType, sourceID, destinationType, destinationID, step)
	if err != nil {
		return false, err
	}
	n, err := rowsAffected(res, "insert input")
	return n > 0, err
}

// LogOutputs records the MLflow 3 models an active run produced, each at a
// step; a model output logged again keeps its first step.
func (s *TrackingStore) LogOutputs(ctx context.Context, runID string, models []tracking.ModelOutput) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if _, err := s.lockActiveRun(ctx, tx, runID); err != nil {
			return err
		}
		for _, m := range models {
			if _, err := insertInput(ctx, tx, newUUID(), inputRunOutput, runID, inputModelOutput, m.ModelID, m.Step); err != nil {
				return fmt.Errorf("log model output %s: %w", m.ModelID, err)
			}
		}
		return nil
	})
}

// loadRunData fills the latest metrics, params, tags, dataset inputs and
// model inputs and outputs of runs with a few IN-list queries per chunk of
// runs, not one per run. Lists come back in key (or name) order.
func (s *TrackingStore) loadRunData(ctx context.Context, tx *Tx, runs []*tracking.Run) error {
	byID := make(map[string]*tracking.Run, len(runs))
	ids := make([]any, len(runs))
	for i, r := range runs {
		byID[r.Info.RunID] = r
		ids[i] = r.Info.RunID
	}
	return forChunks(len(ids), inChunk, func(lo, hi int) error {
		in := "(" + placeholders(hi-lo) + ")"
		chunk := ids[lo:hi]
		if err := queryPairs(ctx, tx, "SELECT run_uuid, key, value FROM params WHERE run_uuid IN "+in+" ORDER BY run_uuid, key", chunk,
			func(id, key, value string) {
				byID[id].Params = append(byID[id].Params, tracking.Param{Key: key, Value: value})
			}); err != nil {
			return fmt.Errorf("load params: %w", err)
		}
		if err := queryPairs(ctx, tx, "SELECT run_uuid, key, value FROM tags WHERE run_uuid IN "+in+" ORDER BY run_uuid, key", chunk,
			func(id, key, value string) {
				byID[id].Tags = append(byID[id].Tags, tracking.Tag{Key: key, Value: value})
			}); err != nil {
			return fmt.Errorf("load tags: %w", err)
		}
		if err := queryEach(ctx, tx, "SELECT run_uuid, key, value, is_nan, timestamp, step FROM latest_metrics WHERE run_uuid IN "+in+
			" ORDER BY run_uuid, key", chunk,
			func(sc scanner) error {
				var id string
				var m tracking.Metric
				var isNaN bool
				if err := sc.Scan(&id, &m.Key, &m.Value, &isNaN, &m.Timestamp, &m.Step); err != nil {
					return err
				}
				m.Value = metricValue(m.Value, isNaN)
				r := byID[id]
				r.Metrics = append(r.Metrics, m)
				return nil
			}); err != nil {
			return fmt.Errorf("load latest metrics: %w", err)
		}
		return s.loadRunInputs(ctx, tx, byID, in, chunk)
	})
}

// loadRunInputs fills the dataset inputs (with their tags) and the model
// inputs and outputs of the runs whose ids are chunk.
func (s *TrackingStore) loadRunInputs(ctx context.Context, tx *Tx, byID map[string]*tracking.Run, in string, chunk []any) error {
	var order []struct {
		run   *tracking.Run
		input string
	}
	inputs := make(map[string]tracking.DatasetInput)
	args := append([]any{inputDataset, inputRun}, chunk...)
	if err := queryEach(ctx, tx, `SELECT i.destination_id, i.input_uuid, d.name, d.digest, d.dataset_source_type, d.dataset_source,
			d.dataset_schema, d.dataset_profile
		FROM inputs i JOIN datasets d ON d.dataset_uuid = i.source_id
		WHERE i.source_type = ? AND i.destination_type = ? AND i.destination_id IN `+in+`
		ORDER BY i.destination_id, d.name, d.digest`, args,
		func(sc scanner) error {
			var runID, inputID string
			var d tracking.Dataset
			if err := sc.Scan(&runID, &inputID, &d.Name, &d.Digest, &d.SourceType, &d.Source, &d.Schema, &d.Profile); err != nil {
				return err
			}
			inputs[inputID] = tracking.DatasetInput{Dataset: d}
			order = append(order, struct {
				run   *tracking.Run
				input string
			}{byID[runID], inputID})
			return nil
		}); err != nil {
		return fmt.Errorf("load dataset inputs: %w", err)
	}
	if len(inputs) > 0 {
		if err := queryPairs(ctx, tx, `SELECT t.input_uuid, t.name, t.value FROM input_tags t JOIN inputs i ON i.input_uuid = t.input_uuid
			WHERE i.source_type = ? AND i.destination_type = ? AND i.destination_id IN `+in+` ORDER BY t.input_uuid, t.name`, args,
			func(inputID, key, value string) {
				in := inputs[inputID]
				in.Tags = append(in.Tags, tracking.Tag{Key: key, Value: value})
				inputs[inputID] = in
			}); err != nil {
			return fmt.Errorf("load dataset input tags: %w", err)
		}
	}
	for _, o := range order {
		o.run.Inputs = append(o.run.Inputs, inputs[o.input])
	}
	return queryEach(ctx, tx, `SELECT source_type, source_id, destination_id, step FROM inputs
		WHERE source_type IN (?, ?) AND source_id IN `+in+` ORDER BY source_id, destination_id`,
		append([]any{inputRunInput, inputRunOutput}, chunk...),
		func(sc scanner) error {
			var typ, runID, modelID string
			var step int64
			if err := sc.Scan(&typ, &runID, &modelID, &step); err != nil {
				return err
			}
			r := byID[runID]
			if typ == inputRunInput {
				r.ModelInputs = append(r.ModelInputs, tracking.ModelInput{ModelID: modelID})
			} else {
				r.ModelOutputs = append(r.ModelOutputs, tracking.ModelOutput{ModelID: modelID, Step: step})
			}
			return nil
		})
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

// queryEach runs q and calls fn for each row.
func queryEach(ctx context.Context, tx *Tx, q string, args []any, fn func(scanner) error) error {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return err
	}
	return scanEach(rows, fn)
}

// queryPairs runs q, whose rows are (owner, key, value) with key and value
// strings, and calls add with each row: how the tags and params of many
// owners (runs, experiments, models) are read in one query.
func queryPairs[K any](ctx context.Context, tx *Tx, q string, args []any, add func(owner K, key, value string)) error {
	return queryEach(ctx, tx, q, args, func(sc scanner) error {
		var (
			owner      K
			key, value string
		)
		if err := sc.Scan(&owner, &key, &value); err != nil {
			return err
		}
		add(owner, key, value)
		return nil
	})
}

// scanEach calls fn for each of rows and closes them.
func scanEach(rows *sql.Rows, fn func(scanner) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
