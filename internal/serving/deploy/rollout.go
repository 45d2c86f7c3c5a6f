package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// Automatic rollouts.
//
// A deployment whose primary follows an alias (weather@champion) may carry
// a RolloutPolicy. When the alias then moves to another version, the alias
// follower (SyncAliases) does not swap the primary: it starts a canary of
// the new version (Slot.Rollout, EventRolloutStarted). ReconcileRollouts,
// which the follower runs after each sync, judges that canary once it has
// served for the policy's Window, on the figures of the HealthSource
// (errors, p99 latency, live quality from feedback), and either promotes
// it (the primary follows the alias again, now serving the canary's
// revision: nothing is reloaded) or rolls it back and sets the alias back
// to the version the primary serves, so that the rejected version is not
// rolled out again. Every decision is conditional on the canary revision
// judged, so a decision taken on old figures never touches a newer canary.

// RolloutPolicy sends the releases of the alias the primary follows through
// a canary: see Service.ReconcileRollouts. Zero fields take the defaults.
type RolloutPolicy struct {
	// Disabled, in an Update, removes the policy.
	Disabled bool `json:"disabled,omitempty"`
	// CanaryPercent is the share of traffic the canary takes, 1 to 99
	// (default 20).
	CanaryPercent int `json:"canary_percent,omitempty"`
	// Window is how long the canary serves before it is judged (default
	// 10m).
	Window Duration `json:"window,omitempty"`
	// MinRequests is how many requests the canary must have answered since
	// it started to be judged (default 100).
	MinRequests int `json:"min_requests,omitempty"`
	// MaxWait is how long a canary may wait for enough evidence: one still
	// lacking it then is rolled back (default 6×Window).
	MaxWait Duration `json:"max_wait,omitempty"`
	// MaxErrorRateIncrease is the canary's error rate (5xx) minus the
	// primary's beyond which it is rolled back (default 0.02).
	MaxErrorRateIncrease float64 `json:"max_error_rate_increase,omitempty"`
	// MaxLatencyRatio bounds the canary's p99 latency relative to the
	// primary's (default 2); a difference under MinLatencyIncrease never
	// counts.
	MaxLatencyRatio float64 `json:"max_latency_ratio,omitempty"`
	// MinLatencyIncrease is the smallest p99 difference that counts
	// against the canary (default RolloutMinLatencyIncrease). With few
	// requests a p99 is their slowest one: raise it for thin traffic.
	MinLatencyIncrease Duration `json:"min_latency_increase,omitempty"`
	// Metric is the live-quality metric compared (one of RolloutMetrics,
	// such as accuracy, roc_auc or rmse); "" compares none.
	Metric string `json:"metric,omitempty"`
	// MinLabels is how many feedback labels each side needs when Metric
	// is set (default 100).
	MinLabels int `json:"min_labels,omitempty"`
	// MaxDegradation is how much worse than the primary's the canary's
	// Metric may be, absolute (default 0.02); for log_loss, rmse and mae
	// lower is better.
	MaxDegradation float64 `json:"max_degradation,omitempty"`
	// Rejected lists the versions of the primary's model whose rollout
	// canary was removed without being promoted (the newest
	// MaxRolloutRejected). The control plane records them in the same
	// change that removes the canary, so that a version is never rolled
	// out again while the alias still names it — even when setting the
	// alias back failed or the server stopped in between; the follower then
	// sets the alias back again. An update that sets the policy anew
	// (rather than merging into it, as mloop deploy update does) clears it.
	Rejected []int64 `json:"rejected,omitempty"`
}

// MaxRolloutRejected bounds RolloutPolicy.Rejected.
const MaxRolloutRejected = 50

// rejects reports whether the policy lists version as rejected.
func (p *RolloutPolicy) rejects(version int64) bool {
	return p != nil && slices.Contains(p.Rejected, version)
}

// withRejected returns a copy of p listing version as rejected.
func (p *RolloutPolicy) withRejected(version int64) *RolloutPolicy {
	q := *p
	q.Rejected = append(slices.Clone(p.Rejected), version)
	if n := len(q.Rejected); n > MaxRolloutRejected {
		q.Rejected = q.Rejected[n-MaxRolloutRejected:]
	}
	return &q
}

// Defaults and bounds of RolloutPolicy.
const (
	DefaultRolloutPercent              = 20
	DefaultRolloutWindow               = 10 * time.Minute
	DefaultRolloutMinRequests          = 100
	DefaultRolloutMaxWaitFactor        = 6
	DefaultRolloutMaxErrorRateIncrease = 0.02
	DefaultRolloutMaxLatencyRatio      = 2
	DefaultRolloutMinLabels            = 100
	DefaultRolloutMaxDegradation       = 0.02
	// RolloutMinLatencyIncrease is the default smallest p99 difference
	// that counts against a canary.
	RolloutMinLatencyIncrease = 5 * time.Millisecond
	// MaxRolloutWindow is the longest RolloutPolicy.Window and MaxWait.
	MaxRolloutWindow = 7 * 24 * time.Hour
)

// RolloutMetrics are the live-quality metrics a RolloutPolicy may compare
// (the monitor's names), each with whether lower is better.
var RolloutMetrics = map[string]bool{
	"accuracy": false, "precision": false, "recall": false, "f1": false, "macro_f1": false,
	"roc_auc": false, "r2": false,
	"log_loss": true, "rmse": true, "mae": true,
}

// Decisions of RolloutPolicy.Judge.
const (
	DecisionWait     = "wait"
	DecisionPromote  = "promote"
	DecisionRollback = "rollback"
)

// WithDefaults returns p with zero fields set to their defaults.
func (p RolloutPolicy) WithDefaults() RolloutPolicy {
	if p.CanaryPercent <= 0 {
		p.CanaryPercent = DefaultRolloutPercent
	}
	if p.Window <= 0 {
		p.Window = Duration(DefaultRolloutWindow)
	}
	if p.MinRequests <= 0 {
		p.MinRequests = DefaultRolloutMinRequests
	}
	if p.MaxWait <= 0 {
		p.MaxWait = p.Window * DefaultRolloutMaxWaitFactor
	}
	if p.MaxErrorRateIncrease <= 0 {
		p.MaxErrorRateIncrease = DefaultRolloutMaxErrorRateIncrease
	}
	if p.MaxLatencyRatio <= 0 {
		p.MaxLatencyRatio = DefaultRolloutMaxLatencyRatio
	}
	if p.MinLatencyIncrease <= 0 {
		p.MinLatencyIncrease = Duration(RolloutMinLatencyIncrease)
	}
	if p.MinLabels <= 0 {
		p.MinLabels = DefaultRolloutMinLabels
	}
	if p.MaxDegradation <= 0 {
		p.MaxDegradation = DefaultRolloutMaxDegradation
	}
	return p
}

// validate checks the policy's figures; the error is EINVALID and names
// the field.
func (p RolloutPolicy) validate() error {
	switch {
	case p.CanaryPercent < 0 || p.CanaryPercent > 99:
		return mloop.Errorf(mloop.EINVALID, "rollout.canary_percent %d: give 1 to 99 percent of traffic (0 for the default, %d)", p.CanaryPercent, DefaultRolloutPercent)
	case p.Window < 0 || time.Duration(p.Window) > MaxRolloutWindow:
		return mloop.Errorf(mloop.EINVALID, "rollout.window %v: give a duration up to %v such as 10m (0 for the default, %v)", time.Duration(p.Window), MaxRolloutWindow, DefaultRolloutWindow)
	case p.MaxWait < 0 || time.Duration(p.MaxWait) > MaxRolloutWindow:
		return mloop.Errorf(mloop.EINVALID, "rollout.max_wait %v: give a duration up to %v such as 1h (0 for the default, %d× the window)", time.Duration(p.MaxWait), MaxRolloutWindow, DefaultRolloutMaxWaitFactor)
	case p.MaxWait > 0 && p.MaxWait < p.WithDefaults().Window:
		return mloop.Errorf(mloop.EINVALID, "rollout.max_wait %v is shorter than the window %v: a canary is judged only after the window, so give a max_wait of at least the window",
			time.Duration(p.MaxWait), time.Duration(p.WithDefaults().Window))
	case p.MinRequests < 0:
		return mloop.Errorf(mloop.EINVALID, "rollout.min_requests %d: give a positive count (0 for the default, %d)", p.MinRequests, DefaultRolloutMinRequests)
	case p.MinLabels < 0:
		return mloop.Errorf(mloop.EINVALID, "rollout.min_labels %d: give a positive count (0 for the default, %d)", p.MinLabels, DefaultRolloutMinLabels)
	case !finite(p.MaxErrorRateIncrease) || p.MaxErrorRateIncrease < 0 || p.MaxErrorRateIncrease > 1:
		return mloop.Errorf(mloop.EINVALID, "rollout.max_error_rate_increase %v: give a fraction from 0 (the default, %g) to 1", p.MaxErrorRateIncrease, DefaultRolloutMaxErrorRateIncrease)
	case !finite(p.MaxLatencyRatio) || p.MaxLatencyRatio < 0 || p.MaxLatencyRatio > 0 && p.MaxLatencyRatio < 1:
		return mloop.Errorf(mloop.EINVALID, "rollout.max_latency_ratio %v: give a ratio of at least 1 (0 for the default, %v)", p.MaxLatencyRatio, DefaultRolloutMaxLatencyRatio)
	case p.MinLatencyIncrease < 0:
		return mloop.Errorf(mloop.EINVALID, "rollout.min_latency_increase %v: give a non-negative duration such as 5ms (0 for the default, %v)", time.Duration(p.MinLatencyIncrease), RolloutMinLatencyIncrease)
	case !finite(p.MaxDegradation) || p.MaxDegradation < 0:
		return mloop.Errorf(mloop.EINVALID, "rollout.max_degradation %v: give a non-negative difference such as 0.02 (0 for the default)", p.MaxDegradation)
	}
	if _, ok := RolloutMetrics[p.Metric]; p.Metric != "" && !ok {
		names := make([]string, 0, len(RolloutMetrics))
		for n := range RolloutMetrics {
			names = append(names, n)
		}
		sort.Strings(names)
		hint := ""
		switch p.Metric {
		case "auc":
			hint = " (the monitor calls it roc_auc)"
		case "logloss", "mlogloss":
			hint = " (the monitor calls it log_loss)"
		}
		return mloop.Errorf(mloop.EINVALID, "rollout.metric %q%s: give one of %s, or leave it empty to compare no live quality",
			p.Metric, hint, strings.Join(names, ", "))
	}
	return nil
}

// checkRolloutAlias refuses a rollout policy on a primary that follows no
// alias.
func checkRolloutAlias(spec Spec) error {
	if spec.Rollout == nil || spec.Model.Alias != "" {
		return nil
	}
	return mloop.Errorf(mloop.EINVALID, "rollout: the rollout policy sends the releases of the alias the primary follows through a canary, but model %s follows no alias: give MODEL@ALIAS, such as %s@champion, or leave the rollout policy out",
		spec.Model, spec.Model.Model)
}

// HealthSource measures how a model version served a deployment. The
// monitor (monitor.Monitor) implements it.
type HealthSource interface {
	// VersionHealth returns the figures of the deployment's model version
	// since the given time (every monitoring window ending after it,
	// including the one still open). A version that served nothing has
	// zero figures, not an error.
	VersionHealth(ctx context.Context, deployment, model string, version int64, since time.Time) (VersionHealth, error)
}

// VersionHealth is how a model version served a deployment over a span
// of time.
type VersionHealth struct {
	// Requests are the requests answered; Errors those answered with a
	// 5xx status.
	Requests int64 `json:"requests"`
	Errors   int64 `json:"errors"`
	// LatencyP99Ms is the p99 request latency in milliseconds (the
	// largest of its windows').
	LatencyP99Ms float64 `json:"latency_p99_ms"`
	// Labels are the feedback labels joined to its predictions.
	Labels int64 `json:"labels"`
	// Metrics is the live quality of those labels (accuracy, roc_auc,
	// rmse, …).
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// ErrorRate returns Errors over Requests (0 without requests).
func (h VersionHealth) ErrorRate() float64 {
	if h.Requests == 0 {
		return 0
	}
	return float64(h.Errors) / float64(h.Requests)
}

// RolloutVerdict is what the rollout controller decided about a canary,
// recorded in the Details of its EventDetails (promoted or
// auto_rolled_back events).
type RolloutVerdict struct {
	// Decision is DecisionPromote or DecisionRollback; Reason says why,
	// with the figures.
	Decision string `json:"decision"`
	Reason   string `json:"reason"`
	// CanaryRevision is the canary revision judged and PrimaryRevision the
	// primary it was compared with; Since when the canary started (Unix
	// ms); Age how long it had served.
	CanaryRevision  int64    `json:"canary_revision"`
	PrimaryRevision int64    `json:"primary_revision"`
	Since           int64    `json:"since"`
	Age             Duration `json:"age"`
	// Canary and Primary are the figures compared since the canary
	// started.
	Canary  *VersionHealth `json:"canary,omitempty"`
	Primary *VersionHealth `json:"primary,omitempty"`
	// Policy is the policy applied, with its defaults.
	Policy RolloutPolicy `json:"policy"`
}

// Judge decides about a canary that has served for age, from its figures
// and the primary's since it started: DecisionWait before the window or
// while evidence is lacking (until MaxWait, then DecisionRollback),
// DecisionRollback when the canary's error rate, p99 latency or live
// quality is worse than the policy allows, DecisionPromote otherwise. The
// reason says why, with the figures.
func (p RolloutPolicy) Judge(age time.Duration, canary, primary VersionHealth) (decision, reason string) {
	p = p.WithDefaults()
	window, maxWait := time.Duration(p.Window), time.Duration(p.MaxWait)
	if age < window {
		return DecisionWait, fmt.Sprintf("the canary is judged after %v (it has served %v)", window, age.Round(time.Millisecond))
	}
	var lacking []string
	if canary.Requests < int64(p.MinRequests) {
		lacking = append(lacking, fmt.Sprintf("the canary answered %d requests of the %d needed", canary.Requests, p.MinRequests))
	}
	if p.Metric != "" {
		for _, side := range []struct {
			name string
			h    VersionHealth
		}{{"canary", canary}, {"primary", primary}} {
			if side.h.Labels < int64(p.MinLabels) {
				lacking = append(lacking, fmt.Sprintf("the %s has %d feedback labels of the %d needed", side.name, side.h.Labels, p.MinLabels))
			} else if _, ok := side.h.Metrics[p.Metric]; !ok {
				lacking = append(lacking, fmt.Sprintf("the %s's live quality has no %s", side.name, p.Metric))
			}
		}
	}
	if len(lacking) > 0 {
		if age >= maxWait {
			return DecisionRollback, fmt.Sprintf("not enough evidence within %v: %s", maxWait, strings.Join(lacking, "; "))
		}
		return DecisionWait, "waiting for evidence: " + strings.Join(lacking, "; ")
	}
	cr, pr := canary.ErrorRate(), primary.ErrorRate()
	if cr-pr > p.MaxErrorRateIncrease {
		return DecisionRollback, fmt.Sprintf("error rate %.3f vs primary %.3f over %d canary requests (more than +%g)", cr, pr, canary.Requests, p.MaxErrorRateIncrease)
	}
	minInc := float64(p.MinLatencyIncrease) / float64(time.Millisecond)
	if primary.LatencyP99Ms > 0 && canary.LatencyP99Ms > p.MaxLatencyRatio*primary.LatencyP99Ms && canary.LatencyP99Ms-primary.LatencyP99Ms >= minInc {
		return DecisionRollback, fmt.Sprintf("p99 latency %.1fms vs primary %.1fms (over %g×)", canary.LatencyP99Ms, primary.LatencyP99Ms, p.MaxLatencyRatio)
	}
	figures := fmt.Sprintf("%d requests, error rate %.3f vs primary %.3f, p99 %.1fms vs %.1fms", canary.Requests, cr, pr, canary.LatencyP99Ms, primary.LatencyP99Ms)
	if p.Metric != "" {
		c, pm := canary.Metrics[p.Metric], primary.Metrics[p.Metric]
		worse := pm - c
		if RolloutMetrics[p.Metric] {
			worse = c - pm
		}
		quality := fmt.Sprintf("live %s %.4f vs primary %.4f over %d and %d labels", p.Metric, c, pm, canary.Labels, primary.Labels)
		if worse > p.MaxDegradation {
			return DecisionRollback, fmt.Sprintf("%s (worse by more than %g)", quality, p.MaxDegradation)
		}
		figures += ", " + quality
	}
	return DecisionPromote, fmt.Sprintf("healthy after %v: %s", age.Round(time.Second), figures)
}

// rolloutActive reports whether d's rollout policy applies: d has one and
// its primary follows an alias.
func rolloutActive(d *Deployment) bool {
	return d.Spec.Rollout != nil && d.Spec.Model.Alias != ""
}

// rolloutPending reports whether the alias follower has something to do
// for a deployment with an active rollout policy whose primary's alias
// names v: start (or replace) a rollout canary, or remove one after the
// alias moved back. held is true when a manual canary holds the release
// back.
func rolloutPending(d *Deployment, v *registry.ModelVersion) (pending, held bool) {
	primary, canary := d.Slot(RolePrimary), d.Slot(RoleCanary)
	if primary == nil {
		return false, false
	}
	if v.Name == primary.Model && v.Version == primary.Version {
		return canary != nil && canary.Rollout, false
	}
	switch {
	case v.Name == d.Spec.Model.Model && d.Spec.Rollout.rejects(v.Version):
		return false, false // rejected before: the follower sets the alias back (rejectedAlias)
	case canary != nil && !canary.Rollout:
		return false, true
	case canary != nil && canary.Model == v.Name && canary.Version == v.Version:
		return false, false
	}
	return true, false
}

// rejectedAlias returns the alias set-back still owed for d: its primary's
// alias names v, a version its rollout canary was rejected as, while the
// primary serves another version of that model; nil otherwise.
func rejectedAlias(d *Deployment, v *registry.ModelVersion) *aliasRevert {
	p := d.Slot(RolePrimary)
	if !rolloutActive(d) || p == nil || v.Name != d.Spec.Model.Model || !d.Spec.Rollout.rejects(v.Version) ||
		p.Model != v.Name || p.Version == v.Version {
		return nil
	}
	return &aliasRevert{Alias: d.Spec.Model, Rejected: v.Version, To: p.Version}
}

// holdRollout logs, once per deployment and version, that a manual canary
// holds back the rollout of version v.
func (s *Service) holdRollout(d *Deployment, v *registry.ModelVersion, held bool) {
	s.mu.Lock()
	if s.held == nil {
		s.held = map[string]string{}
	}
	key := v.Name + "/" + strconv.FormatInt(v.Version, 10)
	first := held && s.held[d.Name] != key
	if held {
		s.held[d.Name] = key
	} else {
		delete(s.held, d.Name)
	}
	s.mu.Unlock()
	if first {
		c := d.Slot(RoleCanary)
		s.log().Warn("a deployment's alias moved but its manual canary holds the rollout back: promote or roll back the canary, and the rollout starts",
			"deployment", d.Name, "alias", d.Spec.Model.String(), "version", key, "canary", describeSlot(*c))
	}
}

// rolloutStep applies the rollout policy of cur to next (a copy of cur
// whose other alias slots may have moved) now that the primary's alias
// names v: it starts a rollout canary of v, replaces a rollout canary of
// another version, or removes the rollout canary when the alias moved back
// to the primary's version. It returns the event type, message and reason,
// or "" when there is nothing to do.
func rolloutStep(cur, next *Deployment, v *registry.ModelVersion, now int64) (typ, msg, reason string) {
	pending, _ := rolloutPending(cur, v)
	if !pending || v.Status != "" && v.Status != registry.StatusReady {
		return "", "", ""
	}
	pol := cur.Spec.Rollout.WithDefaults()
	primary := *next.Slot(RolePrimary)
	old := next.Slot(RoleCanary)
	var shadow *Slot
	if sh := next.Slot(RoleShadow); sh != nil {
		c := *sh
		shadow = &c
	}
	if v.Name == primary.Model && v.Version == primary.Version {
		next.Spec.Canary, next.Spec.CanaryPercent = nil, 0
		primary.Percent = 100
		next.Slots = []Slot{primary}
		if shadow != nil {
			next.Slots = append(next.Slots, *shadow)
		}
		reason = "alias moved back"
		msg = fmt.Sprintf("rolled back: alias %s moved back to %s/%d, which the primary serves: rollout canary %s removed, all traffic to primary %s",
			cur.Spec.Model, v.Name, v.Version, describeSlot(*old), describeSlot(primary))
		return EventRolledBack, msg, reason
	}
	ref := Ref{Model: v.Name, Version: v.Version}
	canary := Slot{Role: RoleCanary, Revision: next.NextRevision, Ref: ref, Model: v.Name, Version: v.Version,
		Percent: pol.CanaryPercent, Since: now, Rollout: true}
	for _, t := range v.Tags {
		if t.Key == modelcheck.FlavorTag {
			canary.Flavor = t.Value
		}
	}
	next.NextRevision++
	next.Spec.Canary, next.Spec.CanaryPercent = &ref, pol.CanaryPercent
	primary.Percent = 100 - pol.CanaryPercent
	next.Slots = []Slot{primary, canary}
	if shadow != nil {
		next.Slots = append(next.Slots, *shadow)
	}
	reason = fmt.Sprintf("alias %s moved to %s/%d", cur.Spec.Model, v.Name, v.Version)
	msg = fmt.Sprintf("%s: canary %s takes %d%% of traffic; judged after %v",
		reason, describeSlot(canary), canary.Percent, time.Duration(pol.Window))
	if old != nil {
		msg += fmt.Sprintf(" (it replaces rollout canary %s)", describeSlot(*old))
	}
	return EventRolloutStarted, msg, reason
}

// ReconcileRollouts judges every rollout canary (Slot.Rollout) that has
// served for its policy's Window: from the figures of Health since the
// canary started (see RolloutPolicy.Judge) it promotes the canary (the
// primary follows its alias again and serves the canary's revision;
// EventPromoted, Automatic), rolls it back (EventAutoRolledBack, and the
// alias is set back to the primary's version) or waits. Without a Health
// source nothing is judged: a server with monitoring judges. Each
// decision applies only while the canary is the revision judged: a
// concurrent change makes it a no-op, not an error. The alias follower
// started by Open runs it after each SyncAliases; several servers may run
// it at once. The error joins the failures of the deployments that could
// not be judged.
func (s *Service) ReconcileRollouts(ctx context.Context) error {
	list, err := s.Store.ListDeployments(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range list {
		if d.Spec.Rollout == nil {
			continue
		}
		c := d.Slot(RoleCanary)
		if c == nil || !c.Rollout {
			continue
		}
		if err := s.judgeRollout(ctx, d, *c); err != nil {
			errs = append(errs, fmt.Errorf("deployment %s: judge rollout canary revision %d: %w", d.Name, c.Revision, err))
		}
	}
	return errors.Join(errs...)
}

// judgeRollout judges the rollout canary c of d and acts on the decision.
func (s *Service) judgeRollout(ctx context.Context, d *Deployment, c Slot) error {
	pol := d.Spec.Rollout.WithDefaults()
	startMs := c.Since
	if startMs == 0 {
		startMs = d.UpdatedAt
	}
	since := time.UnixMilli(startMs)
	age := s.now().Sub(since)
	if age < time.Duration(pol.Window) {
		return nil
	}
	v := RolloutVerdict{CanaryRevision: c.Revision, Since: startMs, Age: Duration(age.Round(time.Millisecond)), Policy: pol}
	p := d.Slot(RolePrimary)
	v.PrimaryRevision = p.Revision
	if s.Health == nil {
		// Without figures nothing is judged: a server with monitoring
		// (one whose data plane serves the traffic) does it.
		s.log().Debug("rollout canary not judged: this server has no monitoring", "deployment", d.Name, "revision", c.Revision)
		return nil
	}
	ch, err := s.Health.VersionHealth(ctx, d.Name, c.Model, c.Version, since)
	var ph VersionHealth
	if err == nil {
		ph, err = s.Health.VersionHealth(ctx, d.Name, p.Model, p.Version, since)
	}
	if mloop.ErrorCode(err) == mloop.EUNAVAILABLE {
		// Monitoring stopped (the server shuts down): judge later.
		s.log().Debug("rollout canary not judged: no figures", "deployment", d.Name, "revision", c.Revision, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("measure the canary and the primary: %w", err)
	}
	v.Canary, v.Primary = &ch, &ph
	v.Decision, v.Reason = pol.Judge(age, ch, ph)
	extra, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode the rollout verdict: %w", err)
	}
	switch v.Decision {
	case DecisionPromote:
		_, err = s.promoteRollout(ctx, d.Name, c.Revision, p.Revision, v.Reason, extra)
	case DecisionRollback:
		_, err = s.Rollback(ctx, d.Name, RollbackRequest{IfCanaryRevision: c.Revision, Automatic: true, Reason: v.Reason, Details: extra})
	default:
		return nil
	}
	if err != nil && (mloop.ErrorCode(err) == mloop.ECONFLICT || mloop.IsNotFound(err)) {
		s.log().Info("rollout decision not applied: the deployment changed meanwhile", "deployment", d.Name,
			"revision", c.Revision, "decision", v.Decision, "err", mloop.ErrorMessage(err))
		return nil
	}
	return err
}

// promoteRollout promotes the rollout canary revision rev of the named
// deployment, judged against primary revision primaryRev: the canary's
// revision serves all traffic as the primary, which keeps following its
// alias. ECONFLICT when the canary or the primary changed meanwhile, or
// when the alias the primary follows no longer names the canary's version
// (another server, a user or a pipeline moved it): a decision is applied
// only to what it judged.
func (s *Service) promoteRollout(ctx context.Context, name string, rev, primaryRev int64, reason string, extra json.RawMessage) (*Deployment, error) {
	return s.apply(ctx, name, func(ctx context.Context, cur *Deployment) (*Deployment, *Event, error) {
		c, p := cur.Slot(RoleCanary), cur.Slot(RolePrimary)
		if c == nil || c.Revision != rev || !c.Rollout || p == nil || p.Revision != primaryRev || !rolloutActive(cur) {
			return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s no longer serves rollout canary revision %d beside primary revision %d: nothing was promoted", name, rev, primaryRev)
		}
		v, err := s.lookup(ctx, cur.Spec.Model)
		if err != nil {
			return nil, nil, fmt.Errorf("resolve %s before promoting: %w", cur.Spec.Model, err)
		}
		if v.Name != c.Model || v.Version != c.Version {
			return nil, nil, mloop.Errorf(mloop.ECONFLICT, "deployment %s: %s now names %s/%d, not the canary's %s/%d: nothing was promoted (the follower acts on the alias's new version)",
				name, cur.Spec.Model, v.Name, v.Version, c.Model, c.Version)
		}
		next, msg := promoted(cur, s.now().UnixMilli())
		return next, &Event{Type: EventPromoted, Automatic: true, Message: "promoted automatically: " + msg + " (" + reason + ")",
			Details: details(cur.Slots, next.Slots, reason, extra)}, nil
	})
}

// promoted returns cur with its canary promoted to primary (the canary's
// revision serving all traffic) and says what changed. A rollout canary's
// promotion keeps the primary following its alias; any other makes the
// primary follow the canary's reference.
func promoted(cur *Deployment, now int64) (*Deployment, string) {
	canary, primary := *cur.Slot(RoleCanary), *cur.Slot(RolePrimary)
	next := cur.clone()
	ref := *cur.Spec.Canary
	keepAlias := canary.Rollout && cur.Spec.Model.Alias != ""
	if keepAlias {
		ref = cur.Spec.Model
	}
	next.Spec.Model, next.Spec.Canary, next.Spec.CanaryPercent = ref, nil, 0
	p := canary
	p.Role, p.Percent, p.Ref, p.Since, p.Rollout = RolePrimary, 100, ref, now, false
	next.Slots = []Slot{p}
	if sh := cur.Slot(RoleShadow); sh != nil {
		next.Slots = append(next.Slots, *sh)
	}
	msg := fmt.Sprintf("canary %s now serves all traffic as primary, replacing %s", describeSlot(canary), describeSlot(primary))
	switch m := cur.Spec.Model; {
	case keepAlias:
		msg += fmt.Sprintf("; the primary follows %s again", m)
	case m.Alias != "" && m != *cur.Spec.Canary:
		msg += fmt.Sprintf("; the primary no longer follows %s", m)
	}
	return next, msg
}

// aliasRevert is an alias to set back after a rollout canary was removed
// without being promoted: Alias (MODEL@ALIAS) named the canary's version
// Rejected and goes back to version To.
type aliasRevert struct {
	Alias    Ref
	Rejected int64
	To       int64
}

// planAliasRevert returns the alias to set back when next removes the
// rollout canary of cur without promoting it, while the alias the primary
// follows still names the canary's version; nil otherwise. The message
// suffix says so.
func (s *Service) planAliasRevert(ctx context.Context, cur, next *Deployment) (*aliasRevert, string) {
	c := cur.Slot(RoleCanary)
	if c == nil || !c.Rollout || !rolloutActive(cur) || cur.Spec.Model.Model != c.Model {
		return nil, ""
	}
	if nc := next.Slot(RoleCanary); nc != nil && nc.Revision == c.Revision {
		return nil, ""
	}
	p := next.Slot(RolePrimary)
	if p == nil || p.Model != c.Model || p.Version == c.Version {
		return nil, ""
	}
	v, err := s.lookup(ctx, cur.Spec.Model)
	if err != nil || v.Name != c.Model || v.Version != c.Version {
		return nil, ""
	}
	plan := &aliasRevert{Alias: cur.Spec.Model, Rejected: c.Version, To: p.Version}
	return plan, fmt.Sprintf("; alias %s set back to %s/%d so that %s/%d is not rolled out again", plan.Alias, c.Model, plan.To, c.Model, c.Version)
}

// revertAlias sets an alias back as planned, unless it moved meanwhile.
// A failure is logged with what to do: the change it follows is made.
func (s *Service) revertAlias(ctx context.Context, name string, plan *aliasRevert) {
	if plan == nil {
		return
	}
	// The change it follows is stored: a client that went away must not
	// leave the alias half done (the follower retries it anyway, from the
	// policy's Rejected list).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	a := plan.Alias
	v, err := s.lookup(ctx, a)
	if err != nil && aliasMissing(err) {
		s.log().Info("alias not set back: it was deleted meanwhile", "deployment", name, "alias", a.String())
		return
	}
	if err == nil && (v.Name != a.Model || v.Version != plan.Rejected) {
		s.log().Info("alias not set back: it moved meanwhile", "deployment", name, "alias", a.String(), "now", fmt.Sprintf("%s/%d", v.Name, v.Version))
		return
	}
	if err == nil {
		err = s.Registry.SetRegisteredModelAlias(ctx, a.Model, a.Alias, strconv.FormatInt(plan.To, 10))
	}
	if err != nil {
		s.log().Error("cannot set an alias back after its rollout canary was removed: the follower retries; the rejected version is not rolled out again meanwhile",
			"deployment", name, "alias", a.String(), "to", plan.To, "rejected", plan.Rejected, "err", err)
		return
	}
	s.log().Info("alias set back after its rollout canary was removed", "deployment", name, "alias", a.String(),
		"to", plan.To, "rejected", plan.Rejected)
}

// describeRollout describes a rollout policy in one line.
func describeRollout(p *RolloutPolicy) string {
	if p == nil {
		return "off"
	}
	q := p.WithDefaults()
	s := fmt.Sprintf("canary %d%%, judged after %v once it has %d requests (rolled back without them after %v), max error rate +%g, max p99 ×%g (and +%v)",
		q.CanaryPercent, time.Duration(q.Window), q.MinRequests, time.Duration(q.MaxWait), q.MaxErrorRateIncrease, q.MaxLatencyRatio, time.Duration(q.MinLatencyIncrease))
	if q.Metric != "" {
		s += fmt.Sprintf(", live %s at most %g worse over %d labels", q.Metric, q.MaxDegradation, q.MinLabels)
	}
	return s
}
