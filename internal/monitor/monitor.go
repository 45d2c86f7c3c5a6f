package monitor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	mrand "math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/serving"
)

// Observation is one answered prediction request, as the router saw it.
// Observe copies what it needs: the caller may reuse every slice afterwards.
type Observation struct {
	// Time is when the request was answered (zero: now).
	Time time.Time
	// Deployment is the deployment's name.
	Deployment string
	// Revision is the deployment revision that answered.
	Revision int64
	// ModelVersion is "model/version"; Model and Version are its parts.
	ModelVersion string
	Model        string
	Version      int64
	// RequestID is the request's id (X-Request-Id), which feedback labels
	// refer to; "" when none.
	RequestID string
	// Features are the model's input columns; Inputs the request's rows.
	Features []serving.Feature
	Inputs   serving.Batch
	// Outputs are the predictions, OutputsPerRow per row (row-major).
	Outputs       []float32
	OutputsPerRow int
	// Objective is the model's objective ("binary:logistic", …; "" when
	// unknown), which decides the quality metrics (TaskOf).
	Objective string
	// Status is the HTTP status answered; Latency the time to answer.
	Status  int
	Latency time.Duration
}

// Config tunes a Monitor; zero values mean the defaults.
type Config struct {
	// Window is the length of a window (1h).
	Window time.Duration
	// WindowRequests, when positive, also closes a deployment's window
	// after that many requests, whichever comes first.
	WindowRequests int64
	// BufferRows is how many rows (or requests) a buffer collects before
	// Observe hands it to the aggregator (4096).
	BufferRows int
	// QueueBuffers is how many full buffers may wait for the aggregator
	// (64); more are dropped and counted.
	QueueBuffers int
	// Stripes is the number of buffers per model version that concurrent
	// requests spread over (GOMAXPROCS, at least 4).
	Stripes int
	// FlushInterval is how often partly filled buffers are collected and
	// due windows closed (1s).
	FlushInterval time.Duration
	// Horizon is how long after a prediction its label is accepted (7 days).
	Horizon time.Duration
	// MaxTracked bounds the predictions that feedback can label (2,000,000).
	MaxTracked int
	// Drift sets the drift methods and thresholds (the dataset defaults).
	Drift dataset.DriftOptions
	// ReferenceRetry is how long a reference lookup that failed (other
	// than "none") is cached before it is tried again (1 minute).
	ReferenceRetry time.Duration
	// Registerer, when set, gets the monitor's Prometheus metrics at Open.
	Registerer prometheus.Registerer
	// Logger logs window closes and failures (slog.Default()).
	Logger *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
	// OnWindow, when set, is called with each window once it is saved
	// (alert rules evaluate it), from the monitor's worker: it must not
	// block for long and must not modify the summary.
	OnWindow func(*WindowSummary)
}

func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	if c.BufferRows <= 0 {
		c.BufferRows = 4096
	}
	if c.QueueBuffers <= 0 {
		c.QueueBuffers = 64
	}
	if c.Stripes <= 0 {
		c.Stripes = max(runtime.GOMAXPROCS(0), 4)
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.Horizon <= 0 {
		c.Horizon = 7 * 24 * time.Hour
	}
	if c.MaxTracked <= 0 {
		c.MaxTracked = 2_000_000
	}
	if c.ReferenceRetry <= 0 {
		c.ReferenceRetry = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Monitor watches deployments: see the package documentation. Create it
// with New, start it with Open, stop it with Close.
type Monitor struct {
	cfg   Config
	store Store
	refs  *refCache
	log   *slog.Logger
	met   *metrics

	deps sync.Map // deployment name → *depState
	// mu guards the creation of depStates and mvStates.
	mu sync.Mutex

	full     chan *buffer
	flushReq chan chan struct{}
	drainReq chan chan struct{}
	snapReq  chan snapRequest
	closedCh chan finisherMsg
	pool     sync.Pool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	opened atomic.Bool
	closed atomic.Bool

	fb feedbackIndex

	// counters
	observed, observedRows        atomic.Int64
	droppedReqs, droppedRows      atomic.Int64
	skippedRows                   atomic.Int64
	windowsClosed, saveErrors     atomic.Int64
	qualityMerges, qualityDropped atomic.Int64
	feedbackCounts                [nOutcomes]atomic.Int64
}

// New returns a monitor saving windows to store and finding references
// through refs (nil: no reference, windows are still profiled).
func New(store Store, refs ReferenceSource, cfg Config) *Monitor {
	cfg = cfg.withDefaults()
	m := &Monitor{
		cfg:      cfg,
		store:    store,
		refs:     &refCache{src: refs, retryAfter: cfg.ReferenceRetry, now: cfg.Now, entries: map[string]*refEntry{}},
		log:      cfg.Logger,
		full:     make(chan *buffer, cfg.QueueBuffers),
		flushReq: make(chan chan struct{}),
		drainReq: make(chan chan struct{}),
		snapReq:  make(chan snapRequest),
		closedCh: make(chan finisherMsg, 64),
	}
	m.fb.init(cfg.MaxTracked)
	m.met = newMetrics(m)
	return m
}

// Open registers the metrics and starts the aggregator and finisher.
func (m *Monitor) Open(ctx context.Context) error {
	if !m.opened.CompareAndSwap(false, true) {
		return mloop.Errorf(mloop.ECONFLICT, "the monitor is already open")
	}
	if r := m.cfg.Registerer; r != nil {
		for _, c := range m.met.collectors() {
			if err := r.Register(c); err != nil {
				return mloop.Errorf(mloop.EINTERNAL, "register monitoring metrics: %v", err)
			}
		}
	}
	m.ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a := newAggregator(m)
	m.wg.Add(2)
	go func() { defer m.wg.Done(); a.run() }()
	go func() { defer m.wg.Done(); m.runFinisher() }()
	return nil
}

// Close stops observing, closes every open window and saves it, then stops
// the workers. Windows not saved when ctx ends are lost (logged).
func (m *Monitor) Close(ctx context.Context) error {
	if !m.opened.Load() || !m.closed.CompareAndSwap(false, true) {
		return nil
	}
	err := m.Flush(ctx)
	m.cancel()
	m.wg.Wait()
	if r := m.cfg.Registerer; r != nil {
		for _, c := range m.met.collectors() {
			r.Unregister(c)
		}
	}
	return err
}

// Flush hands every partly filled buffer to the aggregator, closes every
// open window and waits until the closed windows and the pending quality of
// earlier windows are saved (or ctx ends).
func (m *Monitor) Flush(ctx context.Context) error {
	if !m.opened.Load() {
		return mloop.Errorf(mloop.EUNAVAILABLE, "the monitor is not open: call Open first")
	}
	return m.ask(ctx, m.flushReq)
}

// drain has the aggregator take every buffered request, without closing
// windows.
func (m *Monitor) drain(ctx context.Context) error {
	if m.closed.Load() {
		return mloop.Errorf(mloop.EUNAVAILABLE, "the monitor is closed")
	}
	return m.ask(ctx, m.drainReq)
}

// ask hands the aggregator a done channel on req and waits until it is
// closed, the monitor closes or ctx ends.
func (m *Monitor) ask(ctx context.Context, req chan<- chan struct{}) error {
	done := make(chan struct{})
	select {
	case req <- done:
	case <-m.ctx.Done():
		return mloop.Errorf(mloop.EUNAVAILABLE, "the monitor is closed")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats are the monitor's counters.
type Stats struct {
	// Observed and ObservedRows count the requests and rows Observe took.
	Observed     int64 `json:"observed"`
	ObservedRows int64 `json:"observed_rows"`
	// DroppedRequests and DroppedRows were lost because the aggregator
	// fell behind (its queue was full).
	DroppedRequests int64 `json:"dropped_requests"`
	DroppedRows     int64 `json:"dropped_rows"`
	// SkippedRows are rows of requests whose shape did not match their
	// model version (counted as requests, not profiled).
	SkippedRows int64 `json:"skipped_rows"`
	// WindowsClosed counts closed window summaries; SaveErrors those the
	// store refused.
	WindowsClosed int64 `json:"windows_closed"`
	SaveErrors    int64 `json:"save_errors"`
	// QualityMerges counts late quality merged into saved windows;
	// QualityDropped late quality lost (its window was not saved).
	QualityMerges  int64 `json:"quality_merges"`
	QualityDropped int64 `json:"quality_dropped"`
	// Tracked is the number of predictions labels can join; Evicted
	// counts those removed to stay under MaxTracked or the horizon.
	Tracked int   `json:"tracked"`
	Evicted int64 `json:"evicted"`
	// Feedback counts labels by outcome.
	Feedback FeedbackResult `json:"feedback"`
	// Queued is the number of full buffers waiting for the aggregator.
	Queued int `json:"queued"`
}

// Stats returns the monitor's counters.
func (m *Monitor) Stats() Stats {
	tracked, evicted := m.fb.size()
	var observed, rows int64
	m.deps.Range(func(_, v any) bool {
		for _, mv := range *v.(*depState).mvs.Load() {
			for i := range mv.stripes {
				s := &mv.stripes[i]
				s.mu.Lock()
				observed += s.observed
				rows += s.rows
				s.mu.Unlock()
			}
		}
		return true
	})
	return Stats{
		Observed: observed, ObservedRows: rows,
		DroppedRequests: m.droppedReqs.Load(), DroppedRows: m.droppedRows.Load(),
		SkippedRows:   m.skippedRows.Load(),
		WindowsClosed: m.windowsClosed.Load(), SaveErrors: m.saveErrors.Load(),
		QualityMerges: m.qualityMerges.Load(), QualityDropped: m.qualityDropped.Load(),
		Tracked: tracked, Evicted: evicted,
		Feedback: m.feedbackTotals(),
		Queued:   len(m.full),
	}
}

// Windows returns the deployment's saved windows (see Store.ListWindows).
func (m *Monitor) Windows(ctx context.Context, deployment string, f WindowFilter) ([]*WindowSummary, error) {
	if m.store == nil {
		return []*WindowSummary{}, nil
	}
	return m.store.ListWindows(ctx, deployment, f)
}

// newWindowID returns a fresh window id.
func newWindowID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "mw-" + hex.EncodeToString(b[:])
}

// depState is one deployment's hot-path state.
type depState struct {
	name string
	mvs  atomic.Pointer[[]*mvState] // copy on write, under Monitor.mu
}

// mvState is one model version of one deployment.
type mvState struct {
	dep       *depState
	key       string // "model/version"
	model     string
	version   int64
	features  []serving.Feature
	outputs   int
	objective string
	task      Task
	stripes   []stripe

	// ref is the last reference lookup (set by the finisher and by the
	// prefetch), read by the aggregator for the schema checks.
	ref       atomic.Pointer[refResult]
	prefetch  sync.Once
	firstMu   sync.Mutex
	firstPred *dataset.Profile // the first window's predictions (under firstMu)
	firstDone bool             // firstPred was looked for (finisher only)

	// quality is the model version's live quality (under fb.mu).
	quality *Quality
}

type refResult struct {
	ref    *Reference
	err    error
	checks []featCheck
}

type stripe struct {
	mu  sync.Mutex
	buf *buffer
	// observed and rows count what Observe took (under mu, so that
	// concurrent requests share no counter).
	observed, rows int64
	_              [32]byte // keep stripes on separate cache lines
}

// buffer collects one model version's requests.
type buffer struct {
	mv   *mvState
	rows int
	x    []float32 // rows × len(mv.features)
	y    []float32 // rows × mv.outputs
	reqs []reqRec
}

// reqRec is one request in a buffer; its rows are the next rows of x and y.
type reqRec struct {
	t        int64 // unix nanoseconds
	lat      int64 // nanoseconds
	revision int64
	id       string
	rows     int32
	status   int32
}

// depFor returns the deployment's state, creating it.
func (m *Monitor) depFor(name string) *depState {
	if d, ok := m.deps.Load(name); ok {
		return d.(*depState)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.deps.Load(name); ok {
		return d.(*depState)
	}
	d := &depState{name: name}
	d.mvs.Store(&[]*mvState{})
	m.deps.Store(name, d)
	return d
}

// mvFor returns the observation's model version state, creating it.
func (m *Monitor) mvFor(o *Observation) *mvState {
	d := m.depFor(o.Deployment)
	for _, mv := range *d.mvs.Load() {
		if mv.key == o.ModelVersion {
			return mv
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *d.mvs.Load()
	for _, mv := range old {
		if mv.key == o.ModelVersion {
			return mv
		}
	}
	outputs := max(o.OutputsPerRow, 1)
	mv := &mvState{
		dep: d, key: o.ModelVersion, model: o.Model, version: o.Version,
		features: append([]serving.Feature(nil), o.Features...), outputs: outputs,
		objective: o.Objective, task: TaskOf(o.Objective, outputs),
		stripes: make([]stripe, m.cfg.Stripes),
	}
	mv.quality = NewQuality(mv.task)
	d.mvs.Store(new(append(append([]*mvState(nil), old...), mv)))
	return mv
}

// Observe records one answered request. It never blocks on I/O and does
// not keep o or its slices; see the package documentation. Requests
// observed before Open or after Close are ignored.
func (m *Monitor) Observe(o *Observation) {
	if o == nil || !m.opened.Load() || m.closed.Load() {
		return
	}
	mv := m.mvFor(o)
	t := o.Time
	if t.IsZero() {
		t = m.cfg.Now()
	}
	rows := 0
	cols := len(mv.features)
	if o.Status < 400 && o.Inputs.Rows > 0 {
		if o.Inputs.Cols == cols && len(o.Inputs.Values) == o.Inputs.Rows*cols &&
			max(o.OutputsPerRow, 1) == mv.outputs && len(o.Outputs) == o.Inputs.Rows*mv.outputs {
			rows = o.Inputs.Rows
		} else {
			m.skippedRows.Add(int64(o.Inputs.Rows))
		}
	}
	s := &mv.stripes[mrand.Uint32()%uint32(len(mv.stripes))]
	s.mu.Lock()
	b := s.buf
	if b == nil {
		b = m.newBuffer(mv)
		s.buf = b
	}
	if rows > 0 {
		b.x = append(b.x, o.Inputs.Values...)
		b.y = append(b.y, o.Outputs...)
		b.rows += rows
	}
	b.reqs = append(b.reqs, reqRec{t: t.UnixNano(), lat: int64(o.Latency), revision: o.Revision,
		id: o.RequestID, rows: int32(rows), status: int32(o.Status)})
	s.observed++
	s.rows += int64(rows)
	var out *buffer
	if b.rows >= m.cfg.BufferRows || len(b.reqs) >= m.cfg.BufferRows {
		out, s.buf = b, nil
	}
	s.mu.Unlock()
	if out != nil {
		select {
		case m.full <- out:
		default:
			m.drop(out)
		}
	}
}

func (m *Monitor) newBuffer(mv *mvState) *buffer {
	b, _ := m.pool.Get().(*buffer)
	if b == nil {
		n := m.cfg.BufferRows
		b = &buffer{reqs: make([]reqRec, 0, 64)}
		b.x = make([]float32, 0, min(n, 1024)*max(len(mv.features), 1))
		b.y = make([]float32, 0, min(n, 1024)*mv.outputs)
	}
	b.mv = mv
	return b
}

// release returns a processed buffer to the pool.
func (m *Monitor) release(b *buffer) {
	clear(b.reqs) // drop the request id strings
	b.mv, b.rows, b.x, b.y, b.reqs = nil, 0, b.x[:0], b.y[:0], b.reqs[:0]
	m.pool.Put(b)
}

// drop counts a buffer the aggregator could not take.
func (m *Monitor) drop(b *buffer) {
	m.droppedReqs.Add(int64(len(b.reqs)))
	m.droppedRows.Add(int64(b.rows))
	m.release(b)
}
