// Package batcher coalesces concurrent prediction requests into larger
// batches for runtimes that predict many rows faster than the same rows one
// request at a time (adaptive batching, issue 5 item 6).
//
// A Batcher wraps any serving.Predictor and is itself one, so a deployment
// can put it in front of a runtime without the callers noticing. A single
// dispatcher goroutine collects requests; a fixed pool of workers calls the
// wrapped predictor once per batch and scatters the outputs back to the
// callers. A batch closes when it holds MaxBatchSize rows, when its oldest
// request has waited MaxDelay, or at once when no batch is in flight and no
// other request is queued: under low load a request is never delayed, and
// batches grow only while the workers are busy.
package batcher

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// Defaults applied by New to zero (or negative) Config fields.
const (
	DefaultMaxBatchSize = 64
	DefaultMaxDelay     = 2 * time.Millisecond
)

// Config tunes a Batcher. Zero fields take their defaults.
type Config struct {
	// MaxBatchSize is the most rows one call of the wrapped predictor
	// receives (default DefaultMaxBatchSize). A request with more rows is
	// predicted on its own, directly in the caller's goroutine.
	MaxBatchSize int
	// MaxDelay is the longest a queued request waits for others to join its
	// batch while a batch is already in flight (default DefaultMaxDelay).
	// Until it passes, one batch at a time is in flight at moderate load;
	// a MaxDelay below the wrapped predictor's latency lets a second batch
	// start on a free worker, which suits runtimes that wait on I/O (a
	// model server in another process) more than on the CPU.
	MaxDelay time.Duration
	// Workers is how many batches may be predicted at once (default
	// runtime.GOMAXPROCS(0)).
	Workers int
	// Logger receives a record when the wrapped predictor panics (default
	// slog.Default()).
	Logger *slog.Logger
}

// Batcher is a serving.Predictor that batches the rows of concurrent
// requests into one call of the predictor it wraps. It is safe for
// concurrent use. Close stops it.
type Batcher struct {
	p        serving.Predictor
	cols     int
	outputs  int
	maxRows  int
	maxDelay time.Duration
	workers  int
	log      *slog.Logger

	in   chan *request   // callers → dispatcher
	work chan []*request // dispatcher → workers; one batch per send
	idle chan []*request // workers → dispatcher: a finished batch's slice, emptied

	requests sync.Pool // of *request

	queued  atomic.Int64  // rows the dispatcher holds, not yet in a batch
	batches atomic.Uint64 // wrapped Predict calls made for batches
	rows    atomic.Uint64 // rows predicted in those calls

	mu        sync.Mutex // guards closed and the Add side of callers
	closed    bool
	callers   sync.WaitGroup // callers between their closed check and their hand-off
	closeOnce sync.Once
	done      sync.WaitGroup // dispatcher and workers
}

var _ serving.Predictor = (*Batcher)(nil)

// Stats are a Batcher's counters, for metrics and tests.
type Stats struct {
	// QueuedRows is how many rows wait for a batch now.
	QueuedRows int64
	// Batches is how many times the wrapped predictor was called for a
	// batch (requests larger than MaxBatchSize are not counted).
	Batches uint64
	// Rows is how many rows those batches held.
	Rows uint64
}

// Stats returns the Batcher's counters.
func (b *Batcher) Stats() Stats {
	return Stats{QueuedRows: b.queued.Load(), Batches: b.batches.Load(), Rows: b.rows.Load()}
}

// request is one caller's Predict waiting in the queue. Its mutex guards the
// caller's buffers against the worker: the worker reads b and writes out only
// while holding it and only when abandoned is false; a caller whose context
// ends before the worker has answered sets abandoned and may reuse its
// buffers at once. Requests are pooled: a caller returns one to the pool once
// it has received the worker's answer, the worker's last touch of it.
type request struct {
	b       serving.Batch
	out     []float32
	arrived time.Time // set by the dispatcher

	mu        sync.Mutex
	abandoned bool       // the caller has gone; set only before answered
	answered  bool       // out is written and the result is being sent
	result    chan error // buffered 1; receives once, unless abandoned first
}

// New returns a Batcher in front of p, started. Call Close to stop it.
func New(p serving.Predictor, cfg Config) *Batcher {
	if cfg.MaxBatchSize <= 0 {
		cfg.MaxBatchSize = DefaultMaxBatchSize
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = DefaultMaxDelay
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	b := &Batcher{
		p:        p,
		cols:     len(p.Features()),
		outputs:  p.Outputs(),
		maxRows:  cfg.MaxBatchSize,
		maxDelay: cfg.MaxDelay,
		workers:  cfg.Workers,
		log:      cfg.Logger,
		in:       make(chan *request, cfg.MaxBatchSize),
		work:     make(chan []*request),
		idle:     make(chan []*request, cfg.Workers),
	}
	b.done.Add(1 + cfg.Workers)
	go b.dispatch()
	for range cfg.Workers {
		go b.worker()
	}
	return b
}

// Features returns the wrapped predictor's input columns.
func (b *Batcher) Features() []serving.Feature { return b.p.Features() }

// Outputs returns the wrapped predictor's number of outputs per row.
func (b *Batcher) Outputs() int { return b.outputs }

// Predict queues the rows of batch and returns once their outputs are in out
// (b.Rows×Outputs() values, row-major) or ctx ends. A batch with the wrong
// shape is EINVALID; after Close, Predict is EUNAVAILABLE. An error of the
// wrapped predictor reaches every request of the batch it predicted. When
// ctx ends first Predict returns ctx's error, wrapped; the rows may still be
// computed, but out is not written after Predict returns.
func (b *Batcher) Predict(ctx context.Context, batch serving.Batch, out []float32) error {
	if batch.Cols != b.cols {
		return mloop.Errorf(mloop.EINVALID, "model expects %d features per row, got %d", b.cols, batch.Cols)
	}
	if err := batch.Check(); err != nil {
		return err
	}
	if len(out)%b.outputs != 0 || len(out)/b.outputs != batch.Rows {
		return mloop.Errorf(mloop.EINVALID, "output buffer holds %d values, want %d (%d rows × %d outputs)", len(out), batch.Rows*b.outputs, batch.Rows, b.outputs)
	}
	if err := b.enter(); err != nil {
		return err
	}
	if batch.Rows == 0 {
		b.callers.Done()
		return nil
	}
	if batch.Rows > b.maxRows {
		// Too large to share a batch: predict it alone, straight into the
		// caller's buffer. Close still waits for it through callers.
		defer b.callers.Done()
		if err := b.p.Predict(ctx, batch, out); err != nil {
			return fmt.Errorf("predict %d rows unbatched: %w", batch.Rows, err)
		}
		return nil
	}
	r, _ := b.requests.Get().(*request)
	if r == nil {
		r = &request{result: make(chan error, 1)}
	}
	r.b, r.out = batch, out
	select {
	case b.in <- r:
		b.callers.Done()
	case <-ctx.Done():
		b.callers.Done()
		b.recycle(r)
		return fmt.Errorf("queue prediction: %w", ctx.Err())
	}
	select {
	case err := <-r.result:
		b.recycle(r)
		return err
	case <-ctx.Done():
	}
	// From here on the worker must not touch the caller's buffers. If it has
	// already written out, its answer is on the way and is the one to return.
	r.mu.Lock()
	answered := r.answered
	r.abandoned = !answered
	r.mu.Unlock()
	if answered {
		err := <-r.result
		b.recycle(r)
		return err
	}
	// The worker still holds r and will look at it once more, so it is left
	// to the garbage collector rather than reused.
	return fmt.Errorf("wait for batched prediction: %w", ctx.Err())
}

// recycle returns a request that no worker refers to any more to the pool.
func (b *Batcher) recycle(r *request) {
	r.b, r.out, r.arrived = serving.Batch{}, nil, time.Time{}
	r.abandoned, r.answered = false, false
	b.requests.Put(r)
}

// enter registers a caller unless the Batcher is closed; the caller calls
// b.callers.Done once its request is handed to the dispatcher (or given up).
func (b *Batcher) enter() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return mloop.Errorf(mloop.EUNAVAILABLE, "the batcher is closed; the deployment is shutting down, retry on another replica")
	}
	b.callers.Add(1)
	return nil
}

// Close stops accepting requests, finishes every queued one, and returns once
// the dispatcher and the workers have exited. It does not close the wrapped
// predictor. Close is idempotent and always returns nil; it has an error
// result so that a Batcher is an io.Closer.
func (b *Batcher) Close() error {
	b.closeOnce.Do(func() {
		b.mu.Lock()
		b.closed = true
		b.mu.Unlock()
		// No caller can enter now; once the ones inside have handed their
		// requests over (the dispatcher keeps receiving), nobody sends on in.
		b.callers.Wait()
		close(b.in)
	})
	b.done.Wait()
	return nil
}

// dispatch is the dispatcher goroutine: it owns the queue of pending
// requests and decides when a batch closes.
func (b *Batcher) dispatch() {
	defer b.done.Done()
	var (
		pending     []*request
		pendingRows int
		busy        int // batches handed to workers and not yet finished
		free        = make([][]*request, 0, b.workers)
		closing     bool
		in          = b.in
		timer       = time.NewTimer(time.Hour)
		timerOn     bool
	)
	timer.Stop()
	defer timer.Stop()
	for range b.workers {
		free = append(free, make([]*request, 0, b.maxRows))
	}
	add := func(r *request) {
		r.arrived = time.Now()
		pending = append(pending, r)
		pendingRows += r.b.Rows
		b.queued.Add(int64(r.b.Rows))
	}
	// drain takes whatever callers have already queued, without waiting.
	drain := func() {
		for in != nil && pendingRows < b.maxRows {
			select {
			case r, ok := <-in:
				if !ok {
					in, closing = nil, true
					return
				}
				add(r)
			default:
				return
			}
		}
	}
	for {
		// Hand out as many batches as the rules allow.
		for len(pending) > 0 && busy < b.workers {
			ready := closing || pendingRows >= b.maxRows || busy == 0
			if !ready && !time.Now().Before(pending[0].arrived.Add(b.maxDelay)) {
				ready = true
			}
			if !ready {
				break
			}
			batch := free[len(free)-1]
			free = free[:len(free)-1]
			rows, n := 0, 0
			for n < len(pending) && rows+pending[n].b.Rows <= b.maxRows {
				rows += pending[n].b.Rows
				batch = append(batch, pending[n])
				n++
			}
			clear(pending[:n])
			pending = pending[:copy(pending, pending[n:])]
			pendingRows -= rows
			b.queued.Add(-int64(rows))
			busy++
			b.work <- batch
		}
		if closing && len(pending) == 0 && busy == 0 {
			close(b.work)
			return
		}
		// Wake up for the oldest request's deadline when a worker is free to
		// take it; otherwise only a finished batch or a new request matters.
		if len(pending) > 0 && busy < b.workers {
			wait := pending[0].arrived.Add(b.maxDelay).Sub(time.Now())
			timer.Reset(max(wait, 0))
			timerOn = true
		} else if timerOn {
			timer.Stop()
			timerOn = false
		}
		select {
		case r, ok := <-in:
			if !ok {
				in, closing = nil, true
				continue
			}
			add(r)
			drain()
		case s := <-b.idle:
			busy--
			free = append(free, s)
			drain()
		case <-timer.C:
			timerOn = false
		}
	}
}

// worker predicts the batches the dispatcher hands it, each with buffers
// of its own sized for MaxBatchSize rows.
func (b *Batcher) worker() {
	defer b.done.Done()
	values := make([]float32, b.maxRows*b.cols)
	out := make([]float32, b.maxRows*b.outputs)
	for batch := range b.work {
		b.run(batch, values, out)
		clear(batch)
		b.idle <- batch[:0]
	}
}

// run predicts one batch: it copies the rows of the requests still waiting
// into values, calls the wrapped predictor once, and copies each request's
// outputs back.
func (b *Batcher) run(batch []*request, values, out []float32) {
	rows := 0
	live := batch[:0]
	for _, r := range batch {
		r.mu.Lock()
		if !r.abandoned {
			copy(values[rows*b.cols:], r.b.Values)
			rows += r.b.Rows
			live = append(live, r)
		}
		r.mu.Unlock()
	}
	if len(live) == 0 {
		return
	}
	b.batches.Add(1)
	b.rows.Add(uint64(rows))
	err := b.predict(serving.Batch{Rows: rows, Cols: b.cols, Values: values[:rows*b.cols]}, out[:rows*b.outputs])
	if err != nil {
		err = fmt.Errorf("predict batch of %d rows from %d requests: %w", rows, len(live), err)
	}
	at := 0
	for _, r := range live {
		n := r.b.Rows * b.outputs
		r.mu.Lock()
		answer := !r.abandoned
		if answer {
			if err == nil {
				copy(r.out, out[at:at+n])
			}
			r.answered = true
		}
		r.mu.Unlock()
		at += n
		if answer {
			// The last touch of r: once the caller receives, it may reuse r.
			r.result <- err
		}
	}
}

// predict calls the wrapped predictor, turning a panic into an EINTERNAL
// error so that one bad batch cannot take the process down or leave its
// callers waiting.
func (b *Batcher) predict(batch serving.Batch, out []float32) (err error) {
	defer func() {
		if v := recover(); v != nil {
			b.log.Error("batched predictor panicked", "rows", batch.Rows, "panic", v, "stack", string(debug.Stack()))
			err = mloop.Errorf(mloop.EINTERNAL, "the model runtime failed on a batch of %d rows", batch.Rows)
		}
	}()
	return b.p.Predict(context.Background(), batch, out)
}
