package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// Registry resolves model references. The registry Service satisfies it.
type Registry interface {
	// GetModelVersion returns ENOTFOUND for an unknown model or version.
	GetModelVersion(ctx context.Context, name, version string) (*registry.ModelVersion, error)
	// GetModelVersionByAlias returns ENOTFOUND for an unknown alias (the
	// registry Service, as MLflow, answers EINVALID: both mean the alias
	// does not resolve).
	GetModelVersionByAlias(ctx context.Context, name, alias string) (*registry.ModelVersion, error)
	// GetModelVersionDownloadURI returns where the version's files are.
	GetModelVersionDownloadURI(ctx context.Context, name, version string) (string, error)
	// SetRegisteredModelAlias points an alias at a version (the rollout
	// controller sets an alias back after rolling its release back);
	// ENOTFOUND for an unknown model or version.
	SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error
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

// MaxStateWait bounds the wait of one State call.
const MaxStateWait = 5 * time.Minute

// statePollInterval is how often a waiting State call re-reads the store,
// to notice changes made by other servers sharing the database.
const statePollInterval = 500 * time.Millisecond

// maxAttempts bounds the compare-and-swap retries of one change.
const maxAttempts = 10

// Limits of a RollbackRequest.
const (
	maxReasonLength  = 1000
	maxDetailsLength = 64 << 10
)

// Service manages deployments: every change is validated, resolved against
// the registry, applied atomically (compare-and-swap on the generation)
// and recorded as an event. It also serves the State that data planes
// follow, and follows aliases: when an alias a deployment serves moves,
// the slot gets the new version as a new revision (EventAliasMoved).
//
// Several Services (one per server) may share one database: every change
// is a compare-and-swap, so concurrent changes never interleave, and a
// waiting State call re-reads the store every 500ms to notice changes made
// elsewhere (changes made through this Service wake it at once).
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
	// Health measures canaries for the rollout controller
	// (ReconcileRollouts); nil when the server has no monitoring, which
	// then judges no rollout canary (a server with monitoring does).
	Health HealthSource

	mu sync.Mutex
	// changed is closed and replaced on every change made through s.
	changed chan struct{}
	// kick wakes the alias follower.
	kick chan struct{}
	// missing holds the alias slots (deployment/role/ref) whose alias did
	// not resolve at the last sync, so that the warning is logged once.
	missing map[string]bool
	// held maps a deployment whose manual canary holds a rollout back to
	// the version held back, so that it is logged once.
	held map[string]string
	// cancel and done stop and wait for the alias follower.
	cancel context.CancelFunc
	done   chan struct{}
}

// NewService returns a Service over the given store, registry and
// artifact store.
func NewService(store Store, reg Registry, arts Artifacts) *Service {
	return &Service{Store: store, Registry: reg, Artifacts: arts}
}

// Update changes a deployment; nil fields keep their value. A zero Ref in
// Canary or Shadow removes the canary or the shadow (removing the canary
// also resets CanaryPercent unless the update sets it).
type Update struct {
	Model         *Ref            `json:"model,omitempty"`
	Canary        *Ref            `json:"canary,omitempty"`
	CanaryPercent *int            `json:"canary_percent,omitempty"`
	Shadow        *Ref            `json:"shadow,omitempty"`
	Batching      *Batching       `json:"batching,omitempty"`
	PayloadSample *float64        `json:"payload_sample,omitempty"`
	MaxBatchRows  *int            `json:"max_batch_rows,omitempty"`
	Rollback      *RollbackPolicy `json:"rollback,omitempty"`
	// Rollout sets the rollout policy; {"disabled": true} removes it.
	Rollout *RolloutPolicy `json:"rollout,omitempty"`
}

// EventDetails is what an Event's Details hold for the changes Service
// makes: the slots before and after the change and, for a rollback, the
// request's reason and details (the figures an automatic rollback
// measured).
type EventDetails struct {
	Before  []Slot          `json:"before"`
	After   []Slot          `json:"after"`
	Reason  string          `json:"reason,omitempty"`
	Details json.RawMessage `json:"details,omitempty"`
}

func (s *Service) log() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Open starts following aliases in the background until Close: every
// AliasInterval, and at once after AliasesChanged. ECONFLICT when already
// open. ctx only carries values: cancelling it does not stop the
// follower, Close does.
func (s *Service) Open(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return mloop.Errorf(mloop.ECONFLICT, "the deployment service is already open")
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if s.kick == nil {
		s.kick = make(chan struct{}, 1)
	}
	s.cancel, s.done = cancel, make(chan struct{})
	go s.follow(bg, s.done, s.kick)
	return nil
}

// Close stops following aliases and waits for the follower to return.
func (s *Service) Close() error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	return nil
}

// AliasesChanged asks the alias follower started by Open to re-resolve
// aliases now rather than at its next tick (call it after an alias was set
// or deleted, for a quicker hot swap). It never blocks.
func (s *Service) AliasesChanged() {
	select {
	case s.kickChan() <- struct{}{}:
	default:
	}
}

func (s *Service) kickChan() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kick == nil {
		s.kick = make(chan struct{}, 1)
	}
	return s.kick
}

// follow runs SyncAliases, then ReconcileRollouts, until ctx ends, then
// closes done.
func (s *Service) follow(ctx context.Context, done chan struct{}, kick chan struct{}) {
	defer close(done)
	interval := s.AliasInterval
	if interval <= 0 {
		interval = DefaultAliasInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.SyncAliases(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("cannot follow the aliases of deployments", "err", err)
		}
		if err := s.ReconcileRollouts(ctx); err != nil && ctx.Err() == nil {
			s.log().Warn("cannot judge the rollout canaries of deployments", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
	}
}

// changes returns the channel closed at the next change made through s.
func (s *Service) changes() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

// notify wakes every State call waiting for a change.
func (s *Service) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
	}
	s.changed = make(chan struct{})
}

// resolved is a model reference resolved against the registry.
type resolved struct {
	model   string
	version int64
	flavor  string
}

func (r resolved) String() string { return r.model + "/" + strconv.FormatInt(r.version, 10) }

// lookup returns the model version a reference names, with the registry's
// error: ENOTFOUND (or, for an alias, the registry's EINVALID) when it
// does not resolve.
func (s *Service) lookup(ctx context.Context, r Ref) (*registry.ModelVersion, error) {
	if r.Alias != "" {
		return s.Registry.GetModelVersionByAlias(ctx, r.Model, r.Alias)
	}
	return s.Registry.GetModelVersion(ctx, r.Model, strconv.FormatInt(r.Version, 10))
}

// aliasMissing reports whether err, from looking an alias up, means the
// alias (or its model) does not exist.
func aliasMissing(err error) bool {
	code := mloop.ErrorCode(err)
	return code == mloop.ENOTFOUND || code == mloop.EINVALID
}

// resolve resolves the reference of a role for serving. A reference that
// does not resolve is ENOTFOUND and says what to do; a version whose
// registration is not finished is ECONFLICT.
func (s *Service) resolve(ctx context.Context, role string, r Ref) (resolved, error) {
	field := role // as the spec names it
	if role == RolePrimary {
		field = "model"
	}
	v, err := s.lookup(ctx, r)
	if err != nil {
		reason := strings.TrimSuffix(mloop.ErrorMessage(err), ".")
		switch {
		case r.Alias != "" && aliasMissing(err):
			return resolved{}, mloop.Errorf(mloop.ENOTFOUND, "%s %s does not resolve (%s): set alias %s of model %s in the registry, or deploy MODEL@VERSION",
				field, r, reason, r.Alias, r.Model)
		case mloop.IsNotFound(err):
			return resolved{}, mloop.Errorf(mloop.ENOTFOUND, "%s %s does not resolve (%s): register the model version with mloop model register, or check the name and version",
				field, r, reason)
		}
		return resolved{}, fmt.Errorf("resolve %s %s: %w", field, r, err)
	}
	if v.Status != "" && v.Status != registry.StatusReady {
		return resolved{}, mloop.Errorf(mloop.ECONFLICT, "%s %s is model version %s/%d, which is not ready to serve (status %s): wait for its registration to finish or deploy another version",
			field, r, v.Name, v.Version, v.Status)
	}
	res := resolved{model: v.Name, version: v.Version}
	for _, t := range v.Tags {
		if t.Key == modelcheck.FlavorTag {
			res.flavor = t.Value
		}
	}
	return res, nil
}

// wantSlot is a slot to build: its role, reference, resolved version and
// share of traffic.
type wantSlot struct {
	role    string
	ref     Ref
	res     resolved
	percent int
}

// slotVersion returns what a slot serves.
func slotVersion(sl Slot) resolved {
	return resolved{model: sl.Model, version: sl.Version, flavor: sl.Flavor}
}

// sameVersion reports whether a and b are the same model version.
func sameVersion(a, b resolved) bool { return a.model == b.model && a.version == b.version }

// buildSlots turns wanted slots into Slots with revisions, given the
// slots currently served (none for a new deployment) and the next free
// revision number; it returns the slots and the next free revision number
// after them. A slot keeps the revision of the current slot of its role
// when the model version is unchanged; otherwise it takes over the
// revision of another current slot serving that version (an update that
// moves the canary's version to the primary is a promotion), and only
// else gets a new revision. A slot keeping its role and revision keeps
// its Since and Rollout; the others start serving at now.
func buildSlots(cur []Slot, next int64, wants []wantSlot, now int64) ([]Slot, int64) {
	revs := make([]int64, len(wants))
	kept := make([]*Slot, len(wants))
	claimed := map[int64]bool{}
	for i, w := range wants {
		for _, c := range cur {
			if c.Role == w.role && sameVersion(slotVersion(c), w.res) && !claimed[c.Revision] {
				revs[i], claimed[c.Revision] = c.Revision, true
				kept[i] = &c
				break
			}
		}
	}
	for i, w := range wants {
		if revs[i] != 0 {
			continue
		}
		for _, c := range cur {
			if sameVersion(slotVersion(c), w.res) && !claimed[c.Revision] {
				revs[i], claimed[c.Revision] = c.Revision, true
				break
			}
		}
	}
	slots := make([]Slot, len(wants))
	for i, w := range wants {
		if revs[i] == 0 {
			revs[i] = next
			next++
		}
		slots[i] = Slot{Role: w.role, Revision: revs[i], Ref: w.ref, Model: w.res.model, Version: w.res.version,
			Flavor: w.res.flavor, Percent: w.percent, Since: now}
		if k := kept[i]; k != nil {
			slots[i].Since, slots[i].Rollout = k.Since, k.Rollout
		}
	}
	return slots, next
}

// wants lists the slots spec asks for, in role order, with their shares
// of traffic; res gives each role's resolved version.
func wants(spec Spec, res map[string]resolved) []wantSlot {
	primary := 100
	if spec.Canary != nil {
		primary -= spec.CanaryPercent
	}
	out := []wantSlot{{role: RolePrimary, ref: spec.Model, res: res[RolePrimary], percent: primary}}
	if spec.Canary != nil {
		out = append(out, wantSlot{role: RoleCanary, ref: *spec.Canary, res: res[RoleCanary], percent: spec.CanaryPercent})
	}
	if spec.Shadow != nil {
		out = append(out, wantSlot{role: RoleShadow, ref: *spec.Shadow, res: res[RoleShadow]})
	}
	return out
}

// roleRef is a role and its reference.
type roleRef struct {
	role string
	ref  Ref
}

// specRefs returns the references of spec in role order.
func specRefs(spec Spec) []roleRef {
	refs := []roleRef{{RolePrimary, spec.Model}}
	if spec.Canary != nil {
		refs = append(refs, roleRef{RoleCanary, *spec.Canary})
	}
	if spec.Shadow != nil {
		refs = append(refs, roleRef{RoleShadow, *spec.Shadow})
	}
	return refs
}

// checkCanary refuses a canary that resolves to the primary's version.
func checkCanary(spec Spec, res map[string]resolved) error {
	c, ok := res[RoleCanary]
	if spec.Canary == nil || !ok || !sameVersion(c, res[RolePrimary]) {
		return nil
	}
	return mloop.Errorf(mloop.EINVALID, "canary %s resolves to %s, which the primary (%s) already serves: a canary serves a different model version",
		spec.Canary, c, spec.Model)
}

// details encodes an event's details.
func details(before, after []Slot, reason string, extra json.RawMessage) json.RawMessage {
	if before == nil {
		before = []Slot{}
	}
	if after == nil {
		after = []Slot{}
	}
	b, err := json.Marshal(EventDetails{Before: before, After: after, Reason: reason, Details: extra})
	if err != nil {
		// Slots always encode and extra was checked valid.
		panic(fmt.Sprintf("deploy: encode event details: %v", err))
	}
	return b
}

// Create creates a deployment; EEXISTS when the name is taken, EINVALID
// for a bad name or spec (see ValidateName and Spec.Validate) or a canary
// resolving to the primary's version, ENOTFOUND for a model version or
// alias that does not exist. Revisions are numbered from 1 in role order
// (primary, canary, shadow).
func (s *Service) Create(ctx context.Context, name string, spec Spec) (*Deployment, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	spec = spec.normalize().clone()
	if err := checkRolloutAlias(spec); err != nil {
		return nil, err
	}
	res := map[string]resolved{}
	for _, rr := range specRefs(spec) {
		r, err := s.resolve(ctx, rr.role, rr.ref)
		if err != nil {
			return nil, err
		}
		res[rr.role] = r
	}
	if err := checkCanary(spec, res); err != nil {
		return nil, err
	}
	now := s.now().UnixMilli()
	slots, next := buildSlots(nil, 1, wants(spec, res), now)
	d := &Deployment{Name: name, Spec: spec, Slots: slots, Generation: 1, NextRevision: next, CreatedAt: now, UpdatedAt: now}
	ev := &Event{Type: EventCreated, Time: now, Message: "created: " + describeSlots(slots),
		Details: details(nil, slots, "", nil)}
	if err := s.Store.CreateDeployment(ctx, d, ev); err != nil {
		return nil, err
	}
	s.recorded(ev)
	return d, nil
}

// recorded wakes State waiters and logs a recorded change.
func (s *Service) recorded(ev *Event) {
	s.notify()
	s.log().Info("deployment changed", "deployment", ev.Deployment, "event", ev.Type, "generation", ev.Generation,
		"automatic", ev.Automatic, "message", ev.Message)
}

// mutation computes one change of the current deployment cur (a copy it
// may modify): the next deployment and its event (Type and Message; the
// rest is filled in), or nil, nil for no change.
type mutation func(ctx context.Context, cur *Deployment) (*Deployment, *Event, error)

// apply applies m to the named deployment with a compare-and-swap on its
// generation, re-reading and retrying when another writer changed it
// meanwhile. A no-op returns the current deployment unchanged.
func (s *Service) apply(ctx context.Context, name string, m mutation) (*Deployment, error) {
	for attempt := 1; ; attempt++ {
		cur, err := s.Store.GetDeployment(ctx, name)
		if err != nil {
			return nil, err
		}
		next, ev, err := m(ctx, cur.clone())
		if err != nil {
			return nil, err
		}
		if next == nil {
			return cur, nil
		}
		now := s.now().UnixMilli()
		next.Name, next.CreatedAt, next.UpdatedAt = cur.Name, cur.CreatedAt, max(now, cur.UpdatedAt)
		ev.Time = next.UpdatedAt
		if ev.Details == nil {
			ev.Details = details(cur.Slots, next.Slots, "", nil)
		}
		err = s.Store.UpdateDeployment(ctx, next, cur.Generation, ev)
		if err == nil {
			s.recorded(ev)
			return next, nil
		}
		if mloop.ErrorCode(err) != mloop.ECONFLICT {
			return nil, err
		}
		if attempt == maxAttempts {
			return nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s kept changing while this change was applied (%d attempts): try again", name, attempt)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// clone returns a deep copy of d.
func (d *Deployment) clone() *Deployment {
	c := *d
	c.Spec = d.Spec.clone()
	c.Slots = append([]Slot(nil), d.Slots...)
	return &c
}

// clone returns a copy of s that shares no pointer with it.
func (s Spec) clone() Spec {
	if s.Canary != nil {
		c := *s.Canary
		s.Canary = &c
	}
	if s.Shadow != nil {
		c := *s.Shadow
		s.Shadow = &c
	}
	if s.PayloadSample != nil {
		p := *s.PayloadSample
		s.PayloadSample = &p
	}
	if s.Rollout != nil {
		r := *s.Rollout
		s.Rollout = &r
	}
	return s
}

// unchanged reports whether next serves and asks for exactly what cur does.
func unchanged(cur, next *Deployment) bool {
	return reflect.DeepEqual(cur.Spec, next.Spec) && reflect.DeepEqual(cur.Slots, next.Slots) && cur.NextRevision == next.NextRevision
}

// applyUpdate returns spec with u applied.
func applyUpdate(spec Spec, u Update) Spec {
	if u.Model != nil {
		spec.Model = *u.Model
	}
	if u.Canary != nil {
		if u.Canary.IsZero() {
			spec.Canary = nil
			if u.CanaryPercent == nil {
				spec.CanaryPercent = 0
			}
		} else {
			c := *u.Canary
			spec.Canary = &c
		}
	}
	if u.CanaryPercent != nil {
		spec.CanaryPercent = *u.CanaryPercent
	}
	if u.Shadow != nil {
		if u.Shadow.IsZero() {
			spec.Shadow = nil
		} else {
			c := *u.Shadow
			spec.Shadow = &c
		}
	}
	if u.Batching != nil {
		spec.Batching = *u.Batching
	}
	if u.PayloadSample != nil {
		p := *u.PayloadSample
		spec.PayloadSample = &p
	}
	if u.MaxBatchRows != nil {
		spec.MaxBatchRows = *u.MaxBatchRows
	}
	if u.Rollback != nil {
		spec.Rollback = *u.Rollback
	}
	if u.Rollout != nil {
		r := *u.Rollout
		spec.Rollout = &r
	}
	return spec
}

// Update applies u atomically. The references u sets are resolved again
// (so setting the same alias picks up where it points now); the others
// keep serving what they serve. A slot whose model version changes gets a
// new revision; an update that changes nothing returns the deployment
// unchanged, without a new generation or event. Errors as Create, and
// ENOTFOUND for an unknown deployment.
//
// An update that removes a rollout canary (see RolloutPolicy) without
// promoting it sets the alias the primary follows back to the primary's
// version, as a rollback does.
func (s *Service) Update(ctx context.Context, name string, u Update) (*Deployment, error) {
	var revert *aliasRevert
	d, err := s.apply(ctx, name, func(ctx context.Context, cur *Deployment) (*Deployment, *Event, error) {
		revert = nil
		spec := applyUpdate(cur.Spec, u).normalize()
		if c := cur.Slot(RoleCanary); c != nil && c.Rollout && u.Canary == nil &&
			(spec.Rollout == nil || spec.Model != cur.Spec.Model) {
			// The rollout this canary belongs to ends with the policy or
			// with the alias the primary followed: the canary goes (and
			// the alias is set back), as a rollback would.
			spec.Canary, spec.CanaryPercent = nil, 0
		}
		if err := spec.Validate(); err != nil {
			return nil, nil, err
		}
		if u.Rollout != nil || u.Model != nil {
			if err := checkRolloutAlias(spec); err != nil {
				return nil, nil, err
			}
		}
		given := map[string]bool{RolePrimary: u.Model != nil, RoleCanary: u.Canary != nil, RoleShadow: u.Shadow != nil}
		res := map[string]resolved{}
		fresh := false
		for _, rr := range specRefs(spec) {
			role, ref := rr.role, rr.ref
			if sl := cur.Slot(role); sl != nil && sl.Ref == ref && !given[role] {
				res[role] = slotVersion(*sl)
				continue
			}
			r, err := s.resolve(ctx, role, ref)
			if err != nil {
				return nil, nil, err
			}
			res[role], fresh = r, fresh || role != RoleShadow
		}
		if fresh {
			if err := checkCanary(spec, res); err != nil {
				return nil, nil, err
			}
		}
		next := cur.clone()
		next.Spec = spec
		next.Slots, next.NextRevision = buildSlots(cur.Slots, cur.NextRevision, wants(spec, res), s.now().UnixMilli())
		if unchanged(cur, next) {
			return nil, nil, nil
		}
		plan, note := s.planAliasRevert(ctx, cur, next)
		revert = plan
		if plan != nil && next.Spec.Rollout != nil {
			next.Spec.Rollout = next.Spec.Rollout.withRejected(plan.Rejected)
		}
		return next, &Event{Type: EventUpdated, Message: "updated: " + describeUpdate(cur, next) + note}, nil
	})
	if err == nil {
		s.revertAlias(ctx, name, revert)
	}
	return d, err
}

// Promote makes the canary the primary (its revision keeps serving, with
// all traffic, and the primary follows the canary's reference, or, for a
// rollout canary, keeps following its alias); ECONFLICT
// when there is no canary, or when the canary changed while the promotion
// was applied (it never promotes a canary it did not see).
func (s *Service) Promote(ctx context.Context, name string) (*Deployment, error) {
	var seen int64 // the canary revision the first attempt saw
	return s.apply(ctx, name, func(ctx context.Context, cur *Deployment) (*Deployment, *Event, error) {
		canary := cur.Slot(RoleCanary)
		if canary == nil || cur.Spec.Canary == nil {
			if seen != 0 {
				return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s: canary revision %d was removed meanwhile (see mloop deploy events %s); nothing was promoted", name, seen, name)
			}
			return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s has no canary to promote: add one with mloop deploy update %s --canary MODEL@VERSION --canary-percent N", name, name)
		}
		if seen == 0 {
			seen = canary.Revision
		} else if canary.Revision != seen {
			return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s: the canary changed meanwhile (revision %d replaced %d); nothing was promoted: check it and promote again", name, canary.Revision, seen)
		}
		next, msg := promoted(cur, s.now().UnixMilli())
		return next, &Event{Type: EventPromoted, Message: "promoted: " + msg}, nil
	})
}

// Rollback removes the canary, or returns the primary to the version it
// served before; see RollbackRequest. Without a canary, the version served
// before is the newest past generation's primary version that differs from
// the current one (so a second rollback undoes the first); it is served
// as a new revision, pinned (MODEL@VERSION) even when the primary followed
// an alias, which the event says. ECONFLICT when IfCanaryRevision is not
// the canary's revision, when there is nothing to roll back to, or when
// the deployment changed in a way that alters what would be rolled back
// while the rollback was applied. An Automatic request is recorded as
// EventAutoRolledBack. Removing a rollout canary (see RolloutPolicy) also
// sets the alias the primary follows back to the primary's version while
// it still names the canary's, so that the rejected version is not rolled
// out again; the event says so.
func (s *Service) Rollback(ctx context.Context, name string, req RollbackRequest) (*Deployment, error) {
	if len(req.Reason) > maxReasonLength {
		return nil, mloop.Errorf(mloop.EINVALID, "rollback reason of %d bytes: give at most %d", len(req.Reason), maxReasonLength)
	}
	if len(req.Details) > maxDetailsLength {
		return nil, mloop.Errorf(mloop.ETOOLARGE, "rollback details of %d bytes: give at most %d", len(req.Details), maxDetailsLength)
	}
	if len(req.Details) > 0 && !json.Valid(req.Details) {
		return nil, mloop.Errorf(mloop.EINVALID, "rollback details are not valid JSON")
	}
	if req.IfCanaryRevision < 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "if_canary_revision %d: give a revision number, or 0 for an unconditional rollback", req.IfCanaryRevision)
	}
	typ := EventRolledBack
	if req.Automatic {
		typ = EventAutoRolledBack
	}
	// What the first attempt decided to roll back: a retry after a
	// concurrent change rolls back the same thing or nothing.
	var seenCanary, seenPrimary int64
	var revert *aliasRevert
	d, err := s.apply(ctx, name, func(ctx context.Context, cur *Deployment) (*Deployment, *Event, error) {
		revert = nil
		canary, primary := cur.Slot(RoleCanary), *cur.Slot(RolePrimary)
		if req.IfCanaryRevision != 0 && (canary == nil || canary.Revision != req.IfCanaryRevision) {
			now := "no canary"
			if canary != nil {
				now = fmt.Sprintf("canary revision %d", canary.Revision)
			}
			return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s no longer serves canary revision %d (it serves %s): nothing was rolled back", name, req.IfCanaryRevision, now)
		}
		switch {
		case seenCanary != 0 && (canary == nil || canary.Revision != seenCanary):
			return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s: canary revision %d was promoted, replaced or removed meanwhile (see mloop deploy events %s); nothing was rolled back", name, seenCanary, name)
		case seenPrimary != 0 && (canary != nil || primary.Revision != seenPrimary):
			return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s changed meanwhile (see mloop deploy events %s); nothing was rolled back: check it and roll back again", name, name)
		}
		next := cur.clone()
		var msg string
		if canary != nil {
			seenCanary = canary.Revision
			next.Spec.Canary, next.Spec.CanaryPercent = nil, 0
			primary.Percent = 100
			next.Slots = []Slot{primary}
			if sh := cur.Slot(RoleShadow); sh != nil {
				next.Slots = append(next.Slots, *sh)
			}
			msg = fmt.Sprintf("canary %s removed, all traffic to primary %s", describeSlot(*canary), describeSlot(primary))
		} else {
			seenPrimary = primary.Revision
			prev, err := s.previousPrimary(ctx, cur)
			if err != nil {
				return nil, nil, err
			}
			ref := Ref{Model: prev.model, Version: prev.version}
			back := Slot{Role: RolePrimary, Revision: cur.NextRevision, Ref: ref, Model: prev.model, Version: prev.version,
				Flavor: prev.flavor, Percent: 100, Since: s.now().UnixMilli()}
			next.NextRevision++
			next.Spec.Model = ref
			next.Slots[0] = back
			msg = fmt.Sprintf("primary %s replaced by %s, the version it served before", describeSlot(primary), describeSlot(back))
			if cur.Spec.Model.Alias != "" {
				msg += fmt.Sprintf("; it no longer follows %s: to follow the alias again, run mloop deploy update %s --model %s",
					cur.Spec.Model, name, cur.Spec.Model)
			}
		}
		if req.Automatic {
			msg = "rolled back automatically: " + msg
		} else {
			msg = "rolled back: " + msg
		}
		plan, note := s.planAliasRevert(ctx, cur, next)
		revert = plan
		if plan != nil {
			next.Spec.Rollout = next.Spec.Rollout.withRejected(plan.Rejected)
		}
		msg += note
		if req.Reason != "" {
			msg += " (" + req.Reason + ")"
		}
		return next, &Event{Type: typ, Automatic: req.Automatic, Message: msg,
			Details: details(cur.Slots, next.Slots, req.Reason, req.Details)}, nil
	})
	if err == nil {
		s.revertAlias(ctx, name, revert)
	}
	return d, err
}

// previousPrimary returns the model version the primary of cur served
// before its current one, checked against the registry. ECONFLICT when
// there is none or it no longer exists.
func (s *Service) previousPrimary(ctx context.Context, cur *Deployment) (resolved, error) {
	history, err := s.Store.History(ctx, cur.Name, 0)
	if err != nil {
		return resolved{}, err
	}
	now := slotVersion(*cur.Slot(RolePrimary))
	for _, h := range history {
		p := h.Slot(RolePrimary)
		if p == nil || sameVersion(slotVersion(*p), now) {
			continue
		}
		r, err := s.resolve(ctx, RolePrimary, Ref{Model: p.Model, Version: p.Version})
		if mloop.IsNotFound(err) {
			return resolved{}, mloop.Errorf(mloop.ECONFLICT, "deployment %s cannot roll back: model version %s/%d, which its primary served before, no longer exists in the registry; update the deployment to another version",
				cur.Name, p.Model, p.Version)
		} else if err != nil {
			return resolved{}, err
		}
		return r, nil
	}
	return resolved{}, mloop.Errorf(mloop.ECONFLICT, "deployment %s has no canary and its primary has served no other model version: there is nothing to roll back to", cur.Name)
}

// Delete removes a deployment (its events are kept); ENOTFOUND for an
// unknown name.
func (s *Service) Delete(ctx context.Context, name string) error {
	cur, err := s.Store.GetDeployment(ctx, name)
	if err != nil {
		return err
	}
	ev := &Event{Type: EventDeleted, Time: s.now().UnixMilli(), Message: "deleted: it served " + describeSlots(cur.Slots),
		Details: details(cur.Slots, nil, "", nil)}
	if err := s.Store.DeleteDeployment(ctx, name, ev); err != nil {
		return err
	}
	s.recorded(ev)
	return nil
}

// Get returns a deployment; ENOTFOUND for an unknown name.
func (s *Service) Get(ctx context.Context, name string) (*Deployment, error) {
	return s.Store.GetDeployment(ctx, name)
}

// List returns every deployment by name.
func (s *Service) List(ctx context.Context) ([]*Deployment, error) {
	return s.Store.ListDeployments(ctx)
}

// Events returns a deployment's events (every deployment's for an empty
// name), newest first, at most limit (0: all); the events of a deleted
// deployment are still listed. EINVALID for a negative limit.
func (s *Service) Events(ctx context.Context, name string, limit int) ([]*Event, error) {
	if limit < 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "limit %d: give a positive number of events, or 0 for all", limit)
	}
	return s.Store.ListEvents(ctx, name, limit)
}

// History returns a deployment's past generations, newest first, at most
// limit (0: all). ENOTFOUND for an unknown deployment, EINVALID for a
// negative limit.
func (s *Service) History(ctx context.Context, name string, limit int) ([]*Deployment, error) {
	if limit < 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "limit %d: give a positive number of generations, or 0 for all", limit)
	}
	return s.Store.History(ctx, name, limit)
}

// SyncAliases re-resolves every deployment slot that follows an alias
// once, recording an EventAliasMoved for each deployment whose aliases
// moved: the slot serves the new version as a new revision. Several
// servers may run it at once: the compare-and-swap lets only one record a
// move. An alias that no longer resolves leaves its slot serving the last
// version, with one warning logged (until it resolves again). The error
// joins the failures of the deployments that could not be synced; the
// others are synced all the same.
func (s *Service) SyncAliases(ctx context.Context) error {
	list, err := s.Store.ListDeployments(ctx)
	if err != nil {
		return err
	}
	// One lookup per alias per sync, shared by deployments and retries.
	cache := map[Ref]*registry.ModelVersion{}
	lookupErr := map[Ref]error{}
	lookup := func(ctx context.Context, r Ref) (*registry.ModelVersion, error) {
		if v, ok := cache[r]; ok {
			return v, nil
		}
		if err, ok := lookupErr[r]; ok {
			return nil, err
		}
		v, err := s.lookup(ctx, r)
		if err != nil {
			lookupErr[r] = err
			return nil, err
		}
		cache[r] = v
		return v, nil
	}
	seen := map[string]bool{}
	var errs []error
	for _, d := range list {
		moved := false
		for _, sl := range d.Slots {
			if sl.Ref.Alias == "" {
				continue
			}
			key := d.Name + "/" + sl.Role + "/" + sl.Ref.String()
			seen[key] = true
			v, err := lookup(ctx, sl.Ref)
			switch {
			case err != nil && aliasMissing(err):
				s.warnAliasMissing(key, d.Name, sl, err)
			case err != nil:
				errs = append(errs, fmt.Errorf("deployment %s: resolve %s %s: %w", d.Name, sl.Role, sl.Ref, err))
			case sl.Role == RolePrimary && rolloutActive(d):
				s.aliasFound(key, d.Name, sl)
				pending, held := rolloutPending(d, v)
				s.holdRollout(d, v, held)
				moved = moved || pending
				// A rejected version the alias still names: its set-back
				// failed or was cut short; do it now.
				s.revertAlias(ctx, d.Name, rejectedAlias(d, v))
			default:
				s.aliasFound(key, d.Name, sl)
				moved = moved || v.Name != sl.Model || v.Version != sl.Version
			}
		}
		if !moved {
			continue
		}
		_, err := s.apply(ctx, d.Name, func(ctx context.Context, cur *Deployment) (*Deployment, *Event, error) {
			return s.followAliases(ctx, cur, lookup)
		})
		if err != nil && !mloop.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deployment %s: follow its aliases: %w", d.Name, err))
		}
	}
	s.mu.Lock()
	for key := range s.missing {
		if !seen[key] {
			delete(s.missing, key)
		}
	}
	s.mu.Unlock()
	return errors.Join(errs...)
}

// followAliases moves the alias slots of cur whose alias now names
// another version to that version, each as a new revision; nil, nil when
// none moved. The primary of a deployment with a rollout policy does not
// move: a canary of the new version starts instead (see rolloutStep).
func (s *Service) followAliases(ctx context.Context, cur *Deployment, lookup func(context.Context, Ref) (*registry.ModelVersion, error)) (*Deployment, *Event, error) {
	next := cur.clone()
	now := s.now().UnixMilli()
	var msgs []string
	for i, sl := range cur.Slots {
		if sl.Ref.Alias == "" || sl.Role == RolePrimary && rolloutActive(cur) {
			continue
		}
		v, err := lookup(ctx, sl.Ref)
		if err != nil || v.Name == sl.Model && v.Version == sl.Version {
			continue // missing aliases keep serving; lookup failures were reported
		}
		if v.Status != "" && v.Status != registry.StatusReady {
			continue // not servable yet: a later sync picks it up
		}
		moved := sl
		moved.Model, moved.Version, moved.Revision, moved.Flavor = v.Name, v.Version, next.NextRevision, ""
		moved.Since, moved.Rollout = now, false
		for _, t := range v.Tags {
			if t.Key == modelcheck.FlavorTag {
				moved.Flavor = t.Value
			}
		}
		next.NextRevision++
		next.Slots[i] = moved
		role := ""
		if sl.Role != RolePrimary {
			role = sl.Role + " "
		}
		msgs = append(msgs, fmt.Sprintf("alias %s moved: %s/%d → %s/%d; %srevision %d replaces revision %d",
			sl.Ref, sl.Model, sl.Version, moved.Model, moved.Version, role, moved.Revision, sl.Revision))
	}
	typ, reason := EventAliasMoved, ""
	if rolloutActive(cur) {
		if v, err := lookup(ctx, cur.Spec.Model); err == nil {
			t, msg, why := rolloutStep(cur, next, v, now)
			if t != "" {
				typ, reason = t, why
				msgs = append([]string{msg}, msgs...)
			}
		}
	}
	if len(msgs) == 0 {
		return nil, nil, nil
	}
	ev := &Event{Type: typ, Automatic: true, Message: strings.Join(msgs, "; ")}
	if reason != "" {
		ev.Details = details(cur.Slots, next.Slots, reason, nil)
	}
	return next, ev, nil
}

// warnAliasMissing logs, once per slot, that its alias does not resolve.
func (s *Service) warnAliasMissing(key, name string, sl Slot, err error) {
	s.mu.Lock()
	first := !s.missing[key]
	if s.missing == nil {
		s.missing = map[string]bool{}
	}
	s.missing[key] = true
	s.mu.Unlock()
	if first {
		s.log().Warn("a deployment's alias no longer resolves: it keeps serving the last version; set the alias again or update the deployment",
			"deployment", name, "role", sl.Role, "ref", sl.Ref.String(), "serving", fmt.Sprintf("%s/%d", sl.Model, sl.Version),
			"revision", sl.Revision, "err", mloop.ErrorMessage(err))
	}
}

// aliasFound forgets that a slot's alias did not resolve, logging that it
// does again.
func (s *Service) aliasFound(key, name string, sl Slot) {
	s.mu.Lock()
	was := s.missing[key]
	delete(s.missing, key)
	s.mu.Unlock()
	if was {
		s.log().Info("a deployment's alias resolves again", "deployment", name, "role", sl.Role, "ref", sl.Ref.String())
	}
}

var _ ControlPlane = (*Service)(nil)
