package alert

import (
	"fmt"

	"github.com/mloop/mloop/internal/monitor"
)

// Result is a rule's verdict on one window.
type Result struct {
	// Counted is false when the window cannot be judged: fewer samples
	// than MinSamples (or labels than MinLabels), no drift computed, no
	// such feature or metric. Such a window changes no state.
	Counted bool
	// Holds says the condition is met.
	Holds bool
	// Value is the watched value; Threshold the bound it was compared
	// with; Message says it in words.
	Value, Threshold float64
	Message          string
}

// lowerIsBetter lists the quality metrics that are errors: quality is
// "below" the bound when they are above it.
var lowerIsBetter = map[string]bool{monitor.MetricLogLoss: true, monitor.MetricRMSE: true, monitor.MetricMAE: true}

// Check applies r's condition to w (r must have passed Check).
func Check(r *Rule, w *monitor.WindowSummary) Result {
	c := r.Condition
	samples := w.Rows
	if c.Kind == ErrorRateAbove || c.Kind == LatencyP99Above {
		samples = w.Requests
	}
	if samples < r.MinSamples || samples == 0 {
		return Result{Message: fmt.Sprintf("%d samples, fewer than the %d needed", samples, r.MinSamples)}
	}
	switch c.Kind {
	case DatasetDrift:
		d := w.Drift
		if d.Status != monitor.DriftOK {
			return Result{Message: "no drift computed: " + d.Status}
		}
		res := Result{Counted: true, Value: d.Share, Threshold: d.DriftShare, Holds: d.DatasetDrift}
		if c.Threshold != nil {
			res.Threshold, res.Holds = *c.Threshold, d.Share >= *c.Threshold
		}
		res.Message = fmt.Sprintf("dataset drift on %s: %d of the features drifted (share %.3g, threshold %.3g)", w.Deployment, d.Drifted, d.Share, res.Threshold)
		return res
	case FeatureDrift:
		if w.Drift.Status != monitor.DriftOK {
			return Result{Message: "no drift computed: " + w.Drift.Status}
		}
		for _, f := range w.Drift.Features {
			if f.Feature != c.Feature {
				continue
			}
			res := Result{Counted: true, Value: f.Statistic, Threshold: f.Threshold, Holds: f.Drifted}
			if c.Threshold != nil {
				res.Threshold, res.Holds = *c.Threshold, f.Statistic >= *c.Threshold
			}
			res.Message = fmt.Sprintf("feature %s of %s drifted: %s statistic %.4g (threshold %.4g)", c.Feature, w.Deployment, f.Method, f.Statistic, res.Threshold)
			if !res.Holds {
				res.Message = fmt.Sprintf("feature %s of %s: %s statistic %.4g within threshold %.4g", c.Feature, w.Deployment, f.Method, f.Statistic, res.Threshold)
			}
			return res
		}
		return Result{Message: fmt.Sprintf("feature %s was not compared", c.Feature)}
	case QualityBelow:
		q := w.Quality
		if q == nil || q.Labels < c.MinLabels {
			n := int64(0)
			if q != nil {
				n = q.Labels
			}
			return Result{Message: fmt.Sprintf("%d labels, fewer than the %d needed", n, c.MinLabels)}
		}
		v, ok := q.Metrics()[c.Metric]
		if !ok {
			return Result{Message: fmt.Sprintf("no %s for this window", c.Metric)}
		}
		holds := v < *c.Threshold
		if lowerIsBetter[c.Metric] {
			holds = v > *c.Threshold
		}
		return Result{Counted: true, Holds: holds, Value: v, Threshold: *c.Threshold,
			Message: fmt.Sprintf("%s of %s (%s) is %.4g on %d labels (bound %.4g)", c.Metric, w.Deployment, w.ModelVersion, v, q.Labels, *c.Threshold)}
	case ErrorRateAbove:
		v := float64(w.Errors) / float64(w.Requests)
		return Result{Counted: true, Holds: v > *c.Threshold, Value: v, Threshold: *c.Threshold,
			Message: fmt.Sprintf("error rate of %s is %.4g (%d of %d requests; bound %.4g)", w.Deployment, v, w.Errors, w.Requests, *c.Threshold)}
	case LatencyP99Above:
		v := w.LatencyP99
		return Result{Counted: true, Holds: v > *c.Threshold, Value: v, Threshold: *c.Threshold,
			Message: fmt.Sprintf("p99 latency of %s is %.4g ms (bound %.4g ms)", w.Deployment, v, *c.Threshold)}
	}
	return Result{Message: "unknown condition " + string(c.Kind)}
}
