// Package story tells how a deployment came to serve what it serves: for
// each retraining, the chain alert → trigger event → pipeline run → gate →
// model version → rollout (canary started, promoted or rolled back), with
// the time of each link, where to read more of it over HTTP and the mloop
// command that shows it.
//
// The story is read, never stored: Service.Story assembles it on demand
// from the records the loop already keeps — the alerts of the deployment
// (package alert), the events its alert trigger actions posted and the
// runs they started (package pipeline), the versions those runs' register
// steps created with their gate verdict (package registry, tags
// mloop.pipeline_run, mloop.blessed, mloop.gate.champion, mloop.metrics)
// and the deployment's events (package deploy). Every query is bounded, so
// a story costs the same on a deployment with years of history.
//
// A chain starts at the alerts whose trigger event started a pipeline run
// (several alerts may share one run), or at an alert whose event started
// none (deduplicated, skipped, still pending, no trigger listening, the
// trigger action failed). Versions the deployment served that no alert
// led to — a run started by hand, by a schedule or a new dataset, or a
// version registered by hand — get a chain of their own starting at their
// run or at the version.
package story

import (
	"context"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// Limits of a story.
const (
	// DefaultLimit and MaxLimit are the default and largest number of
	// chains a story holds.
	DefaultLimit = 10
	MaxLimit     = 100
	// MaxDeploymentEvents is how many of the deployment's newest events
	// are read to find its rollouts.
	MaxDeploymentEvents = 500
	// MaxTriggerEvents is how many of each event trigger's newest events
	// are read to find those an alert posted.
	MaxTriggerEvents = 200
	// maxRunVersions bounds the model versions looked up for one run.
	maxRunVersions = 10
)

// Link kinds. A link made from a deployment event has that event's type as
// its kind: rollout_started, promoted, auto_rolled_back, rolled_back,
// alias_moved, created or updated (see package deploy).
const (
	KindAlert        = "alert"
	KindTrigger      = "trigger"
	KindRun          = "run"
	KindGate         = "gate"
	KindModelVersion = "model_version"
)

// Deployment event types the story reads; the rollout ones are matched by
// value so that the story does not depend on when package deploy defines
// them.
const (
	eventRolloutStarted = "rollout_started"
)

// Chain outcomes: how a chain ended, or where it stands.
const (
	// OutcomePromoted: the version's canary was promoted to primary.
	OutcomePromoted = "promoted"
	// OutcomeRolledBack: the version's canary (or the version as primary)
	// was rolled back.
	OutcomeRolledBack = "rolled back"
	// OutcomeDeployed: the version became the primary without a canary
	// (an alias it follows moved, or a change by hand).
	OutcomeDeployed = "deployed"
	// OutcomeReplaced: the version's canary was replaced by another
	// version's before it was judged.
	OutcomeReplaced = "replaced"
	// OutcomeInProgress: an event waits for its trigger, a run is queued
	// or running, or a canary waits to be judged.
	OutcomeInProgress = "in progress"
	// OutcomeNotDeployed: the version was registered (and blessed) but the
	// deployment never served it.
	OutcomeNotDeployed = "not deployed"
	// OutcomeGateRejected: the run's gate did not bless the candidate.
	OutcomeGateRejected = "gate rejected"
	// OutcomeRunFailed and OutcomeRunCanceled: the run ended without a
	// model.
	OutcomeRunFailed   = "run failed"
	OutcomeRunCanceled = "run canceled"
	// OutcomeNoModel: the run succeeded without registering a version.
	OutcomeNoModel = "no model registered"
	// OutcomeDeduplicated and OutcomeSkipped: the trigger decided the
	// alert's event without a run (a run with the same inputs existed;
	// its overlap policy skipped it).
	OutcomeDeduplicated = "deduplicated"
	OutcomeSkipped      = "skipped"
	// OutcomeNotTriggered: no trigger received an event for the alert
	// (its rule has no trigger action, or no trigger listens to the
	// event type).
	OutcomeNotTriggered = "not triggered"
	// OutcomeTriggerFailed: the alert's trigger action failed.
	OutcomeTriggerFailed = "trigger failed"
)

// Story is a deployment's chains, newest first.
type Story struct {
	// Deployment is the deployment's name; Model the reference its
	// primary follows ("" when the deployment was deleted).
	Deployment string `json:"deployment"`
	Model      string `json:"model,omitempty"`
	// Chains are the newest chains first (by the time of their first
	// link), at most the limit asked for.
	Chains []Chain `json:"chains"`
	// Notes say what the story could not see (such as a server without
	// alerting).
	Notes []string `json:"notes,omitempty"`
}

// Chain is one path through the loop, from its cause to its outcome.
type Chain struct {
	// Outcome is one of the Outcome constants.
	Outcome string `json:"outcome"`
	// Links are the chain's steps in the order they happened.
	Links []Link `json:"links"`
}

// Start returns the time of the chain's first link (zero without links).
func (c Chain) Start() time.Time {
	if len(c.Links) == 0 {
		return time.Time{}
	}
	return c.Links[0].Time
}

// Link is one step of a chain.
type Link struct {
	// Time is when it happened (UTC).
	Time time.Time `json:"time"`
	// Kind is one of the Kind constants or a deployment event type.
	Kind string `json:"kind"`
	// Status is the record's state in one word or two: firing, fired,
	// deduplicated, succeeded, blessed, rejected, promote, rollback, …
	Status string `json:"status,omitempty"`
	// Ref identifies the record: an alert id (al-…), TRIGGER#EVENT, a
	// pipeline run id (pr-…), RUN/STEP for the gate, MODEL/VERSION, or
	// DEPLOYMENT#EVENT for a deployment event.
	Ref string `json:"ref"`
	// Title says what happened, in one line.
	Title string `json:"title"`
	// Link is the path on the server that returns the record as JSON.
	Link string `json:"link,omitempty"`
	// Command is the mloop command that shows more of it.
	Command string `json:"command,omitempty"`
}

// Alerts reads a deployment's alerts; *alert.Engine implements it.
type Alerts interface {
	// Alerts returns the alerts matching f, newest first.
	Alerts(ctx context.Context, f alert.AlertFilter) ([]*alert.Alert, error)
	// Alert returns an alert with its deliveries, oldest first; ENOTFOUND
	// when there is none.
	Alert(ctx context.Context, id string) (*alert.Alert, []*alert.Delivery, error)
	// GetRule returns a rule; ENOTFOUND when there is none.
	GetRule(ctx context.Context, name string) (*alert.Rule, error)
}

// Pipelines reads triggers, their events and pipeline runs;
// *pipeline.Service implements it.
type Pipelines interface {
	// ListTriggers returns all triggers by name.
	ListTriggers(ctx context.Context) ([]*pipeline.Trigger, error)
	// TriggerEvents returns a trigger's events, newest first, at most
	// limit; ENOTFOUND when there is no such trigger.
	TriggerEvents(ctx context.Context, name string, limit int) ([]*pipeline.TriggerEvent, error)
	// GetRun returns a run with its steps; ENOTFOUND when there is none.
	GetRun(ctx context.Context, id string) (*pipeline.Run, error)
}

// Registry reads model versions; *registry.Service implements it.
type Registry interface {
	// GetModelVersion returns a version; ENOTFOUND when there is none.
	GetModelVersion(ctx context.Context, name, version string) (*registry.ModelVersion, error)
	// SearchModelVersions returns a page of the versions matching the
	// request's filter.
	SearchModelVersions(ctx context.Context, req registry.SearchRequest) ([]*registry.ModelVersion, string, error)
}

// Deployments reads deployments and their events; *deploy.Service
// implements it.
type Deployments interface {
	// Get returns a deployment; ENOTFOUND when there is none.
	Get(ctx context.Context, name string) (*deploy.Deployment, error)
	// Events returns a deployment's events, newest first, at most limit.
	Events(ctx context.Context, name string, limit int) ([]*deploy.Event, error)
}

var (
	_ Alerts      = (*alert.Engine)(nil)
	_ Pipelines   = (*pipeline.Service)(nil)
	_ Registry    = (*registry.Service)(nil)
	_ Deployments = (*deploy.Service)(nil)
)

// Service assembles stories. Deployments, Pipelines and Registry are
// required; Alerts is nil on a server without alerting (the story then
// starts at runs and versions).
type Service struct {
	Deployments Deployments
	Pipelines   Pipelines
	Registry    Registry
	Alerts      Alerts
}

// New returns a Service reading from the given services; alerts may be
// nil.
func New(deployments Deployments, pipelines Pipelines, reg Registry, alerts Alerts) *Service {
	return &Service{Deployments: deployments, Pipelines: pipelines, Registry: reg, Alerts: alerts}
}

// Story returns the story of deployment name: at most limit chains
// (DefaultLimit when 0), newest first. EINVALID for a limit outside 0 to
// MaxLimit; ENOTFOUND for a name never deployed (a deleted deployment
// still has its story).
func (s *Service) Story(ctx context.Context, name string, limit int) (*Story, error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 0 || limit > MaxLimit {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid limit %d: give a number of chains from 1 to %d (default %d).", limit, MaxLimit, DefaultLimit)
	}
	if s.Deployments == nil || s.Pipelines == nil || s.Registry == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server cannot tell stories: it lacks the deployments, pipelines or registry service.")
	}
	b := &builder{svc: s, name: name, limit: limit}
	if err := b.load(ctx); err != nil {
		return nil, err
	}
	return b.build(ctx)
}
