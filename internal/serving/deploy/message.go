package deploy

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Event messages, for people: "primary flights@champion → flights/3
// (revision 1)".

// describeSlot returns "flights/3 (revision 1)", prefixed with the
// alias the slot follows: "flights@champion → flights/3 (revision 1)".
func describeSlot(sl Slot) string {
	v := fmt.Sprintf("%s/%d (revision %d)", sl.Model, sl.Version, sl.Revision)
	if sl.Ref.Alias != "" {
		return sl.Ref.String() + " → " + v
	}
	return v
}

// describeSlots lists slots: "primary flights/3 (revision 1), canary
// flights/4 (revision 2) at 10%, shadow …".
func describeSlots(slots []Slot) string {
	parts := make([]string, len(slots))
	for i, sl := range slots {
		parts[i] = sl.Role + " " + describeSlot(sl)
		if sl.Role == RoleCanary {
			parts[i] += fmt.Sprintf(" at %d%%", sl.Percent)
		}
	}
	return strings.Join(parts, ", ")
}

// describeUpdate says what changed from cur to next.
func describeUpdate(cur, next *Deployment) string {
	var parts []string
	for _, role := range []string{RolePrimary, RoleCanary, RoleShadow} {
		a, b := cur.Slot(role), next.Slot(role)
		switch {
		case a == nil && b == nil:
		case a == nil:
			part := role + " " + describeSlot(*b) + " added"
			if role == RoleCanary {
				part += fmt.Sprintf(" with %d%% of traffic", b.Percent)
			}
			parts = append(parts, part)
		case b == nil:
			parts = append(parts, role+" "+describeSlot(*a)+" removed")
		case a.Revision != b.Revision || a.Model != b.Model || a.Version != b.Version:
			parts = append(parts, fmt.Sprintf("%s %s replaced by %s", role, describeSlot(*a), describeSlot(*b)))
		case a.Ref != b.Ref:
			if b.Ref.Alias != "" {
				parts = append(parts, fmt.Sprintf("%s now follows %s (serving %s/%d, revision %d)", role, b.Ref, b.Model, b.Version, b.Revision))
			} else {
				parts = append(parts, fmt.Sprintf("%s pinned to %s (revision %d)", role, b.Ref, b.Revision))
			}
		}
		if a != nil && b != nil && role == RoleCanary && a.Percent != b.Percent {
			parts = append(parts, fmt.Sprintf("canary traffic %d%% → %d%%", a.Percent, b.Percent))
		}
	}
	cs, ns := cur.Spec, next.Spec
	if cs.Batching != ns.Batching {
		parts = append(parts, fmt.Sprintf("batching %s → %s", describeBatching(cs.Batching), describeBatching(ns.Batching)))
	}
	if sample(cs.PayloadSample) != sample(ns.PayloadSample) {
		parts = append(parts, fmt.Sprintf("payload sample %s → %s", sampleText(cs.PayloadSample), sampleText(ns.PayloadSample)))
	}
	if cs.MaxBatchRows != ns.MaxBatchRows {
		parts = append(parts, fmt.Sprintf("max batch rows %s → %s", rowsText(cs.MaxBatchRows), rowsText(ns.MaxBatchRows)))
	}
	if !reflect.DeepEqual(cs.Rollback, ns.Rollback) {
		parts = append(parts, fmt.Sprintf("rollback policy %s → %s", describePolicy(cs.Rollback), describePolicy(ns.Rollback)))
	}
	if describeRollout(cs.Rollout) != describeRollout(ns.Rollout) { // a version added to Rejected is said apart
		parts = append(parts, fmt.Sprintf("rollout policy %s → %s", describeRollout(cs.Rollout), describeRollout(ns.Rollout)))
	}
	if len(parts) == 0 {
		return "no visible change"
	}
	return strings.Join(parts, "; ")
}

func describeBatching(b Batching) string {
	if b.MaxBatchSize == 0 {
		return "off"
	}
	return fmt.Sprintf("%d rows / %v", b.MaxBatchSize, time.Duration(b.MaxDelay))
}

// sample returns the payload sample fraction (nil means 1).
func sample(p *float64) float64 {
	if p == nil {
		return 1
	}
	return *p
}

func sampleText(p *float64) string { return strconv.FormatFloat(sample(p), 'g', -1, 64) }

func rowsText(n int) string {
	if n == 0 {
		return fmt.Sprintf("default (%d)", DefaultMaxBatchRows)
	}
	return strconv.Itoa(n)
}

func describePolicy(p RollbackPolicy) string {
	if p.Disabled {
		return "disabled"
	}
	p = p.WithDefaults()
	return fmt.Sprintf("window %v, min %d requests, max error rate +%g, max p99 ×%g (min +%v)",
		time.Duration(p.Window), p.MinRequests, p.MaxErrorRateIncrease, p.MaxLatencyRatio, time.Duration(p.MinLatencyIncrease))
}
