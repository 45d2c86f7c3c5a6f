// Package tracking holds mloop's experiment tracking domain: experiments, runs,
// their params, metrics, tags and dataset inputs, MLflow 3 logged models, and
// the search filter grammar MLflow clients speak.
//
// The Service applies MLflow's rules (validation limits, identifiers, default
// names, page tokens, metric downsampling) on top of a Store, which only
// persists. Store implementations live in sqlstore and pass the conformance
// suite in sqlstore's tests.
package tracking

import (
	"context"
)

// Lifecycle stages of experiments and runs.
const (
	LifecycleActive  = "active"
	LifecycleDeleted = "deleted"
)

// View types for searches, as MLflow's ViewType enum.
const (
	ViewActiveOnly  = "ACTIVE_ONLY"
	ViewDeletedOnly = "DELETED_ONLY"
	ViewAll         = "ALL"
)

// Run statuses, as MLflow's RunStatus enum.
const (
	RunRunning   = "RUNNING"
	RunScheduled = "SCHEDULED"
	RunFinished  = "FINISHED"
	RunFailed    = "FAILED"
	RunKilled    = "KILLED"
)

// DefaultExperimentID is the id of the experiment named "Default" that always exists.
const DefaultExperimentID = "0"

// Tag is a key/value pair attached to an experiment, run, dataset input or model.
type Tag struct {
	Key   string
	Value string
}

// Experiment is a named group of runs.
type Experiment struct {
	ID               string
	Name             string
	ArtifactLocation string
	LifecycleStage   string
	CreationTime     int64 // ms since the epoch
	LastUpdateTime   int64 // ms since the epoch
	Tags             []Tag
}

// RunInfo is the metadata of a run.
type RunInfo struct {
	RunID          string
	RunName        string
	ExperimentID   string
	UserID         string
	Status         string
	StartTime      int64
	EndTime        *int64
	ArtifactURI    string
	LifecycleStage string
}

// Metric is one point of a metric's history. RunID is set only where points of
// several runs are returned together (bulk history).
type Metric struct {
	Key       string
	Value     float64
	Timestamp int64
	Step      int64
	RunID     string
}

// Param is a run's parameter; once logged its value cannot change.
type Param struct {
	Key   string
	Value string
}

// Dataset describes a dataset a run used, as MLflow's Dataset message. Its
// Digest links it to an mloop dataset version (lineage).
type Dataset struct {
	Name       string
	Digest     string
	SourceType string
	Source     string
	Schema     string
	Profile    string
}

// DatasetInput is a dataset a run used, with tags such as mlflow.data.context.
type DatasetInput struct {
	Tags    []Tag
	Dataset Dataset
}

// ModelInput is an MLflow 3 logged model a run used.
type ModelInput struct {
	ModelID string
}

// ModelOutput is an MLflow 3 logged model a run produced, at a step.
type ModelOutput struct {
	ModelID string
	Step    int64
}

// Run is a run with its data: the latest value of each metric, its params, its
// tags and its inputs and outputs.
type Run struct {
	Info         RunInfo
	Metrics      []Metric
	Params       []Param
	Tags         []Tag
	Inputs       []DatasetInput
	ModelInputs  []ModelInput
	ModelOutputs []ModelOutput
}

// ExperimentQuery selects experiments for SearchExperiments.
type ExperimentQuery struct {
	Filter     Filter
	ViewType   string
	OrderBy    []OrderBy
	MaxResults int
	Offset     int
}

// RunQuery selects runs for SearchRuns.
type RunQuery struct {
	ExperimentIDs []string
	Filter        Filter
	ViewType      string
	OrderBy       []OrderBy
	MaxResults    int
	Offset        int
}

// RunUpdate holds the fields UpdateRun changes; nil fields stay as they are.
type RunUpdate struct {
	Status  *string
	EndTime *int64
	RunName *string
}

// Store persists tracking data. Methods return *mloop.Error values: ENOTFOUND
// for an unknown experiment or run, EEXISTS for a duplicate experiment name,
// EINVALID for a changed param value, and wrapped driver errors otherwise.
// Every method is one transaction: nothing is partially written.
type Store interface {
	// CreateExperiment inserts e and returns its new id. When e.ArtifactLocation
	// is empty, the store calls artifactLocation(id) to fill it in the same transaction.
	CreateExperiment(ctx context.Context, e *Experiment, artifactLocation func(id string) string) (string, error)
	// GetExperiment returns the experiment with id, in any lifecycle stage.
	GetExperiment(ctx context.Context, id string) (*Experiment, error)
	// GetExperimentByName returns the experiment named name, in any
	// lifecycle stage.
	GetExperimentByName(ctx context.Context, name string) (*Experiment, error)
	// SearchExperiments returns the experiments q selects, in q's order,
	// skipping q.Offset and returning at most q.MaxResults (all when 0).
	SearchExperiments(ctx context.Context, q ExperimentQuery) ([]*Experiment, error)
	// RenameExperiment renames an active experiment, recording now as its
	// last update time: a deleted one is ECONFLICT, a taken name EEXISTS.
	RenameExperiment(ctx context.Context, id, newName string, now int64) error
	// SetExperimentLifecycle deletes or restores an experiment; deleting it
	// also marks its runs deleted, restoring restores them, as MLflow does.
	SetExperimentLifecycle(ctx context.Context, id, stage string, now int64) error
	// SetExperimentTag sets (or replaces) a tag of an active experiment.
	SetExperimentTag(ctx context.Context, id string, tag Tag) error
	// DeleteExperimentTag deletes a tag of an active experiment; a missing
	// tag is ENOTFOUND.
	DeleteExperimentTag(ctx context.Context, id, key string) error

	// CreateRun inserts r (with its tags). The experiment must be active.
	CreateRun(ctx context.Context, r *Run) error
	// GetRun returns the run with id, in any lifecycle stage, with its
	// latest metrics, params, tags (each in key order), inputs and outputs.
	GetRun(ctx context.Context, id string) (*Run, error)
	// UpdateRun changes the status, end time and name of an active run and
	// returns its info; a new name also sets the mlflow.runName tag.
	UpdateRun(ctx context.Context, id string, u RunUpdate) (*RunInfo, error)
	// SetRunLifecycle deletes (recording now as the deletion time) or
	// restores a run, whatever its current stage.
	SetRunLifecycle(ctx context.Context, id, stage string, now int64) error
	// SearchRuns returns the runs q selects, with their data, in q's order
	// then by start time descending and run id, skipping q.Offset and
	// returning at most q.MaxResults (all when 0).
	SearchRuns(ctx context.Context, q RunQuery) ([]*Run, error)
	// LogBatch writes metrics, params and tags atomically. A param that
	// already exists with a different value is EINVALID and nothing is written.
	// The run must be active (EINVALID otherwise, MLflow's INVALID_PARAMETER_VALUE).
	LogBatch(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error
	// LogInputs records the datasets and MLflow 3 models an active run used;
	// logging one again is a no-op.
	LogInputs(ctx context.Context, runID string, inputs []DatasetInput, models []ModelInput) error
	// LogOutputs records the MLflow 3 models an active run produced; a model
	// output logged again keeps its first step.
	LogOutputs(ctx context.Context, runID string, models []ModelOutput) error
	// DeleteTag deletes a tag of an active run; a missing tag is ENOTFOUND.
	DeleteTag(ctx context.Context, runID, key string) error
	// UpdateTag sets tag key of an active run to the value update returns
	// given the tag's current value (ok is false when the run has no such
	// tag), in one transaction that holds the run's row, so concurrent
	// updates of one tag each see the other's result. When update fails,
	// its error is returned as it is and nothing is written.
	UpdateTag(ctx context.Context, runID, key string, update func(old string, ok bool) (string, error)) error
	// SearchDatasets returns up to maxResults distinct (experiment, dataset
	// name, digest, mlflow.data.context tag) summaries of the datasets used
	// by runs of the experiments experimentIDs, in any lifecycle stage.
	// Ids that name no experiment match nothing.
	SearchDatasets(ctx context.Context, experimentIDs []string, maxResults int) ([]DatasetSummary, error)

	// GetMetricHistory returns up to maxResults points of key in runID ordered
	// by (step, timestamp, value), skipping the first offset points.
	GetMetricHistory(ctx context.Context, runID, key string, offset, maxResults int) ([]Metric, error)
	// SampledMetricSteps returns the sorted distinct steps of key in runID within
	// [start, end], sampled with SampleSteps(…, maxResults): MLflow's rule.
	SampledMetricSteps(ctx context.Context, runID, key string, start, end int64, maxResults int) ([]int64, error)
	// MetricsAtSteps returns the points of key in runID whose step is in steps,
	// ordered by (step, timestamp), each with RunID set.
	MetricsAtSteps(ctx context.Context, runID, key string, steps []int64, maxResults int) ([]Metric, error)
	// MetricStepRange returns the smallest and largest step of key in runID;
	// ok is false when the run has no such metric.
	MetricStepRange(ctx context.Context, runID, key string) (min, max int64, ok bool, err error)
}
