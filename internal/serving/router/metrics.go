package router

import (
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are the request and shadow latency histogram buckets, in
// seconds: 100µs to 10s.
var latencyBuckets = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// commonCodes are the status codes whose counters each slot resolves up
// front; others are looked up when they occur.
var commonCodes = [...]int{200, 400, 404, 413, 499, 500, 502, 503}

// metrics are the router's Prometheus collectors.
type metrics struct {
	r *Router

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	shadowRows    *prometheus.CounterVec
	shadowAgreed  *prometheus.CounterVec
	shadowErrors  *prometheus.CounterVec
	shadowLatency *prometheus.HistogramVec
	shadowDropped *prometheus.CounterVec
	rollbacks     *prometheus.CounterVec
	inFlight      *prometheus.Desc
	ready         *prometheus.Desc
	payload       []prometheus.Collector

	mu    sync.Mutex
	slots map[slotKey]*slotMetrics
}

// slotKey is the label set of one revision in one role.
type slotKey struct {
	deployment, revision, modelVersion, role string
}

// slotMetrics are the label children of one revision in one role,
// resolved when a table starts using it and deleted when no table does.
type slotMetrics struct {
	m        *metrics
	key      slotKey
	codes    [len(commonCodes)]prometheus.Counter
	requests *prometheus.CounterVec // curried, for other codes
	duration prometheus.Observer

	// Under m.mu: the tables using the slot, whether its series were
	// deleted (no child may be created after), and the counters of codes
	// other than commonCodes, resolved when they first occur.
	refs     int
	released bool
	extra    map[int]prometheus.Counter

	// Shadow role only.
	shadowRows, shadowAgreed, shadowErrors prometheus.Counter
	shadowLatency                          prometheus.Observer
}

// newMetrics creates (without registering) the router's metrics.
func newMetrics(r *Router) *metrics {
	slot := []string{"deployment", "revision", "model_version", "role"}
	shadow := []string{"deployment", "revision", "model_version"}
	m := &metrics{
		r: r,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_serving_requests_total",
			Help: "Prediction requests answered, by deployment, revision, model version, role and HTTP status code.",
		}, append(slot, "code")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mloop_serving_request_duration_seconds",
			Help:    "Time to answer a prediction request, body read to answer written.",
			Buckets: latencyBuckets,
		}, slot),
		shadowRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_serving_shadow_compared_rows_total",
			Help: "Rows a shadow predicted and compared with the primary's answer.",
		}, shadow),
		shadowAgreed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_serving_shadow_agreed_rows_total",
			Help: "Compared rows where the shadow agreed with the primary.",
		}, shadow),
		shadowErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_serving_shadow_errors_total",
			Help: "Shadow runs that failed or could not be compared with the primary.",
		}, shadow),
		shadowLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mloop_serving_shadow_duration_seconds",
			Help:    "Time a shadow took to answer a copy of a request.",
			Buckets: latencyBuckets,
		}, shadow),
		shadowDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_serving_shadow_dropped_total",
			Help: "Request copies not sent to the shadow because its queue was full.",
		}, []string{"deployment"}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mloop_serving_rollbacks_total",
			Help: "Canaries rolled back automatically by this replica.",
		}, []string{"deployment"}),
		inFlight: prometheus.NewDesc("mloop_serving_in_flight",
			"Prediction requests being answered (for a shadow: copies being run).", slot, nil),
		ready: prometheus.NewDesc("mloop_serving_revision_ready",
			"1 when the revision is loaded and answering, 0 while it loads or after it failed to load.", slot, nil),
		slots: make(map[slotKey]*slotMetrics),
	}
	if p := r.cfg.Payloads; p != nil {
		m.payload = []prometheus.Collector{
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "mloop_payload_log_queue_depth",
				Help: "Payload records waiting to be written.",
			}, func() float64 { return float64(p.Stats().QueueDepth) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "mloop_payload_log_dropped_total",
				Help: "Payload records dropped because the queue was full.",
			}, func() float64 { return float64(p.Stats().Dropped) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "mloop_payload_log_written_total",
				Help: "Payload records written to the artifact store.",
			}, func() float64 { return float64(p.Stats().Written) }),
			prometheus.NewCounterFunc(prometheus.CounterOpts{
				Name: "mloop_payload_log_lost_total",
				Help: "Payload records queued but never written (failed writes).",
			}, func() float64 { return float64(p.Stats().Lost) }),
		}
	}
	return m
}

// collectors returns every collector to register.
func (m *metrics) collectors() []prometheus.Collector {
	cs := []prometheus.Collector{m.requests, m.duration, m.shadowRows, m.shadowAgreed, m.shadowErrors,
		m.shadowLatency, m.shadowDropped, m.rollbacks, (*liveCollector)(m)}
	return append(cs, m.payload...)
}

// register registers the metrics, undoing it on failure.
func (m *metrics) register(reg prometheus.Registerer) error {
	var done []prometheus.Collector
	for _, c := range m.collectors() {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			for _, d := range done {
				reg.Unregister(d)
			}
			if errors.As(err, &are) {
				return errors.New("register serving metrics: already registered (one router per registry)")
			}
			return err
		}
		done = append(done, c)
	}
	return nil
}

// unregister removes the metrics from reg.
func (m *metrics) unregister(reg prometheus.Registerer) {
	for _, c := range m.collectors() {
		reg.Unregister(c)
	}
}

// acquire returns the children of rev in role, resolving them for the
// first table that uses them.
func (m *metrics) acquire(deployment string, rev *revision, role string) *slotMetrics {
	k := slotKey{deployment, rev.revStr, rev.modelVersion, role}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.slots[k]
	if s == nil {
		labels := prometheus.Labels{"deployment": k.deployment, "revision": k.revision, "model_version": k.modelVersion, "role": k.role}
		s = &slotMetrics{m: m, key: k}
		s.requests = m.requests.MustCurryWith(labels)
		for i, c := range commonCodes {
			s.codes[i] = s.requests.WithLabelValues(strconv.Itoa(c))
		}
		s.duration = m.duration.With(labels)
		if role == "shadow" {
			sl := []string{k.deployment, k.revision, k.modelVersion}
			s.shadowRows = m.shadowRows.WithLabelValues(sl...)
			s.shadowAgreed = m.shadowAgreed.WithLabelValues(sl...)
			s.shadowErrors = m.shadowErrors.WithLabelValues(sl...)
			s.shadowLatency = m.shadowLatency.WithLabelValues(sl...)
		}
		m.slots[k] = s
	}
	s.refs++
	return s
}

// release drops a table's use of s; the last one deletes its series.
func (m *metrics) release(s *slotMetrics) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s.refs--; s.refs > 0 || m.slots[s.key] != s {
		return
	}
	delete(m.slots, s.key)
	s.released, s.extra = true, nil
	k := s.key
	labels := prometheus.Labels{"deployment": k.deployment, "revision": k.revision, "model_version": k.modelVersion, "role": k.role}
	m.requests.DeletePartialMatch(labels)
	m.duration.Delete(labels)
	if k.role == "shadow" {
		sl := []string{k.deployment, k.revision, k.modelVersion}
		m.shadowRows.DeleteLabelValues(sl...)
		m.shadowAgreed.DeleteLabelValues(sl...)
		m.shadowErrors.DeleteLabelValues(sl...)
		m.shadowLatency.DeleteLabelValues(sl...)
	}
}

// forget deletes a removed deployment's own series. The deployment's
// children (resolved by newDeployment) may still be counted by a late
// shadow drop or rollback: they are no longer exported.
func (m *metrics) forget(deployment string) {
	m.shadowDropped.DeleteLabelValues(deployment)
	m.rollbacks.DeleteLabelValues(deployment)
}

// observe counts one answered request.
func (s *slotMetrics) observe(status int, latency time.Duration) {
	counted := false
	for i, c := range commonCodes {
		if c == status {
			s.codes[i].Inc()
			counted = true
			break
		}
	}
	if !counted {
		if c := s.extraCode(status); c != nil {
			c.Inc()
		}
	}
	s.duration.Observe(latency.Seconds())
}

// extraCode returns the counter of a status code outside commonCodes,
// resolving it once, or nil when the slot's series were deleted (a late
// request on a released slot must not bring them back).
func (s *slotMetrics) extraCode(status int) prometheus.Counter {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.released {
		return nil
	}
	c := s.extra[status]
	if c == nil {
		c = s.requests.WithLabelValues(strconv.Itoa(status))
		if s.extra == nil {
			s.extra = make(map[int]prometheus.Counter)
		}
		s.extra[status] = c
	}
	return c
}

// observeShadow counts one shadow run.
func (s *slotMetrics) observeShadow(latency time.Duration, rows, agreed int, failed bool) {
	if s.shadowRows == nil {
		return
	}
	s.shadowLatency.Observe(latency.Seconds())
	s.shadowRows.Add(float64(rows))
	s.shadowAgreed.Add(float64(agreed))
	if failed {
		s.shadowErrors.Inc()
	}
}

// liveCollector reports the in-flight and ready gauges from the revisions
// themselves at scrape time, so the hot path updates no gauge.
type liveCollector metrics

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.inFlight
	ch <- c.ready
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	r := c.r
	seen := make(map[slotKey]bool)
	emit := func(name string, rev *revision, role string) {
		k := slotKey{name, rev.revStr, rev.modelVersion, role}
		if seen[k] {
			return
		}
		seen[k] = true
		labels := []string{name, rev.revStr, rev.modelVersion, role}
		ready := 0.0
		if rev.ready() {
			ready = 1
		}
		ch <- prometheus.MustNewConstMetric(c.ready, prometheus.GaugeValue, ready, labels...)
		ch <- prometheus.MustNewConstMetric(c.inFlight, prometheus.GaugeValue, float64(rev.inflight.Load()), labels...)
	}
	for name, d := range *r.deps.Load() {
		t := d.table.Load()
		for _, e := range t.entries {
			emit(name, e.rev, e.role)
		}
		r.mu.Lock()
		var slots []string
		var wanted []*revision
		if d.desired != nil {
			for _, s := range d.desired.Slots {
				slots = append(slots, s.Role)
			}
			wanted = append(wanted, d.wanted...)
		}
		r.mu.Unlock()
		for i, rev := range wanted {
			if i < len(slots) {
				emit(name, rev, slots[i])
			}
		}
	}
}
