package pipeline

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mloop/mloop"
)

// TriggerKind is what a trigger listens to.
type TriggerKind string

// Trigger kinds.
const (
	// OnDataset fires on each new version of a dataset whose name matches
	// Trigger.Dataset (a name or a path.Match pattern such as "flights-*").
	OnDataset TriggerKind = "dataset"
	// OnSchedule fires on a cron schedule (Trigger.Cron, five fields or a
	// descriptor such as @hourly, in Trigger.Timezone or UTC).
	OnSchedule TriggerKind = "cron"
	// OnEvent fires on events of type Trigger.Event posted by monitoring or
	// any client (POST /api/v1/events).
	OnEvent TriggerKind = "event"
	// OnManual fires only when asked (mloop trigger fire).
	OnManual TriggerKind = "manual"
)

// OverlapPolicy says what a trigger does when it would fire while
// MaxConcurrent of its runs are still active.
type OverlapPolicy string

// Overlap policies.
const (
	// OverlapSkip drops the events (recorded as skipped).
	OverlapSkip OverlapPolicy = "skip"
	// OverlapQueue keeps the events pending and fires once, for all of
	// them, when a run ends (at most one queued firing).
	OverlapQueue OverlapPolicy = "queue"
	// OverlapCancel cancels the oldest active run and fires.
	OverlapCancel OverlapPolicy = "cancel"
)

// Trigger starts pipeline runs when something happens, within guardrails.
type Trigger struct {
	// Name identifies the trigger (same rule as step names).
	Name string `json:"name"`
	// SpecFile is the absolute path of the pipeline spec to run and
	// ProjectDir its project folder; Params the parameter overrides.
	SpecFile   string            `json:"spec_file"`
	ProjectDir string            `json:"project_dir"`
	Params     map[string]string `json:"params,omitempty"`
	// Pipeline is the spec's name, read when the trigger was created.
	Pipeline string `json:"pipeline"`

	Kind     TriggerKind `json:"kind"`
	Dataset  string      `json:"dataset,omitempty"`
	Cron     string      `json:"cron,omitempty"`
	Timezone string      `json:"timezone,omitempty"`
	Event    string      `json:"event,omitempty"`

	// Cooldown is the least time between two firings.
	Cooldown time.Duration `json:"cooldown,omitempty"`
	// BatchWindow makes a trigger wait this long after the first pending
	// event for more, then fire once for all of them.
	BatchWindow time.Duration `json:"batch_window,omitempty"`
	// MaxConcurrent bounds the trigger's active runs (default 1).
	MaxConcurrent int `json:"max_concurrent"`
	// Overlap is the policy when MaxConcurrent runs are active (default queue).
	Overlap OverlapPolicy `json:"overlap"`
	// Dedup skips firing when a run of this trigger with the same
	// InputsKey succeeded or is active.
	Dedup bool `json:"dedup"`
	// MaxFailures pauses the trigger after this many consecutive failed
	// runs (0: never).
	MaxFailures int `json:"max_failures,omitempty"`

	// Paused stops the trigger from firing; events still arrive and wait.
	// PauseReason says why ("paused by alice", "3 consecutive failures").
	Paused      bool   `json:"paused"`
	PauseReason string `json:"pause_reason,omitempty"`
	// ConsecutiveFailures counts failed runs since the last success.
	ConsecutiveFailures int `json:"consecutive_failures"`
	// DatasetCursor is, for OnDataset, the creation time (ms since the
	// epoch) of the newest dataset version already turned into an event.
	// Versions created at or after it are scanned again; their events'
	// DedupKey ("dataset:NAME@N") keeps each version to one event.
	DatasetCursor int64 `json:"dataset_cursor,omitempty"`
	// NextFire is, for OnSchedule, the next time the schedule fires.
	NextFire time.Time `json:"next_fire,omitzero"`
	// LastFired is when the trigger last started a run.
	LastFired time.Time `json:"last_fired,omitzero"`
	// LastError says why the controller could not act on the trigger's
	// pending events (its spec no longer reads, a dataset is gone); empty
	// once it could again.
	LastError string `json:"last_error,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MarshalJSON encodes the trigger with its durations as Go duration
// strings ("10m0s"), as the HTTP API carries them.
func (t Trigger) MarshalJSON() ([]byte, error) {
	type plain Trigger
	return json.Marshal(struct {
		plain
		Cooldown    string `json:"cooldown,omitempty"`
		BatchWindow string `json:"batch_window,omitempty"`
	}{plain(t), durationText(t.Cooldown), durationText(t.BatchWindow)})
}

// UnmarshalJSON decodes a trigger whose durations are Go duration strings
// ("30s", "10m", "1h30m"); a malformed or negative one is EINVALID naming
// the field.
func (t *Trigger) UnmarshalJSON(data []byte) error {
	type plain Trigger
	aux := struct {
		*plain
		Cooldown    string `json:"cooldown"`
		BatchWindow string `json:"batch_window"`
	}{plain: (*plain)(t)}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	var err error
	if t.Cooldown, err = parseDurationField("cooldown", aux.Cooldown); err != nil {
		return err
	}
	t.BatchWindow, err = parseDurationField("batch_window", aux.BatchWindow)
	return err
}

func durationText(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return d.String()
}

func parseDurationField(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid value %q for field '%s': want a duration such as 30s, 10m or 1h30m.", v, field)
	}
	return d, nil
}

// EventStatus is the state of a trigger event.
type EventStatus string

// Trigger event states: Pending until the controller decides; then Fired
// (RunID set), Skipped (overlap policy skip, or the trigger was deleted),
// or Deduplicated (a run with the same inputs exists). Reason says why.
const (
	EventPending EventStatus = "pending"
	EventFired   EventStatus = "fired"
	EventSkipped EventStatus = "skipped"
	EventDeduped EventStatus = "deduplicated"
)

// TriggerEvent is one thing that happened for a trigger. Events are stored
// before they are acknowledged, so none is lost to a crash.
type TriggerEvent struct {
	ID      int64  `json:"id"`
	Trigger string `json:"trigger"`
	// Source says where the event came from: "dataset", "cron", "event",
	// "manual".
	Source string `json:"source"`
	// Subject is what the event is about: "flights@7", the cron time, the
	// event type.
	Subject string `json:"subject,omitempty"`
	// Payload is the event's JSON body as posted (events) or built.
	Payload json.RawMessage `json:"payload,omitempty"`
	// DedupKey, when set, makes a second event with the same trigger and
	// key a no-op (clients may retry a post safely).
	DedupKey  string      `json:"dedup_key,omitempty"`
	Status    EventStatus `json:"status"`
	RunID     string      `json:"run_id,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	CreatedAt time.Time   `json:"created_at"`
	DecidedAt time.Time   `json:"decided_at,omitzero"`
}

// TriggerUpdate changes a trigger; nil fields are left alone.
type TriggerUpdate struct {
	Paused              *bool
	PauseReason         *string
	ConsecutiveFailures *int
	DatasetCursor       *int64
	NextFire            *time.Time
	LastFired           *time.Time
	LastError           *string
}

// TriggerStore keeps triggers and their events.
type TriggerStore interface {
	// CreateTrigger stores a trigger; EEXISTS when the name is taken.
	CreateTrigger(ctx context.Context, t *Trigger) error
	// GetTrigger returns a trigger; ENOTFOUND when there is none.
	GetTrigger(ctx context.Context, name string) (*Trigger, error)
	// ListTriggers returns all triggers by name.
	ListTriggers(ctx context.Context) ([]*Trigger, error)
	// UpdateTrigger changes a trigger; ENOTFOUND when there is none.
	UpdateTrigger(ctx context.Context, name string, u TriggerUpdate) error
	// DeleteTrigger deletes a trigger; its pending events are marked
	// skipped ("trigger deleted") and all its events' DedupKeys are
	// released, so a trigger created again with the name starts fresh.
	// ENOTFOUND when there is none.
	DeleteTrigger(ctx context.Context, name string) error
	// AddEvents stores events (ID and CreatedAt are set) and, in the same
	// transaction, applies u to their trigger (a dataset cursor or the next
	// cron time), so an event is never lost nor created twice. An event
	// whose DedupKey repeats one of the same trigger is not stored again;
	// the returned slice holds the stored events.
	AddEvents(ctx context.Context, trigger string, events []*TriggerEvent, u TriggerUpdate) ([]*TriggerEvent, error)
	// ListEvents returns a trigger's events, newest first, with the given
	// statuses (all when none), at most limit (default 100).
	ListEvents(ctx context.Context, trigger string, statuses []EventStatus, limit int) ([]*TriggerEvent, error)
	// Fire creates run (as RunStore.CreateRun), marks the events Fired with
	// its id and sets the trigger's LastFired, in one transaction. It fails
	// with ECONFLICT, changing nothing, when one of the events is no longer
	// pending or the trigger is paused.
	Fire(ctx context.Context, run *Run, eventIDs []int64, now time.Time) error
	// DecideEvents marks pending events with a final status and reason.
	DecideEvents(ctx context.Context, eventIDs []int64, status EventStatus, reason string, now time.Time) error
}

// LeaseStore keeps the leases that elect one server to run the controllers
// of a database (see Service.Open).
type LeaseStore interface {
	// AcquireLease takes or renews the lease name for owner until the given
	// time, atomically, and reports whether owner holds it: it does when the
	// lease is free, expired at now, already owner's, or held by takeOver
	// (a holder the caller knows to be dead; "" for none).
	AcquireLease(ctx context.Context, name, owner string, until, now time.Time, takeOver string) (bool, error)
	// Lease returns the holder of the lease and its expiry; ENOTFOUND when
	// nobody took it yet.
	Lease(ctx context.Context, name string) (owner string, until time.Time, err error)
	// ReleaseLease gives up the lease when owner holds it.
	ReleaseLease(ctx context.Context, name, owner string) error
}

// Store is everything the pipeline service keeps.
type Store interface {
	RunStore
	LineageStore
	TriggerStore
	LeaseStore
}
