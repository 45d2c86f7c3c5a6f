package monitor

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

var _ deploy.HealthSource = (*Monitor)(nil)

// VersionHealth returns how a model version served a deployment since a
// time, for the rollout controller (deploy.HealthSource): over its saved
// windows that end after since and its share of the window still open
// (so that a canary shorter than a window can be judged), the requests and
// 5xx errors summed, the p99 latency the largest of the windows', and the
// feedback labels joined to its predictions with their live quality (the
// windows' quality merged, late labels not yet saved included). A version
// that served nothing has zero figures. EUNAVAILABLE when the monitor is
// not running.
//
// The window's rows still in Observe's buffers (at most FlushInterval
// old) are not counted, nor is a window closed but not yet saved when the
// saved windows are listed (the finisher saves within moments).
func (m *Monitor) VersionHealth(ctx context.Context, deployment, model string, version int64, since time.Time) (deploy.VersionHealth, error) {
	var h deploy.VersionHealth
	if !m.opened.Load() || m.closed.Load() {
		return h, mloop.Errorf(mloop.EUNAVAILABLE, "the monitor is not running")
	}
	key := model + "/" + strconv.FormatInt(version, 10)
	// The open window first, then the saved ones: a window that closes in
	// between is then found saved (listing first could miss it on both
	// sides); the ids keep it from counting twice.
	open, err := m.openWindows(ctx, deployment)
	if err != nil {
		return h, err
	}
	var wins []*WindowSummary
	if m.store != nil {
		saved, err := m.store.ListWindows(ctx, deployment, WindowFilter{Since: since, ModelVersion: key})
		if err != nil {
			return h, fmt.Errorf("health of %s on deployment %s: %w", key, deployment, err)
		}
		wins = saved
	}
	seen := map[string]bool{}
	for _, w := range wins {
		seen[w.ID] = true
	}
	for _, cw := range open {
		if cw.sum.ModelVersion == key && !seen[cw.sum.ID] {
			wins = append(wins, cw.sum)
			seen[cw.sum.ID] = true
		}
	}
	late := m.lateQuality(seen)

	var q *Quality
	add := func(o *Quality) {
		switch {
		case o == nil || o.Labels == 0:
		case q == nil:
			q = o.Clone()
		default:
			if err := q.Merge(o); err != nil {
				m.log.Warn("monitor: version health: quality left out", "deployment", deployment, "model_version", key, "error", err)
			}
		}
	}
	for _, w := range wins {
		h.Requests += w.Requests
		h.Errors += w.Errors
		h.LatencyP99Ms = max(h.LatencyP99Ms, w.LatencyP99)
		add(w.Quality)
		add(late[w.ID])
	}
	if q != nil {
		h.Labels = q.Labels
		h.Metrics = q.Metrics()
	}
	return h, nil
}

// openWindows returns a copy of the deployment's open window, one entry
// per model version, without drift (cheaper than CurrentWindow).
func (m *Monitor) openWindows(ctx context.Context, deployment string) ([]*closedWindow, error) {
	reply := make(chan []*closedWindow, 1)
	select {
	case m.snapReq <- snapRequest{deployment: deployment, reply: reply}:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-m.ctx.Done():
		return nil, mloop.Errorf(mloop.EUNAVAILABLE, "the monitor is closed")
	}
	select {
	case cws := <-reply:
		return cws, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// lateQuality returns copies of the quality of labels joined to saved
// windows (by ID, among ids) that the finisher has not merged into the
// store yet.
func (m *Monitor) lateQuality(ids map[string]bool) map[string]*Quality {
	f := &m.fb
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*Quality{}
	for w := range f.pending {
		if w.saved && w.pending != nil && ids[w.id] {
			out[w.id] = w.pending.Clone()
		}
	}
	return out
}
