package router

import (
	"context"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
)

// rollbackTimeout bounds one call of ControlPlane.Rollback.
const rollbackTimeout = 10 * time.Second

// checkLoop judges the canaries every CheckInterval until Close.
func (r *Router) checkLoop() {
	defer r.loops.Done()
	tick := time.NewTicker(r.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
			r.Check(r.ctx)
		}
	}
}

// Check judges every deployment's canary against its primary once, as the
// background loop does every CheckInterval: a canary that breaks its
// deployment's RollbackPolicy stops receiving traffic here at once, and
// the control plane is asked to roll it back (again at the next Check if
// the call fails). After a rollback it starts applying the control
// plane's state in the background; it never waits for loads.
func (r *Router) Check(ctx context.Context) {
	now := time.Now()
	rolled := false
	for _, d := range *r.deps.Load() {
		t := d.table.Load()
		if t.deleted || t.canary == nil || t.primary == nil {
			continue
		}
		canary := t.canary.rev.key.revision
		d.tripMu.Lock()
		tripped, done, why := d.trippedRev == canary, d.rollbackDone, d.trippedWhy
		d.tripMu.Unlock()
		if !tripped {
			if t.policy.Disabled {
				continue
			}
			// The primary is judged over the span the canary's figures
			// cover.
			cs := t.canary.rev.window.Snapshot(now, time.Duration(t.policy.Window))
			ps := t.primary.rev.window.Snapshot(now, cs.Span)
			v := Judge(t.policy, ps, cs)
			if !v.Rollback {
				continue
			}
			// Stop routing to the canary at once. Under tripMu, so that
			// a swap cannot store a table that routes to it again
			// between the two; a table swapped in before is judged at
			// the next check.
			d.tripMu.Lock()
			ok := d.table.CompareAndSwap(t, t.trip())
			if ok {
				d.trippedRev, d.trippedWhy, d.rollbackDone = canary, v, false
			}
			d.tripMu.Unlock()
			if !ok {
				continue
			}
			r.log.Warn("canary judged bad; sending its traffic to the primary and asking the control plane to roll it back",
				"deployment", d.name, "revision", canary, "model_version", t.canary.rev.modelVersion, "reason", v.Reason)
			why = v
		} else if done {
			continue
		}
		if r.rollback(ctx, d, canary, why) {
			rolled = true
		}
	}
	if rolled && ctx.Err() == nil {
		r.syncAsync()
	}
}

// rollback asks the control plane to remove d's canary revision rev and
// reports whether the call was taken (or refused as stale).
func (r *Router) rollback(ctx context.Context, d *deployment, rev int64, v Verdict) bool {
	cctx, cancel := context.WithTimeout(ctx, rollbackTimeout)
	defer cancel()
	_, err := r.cp.Rollback(cctx, d.name, deploy.RollbackRequest{
		IfCanaryRevision: rev, Automatic: true, Reason: v.Reason, Details: v.Details,
	})
	switch {
	case err == nil:
		r.log.Warn("canary rolled back", "deployment", d.name, "revision", rev, "reason", v.Reason)
		if d.rollbackMetric != nil {
			d.rollbackMetric.Inc()
		}
	case isConflict(err):
		r.log.Info("canary rollback not needed: the deployment changed meanwhile", "deployment", d.name, "revision", rev, "err", err)
	default:
		if ctx.Err() == nil {
			r.log.Warn("roll the canary back; retrying at the next check", "deployment", d.name, "revision", rev, "err", err)
		}
		return false
	}
	d.tripMu.Lock()
	if d.trippedRev == rev {
		d.rollbackDone = true
	}
	d.tripMu.Unlock()
	return true
}
