package alert

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/monitor"
)

// ConditionKind names what a rule watches.
type ConditionKind string

// Condition kinds.
const (
	// DatasetDrift holds when the window's features drifted: its drift
	// share is at least Threshold, or (no Threshold) the monitor's dataset
	// drift verdict is true.
	DatasetDrift ConditionKind = "dataset_drift"
	// FeatureDrift holds when Feature drifted: its drift statistic is at
	// least Threshold, or (no Threshold) its method's own decision.
	FeatureDrift ConditionKind = "feature_drift"
	// QualityBelow holds when the live quality metric Metric is below
	// Threshold, judged only on windows with at least MinLabels labels.
	QualityBelow ConditionKind = "quality_below"
	// ErrorRateAbove holds when the share of requests answered with a 5xx
	// is above Threshold (0 to 1).
	ErrorRateAbove ConditionKind = "error_rate_above"
	// LatencyP99Above holds when the p99 request latency is above
	// Threshold milliseconds.
	LatencyP99Above ConditionKind = "latency_p99_above"
)

// Defaults and limits of rules.
const (
	// DefaultMinLabels is a QualityBelow condition's MinLabels when unset.
	DefaultMinLabels = 100
	// DefaultEventType is the event type a trigger action posts.
	DefaultEventType = "monitoring.alert"
	// DefaultWebhookTimeout, DefaultWebhookRetries and DefaultWebhookBackoff
	// are a webhook's defaults: each attempt's timeout, the retries after a
	// failed first attempt, and the wait before the first retry (doubled
	// before each next one).
	DefaultWebhookTimeout = 10 * time.Second
	DefaultWebhookRetries = 3
	DefaultWebhookBackoff = time.Second
	// MaxRetries bounds a webhook's retries, MaxActions a rule's actions.
	MaxRetries = 10
	MaxActions = 10
)

var (
	nameRE      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	eventTypeRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$`)
)

// Duration is a time.Duration written as a Go duration string ("90s",
// "1h30m") in JSON and YAML.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"30s\" or \"2h\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, such as 30s or 2h", s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes d as a duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// UnmarshalYAML reads a duration string. (ParseRules checks durations with
// their position before decoding, so this only sees valid ones.)
func (d *Duration) UnmarshalYAML(b []byte) error {
	s := strings.TrimSpace(string(b))
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		s = s[1 : len(s)-1]
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a number with a unit, such as 30s or 2h", s)
	}
	*d = Duration(v)
	return nil
}

// Rule is an alert rule: see the package documentation.
type Rule struct {
	// Name identifies the rule: 1 to 64 letters, digits, '_' or '-',
	// starting with a letter or '_'.
	Name string `json:"name" yaml:"name"`
	// Deployment is the deployment watched, or "*" for every deployment.
	Deployment string `json:"deployment" yaml:"deployment"`
	// Condition is what fires the rule.
	Condition Condition `json:"condition" yaml:"condition"`
	// Windows is how many consecutive windows the condition must hold
	// before the rule fires (default 1).
	Windows int `json:"windows,omitempty" yaml:"windows,omitempty"`
	// For, when set, is how long the condition must also have held: from
	// the start of the first window that met it to the end of the last.
	For Duration `json:"for,omitempty" yaml:"for,omitempty"`
	// MinSamples is the fewest rows (requests, for the error rate and
	// latency) a window needs to count; smaller windows change nothing.
	MinSamples int64 `json:"min_samples,omitempty" yaml:"min_samples,omitempty"`
	// Actions run when the rule fires (and, for webhooks with OnResolve,
	// when it resolves).
	Actions []Action `json:"actions,omitempty" yaml:"actions,omitempty"`
	// Disabled rules are not evaluated.
	Disabled bool `json:"disabled,omitempty" yaml:"disabled,omitempty"`
	// CreatedAt and UpdatedAt are set by the engine.
	CreatedAt time.Time `json:"created_at,omitzero" yaml:"-"`
	UpdatedAt time.Time `json:"updated_at,omitzero" yaml:"-"`
}

// Condition is the test a rule applies to each window.
type Condition struct {
	Kind ConditionKind `json:"kind" yaml:"kind"`
	// Feature is the input feature of a FeatureDrift condition.
	Feature string `json:"feature,omitempty" yaml:"feature,omitempty"`
	// Metric is the quality metric of a QualityBelow condition (roc_auc,
	// accuracy, f1, rmse, …: see the monitor's Metric names).
	Metric string `json:"metric,omitempty" yaml:"metric,omitempty"`
	// Threshold is the bound; see each ConditionKind. Required except for
	// DatasetDrift and FeatureDrift, where it overrides the drift decision.
	Threshold *float64 `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	// MinLabels is the fewest joined labels a window needs for a
	// QualityBelow condition (DefaultMinLabels when 0).
	MinLabels int64 `json:"min_labels,omitempty" yaml:"min_labels,omitempty"`
}

// Action is one thing a rule does: exactly one of Webhook and Trigger.
type Action struct {
	Webhook *Webhook       `json:"webhook,omitempty" yaml:"webhook,omitempty"`
	Trigger *TriggerAction `json:"trigger,omitempty" yaml:"trigger,omitempty"`
}

// Kind returns "webhook" or "trigger".
func (a Action) Kind() string {
	if a.Webhook != nil {
		return "webhook"
	}
	return "trigger"
}

// Webhook posts the alert as JSON to URL. With a Secret, the body's
// HMAC-SHA256 is sent in the header X-Mloop-Signature as "sha256=HEX".
// Network errors, 429 and 5xx answers are retried Retries times, waiting
// Backoff before the first retry and twice as long before each next one.
type Webhook struct {
	URL       string   `json:"url" yaml:"url"`
	Secret    string   `json:"secret,omitempty" yaml:"secret,omitempty"`
	Timeout   Duration `json:"timeout,omitempty" yaml:"timeout,omitempty"`
	Retries   *int     `json:"retries,omitempty" yaml:"retries,omitempty"`
	Backoff   Duration `json:"backoff,omitempty" yaml:"backoff,omitempty"`
	OnResolve bool     `json:"on_resolve,omitempty" yaml:"on_resolve,omitempty"`
}

// TriggerAction posts an event of type EventType (DefaultEventType when
// empty) that pipeline triggers listening to it (--on-event TYPE) receive.
type TriggerAction struct {
	EventType string `json:"event_type,omitempty" yaml:"event_type,omitempty"`
}

// Redacted returns a copy of r whose webhook secrets read "redacted", for
// showing rules to clients.
func (r *Rule) Redacted() *Rule {
	c := *r
	c.Actions = make([]Action, len(r.Actions))
	for i, a := range r.Actions {
		if a.Webhook != nil && a.Webhook.Secret != "" {
			w := *a.Webhook
			w.Secret = "redacted"
			a.Webhook = &w
		}
		c.Actions[i] = a
	}
	return &c
}

// ruleError is a problem at a path of a rule document ("condition.kind").
type ruleError struct {
	path string
	msg  string
}

func (e *ruleError) Error() string { return e.path + ": " + e.msg }

func bad(path, format string, args ...any) error {
	return &ruleError{path: path, msg: fmt.Sprintf(format, args...)}
}

// Check validates r and fills its defaults in place. Errors are EINVALID
// and name the offending field.
func (r *Rule) Check() error {
	if err := r.check(); err != nil {
		if re, ok := err.(*ruleError); ok {
			return mloop.Errorf(mloop.EINVALID, "Alert rule %q: %s: %s.", r.Name, re.path, re.msg)
		}
		return err
	}
	return nil
}

// check validates r; its errors are *ruleError values.
func (r *Rule) check() error {
	if !nameRE.MatchString(r.Name) {
		return bad("name", "invalid name %q: use 1 to 64 letters, digits, '_' or '-', starting with a letter or '_'", r.Name)
	}
	if r.Deployment == "" {
		return bad("deployment", "give the deployment to watch, or \"*\" for every deployment")
	}
	if len(r.Deployment) > 256 {
		return bad("deployment", "the deployment name is %d bytes long; at most 256 are allowed", len(r.Deployment))
	}
	c := &r.Condition
	finite := func(v *float64) bool { return v != nil && !math.IsNaN(*v) && !math.IsInf(*v, 0) }
	if c.Threshold != nil && !finite(c.Threshold) {
		return bad("condition.threshold", "the threshold must be a finite number")
	}
	for _, f := range []struct {
		name  string
		set   bool
		kinds []ConditionKind
	}{
		{"feature", c.Feature != "", []ConditionKind{FeatureDrift}},
		{"metric", c.Metric != "", []ConditionKind{QualityBelow}},
		{"min_labels", c.MinLabels != 0, []ConditionKind{QualityBelow}},
	} {
		if f.set && !containsKind(f.kinds, c.Kind) {
			return bad("condition."+f.name, "a %s condition has no %s", c.Kind, f.name)
		}
	}
	switch c.Kind {
	case DatasetDrift:
		if c.Threshold != nil && (*c.Threshold <= 0 || *c.Threshold > 1) {
			return bad("condition.threshold", "a drift share is above 0 and at most 1, got %v", *c.Threshold)
		}
	case FeatureDrift:
		if c.Feature == "" {
			return bad("condition.feature", "a feature_drift condition needs the feature's name")
		}
	case QualityBelow:
		if c.Metric == "" {
			return bad("condition.metric", "a quality_below condition needs a metric (such as roc_auc, accuracy, f1, rmse)")
		}
		if !knownMetric(c.Metric) {
			return bad("condition.metric", "unknown metric %q: use accuracy, precision, recall, f1, roc_auc, log_loss, macro_f1, rmse, mae or r2", c.Metric)
		}
		if c.Threshold == nil {
			return bad("condition.threshold", "a quality_below condition needs a threshold (such as 0.65)")
		}
		if c.MinLabels < 0 {
			return bad("condition.min_labels", "min_labels must not be negative, got %d", c.MinLabels)
		}
		if c.MinLabels == 0 {
			c.MinLabels = DefaultMinLabels
		}
	case ErrorRateAbove:
		if c.Threshold == nil || *c.Threshold < 0 || *c.Threshold >= 1 {
			return bad("condition.threshold", "an error_rate_above condition needs a threshold from 0 to below 1 (such as 0.05)")
		}
	case LatencyP99Above:
		if c.Threshold == nil || *c.Threshold <= 0 {
			return bad("condition.threshold", "a latency_p99_above condition needs a threshold in milliseconds above 0 (such as 250)")
		}
	case "":
		return bad("condition.kind", "give the condition's kind: dataset_drift, feature_drift, quality_below, error_rate_above or latency_p99_above")
	default:
		return bad("condition.kind", "unknown kind %q: use dataset_drift, feature_drift, quality_below, error_rate_above or latency_p99_above", c.Kind)
	}
	if r.Windows < 0 || r.Windows > 10000 {
		return bad("windows", "windows must be between 1 and 10000, got %d", r.Windows)
	}
	if r.Windows == 0 {
		r.Windows = 1
	}
	if r.For < 0 {
		return bad("for", "the duration must not be negative, got %s", r.For.D())
	}
	if r.MinSamples < 0 {
		return bad("min_samples", "min_samples must not be negative, got %d", r.MinSamples)
	}
	if len(r.Actions) > MaxActions {
		return bad("actions", "a rule has at most %d actions, got %d", MaxActions, len(r.Actions))
	}
	for i := range r.Actions {
		if err := checkAction(&r.Actions[i], fmt.Sprintf("actions[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func checkAction(a *Action, at string) error {
	if (a.Webhook == nil) == (a.Trigger == nil) {
		return bad(at, "an action is exactly one of webhook or trigger")
	}
	if t := a.Trigger; t != nil {
		if t.EventType == "" {
			t.EventType = DefaultEventType
		}
		if !eventTypeRE.MatchString(t.EventType) {
			return bad(at+".trigger.event_type", "invalid event type %q: use 1 to 128 letters, digits, '_', '.', ':', '/' or '-'", t.EventType)
		}
		return nil
	}
	w := a.Webhook
	at += ".webhook"
	u, err := url.Parse(w.URL)
	if w.URL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad(at+".url", "give an http:// or https:// URL, got %q", w.URL)
	}
	if w.Timeout < 0 || w.Backoff < 0 {
		return bad(at, "timeout and backoff must not be negative")
	}
	if w.Timeout == 0 {
		w.Timeout = Duration(DefaultWebhookTimeout)
	}
	if w.Backoff == 0 {
		w.Backoff = Duration(DefaultWebhookBackoff)
	}
	if w.Retries == nil {
		n := DefaultWebhookRetries
		w.Retries = &n
	}
	if *w.Retries < 0 || *w.Retries > MaxRetries {
		return bad(at+".retries", "retries must be between 0 and %d, got %d", MaxRetries, *w.Retries)
	}
	return nil
}

func containsKind(ks []ConditionKind, k ConditionKind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func knownMetric(m string) bool {
	switch m {
	case monitor.MetricAccuracy, monitor.MetricPrecision, monitor.MetricRecall, monitor.MetricF1,
		monitor.MetricROCAUC, monitor.MetricLogLoss, monitor.MetricMacroF1,
		monitor.MetricRMSE, monitor.MetricMAE, monitor.MetricR2:
		return true
	}
	return false
}
