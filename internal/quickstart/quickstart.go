// Package quickstart plays mloop's whole loop on real data against a
// running server, through its HTTP API only: what `mloop quickstart` runs.
//
// The data are NOAA's daily weather in Seattle (data/, embedded). The task
// is to tell from a day's precipitation, temperatures and wind whether it
// was reported sunny. Month by month, the labelled days land as two
// datasets: weather-train (every month before the newest) and weather-test
// (the newest month). The pipeline (mloop.yaml, written into the project
// folder) validates, trains with the built-in trainer (train/gbdt), scores
// the candidate and the champion on the same newest month (evaluate),
// gates, and registers; the champion alias moves only when the gate
// blesses the candidate.
//
// The model trained on January–March 2014 is deployed behind the alias
// weather@champion with a rollout policy: a new champion first serves as a
// canary. Then May–September 2014 are replayed as live traffic over the
// Open Inference Protocol, one request per day, with each day's label sent
// as feedback. Each month fills one monitoring window; alert rules watch
// them: drift is recorded, and live accuracy below 0.75 posts a retraining
// event that a pipeline trigger turns into a run on the newest data. A
// blessed candidate becomes champion, serves as a canary, and is promoted
// when its live figures hold up against the primary's, or rolled back.
//
// Scenarios: ScenarioRetrain shows the loop improving the model (the
// winter model fails in summer; the retrained one is promoted).
// ScenarioBrokenLabels shows a bad retrain stopped: from the retraining
// month on, the export that produces the datasets (re-exporting all of
// history each month) writes the label inverted, while the application's
// feedback stays right. The candidate agrees with its equally broken test
// month, so it looks perfect offline and passes the gate; live, against the
// true labels, it fails: the canary is rolled back and the alias returns to
// the served version.
package quickstart

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// Scenario selects what the quickstart shows.
type Scenario string

// Scenarios.
const (
	// ScenarioRetrain: a quality drop causes a retrain whose canary is
	// promoted.
	ScenarioRetrain Scenario = "retrain"
	// ScenarioBrokenLabels: the retrained model is worse in production
	// (its training data's label was inverted upstream); the canary stops
	// it.
	ScenarioBrokenLabels Scenario = "broken-labels"
)

// ParseScenario returns the scenario named s; EINVALID for another name.
func ParseScenario(s string) (Scenario, error) {
	switch Scenario(s) {
	case ScenarioRetrain, ScenarioBrokenLabels:
		return Scenario(s), nil
	}
	return "", mloop.Errorf(mloop.EINVALID, "unknown scenario %q: use %s or %s", s, ScenarioRetrain, ScenarioBrokenLabels)
}

// Names the quickstart creates on the server.
const (
	Deployment   = "weather"
	Model        = "weather"
	TrainDataset = "weather-train"
	TestDataset  = "weather-test"
	TriggerName  = "retrain-on-alert"
	QualityRule  = "weather-accuracy"
	DriftRule    = "weather-drift"
)

// The timeline: the first model is trained on trainMonths and tested on
// testMonth; replayMonths are then served as live traffic (and
// extraMonths while a canary still waits for its verdict); from
// brokenFrom on, the broken-labels scenario's exports invert the label.
var (
	trainMonths  = []string{"2014-01", "2014-02", "2014-03"}
	testMonth    = "2014-04"
	replayMonths = []string{"2014-05", "2014-06", "2014-07", "2014-08", "2014-09"}
	extraMonths  = []string{"2014-10", "2014-11", "2014-12"}
	brokenFrom   = "2014-06"
)

// Thresholds of the alert rule and the rollout policy.
const (
	accuracyBound  = 0.75
	minLabels      = 20
	canaryPercent  = 50
	canaryMinReqs  = 10
	canaryLabels   = 10
	maxDegradation = 0.2
	latencyBar     = 250 * time.Millisecond
)

// Options configure Run.
type Options struct {
	// Server is the server's base URL; Client, when set, is used to call
	// it (default client.New(Server, nil)).
	Server string
	Client *client.Client
	// Dir is a folder on the server's machine where the quickstart writes
	// its project (mloop.yaml) and the monthly data files.
	Dir string
	// Scenario is what to show (default ScenarioRetrain).
	Scenario Scenario
	// Window is the server's monitoring window: each replayed month must
	// fit in one (the quickstart server uses a few seconds).
	Window time.Duration
	// Out receives the narration (default io.Discard).
	Out io.Writer
	// Timeout bounds each wait for the server (default 60s).
	Timeout time.Duration
}

// Run plays the scenario and returns its summary. The server must be
// fresh (no deployment, model or datasets of the names above) and serve,
// monitor and run pipelines with its own data plane.
func Run(ctx context.Context, o Options) (*Summary, error) {
	q, err := newRun(o)
	if err != nil {
		return nil, err
	}
	if err := q.play(ctx); err != nil {
		return q.sum, err
	}
	return q.sum, nil
}

// run is one play of the quickstart.
type run struct {
	o       Options
	c       *client.Client
	http    *http.Client
	out     io.Writer
	start   time.Time
	months  map[string][]day
	project string
	spec    string
	sum     *Summary

	seenAlerts map[string]bool
	seenEvents map[int64]bool
	models     map[int64]*ModelRow
}

func newRun(o Options) (*run, error) {
	if o.Server == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "quickstart: no server URL")
	}
	if o.Dir == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "quickstart: no folder for the project and data")
	}
	if o.Scenario == "" {
		o.Scenario = ScenarioRetrain
	}
	if _, err := ParseScenario(string(o.Scenario)); err != nil {
		return nil, err
	}
	if o.Window <= 0 {
		o.Window = 3 * time.Second
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
	c := o.Client
	if c == nil {
		c = client.New(o.Server, nil)
	}
	days, err := parseWeather(weatherCSV)
	if err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	return &run{
		o: o, c: c, http: &http.Client{Timeout: 30 * time.Second}, out: o.Out, start: time.Now(),
		months: byMonth(days), project: filepath.Join(dir, "project"),
		sum:        &Summary{Scenario: o.Scenario, Server: strings.TrimRight(o.Server, "/")},
		seenAlerts: map[string]bool{}, seenEvents: map[int64]bool{},
		models: map[int64]*ModelRow{},
	}, nil
}

// say prints one narration line with the time since the start.
func (q *run) say(format string, args ...any) {
	fmt.Fprintf(q.out, "[%5.1fs] %s\n", time.Since(q.start).Seconds(), fmt.Sprintf(format, args...))
}

// play runs the whole scenario.
func (q *run) play(ctx context.Context) error {
	defer func() { q.sum.Elapsed = time.Since(q.start).Round(100 * time.Millisecond) }()
	switch q.o.Scenario {
	case ScenarioRetrain:
		q.say("scenario %s: a model of winter days meets the summer; live accuracy drops, mloop retrains, gates, canaries and promotes", q.o.Scenario)
	case ScenarioBrokenLabels:
		q.say("scenario %s: from %s a bug in the data export inverts the label (sunny ↔ not sunny) in every month it exports, while the app's feedback stays right", q.o.Scenario, brokenFrom)
	}
	if err := q.writeProject(); err != nil {
		return err
	}
	// 1. Data: the first months, with a schema.
	if err := q.pushMonth(ctx, testMonth); err != nil {
		return err
	}
	for _, name := range []string{TrainDataset, TestDataset} {
		if err := q.c.SetSchema(ctx, name, []byte(schemaYAML(name))); err != nil {
			return fmt.Errorf("set the schema of %s: %w", name, err)
		}
	}
	q.say("schemas set: 4 float features (precipitation and wind ≥ 0), label sunny ∈ {0, 1}")
	// 2. Alert rules and the retraining trigger.
	if err := q.setupRules(ctx); err != nil {
		return err
	}
	// 3. The first model.
	q.say("pipeline %s: validate → train (built-in gbdt) → evaluate → gate → register", filepath.Join(q.project, "mloop.yaml"))
	r, err := q.c.SubmitPipelineRun(ctx, client.PipelineRunRequest{SpecFile: q.spec, ProjectDir: q.project, Cause: "quickstart: first model"})
	if err != nil {
		return fmt.Errorf("submit the first run: %w", err)
	}
	if _, err := q.followRun(ctx, r.ID, "first model"); err != nil {
		return err
	}
	// 4. The deployment, following the champion through canaries.
	if err := q.deploy(ctx); err != nil {
		return err
	}
	// 5. The months, replayed; while a canary is being judged, the
	// following months too, so that it gets traffic.
	for _, m := range replayMonths {
		if err := q.month(ctx, m); err != nil {
			return err
		}
	}
	for _, m := range extraMonths {
		if !q.canaryPending() {
			break
		}
		q.say("a canary is still being judged: replaying %s too", m)
		if err := q.month(ctx, m); err != nil {
			return err
		}
	}
	// 6. A canary still being judged gets its verdict.
	if err := q.settle(ctx); err != nil {
		return err
	}
	return q.summarize(ctx)
}

// writeProject writes mloop.yaml into the project folder.
func (q *run) writeProject() error {
	if err := os.MkdirAll(q.project, 0o755); err != nil {
		return err
	}
	q.spec = filepath.Join(q.project, "mloop.yaml")
	tmp := q.spec + ".tmp"
	if err := os.WriteFile(tmp, []byte(pipelineYAML), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, q.spec)
}

// pipelineYAML is the quickstart's pipeline.
const pipelineYAML = `# mloop quickstart: will the day be reported sunny?
name: weather
steps:
  validate:
    uses: validate
    inputs:
      data: data://weather-train@latest
  train:
    uses: train/gbdt
    needs: [validate]                      # bad data never reaches training
    inputs:
      train: data://weather-train@latest   # every month before the newest
      valid: data://weather-test@latest    # the newest month
    with:
      label: sunny
      objective: binary:logistic
      num_trees: 50
      max_depth: 3
      learning_rate: 0.2
      seed: 1
    outputs:
      model: {path: model, type: model, flavor: xgboost}
      metrics: {path: metrics.json, type: metrics}
  evaluate:
    uses: evaluate                         # the candidate and the champion, on the same newest month
    inputs:
      model: steps.train.outputs.model
      data: data://weather-test@latest
    with:
      label: sunny
      model: weather
    outputs:
      metrics: {path: metrics.json, type: metrics}
  gate:
    uses: gate
    inputs:
      metrics: steps.evaluate.outputs.metrics
    with:
      model: weather
      thresholds:
        - {metric: accuracy, lower: 0.6}
        - {metric: accuracy, change: {direction: higher, absolute: 0.02}}
    outputs:
      verdict: {path: verdict.json}
  register:
    uses: register                         # champion moves only when the gate blesses
    inputs:
      model: steps.train.outputs.model
      verdict: steps.gate.outputs.verdict
    with:
      model: weather
`

// schemaYAML is the schema of the quickstart's datasets.
func schemaYAML(name string) string {
	return `dataset: ` + name + `
columns:
  - {name: precipitation, type: float, nullable: false, min: 0}
  - {name: temp_max, type: float, nullable: false}
  - {name: temp_min, type: float, nullable: false}
  - {name: wind, type: float, nullable: false, min: 0}
  - {name: sunny, type: integer, nullable: false, min: 0, max: 1}
`
}

// pushMonth pushes the datasets as they are once month's labels are
// known: weather-train holds every month before it, weather-test the
// month itself.
func (q *run) pushMonth(ctx context.Context, month string) error {
	broken := q.o.Scenario == ScenarioBrokenLabels && month >= brokenFrom
	dataDir := filepath.Join(filepath.Dir(q.project), "data")
	trainDir, testDir := filepath.Join(dataDir, TrainDataset), filepath.Join(dataDir, TestDataset)
	var trainList []string
	for _, m := range q.allMonths() {
		if m >= trainMonths[0] && m < month {
			trainList = append(trainList, m)
		}
	}
	if err := os.RemoveAll(trainDir); err != nil {
		return err
	}
	if err := os.RemoveAll(testDir); err != nil {
		return err
	}
	rows := 0
	for _, m := range trainList {
		rows += len(q.months[m])
		if err := writeMonth(filepath.Join(trainDir, m+".csv"), q.months[m], broken); err != nil {
			return err
		}
	}
	if err := writeMonth(filepath.Join(testDir, month+".csv"), q.months[month], broken); err != nil {
		return err
	}
	unit := ""
	if broken {
		unit = " — label inverted by the export bug"
	}
	for _, p := range []struct{ name, dir, what string }{
		{TrainDataset, trainDir, fmt.Sprintf("%s…%s, %d days", trainList[0], trainList[len(trainList)-1], rows)},
		{TestDataset, testDir, fmt.Sprintf("%s, %d days", month, len(q.months[month]))},
	} {
		scan, err := dataset.ScanPath(ctx, p.dir, dataset.ScanOptions{})
		if err != nil {
			return fmt.Errorf("scan %s: %w", p.dir, err)
		}
		res, err := q.c.Push(ctx, p.name, scan, client.PushOptions{Source: "quickstart " + month})
		if err != nil {
			return fmt.Errorf("push %s: %w", p.name, err)
		}
		v := res.Version
		q.say("data %s@%d pushed (%s%s): %d new files uploaded", p.name, v.Version, p.what, unit, res.UploadedFiles)
		q.sum.Datasets = append(q.sum.Datasets, DatasetRow{Name: p.name, Version: v.Version, Months: p.what + unit, Rows: v.Rows})
	}
	return nil
}

// allMonths lists the data's months in order.
func (q *run) allMonths() []string {
	out := make([]string, 0, len(q.months))
	for m := range q.months {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// setupRules creates the alert rules and the trigger they feed.
func (q *run) setupRules(ctx context.Context) error {
	bound := accuracyBound
	rules := []*alert.Rule{
		{Name: DriftRule, Deployment: Deployment, Condition: alert.Condition{Kind: alert.DatasetDrift}, MinSamples: minLabels},
		{Name: QualityRule, Deployment: Deployment,
			Condition:  alert.Condition{Kind: alert.QualityBelow, Metric: "accuracy", Threshold: &bound, MinLabels: minLabels},
			MinSamples: minLabels, Actions: []alert.Action{{Trigger: &alert.TriggerAction{EventType: "monitoring.alert"}}}},
	}
	for _, r := range rules {
		if _, err := q.c.PutAlertRule(ctx, r); err != nil {
			return fmt.Errorf("alert rule %s: %w", r.Name, err)
		}
	}
	q.say("alert rules: %s (dataset drift, recorded) and %s (live accuracy < %.2f on ≥ %d labels → retraining event)", DriftRule, QualityRule, bound, minLabels)
	t, err := q.c.CreateTrigger(ctx, &pipeline.Trigger{Name: TriggerName, SpecFile: q.spec, ProjectDir: q.project,
		Kind: pipeline.OnEvent, Event: "monitoring.alert", MaxConcurrent: 1, Overlap: pipeline.OverlapSkip, MaxFailures: 3})
	if err != nil {
		return fmt.Errorf("create the trigger: %w", err)
	}
	q.say("trigger %s: event monitoring.alert → run pipeline %s on the newest data", t.Name, t.Pipeline)
	return nil
}

// deploy creates the deployment and waits until it serves.
func (q *run) deploy(ctx context.Context) error {
	ref, err := deploy.ParseRef(Model + "@champion")
	if err != nil {
		return err
	}
	// A day is one request, so a month gives a canary some fifteen: their
	// p99 is their slowest one, and a latency bar of a few milliseconds
	// would judge noise (a garbage collection, a busy CPU).
	spec := deploy.Spec{Model: ref,
		Rollout: &deploy.RolloutPolicy{
			CanaryPercent: canaryPercent, Window: deploy.Duration(q.o.Window), MinRequests: canaryMinReqs,
			MaxWait: deploy.Duration(12 * q.o.Window), MinLatencyIncrease: deploy.Duration(latencyBar),
			Metric: "accuracy", MinLabels: canaryLabels, MaxDegradation: maxDegradation,
		},
		Rollback: deploy.RollbackPolicy{MinLatencyIncrease: deploy.Duration(latencyBar)},
	}
	d, err := q.c.CreateDeployment(ctx, Deployment, spec)
	if err != nil {
		return fmt.Errorf("create the deployment: %w", err)
	}
	p := d.Slot(deploy.RolePrimary)
	q.say("deployment %s: primary %s → %s/%d (revision %d); new champions go through a %d%% canary judged on errors, latency and live accuracy",
		d.Name, spec.Model, p.Model, p.Version, p.Revision, canaryPercent)
	q.markEvents(ctx)
	return q.waitFor(ctx, "the deployment to serve", func() (bool, error) {
		return q.c.ModelReady(ctx, Deployment)
	})
}

// month replays one month as live traffic, then follows what it caused.
func (q *run) month(ctx context.Context, m string) error {
	if err := q.pushMonth(ctx, m); err != nil {
		return err
	}
	days := q.months[m]
	served := map[string]int{}
	labels := make([]monitor.Label, 0, len(days))
	begin := time.Now()
	for _, d := range days {
		id := fmt.Sprintf("qs-%s", d.date.Format("2006-01-02"))
		mv, err := q.predict(ctx, id, d)
		if err != nil {
			return err
		}
		served[mv]++
		labels = append(labels, monitor.Label{RequestID: id, Value: float64(d.sunny)})
	}
	fb, err := q.c.PushFeedback(ctx, labels)
	if err != nil {
		return fmt.Errorf("push the labels of %s: %w", m, err)
	}
	q.say("month %s replayed: %d requests over HTTP (%s) in %s; %d labels accepted",
		m, len(days), describeServed(served), time.Since(begin).Round(time.Millisecond), fb.Accepted)
	wins, err := q.closedWindows(ctx, begin, served)
	if err != nil {
		return err
	}
	for _, w := range wins {
		q.sayWindow(m, w)
	}
	return q.follow(ctx)
}

// predict sends one day to the deployment over the Open Inference
// Protocol (one named tensor per feature) and returns the model version
// that answered.
func (q *run) predict(ctx context.Context, id string, d day) (string, error) {
	type tensor struct {
		Name     string    `json:"name"`
		Shape    []int     `json:"shape"`
		Datatype string    `json:"datatype"`
		Data     []float64 `json:"data"`
	}
	body := struct {
		ID     string   `json:"id"`
		Inputs []tensor `json:"inputs"`
	}{ID: id}
	for i, v := range d.values() {
		body.Inputs = append(body.Inputs, tensor{Name: Features[i], Shape: []int{1}, Datatype: "FP64", Data: []float64{v}})
	}
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.sum.Server+"/v2/models/"+Deployment+"/infer", strings.NewReader(string(b)))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	resp, err := q.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("predict %s: %w", id, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("predict %s: %s: %s", id, resp.Status, strings.TrimSpace(string(rb)))
	}
	return resp.Header.Get(deploy.ModelVersionHeader), nil
}

// describeServed says which model versions answered how many requests.
func describeServed(served map[string]int) string {
	keys := make([]string, 0, len(served))
	for k := range served {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s answered %d", k, served[k])
	}
	return strings.Join(parts, ", ")
}

// closedWindows waits until the monitoring window holding the requests
// sent since begin has closed and is saved for every model version that
// answered them (served), and returns its summaries.
func (q *run) closedWindows(ctx context.Context, begin time.Time, served map[string]int) ([]*monitor.WindowSummary, error) {
	var out []*monitor.WindowSummary
	err := q.waitFor(ctx, "the month's monitoring window to close", func() (bool, error) {
		cur, err := q.c.CurrentWindow(ctx, Deployment)
		if err != nil || len(cur) > 0 {
			return false, err
		}
		ws, err := q.c.MonitoringWindows(ctx, Deployment, monitor.WindowFilter{Since: begin})
		if err != nil {
			return false, err
		}
		out = ws
		saved := map[string]bool{}
		for _, w := range ws {
			saved[w.ModelVersion] = true
		}
		for mv := range served {
			if !saved[mv] {
				return false, nil
			}
		}
		return true, nil
	})
	slices.SortFunc(out, func(a, b *monitor.WindowSummary) int { return strings.Compare(a.ModelVersion, b.ModelVersion) })
	return out, err
}

// sayWindow narrates one closed window.
func (q *run) sayWindow(month string, w *monitor.WindowSummary) {
	row := WindowRow{Month: month, ModelVersion: w.ModelVersion, Rows: w.Rows, Errors: w.Errors, DriftStatus: w.Drift.Status,
		DriftShare: w.Drift.Share, DatasetDrift: w.Drift.DatasetDrift}
	var drifted []string
	for _, f := range w.Drift.Features {
		if f.Drifted {
			drifted = append(drifted, f.Feature)
		}
	}
	row.DriftedFeatures = drifted
	acc := "no labels"
	if w.Quality != nil && w.Quality.Labels > 0 {
		row.Labels = w.Quality.Labels
		row.Accuracy = w.Quality.Metrics()["accuracy"]
		acc = fmt.Sprintf("accuracy %.2f on %d labels", row.Accuracy, row.Labels)
	}
	drift := "drift not computed (" + w.Drift.Status + ")"
	if w.Drift.Status == "ok" || len(w.Drift.Features) > 0 {
		drift = fmt.Sprintf("drift in %d/%d features", w.Drift.Drifted, len(w.Drift.Features))
		if len(drifted) > 0 {
			drift += " (" + strings.Join(drifted, ", ") + ")"
		}
		if w.Drift.DatasetDrift {
			drift += ": DATASET DRIFT"
		}
	}
	q.say("  window %s: %s %d rows, %d errors, p99 %.1f ms; %s; %s", shortID(w.ID), w.ModelVersion, w.Rows, w.Errors, w.LatencyP99, acc, drift)
	q.sum.Windows = append(q.sum.Windows, row)
}

// shortID shortens an id for narration.
func shortID(id string) string {
	if len(id) > 11 {
		return id[:11]
	}
	return id
}

// follow narrates what the last window caused: alerts, the runs they
// triggered, and the rollouts of the models those runs registered.
func (q *run) follow(ctx context.Context) error {
	// The alert engine judges a window as it is saved; a moment later
	// its alerts are listed.
	time.Sleep(300 * time.Millisecond)
	alerts, err := q.c.Alerts(ctx, alert.AlertFilter{Deployment: Deployment, Limit: 50})
	if err != nil {
		return fmt.Errorf("list alerts: %w", err)
	}
	slices.Reverse(alerts)
	for _, a := range alerts {
		key := a.ID + "/" + string(a.State)
		if q.seenAlerts[key] {
			continue
		}
		q.seenAlerts[key] = true
		q.say("alert %s %s: %s", a.ID, a.State, a.Message)
		if a.State == alert.StateFiring {
			q.sum.Alerts = append(q.sum.Alerts, AlertRow{ID: a.ID, Rule: a.Rule, ModelVersion: a.ModelVersion, Value: a.Value, Threshold: a.Threshold})
		}
		if a.Rule == QualityRule && a.State == alert.StateFiring {
			if err := q.followAlert(ctx, a); err != nil {
				return err
			}
		}
	}
	return q.narrateEvents(ctx)
}

// followAlert waits for the run the alert's retraining event started and
// for what became of its model.
func (q *run) followAlert(ctx context.Context, a *alert.Alert) error {
	var ev *pipeline.TriggerEvent
	err := q.waitFor(ctx, "the trigger to take the alert's event", func() (bool, error) {
		evs, err := q.c.TriggerEvents(ctx, TriggerName, 20)
		if err != nil {
			return false, err
		}
		for _, e := range evs {
			if strings.Contains(string(e.Payload), a.ID) && e.Status != pipeline.EventPending {
				ev = e
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return err
	}
	if ev.RunID == "" {
		q.say("trigger %s: event %d %s (%s)", TriggerName, ev.ID, ev.Status, ev.Reason)
		return nil
	}
	q.say("trigger %s fired: run %s (cause: %s)", TriggerName, ev.RunID, "alert "+a.ID)
	mv, err := q.followRun(ctx, ev.RunID, "retrain after alert "+a.ID)
	if err != nil || mv == nil {
		return err
	}
	mv.CausedBy = "alert " + a.ID + " (" + a.Rule + ")"
	if !mv.Blessed {
		return nil
	}
	return q.waitFor(ctx, "the rollout of the new champion to start", func() (bool, error) {
		if err := q.narrateEvents(ctx); err != nil {
			return false, err
		}
		return mv.Outcome != "", nil
	})
}

// followRun waits for a pipeline run to end, narrates its steps and
// returns the model version it registered (nil when none).
func (q *run) followRun(ctx context.Context, id, why string) (*ModelRow, error) {
	var r *pipeline.Run
	err := q.waitFor(ctx, "pipeline run "+id, func() (bool, error) {
		var err error
		r, err = q.c.GetPipelineRun(ctx, id)
		if err != nil {
			return false, err
		}
		return r.Status == pipeline.RunSucceeded || r.Status == pipeline.RunFailed || r.Status == pipeline.RunCanceled, nil
	})
	if err != nil {
		return nil, err
	}
	for _, s := range r.Steps {
		line := fmt.Sprintf("  step %-9s %s", s.Name, s.Status)
		if !s.StartedAt.IsZero() && !s.FinishedAt.IsZero() {
			line += fmt.Sprintf(" in %s", s.FinishedAt.Sub(s.StartedAt).Round(time.Millisecond))
		}
		switch s.Name {
		case "evaluate":
			if v, ok := s.Metrics["accuracy"]; ok {
				line += fmt.Sprintf(": candidate accuracy %.3f", v)
				if c, ok := s.Metrics["champion_accuracy"]; ok {
					line += fmt.Sprintf(", champion %.3f on the same month", c)
				}
			}
		case "gate":
			if v, ok := s.Metrics["gate.blessed"]; ok {
				line += fmt.Sprintf(": blessed=%t", v == 1)
			}
		}
		if s.Error != "" {
			line += ": " + s.Error
		}
		q.say("%s", line)
	}
	q.say("run %s %s in %s (%s)", r.ID, r.Status, r.FinishedAt.Sub(r.CreatedAt).Round(time.Millisecond), why)
	if r.Status != pipeline.RunSucceeded {
		return nil, nil
	}
	mv, err := q.registered(ctx, r)
	if err != nil || mv == nil {
		return nil, err
	}
	q.models[mv.Version] = mv
	q.sum.Models = append(q.sum.Models, mv)
	verdict := "the gate blessed it: weather@champion now names it"
	if !mv.Blessed {
		verdict = "the gate did NOT bless it: the champion stays"
		mv.Outcome = "rejected by the gate"
	}
	q.say("model %s/%d registered (test accuracy %.3f): %s", Model, mv.Version, mv.TestAccuracy, verdict)
	return mv, nil
}

// registered finds the model version run r registered.
func (q *run) registered(ctx context.Context, r *pipeline.Run) (*ModelRow, error) {
	var resp struct {
		ModelVersions []struct {
			Version string `json:"version"`
			Tags    []struct {
				Key   string `json:"key"`
				Value string `json:"value"`
			} `json:"tags"`
		} `json:"model_versions"`
	}
	u := q.sum.Server + "/api/2.0/mlflow/model-versions/search?max_results=1000&filter=" + url.QueryEscape("name='"+Model+"'")
	if err := q.getJSON(ctx, u, &resp); err != nil {
		return nil, fmt.Errorf("find the model version of run %s: %w", r.ID, err)
	}
	for _, v := range resp.ModelVersions {
		tags := map[string]string{}
		for _, t := range v.Tags {
			tags[t.Key] = t.Value
		}
		if tags["mloop.pipeline_run"] != r.ID {
			continue
		}
		n, err := strconv.ParseInt(v.Version, 10, 64)
		if err != nil {
			return nil, err
		}
		row := &ModelRow{Version: n, Run: r.ID, Blessed: tags["mloop.blessed"] == "true", TrainedOn: runDatasets(r)}
		if ev := r.Step("evaluate"); ev != nil {
			row.TestAccuracy = ev.Metrics["accuracy"]
			if c, ok := ev.Metrics["champion_accuracy"]; ok {
				row.ChampionAccuracy = &c
			}
		}
		return row, nil
	}
	return nil, nil
}

// runDatasets says which dataset versions a run read.
func runDatasets(r *pipeline.Run) string {
	keys := make([]string, 0, len(r.Datasets))
	for k, h := range r.Datasets {
		if h.Ref != "" {
			k = h.Ref
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return strings.Join(keys, ", ")
}

// getJSON GETs u and decodes its JSON answer.
func (q *run) getJSON(ctx context.Context, u string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := q.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(b)))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// markEvents marks the deployment's events so far as narrated.
func (q *run) markEvents(ctx context.Context) {
	evs, err := q.c.DeploymentEvents(ctx, Deployment, 100)
	if err != nil {
		return
	}
	for _, e := range evs {
		q.seenEvents[e.ID] = true
	}
}

// narrateEvents narrates the deployment's new events and records what
// they did to the models.
func (q *run) narrateEvents(ctx context.Context) error {
	evs, err := q.c.DeploymentEvents(ctx, Deployment, 100)
	if err != nil {
		return fmt.Errorf("deployment events: %w", err)
	}
	slices.Reverse(evs)
	for _, e := range evs {
		if q.seenEvents[e.ID] {
			continue
		}
		q.seenEvents[e.ID] = true
		q.say("deployment %s: %s — %s", Deployment, e.Type, e.Message)
		var det deploy.EventDetails
		_ = json.Unmarshal(e.Details, &det)
		switch e.Type {
		case deploy.EventRolloutStarted:
			for _, s := range det.Before {
				if mv := q.models[s.Version]; mv != nil && s.Role == deploy.RoleCanary && mv.Outcome == "canary" {
					mv.Outcome = "replaced as canary by a newer champion"
				}
			}
			for _, s := range det.After {
				if s.Role == deploy.RoleCanary {
					if mv := q.models[s.Version]; mv != nil {
						mv.Outcome = "canary"
						mv.CanaryRevision = s.Revision
					}
				}
			}
		case deploy.EventPromoted:
			var to int64
			for _, s := range det.After {
				if s.Role == deploy.RolePrimary {
					to = s.Version
					if mv := q.models[s.Version]; mv != nil {
						mv.Outcome = "promoted"
					}
				}
			}
			for _, s := range det.Before {
				if mv := q.models[s.Version]; mv != nil && s.Role == deploy.RolePrimary && s.Version != to {
					mv.Outcome = fmt.Sprintf("replaced by %s/%d", Model, to)
				}
			}
		case deploy.EventAutoRolledBack, deploy.EventRolledBack:
			for _, s := range det.Before {
				if s.Role == deploy.RoleCanary {
					if mv := q.models[s.Version]; mv != nil {
						mv.Outcome = "rolled back"
					}
				}
			}
		}
	}
	return nil
}

// canaryPending reports whether a model version serves as a canary
// still being judged.
func (q *run) canaryPending() bool {
	for _, mv := range q.models {
		if mv.Outcome == "canary" {
			return true
		}
	}
	return false
}

// settle waits for a canary still being judged to be promoted or rolled
// back.
func (q *run) settle(ctx context.Context) error {
	return q.waitFor(ctx, "the canary's verdict", func() (bool, error) {
		if err := q.narrateEvents(ctx); err != nil {
			return false, err
		}
		return !q.canaryPending(), nil
	})
}

// summarize fills the summary's live figures.
func (q *run) summarize(ctx context.Context) error {
	for _, w := range q.sum.Windows {
		_, ver, ok := strings.Cut(w.ModelVersion, "/")
		if !ok {
			continue
		}
		n, _ := strconv.ParseInt(ver, 10, 64)
		if mv := q.models[n]; mv != nil && w.Labels > 0 {
			tot := float64(mv.LiveLabels)*mv.LiveAccuracy + float64(w.Labels)*w.Accuracy
			mv.LiveLabels += w.Labels
			mv.LiveAccuracy = tot / float64(mv.LiveLabels)
		}
	}
	for _, mv := range q.sum.Models {
		if mv.Outcome == "" && mv.Blessed {
			mv.Outcome = "serving"
		}
		if mv.CausedBy != "" && mv.Outcome == "promoted" {
			q.sum.RetrainPromoted = true
		}
		if mv.CausedBy != "" && (mv.Outcome == "rolled back" || mv.Outcome == "rejected by the gate") {
			q.sum.RetrainStopped = true
		}
	}
	d, err := q.c.GetDeployment(ctx, Deployment)
	if err != nil {
		return fmt.Errorf("read the deployment: %w", err)
	}
	if p := d.Deployment.Slot(deploy.RolePrimary); p != nil {
		q.sum.Serving = fmt.Sprintf("%s/%d", p.Model, p.Version)
	}
	if q.sum.Story, err = q.c.Story(ctx, Deployment, 0); err != nil {
		return fmt.Errorf("read the deployment's story: %w", err)
	}
	return nil
}

// waitFor polls cond every 100ms until it holds, fails, or the timeout
// passes.
func (q *run) waitFor(ctx context.Context, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(q.o.Timeout)
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return mloop.Errorf(mloop.EUNAVAILABLE, "waited %s for %s: it did not happen (see the server's log)", q.o.Timeout, what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
