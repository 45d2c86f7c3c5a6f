package deploy

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/registry"
)

// Registry resolves model references. The registry Service satisfies it.
type Registry interface {
	// GetModelVersion returns ENOTFOUND for an unknown model or version.
	GetModelVersion(ctx context.Context, name, version string) (*registry.ModelVersion, error)
	// GetModelVersionByAlias returns ENOTFOUND for an unknown alias.
	GetModelVersionByAlias(ctx context.Context, name, alias string) (*registry.ModelVersion, error)
	// GetModelVersionDownloadURI returns where the version's files are.
	GetModelVersionDownloadURI(ctx context.Context, name, version string) (string, error)
}

// Artifacts reads model files. *artifact.Store satisfies it.
type Artifacts interface {
	// KeyOf returns ENOTIMPLEMENTED for a URI outside the store.
	KeyOf(uri string) (string, error)
	List(ctx context.Context, dir string) ([]artifact.Entry, error)
	Get(ctx context.Context, key string) (*artifact.Object, error)
	Exists(ctx context.Context, key string) (bool, error)
}

var (
	_ Registry  = (*registry.Service)(nil)
	_ Artifacts = (*artifact.Store)(nil)
	_ io.Closer = (*Service)(nil)
)

// DefaultAliasInterval is how often deployments that follow an alias are
// checked for a moved alias when Service.AliasInterval is zero.
const DefaultAliasInterval = time.Second

// Service manages deployments: every change is validated, resolved against
// the registry, applied atomically (compare-and-swap on the generation)
// and recorded as an event. It also serves the State that data planes
// follow, and follows aliases: when an alias a deployment serves moves,
// the slot gets the new version as a new revision (EventAliasMoved).
type Service struct {
	Store     Store
	Registry  Registry
	Artifacts Artifacts
	// AliasInterval is how often aliases are re-resolved
	// (DefaultAliasInterval when zero).
	AliasInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// NewService returns a Service over the given store, registry and
// artifact store.
func NewService(store Store, reg Registry, arts Artifacts) *Service {
	return &Service{Store: store, Registry: reg, Artifacts: arts}
}

// Update changes a deployment; nil fields keep their value. A zero Ref in
// Canary or Shadow removes the canary or the shadow.
type Update struct {
	Model         *Ref            `json:"model,omitempty"`
	Canary        *Ref            `json:"canary,omitempty"`
	CanaryPercent *int            `json:"canary_percent,omitempty"`
	Shadow        *Ref            `json:"shadow,omitempty"`
	Batching      *Batching       `json:"batching,omitempty"`
	PayloadSample *float64        `json:"payload_sample,omitempty"`
	MaxBatchRows  *int            `json:"max_batch_rows,omitempty"`
	Rollback      *RollbackPolicy `json:"rollback,omitempty"`
}

var errTodo = mloop.Errorf(mloop.ENOTIMPLEMENTED, "deployments are being built")

// Open starts following aliases in the background until Close.
func (s *Service) Open(ctx context.Context) error { return nil }

// Close stops following aliases.
func (s *Service) Close() error { return nil }

// Create creates a deployment; EEXISTS when the name is taken, EINVALID
// for a bad name or spec, ENOTFOUND for a model version that does not
// exist.
func (s *Service) Create(ctx context.Context, name string, spec Spec) (*Deployment, error) {
	return nil, errTodo
}

// Update applies u atomically.
func (s *Service) Update(ctx context.Context, name string, u Update) (*Deployment, error) {
	return nil, errTodo
}

// Promote makes the canary the primary (its revision keeps serving, with
// all traffic); ECONFLICT when there is no canary.
func (s *Service) Promote(ctx context.Context, name string) (*Deployment, error) {
	return nil, errTodo
}

// Rollback removes the canary, or returns the primary to the version it
// served before; see RollbackRequest.
func (s *Service) Rollback(ctx context.Context, name string, req RollbackRequest) (*Deployment, error) {
	return nil, errTodo
}

// Delete removes a deployment; ENOTFOUND for an unknown name.
func (s *Service) Delete(ctx context.Context, name string) error { return errTodo }

// Get returns a deployment; ENOTFOUND for an unknown name.
func (s *Service) Get(ctx context.Context, name string) (*Deployment, error) { return nil, errTodo }

// List returns every deployment by name.
func (s *Service) List(ctx context.Context) ([]*Deployment, error) { return nil, errTodo }

// Events returns a deployment's events (every deployment's for an empty
// name), newest first, at most limit (0: all).
func (s *Service) Events(ctx context.Context, name string, limit int) ([]*Event, error) {
	return nil, errTodo
}

// History returns a deployment's past generations, newest first.
func (s *Service) History(ctx context.Context, name string, limit int) ([]*Deployment, error) {
	return nil, errTodo
}

// State returns what data planes serve; see ControlPlane.
func (s *Service) State(ctx context.Context, etag string, wait time.Duration) (*State, error) {
	return nil, errTodo
}

// FetchModel writes a model version's files into dir; see ControlPlane.
func (s *Service) FetchModel(ctx context.Context, model string, version int64, dir string) error {
	return errTodo
}

// SyncAliases re-resolves every deployment slot that follows an alias
// once, recording an EventAliasMoved for each that moved.
func (s *Service) SyncAliases(ctx context.Context) error { return errTodo }

var _ ControlPlane = (*Service)(nil)
