package story

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// Registry tags the story reads, as the register step writes them.
const (
	tagPipelineRun   = "mloop.pipeline_run"
	tagBlessed       = "mloop.blessed"
	tagGateChampion  = "mloop.gate.champion"
	tagMetrics       = pipeline.MetricsTag
	gateBlessedValue = "gate.blessed"
)

// builder assembles one story.
type builder struct {
	svc   *Service
	name  string
	limit int

	dep    *deploy.Deployment // nil when the deployment was deleted
	events []devent           // the deployment's events, oldest first
	notes  []string

	covered map[string]bool // MODEL/VERSION already in a chain
}

// devent is a deployment event with its details decoded.
type devent struct {
	ev  *deploy.Event
	det deploy.EventDetails
}

// load reads the deployment and its newest events.
func (b *builder) load(ctx context.Context) error {
	d, err := b.svc.Deployments.Get(ctx, b.name)
	if err != nil && !mloop.IsNotFound(err) {
		return fmt.Errorf("story of %s: %w", b.name, err)
	}
	getErr := err
	b.dep = d
	evs, err := b.svc.Deployments.Events(ctx, b.name, MaxDeploymentEvents)
	if err != nil {
		return fmt.Errorf("story of %s: events: %w", b.name, err)
	}
	if d == nil && len(evs) == 0 {
		return getErr // never deployed
	}
	b.events = make([]devent, 0, len(evs))
	for i := len(evs) - 1; i >= 0; i-- {
		b.events = append(b.events, devent{ev: evs[i], det: parseDetails(evs[i].Details)})
	}
	b.covered = map[string]bool{}
	return nil
}

// group is the alerts and trigger events that led to one run, or the
// trigger links of one alert that led to none.
type group struct {
	runID string
	links []Link // alert and trigger links, alert by alert
	start time.Time
	// outcome of a group without a run.
	outcome string
}

// build assembles the chains.
func (b *builder) build(ctx context.Context) (*Story, error) {
	st := &Story{Deployment: b.name, Chains: []Chain{}}
	if b.dep != nil {
		st.Model = b.dep.Spec.Model.String()
	}
	var chains []Chain
	if b.svc.Alerts == nil {
		b.notes = append(b.notes, "this server does not evaluate alert rules (alerting runs with --serving and --monitor): chains start at pipeline runs and model versions")
	} else {
		cs, err := b.alertChains(ctx)
		if err != nil {
			return nil, err
		}
		chains = append(chains, cs...)
	}
	cs, err := b.rolloutChains(ctx)
	if err != nil {
		return nil, err
	}
	chains = append(chains, cs...)
	slices.SortStableFunc(chains, func(x, y Chain) int { return y.Start().Compare(x.Start()) })
	if len(chains) > b.limit {
		chains = chains[:b.limit]
	}
	if chains != nil {
		st.Chains = chains
	}
	st.Notes = b.notes
	return st, nil
}

// alertChains returns the chains that start at the deployment's newest
// alerts.
func (b *builder) alertChains(ctx context.Context) ([]Chain, error) {
	alerts, err := b.svc.Alerts.Alerts(ctx, alert.AlertFilter{Deployment: b.name, Limit: 2 * b.limit})
	if err != nil {
		return nil, fmt.Errorf("story of %s: alerts: %w", b.name, err)
	}
	if len(alerts) == 0 {
		return nil, nil
	}
	byAlert, err := b.alertEvents(ctx)
	if err != nil {
		return nil, err
	}
	var order []string
	groups := map[string]*group{}
	add := func(key string, g *group, links ...Link) {
		cur, ok := groups[key]
		if !ok {
			cur = g
			groups[key] = cur
			order = append(order, key)
		}
		cur.links = append(cur.links, links...)
		if t := links[0].Time; cur.start.IsZero() || t.Before(cur.start) {
			cur.start = t
		}
	}
	// Oldest alert first, so that a run's chain lists its alerts in order.
	for i := len(alerts) - 1; i >= 0; i-- {
		a := alerts[i]
		al := alertLink(a)
		evs := byAlert[a.ID]
		if len(evs) == 0 {
			tl, outcome, err := b.noEventLink(ctx, a)
			if err != nil {
				return nil, err
			}
			add("alert:"+a.ID, &group{outcome: outcome}, al, tl)
			continue
		}
		var quiet []Link // events decided without a run
		for _, ev := range evs {
			tl := triggerLink(ev)
			if ev.Status == pipeline.EventFired && ev.RunID != "" {
				add("run:"+ev.RunID, &group{runID: ev.RunID}, al, tl)
				continue
			}
			quiet = append(quiet, tl)
		}
		if len(quiet) > 0 {
			add("alert:"+a.ID, &group{outcome: quietOutcome(quiet)}, append([]Link{al}, quiet...)...)
		}
	}
	var chains []Chain
	for _, key := range order {
		g := groups[key]
		if g.runID == "" {
			chains = append(chains, Chain{Outcome: g.outcome, Links: g.links})
			continue
		}
		r, err := b.svc.Pipelines.GetRun(ctx, g.runID)
		if mloop.IsNotFound(err) {
			chains = append(chains, Chain{Outcome: OutcomeRunFailed, Links: append(g.links, Link{
				Time: g.links[len(g.links)-1].Time, Kind: KindRun, Status: "missing", Ref: g.runID,
				Title: "pipeline run " + g.runID + " no longer exists",
			})})
			continue
		} else if err != nil {
			return nil, fmt.Errorf("story of %s: run %s: %w", b.name, g.runID, err)
		}
		links, outcome, err := b.runChain(ctx, r)
		if err != nil {
			return nil, err
		}
		chains = append(chains, Chain{Outcome: outcome, Links: append(g.links, links...)})
	}
	return chains, nil
}

// alertEvents returns the trigger events that alerts of the deployment
// posted, by alert id, oldest first: the newest MaxTriggerEvents of each
// event trigger whose subject is alert/RULE/DEPLOYMENT.
func (b *builder) alertEvents(ctx context.Context) (map[string][]*pipeline.TriggerEvent, error) {
	ts, err := b.svc.Pipelines.ListTriggers(ctx)
	if err != nil {
		return nil, fmt.Errorf("story of %s: triggers: %w", b.name, err)
	}
	out := map[string][]*pipeline.TriggerEvent{}
	for _, t := range ts {
		if t.Kind != pipeline.OnEvent {
			continue
		}
		evs, err := b.svc.Pipelines.TriggerEvents(ctx, t.Name, MaxTriggerEvents)
		if mloop.IsNotFound(err) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, fmt.Errorf("story of %s: events of trigger %s: %w", b.name, t.Name, err)
		}
		for i := len(evs) - 1; i >= 0; i-- {
			ev := evs[i]
			if ev.Source != "event" || !AlertSubject(ev.Subject, b.name) {
				continue
			}
			if id, dep := AlertOfPayload(ev.Payload); id != "" && (dep == "" || dep == b.name) {
				out[id] = append(out[id], ev)
			}
		}
	}
	return out, nil
}

// AlertSubject reports whether a trigger event's subject is one an alert
// trigger action posts for deployment: alert/RULE/DEPLOYMENT.
func AlertSubject(subject, deployment string) bool {
	rest, ok := strings.CutPrefix(subject, "alert/")
	if !ok {
		return false
	}
	rule, dep, ok := strings.Cut(rest, "/")
	return ok && rule != "" && dep == deployment
}

// AlertOfPayload returns the alert id and deployment of an alert trigger
// event's payload (alert.Payload), or "" when the payload is not one.
func AlertOfPayload(payload []byte) (id, deployment string) {
	var p struct {
		Alert *struct {
			ID         string `json:"id"`
			Deployment string `json:"deployment"`
		} `json:"alert"`
	}
	if len(payload) == 0 || json.Unmarshal(payload, &p) != nil || p.Alert == nil {
		return "", ""
	}
	if !strings.HasPrefix(p.Alert.ID, "al-") {
		return "", ""
	}
	return p.Alert.ID, p.Alert.Deployment
}

// noEventLink describes why an alert has no trigger event, from its
// deliveries, and the chain's outcome.
func (b *builder) noEventLink(ctx context.Context, a *alert.Alert) (Link, string, error) {
	l := Link{Time: a.StartedAt, Kind: KindTrigger, Status: "none", Ref: a.ID,
		Link: "/api/v1/alerts/" + url.PathEscape(a.ID), Command: "mloop alert show " + a.ID}
	_, ds, err := b.svc.Alerts.Alert(ctx, a.ID)
	if err != nil && !mloop.IsNotFound(err) {
		return l, "", fmt.Errorf("story of %s: alert %s: %w", b.name, a.ID, err)
	}
	var last *alert.Delivery
	for _, d := range ds {
		if d.Kind == "trigger" && d.Event == alert.StateFiring {
			last = d
		}
	}
	switch {
	case last == nil:
		l.Title = fmt.Sprintf("no trigger event: rule %s posted none (its trigger action has not run yet)", a.Rule)
		r, err := b.svc.Alerts.GetRule(ctx, a.Rule)
		switch {
		case mloop.IsNotFound(err):
			l.Title = fmt.Sprintf("no trigger event: rule %s no longer exists", a.Rule)
		case err != nil:
			return l, "", fmt.Errorf("story of %s: rule %s: %w", b.name, a.Rule, err)
		case !slices.ContainsFunc(r.Actions, func(x alert.Action) bool { return x.Trigger != nil }):
			l.Title = fmt.Sprintf("no trigger event: rule %s has no trigger action (it records alerts and sends webhooks only)", a.Rule)
		}
		return l, OutcomeNotTriggered, nil
	case last.Outcome == alert.OutcomeOK:
		l.Time = last.Time
		l.Title = "no trigger received the event: " + cmp.Or(last.Detail, "delivered") + " (is a trigger created with --on-event " + alert.DefaultEventType + "?)"
		return l, OutcomeNotTriggered, nil
	case last.Outcome == alert.OutcomeRetry:
		l.Time, l.Status = last.Time, "retrying"
		l.Title = fmt.Sprintf("the trigger action is retried after attempt %d: %s", last.Attempt, last.Error)
		return l, OutcomeInProgress, nil
	default:
		l.Time, l.Status = last.Time, last.Outcome
		l.Title = fmt.Sprintf("the trigger action %s after %d attempt(s): %s", last.Outcome, last.Attempt, last.Error)
		return l, OutcomeTriggerFailed, nil
	}
}

// quietOutcome is the outcome of an alert whose events started no run.
func quietOutcome(links []Link) string {
	out := ""
	for _, l := range links {
		switch pipeline.EventStatus(l.Status) {
		case pipeline.EventPending:
			return OutcomeInProgress
		case pipeline.EventDeduped:
			out = OutcomeDeduplicated
		case pipeline.EventSkipped:
			if out == "" {
				out = OutcomeSkipped
			}
		}
	}
	return cmp.Or(out, OutcomeSkipped)
}

// rolloutChains returns chains for the versions the deployment served
// that no alert chain covers, newest first, at most the limit.
func (b *builder) rolloutChains(ctx context.Context) ([]Chain, error) {
	var chains []Chain
	for i := len(b.events) - 1; i >= 0 && len(chains) < b.limit; i-- {
		e := b.events[i]
		for _, sl := range introduced(e.det) {
			key := versionKey(sl.Model, sl.Version)
			if b.covered[key] {
				continue
			}
			c, err := b.versionChain(ctx, sl.Model, sl.Version)
			if err != nil {
				return nil, err
			}
			b.covered[key] = true
			chains = append(chains, c)
		}
	}
	return chains, nil
}

// versionChain returns the chain of a served version: from its run when a
// pipeline registered it, else from the version.
func (b *builder) versionChain(ctx context.Context, model string, version int64) (Chain, error) {
	mv, err := b.svc.Registry.GetModelVersion(ctx, model, strconv.FormatInt(version, 10))
	if mloop.IsNotFound(err) {
		links, outcome := b.rollout(model, version)
		return Chain{Outcome: outcome, Links: links}, nil
	} else if err != nil {
		return Chain{}, fmt.Errorf("story of %s: model version %s: %w", b.name, versionKey(model, version), err)
	}
	if id := tag(mv, tagPipelineRun); id != "" {
		r, err := b.svc.Pipelines.GetRun(ctx, id)
		if err == nil {
			links, outcome, err := b.runChain(ctx, r)
			if err != nil {
				return Chain{}, err
			}
			if b.covered[versionKey(model, version)] {
				return Chain{Outcome: outcome, Links: links}, nil
			}
			// The run no longer names the version (a search miss): fall
			// back to the version's own chain.
		} else if !mloop.IsNotFound(err) {
			return Chain{}, fmt.Errorf("story of %s: run %s: %w", b.name, id, err)
		}
	}
	b.covered[versionKey(model, version)] = true
	links := []Link{versionLink(mv)}
	rl, outcome := b.rollout(model, version)
	return Chain{Outcome: outcome, Links: append(links, rl...)}, nil
}

// runChain returns the links from run r on — the run, its gates, the
// versions it registered and their rollouts — and the chain's outcome. It
// marks the versions covered.
func (b *builder) runChain(ctx context.Context, r *pipeline.Run) ([]Link, string, error) {
	links := []Link{runLink(r)}
	gates, rejected := gateLinks(r)
	vs, err := b.runVersions(ctx, r.ID)
	if err != nil {
		return nil, "", err
	}
	champion := ""
	for _, mv := range vs {
		if c := tag(mv, tagGateChampion); c != "" && c != "none" {
			champion = c
		}
	}
	for i := range gates {
		if champion != "" {
			gates[i].Title += " against champion " + champion
		}
	}
	links = append(links, gates...)
	outcome := ""
	switch {
	case rejected:
		outcome = OutcomeGateRejected
	case r.Status == pipeline.RunFailed:
		outcome = OutcomeRunFailed
	case r.Status == pipeline.RunCanceled:
		outcome = OutcomeRunCanceled
	case !r.Status.Done():
		outcome = OutcomeInProgress
	case len(vs) == 0:
		outcome = OutcomeNoModel
	}
	for _, mv := range vs {
		b.covered[versionKey(mv.Name, mv.Version)] = true
		links = append(links, versionLink(mv))
		rl, ro := b.rollout(mv.Name, mv.Version)
		links = append(links, rl...)
		switch {
		case len(rl) > 0:
			outcome = ro
		case outcome != "":
		case tag(mv, tagBlessed) == "false":
			outcome = OutcomeGateRejected
		case b.follows(mv):
			outcome = OutcomeInProgress // the follower has not moved yet
		default:
			outcome = OutcomeNotDeployed
		}
	}
	return links, outcome, nil
}

// follows reports whether the deployment's primary follows an alias that
// names mv.
func (b *builder) follows(mv *registry.ModelVersion) bool {
	if b.dep == nil {
		return false
	}
	ref := b.dep.Spec.Model
	return ref.Alias != "" && ref.Model == mv.Name && slices.Contains(mv.Aliases, ref.Alias)
}

// runVersions returns the versions a run's register steps created, oldest
// first (at most maxRunVersions).
func (b *builder) runVersions(ctx context.Context, runID string) ([]*registry.ModelVersion, error) {
	n := int64(maxRunVersions)
	vs, _, err := b.svc.Registry.SearchModelVersions(ctx, registry.SearchRequest{
		Filter:     fmt.Sprintf("tags.`%s` = '%s'", tagPipelineRun, strings.ReplaceAll(runID, "'", "''")),
		MaxResults: &n,
	})
	if err != nil {
		return nil, fmt.Errorf("story of %s: versions of run %s: %w", b.name, runID, err)
	}
	slices.SortFunc(vs, func(x, y *registry.ModelVersion) int {
		return cmp.Or(cmp.Compare(x.CreationTimestamp, y.CreationTimestamp), cmp.Compare(x.Name, y.Name), cmp.Compare(x.Version, y.Version))
	})
	return vs, nil
}

// rollout returns the links of the deployment events that served model
// version (model, version) — each time a slot started serving it, then
// its promotion, its rollback or its replacement as a canary — and the
// outcome they lead to ("" when the deployment never served it).
func (b *builder) rollout(model string, version int64) ([]Link, string) {
	var links []Link
	outcome := ""
	tracked := map[int64]string{} // revision → role
	for _, e := range b.events {
		before := map[int64]deploy.Slot{}
		for _, sl := range e.det.Before {
			before[sl.Revision] = sl
		}
		after := map[int64]deploy.Slot{}
		for _, sl := range e.det.After {
			after[sl.Revision] = sl
		}
		linked := false
		link := func(status string) {
			if !linked {
				links = append(links, b.eventLink(e, status))
				linked = true
			}
		}
		for _, sl := range e.det.After {
			if sl.Model != model || sl.Version != version {
				continue
			}
			if _, old := before[sl.Revision]; old {
				continue
			}
			tracked[sl.Revision] = sl.Role
			switch sl.Role {
			case deploy.RoleCanary:
				link(fmt.Sprintf("canary %d%%", sl.Percent))
				outcome = OutcomeInProgress
			case deploy.RoleShadow:
				link("shadow")
				outcome = OutcomeShadow
			default:
				link("primary")
				outcome = OutcomeDeployed
			}
		}
		for rev, role := range tracked {
			if _, was := before[rev]; !was {
				continue // introduced by this event
			}
			now, still := after[rev]
			switch {
			case !still:
				delete(tracked, rev)
				if e.ev.Type == deploy.EventRolledBack || e.ev.Type == deploy.EventAutoRolledBack {
					link(decision(e, "rolled back"))
					outcome = OutcomeRolledBack
				} else if role == deploy.RoleCanary {
					link("replaced")
					outcome = OutcomeReplaced
				}
			case role == deploy.RoleCanary && now.Role == deploy.RolePrimary:
				tracked[rev] = now.Role
				link(decision(e, "promoted"))
				outcome = OutcomePromoted
			}
		}
	}
	return links, outcome
}

// OutcomeShadow: the version receives a copy of traffic as a shadow.
const OutcomeShadow = "shadow"

// decision returns the decision an automatic judgment recorded in the
// event's details, or def.
func decision(e devent, def string) string {
	var d struct {
		Decision string `json:"decision"`
	}
	if len(e.det.Details) > 0 && json.Unmarshal(e.det.Details, &d) == nil && d.Decision != "" {
		return d.Decision
	}
	return def
}

// introduced returns the slots an event started serving (their revision
// is not among the slots before it).
func introduced(det deploy.EventDetails) []deploy.Slot {
	before := map[int64]bool{}
	for _, sl := range det.Before {
		before[sl.Revision] = true
	}
	var out []deploy.Slot
	for _, sl := range det.After {
		if !before[sl.Revision] && sl.Model != "" && sl.Version > 0 {
			out = append(out, sl)
		}
	}
	return out
}

// parseDetails decodes an event's details; what does not decode is left
// zero (an event without details links nothing).
func parseDetails(raw json.RawMessage) deploy.EventDetails {
	var det deploy.EventDetails
	if len(raw) > 0 && json.Unmarshal(raw, &det) != nil {
		return deploy.EventDetails{}
	}
	return det
}

// eventLink is the link of a deployment event.
func (b *builder) eventLink(e devent, status string) Link {
	title := e.ev.Message
	if title == "" {
		title = strings.ReplaceAll(e.ev.Type, "_", " ")
	}
	var d struct {
		Reason string `json:"reason"`
	}
	if len(e.det.Details) > 0 && json.Unmarshal(e.det.Details, &d) == nil && d.Reason != "" && !strings.Contains(title, d.Reason) {
		title += " (" + d.Reason + ")"
	} else if e.det.Reason != "" && !strings.Contains(title, e.det.Reason) {
		title += " (" + e.det.Reason + ")"
	}
	if e.ev.Automatic {
		status += ", automatic"
	}
	return Link{
		Time: time.UnixMilli(e.ev.Time).UTC(), Kind: e.ev.Type, Status: status,
		Ref:     fmt.Sprintf("%s#%d", e.ev.Deployment, e.ev.ID),
		Title:   title,
		Link:    "/api/v1/deployments/" + url.PathEscape(b.name) + "/events",
		Command: "mloop deploy events " + b.name,
	}
}

// alertLink is the link of an alert.
func alertLink(a *alert.Alert) Link {
	title := a.Rule + ": " + a.Message
	if a.ModelVersion != "" && !strings.Contains(a.Message, a.ModelVersion) {
		title += " on " + a.ModelVersion
	}
	return Link{
		Time: a.StartedAt.UTC(), Kind: KindAlert, Status: string(a.State), Ref: a.ID, Title: title,
		Link: "/api/v1/alerts/" + url.PathEscape(a.ID), Command: "mloop alert show " + a.ID,
	}
}

// triggerLink is the link of a trigger event.
func triggerLink(ev *pipeline.TriggerEvent) Link {
	var title string
	switch ev.Status {
	case pipeline.EventFired:
		title = fmt.Sprintf("trigger %s fired run %s", ev.Trigger, ev.RunID)
	case pipeline.EventPending:
		title = fmt.Sprintf("trigger %s: the event waits to be decided", ev.Trigger)
	default:
		title = fmt.Sprintf("trigger %s: %s", ev.Trigger, ev.Status)
	}
	if ev.Reason != "" {
		title += ": " + ev.Reason
	}
	return Link{
		Time: ev.CreatedAt.UTC(), Kind: KindTrigger, Status: string(ev.Status),
		Ref:     fmt.Sprintf("%s#%d", ev.Trigger, ev.ID),
		Title:   title,
		Link:    "/api/v1/triggers/" + url.PathEscape(ev.Trigger) + "/events",
		Command: "mloop trigger events " + ev.Trigger,
	}
}

// runLink is the link of a pipeline run.
func runLink(r *pipeline.Run) Link {
	title := fmt.Sprintf("pipeline %s %s", r.Pipeline, r.Status)
	if r.Cause != "" {
		title += " (" + r.Cause + ")"
	}
	if r.Error != "" {
		title += ": " + r.Error
	}
	return Link{
		Time: r.CreatedAt.UTC(), Kind: KindRun, Status: string(r.Status), Ref: r.ID, Title: title,
		Link: "/api/v1/pipeline-runs/" + url.PathEscape(r.ID), Command: "mloop pipeline show " + r.ID,
	}
}

// gateLinks returns the links of a run's gate steps and whether one of
// them rejected its candidate. A gate step is one that recorded the
// gate.blessed metric, or a step the spec declares `uses: gate` that
// failed because its candidate was not blessed.
func gateLinks(r *pipeline.Run) ([]Link, bool) {
	gates := map[string]bool{}
	if r.Spec != "" {
		if spec, err := pipeline.ParseSpec(r.SpecFile, []byte(r.Spec)); err == nil {
			for _, st := range spec.Steps {
				if st.Uses == "gate" {
					gates[st.Name] = true
				}
			}
		}
	}
	var links []Link
	rejected := false
	for _, st := range r.Steps {
		v, measured := st.Metrics[gateBlessedValue]
		if !measured && !gates[st.Name] {
			continue
		}
		l := Link{
			Time: cmp.Or(st.FinishedAt, st.StartedAt, r.CreatedAt).UTC(), Kind: KindGate, Ref: r.ID + "/" + st.Name,
			Link: "/api/v1/pipeline-runs/" + url.PathEscape(r.ID), Command: "mloop pipeline logs " + r.ID + " " + st.Name,
		}
		switch {
		case measured && st.Status.OK():
			counts := fmt.Sprintf("%g passed, %g failed, %g skipped", st.Metrics["gate.passed"], st.Metrics["gate.failed"], st.Metrics["gate.skipped"])
			if v == 1 {
				l.Status, l.Title = "blessed", fmt.Sprintf("step %s blessed the candidate (%s)", st.Name, counts)
			} else {
				l.Status, l.Title = "rejected", fmt.Sprintf("step %s did not bless the candidate (%s)", st.Name, counts)
				rejected = true
			}
		case st.Status == pipeline.StepFailed && strings.Contains(st.Error, "not blessed"):
			l.Status, l.Title = "rejected", fmt.Sprintf("step %s did not bless the candidate: %s", st.Name, st.Error)
			rejected = true
		case st.Status.Done():
			l.Status, l.Title = string(st.Status), fmt.Sprintf("step %s %s", st.Name, st.Status)
			if st.Error != "" {
				l.Title += ": " + st.Error
			}
		default:
			continue // not judged yet
		}
		links = append(links, l)
	}
	return links, rejected
}

// versionLink is the link of a model version.
func versionLink(mv *registry.ModelVersion) Link {
	ref := versionKey(mv.Name, mv.Version)
	status := "registered"
	switch tag(mv, tagBlessed) {
	case "true":
		status = "blessed"
	case "false":
		status = "not blessed"
	}
	title := "registered " + ref
	if status != "registered" {
		title += ", " + status
	}
	if m := MetricsSummary(tag(mv, tagMetrics), 4); m != "" {
		title += " (" + m + ")"
	}
	if len(mv.Aliases) > 0 {
		title += "; aliases now: " + strings.Join(mv.Aliases, ", ")
	}
	return Link{
		Time: time.UnixMilli(mv.CreationTimestamp).UTC(), Kind: KindModelVersion, Status: status, Ref: ref, Title: title,
		Link:    "/api/2.0/mlflow/model-versions/get?name=" + url.QueryEscape(mv.Name) + "&version=" + strconv.FormatInt(mv.Version, 10),
		Command: "mloop lineage models:/" + ref + " --up",
	}
}

// MetricsSummary returns the first n overall metrics of a version's
// mloop.metrics tag ({"values": {NAME: NUMBER}, …}) by name, as "auc
// 0.912, logloss 0.31"; "" when the tag holds none. Members that are not
// numbers are left out.
func MetricsSummary(tagValue string, n int) string {
	if tagValue == "" || n <= 0 {
		return ""
	}
	var m struct {
		Values map[string]any `json:"values"`
	}
	if json.Unmarshal([]byte(tagValue), &m) != nil {
		return ""
	}
	names := make([]string, 0, len(m.Values))
	for k, v := range m.Values {
		if _, ok := v.(float64); ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	if len(names) > n {
		names = names[:n]
	}
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = fmt.Sprintf("%s %.4g", k, m.Values[k].(float64))
	}
	return strings.Join(parts, ", ")
}

// tag returns a version's tag value, or "".
func tag(mv *registry.ModelVersion, key string) string {
	for _, t := range mv.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// versionKey returns MODEL/VERSION.
func versionKey(model string, version int64) string {
	return model + "/" + strconv.FormatInt(version, 10)
}
