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
// the last ETag in a goroutine; Sync does one non-waiting fetch and apply,
// and returns once what it fetched is served. Applying a State never
// blocks requests, and never waits for loads: every revision (a
// deployment's slot serving one model version) that is new is loaded in
// the background, in parallel, and each deployment swaps its table on its
// own once the revisions it names are loaded (or failed), unless a newer
// State for it came first (then that one is swapped in when ready). So a
// slow load delays only its own deployment, and neither later changes nor
// the canary checks. A revision's files are fetched with ControlPlane.FetchModel
// into CacheDir/models/<model>/<version>/ (once; a complete folder is
// reused, including across restarts), its flavor detected, an XGBoost model
// loaded (behind an adaptive batcher when the deployment asks for
// batching) and warmed by predicting one row, or a process model's command
// started from its serve.json and waited for until ready. A revision that
// fails to load is reported as failed with the reason in Status and tried
// again when its deployment changes (a new generation), and without one
// after a backoff that starts at LoadRetry and doubles up to 5 minutes.
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
// the request and waits for it: no request that ends within DrainTimeout
// reaches a closed runtime. After Close, requests (in flight ones that
// had not picked a revision yet included) get 503 with Retry-After.
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
// header, else a generated id; cut to 128 bytes). GET /v2/health/ready is
// the replica's readiness: 200 once the first Sync has returned, until
// Close; a deployment that is loading or failed shows in its own
// /v2/models/NAME/ready, not there. Errors are 400 for a body that does not fit
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
// queue (ShadowQueue copies, or ShadowQueueBytes of memory held by the
// copies waiting and running) drops the copy and counts it, so the client
// never waits on the shadow. A worker runs the shadow, compares its outputs with the
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
// # Monitoring
//
// With Config.Monitor set, every request a primary or a canary answered is
// observed once it is answered (before the payload log takes its slices):
// native revisions hand over the decoded inputs and the outputs; process
// revisions' OIP requests are decoded (their tensors, as for the payload
// log) and their answers read for the outputs, while their KServe V1 and
// MLflow requests are observed without rows (status and latency only).
// Observations come from a pool and carry strings the revision holds, so
// observing allocates nothing on the router's side. Shadow runs are not
// observed.
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
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// Defaults of Config's zero fields.
const (
	DefaultWait             = 30 * time.Second
	DefaultRetryInterval    = time.Second
	DefaultCheckInterval    = time.Second
	DefaultDrainTimeout     = 30 * time.Second
	DefaultLoadRetry        = 5 * time.Second
	DefaultMaxBodyBytes     = 32 << 20
	DefaultShadowQueue      = 1024
	DefaultShadowQueueBytes = 64 << 20
	DefaultShadowWorkers    = 2
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
	// loaded again when its deployment does not change first (default
	// 5s); it doubles after each failure, up to 5 minutes.
	LoadRetry time.Duration
	// MaxBodyBytes bounds a request body (default 32 MiB); a larger one
	// gets 413.
	MaxBodyBytes int64
	// ShadowQueue is how many request copies may wait for a deployment's
	// shadow (default 1024); more are dropped and counted.
	ShadowQueue int
	// ShadowQueueBytes bounds the memory that a deployment's request
	// copies hold while they wait for or run on its shadow (default 64
	// MiB); a copy that would go over it is dropped and counted.
	ShadowQueueBytes int64
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
	// Monitor, when set, observes every request a primary or a canary
	// answered (errors included; shadow runs are not observed): the
	// deployment, revision, model version, request id, decoded inputs,
	// outputs, status and latency. nil observes nothing. Observe must not
	// keep the observation or its slices (*monitor.Monitor copies them).
	Monitor interface{ Observe(*monitor.Observation) }
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

	// deps maps deployment names to deployments; it is replaced (under
	// mu), never modified, so that requests read it without a lock.
	deps atomic.Pointer[map[string]*deployment]
	// synced is set once a Sync has returned: readiness waits for it.
	synced atomic.Bool
	closed atomic.Bool

	// ctx lives until Close: it bounds loads, shadow workers and the
	// background goroutines.
	ctx    context.Context
	cancel context.CancelFunc

	// applyMu serializes applying states (a short critical section: loads
	// run outside it).
	applyMu  sync.Mutex
	etag     string       // of the last State applied (under applyMu)
	applySeq int64        // states applied (under applyMu)
	retryAt  atomic.Int64 // Unix nanos when failed revisions are due again; 0 when none failed

	// mu guards revs, each deployment's desired state, and the swap of
	// its tables.
	mu   sync.Mutex
	revs map[revKey]*revision

	drains   sync.WaitGroup // revisions being drained and closed
	loops    sync.WaitGroup // follow and check loops
	shadowWG sync.WaitGroup // shadow workers

	// bg counts the goroutines waiting for loads to swap a table, and
	// the asynchronous syncs; bgMu orders their start with Close.
	bgMu sync.Mutex
	bg   sync.WaitGroup

	// pollCancel ends the follow loop's current long poll, so that it
	// computes its wait again (a failed load is due sooner).
	pollMu     sync.Mutex
	pollCancel context.CancelFunc

	openMu sync.Mutex
	opened bool

	hooks testHooks
}

// testHooks let tests run code at points where races would happen; nil
// in production.
type testHooks struct {
	// afterOpenSync runs in Open once its Sync returned, before the
	// loops start.
	afterOpenSync func()
	// beforeStore runs in a swap, under the deployment's tripMu, just
	// before the new table is stored.
	beforeStore func(*deployment)
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
	if cfg.ShadowQueueBytes <= 0 {
		cfg.ShadowQueueBytes = DefaultShadowQueueBytes
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
	err := r.Sync(ctx)
	if err == nil && r.hooks.afterOpenSync != nil {
		r.hooks.afterOpenSync()
	}
	if err == nil && r.closed.Load() {
		// Close ran meanwhile; it waits for openMu before it waits for
		// the loops, so none may start now.
		err = mloop.Errorf(mloop.EUNAVAILABLE, "the router was closed while it opened; create a new one")
	}
	if err != nil {
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
	// An Open in progress returns first (its Sync ends with r.ctx); it
	// starts no loop once closed is set.
	r.openMu.Lock()
	opened := r.opened
	r.openMu.Unlock()
	r.loops.Wait()
	// No background goroutine starts once closed is set under bgMu.
	r.bgMu.Lock()
	r.bgMu.Unlock()
	r.bg.Wait()
	// Retire every deployment and revision.
	r.applyMu.Lock()
	r.mu.Lock()
	old := *r.deps.Load()
	empty := map[string]*deployment{}
	r.deps.Store(&empty)
	for _, d := range old {
		r.removeLocked(d)
	}
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
	if opened && r.metrics != nil {
		r.metrics.unregister(r.cfg.Registerer)
	}
	return err
}

// errClosed is the error of a call on a closed router.
func errClosed() error { return mloop.Errorf(mloop.EUNAVAILABLE, "the router is closed") }

// goBG runs f in a background goroutine that Close waits for, unless the
// router is closed: then it reports false and runs nothing.
func (r *Router) goBG(f func()) bool {
	r.bgMu.Lock()
	defer r.bgMu.Unlock()
	if r.closed.Load() {
		return false
	}
	r.bg.Add(1)
	go func() {
		defer r.bg.Done()
		f()
	}()
	return true
}

// Sync fetches the current state without waiting and applies it; it
// returns once every revision in it is loaded (or failed to load: see
// Status) and each deployment serves what the state asks for (or a newer
// state, applied meanwhile, does). It fails only when the state cannot be
// fetched, the router is closed, or ctx ends.
func (r *Router) Sync(ctx context.Context) error {
	if r.closed.Load() {
		return errClosed()
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(r.ctx, cancel)
	defer stop()
	targets, err := r.syncOnce(ctx)
	if err != nil {
		return err
	}
	if err := r.waitApplied(ctx, targets); err != nil {
		if r.closed.Load() {
			return errClosed()
		}
		return err
	}
	r.synced.Store(true)
	return nil
}

// syncOnce fetches the current state and applies it, without waiting for
// its loads.
func (r *Router) syncOnce(ctx context.Context) ([]target, error) {
	r.applyMu.Lock()
	defer r.applyMu.Unlock()
	if r.closed.Load() {
		return nil, errClosed()
	}
	st, err := r.cp.State(ctx, "", 0)
	if err != nil {
		if r.closed.Load() {
			return nil, errClosed()
		}
		return nil, fmt.Errorf("fetch serving state: %w", err)
	}
	if r.closed.Load() {
		return nil, errClosed()
	}
	return r.apply(st), nil
}

// syncAsync applies the current state in the background (after Check
// asked for a rollback), so that the caller does not wait for loads, nor
// for a state being applied.
func (r *Router) syncAsync() {
	r.goBG(func() {
		if _, err := r.syncOnce(r.ctx); err != nil && r.ctx.Err() == nil {
			r.log.Warn("sync after a rollback; the next poll retries", "err", err)
		}
	})
}

// target is a deployment's desired state that a Sync waits for.
type target struct {
	d   *deployment
	seq int64
}

// waitApplied waits until every target is applied (or superseded by a
// newer one that is), or its deployment removed.
func (r *Router) waitApplied(ctx context.Context, targets []target) error {
	for _, tg := range targets {
		for {
			r.mu.Lock()
			done, ch := tg.d.removed || tg.d.applied >= tg.seq, tg.d.appliedCh
			r.mu.Unlock()
			if done {
				break
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// follow long-polls the control plane and applies each new state, until
// Close.
func (r *Router) follow() {
	defer r.loops.Done()
	ctx := r.ctx
	for ctx.Err() == nil {
		// The poll's context exists before retryAt is read, so that a
		// wake after the read ends the poll.
		pctx, cancel := context.WithCancel(ctx)
		r.pollMu.Lock()
		r.pollCancel = cancel
		r.pollMu.Unlock()
		r.applyMu.Lock()
		etag, seq := r.etag, r.applySeq
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
		st, err := r.cp.State(pctx, etag, wait)
		woken := pctx.Err() != nil
		r.pollMu.Lock()
		r.pollCancel = nil
		r.pollMu.Unlock()
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if woken {
				continue
			}
			r.log.Warn("fetch serving state from the control plane; retrying", "err", err, "retry_in", r.cfg.RetryInterval)
			sleep(ctx, r.cfg.RetryInterval)
			continue
		}
		r.applyMu.Lock()
		// A Sync may have applied a newer state while this poll waited:
		// then this one may be older, and the next poll tells.
		if !r.closed.Load() && r.applySeq == seq && (st.ETag != r.etag || due || r.retryDue()) {
			r.apply(st)
		}
		r.applyMu.Unlock()
	}
}

// wake ends the follow loop's current long poll, so that it computes its
// wait again.
func (r *Router) wake() {
	r.pollMu.Lock()
	defer r.pollMu.Unlock()
	if r.pollCancel != nil {
		r.pollCancel()
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

// pending is a deployment's desired state waiting for its revisions.
type pending struct {
	d          *deployment
	seq        int64
	spec       *deploy.Deployment
	revs       []*revision
	superseded chan struct{}
}

// apply makes st what the router serves (under applyMu, quickly): it
// starts loading the new revisions, records each deployment's desired
// state, swaps at once the tables whose revisions are all loaded (or
// failed) and leaves the others to a goroutine that swaps when they are
// (unless a newer state supersedes them first), removes deleted
// deployments, and drains the revisions no longer used. A revision that
// failed to load is loaded again when its deployment changed (a new
// generation) or its backoff has passed. It returns what Sync waits for.
func (r *Router) apply(st *deploy.State) []target {
	now := time.Now()
	deps := *r.deps.Load()
	next := make(map[string]*deployment, len(st.Deployments))
	var targets []target
	var pendings []*pending

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
		changed := d.desired == nil || d.desired.Generation != sd.Generation
		revs := make([]*revision, 0, len(sd.Slots))
		for _, slot := range sd.Slots {
			key := keyOf(sd, slot)
			rev := r.revs[key]
			if rev == nil || rev.state() == stateFailed && (changed || !now.Before(rev.retryAt)) {
				attempts := 0
				if rev != nil {
					attempts = rev.attempts
				}
				rev = r.newRevision(key, sd, slot, attempts)
				r.revs[key] = rev
				go r.load(rev, sd.Spec)
			}
			revs = append(revs, rev)
		}
		if changed || !slices.Equal(revs, d.wanted) {
			d.want++
			if d.superseded != nil {
				close(d.superseded)
			}
			d.superseded = make(chan struct{})
			d.desired, d.wanted = sd, revs
			pendings = append(pendings, &pending{d: d, seq: d.want, spec: sd, revs: revs, superseded: d.superseded})
		}
		targets = append(targets, target{d, d.want})
	}
	// Publish new deployments (they answer 503 while loading) and remove
	// deleted ones, under mu so that collect sees deps and revs agree.
	r.deps.Store(&next)
	for name, d := range deps {
		if next[name] == nil {
			r.removeLocked(d)
			r.log.Info("deployment removed", "deployment", name)
		}
	}
	r.mu.Unlock()

	for _, p := range pendings {
		if p.loaded() {
			r.commit(p)
		} else if !r.goBG(func() { r.await(p) }) {
			break // closed
		}
	}
	r.etag = st.ETag
	r.applySeq++
	r.collect()
	return targets
}

// loaded reports whether every revision of p has finished loading.
func (p *pending) loaded() bool {
	for _, rev := range p.revs {
		if rev.state() == stateLoading {
			return false
		}
	}
	return true
}

// await waits for p's revisions to load, then swaps p's table in, unless
// a newer state supersedes p first.
func (r *Router) await(p *pending) {
	for _, rev := range p.revs {
		select {
		case <-rev.done:
		case <-p.superseded:
			return
		case <-r.ctx.Done():
			return
		}
	}
	r.commit(p)
	r.collect()
}

// commit swaps p's table in if p is still its deployment's desired state,
// and marks it applied.
func (r *Router) commit(p *pending) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := p.d
	if d.removed || d.want != p.seq {
		return
	}
	r.swapLocked(d, p.spec, p.revs)
	d.applied = p.seq
	close(d.appliedCh)
	d.appliedCh = make(chan struct{})
}

// collect retires the revisions that no table references and no
// deployment wants, and schedules the next load of failed revisions.
func (r *Router) collect() {
	var retire []*revision
	var nextRetry time.Time
	used := make(map[*revision]bool)
	r.mu.Lock()
	for _, d := range *r.deps.Load() {
		for _, e := range d.table.Load().entries {
			used[e.rev] = true
		}
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
	} else if at := nextRetry.UnixNano(); r.retryAt.Swap(at) != at {
		r.wake() // the follow loop's wait may end later than this
	}
	for _, rev := range retire {
		r.retire(rev)
	}
}

// removeLocked stops serving d (already out of r.deps; under mu):
// requests get 404, its shadow workers stop, a Sync waiting for it
// returns, and its series are deleted. Its revisions are retired by the
// caller.
func (r *Router) removeLocked(d *deployment) {
	d.removed = true
	close(d.appliedCh)
	d.appliedCh = make(chan struct{})
	if d.superseded != nil {
		close(d.superseded)
		d.superseded = nil
	}
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
