package pipeline

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// decisionKind is what the trigger controller does with a trigger's pending
// events.
type decisionKind int

const (
	// decideWait leaves the events pending (paused, batching, cooldown,
	// overlap queue).
	decideWait decisionKind = iota
	// decideSkip marks the events skipped (overlap skip).
	decideSkip
	// decideDedup marks the events deduplicated: a run of the trigger with
	// the same inputs succeeded or is active.
	decideDedup
	// decideBuild asks the controller to build the run that would fire (its
	// InputsKey pins the datasets) and to decide again with it: only the
	// de-duplication guardrail needs it.
	decideBuild
	// decideFire starts one run for all the events, after canceling the
	// runs in decision.cancel (overlap cancel).
	decideFire
)

func (k decisionKind) String() string {
	switch k {
	case decideWait:
		return "wait"
	case decideSkip:
		return "skip"
	case decideDedup:
		return "dedup"
	case decideBuild:
		return "build"
	case decideFire:
		return "fire"
	}
	return fmt.Sprintf("decisionKind(%d)", int(k))
}

// decision is the outcome of decide.
type decision struct {
	kind decisionKind
	// reason says why, in words: recorded on skipped and deduplicated
	// events, logged for waits.
	reason string
	// until is, for a wait, when the decision may change by itself (the end
	// of the batch window or the cooldown); zero when only an outside change
	// ends the wait (a run ends, the trigger is resumed).
	until time.Time
	// cancel lists, for a fire under the cancel overlap policy, the active
	// runs to cancel first, oldest first.
	cancel []*Run
}

// candidate is the run a trigger would start, for the de-duplication
// guardrail: its InputsKey and the trigger's recent succeeded runs.
type candidate struct {
	inputsKey string
	// succeeded are runs of the trigger that succeeded (any InputsKey;
	// decide compares).
	succeeded []*Run
}

// decide applies a trigger's guardrails, in this order, to its pending
// events (any order) given its active (queued or running) runs:
//
//  1. paused: wait until resumed;
//  2. batching: wait until the oldest pending event is BatchWindow old;
//  3. cooldown: wait until LastFired + Cooldown;
//  4. concurrency: when MaxConcurrent runs are active, the overlap policy
//     skips the events, queues them (wait until a run ends) or cancels the
//     oldest active runs so that the new one fits;
//  5. de-duplication (when Dedup is set): with cand nil, ask for the
//     candidate run (decideBuild); then, when an active or succeeded run of
//     the trigger has the candidate's InputsKey, deduplicate — an active run
//     with the same inputs is never canceled for an identical one;
//  6. fire one run for all the pending events.
//
// Active runs whose cancellation was already requested count neither
// against MaxConcurrent nor for de-duplication: they are on their way out.
// decide does no I/O, so every combination is table-tested.
func decide(t *Trigger, pending []*TriggerEvent, active []*Run, cand *candidate, now time.Time) decision {
	if len(pending) == 0 {
		return decision{kind: decideWait, reason: "no pending events"}
	}
	if t.Paused {
		reason := "trigger paused"
		if t.PauseReason != "" {
			reason += ": " + t.PauseReason
		}
		return decision{kind: decideWait, reason: reason}
	}
	if t.BatchWindow > 0 {
		oldest := pending[0].CreatedAt
		for _, e := range pending[1:] {
			if e.CreatedAt.Before(oldest) {
				oldest = e.CreatedAt
			}
		}
		if end := oldest.Add(t.BatchWindow); now.Before(end) {
			return decision{kind: decideWait, reason: fmt.Sprintf("batching events until %s", end.UTC().Format(time.RFC3339)), until: end}
		}
	}
	if t.Cooldown > 0 && !t.LastFired.IsZero() {
		if end := t.LastFired.Add(t.Cooldown); now.Before(end) {
			return decision{kind: decideWait, reason: fmt.Sprintf("cooling down until %s", end.UTC().Format(time.RFC3339)), until: end}
		}
	}
	live := make([]*Run, 0, len(active))
	for _, r := range active {
		if !r.CancelRequested && !r.Status.Done() {
			live = append(live, r)
		}
	}
	maxConc := max(t.MaxConcurrent, 1)
	var cancel []*Run
	if len(live) >= maxConc {
		switch t.Overlap {
		case OverlapSkip:
			return decision{kind: decideSkip, reason: countNoun(len(live), "run") + " already active (overlap policy skip)"}
		case OverlapCancel:
			oldest := slices.Clone(live)
			slices.SortStableFunc(oldest, func(a, b *Run) int { return a.CreatedAt.Compare(b.CreatedAt) })
			cancel = oldest[:len(live)-maxConc+1]
		default: // OverlapQueue and unset
			return decision{kind: decideWait, reason: countNoun(len(live), "run") + " already active; queued until one ends"}
		}
	}
	if t.Dedup {
		if cand == nil {
			return decision{kind: decideBuild, cancel: cancel}
		}
		for _, r := range live {
			if r.InputsKey == cand.inputsKey {
				return decision{kind: decideDedup, reason: fmt.Sprintf("same inputs as run %s (still %s)", r.ID, r.Status)}
			}
		}
		for _, r := range cand.succeeded {
			if r.Status == RunSucceeded && r.InputsKey == cand.inputsKey {
				return decision{kind: decideDedup, reason: fmt.Sprintf("same inputs as run %s", r.ID)}
			}
		}
	}
	return decision{kind: decideFire, cancel: cancel}
}

// causeOf says in words what started a trigger's run: its oldest pending
// event and how many more it coalesces ("new dataset version flights@7 (+2
// more)").
func causeOf(t *Trigger, pending []*TriggerEvent) string {
	if len(pending) == 0 {
		return "trigger " + t.Name
	}
	first := pending[0]
	for _, e := range pending[1:] {
		if e.CreatedAt.Before(first.CreatedAt) || (e.CreatedAt.Equal(first.CreatedAt) && e.ID < first.ID) {
			first = e
		}
	}
	var b strings.Builder
	switch first.Source {
	case "dataset":
		b.WriteString("new dataset version " + first.Subject)
	case "cron":
		b.WriteString("schedule " + first.Subject)
		if t.Cron != "" {
			b.WriteString(" (cron " + t.Cron + ")")
		}
	case "event":
		b.WriteString("event " + t.Event)
		if first.Subject != "" && first.Subject != t.Event {
			b.WriteString(" from " + first.Subject)
		}
	case "manual":
		b.WriteString("manual fire")
		if first.Subject != "" {
			b.WriteString(" by " + first.Subject)
		}
	default:
		b.WriteString(first.Source)
		if first.Subject != "" {
			b.WriteString(" " + first.Subject)
		}
	}
	if n := len(pending) - 1; n > 0 {
		fmt.Fprintf(&b, " (+%d more)", n)
	}
	b.WriteString(" (trigger " + t.Name + ")")
	return b.String()
}

// manualUser returns the "user" string field of a manual fire's payload, or "".
func manualUser(payload json.RawMessage) string {
	var p struct {
		User string `json:"user"`
	}
	if len(payload) == 0 || json.Unmarshal(payload, &p) != nil {
		return ""
	}
	return p.User
}

// countNoun formats n and thing, with an s when n is not 1: "1 run", "2 runs".
func countNoun(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
