// Package registry holds mloop's model registry: registered models, their
// numbered versions, stages, aliases and tags, and the lineage link from each
// version to the run (and MLflow 3 logged model) that produced it.
//
// The Service applies MLflow's rules on top of a Store, which only persists.
// Store implementations live in sqlstore and pass its conformance suite.
package registry

import (
	"context"

	"github.com/mloop/mloop/internal/tracking"
)

// Stages of a model version, as MLflow spells them.
const (
	StageNone       = "None"
	StageStaging    = "Staging"
	StageProduction = "Production"
	StageArchived   = "Archived"
)

// Model version statuses.
const (
	StatusPendingRegistration = "PENDING_REGISTRATION"
	StatusFailedRegistration  = "FAILED_REGISTRATION"
	StatusReady               = "READY"
)

// Tag is a key/value pair on a registered model or model version.
type Tag = tracking.Tag

// Alias names a version of a registered model, such as champion → 3.
type Alias struct {
	Alias   string
	Version int64
}

// RegisteredModel is a named model with numbered versions.
type RegisteredModel struct {
	Name                 string
	CreationTimestamp    int64
	LastUpdatedTimestamp int64
	Description          string
	UserID               string
	LatestVersions       []*ModelVersion // the latest version per stage
	Tags                 []Tag
	Aliases              []Alias
}

// ModelVersion is one version of a registered model. Source and RunID record
// what produced it (lineage); ModelID links an MLflow 3 logged model.
type ModelVersion struct {
	Name                 string
	Version              int64
	CreationTimestamp    int64
	LastUpdatedTimestamp int64
	UserID               string
	CurrentStage         string
	Description          string
	Source               string
	RunID                string
	RunLink              string
	ModelID              string
	Status               string
	StatusMessage        string
	Tags                 []Tag
	Aliases              []string
}

// Query selects registered models or model versions for a search.
type Query struct {
	Filter     tracking.Filter
	OrderBy    []tracking.OrderBy
	MaxResults int
	Offset     int
}

// VersionUpdate holds the fields UpdateModelVersion changes; nil fields stay.
type VersionUpdate struct {
	Description *string
	Stage       *string
	// ArchiveExisting, with Stage, moves the other versions in that stage to Archived.
	ArchiveExisting bool
}

// Store persists the registry. Methods return *mloop.Error values: ENOTFOUND
// for unknown models, versions or aliases, EEXISTS for a duplicate model name,
// and wrapped driver errors otherwise. Each method is one transaction.
type Store interface {
	CreateRegisteredModel(ctx context.Context, m *RegisteredModel) error
	GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error)
	RenameRegisteredModel(ctx context.Context, name, newName string, now int64) error
	UpdateRegisteredModel(ctx context.Context, name, description string, now int64) error
	// DeleteRegisteredModel deletes the model with its versions, tags and aliases.
	DeleteRegisteredModel(ctx context.Context, name string) error
	SearchRegisteredModels(ctx context.Context, q Query) ([]*RegisteredModel, error)
	SetRegisteredModelTag(ctx context.Context, name string, tag Tag) error
	DeleteRegisteredModelTag(ctx context.Context, name, key string) error
	SetAlias(ctx context.Context, name, alias string, version int64) error
	DeleteAlias(ctx context.Context, name, alias string) error
	// GetLatestVersions returns, per stage in stages (all stages when empty),
	// the version with the highest number.
	GetLatestVersions(ctx context.Context, name string, stages []string) ([]*ModelVersion, error)

	// CreateModelVersion assigns v the next version number of v.Name atomically
	// (ENOTFOUND when the model does not exist) and inserts it with its tags.
	CreateModelVersion(ctx context.Context, v *ModelVersion) error
	GetModelVersion(ctx context.Context, name string, version int64) (*ModelVersion, error)
	GetModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error)
	UpdateModelVersion(ctx context.Context, name string, version int64, u VersionUpdate, now int64) (*ModelVersion, error)
	DeleteModelVersion(ctx context.Context, name string, version int64) error
	SearchModelVersions(ctx context.Context, q Query) ([]*ModelVersion, error)
	SetModelVersionTag(ctx context.Context, name string, version int64, tag Tag) error
	DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error
}
