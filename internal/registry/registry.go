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

	// StorageLocation is where the artifacts of the version live when it
	// differs from Source: a models:/ or runs:/ source resolved when the
	// version was created. Empty means Source. It is not part of MLflow's wire
	// format; GetModelVersionDownloadURI returns it.
	StorageLocation string
}

// Query selects registered models or model versions for a search.
type Query struct {
	Filter     tracking.Filter
	OrderBy    []tracking.OrderBy
	MaxResults int
	Offset     int
	// ExcludePrompts leaves out the rows tagged mlflow.prompt.is_prompt=true
	// (MLflow 3 stores prompts as registered models and hides them from searches).
	ExcludePrompts bool
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
	// CreateRegisteredModel inserts m with its tags, leaving m as
	// GetRegisteredModel would return it (EEXISTS when the name is taken).
	CreateRegisteredModel(ctx context.Context, m *RegisteredModel) error
	// GetRegisteredModel returns a model with its tags, aliases and the
	// latest version of each stage.
	GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error)
	// RenameRegisteredModel renames the model, its versions, tags and aliases
	// and returns the renamed model (EEXISTS when newName is taken).
	RenameRegisteredModel(ctx context.Context, name, newName string, now int64) (*RegisteredModel, error)
	// UpdateRegisteredModel sets the description and returns the updated model.
	UpdateRegisteredModel(ctx context.Context, name, description string, now int64) (*RegisteredModel, error)
	// DeleteRegisteredModel deletes the model with its versions, tags and aliases.
	DeleteRegisteredModel(ctx context.Context, name string) error
	// SearchRegisteredModels returns the models q selects, filled as
	// GetRegisteredModel fills them (EINVALID for a filter or order it cannot run).
	SearchRegisteredModels(ctx context.Context, q Query) ([]*RegisteredModel, error)
	// SetRegisteredModelTag sets or replaces a tag of a model.
	SetRegisteredModelTag(ctx context.Context, name string, tag Tag) error
	// DeleteRegisteredModelTag deletes a tag of a model; a missing tag is no error.
	DeleteRegisteredModelTag(ctx context.Context, name, key string) error
	// SetAlias points alias at a live version, moving it from another version.
	SetAlias(ctx context.Context, name, alias string, version int64) error
	// DeleteAlias deletes an alias of a model; a missing alias is no error.
	DeleteAlias(ctx context.Context, name, alias string) error
	// GetLatestVersions returns, per stage in stages (all stages when empty),
	// the version with the highest number.
	GetLatestVersions(ctx context.Context, name string, stages []string) ([]*ModelVersion, error)

	// CreateModelVersion assigns v the next version number of v.Name atomically
	// (ENOTFOUND when the model does not exist) and inserts it with its tags.
	CreateModelVersion(ctx context.Context, v *ModelVersion) error
	// GetModelVersion returns a live version with its tags and aliases.
	GetModelVersion(ctx context.Context, name string, version int64) (*ModelVersion, error)
	// GetModelVersionByAlias returns the version an alias names.
	GetModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error)
	// UpdateModelVersion applies u to a version at time now and returns it;
	// a stage change also updates the model's last-updated time.
	UpdateModelVersion(ctx context.Context, name string, version int64, u VersionUpdate, now int64) (*ModelVersion, error)
	// DeleteModelVersion deletes the version with its tags and aliases; its
	// number is never given again. It updates the model's last-updated time.
	DeleteModelVersion(ctx context.Context, name string, version int64, now int64) error
	// SearchModelVersions returns the live versions q selects, with their
	// tags and aliases (EINVALID for a filter or order it cannot run).
	SearchModelVersions(ctx context.Context, q Query) ([]*ModelVersion, error)
	// SetModelVersionTag sets or replaces a tag of a version.
	SetModelVersionTag(ctx context.Context, name string, version int64, tag Tag) error
	// DeleteModelVersionTag deletes a tag of a version; a missing tag is no error.
	DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error
}
