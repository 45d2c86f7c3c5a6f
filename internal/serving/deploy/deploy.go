// Package deploy is the control plane of model serving: deployments (named
// endpoints serving a primary model version, optionally a canary taking a
// share of traffic and a shadow receiving a copy of it), their revisions,
// the atomic changes made to them (create, update, promote, rollback,
// delete, automatic rollback, an alias moving) and the events recording
// each change.
//
// A deployment's Spec says what the user asked for: model references such
// as flights@3 or flights@champion. Its Slots say what is served: each
// reference resolved to a concrete model version and given a revision
// number. A revision number is allocated whenever a slot starts serving a
// different model version; promoting a canary moves its revision to the
// primary slot unchanged, so the data plane swaps nothing. Every change
// increments the deployment's Generation and is applied with a
// compare-and-swap on it, so concurrent changes (two servers, a user and
// the automatic rollback) never interleave.
//
// The data plane (package router, in mloop server and in each mloop serve
// replica) follows the State through the ControlPlane interface: in
// process through Service, remotely through the HTTP client.
package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
)

// Roles of a deployment's slots.
const (
	RolePrimary = "primary"
	RoleCanary  = "canary"
	RoleShadow  = "shadow"
)

// Event types.
const (
	EventCreated        = "created"
	EventUpdated        = "updated"
	EventPromoted       = "promoted"
	EventRolledBack     = "rolled_back"
	EventAutoRolledBack = "auto_rolled_back"
	EventAliasMoved     = "alias_moved"
	EventDeleted        = "deleted"
	// EventRolloutStarted records a canary started by a deployment's
	// RolloutPolicy when the alias its primary follows moved; it is
	// Automatic, and its details' After holds the canary slot (Rollout
	// true).
	EventRolloutStarted = "rollout_started"
)

// RevisionHeader is the request header that pins a request to a revision:
// a revision number or a role (primary, canary). Responses carry the
// revision that answered in the same header, and the model version in
// ModelVersionHeader.
const (
	RevisionHeader     = "X-Mloop-Revision"
	ModelVersionHeader = "X-Mloop-Model-Version"
)

// Ref names a model version: Model@Version, or Model@Alias that follows
// the alias.
type Ref struct {
	Model string
	// Version is set for a pinned reference, zero for an alias.
	Version int64
	// Alias is set for a reference that follows an alias.
	Alias string
}

// ParseRef parses MODEL@VERSION or MODEL@ALIAS (the last @ separates). A
// malformed reference is EINVALID.
func ParseRef(s string) (Ref, error) {
	i := strings.LastIndexByte(s, '@')
	if i <= 0 || i == len(s)-1 {
		return Ref{}, mloop.Errorf(mloop.EINVALID, "model reference %q: use MODEL@VERSION or MODEL@ALIAS, such as flights@3 or flights@champion", s)
	}
	name, tail := s[:i], s[i+1:]
	if v, err := strconv.ParseInt(tail, 10, 64); err == nil {
		if v <= 0 {
			return Ref{}, mloop.Errorf(mloop.EINVALID, "model reference %q: versions start at 1", s)
		}
		return Ref{Model: name, Version: v}, nil
	}
	return Ref{Model: name, Alias: tail}, nil
}

// String returns MODEL@VERSION or MODEL@ALIAS.
func (r Ref) String() string {
	if r.Alias != "" {
		return r.Model + "@" + r.Alias
	}
	return r.Model + "@" + strconv.FormatInt(r.Version, 10)
}

// IsZero reports whether r names nothing.
func (r Ref) IsZero() bool { return r.Model == "" }

// MarshalJSON writes the reference as its string, "flights@3" or
// "flights@champion"; the zero Ref is "".
func (r Ref) MarshalJSON() ([]byte, error) {
	if r.IsZero() {
		return []byte(`""`), nil
	}
	return json.Marshal(r.String())
}

// UnmarshalJSON reads a reference string; "" is the zero Ref (which, in an
// Update, removes a canary or a shadow).
func (r *Ref) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return mloop.Errorf(mloop.EINVALID, "model reference %s: use a string such as \"flights@3\" or \"flights@champion\"", b)
	}
	if s == "" {
		*r = Ref{}
		return nil
	}
	v, err := ParseRef(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// Duration is a time.Duration written in JSON as a string such as "30s".
type Duration time.Duration

// MarshalJSON writes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string ("1m30s") or a number of
// seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("invalid duration %q: use a form such as 30s, 2m or 1h", s)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("invalid duration %s: use a string such as \"30s\" or a number of seconds", b)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}

// Batching configures adaptive batching of a deployment's native runtimes.
// A zero MaxBatchSize turns it off.
type Batching struct {
	// MaxBatchSize is the most rows predicted together.
	MaxBatchSize int `json:"max_batch_size,omitempty"`
	// MaxDelay is the longest a request waits for others to join it.
	MaxDelay Duration `json:"max_delay,omitempty"`
}

// RollbackPolicy says when a canary is rolled back automatically: over the
// last Window, once the canary has answered at least MinRequests, its error
// rate exceeds the primary's by more than MaxErrorRateIncrease, or its p99
// latency exceeds MaxLatencyRatio times the primary's (and by at least
// MinLatencyIncrease, so that microsecond noise does not count).
type RollbackPolicy struct {
	// Disabled turns automatic rollback off.
	Disabled bool `json:"disabled,omitempty"`
	// Window is how far back requests count (default 1m).
	Window Duration `json:"window,omitempty"`
	// MinRequests is how many canary requests the window needs before it
	// is judged (default 20).
	MinRequests int `json:"min_requests,omitempty"`
	// MaxErrorRateIncrease is the canary's error rate minus the primary's
	// beyond which it is rolled back (default 0.05).
	MaxErrorRateIncrease float64 `json:"max_error_rate_increase,omitempty"`
	// MaxLatencyRatio bounds the canary's p99 latency relative to the
	// primary's (default 2).
	MaxLatencyRatio float64 `json:"max_latency_ratio,omitempty"`
	// MinLatencyIncrease is the smallest p99 difference that counts
	// (default 5ms).
	MinLatencyIncrease Duration `json:"min_latency_increase,omitempty"`
}

// Defaults of RollbackPolicy and Spec.
const (
	DefaultRollbackWindow       = time.Minute
	DefaultRollbackMinRequests  = 20
	DefaultMaxErrorRateIncrease = 0.05
	DefaultMaxLatencyRatio      = 2
	DefaultMinLatencyIncrease   = 5 * time.Millisecond
	DefaultMaxBatchRows         = 10000
)

// WithDefaults returns p with zero fields set to their defaults.
func (p RollbackPolicy) WithDefaults() RollbackPolicy {
	if p.Window <= 0 {
		p.Window = Duration(DefaultRollbackWindow)
	}
	if p.MinRequests <= 0 {
		p.MinRequests = DefaultRollbackMinRequests
	}
	if p.MaxErrorRateIncrease <= 0 {
		p.MaxErrorRateIncrease = DefaultMaxErrorRateIncrease
	}
	if p.MaxLatencyRatio <= 0 {
		p.MaxLatencyRatio = DefaultMaxLatencyRatio
	}
	if p.MinLatencyIncrease <= 0 {
		p.MinLatencyIncrease = Duration(DefaultMinLatencyIncrease)
	}
	return p
}

// Spec is what a user asks a deployment to serve.
type Spec struct {
	// Model is the primary model reference.
	Model Ref `json:"model"`
	// Canary, when set, takes CanaryPercent percent of traffic.
	Canary        *Ref `json:"canary,omitempty"`
	CanaryPercent int  `json:"canary_percent,omitempty"`
	// Shadow, when set, receives a copy of live traffic; its answers are
	// compared with the primary's and discarded.
	Shadow *Ref `json:"shadow,omitempty"`
	// Batching applies to native runtimes.
	Batching Batching `json:"batching,omitzero"`
	// PayloadSample is the fraction of requests logged with their inputs
	// and outputs, from 0 to 1; nil means 1 (every request).
	PayloadSample *float64 `json:"payload_sample,omitempty"`
	// MaxBatchRows is the most rows one request may carry (default
	// DefaultMaxBatchRows); beyond it the request gets a 400.
	MaxBatchRows int `json:"max_batch_rows,omitempty"`
	// Rollback is the automatic canary rollback policy.
	Rollback RollbackPolicy `json:"rollback,omitzero"`
	// Rollout, when set, sends the releases of the alias the primary
	// follows through a canary judged on live figures (see RolloutPolicy);
	// it needs Model to follow an alias.
	Rollout *RolloutPolicy `json:"rollout,omitempty"`
}

// Slot is one model version a deployment serves, in one role.
type Slot struct {
	// Role is RolePrimary, RoleCanary or RoleShadow.
	Role string `json:"role"`
	// Revision identifies this model version's service in the deployment;
	// it survives a promotion.
	Revision int64 `json:"revision"`
	// Ref is the reference the slot was resolved from.
	Ref Ref `json:"ref"`
	// Model and Version are the resolved model version.
	Model   string `json:"model"`
	Version int64  `json:"version"`
	// Flavor is the model's flavor (xgboost or process), from the
	// version's mloop.flavor tag.
	Flavor string `json:"flavor"`
	// Percent is the share of traffic (primary and canary; zero for a
	// shadow).
	Percent int `json:"percent"`
	// Since is when (Unix milliseconds) this slot started serving its
	// model version in its role: set by every change that creates or
	// moves a slot (a promotion included), kept by the others; zero for
	// slots recorded before it existed.
	Since int64 `json:"since,omitempty"`
	// Rollout marks a canary started by the deployment's RolloutPolicy:
	// only such canaries are judged (promoted or rolled back) by
	// Service.ReconcileRollouts.
	Rollout bool `json:"rollout,omitempty"`
}

// Deployment is a named endpoint and what it serves.
type Deployment struct {
	Name string `json:"name"`
	Spec Spec   `json:"spec"`
	// Slots are the resolved model versions: the primary first, then the
	// canary and the shadow when set.
	Slots []Slot `json:"slots"`
	// Generation counts the changes; it starts at 1.
	Generation int64 `json:"generation"`
	// NextRevision is the revision number the next newly served model
	// version gets.
	NextRevision int64 `json:"next_revision"`
	// CreatedAt and UpdatedAt are Unix milliseconds.
	CreatedAt int64 `json:"created_at"`
	UpdatedAt int64 `json:"updated_at"`
}

// Slot returns the slot with the given role, or nil.
func (d *Deployment) Slot(role string) *Slot {
	for i := range d.Slots {
		if d.Slots[i].Role == role {
			return &d.Slots[i]
		}
	}
	return nil
}

// Event records one change of a deployment.
type Event struct {
	ID         int64  `json:"id"`
	Deployment string `json:"deployment"`
	// Time is Unix milliseconds.
	Time int64 `json:"time"`
	// Type is one of the Event* constants.
	Type string `json:"type"`
	// Generation is the deployment's generation after the change.
	Generation int64 `json:"generation"`
	// Message says what changed, for people: "canary flights@2 (revision
	// 2) rolled back: error rate 0.52 vs primary 0.00 over 1m0s (120
	// requests)".
	Message string `json:"message"`
	// Automatic is true for changes the system made on its own.
	Automatic bool `json:"automatic,omitempty"`
	// Details holds the change's data: the slots before and after and,
	// for an automatic rollback, the measured figures.
	Details json.RawMessage `json:"details,omitempty"`
}

// Store keeps deployments, their past generations and their events. The
// sqlstore package implements it for SQLite and PostgreSQL; storetest is
// its conformance suite.
type Store interface {
	// CreateDeployment stores a new deployment (Generation 1) and its
	// event in one transaction; EEXISTS when the name is taken.
	CreateDeployment(ctx context.Context, d *Deployment, ev *Event) error
	// GetDeployment returns ENOTFOUND for an unknown name.
	GetDeployment(ctx context.Context, name string) (*Deployment, error)
	// ListDeployments returns every deployment by name.
	ListDeployments(ctx context.Context) ([]*Deployment, error)
	// UpdateDeployment replaces the deployment whose generation is
	// prevGeneration with d (d.Generation = prevGeneration+1), keeps the
	// replaced generation in the history and stores ev, in one
	// transaction. ECONFLICT when the stored generation is not
	// prevGeneration; ENOTFOUND when the deployment is gone.
	UpdateDeployment(ctx context.Context, d *Deployment, prevGeneration int64, ev *Event) error
	// DeleteDeployment removes the deployment and its history and stores
	// ev (events are kept); ENOTFOUND for an unknown name.
	DeleteDeployment(ctx context.Context, name string, ev *Event) error
	// History returns the deployment's past generations, newest first, at
	// most limit (0 means all).
	History(ctx context.Context, name string, limit int) ([]*Deployment, error)
	// ListEvents returns the deployment's events, newest first, at most
	// limit (0 means all); an empty name lists every deployment's events.
	ListEvents(ctx context.Context, name string, limit int) ([]*Event, error)
}

// State is what the data plane serves: every deployment with its slots,
// and an ETag that changes whenever any of them does.
type State struct {
	ETag        string        `json:"etag"`
	Deployments []*Deployment `json:"deployments"`
}

// RollbackRequest asks for a rollback. With a canary, the canary is removed
// and all traffic returns to the primary; without one, the primary returns
// to the model version it served before (ECONFLICT when there was none).
type RollbackRequest struct {
	// IfCanaryRevision, when non-zero, makes the rollback conditional: it
	// happens only while the canary is that revision (ECONFLICT
	// otherwise). The automatic rollback sets it so that a decision taken
	// on old figures never removes a newer canary.
	IfCanaryRevision int64 `json:"if_canary_revision,omitempty"`
	// Automatic marks a rollback decided by the data plane.
	Automatic bool `json:"automatic,omitempty"`
	// Reason is recorded in the event.
	Reason string `json:"reason,omitempty"`
	// Details (figures measured) are recorded in the event.
	Details json.RawMessage `json:"details,omitempty"`
}

// ControlPlane is what the data plane needs from the control plane.
// *Service implements it in process; the HTTP client implements it for
// mloop serve.
type ControlPlane interface {
	// State returns the current state. When etag is the current state's
	// ETag it waits up to wait for a change first (long poll), returning
	// the unchanged state when none came.
	State(ctx context.Context, etag string, wait time.Duration) (*State, error)
	// Rollback rolls the deployment's canary (or primary) back.
	Rollback(ctx context.Context, name string, req RollbackRequest) (*Deployment, error)
	// FetchModel writes the files of a model version into dir (which
	// exists and is empty). ENOTFOUND for an unknown version.
	FetchModel(ctx context.Context, model string, version int64, dir string) error
}
