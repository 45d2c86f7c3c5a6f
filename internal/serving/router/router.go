// Package router is the serving data plane: it follows the control plane's
// deployment State, loads each revision's model (native XGBoost, or a
// supervised process), and answers prediction requests over the Open
// Inference Protocol, KServe V1 and MLflow scoring. It splits traffic
// between a primary and a canary, mirrors it to a shadow (whose answers are
// compared with the primary's and discarded), honours a header that pins a
// request to a revision, logs payloads, exports Prometheus metrics, and
// rolls a failing canary back on its own.
//
// # Following the control plane
//
// Open fetches the State once and then long-polls ControlPlane.State with
// the last ETag in a goroutine; Sync does one non-waiting fetch and apply.
// Applying a State never blocks requests: every revision (a deployment's
// slot serving one model version) that is new is loaded outside the hot
// path, in parallel: its files are fetched with ControlPlane.FetchModel
// into CacheDir/models/<model>/<version>/ (once; a complete folder is
// reused, including across restarts), its flavor detected, an XGBoost model
// loaded (behind an adaptive batcher when the deployment asks for
// batching) and warmed by predicting one row, or a process model's command
// started from its serve.json and waited for until ready. A revision that
// fails to load is reported as failed with the reason in Status and tried
// again on the next State change, and without one after a backoff that
// starts at LoadRetry and doubles up to 5 minutes.
//
// # Swap and drain
//
// Each deployment has an immutable routing table behind an atomic pointer.
// A new table is built once the revisions it names are ready, and swapped
// in at once; a deployment whose new primary failed to load keeps serving
// its previous table, and a new deployment whose primary failed answers 503
// with the load error. Revisions no longer referenced are then drained and
// closed in the background: a request takes a reference on the revision it
// picked (an in-flight count) and checks the revision's closing flag after
// taking it; the drainer sets the flag after the swap and waits for the
// count to reach zero (at most DrainTimeout) before it closes the runtime.
// Both sides use sequentially consistent atomics, so either the request
// sees the flag and picks again from the new table, or the drainer sees
// the request and waits for it: no request ever reaches a closed runtime.
//
// # Requests
//
// Handler serves, for each deployment NAME:
//
//	GET  /v2, /v2/health/live, /v2/health/ready
//	GET  /v2/models/NAME[/versions/V]          OIP model metadata
//	GET  /v2/models/NAME[/versions/V]/ready
//	POST /v2/models/NAME[/versions/V]/infer    OIP inference
//	POST /v1/models/NAME:predict               KServe V1
//	GET  /v1/models/NAME                       KServe V1 model status
//	POST /serving-endpoints/NAME/invocations   MLflow scoring format
//
// A request goes to the canary with the canary's percent probability, else
// to the primary. The header X-Mloop-Revision pins it to a revision number
// or to a role (primary, canary, or shadow: then the shadow answers); a
// /versions/V path pins it to the slot serving model version V (and
// takes precedence over the header). Responses carry X-Mloop-Revision
// (the revision that answered), X-Mloop-Model-Version (model/version) and
// X-Request-Id (the OIP request's "id", else the request's X-Request-Id
// header, else a generated id). Errors are 400 for a body that does not fit
// the model (naming the input), 413 for a body over MaxBodyBytes, 404 for an
// unknown deployment, revision or version, 503 while a deployment loads, and
// 500 when the runtime fails; their body is {"error": "…"} (MLflow's
// {"error_code": …, "message": …} on the MLflow path).
//
// Native (XGBoost) revisions decode the body with package protocol, predict
// and encode the answer in the same protocol. A process revision serves
// the model under the deployment's name (MLOOP_MODEL_NAME is the deployment
// name), so OIP bodies are proxied unchanged to /v2/models/NAME/infer of
// the process (metadata requests to /v2/models/NAME), whatever version the
// client named; KServe V1 and MLflow bodies are proxied unchanged to the
// same path the client used, /v1/models/NAME:predict, and to /invocations,
// for a process that speaks those protocols too (the process's answer,
// errors included, goes back to the client).
//
// # Shadow, statistics and automatic rollback
//
// Once the primary has answered, a copy of the request (its body and the
// primary's outputs) is queued for the deployment's shadow workers; a full
// queue drops the copy and counts it, so the client never waits on the
// shadow. A worker runs the shadow, compares its outputs with the
// primary's (rows compared, rows agreeing, mean absolute difference per
// output value; see Agreement) and records its latency and errors (any
// refusal counts: the primary took the same request). A process shadow
// receives OIP requests only (other protocols' answers cannot be
// compared).
//
// Every answered request is counted in its revision's Window (5xx answers
// and runtime failures count as errors, 4xx are the client's). Every
// CheckInterval each canary is judged against its primary with the
// deployment's RollbackPolicy (see Judge); a canary that breaks it stops
// receiving traffic at once and ControlPlane.Rollback is called with
// IfCanaryRevision, so a stale decision never removes a newer canary (a
// failed call is retried at the next check).
//
// # Payload log and metrics
//
// Answered requests (and shadow runs, under the shadow's revision) are
// given to Config.Payloads at the deployment's payload_sample rate,
// chosen by a hash of the request id (payloadlog.Keep), so every replica
// keeps the same requests; the decoded inputs and the outputs are handed
// over, not copied. Open registers on Config.Registerer:
//
//	mloop_serving_requests_total{deployment,revision,model_version,role,code}
//	mloop_serving_request_duration_seconds{deployment,revision,model_version,role}  histogram, 100µs to 10s
//	mloop_serving_in_flight{deployment,revision,model_version,role}
//	mloop_serving_revision_ready{deployment,revision,model_version,role}
//	mloop_serving_shadow_compared_rows_total, _shadow_agreed_rows_total,
//	  _shadow_errors_total, _shadow_duration_seconds{deployment,revision,model_version}
//	mloop_serving_shadow_dropped_total{deployment}
//	mloop_serving_rollbacks_total{deployment}
//	mloop_payload_log_queue_depth, _dropped_total, _written_total, _lost_total  (with Payloads)
//
// Label children are resolved when a routing table starts using a
// revision in a role and deleted when no table does, so the hot path looks
// up no label; in-flight and ready gauges are read from the revisions at
// scrape time. Requests that reach no revision (unknown deployment, a
// deployment still loading) are not counted.
package router

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// Defaults of Config's zero fields.
const (
	DefaultWait          = 30 * time.Second
	DefaultRetryInterval = time.Second
	DefaultCheckInterval = time.Second
	DefaultDrainTimeout  = 30 * time.Second
	DefaultLoadRetry     = 5 * time.Second
	DefaultMaxBodyBytes  = 32 << 20
	DefaultShadowQueue   = 1024
	DefaultShadowWorkers = 2
	// maxLoadRetry bounds the backoff between attempts to load a failed
	// revision.
	maxLoadRetry = 5 * time.Minute
)

// Config adjusts a Router. Zero values take the defaults.
type Config struct {
	// CacheDir is where model files are fetched to (required).
	CacheDir string
	// Wait is how long one long poll of the control plane may wait for a
	// change (default 30s).
	Wait time.Duration
	// RetryInterval is the pause after a failed poll (default 1s).
	RetryInterval time.Duration
	// CheckInterval is how often canaries are judged (default 1s).
	CheckInterval time.Duration
	// DrainTimeout bounds how long a replaced revision waits for its
	// in-flight requests before it is closed (default 30s).
	DrainTimeout time.Duration
	// LoadRetry is the pause before a revision that failed to load is
	// loaded again when no State change comes first (default 5s); it
	// doubles after each failure, up to 5 minutes.
	LoadRetry time.Duration
	// MaxBodyBytes bounds a request body (default 32 MiB); a larger one
	// gets 413.
	MaxBodyBytes int64
	// ShadowQueue is how many request copies may wait for a deployment's
	// shadow (default 1024); more are dropped and counted.
	ShadowQueue int
	// ShadowWorkers is how many copies a deployment's shadow runs at once
	// (default 2).
	ShadowWorkers int
	// Payloads, when set, receives payload records; nil logs nothing. Its
	// own SampleRate should be 1: the router samples each deployment at
	// its payload_sample rate, with the same hash of the request id.
	Payloads *payloadlog.Logger
	// Registerer receives the router's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ProcessOutput receives process runtimes' output; nil discards it.
	ProcessOutput io.Writer
	// Version is the server version reported by GET /v2.
	Version string
}

// Router serves the deployments of a control plane. Create it with New,
// start it with Open (or drive it with Sync), and stop it with Close.
type Router struct {
	cp      deploy.ControlPlane
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics // nil without a Registerer
	ids     idSource

	// deps maps deployment names to deployments; it is replaced, never
	// modified, so that requests read it without a lock.
	deps atomic.Pointer[map[string]*deployment]
	// synced is set once a State has been applied: readiness waits for it.
	synced atomic.Bool
	closed atomic.Bool

	// ctx lives until Close: it bounds loads, shadow workers and the
	// background loops.
	ctx    context.Context
	cancel context.CancelFunc

	applyMu  sync.Mutex // serializes fetch+apply
	etag     string     // of the last State applied (under applyMu)
	applySeq atomic.Int64
	retryAt  atomic.Int64 // Unix nanos when failed revisions are due again; 0 when none failed

	mu   sync.Mutex // guards revs and each deployment's desired slots
	revs map[revKey]*revision

	drains   sync.WaitGroup // revisions being drained and closed
	loops    sync.WaitGroup // follow and check loops
	shadowWG sync.WaitGroup // shadow workers

	openMu sync.Mutex
	opened bool
}

// New returns a Router following cp. Call Open to start it.
func New(cp deploy.ControlPlane, cfg Config) *Router {
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = DefaultRetryInterval
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.LoadRetry <= 0 {
		cfg.LoadRetry = DefaultLoadRetry
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.ShadowQueue <= 0 {
		cfg.ShadowQueue = DefaultShadowQueue
	}
	if cfg.ShadowWorkers <= 0 {
		cfg.ShadowWorkers = DefaultShadowWorkers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	r := &Router{
		cp:   cp,
		cfg:  cfg,
		log:  cfg.Logger,
		revs: make(map[revKey]*revision),
	}
	r.ids.init()
	r.ctx, r.cancel = context.WithCancel(context.Background())
	empty := map[string]*deployment{}
	r.deps.Store(&empty)
	if cfg.Registerer != nil {
		r.metrics = newMetrics(r)
	}
	r.mux = r.routes()
	return r
}

// Open registers the metrics, loads the current state (a deployment that
// fails to load is reported in its status and retried, it does not fail
// Open; a control plane that cannot be reached does), and starts following
// changes and judging canaries in the background until Close.
func (r *Router) Open(ctx context.Context) error {
	r.openMu.Lock()
	defer r.openMu.Unlock()
	if r.opened {
		return mloop.Errorf(mloop.ECONFLICT, "the router is already open")
	}
	if r.closed.Load() {
		return mloop.Errorf(mloop.ECONFLICT, "the router is closed; create a new one")
	}
	if r.cfg.CacheDir == "" {
		return mloop.Errorf(mloop.EINVALID, "the router needs a cache folder for model files (Config.CacheDir)")
	}
	if err := os.MkdirAll(filepath.Join(r.cfg.CacheDir, "models"), 0o755); err != nil {
		return fmt.Errorf("create model cache: %w", err)
	}
	if r.metrics != nil {
		if err := r.metrics.register(r.cfg.Registerer); err != nil {
			return err
		}
	}
	if err := r.Sync(ctx); err != nil {
		if r.metrics != nil {
			r.metrics.unregister(r.cfg.Registerer)
		}
		return fmt.Errorf("load deployments: %w", err)
	}
	r.opened = true
	r.loops.Add(2)
	go r.follow()
	go r.checkLoop()
	return nil
}

// Close stops following, drains in-flight requests (up to ctx) and stops
// every runtime. Requests from then on get 503.
func (r *Router) Close(ctx context.Context) error {
	if r.closed.Swap(true) {
		return nil
	}
	r.cancel()
	r.loops.Wait()
	// Retire every deployment and revision.
	r.applyMu.Lock()
	old := *r.deps.Load()
	empty := map[string]*deployment{}
	r.deps.Store(&empty)
	for _, d := range old {
		r.remove(d)
	}
	r.mu.Lock()
	var revs []*revision
	for k, rev := range r.revs {
		revs = append(revs, rev)
		delete(r.revs, k)
	}
	r.mu.Unlock()
	r.applyMu.Unlock()
	for _, rev := range revs {
		r.retire(rev)
	}
	done := make(chan struct{})
	go func() { r.shadowWG.Wait(); r.drains.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("close router: %w", ctx.Err())
	}
	r.openMu.Lock()
	if r.opened && r.metrics != nil {
		r.metrics.unregister(r.cfg.Registerer)
	}
	r.openMu.Unlock()
	return err
}

// Sync fetches the current state without waiting and applies it; it
// returns once every revision in it is loaded (or failed to load: see
// Status). It fails only when the state cannot be fetched or ctx ends.
func (r *Router) Sync(ctx context.Context) error {
	if r.closed.Load() {
		return mloop.Errorf(mloop.EUNAVAILABLE, "the router is closed")
	}
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	st, err := r.cp.State(ctx, "", 0)
	if err != nil {
		return fmt.Errorf("fetch serving state: %w", err)
	}
	return r.apply(ctx, st)
}

// follow long-polls the control plane and applies each new state, until
// Close.
func (r *Router) follow() {
	defer r.loops.Done()
	ctx := r.ctx
	for ctx.Err() == nil {
		r.applyMu.Lock()
		etag, seq := r.etag, r.applySeq.Load()
		r.applyMu.Unlock()
		wait := r.cfg.Wait
		due := false
		if at := r.retryAt.Load(); at != 0 {
			until := time.Until(time.Unix(0, at))
			if until <= 0 {
				due, wait = true, 0
			} else if until < wait {
				wait = until
			}
		}
		if due {
			etag = "" // fetch at once, and apply even when unchanged
		}
		st, err := r.cp.State(ctx, etag, wait)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("fetch serving state from the control plane; retrying", "err", err, "retry_in", r.cfg.RetryInterval)
			sleep(ctx, r.cfg.RetryInterval)
			continue
		}
		r.applyMu.Lock()
		// A Sync may have applied a newer state while this poll waited:
		// then this one may be older, and the next poll tells.
		if r.applySeq.Load() == seq && (st.ETag != r.etag || due || r.retryDue()) {
			if err := r.apply(ctx, st); err != nil && ctx.Err() == nil {
				r.log.Warn("apply serving state", "err", err)
			}
		}
		r.applyMu.Unlock()
	}
}

// retryDue reports whether failed revisions are due for another load.
func (r *Router) retryDue() bool {
	at := r.retryAt.Load()
	return at != 0 && time.Now().UnixNano() >= at
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// apply makes st what the router serves (under applyMu): it loads the new
// revisions, swaps each deployment's table once its revisions are ready,
// removes deleted deployments, and drains the revisions no longer used.
func (r *Router) apply(ctx context.Context, st *deploy.State) error {
	changed := st.ETag != r.etag
	now := time.Now()
	deps := *r.deps.Load()
	next := make(map[string]*deployment, len(st.Deployments))
	type work struct {
		d    *deployment
		spec *deploy.Deployment
		revs []*revision
	}
	var works []work

	r.mu.Lock()
	for _, sd := range st.Deployments {
		if sd == nil || sd.Name == "" {
			continue
		}
		d := deps[sd.Name]
		if d == nil {
			d = newDeployment(r, sd.Name)
			d.table.Store(&table{name: sd.Name, gen: sd.Generation})
		}
		next[sd.Name] = d
		w := work{d: d, spec: sd}
		for _, slot := range sd.Slots {
			key := keyOf(sd, slot)
			rev := r.revs[key]
			if rev == nil || rev.state() == stateFailed && (changed || now.After(rev.retryAt)) {
				attempts := 0
				if rev != nil {
					attempts = rev.attempts
				}
				rev = r.newRevision(key, sd, slot, attempts)
				r.revs[key] = rev
				go r.load(rev, sd.Spec)
			}
			w.revs = append(w.revs, rev)
		}
		d.desired, d.wanted = sd, w.revs
		works = append(works, w)
	}
	r.mu.Unlock()

	// Publish new deployments (they answer 503 while loading) and remove
	// deleted ones.
	r.deps.Store(&next)
	for name, d := range deps {
		if next[name] == nil {
			r.remove(d)
			r.log.Info("deployment removed", "deployment", name)
		}
	}

	// Load, then swap, each deployment on its own.
	var wg sync.WaitGroup
	var ctxErr atomic.Value
	for _, w := range works {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, rev := range w.revs {
				select {
				case <-rev.done:
				case <-ctx.Done():
					ctxErr.Store(ctx.Err())
					return
				case <-r.ctx.Done():
					ctxErr.Store(r.ctx.Err())
					return
				}
			}
			r.swap(w.d, w.spec, w.revs)
		}()
	}
	wg.Wait()
	r.etag = st.ETag
	r.applySeq.Add(1)
	r.synced.Store(true)
	r.collect()
	if err, _ := ctxErr.Load().(error); err != nil {
		return err
	}
	return nil
}

// collect retires the revisions that no table references and no
// deployment wants, and schedules the next load of failed revisions.
func (r *Router) collect() {
	used := make(map[*revision]bool)
	for _, d := range *r.deps.Load() {
		if t := d.table.Load(); t != nil {
			for _, e := range t.entries {
				used[e.rev] = true
			}
		}
	}
	var retire []*revision
	var nextRetry time.Time
	r.mu.Lock()
	for _, d := range *r.deps.Load() {
		for _, rev := range d.wanted {
			used[rev] = true
			if rev.state() == stateFailed && (nextRetry.IsZero() || rev.retryAt.Before(nextRetry)) {
				nextRetry = rev.retryAt
			}
		}
	}
	for k, rev := range r.revs {
		if !used[rev] {
			delete(r.revs, k)
			retire = append(retire, rev)
		}
	}
	r.mu.Unlock()
	if nextRetry.IsZero() {
		r.retryAt.Store(0)
	} else {
		r.retryAt.Store(nextRetry.UnixNano())
	}
	for _, rev := range retire {
		r.retire(rev)
	}
}

// remove stops serving d (already out of r.deps): requests get 404, its
// shadow workers stop, and its series are deleted. Its revisions are
// retired by the caller.
func (r *Router) remove(d *deployment) {
	old := d.table.Swap(&table{name: d.name, deleted: true})
	d.stopShadow()
	if r.metrics != nil {
		if old != nil {
			for _, e := range old.entries {
				if e.m != nil {
					r.metrics.release(e.m)
				}
			}
		}
		r.metrics.forget(d.name)
	}
}

// lookup returns the named deployment, or nil.
func (r *Router) lookup(name string) *deployment {
	return (*r.deps.Load())[name]
}

// errNotDeployed is the message for an unknown deployment.
func errNotDeployed(name string) string {
	return "no deployment " + strconv.Quote(name) + "; list them with mloop deploy list"
}

// isConflict reports whether err is an ECONFLICT.
func isConflict(err error) bool { return mloop.ErrorCode(err) == mloop.ECONFLICT }
