package pipeline

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/tracking"
)

// Tracker is what the pipeline service needs from tracking: an experiment
// per pipeline, a parent MLflow run per pipeline run and a nested run per
// step. *tracking.Service implements it.
type Tracker interface {
	GetExperimentByName(ctx context.Context, name string) (*tracking.Experiment, error)
	CreateExperiment(ctx context.Context, name, artifactLocation string, tags []tracking.Tag) (string, error)
	CreateRun(ctx context.Context, req tracking.CreateRunRequest) (*tracking.Run, error)
	GetRun(ctx context.Context, id string) (*tracking.Run, error)
	UpdateRun(ctx context.Context, id string, u tracking.RunUpdate) (*tracking.RunInfo, error)
	LogBatch(ctx context.Context, runID string, metrics []tracking.Metric, params []tracking.Param, tags []tracking.Tag) error
	SetTag(ctx context.Context, runID string, t tracking.Tag) error
	LogInputs(ctx context.Context, runID string, datasets []tracking.DatasetInput, models []tracking.ModelInput) error
}

var _ Tracker = (*tracking.Service)(nil)

// Registry is what the built-in gate and register steps need from the model
// registry. *registry.Service implements it.
type Registry interface {
	GetRegisteredModel(ctx context.Context, name string) (*registry.RegisteredModel, error)
	CreateRegisteredModel(ctx context.Context, name string, tags []registry.Tag, description string) (*registry.RegisteredModel, error)
	CreateModelVersion(ctx context.Context, req registry.CreateModelVersionRequest) (*registry.ModelVersion, error)
	GetModelVersion(ctx context.Context, name, version string) (*registry.ModelVersion, error)
	GetModelVersionByAlias(ctx context.Context, name, alias string) (*registry.ModelVersion, error)
	SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error
	SetModelVersionTag(ctx context.Context, name, version string, tag registry.Tag) error
	SearchModelVersions(ctx context.Context, req registry.SearchRequest) ([]*registry.ModelVersion, string, error)
}

var _ Registry = (*registry.Service)(nil)

// Datasets is what the pipeline service needs from versioned datasets: to
// pin references, read versions' files, validate them and notice new
// versions for triggers. *dataset.Service implements it.
type Datasets interface {
	GetVersion(ctx context.Context, ref dataset.Ref, withProfile bool) (*dataset.Version, error)
	ListDatasets(ctx context.Context) ([]dataset.Summary, error)
	ListVersions(ctx context.Context, name string, maxResults int, pageToken string) ([]*dataset.Version, string, error)
	GetSchema(ctx context.Context, name string) ([]byte, error)
	// OpenFile opens the bytes of one file of a version (by its SHA-256).
	OpenFile(ctx context.Context, sha256 string) (*artifact.Object, error)
}

// Service runs pipelines and triggers. It is the control loop of continuous
// training: runs and trigger state live in Store, so a restart after a crash
// resumes or cleanly fails what was in flight (see Open).
//
// NewService fills defaults; set the exported fields before Open.
type Service struct {
	Store     Store
	Tracking  Tracker
	Registry  Registry
	Datasets  Datasets
	Artifacts *artifact.Store
	// Executor runs command steps (default: a LocalExecutor).
	Executor Executor
	// Builtins are the steps named by `uses:` (default: gate, register,
	// validate).
	Builtins map[string]Builtin
	// WorkDir holds step working files: outputs being written, logs, the
	// materialized dataset versions and the hash memo.
	WorkDir string
	// PrivateDirs are folders of the server's own (its data folder, a local
	// artifact store) that may lie inside a project: writes there are not
	// counted as a step writing outside its outputs. WorkDir always is one.
	PrivateDirs []string
	// TrackingURI is given to steps as MLFLOW_TRACKING_URI (the server's
	// own URL, set once it listens).
	TrackingURI string
	// StepParallelism bounds the steps of one run that run at once
	// (default 4); RunParallelism the runs that run at once (default 4).
	StepParallelism int
	RunParallelism  int
	// PollInterval is how often controllers look for work besides being
	// woken up (default 1s).
	PollInterval time.Duration
	// Owner names this controller in claimed runs and in the controllers'
	// lease (default host:pid:time).
	Owner string
	// LeaseTTL is how long the controllers' lease lasts without renewal
	// (default DefaultLeaseTTL); see leader.go.
	LeaseTTL time.Duration
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger

	mu sync.Mutex
	// Fields of the runner and the trigger controller go here (owned by
	// runner.go and trigger_controller.go).
	rs runnerState
	ts triggerState
}

// NewService returns a Service with its defaults.
func NewService(store Store, tr Tracker, reg Registry, ds Datasets, arts *artifact.Store, workDir string) *Service {
	s := &Service{Store: store, Tracking: tr, Registry: reg, Datasets: ds, Artifacts: arts, WorkDir: workDir,
		Executor: NewLocalExecutor(), StepParallelism: 4, RunParallelism: 4, PollInterval: time.Second,
		Now: time.Now, Logger: slog.Default()}
	s.Builtins = defaultBuiltins()
	return s
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}
