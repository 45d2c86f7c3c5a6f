package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// Limits on what a trigger event may carry.
const (
	// MaxEventPayload is the largest event payload, in bytes.
	MaxEventPayload = 64 << 10
	// MaxEventSubject and MaxEventDedupKey bound an event's subject and
	// de-duplication key, in bytes.
	MaxEventSubject  = 1024
	MaxEventDedupKey = 256
	// DefaultTriggerEvents and MaxTriggerEvents are the default and largest
	// page sizes of TriggerEvents.
	DefaultTriggerEvents = 100
	MaxTriggerEvents     = 1000
)

// eventTypeRE is what an event type looks like: "drift",
// "monitor.drift", "quality/low".
var eventTypeRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:/-]{0,127}$`)

// CreateTrigger checks a trigger, fills its defaults and stores it.
//
// The trigger needs a Name (the rule of step names), a SpecFile that parses
// (with the trigger's Params applied; ProjectDir defaults to its folder) and
// exactly one kind with its field: OnDataset with Dataset (a name or a
// path.Match pattern), OnSchedule with Cron (and an optional IANA Timezone),
// OnEvent with Event, or OnManual with none. When Kind is empty it is taken
// from the one field given. Durations must not be negative; MaxConcurrent
// defaults to 1 and Overlap to OverlapQueue. Pipeline is set to the spec's
// name.
//
// An OnDataset trigger starts with DatasetCursor at the creation time: only
// versions created after the trigger's creation millisecond fire it, not
// the ones already there. An OnSchedule trigger gets NextFire, the schedule's first time
// after now. A trigger may be created paused. Errors: EINVALID for bad
// input, EEXISTS when the name is taken.
func (s *Service) CreateTrigger(ctx context.Context, t *Trigger) (*Trigger, error) {
	if t == nil {
		return nil, mloop.Errorf(mloop.EINVALID, "no trigger given")
	}
	c := *t
	now := s.now().UTC()
	sched, err := checkTrigger(&c, now)
	if err != nil {
		return nil, err
	}
	c.ConsecutiveFailures = 0
	c.LastFired = time.Time{}
	c.DatasetCursor = 0
	c.NextFire = time.Time{}
	switch c.Kind {
	case OnDataset:
		c.DatasetCursor = now.UnixMilli()
	case OnSchedule:
		c.NextFire = sched.next(now).UTC()
	}
	if c.Paused && c.PauseReason == "" {
		c.PauseReason = "created paused"
	}
	if !c.Paused {
		c.PauseReason = ""
	}
	c.CreatedAt, c.UpdatedAt = now, now
	if err := s.Store.CreateTrigger(ctx, &c); err != nil {
		return nil, fmt.Errorf("create trigger %q: %w", c.Name, err)
	}
	s.logger().Info("trigger created", "trigger", c.Name, "kind", c.Kind, "pipeline", c.Pipeline)
	s.wakeTriggers()
	return &c, nil
}

// checkTrigger validates t in place (defaults filled, paths made absolute,
// Pipeline read from the spec) and returns its parsed schedule for
// OnSchedule triggers.
func checkTrigger(t *Trigger, now time.Time) (*schedule, error) {
	if !nameRE.MatchString(t.Name) {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid trigger name %q: use 1 to 64 letters, digits, '_' or '-', starting with a letter or '_'.", t.Name)
	}
	if t.Kind == "" {
		var kinds []TriggerKind
		if t.Dataset != "" {
			kinds = append(kinds, OnDataset)
		}
		if t.Cron != "" {
			kinds = append(kinds, OnSchedule)
		}
		if t.Event != "" {
			kinds = append(kinds, OnEvent)
		}
		if len(kinds) != 1 {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: give exactly one of dataset (a name or pattern), cron (a schedule) or event (an event type), or kind manual.", t.Name)
		}
		t.Kind = kinds[0]
	}
	var sched *schedule
	fields := map[string]string{"dataset": t.Dataset, "cron": t.Cron, "event": t.Event, "timezone": t.Timezone}
	allowed := map[TriggerKind][]string{OnDataset: {"dataset"}, OnSchedule: {"cron", "timezone"}, OnEvent: {"event"}, OnManual: {}}
	ok, known := allowed[t.Kind]
	if !known {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: unknown kind %q: use dataset, cron, event or manual.", t.Name, t.Kind)
	}
	for _, f := range []string{"dataset", "cron", "event", "timezone"} {
		if fields[f] != "" && !slices.Contains(ok, f) {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q of kind %s cannot have a %s (%q): a trigger has exactly one kind.", t.Name, t.Kind, f, fields[f])
		}
	}
	switch t.Kind {
	case OnDataset:
		if t.Dataset == "" {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q of kind dataset needs a dataset name or pattern (such as flights or flights-*).", t.Name)
		}
		if len(t.Dataset) > 256 {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: dataset pattern is %d bytes long; at most 256 are allowed.", t.Name, len(t.Dataset))
		}
		if _, err := path.Match(t.Dataset, ""); err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: invalid dataset pattern %q: use a name, or * ? [a-z] wildcards.", t.Name, t.Dataset)
		}
	case OnSchedule:
		var err error
		if sched, err = parseSchedule(t.Cron, t.Timezone); err != nil {
			return nil, fmt.Errorf("trigger %q: %w", t.Name, err)
		}
		if sched.next(now).IsZero() {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: cron expression %q never fires.", t.Name, t.Cron)
		}
	case OnEvent:
		if !eventTypeRE.MatchString(t.Event) {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: invalid event type %q: use 1 to 128 letters, digits, '_', '.', ':', '/' or '-' (such as drift).", t.Name, t.Event)
		}
	}
	for name, d := range map[string]time.Duration{"cooldown": t.Cooldown, "batch window": t.BatchWindow} {
		if d < 0 {
			return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: the %s must not be negative (got %s).", t.Name, name, d)
		}
	}
	if t.MaxConcurrent < 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: max concurrent runs must be 1 or more (got %d).", t.Name, t.MaxConcurrent)
	}
	if t.MaxConcurrent == 0 {
		t.MaxConcurrent = 1
	}
	if t.MaxFailures < 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: max failures must be 0 (never pause) or more (got %d).", t.Name, t.MaxFailures)
	}
	switch t.Overlap {
	case "":
		t.Overlap = OverlapQueue
	case OverlapSkip, OverlapQueue, OverlapCancel:
	default:
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: unknown overlap policy %q: use skip, queue or cancel.", t.Name, t.Overlap)
	}
	if t.SpecFile == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q needs the pipeline spec file to run (such as /path/to/mloop.yaml).", t.Name)
	}
	spec, err := filepath.Abs(t.SpecFile)
	if err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: spec file %q: %v", t.Name, t.SpecFile, err)
	}
	t.SpecFile = spec
	if t.ProjectDir == "" {
		t.ProjectDir = filepath.Dir(spec)
	}
	if t.ProjectDir, err = filepath.Abs(t.ProjectDir); err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: project folder %q: %v", t.Name, t.ProjectDir, err)
	}
	p, err := readTriggerSpec(t)
	if err != nil {
		return nil, err
	}
	t.Pipeline = p.Name
	return sched, nil
}

// readTriggerSpec reads, parses and plans the trigger's spec with its params.
func readTriggerSpec(t *Trigger) (*Spec, error) {
	text, err := os.ReadFile(t.SpecFile)
	if err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: cannot read spec file %s: %v. Give the path of an mloop.yaml readable by the server.", t.Name, t.SpecFile, err)
	}
	spec, err := ParseSpec(t.SpecFile, text)
	if err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: %v", t.Name, err)
	}
	if spec, err = spec.WithParams(t.Params); err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: %v", t.Name, err)
	}
	if _, err := spec.Plan(); err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Trigger %q: %v", t.Name, err)
	}
	return spec, nil
}

// GetTrigger returns a trigger; ENOTFOUND when there is none.
func (s *Service) GetTrigger(ctx context.Context, name string) (*Trigger, error) {
	return s.Store.GetTrigger(ctx, name)
}

// ListTriggers returns all triggers by name.
func (s *Service) ListTriggers(ctx context.Context) ([]*Trigger, error) {
	return s.Store.ListTriggers(ctx)
}

// PauseTrigger stops a trigger from firing; its events keep arriving and
// wait, pending, until it is resumed. reason says why (default "paused").
// ENOTFOUND when there is no such trigger.
func (s *Service) PauseTrigger(ctx context.Context, name, reason string) (*Trigger, error) {
	if reason == "" {
		reason = "paused"
	}
	yes := true
	if err := s.Store.UpdateTrigger(ctx, name, TriggerUpdate{Paused: &yes, PauseReason: &reason}); err != nil {
		return nil, fmt.Errorf("pause trigger %q: %w", name, err)
	}
	s.logger().Info("trigger paused", "trigger", name, "reason", reason)
	return s.Store.GetTrigger(ctx, name)
}

// ResumeTrigger lets a paused trigger fire again and resets its count of
// consecutive failures; events that waited while it was paused are decided
// at once. ENOTFOUND when there is no such trigger.
func (s *Service) ResumeTrigger(ctx context.Context, name string) (*Trigger, error) {
	no, empty, zero := false, "", 0
	if err := s.Store.UpdateTrigger(ctx, name, TriggerUpdate{Paused: &no, PauseReason: &empty, ConsecutiveFailures: &zero}); err != nil {
		return nil, fmt.Errorf("resume trigger %q: %w", name, err)
	}
	s.logger().Info("trigger resumed", "trigger", name)
	s.wakeTriggers()
	return s.Store.GetTrigger(ctx, name)
}

// DeleteTrigger deletes a trigger; its pending events are marked skipped
// and its runs are left alone. ENOTFOUND when there is no such trigger.
func (s *Service) DeleteTrigger(ctx context.Context, name string) error {
	if err := s.Store.DeleteTrigger(ctx, name); err != nil {
		return fmt.Errorf("delete trigger %q: %w", name, err)
	}
	s.forgetSeen(name, math.MaxInt64)
	s.logger().Info("trigger deleted", "trigger", name)
	return nil
}

// FireTrigger records a manual event for a trigger of any kind; the
// controller decides it with the trigger's guardrails like any other event.
// payload is optional JSON; its "user" string field, when present, names who
// fired ("manual fire by alice"). The event is stored before FireTrigger
// returns. ENOTFOUND when there is no such trigger.
func (s *Service) FireTrigger(ctx context.Context, name string, payload json.RawMessage) (*TriggerEvent, error) {
	if err := checkPayload(payload); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetTrigger(ctx, name); err != nil {
		return nil, err
	}
	ev := &TriggerEvent{Trigger: name, Source: "manual", Subject: clipString(manualUser(payload), MaxEventSubject), Payload: payload, Status: EventPending}
	stored, err := s.Store.AddEvents(ctx, name, []*TriggerEvent{ev}, TriggerUpdate{})
	if err != nil {
		return nil, fmt.Errorf("fire trigger %q: %w", name, err)
	}
	if len(stored) != 1 {
		return nil, mloop.Errorf(mloop.EINTERNAL, "fire trigger %q: the store kept %d events, want 1", name, len(stored))
	}
	s.logger().Info("trigger fired by hand", "trigger", name, "event", stored[0].ID)
	s.wakeTriggers()
	return stored[0], nil
}

// PostEvent records an event of type typ for every OnEvent trigger
// listening to typ, one stored event each, and returns them; an event type
// no trigger listens to stores nothing and returns an empty slice. subject
// says what the event is about (such as the monitor that sent it); payload
// is optional JSON. A non-empty dedupKey makes the post idempotent: a
// trigger that already has an event with that key gets no new one (so a
// client may retry a post whose answer it did not see). The events are
// durable before PostEvent returns.
func (s *Service) PostEvent(ctx context.Context, typ, subject string, payload json.RawMessage, dedupKey string) ([]*TriggerEvent, error) {
	if !eventTypeRE.MatchString(typ) {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid event type %q: use 1 to 128 letters, digits, '_', '.', ':', '/' or '-' (such as drift).", typ)
	}
	if len(subject) > MaxEventSubject {
		return nil, mloop.Errorf(mloop.EINVALID, "The event subject is %d bytes long; at most %d are allowed.", len(subject), MaxEventSubject)
	}
	if len(dedupKey) > MaxEventDedupKey {
		return nil, mloop.Errorf(mloop.EINVALID, "The event dedup key is %d bytes long; at most %d are allowed.", len(dedupKey), MaxEventDedupKey)
	}
	if err := checkPayload(payload); err != nil {
		return nil, err
	}
	ts, err := s.Store.ListTriggers(ctx)
	if err != nil {
		return nil, fmt.Errorf("post event %s: %w", typ, err)
	}
	if subject == "" {
		subject = typ
	}
	out := []*TriggerEvent{}
	for _, t := range ts {
		if t.Kind != OnEvent || t.Event != typ {
			continue
		}
		ev := &TriggerEvent{Trigger: t.Name, Source: "event", Subject: subject, Payload: payload, DedupKey: dedupKey, Status: EventPending}
		stored, err := s.Store.AddEvents(ctx, t.Name, []*TriggerEvent{ev}, TriggerUpdate{})
		if mloop.IsNotFound(err) {
			continue // deleted meanwhile
		} else if err != nil {
			return nil, fmt.Errorf("post event %s for trigger %q: %w", typ, t.Name, err)
		}
		out = append(out, stored...)
	}
	if len(out) > 0 {
		s.logger().Info("event posted", "type", typ, "subject", subject, "events", len(out))
		s.wakeTriggers()
	}
	return out, nil
}

// TriggerEvents returns a trigger's events, newest first, at most limit
// (default DefaultTriggerEvents, at most MaxTriggerEvents). ENOTFOUND when
// there is no such trigger.
func (s *Service) TriggerEvents(ctx context.Context, name string, limit int) ([]*TriggerEvent, error) {
	if limit == 0 {
		limit = DefaultTriggerEvents
	}
	if limit < 0 || limit > MaxTriggerEvents {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid limit %d: it must be between 1 and %d.", limit, MaxTriggerEvents)
	}
	if _, err := s.Store.GetTrigger(ctx, name); err != nil {
		return nil, err
	}
	return s.Store.ListEvents(ctx, name, nil, limit)
}

// checkPayload accepts an empty payload or valid JSON of bounded size.
func checkPayload(p json.RawMessage) error {
	if len(p) == 0 {
		return nil
	}
	if len(p) > MaxEventPayload {
		return mloop.Errorf(mloop.ETOOLARGE, "The event payload is %d bytes; at most %d are allowed.", len(p), MaxEventPayload)
	}
	if !json.Valid(p) {
		return mloop.Errorf(mloop.EINVALID, "The event payload is not valid JSON.")
	}
	return nil
}

// clipString shortens s to at most n bytes without splitting a character.
func clipString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "")
}
