package router

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop/internal/serving/deploy"
)

// entry is a revision in a role of a routing table.
type entry struct {
	rev     *revision
	role    string
	percent int
	m       *slotMetrics // nil without metrics
}

// table is an immutable routing table: what one deployment serves.
type table struct {
	name    string
	gen     int64
	deleted bool
	// loadErr is set, with primary nil, when the primary failed to load
	// and there is no previous table to keep serving; primary nil without
	// loadErr means the deployment is loading.
	loadErr string

	primary, canary, shadow *entry
	entries                 []*entry // primary, canary, shadow
	canaryPercent           int      // 0 when the canary is tripped
	tripped                 bool
	maxRows                 int
	sample                  float64
	policy                  deploy.RollbackPolicy // with defaults
	inferPath               string                // /v2/models/NAME/infer, for process revisions
}

// ready reports whether the table's primary can answer.
func (t *table) ready() bool {
	return t != nil && !t.deleted && t.primary != nil && t.primary.rev.ready()
}

// entryOf returns rev's entry in t, or nil.
func (t *table) entryOf(rev *revision) *entry {
	for _, e := range t.entries {
		if e.rev == rev {
			return e
		}
	}
	return nil
}

// deployment is one deployment this replica serves.
type deployment struct {
	name  string
	table atomic.Pointer[table]

	// Under Router.mu: what the control plane asks for (desired, with
	// the revisions for its slots in the same order), numbered want; the
	// number of the last one swapped in, or resolved without a swap
	// (applied), and a channel closed when applied changes; superseded is
	// closed when desired is replaced, so that the wait for the previous
	// one's revisions ends; removed is set when the deployment is gone.
	desired    *deploy.Deployment
	wanted     []*revision
	want       int64
	applied    int64
	appliedCh  chan struct{}
	superseded chan struct{}
	removed    bool

	// trippedRev is the canary revision judged bad here (0 when none):
	// tables keep it out of the canary's share until the control plane
	// removes it. rollbackDone is set once the control plane took the
	// rollback (or refused it as stale). tripMu is held by Check while it
	// trips a table and by a swap from the moment it reads trippedRev
	// until its table is stored, so that neither undoes the other.
	tripMu       sync.Mutex
	trippedRev   int64
	trippedWhy   Verdict
	rollbackDone bool

	shadowOnce     sync.Once
	shadowQ        chan shadowJob
	shadowStop     context.CancelFunc
	shadowCtx      context.Context
	shadowDropped  atomic.Int64
	shadowBytes    atomic.Int64       // held by queued and running copies
	droppedMetric  prometheus.Counter // nil without metrics
	rollbackMetric prometheus.Counter // nil without metrics
}

// newDeployment returns a deployment with no table yet.
func newDeployment(r *Router, name string) *deployment {
	d := &deployment{name: name, shadowQ: make(chan shadowJob, r.cfg.ShadowQueue), appliedCh: make(chan struct{})}
	d.shadowCtx, d.shadowStop = context.WithCancel(r.ctx)
	if r.metrics != nil {
		d.droppedMetric = r.metrics.shadowDropped.WithLabelValues(name)
		d.rollbackMetric = r.metrics.rollbacks.WithLabelValues(name)
	}
	return d
}

// stopShadow ends the deployment's shadow workers.
func (d *deployment) stopShadow() { d.shadowStop() }

// swapLocked builds d's table for spec from its revisions (all loaded or
// failed) and swaps it in (under Router.mu).
func (r *Router) swapLocked(d *deployment, spec *deploy.Deployment, revs []*revision) {
	old := d.table.Load()
	t := &table{
		name:      spec.Name,
		gen:       spec.Generation,
		maxRows:   spec.Spec.MaxBatchRows,
		sample:    1,
		policy:    spec.Spec.Rollback.WithDefaults(),
		inferPath: "/v2/models/" + spec.Name + "/infer",
	}
	t.policy.Disabled = spec.Spec.Rollback.Disabled
	if t.maxRows <= 0 {
		t.maxRows = deploy.DefaultMaxBatchRows
	}
	if s := spec.Spec.PayloadSample; s != nil {
		t.sample = *s
	}
	var primaryErr string
	for i, slot := range spec.Slots {
		rev := revs[i]
		if rev.state() != stateReady {
			if slot.Role == deploy.RolePrimary {
				primaryErr = rev.errMessage()
			}
			continue
		}
		e := &entry{rev: rev, role: slot.Role, percent: slot.Percent}
		switch slot.Role {
		case deploy.RolePrimary:
			t.primary = e
		case deploy.RoleCanary:
			t.canary = e
			t.canaryPercent = slot.Percent
		case deploy.RoleShadow:
			t.shadow = e
		default:
			continue
		}
	}
	if t.primary == nil {
		if old != nil && old.primary != nil && !old.deleted {
			r.log.Warn("the new primary failed to load; the deployment keeps serving its previous revisions",
				"deployment", d.name, "generation", spec.Generation, "serving_generation", old.gen, "err", primaryErr)
			return
		}
		if primaryErr == "" {
			primaryErr = "the deployment has no primary"
		}
		t.canary, t.shadow, t.canaryPercent = nil, nil, 0
		t.loadErr = primaryErr
	}
	for _, e := range []*entry{t.primary, t.canary, t.shadow} {
		if e != nil {
			t.entries = append(t.entries, e)
		}
	}
	// Each revision's window covers its deployment's rollback window.
	span := time.Duration(t.policy.Window)
	now := time.Now()
	for _, e := range t.entries {
		e.rev.window.resize(now, span, bucketWidthFor(span))
	}
	if old != nil && !old.deleted && old.gen == t.gen && old.loadErr == t.loadErr && sameEntries(old, t) {
		return // nothing changed
	}
	if r.metrics != nil {
		for _, e := range t.entries {
			e.m = r.metrics.acquire(d.name, e.rev, e.role)
		}
	}
	if t.shadow != nil {
		d.startShadow(r)
	}
	d.tripMu.Lock()
	if t.canary != nil && t.canary.rev.key.revision == d.trippedRev {
		t.tripped, t.canaryPercent = true, 0
	} else {
		d.trippedRev, d.rollbackDone = 0, false
	}
	if r.hooks.beforeStore != nil {
		r.hooks.beforeStore(d)
	}
	d.table.Store(t)
	d.tripMu.Unlock()
	if r.metrics != nil && old != nil {
		for _, e := range old.entries {
			if e.m != nil {
				r.metrics.release(e.m)
			}
		}
	}
	if old == nil || old.gen != t.gen || len(old.entries) != len(t.entries) {
		r.log.Info("deployment serving", "deployment", d.name, "generation", t.gen, "revisions", t.describe())
	}
}

// sameEntries reports whether a and b route to the same revisions in the
// same roles and shares.
func sameEntries(a, b *table) bool {
	if len(a.entries) != len(b.entries) {
		return false
	}
	for i, e := range a.entries {
		f := b.entries[i]
		if e.rev != f.rev || e.role != f.role || e.percent != f.percent {
			return false
		}
	}
	return true
}

// describe lists the table's revisions for logs and errors: "3 (primary,
// flights/3), 4 (canary, flights/4)".
func (t *table) describe() string {
	var b strings.Builder
	for i, e := range t.entries {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.rev.revStr)
		b.WriteString(" (")
		b.WriteString(e.role)
		b.WriteString(", ")
		b.WriteString(e.rev.modelVersion)
		b.WriteString(")")
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// pick chooses the entry that answers a request: the slot serving model
// version `version` when the path names one, else the revision or role
// that pin (the X-Mloop-Revision header) names, else the canary with its
// percent probability when split is set, else the primary. It returns a status and message
// when nothing fits.
func (t *table) pick(version, pin string, split bool) (*entry, int, string) {
	if version != "" {
		for _, e := range t.entries {
			if e.rev.versionStr() == version {
				return e, 0, ""
			}
		}
		return nil, 404, "deployment " + strconv.Quote(t.name) + " serves no model version " + strconv.Quote(version) + "; it serves revisions " + t.describe()
	}
	if pin != "" {
		switch pin {
		case deploy.RolePrimary:
			return t.primary, 0, ""
		case deploy.RoleCanary:
			if t.canary != nil {
				return t.canary, 0, ""
			}
		case deploy.RoleShadow:
			if t.shadow != nil {
				return t.shadow, 0, ""
			}
		default:
			for _, e := range t.entries {
				if e.rev.revStr == pin {
					return e, 0, ""
				}
			}
		}
		return nil, 404, "deployment " + strconv.Quote(t.name) + " has no revision " + strconv.Quote(pin) + "; it serves revisions " + t.describe()
	}
	if split && t.canaryPercent > 0 && t.canary != nil && rand.IntN(100) < t.canaryPercent {
		return t.canary, 0, ""
	}
	return t.primary, 0, ""
}

// versionStr returns the model version number as a string.
func (rev *revision) versionStr() string {
	return rev.modelVersion[strings.LastIndexByte(rev.modelVersion, '/')+1:]
}

// trip returns a copy of t that sends no traffic to its canary.
func (t *table) trip() *table {
	c := *t
	c.tripped, c.canaryPercent = true, 0
	return &c
}
