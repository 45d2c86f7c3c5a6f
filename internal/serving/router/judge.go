package router

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
)

// Rules of the automatic rollback, as written in Verdict details.
const (
	RuleErrorRate  = "error_rate"
	RuleP99Latency = "p99_latency"
)

// Verdict is the outcome of judging a canary against its primary.
type Verdict struct {
	// Rollback is true when the canary broke a bound of the policy.
	Rollback bool
	// Reason says why, for people: "canary error rate 0.48 vs primary
	// 0.00 over the last 1m0s (112 canary requests); bound +0.05". It is
	// set for every verdict, also when nothing is done.
	Reason string
	// Details holds the figures as JSON (see judgeDetails); set when
	// Rollback is true.
	Details json.RawMessage
}

// judgeFigures are one revision's figures in a verdict's details.
type judgeFigures struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50Millis float64 `json:"p50_ms"`
	P99Millis float64 `json:"p99_ms"`
}

// judgeDetails is the JSON form of Verdict.Details. Bound is the error
// rate increase allowed for RuleErrorRate, the p99 latency in milliseconds
// beyond which the canary is rolled back for RuleP99Latency.
type judgeDetails struct {
	Window  string       `json:"window"`
	Rule    string       `json:"rule"`
	Bound   float64      `json:"bound"`
	Canary  judgeFigures `json:"canary"`
	Primary judgeFigures `json:"primary"`
	// MaxLatencyRatio and MinLatencyIncreaseMillis are the policy's
	// latency bounds, for RuleP99Latency.
	MaxLatencyRatio          float64 `json:"max_latency_ratio,omitempty"`
	MinLatencyIncreaseMillis float64 `json:"min_latency_increase_ms,omitempty"`
}

func figuresOf(s WindowStats) judgeFigures {
	return judgeFigures{
		Requests:  s.Requests,
		Errors:    s.Errors,
		ErrorRate: s.ErrorRate(),
		P50Millis: durationMillis(s.P50),
		P99Millis: durationMillis(s.P99),
	}
}

func durationMillis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Judge decides whether a canary is rolled back, from the figures of the
// canary and of the primary over the policy's window (the caller takes
// both snapshots over p.Window, or the primary's over the span the
// canary's covers). The reason and details name the span the canary's
// figures cover (canary.Span, which may be shorter than the policy's
// window), or p.Window when canary.Span is zero. Nothing is rolled back while the policy is
// disabled or the canary has answered fewer than MinRequests requests.
// Otherwise the canary is rolled back when its error rate exceeds the
// primary's by more than MaxErrorRateIncrease, or when its p99 latency is
// above MaxLatencyRatio times the primary's and at least MinLatencyIncrease
// above it. A primary without requests in the window counts as an error
// rate of 0 and leaves the latency rule out: there is nothing to compare
// latency with.
func Judge(p deploy.RollbackPolicy, primary, canary WindowStats) Verdict {
	disabled := p.Disabled
	p = p.WithDefaults()
	window := time.Duration(p.Window)
	if canary.Span > 0 {
		window = canary.Span
		if window >= time.Second {
			window = window.Round(time.Second)
		}
	}
	over := fmt.Sprintf("over the last %v (%d canary requests)", window, canary.Requests)
	if disabled {
		return Verdict{Reason: "automatic rollback is disabled"}
	}
	if canary.Requests < int64(p.MinRequests) {
		return Verdict{Reason: fmt.Sprintf("too few canary requests to judge: %d over the last %v, %d needed",
			canary.Requests, window, p.MinRequests)}
	}
	d := judgeDetails{Window: window.String(), Canary: figuresOf(canary), Primary: figuresOf(primary)}
	cRate, pRate := canary.ErrorRate(), primary.ErrorRate()
	if cRate-pRate > p.MaxErrorRateIncrease {
		d.Rule, d.Bound = RuleErrorRate, p.MaxErrorRateIncrease
		return rollbackVerdict(d, fmt.Sprintf("canary error rate %.2f vs primary %.2f %s; bound +%.2f",
			cRate, pRate, over, p.MaxErrorRateIncrease))
	}
	if primary.Requests > 0 {
		limit := time.Duration(p.MaxLatencyRatio * float64(primary.P99))
		if floor := primary.P99 + time.Duration(p.MinLatencyIncrease); floor > limit {
			limit = floor
		}
		if canary.P99 > time.Duration(p.MaxLatencyRatio*float64(primary.P99)) &&
			canary.P99-primary.P99 >= time.Duration(p.MinLatencyIncrease) {
			d.Rule, d.Bound = RuleP99Latency, durationMillis(limit)
			d.MaxLatencyRatio, d.MinLatencyIncreaseMillis = p.MaxLatencyRatio, durationMillis(time.Duration(p.MinLatencyIncrease))
			return rollbackVerdict(d, fmt.Sprintf("canary p99 latency %v vs primary %v %s; bound %g× and +%v",
				roundLatency(canary.P99), roundLatency(primary.P99), over, p.MaxLatencyRatio, time.Duration(p.MinLatencyIncrease)))
		}
		return Verdict{Reason: fmt.Sprintf("canary within bounds %s: error rate %.2f vs primary %.2f, p99 %v vs %v",
			over, cRate, pRate, roundLatency(canary.P99), roundLatency(primary.P99))}
	}
	return Verdict{Reason: fmt.Sprintf("canary within bounds %s: error rate %.2f, p99 %v (no primary requests to compare latency with)",
		over, cRate, roundLatency(canary.P99))}
}

func rollbackVerdict(d judgeDetails, reason string) Verdict {
	b, err := json.Marshal(d)
	if err != nil {
		// Only finite numbers and strings: cannot happen.
		panic(fmt.Sprintf("router: marshal verdict details: %v", err))
	}
	return Verdict{Rollback: true, Reason: reason, Details: b}
}

// roundLatency rounds a latency for people: to 0.1ms from 1ms, to 1µs
// below.
func roundLatency(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(100 * time.Microsecond)
	}
	return d.Round(time.Microsecond)
}
