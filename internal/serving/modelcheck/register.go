package modelcheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/tracking"
)

// ModelsExperiment is the MLflow experiment holding the runs that store
// models registered from local files.
const ModelsExperiment = "mloop-models"

// Tags that Registrar sets on the versions it creates.
const (
	// FlavorTag holds the model's flavor (xgboost or process).
	FlavorTag = "mloop.flavor"
	// ModelInfoTag holds the ModelInfo JSON (without the feature list when
	// it would not fit in a tag).
	ModelInfoTag = "mloop.model_info"
)

// ModelArtifactPath is the folder, within the run's artifacts, that holds
// the model's files; the version's source is the run's artifact URI joined
// with it.
const ModelArtifactPath = "model"

// Tracker creates the runs that hold registered models' files. The
// tracking Service satisfies it.
type Tracker interface {
	// GetExperimentByName returns ENOTFOUND when there is no such experiment.
	GetExperimentByName(ctx context.Context, name string) (*tracking.Experiment, error)
	// CreateExperiment returns EEXISTS when the name is taken.
	CreateExperiment(ctx context.Context, name, artifactLocation string, tags []tracking.Tag) (string, error)
	CreateRun(ctx context.Context, req tracking.CreateRunRequest) (*tracking.Run, error)
	UpdateRun(ctx context.Context, id string, u tracking.RunUpdate) (*tracking.RunInfo, error)
}

// Registry creates registered models and their versions. The registry
// Service satisfies it.
type Registry interface {
	// GetRegisteredModel returns ENOTFOUND for an unknown model and
	// EINVALID for an invalid name.
	GetRegisteredModel(ctx context.Context, name string) (*registry.RegisteredModel, error)
	// CreateRegisteredModel returns EEXISTS when the name is taken.
	CreateRegisteredModel(ctx context.Context, name string, tags []registry.Tag, description string) (*registry.RegisteredModel, error)
	CreateModelVersion(ctx context.Context, req registry.CreateModelVersionRequest) (*registry.ModelVersion, error)
}

// ArtifactStore stores the model's files. *artifact.Store satisfies it.
type ArtifactStore interface {
	// KeyOf returns ENOTIMPLEMENTED for a URI outside the store.
	KeyOf(uri string) (string, error)
	Put(ctx context.Context, key string, r io.Reader) error
	Delete(ctx context.Context, key string) error
}

var (
	_ Tracker       = (*tracking.Service)(nil)
	_ Registry      = (*registry.Service)(nil)
	_ ArtifactStore = (*artifact.Store)(nil)
)

// Registrar registers models uploaded as tar archives: it unpacks them,
// checks them with ValidateModel, stores their files as the artifacts of a
// run in the ModelsExperiment experiment and creates a model version whose
// source is those artifacts. Fill its fields; the zero Limits and TempDir
// mean DefaultLimits and os.TempDir().
type Registrar struct {
	Tracking  Tracker
	Registry  Registry
	Artifacts ArtifactStore
	// Limits bound the archives accepted.
	Limits Limits
	// TempDir is where archives are unpacked while they are checked.
	TempDir string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// RegisterRequest names the version to create.
type RegisterRequest struct {
	// Name is the registered model; it is created when missing.
	Name string
	// Flavor is xgboost, process, or empty to detect it.
	Flavor string
	// Description is the new version's description.
	Description string
}

// Registered is the model version a registration created.
type Registered struct {
	Name    string     `json:"name"`
	Version int64      `json:"version"`
	Source  string     `json:"source"`
	RunID   string     `json:"run_id"`
	Flavor  string     `json:"flavor"`
	Info    *ModelInfo `json:"info"`
}

// Register unpacks the tar archive read from archive, checks the model and
// registers it as a new version of req.Name. An invalid name, archive or
// model is EINVALID (ETOOLARGE beyond the limits) and stores nothing.
func (g *Registrar) Register(ctx context.Context, req RegisterRequest, archive io.Reader) (*Registered, error) {
	log := g.Logger
	if log == nil {
		log = slog.Default()
	}
	lim := g.Limits
	if lim == (Limits{}) {
		lim = DefaultLimits
	}
	switch req.Flavor {
	case "", FlavorXGBoost, FlavorProcess:
	default:
		return nil, mloop.Errorf(mloop.EINVALID, "unknown model flavor %q: use %s or %s (or leave it out to detect it)", req.Flavor, FlavorXGBoost, FlavorProcess)
	}
	if strings.ContainsFunc(req.Name, unicode.IsControl) {
		return nil, mloop.Errorf(mloop.EINVALID, "model name %q holds control characters: choose a printable name", req.Name)
	}
	modelExists := true
	if _, err := g.Registry.GetRegisteredModel(ctx, req.Name); mloop.IsNotFound(err) {
		modelExists = false
	} else if err != nil {
		return nil, err
	}

	dir, err := os.MkdirTemp(g.TempDir, "mloop-model-*")
	if err != nil {
		return nil, fmt.Errorf("register model %s: make a folder to unpack into: %w", req.Name, err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("cannot remove unpacked model", "dir", dir, "err", err)
		}
	}()
	files, err := ExtractTar(ctx, archive, dir, lim)
	if err != nil {
		return nil, err
	}
	info, err := ValidateModel(ctx, req.Flavor, dir)
	if err != nil {
		return nil, err
	}

	// Checked: store the files in a run, then register the version.
	expID, err := g.experiment(ctx)
	if err != nil {
		return nil, err
	}
	run, err := g.Tracking.CreateRun(ctx, tracking.CreateRunRequest{
		ExperimentID: expID, RunName: "register " + req.Name,
		Tags: []tracking.Tag{{Key: FlavorTag, Value: info.Flavor}, {Key: "mloop.registered_model", Value: req.Name}},
	})
	if err != nil {
		return nil, fmt.Errorf("register model %s: create the run holding its files: %w", req.Name, err)
	}
	runID := run.Info.RunID
	source := strings.TrimRight(run.Info.ArtifactURI, "/") + "/" + ModelArtifactPath
	var stored []string
	fail := func(err error) (*Registered, error) {
		// Undo with a fresh context: ctx may be what failed.
		cctx := context.WithoutCancel(ctx)
		for _, k := range stored {
			if derr := g.Artifacts.Delete(cctx, k); derr != nil {
				log.Warn("cannot delete the file of a failed registration", "key", k, "err", derr)
			}
		}
		status, end := tracking.RunFailed, nowMillis()
		if _, uerr := g.Tracking.UpdateRun(cctx, runID, tracking.RunUpdate{Status: &status, EndTime: &end}); uerr != nil {
			log.Warn("cannot mark the run of a failed registration failed", "run", runID, "err", uerr)
		}
		return nil, err
	}
	for _, rel := range files {
		key, err := g.Artifacts.KeyOf(source + "/" + rel)
		if err != nil {
			return fail(fmt.Errorf("register model %s: the run's artifact location %s is not in this server's artifact store: %w", req.Name, run.Info.ArtifactURI, err))
		}
		if err := g.putFile(ctx, key, filepath.Join(dir, filepath.FromSlash(rel))); err != nil {
			return fail(fmt.Errorf("register model %s: store %s: %w", req.Name, rel, err))
		}
		stored = append(stored, key)
	}
	if !modelExists {
		if _, err := g.Registry.CreateRegisteredModel(ctx, req.Name, nil, ""); err != nil && mloop.ErrorCode(err) != mloop.EEXISTS {
			return fail(fmt.Errorf("register model %s: create the registered model: %w", req.Name, err))
		}
	}
	v, err := g.Registry.CreateModelVersion(ctx, registry.CreateModelVersionRequest{
		Name: req.Name, Source: source, RunID: runID, Description: req.Description,
		Tags: []registry.Tag{{Key: FlavorTag, Value: info.Flavor}, {Key: ModelInfoTag, Value: infoTag(info)}},
	})
	if err != nil {
		return fail(fmt.Errorf("register model %s: create the version: %w", req.Name, err))
	}
	status, end := tracking.RunFinished, nowMillis()
	if _, err := g.Tracking.UpdateRun(ctx, runID, tracking.RunUpdate{Status: &status, EndTime: &end}); err != nil {
		// The version exists; an unfinished run is only untidy.
		log.Warn("cannot mark the run of a registration finished", "run", runID, "err", err)
	}
	log.Info("registered model version", "model", req.Name, "version", v.Version, "flavor", info.Flavor, "run", runID)
	return &Registered{Name: v.Name, Version: v.Version, Source: v.Source, RunID: runID, Flavor: info.Flavor, Info: info}, nil
}

// experiment returns the id of ModelsExperiment, creating it when missing.
func (g *Registrar) experiment(ctx context.Context) (string, error) {
	for range 2 {
		e, err := g.Tracking.GetExperimentByName(ctx, ModelsExperiment)
		if err == nil {
			if e.LifecycleStage == tracking.LifecycleDeleted {
				return "", mloop.Errorf(mloop.ECONFLICT, "the experiment %s, which holds registered models' files, is deleted: restore it", ModelsExperiment)
			}
			return e.ID, nil
		}
		if !mloop.IsNotFound(err) {
			return "", fmt.Errorf("find experiment %s: %w", ModelsExperiment, err)
		}
		id, err := g.Tracking.CreateExperiment(ctx, ModelsExperiment, "", nil)
		if err == nil {
			return id, nil
		}
		if mloop.ErrorCode(err) != mloop.EEXISTS {
			return "", fmt.Errorf("create experiment %s: %w", ModelsExperiment, err)
		}
		// Created meanwhile by another registration: look it up again.
	}
	return "", mloop.Errorf(mloop.EUNAVAILABLE, "experiment %s could not be found or created: try again", ModelsExperiment)
}

// putFile stores the local file at p under key.
func (g *Registrar) putFile(ctx context.Context, key, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	return g.Artifacts.Put(ctx, key, f)
}

// infoTag returns the JSON of info for ModelInfoTag, leaving out the
// feature list, then the command, when the JSON would exceed the
// registry's tag value limit.
func infoTag(info *ModelInfo) string {
	c := *info
	for i := 0; ; i++ {
		data, err := json.Marshal(c)
		if err == nil && len(data) <= registry.MaxTagValueLength {
			return string(data)
		}
		switch i {
		case 0:
			c.Features = nil
		case 1:
			c.Command = nil
		default:
			return fmt.Sprintf(`{"flavor":%q}`, c.Flavor)
		}
	}
}
