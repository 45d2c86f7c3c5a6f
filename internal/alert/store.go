package alert

import (
	"context"
	"time"
)

// State is an alert's state.
type State string

// Alert states. A rule's state for a deployment and model version is ok
// while no alert is firing.
const (
	StateFiring   State = "firing"
	StateResolved State = "resolved"
)

// Alert is one firing of a rule on a deployment's model version, from the
// window that made it fire to the window that cleared it.
type Alert struct {
	// ID identifies the alert ("al-" and 16 hex digits).
	ID           string `json:"id"`
	Rule         string `json:"rule"`
	Deployment   string `json:"deployment"`
	ModelVersion string `json:"model_version"`
	State        State  `json:"state"`
	// StartedAt is the end of the window that fired the rule; ResolvedAt
	// the end of the window that cleared it (zero while firing).
	StartedAt  time.Time `json:"started_at"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Value is the watched value in the latest window that met the
	// condition; Threshold the bound it was compared with.
	Value     float64 `json:"value"`
	Threshold float64 `json:"threshold"`
	// Message says what happened, in words.
	Message string `json:"message"`
	// Windows are the ids of the windows that met the condition, oldest
	// first (the last MaxAlertWindows); ResolvedBy the window that cleared
	// it.
	Windows    []string `json:"windows"`
	ResolvedBy string   `json:"resolved_by,omitempty"`
}

// MaxAlertWindows bounds the window ids an alert and a state keep.
const MaxAlertWindows = 100

// RuleState is the evaluation state of one rule for one deployment and
// model version: the streak of windows that met the condition and the
// alert firing, if any.
type RuleState struct {
	Rule         string `json:"rule"`
	Deployment   string `json:"deployment"`
	ModelVersion string `json:"model_version"`
	// Streak counts the consecutive counted windows that met the
	// condition; Since is the start of the first of them; Windows their
	// ids (the last MaxAlertWindows).
	Streak  int       `json:"streak"`
	Since   time.Time `json:"since,omitzero"`
	Windows []string  `json:"windows,omitempty"`
	// AlertID is the firing alert ("" when the state is ok).
	AlertID string `json:"alert_id,omitempty"`
	// LastWindow is the last window evaluated (a window evaluated again
	// changes nothing); LastEnd its end.
	LastWindow string    `json:"last_window,omitempty"`
	LastEnd    time.Time `json:"last_end,omitzero"`
}

// Delivery outcomes.
const (
	OutcomeOK      = "ok"      // delivered
	OutcomeRetry   = "retry"   // failed; another attempt follows
	OutcomeFailed  = "failed"  // failed; no attempt follows
	OutcomeDropped = "dropped" // never attempted: the delivery queue was full or the engine closed
)

// Delivery is one attempt to run an action of an alert.
type Delivery struct {
	// ID is set by the store (increasing).
	ID      int64  `json:"id"`
	AlertID string `json:"alert_id"`
	Rule    string `json:"rule"`
	// Action is the index of the action in the rule; Kind "webhook" or
	// "trigger"; Event "firing" or "resolved".
	Action int    `json:"action"`
	Kind   string `json:"kind"`
	Event  State  `json:"event"`
	// Attempt counts from 1.
	Attempt int `json:"attempt"`
	// StatusCode is the webhook's HTTP status (0: none, or a trigger);
	// Error what went wrong; Outcome one of the Outcome constants; Detail
	// what was delivered (the trigger events posted).
	StatusCode int       `json:"status_code,omitempty"`
	Error      string    `json:"error,omitempty"`
	Outcome    string    `json:"outcome"`
	Detail     string    `json:"detail,omitempty"`
	Time       time.Time `json:"time"`
}

// AlertFilter selects alerts.
type AlertFilter struct {
	// Rule, Deployment and State keep matching alerts ("": all).
	Rule       string
	Deployment string
	State      State
	// Limit is the most alerts returned (0 or less: all).
	Limit int
}

// Store keeps rules, evaluation states, alerts and deliveries.
// Implementations are safe for concurrent use; sqlstore implements it on
// SQLite and PostgreSQL.
type Store interface {
	// CreateRule stores a new rule; EEXISTS when the name is taken.
	CreateRule(ctx context.Context, r *Rule) error
	// UpdateRule replaces a rule; ENOTFOUND when there is none.
	UpdateRule(ctx context.Context, r *Rule) error
	// GetRule returns a rule; ENOTFOUND when there is none.
	GetRule(ctx context.Context, name string) (*Rule, error)
	// ListRules returns every rule by name.
	ListRules(ctx context.Context) ([]*Rule, error)
	// DeleteRule deletes a rule and its evaluation states; its alerts and
	// deliveries stay as history. ENOTFOUND when there is none.
	DeleteRule(ctx context.Context, name string) error

	// GetState returns the state of a rule for a deployment and model
	// version; ENOTFOUND when it was never evaluated there.
	GetState(ctx context.Context, rule, deployment, modelVersion string) (*RuleState, error)
	// SaveState stores st and, when a is not nil, creates or replaces the
	// alert a, in one transaction. ENOTFOUND when the rule does not exist
	// (deleted meanwhile).
	SaveState(ctx context.Context, st *RuleState, a *Alert) error

	// GetAlert returns an alert; ENOTFOUND when there is none.
	GetAlert(ctx context.Context, id string) (*Alert, error)
	// ListAlerts returns the alerts matching f, newest first (by start,
	// then ID).
	ListAlerts(ctx context.Context, f AlertFilter) ([]*Alert, error)

	// AddDelivery records a delivery attempt and sets its ID.
	AddDelivery(ctx context.Context, d *Delivery) error
	// ListDeliveries returns an alert's deliveries, oldest first; an
	// unknown alert has none.
	ListDeliveries(ctx context.Context, alertID string) ([]*Delivery, error)
}
