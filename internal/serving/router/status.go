package router

import (
	"slices"
	"strings"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
)

// Revision states.
const (
	stateLoading = "loading"
	stateReady   = "ready"
	stateFailed  = "failed"
)

// RevisionStatus describes one loaded (or loading) revision.
type RevisionStatus struct {
	Role     string `json:"role"`
	Revision int64  `json:"revision"`
	Model    string `json:"model"`
	Version  int64  `json:"version"`
	Flavor   string `json:"flavor"`
	Percent  int    `json:"percent"`
	// State is loading, ready or failed.
	State string `json:"state"`
	// Serving is true while the revision is in the routing table (a
	// revision the control plane asks for is not served until it is
	// ready; a replaced one may still serve until its successor is).
	Serving bool `json:"serving"`
	// Tripped is true for a canary this replica stopped routing to after
	// judging it bad, until the control plane removes it.
	Tripped bool `json:"tripped,omitempty"`
	// Error says why a revision failed to load.
	Error string `json:"error,omitempty"`
	// Requests, Errors and latency figures over the rollback window.
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	P50Millis float64 `json:"p50_ms"`
	P99Millis float64 `json:"p99_ms"`
	InFlight  int64   `json:"in_flight"`
	// Agreement is, for a shadow, the share of compared rows whose
	// prediction agreed with the primary's; MeanAbsDiff the mean
	// absolute difference of their outputs.
	Compared    int64   `json:"compared,omitempty"`
	Agreement   float64 `json:"agreement,omitempty"`
	MeanAbsDiff float64 `json:"mean_abs_diff,omitempty"`
	// ShadowErrors counts shadow runs that failed (or could not be
	// compared).
	ShadowErrors int64 `json:"shadow_errors,omitempty"`
	// ShadowDropped counts copies not sent because the shadow was behind.
	ShadowDropped int64 `json:"shadow_dropped,omitempty"`
}

// DeploymentStatus is what this replica serves of one deployment.
type DeploymentStatus struct {
	Name string `json:"name"`
	// Generation is the generation of the routing table served.
	Generation int64 `json:"generation"`
	// Ready is true when the primary is loaded and answering.
	Ready     bool             `json:"ready"`
	Revisions []RevisionStatus `json:"revisions"`
	// Error says why a deployment is not ready (its primary failed to
	// load).
	Error string `json:"error,omitempty"`
}

// Status returns what this replica serves of the named deployment.
func (r *Router) Status(name string) (*DeploymentStatus, bool) {
	d := r.lookup(name)
	if d == nil {
		return nil, false
	}
	return r.status(d), true
}

// Statuses returns every deployment this replica serves, by name.
func (r *Router) Statuses() []*DeploymentStatus {
	deps := *r.deps.Load()
	out := make([]*DeploymentStatus, 0, len(deps))
	for _, d := range deps {
		out = append(out, r.status(d))
	}
	slices.SortFunc(out, func(a, b *DeploymentStatus) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// status describes d: the revisions the control plane asks for, then those
// the table still serves.
func (r *Router) status(d *deployment) *DeploymentStatus {
	t := d.table.Load()
	now := time.Now()
	s := &DeploymentStatus{Name: d.name, Generation: t.gen, Ready: t.ready()}
	if t.loadErr != "" {
		s.Error = t.loadErr
	}
	r.mu.Lock()
	var slots []deploy.Slot
	var wanted []*revision
	if d.desired != nil {
		slots = append(slots, d.desired.Slots...)
		wanted = append(wanted, d.wanted...)
	}
	r.mu.Unlock()
	seen := make(map[*revision]bool)
	for i, slot := range slots {
		if i >= len(wanted) {
			break
		}
		rev := wanted[i]
		seen[rev] = true
		rs := rev.status(now, t)
		rs.Role, rs.Percent = slot.Role, slot.Percent
		if e := t.entryOf(rev); e != nil && e.role == deploy.RoleShadow {
			rs.ShadowDropped = d.shadowDropped.Load()
		}
		s.Revisions = append(s.Revisions, rs)
	}
	for _, e := range t.entries {
		if seen[e.rev] {
			continue
		}
		rs := e.rev.status(now, t)
		rs.Role, rs.Percent = e.role, e.percent
		s.Revisions = append(s.Revisions, rs)
	}
	return s
}

// status describes rev as served by table t.
func (rev *revision) status(now time.Time, t *table) RevisionStatus {
	rs := RevisionStatus{
		Revision: rev.key.revision,
		Model:    rev.key.model,
		Version:  rev.key.version,
		Flavor:   rev.slot.Flavor,
		State:    rev.state(),
		InFlight: rev.inflight.Load(),
	}
	if rs.State != stateLoading && rev.flavor != "" {
		rs.Flavor = rev.flavor
	}
	if rs.State == stateFailed {
		rs.Error = rev.errMessage()
	}
	if e := t.entryOf(rev); e != nil {
		rs.Serving = true
		rs.Tripped = e.role == deploy.RoleCanary && t.tripped
	}
	if rs.State == stateReady {
		ws := rev.window.Snapshot(now, time.Duration(t.policy.Window))
		rs.Requests, rs.Errors = ws.Requests, ws.Errors
		rs.P50Millis, rs.P99Millis = msOf(ws.P50), msOf(ws.P99)
		compared, agreed, sumAbs, values, errs := rev.shadowFigures()
		rs.Compared, rs.ShadowErrors = compared, errs
		if compared > 0 {
			rs.Agreement = float64(agreed) / float64(compared)
		}
		if values > 0 {
			rs.MeanAbsDiff = sumAbs / float64(values)
		}
	}
	return rs
}

// msOf returns d in milliseconds.
func msOf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
