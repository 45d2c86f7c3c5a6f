package pipeline

import (
	"context"
	"time"
)

// RunStatus is the state of a pipeline run.
type RunStatus string

// Pipeline run states. A run is created Queued, claimed by one controller
// (Running), and ends Succeeded, Failed or Canceled.
const (
	RunQueued    RunStatus = "queued"
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	RunFailed    RunStatus = "failed"
	RunCanceled  RunStatus = "canceled"
)

// Done reports whether the status is final.
func (s RunStatus) Done() bool { return s == RunSucceeded || s == RunFailed || s == RunCanceled }

// StepStatus is the state of one step of a pipeline run.
type StepStatus string

// Step states. Pending steps wait for their dependencies; Running ones have a
// started attempt; Cached ones reused an earlier result; Skipped ones did not
// run because a dependency failed or was canceled.
const (
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepSucceeded StepStatus = "succeeded"
	StepCached    StepStatus = "cached"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	StepCanceled  StepStatus = "canceled"
)

// Done reports whether the status is final.
func (s StepStatus) Done() bool {
	return s == StepSucceeded || s == StepCached || s == StepFailed || s == StepSkipped || s == StepCanceled
}

// OK reports whether the step's outputs exist (it succeeded or was cached).
func (s StepStatus) OK() bool { return s == StepSucceeded || s == StepCached }

// Run is one run of a pipeline, as stored. Its spec is a snapshot of the
// file's text when the run was created, so a run can be resumed after a
// restart even if the file changed since.
type Run struct {
	// ID is the run's id: "pr-" and 12 lower-case hex digits.
	ID string `json:"id"`
	// Pipeline is the spec's name; the MLflow experiment has the same name.
	Pipeline string `json:"pipeline"`
	// SpecFile is the absolute path of the spec file, as submitted.
	SpecFile string `json:"spec_file"`
	// ProjectDir is the absolute folder that relative paths of the spec
	// (code inputs) and the steps' working folder are relative to.
	ProjectDir string `json:"project_dir"`
	// Spec is the text of the spec file when the run was created.
	Spec string `json:"spec,omitempty"`
	// Params are the parameter overrides given for this run.
	Params map[string]string `json:"params,omitempty"`
	// Datasets pins every dataset reference of the spec to the version it
	// resolved to when the run was created: "flights@latest" →
	// {Ref:"flights@7", Hash:"sha256:…"}.
	Datasets map[string]InputHash `json:"datasets,omitempty"`
	// Status is the run's state.
	Status RunStatus `json:"status"`
	// Trigger is the name of the trigger that started the run; empty for a
	// run submitted directly (mloop pipeline run).
	Trigger string `json:"trigger,omitempty"`
	// Cause says in words what started the run: "mloop pipeline run by
	// alice", "new dataset version flights@7", "cron 0 * * * *".
	Cause string `json:"cause"`
	// EventIDs are the trigger events this run answers.
	EventIDs []int64 `json:"event_ids,omitempty"`
	// InputsKey hashes the spec, the params and the pinned dataset digests;
	// triggers with de-duplication compare it.
	InputsKey string `json:"inputs_key"`
	// ExperimentID and MLflowRunID are the MLflow experiment and parent run
	// that track the pipeline run; empty until the run starts.
	ExperimentID string `json:"experiment_id,omitempty"`
	MLflowRunID  string `json:"mlflow_run_id,omitempty"`
	// Error says why a failed run failed.
	Error string `json:"error,omitempty"`
	// CancelRequested is set by Cancel; the controller running the run
	// stops its steps and marks it Canceled.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Owner names the controller that claimed the run (host:pid:start).
	Owner string `json:"owner,omitempty"`
	// Explain asks the runner to record, for every step, why it ran or was
	// skipped (it always does; this only makes clients print it).
	Explain bool `json:"explain,omitempty"`
	// CreatedAt, StartedAt and FinishedAt are when the run was created,
	// claimed and ended (zero when not yet).
	CreatedAt  time.Time `json:"created_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Steps are the run's steps in the plan's order.
	Steps []*StepRun `json:"steps"`
}

// Step returns the run's step with the given name, or nil.
func (r *Run) Step(name string) *StepRun {
	for _, s := range r.Steps {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// StepRun is one step of a pipeline run.
type StepRun struct {
	// RunID is the pipeline run's id; Name is the step's name.
	RunID string `json:"run_id"`
	Name  string `json:"name"`
	// Status is the step's state.
	Status StepStatus `json:"status"`
	// Attempt counts the attempts started so far (0 before the first).
	Attempt int `json:"attempt"`
	// CacheKey is the step's cache key, once computed.
	CacheKey string `json:"cache_key,omitempty"`
	// CachedFrom is the pipeline run whose result a cached step reused.
	CachedFrom string `json:"cached_from,omitempty"`
	// Explain lists, in words, why the step ran or was skipped: "cache hit
	// (run pr-…)", "no earlier result", "code input train.py changed:
	// sha256:ab12… → sha256:cd34…".
	Explain []string `json:"explain,omitempty"`
	// MLflowRunID is the nested MLflow run of the step.
	MLflowRunID string `json:"mlflow_run_id,omitempty"`
	// Executor is the executor's name; TaskID the attempt's task id (to
	// re-attach after a restart); Handle the executor's own handle for it
	// (the process group id of a local task) to clean up after a crash.
	Executor string `json:"executor,omitempty"`
	TaskID   string `json:"task_id,omitempty"`
	Handle   string `json:"handle,omitempty"`
	// ExitCode is the last attempt's exit status (-1 when killed), nil when
	// no attempt finished.
	ExitCode *int `json:"exit_code,omitempty"`
	// Error says why the step failed or was skipped.
	Error string `json:"error,omitempty"`
	// Outputs are the step's outputs once it succeeded or was cached.
	Outputs map[string]OutputRecord `json:"outputs,omitempty"`
	// Metrics are the numbers read from the step's metrics outputs.
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// StartedAt and FinishedAt bound the step's last attempt.
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// OutputRecord is a stored output of a step: where its bytes live in the
// artifact store and their content hash.
type OutputRecord struct {
	// URI is the artifact URI of the output (a file or a folder), under the
	// step's MLflow run: <run artifact URI>/outputs/<name>.
	URI string `json:"uri"`
	// Hash is HashTree of the output ("sha256:…").
	Hash string `json:"hash"`
	// Size is the output's total size in bytes; Dir whether it is a folder.
	Size int64 `json:"size"`
	Dir  bool  `json:"dir,omitempty"`
	// Type and Flavor repeat the spec's output type ("file", "metrics",
	// "model") and model flavor.
	Type   string `json:"type,omitempty"`
	Flavor string `json:"flavor,omitempty"`
}

// CacheEntry is a reusable step result, found by its cache key.
type CacheEntry struct {
	// Key is the cache key (CacheKey of Input).
	Key string `json:"key"`
	// Pipeline and Step name the step that produced it.
	Pipeline string `json:"pipeline"`
	Step     string `json:"step"`
	// RunID and MLflowRunID are the pipeline run and step run that produced it.
	RunID       string `json:"run_id"`
	MLflowRunID string `json:"mlflow_run_id"`
	// Input is what the key was computed from, kept for --explain.
	Input CacheInput `json:"input"`
	// Outputs and Metrics are the step's recorded results.
	Outputs map[string]OutputRecord `json:"outputs"`
	Metrics map[string]float64      `json:"metrics,omitempty"`
	// CreatedAt is when the result was recorded.
	CreatedAt time.Time `json:"created_at"`
}

// RunFilter selects runs for ListRuns. Zero fields do not filter.
type RunFilter struct {
	Pipeline string
	Trigger  string
	Statuses []RunStatus
	// MaxResults bounds the page (default 100, at most 1000); PageToken
	// continues an earlier listing. Runs come newest first, or oldest first
	// with OldestFirst (how the runner takes queued runs).
	MaxResults  int
	PageToken   string
	OldestFirst bool
}

// RunUpdate changes a run; nil fields are left alone.
type RunUpdate struct {
	Status          *RunStatus
	Error           *string
	ExperimentID    *string
	MLflowRunID     *string
	CancelRequested *bool
	StartedAt       *time.Time
	FinishedAt      *time.Time
}

// StepUpdate changes a step run; nil fields are left alone.
type StepUpdate struct {
	Status      *StepStatus
	Attempt     *int
	CacheKey    *string
	CachedFrom  *string
	Explain     []string // replaces when non-nil
	MLflowRunID *string
	Executor    *string
	TaskID      *string
	Handle      *string
	ExitCode    *int
	Error       *string
	Outputs     map[string]OutputRecord // replaces when non-nil
	Metrics     map[string]float64      // replaces when non-nil
	StartedAt   *time.Time
	FinishedAt  *time.Time
}

// RunStore keeps pipeline runs, their steps and the step cache. The sqlstore
// package implements it for SQLite and PostgreSQL; the conformance suite in
// package pipeline/storetest checks every implementation.
type RunStore interface {
	// CreateRun stores a new run and its steps (all StepPending). EEXISTS
	// when the id is taken.
	CreateRun(ctx context.Context, r *Run) error
	// GetRun returns a run with its steps; ENOTFOUND when there is none.
	GetRun(ctx context.Context, id string) (*Run, error)
	// ListRuns returns runs newest first (oldest first with
	// RunFilter.OldestFirst), without their Spec text but with their steps,
	// and a token for the next page ("" at the end).
	ListRuns(ctx context.Context, f RunFilter) ([]*Run, string, error)
	// ClaimRun moves a Queued run to Running for owner, setting StartedAt,
	// and reports whether this call did it (false when another claimed it
	// or it is no longer queued). ENOTFOUND when there is no such run.
	ClaimRun(ctx context.Context, id, owner string, now time.Time) (bool, error)
	// UpdateRun changes a run; ENOTFOUND when there is none.
	UpdateRun(ctx context.Context, id string, u RunUpdate) error
	// UpdateStep changes one step of a run; ENOTFOUND when there is none.
	UpdateStep(ctx context.Context, runID, step string, u StepUpdate) error
	// GetCache returns the entry with the key; ENOTFOUND when there is none.
	GetCache(ctx context.Context, key string) (*CacheEntry, error)
	// LatestCache returns the newest entry of a pipeline's step, whatever
	// its key (to explain what changed); ENOTFOUND when there is none.
	LatestCache(ctx context.Context, pipeline, step string) (*CacheEntry, error)
	// PutCache stores an entry, replacing one with the same key.
	PutCache(ctx context.Context, e *CacheEntry) error
}

// NodeKind is the kind of a lineage node.
type NodeKind string

// Lineage node kinds. IDs: a dataset version "NAME@N"; a pipeline run its
// id; a step run its MLflow run id; an artifact its URI; a model version
// "NAME/N".
const (
	NodeDataset     NodeKind = "dataset"
	NodePipelineRun NodeKind = "pipeline_run"
	NodeStepRun     NodeKind = "step_run"
	NodeArtifact    NodeKind = "artifact"
	NodeModel       NodeKind = "model_version"
)

// Node is one vertex of the lineage graph.
type Node struct {
	Kind NodeKind `json:"kind"`
	ID   string   `json:"id"`
}

// String returns "kind:id".
func (n Node) String() string { return string(n.Kind) + ":" + n.ID }

// Edge says that From went into To: a dataset version was read by a step
// run, a step run produced an artifact, an artifact was read by a step run or
// registered as a model version, a step run belongs to a pipeline run.
type Edge struct {
	From Node `json:"from"`
	To   Node `json:"to"`
	// Relation names the link: "input", "output", "registered", "step",
	// or "reused" from a cached step run to the outputs it reused.
	Relation string `json:"relation"`
	// Name is the input or output name in the spec, when there is one.
	Name string `json:"name,omitempty"`
	// CreatedAt is when the link was recorded.
	CreatedAt time.Time `json:"created_at"`
}

// Direction selects which way a lineage query walks.
type Direction string

// Lineage directions: Up finds what produced a node, Down what used it.
const (
	Up   Direction = "up"
	Down Direction = "down"
	Both Direction = "both"
)

// LineageStore records and walks lineage edges.
type LineageStore interface {
	// AddEdges records edges; an edge already recorded (same From, To and
	// Relation) is kept once.
	AddEdges(ctx context.Context, edges []Edge) error
	// Edges returns the edges reachable from n walking in direction d, at
	// most depth hops (depth <= 0 means no limit), each once.
	Edges(ctx context.Context, n Node, d Direction, depth int) ([]Edge, error)
}
