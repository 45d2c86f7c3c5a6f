package alert

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline"
)

// EventPoster posts trigger events; *pipeline.Service implements it.
type EventPoster interface {
	PostEvent(ctx context.Context, typ, subject string, payload json.RawMessage, dedupKey string) ([]*pipeline.TriggerEvent, error)
}

// SignatureHeader carries a webhook body's HMAC-SHA256 ("sha256=HEX").
const SignatureHeader = "X-Mloop-Signature"

// Config tunes an Engine; zero values mean the defaults.
type Config struct {
	// QueueSize bounds the deliveries waiting for a worker (256); more are
	// recorded as dropped.
	QueueSize int
	// Workers is the number of delivery goroutines (4).
	Workers int
	// Client sends webhooks (a client without redirects to other hosts'
	// defaults: http.Client with each webhook's timeout).
	Client *http.Client
	// Registerer, when set, gets the engine's Prometheus metrics at Open.
	Registerer prometheus.Registerer
	// Logger logs transitions and failed deliveries (slog.Default()).
	Logger *slog.Logger
	// EvaluateTimeout bounds OnWindow's evaluation of one window (30s).
	EvaluateTimeout time.Duration
}

// Engine evaluates rules on windows and runs their actions; see the package
// documentation. Create it with NewEngine, start it with Open, stop it with
// Close.
type Engine struct {
	store  Store
	poster EventPoster
	cfg    Config
	log    *slog.Logger

	firing     *prometheus.GaugeVec
	deliveries *prometheus.CounterVec

	mu     sync.Mutex // guards queue sends against close, and open
	open   bool
	queue  chan *job
	done   chan struct{}
	wg     sync.WaitGroup
	evalMu sync.Mutex // one evaluation at a time keeps states consistent
}

// job is one action to deliver for an alert transition.
type job struct {
	rule   *Rule
	action int
	event  State
	alert  *Alert
	body   []byte
	dedup  string
}

// NewEngine returns an engine keeping its state in store and posting
// trigger events through poster (nil: trigger actions fail and are
// recorded as failed).
func NewEngine(store Store, poster EventPoster, cfg Config) *Engine {
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 256
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.EvaluateTimeout <= 0 {
		cfg.EvaluateTimeout = 30 * time.Second
	}
	return &Engine{
		store: store, poster: poster, cfg: cfg, log: cfg.Logger,
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mloop_alert_firing", Help: "Alerts firing, by rule and deployment.",
		}, []string{"rule", "deployment"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_alert_deliveries_total", Help: "Alert action delivery attempts, by rule, action kind and outcome.",
		}, []string{"rule", "action", "outcome"}),
	}
}

// Open registers the metrics, sets the firing gauge from the stored
// alerts and starts the delivery workers.
func (e *Engine) Open(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.open {
		return mloop.Errorf(mloop.ECONFLICT, "the alert engine is already open")
	}
	if r := e.cfg.Registerer; r != nil {
		for _, c := range []prometheus.Collector{e.firing, e.deliveries} {
			if err := r.Register(c); err != nil {
				return fmt.Errorf("register alert metrics: %w", err)
			}
		}
	}
	firing, err := e.store.ListAlerts(ctx, AlertFilter{State: StateFiring})
	if err != nil {
		return fmt.Errorf("open alert engine: %w", err)
	}
	for _, a := range firing {
		e.firing.WithLabelValues(a.Rule, a.Deployment).Inc()
	}
	e.queue = make(chan *job, e.cfg.QueueSize)
	e.done = make(chan struct{})
	for range e.cfg.Workers {
		e.wg.Add(1)
		go e.worker()
	}
	e.open = true
	return nil
}

// Close stops the workers: deliveries in flight finish their current
// attempt, queued ones and pending retries are recorded as dropped.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if !e.open {
		e.mu.Unlock()
		return nil
	}
	e.open = false
	close(e.done)
	e.mu.Unlock()
	stopped := make(chan struct{})
	go func() { e.wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-ctx.Done():
		return fmt.Errorf("close alert engine: %w", ctx.Err())
	}
	for {
		select {
		case j := <-e.queue:
			e.record(ctx, j, 1, 0, "the server stopped before the delivery", OutcomeDropped, "")
		default:
			return nil
		}
	}
}

// OnWindow evaluates w; it fits monitor.Config.OnWindow. Errors are logged.
func (e *Engine) OnWindow(w *monitor.WindowSummary) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.EvaluateTimeout)
	defer cancel()
	if err := e.Evaluate(ctx, w); err != nil {
		e.log.Error("alert rules not evaluated", "window", w.ID, "deployment", w.Deployment, "err", err)
	}
}

// Evaluate applies every enabled rule matching w's deployment to w, stores
// the new states and alerts, and queues the actions of the transitions.
// It never waits for a delivery. Evaluating a window again changes nothing.
func (e *Engine) Evaluate(ctx context.Context, w *monitor.WindowSummary) error {
	if w == nil || w.ID == "" || w.Deployment == "" {
		return mloop.Errorf(mloop.EINVALID, "a window to evaluate needs an id and a deployment")
	}
	rules, err := e.store.ListRules(ctx)
	if err != nil {
		return fmt.Errorf("evaluate window %s: %w", w.ID, err)
	}
	e.evalMu.Lock()
	defer e.evalMu.Unlock()
	var errs []error
	for _, r := range rules {
		if r.Disabled || (r.Deployment != "*" && r.Deployment != w.Deployment) {
			continue
		}
		if err := e.evaluateRule(ctx, r, w); err != nil {
			errs = append(errs, fmt.Errorf("rule %q: %w", r.Name, err))
		}
	}
	return errors.Join(errs...)
}

// evaluateRule moves one rule's state for w's deployment and model version.
func (e *Engine) evaluateRule(ctx context.Context, r *Rule, w *monitor.WindowSummary) error {
	st, err := e.store.GetState(ctx, r.Name, w.Deployment, w.ModelVersion)
	if mloop.IsNotFound(err) {
		st = &RuleState{Rule: r.Name, Deployment: w.Deployment, ModelVersion: w.ModelVersion}
	} else if err != nil {
		return err
	}
	if st.LastWindow == w.ID {
		return nil // evaluated already
	}
	st.LastWindow, st.LastEnd = w.ID, w.End
	res := Check(r, w)
	var (
		alert *Alert
		event State
	)
	switch {
	case !res.Counted:
		// Too few samples or nothing to judge: the state stays.
	case res.Holds:
		if st.Streak == 0 {
			st.Since = w.Start
		}
		st.Streak++
		st.Windows = appendCapped(st.Windows, w.ID)
		long := st.Streak >= r.Windows && w.End.Sub(st.Since) >= r.For.D()
		if st.AlertID != "" {
			alert, err = e.store.GetAlert(ctx, st.AlertID)
			if err != nil {
				return err
			}
			alert.Value, alert.Message = res.Value, res.Message
			alert.Windows = appendCapped(alert.Windows, w.ID)
		} else if long {
			alert = &Alert{
				ID: newAlertID(), Rule: r.Name, Deployment: w.Deployment, ModelVersion: w.ModelVersion,
				State: StateFiring, StartedAt: w.End.UTC(), Value: res.Value, Threshold: res.Threshold,
				Message: res.Message, Windows: append([]string(nil), st.Windows...),
			}
			st.AlertID, event = alert.ID, StateFiring
		}
	default:
		st.Streak, st.Since, st.Windows = 0, time.Time{}, nil
		if st.AlertID != "" {
			alert, err = e.store.GetAlert(ctx, st.AlertID)
			if err != nil {
				return err
			}
			alert.State, alert.ResolvedAt, alert.ResolvedBy = StateResolved, w.End.UTC(), w.ID
			alert.Message = "resolved: " + res.Message
			st.AlertID, event = "", StateResolved
		}
	}
	if err := e.store.SaveState(ctx, st, alert); err != nil {
		return err
	}
	switch event {
	case StateFiring:
		e.firing.WithLabelValues(r.Name, w.Deployment).Inc()
		e.log.Warn("alert firing", "rule", r.Name, "deployment", w.Deployment, "model_version", w.ModelVersion, "alert", alert.ID, "message", alert.Message)
	case StateResolved:
		e.firing.WithLabelValues(r.Name, w.Deployment).Dec()
		e.log.Info("alert resolved", "rule", r.Name, "deployment", w.Deployment, "model_version", w.ModelVersion, "alert", alert.ID)
	default:
		return nil
	}
	e.dispatch(ctx, r, alert, event, w)
	return nil
}

// Payload is the JSON body of a webhook and of a trigger event.
type Payload struct {
	Event  State         `json:"event"`
	Alert  *Alert        `json:"alert"`
	Rule   PayloadRule   `json:"rule"`
	Window PayloadWindow `json:"window"`
}

// PayloadRule is the rule part of a Payload.
type PayloadRule struct {
	Name      string    `json:"name"`
	Condition Condition `json:"condition"`
}

// PayloadWindow is the window part of a Payload.
type PayloadWindow struct {
	ID           string    `json:"id"`
	Deployment   string    `json:"deployment"`
	ModelVersion string    `json:"model_version"`
	Start        time.Time `json:"start"`
	End          time.Time `json:"end"`
	Rows         int64     `json:"rows"`
	Requests     int64     `json:"requests"`
}

// dispatch queues the rule's actions for an alert transition.
func (e *Engine) dispatch(ctx context.Context, r *Rule, a *Alert, event State, w *monitor.WindowSummary) {
	body, err := json.Marshal(Payload{
		Event: event, Alert: a, Rule: PayloadRule{Name: r.Name, Condition: r.Condition},
		Window: PayloadWindow{ID: w.ID, Deployment: w.Deployment, ModelVersion: w.ModelVersion, Start: w.Start, End: w.End, Rows: w.Rows, Requests: w.Requests},
	})
	if err != nil {
		e.log.Error("alert payload not encoded", "alert", a.ID, "err", err)
		return
	}
	for i, act := range r.Actions {
		if event == StateResolved && (act.Webhook == nil || !act.Webhook.OnResolve) {
			continue
		}
		j := &job{rule: r, action: i, event: event, alert: a, body: body, dedup: DedupKey(r.Name, w.Deployment, w.ID)}
		e.mu.Lock()
		sent := false
		if e.open {
			select {
			case e.queue <- j:
				sent = true
			default:
			}
		}
		e.mu.Unlock()
		if !sent {
			e.record(ctx, j, 1, 0, "the delivery queue was full or the engine not open", OutcomeDropped, "")
		}
	}
}

// DedupKey is the dedup key of the trigger event an alert transition posts:
// the rule, the deployment and the window (hashed when longer than
// pipeline.MaxEventDedupKey).
func DedupKey(rule, deployment, window string) string {
	k := "alert/" + rule + "/" + deployment + "/" + window
	if len(k) > pipeline.MaxEventDedupKey {
		sum := sha256.Sum256([]byte(k))
		k = "alert/" + rule + "/" + hex.EncodeToString(sum[:])
	}
	return k
}

func (e *Engine) worker() {
	defer e.wg.Done()
	for {
		select {
		case <-e.done:
			return
		case j := <-e.queue:
			e.deliver(j)
		}
	}
}

// deliver runs one job to its end: attempts with backoff until success, a
// final failure, or Close.
func (e *Engine) deliver(j *job) {
	ctx := context.Background()
	act := j.rule.Actions[j.action]
	retries, backoff := 3, time.Second
	if act.Webhook != nil {
		retries, backoff = *act.Webhook.Retries, act.Webhook.Backoff.D()
	}
	for attempt := 1; ; attempt++ {
		code, detail, err := e.attempt(ctx, j, act)
		if err == nil {
			e.record(ctx, j, attempt, code, "", OutcomeOK, detail)
			return
		}
		final := attempt > retries || !retryable(code)
		if final {
			e.record(ctx, j, attempt, code, err.Error(), OutcomeFailed, "")
			e.log.Warn("alert action failed", "rule", j.rule.Name, "alert", j.alert.ID, "action", act.Kind(), "attempts", attempt, "err", err)
			return
		}
		e.record(ctx, j, attempt, code, err.Error(), OutcomeRetry, "")
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-e.done:
			t.Stop()
			e.record(ctx, j, attempt+1, 0, "the server stopped before the retry", OutcomeDropped, "")
			return
		}
		backoff *= 2
	}
}

// retryable says whether a failed attempt with this HTTP status (0: no
// answer) is worth another.
func retryable(code int) bool {
	return code == 0 || code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

// attempt runs an action once.
func (e *Engine) attempt(ctx context.Context, j *job, act Action) (code int, detail string, err error) {
	if act.Trigger != nil {
		if e.poster == nil {
			return http.StatusNotImplemented, "", errors.New("no pipeline service to post trigger events to")
		}
		subject := "alert/" + j.rule.Name + "/" + j.alert.Deployment
		evs, err := e.poster.PostEvent(ctx, act.Trigger.EventType, subject, j.body, j.dedup)
		if err != nil {
			if mloop.ErrorCode(err) == mloop.EINVALID {
				return http.StatusBadRequest, "", err
			}
			return 0, "", err
		}
		return 0, fmt.Sprintf("%d trigger event(s) of type %s", len(evs), act.Trigger.EventType), nil
	}
	wh := act.Webhook
	ctx, cancel := context.WithTimeout(ctx, wh.Timeout.D())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, wh.URL, bytes.NewReader(j.body))
	if err != nil {
		return http.StatusBadRequest, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mloop-alert")
	req.Header.Set("X-Mloop-Event", string(j.event))
	req.Header.Set("X-Mloop-Alert", j.alert.ID)
	if wh.Secret != "" {
		req.Header.Set(SignatureHeader, Sign(wh.Secret, j.body))
	}
	resp, err := e.cfg.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, "", fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return resp.StatusCode, "", nil
}

// Sign returns the X-Mloop-Signature value of body: "sha256=" and the hex
// HMAC-SHA256 of body keyed with secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// record stores a delivery attempt and counts it.
func (e *Engine) record(ctx context.Context, j *job, attempt, code int, msg, outcome, detail string) {
	kind := j.rule.Actions[j.action].Kind()
	e.deliveries.WithLabelValues(j.rule.Name, kind, outcome).Inc()
	d := &Delivery{AlertID: j.alert.ID, Rule: j.rule.Name, Action: j.action, Kind: kind, Event: j.event,
		Attempt: attempt, StatusCode: code, Error: msg, Outcome: outcome, Detail: detail, Time: time.Now().UTC()}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := e.store.AddDelivery(ctx, d); err != nil {
		e.log.Error("alert delivery not recorded", "alert", j.alert.ID, "outcome", outcome, "err", err)
	}
}

func appendCapped(s []string, id string) []string {
	s = append(s, id)
	if len(s) > MaxAlertWindows {
		s = append([]string(nil), s[len(s)-MaxAlertWindows:]...)
	}
	return s
}

func newAlertID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "al-" + hex.EncodeToString(b[:])
}
