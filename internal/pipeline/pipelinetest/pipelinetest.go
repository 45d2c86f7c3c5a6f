// Package pipelinetest builds, for tests, the stack of real components a
// pipeline service runs on: a fresh SQLite database and a local artifact
// folder in a temp folder, with the tracking, logged-model, registry and
// dataset services and the pipeline store on top, wired as cmd/mloop wires
// them. Tests of the pipeline service, of its HTTP API and of its client
// share it, so the wiring is written once.
package pipelinetest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// LogEnv names the environment variable that, when set to anything, sends
// the stack's logs to stderr at debug level instead of discarding them.
const LogEnv = "MLOOP_TEST_LOG"

// PollInterval is how often services made by Stack.NewService poll for work.
const PollInterval = 20 * time.Millisecond

// Stack is the set of open components a pipeline service uses, all on one
// SQLite database and one local artifact folder under Dir.
type Stack struct {
	// Dir is the test's temp folder holding the database, the artifacts and
	// the pipelines' work folder.
	Dir string
	// DB is the open SQLite database.
	DB *sqlstore.DB
	// Artifacts is the open local artifact store in Dir/artifacts.
	Artifacts *artifact.Store
	// TrackingStore is the MLflow tracking store on DB.
	TrackingStore *sqlstore.TrackingStore
	// Tracking is the MLflow tracking service.
	Tracking *tracking.Service
	// LoggedModels is the MLflow logged-model service.
	LoggedModels *tracking.LoggedModels
	// Registry is the model registry service.
	Registry *registry.Service
	// Datasets is the dataset service; it profiles in a temp folder of its own.
	Datasets *dataset.Service
	// Store is the pipeline store on DB.
	Store *sqlstore.PipelineStore
	// Logger is the logger every component uses: it discards unless the
	// LogEnv environment variable is set.
	Logger *slog.Logger
}

// NewStack opens a Stack in a new temp folder of tb and closes it when the
// test ends. It fails the test if the database or the artifact store cannot
// be opened.
func NewStack(tb testing.TB) *Stack {
	tb.Helper()
	ctx := context.Background()
	s := &Stack{Dir: tb.TempDir(), Logger: newLogger()}

	s.DB = sqlstore.NewDB(filepath.Join(s.Dir, "mloop.db"))
	s.DB.Logger = s.Logger
	if err := s.DB.Open(ctx); err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.DB.Close(); err != nil {
			tb.Errorf("close database: %v", err)
		}
	})
	arts, err := artifact.Open(ctx, filepath.Join(s.Dir, "artifacts"))
	if err != nil {
		tb.Fatalf("open artifact store: %v", err)
	}
	s.Artifacts = arts
	tb.Cleanup(func() {
		if err := arts.Close(); err != nil {
			tb.Errorf("close artifact store: %v", err)
		}
	})

	s.TrackingStore = sqlstore.NewTrackingStore(s.DB)
	s.Tracking = tracking.NewService(s.TrackingStore)
	s.LoggedModels = tracking.NewLoggedModels(sqlstore.NewLoggedModelStore(s.DB), s.Tracking)
	s.Registry = registry.NewService(sqlstore.NewRegistryStore(s.DB), s.Tracking, s.LoggedModels)
	s.Datasets = dataset.NewService(sqlstore.NewDatasetStore(s.DB), dataset.NewBlobs(arts), s.TrackingStore)
	s.Datasets.Logger = s.Logger
	s.Datasets.TempDir = tb.TempDir()
	s.Store = sqlstore.NewPipelineStore(s.DB)
	return s
}

// NewService returns a pipeline service on the stack, not yet opened, with
// its work folder in Dir/work (shared by every service of the stack, as by
// servers restarted on the same data folder), polling every PollInterval
// and logging to the stack's Logger. The caller adjusts it, opens it and
// closes it.
func (s *Stack) NewService(tb testing.TB) *pipeline.Service {
	tb.Helper()
	svc := pipeline.NewService(s.Store, s.Tracking, s.Registry, s.Datasets, s.Artifacts, filepath.Join(s.Dir, "work"))
	svc.PollInterval = PollInterval
	svc.Logger = s.Logger
	return svc
}

// newLogger discards logs unless LogEnv is set, then logs at debug level
// to stderr.
func newLogger() *slog.Logger {
	if os.Getenv(LogEnv) != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}
