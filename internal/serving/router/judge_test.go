package router

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
)

func judgeStats(requests, errors int64, p99 time.Duration) WindowStats {
	return WindowStats{Requests: requests, Errors: errors, P50: p99 / 2, P99: p99}
}

func TestJudge(t *testing.T) {
	ms := time.Millisecond
	def := deploy.RollbackPolicy{}
	cases := []struct {
		name            string
		policy          deploy.RollbackPolicy
		primary, canary WindowStats
		rollback        bool
		rule            string
		reason          string // a substring of the reason
	}{
		{"healthy canary", def, judgeStats(1000, 1, 3*ms), judgeStats(100, 0, 3*ms), false, "", "canary within bounds"},
		{"failing canary", def, judgeStats(1000, 0, 3*ms), judgeStats(112, 54, 3*ms), true, RuleErrorRate,
			"canary error rate 0.48 vs primary 0.00 over the last 1m0s (112 canary requests); bound +0.05"},
		{"too few requests", def, judgeStats(1000, 0, 3*ms), judgeStats(19, 19, 3*ms), false, "", "too few canary requests to judge: 19 over the last 1m0s, 20 needed"},
		{"exactly min requests", def, judgeStats(1000, 0, 3*ms), judgeStats(20, 20, 3*ms), true, RuleErrorRate, "error rate 1.00"},
		{"disabled", deploy.RollbackPolicy{Disabled: true}, judgeStats(1000, 0, 3*ms), judgeStats(500, 500, 3*ms), false, "", "disabled"},
		{"error increase at the bound", def, judgeStats(1000, 100, 3*ms), judgeStats(100, 15, 3*ms), false, "", "within bounds"},
		{"error increase over the bound", def, judgeStats(1000, 100, 3*ms), judgeStats(100, 16, 3*ms), true, RuleErrorRate, "0.16 vs primary 0.10"},
		{"both failing alike", def, judgeStats(1000, 500, 3*ms), judgeStats(100, 52, 3*ms), false, "", "within bounds"},
		{"custom error bound", deploy.RollbackPolicy{MaxErrorRateIncrease: 0.2, MinRequests: 5}, judgeStats(10, 0, ms), judgeStats(10, 2, ms), false, "", "within bounds"},
		{"custom error bound crossed", deploy.RollbackPolicy{MaxErrorRateIncrease: 0.2, MinRequests: 5}, judgeStats(10, 0, ms), judgeStats(10, 3, ms), true, RuleErrorRate, "bound +0.20"},
		{"slow canary", def, judgeStats(1000, 0, 3*ms), judgeStats(100, 0, 40*ms), true, RuleP99Latency,
			"canary p99 latency 40ms vs primary 3ms over the last 1m0s (100 canary requests); bound 2× and +5ms"},
		{"twice as slow but by microseconds", def, judgeStats(1000, 0, 100*time.Microsecond), judgeStats(100, 0, 900*time.Microsecond), false, "", "within bounds"},
		{"much slower by exactly the minimum", def, judgeStats(1000, 0, ms), judgeStats(100, 0, 6*ms), true, RuleP99Latency, "p99 latency 6ms vs primary 1ms"},
		{"slower by more than the minimum but under the ratio", def, judgeStats(1000, 0, 20*ms), judgeStats(100, 0, 39*ms), false, "", "within bounds"},
		{"at the ratio exactly", def, judgeStats(1000, 0, 20*ms), judgeStats(100, 0, 40*ms), false, "", "within bounds"},
		{"custom ratio", deploy.RollbackPolicy{MaxLatencyRatio: 1.5, MinLatencyIncrease: deploy.Duration(ms)}, judgeStats(1000, 0, 2*ms), judgeStats(100, 0, 3100*time.Microsecond), true, RuleP99Latency, "bound 1.5× and +1ms"},
		{"no primary requests: errors vs 0", def, WindowStats{}, judgeStats(50, 5, 3*ms), true, RuleErrorRate, "0.10 vs primary 0.00"},
		{"no primary requests: latency not judged", def, WindowStats{}, judgeStats(50, 0, 10*time.Second), false, "", "no primary requests to compare latency with"},
		{"custom window in reason", deploy.RollbackPolicy{Window: deploy.Duration(5 * time.Minute)}, judgeStats(10, 0, ms), judgeStats(30, 30, ms), true, RuleErrorRate, "over the last 5m0s (30 canary requests)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := Judge(c.policy, c.primary, c.canary)
			if v.Rollback != c.rollback {
				t.Fatalf("rollback = %v, want %v (reason %q)", v.Rollback, c.rollback, v.Reason)
			}
			if !strings.Contains(v.Reason, c.reason) {
				t.Errorf("reason %q, want it to contain %q", v.Reason, c.reason)
			}
			if !c.rollback {
				if v.Details != nil {
					t.Errorf("details %s on a verdict that keeps the canary, want none", v.Details)
				}
				return
			}
			var d struct {
				Window  string  `json:"window"`
				Rule    string  `json:"rule"`
				Bound   float64 `json:"bound"`
				Canary  map[string]float64
				Primary map[string]float64
			}
			if err := json.Unmarshal(v.Details, &d); err != nil {
				t.Fatalf("details %s: %v", v.Details, err)
			}
			if d.Rule != c.rule {
				t.Errorf("details rule %q, want %q", d.Rule, c.rule)
			}
			if want := time.Duration(c.policy.WithDefaults().Window).String(); d.Window != want {
				t.Errorf("details window %q, want %q", d.Window, want)
			}
			if d.Canary["requests"] != float64(c.canary.Requests) || d.Canary["errors"] != float64(c.canary.Errors) ||
				d.Canary["p99_ms"] != durationMillis(c.canary.P99) || d.Primary["requests"] != float64(c.primary.Requests) ||
				d.Primary["error_rate"] != c.primary.ErrorRate() {
				t.Errorf("details figures %s do not match canary %+v primary %+v", v.Details, c.canary, c.primary)
			}
			if d.Bound <= 0 {
				t.Errorf("details bound %v, want the bound crossed", d.Bound)
			}
		})
	}
}

func TestJudgeLatencyBound(t *testing.T) {
	// The bound in the details is the larger of ratio×p99 and p99+minimum.
	v := Judge(deploy.RollbackPolicy{}, judgeStats(100, 0, 10*time.Millisecond), judgeStats(100, 0, 30*time.Millisecond))
	var d struct{ Bound float64 }
	if err := json.Unmarshal(v.Details, &d); err != nil || d.Bound != 20 {
		t.Errorf("bound %v (err %v), want 20 (2 × 10ms)", d.Bound, err)
	}
	v = Judge(deploy.RollbackPolicy{}, judgeStats(100, 0, time.Millisecond), judgeStats(100, 0, 7*time.Millisecond))
	if err := json.Unmarshal(v.Details, &d); err != nil || d.Bound != 6 {
		t.Errorf("bound %v (err %v), want 6 (1ms + 5ms)", d.Bound, err)
	}
}

func TestJudgeWindowStats(t *testing.T) {
	// Judge on real windows: a canary failing half its requests against a
	// healthy primary.
	primary := NewWindow(time.Minute, time.Second)
	canary := NewWindow(time.Minute, time.Second)
	now := time.Now()
	for i := range 400 {
		primary.Observe(now.Add(-time.Duration(i)*100*time.Millisecond), 2*time.Millisecond, false)
	}
	for i := range 40 {
		canary.Observe(now.Add(-time.Duration(i)*time.Second), 2*time.Millisecond, i%2 == 0)
	}
	p := deploy.RollbackPolicy{}.WithDefaults()
	v := Judge(p, primary.Snapshot(now, time.Duration(p.Window)), canary.Snapshot(now, time.Duration(p.Window)))
	if !v.Rollback || !strings.Contains(v.Reason, "canary error rate 0.50 vs primary 0.00 over the last 1m0s (40 canary requests)") {
		t.Errorf("verdict %+v, want a rollback for an error rate of 0.50", v)
	}
}

// TestJudgeCoveredSpan checks that a verdict names the span the canary's
// figures cover, not a longer policy window.
func TestJudgeCoveredSpan(t *testing.T) {
	canary := judgeStats(30, 30, time.Millisecond)
	canary.Span = 61*time.Second + 300*time.Millisecond
	v := Judge(deploy.RollbackPolicy{Window: deploy.Duration(10 * time.Minute)}, judgeStats(10, 0, time.Millisecond), canary)
	if !v.Rollback || !strings.Contains(v.Reason, "over the last 1m1s (30 canary requests)") {
		t.Errorf("reason %q, want the covered 1m1s", v.Reason)
	}
	var d struct{ Window string }
	if err := json.Unmarshal(v.Details, &d); err != nil || d.Window != "1m1s" {
		t.Errorf("details window %q (%v), want 1m1s", d.Window, err)
	}
}
