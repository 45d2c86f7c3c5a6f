package monitor

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the monitor's Prometheus collectors.
type metrics struct {
	m *Monitor

	rows        *prometheus.GaugeVec
	featDrift   *prometheus.GaugeVec
	driftShare  *prometheus.GaugeVec
	quality     *prometheus.GaugeVec
	dropped     prometheus.CounterFunc
	feedbackCtr *prometheus.CounterVec

	mu sync.Mutex
}

func newMetrics(m *Monitor) *metrics {
	return &metrics{
		m: m,
		rows: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mloop_monitor_window_rows",
			Help: "Rows profiled so far in the open monitoring window, by deployment and model version.",
		}, []string{"deployment", "model_version"}),
		featDrift: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mloop_monitor_feature_drift",
			Help: "Drift statistic of a feature in the last closed window against the reference (p-value for ks, chisquare and ztest; distance otherwise).",
		}, []string{"deployment", "model_version", "feature", "method"}),
		driftShare: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mloop_monitor_dataset_drift_share",
			Help: "Share of drifted features in the last closed window against the reference.",
		}, []string{"deployment", "model_version"}),
		quality: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mloop_monitor_quality",
			Help: "Live quality of a model version from joined feedback labels since the monitor started.",
		}, []string{"deployment", "model_version", "metric"}),
		dropped: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mloop_monitor_dropped_total",
			Help: "Served rows the monitor dropped because its aggregator fell behind.",
		}, func() float64 { return float64(m.droppedRows.Load()) }),
		feedbackCtr: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_monitor_feedback_total",
			Help: "Feedback labels by outcome: accepted, unknown, duplicate, late, invalid.",
		}, []string{"outcome"}),
	}
}

func (x *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{x.rows, x.featDrift, x.driftShare, x.quality, x.dropped, x.feedbackCtr}
}

func (x *metrics) windowRows(mv *mvState, rows int64) {
	x.rows.WithLabelValues(mv.dep.name, mv.key).Set(float64(rows))
}

func (x *metrics) windowClosed(mv *mvState) {
	x.rows.DeleteLabelValues(mv.dep.name, mv.key)
}

func (x *metrics) windowSaved(s *WindowSummary) {
	if s.Drift.Status != DriftOK {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.featDrift.DeletePartialMatch(prometheus.Labels{"deployment": s.Deployment, "model_version": s.ModelVersion})
	for _, f := range s.Drift.Features {
		x.featDrift.WithLabelValues(s.Deployment, s.ModelVersion, f.Feature, string(f.Method)).Set(f.Statistic)
	}
	x.driftShare.WithLabelValues(s.Deployment, s.ModelVersion).Set(s.Drift.Share)
}

func (x *metrics) feedback(outcome int, n int64) {
	x.feedbackCtr.WithLabelValues(outcomeNames[outcome]).Add(float64(n))
}

// updateQuality sets the quality gauges from every model version's live
// quality.
func (x *metrics) updateQuality() {
	type item struct {
		dep, mv string
		q       *Quality
	}
	var items []item
	x.m.deps.Range(func(_, v any) bool {
		d := v.(*depState)
		for _, mv := range *d.mvs.Load() {
			if q := x.m.ModelQuality(d.name, mv.key); q != nil {
				items = append(items, item{d.name, mv.key, q})
			}
		}
		return true
	})
	for _, it := range items {
		for name, v := range it.q.Metrics() {
			x.quality.WithLabelValues(it.dep, it.mv, name).Set(v)
		}
	}
}
