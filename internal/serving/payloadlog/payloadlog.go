// Package payloadlog records the requests a deployment answers — request id,
// deployment, revision, model version, latency, status, inputs and outputs —
// to the artifact store, for monitoring to read later.
//
// The serving hot path never waits on it: Log is a non-blocking send into a
// bounded queue (bounded in records and in bytes of values), and a record
// that finds the queue full is dropped and counted (Stats.Dropped), never
// waited for. One background writer batches
// the queued records into segments, one per deployment and hour, and writes
// each as zstd-compressed NDJSON under
//
//	payloads/<deployment>/<YYYY>/<MM>/<DD>/<HH>/<unix-nanos>-<seq>.ndjson.zst
//
// when it holds Config.SegmentRecords records, when it is Config.SegmentAge
// old, or on Close. ReadSegment reads a segment back.
//
// Each NDJSON line is one record:
//
//	{"time":"2026-11-26T02:37:13.123456789Z","request_id":"r1","deployment":"flights",
//	 "revision":"3","model_version":"flights/7","latency_us":412,"status":200,
//	 "inputs":[[1.5,null,3]],"outputs":[0.25],"outputs_per_row":1,"error":""}
//
// inputs holds one array per row; outputs is row-major with outputs_per_row
// values per row. A missing value (NaN) is null, and ±Inf is ±1e999.
package payloadlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// Sink is where segments are written. *artifact.Store implements it.
//
// Put stores everything r yields under key, replacing any object there, and
// must honour ctx: the writer cancels it when Close runs out of time. A Put
// error of kind mloop.EINVALID (a key the store rejects) is not retried.
type Sink interface {
	Put(ctx context.Context, key string, r io.Reader) error
}

// Record is one answered (or failed) request.
//
// Log takes ownership of Inputs.Values and Outputs: the caller must not
// modify or reuse them after calling Log, whatever Log returns. A caller that
// decodes requests into reused buffers passes a Clone instead (and may ask
// Wants first, to skip the copy for a request that sampling leaves out).
type Record struct {
	// Time is when the request arrived; Log sets it to Config.Now() when it
	// is zero. It decides the record's hour partition.
	Time time.Time
	// RequestID is the request's id (the protocol's "id", or one the server
	// generated). Sampling hashes it.
	RequestID string
	// Deployment is the deployment that answered, the first partition key.
	Deployment string
	// Revision is the deployment revision that answered (primary, canary or
	// a pinned one).
	Revision string
	// ModelVersion names the model version that answered, such as "flights/7".
	ModelVersion string
	// LatencyMicros is how long the request took, in microseconds.
	LatencyMicros int64
	// Status is the HTTP status of the answer.
	Status int
	// Inputs is the feature matrix the model received; NaN is a missing value.
	Inputs serving.Batch
	// Outputs is the model's answer, row-major, OutputsPerRow values per row
	// (nil when the request failed).
	Outputs []float32
	// OutputsPerRow is how many values the model predicts per row.
	OutputsPerRow int
	// Error is the error message returned to the client, "" on success.
	Error string
}

// Clone returns a copy of r that shares no memory with it, for callers whose
// input or output buffers are reused after the request returns.
func (r Record) Clone() Record {
	c := r
	if r.Inputs.Values != nil {
		c.Inputs.Values = append([]float32(nil), r.Inputs.Values...)
	}
	if r.Outputs != nil {
		c.Outputs = append([]float32(nil), r.Outputs...)
	}
	return c
}

// Config adjusts a Logger. The zero value of each field selects its default.
type Config struct {
	// QueueSize is how many records may wait for the writer; a record that
	// finds the queue full is dropped. Default 10000.
	QueueSize int
	// QueueBytes bounds the memory held by the feature and output values
	// of queued records (4 bytes a value); a record that would exceed it is
	// dropped, so a burst of large batches cannot exhaust memory. Default
	// 256 MiB.
	QueueBytes int64
	// SegmentRecords is how many records a segment holds before it is
	// written. Default 50000.
	SegmentRecords int
	// SegmentAge is how long a segment stays open, from its first record,
	// before it is written. Default one minute.
	SegmentAge time.Duration
	// SegmentBytes is how many uncompressed bytes of NDJSON a segment takes
	// before it is written, so large batches cannot pile up in memory.
	// Default 64 MiB.
	SegmentBytes int64
	// SampleRate is the share of requests logged, in (0, 1]: 1 logs every
	// request, 0.1 one in ten. The choice is deterministic: it hashes the
	// request id, so every replica keeps the same requests (records without
	// a request id are sampled by count instead). Default 1; a value outside
	// (0, 1] is reported on Logger and replaced by 1.
	SampleRate float64
	// Retries is how many times a failed segment write is retried before
	// its records are counted as lost. Default 3.
	Retries int
	// RetryBackoff is the wait before the first retry; it doubles for each
	// further one. Default 200ms.
	RetryBackoff time.Duration
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Logger receives the writer's warnings (lost segments). Default
	// slog.Default().
	Logger *slog.Logger
}

// Stats are a Logger's counters, for metrics. Every record given to Log is
// counted once in Queued, Dropped or Sampled; every queued record ends in
// Written or Lost (or is still in the queue or an open segment).
type Stats struct {
	// Queued counts records accepted into the queue.
	Queued int64
	// Dropped counts records refused because the queue was full (in
	// records or in QueueBytes) or the Logger was closed.
	Dropped int64
	// Sampled counts records left out by sampling.
	Sampled int64
	// Written counts records in segments the Sink accepted.
	Written int64
	// Lost counts queued records that were never written: their segment's
	// writes failed, Close ran out of time, or the writer's context ended.
	Lost int64
	// QueueDepth is how many records wait in the queue now.
	QueueDepth int
	// Segments counts segments the Sink accepted.
	Segments int64
}

// Logger logs records asynchronously to a Sink. Create it with New, start
// its writer with Start and stop it with Close. Log is safe for concurrent
// use.
type Logger struct {
	sink      Sink
	cfg       Config
	log       *slog.Logger
	threshold uint64 // a record is kept when its id's hash is below; 0 keeps all
	queue     chan Record
	nudge     chan struct{} // Log's signal that the queue is half full

	closed   atomic.Bool
	stopped  atomic.Bool  // the writer ended with its context: Log refuses
	inflight atomic.Int64 // Log calls between their closed check and their send
	pending  atomic.Int64 // bytes of values in queued records
	count    atomic.Uint64

	queued, dropped, sampled, written, lost, segments atomic.Int64

	mu      sync.Mutex // guards started, cancel and closing stop
	started bool
	cancel  context.CancelFunc
	stop    chan struct{}
	done    chan struct{}

	// Writer state, used only by the writer goroutine.
	parts   map[partition]*segment
	encs    []*zstd.Encoder // idle encoders, reused
	line    []byte
	seq     uint64
	lastErr error
}

// partition is a segment's deployment and hour.
type partition struct {
	deployment string
	hour       int64 // Unix seconds / 3600, UTC
}

// segment is a partition's open segment: its records, compressed as they
// arrive.
type segment struct {
	buf    bytes.Buffer
	enc    *zstd.Encoder
	n      int
	raw    int64 // uncompressed bytes written
	opened time.Time
}

// New returns a Logger writing to sink. Records may be logged at once; they
// are written once Start runs the writer.
func New(sink Sink, cfg Config) *Logger {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	if cfg.QueueBytes <= 0 {
		cfg.QueueBytes = 256 << 20
	}
	if cfg.SegmentRecords <= 0 {
		cfg.SegmentRecords = 50000
	}
	if cfg.SegmentAge <= 0 {
		cfg.SegmentAge = time.Minute
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 64 << 20
	}
	if cfg.SampleRate == 0 {
		cfg.SampleRate = 1
	}
	if !(cfg.SampleRate > 0 && cfg.SampleRate <= 1) {
		cfg.Logger.Warn("payload log sample rate must be in (0, 1]; logging every request",
			"sample_rate", cfg.SampleRate)
		cfg.SampleRate = 1
	}
	if cfg.Retries < 0 {
		cfg.Retries = 0
	} else if cfg.Retries == 0 {
		cfg.Retries = 3
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 200 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Logger{
		sink:  sink,
		cfg:   cfg,
		log:   cfg.Logger,
		queue: make(chan Record, cfg.QueueSize),
		nudge: make(chan struct{}, 1),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
		parts: make(map[partition]*segment),
	}
	if cfg.SampleRate < 1 {
		l.threshold = uint64(math.Ldexp(cfg.SampleRate, 64))
	}
	return l
}

// Log queues rec for writing and reports whether it was queued. It never
// blocks: a record that finds the queue full, or the Logger closed, is
// dropped and counted in Stats.Dropped; a record that sampling leaves out is
// counted in Stats.Sampled. Either way Log takes ownership of rec's slices
// (see Record).
func (l *Logger) Log(rec Record) bool {
	if !l.keep(rec.RequestID) {
		l.sampled.Add(1)
		return false
	}
	if rec.Time.IsZero() {
		rec.Time = l.cfg.Now()
	}
	l.inflight.Add(1)
	defer l.inflight.Add(-1)
	if l.closed.Load() || l.stopped.Load() {
		l.dropped.Add(1)
		return false
	}
	size := rec.size()
	if l.pending.Add(size) > l.cfg.QueueBytes && size > 0 {
		l.pending.Add(-size)
		l.dropped.Add(1)
		return false
	}
	select {
	case l.queue <- rec:
		l.queued.Add(1)
		if len(l.queue) >= cap(l.queue)/2 {
			// The writer drains the queue every batchInterval; wake it
			// early when the queue fills faster than that.
			select {
			case l.nudge <- struct{}{}:
			default:
			}
		}
		return true
	default:
		l.pending.Add(-size)
		l.dropped.Add(1)
		return false
	}
}

// size is the memory rec's values hold while queued, in bytes.
func (r *Record) size() int64 { return 4 * int64(len(r.Inputs.Values)+len(r.Outputs)) }

// Wants reports whether sampling keeps a record with this request id, so a
// caller can skip building (or cloning) a record that Log would leave out.
// It counts nothing. A record without an id is sampled by count in Log, so
// Wants("") is true.
func (l *Logger) Wants(requestID string) bool {
	return l.threshold == 0 || requestID == "" || mix(requestID) < l.threshold
}

// keep decides whether sampling keeps a record.
func (l *Logger) keep(requestID string) bool {
	if l.threshold == 0 {
		return true
	}
	if requestID != "" {
		return mix(requestID) < l.threshold
	}
	// Without an id, keep the records whose count crosses a multiple of
	// 1/SampleRate.
	n := l.count.Add(1)
	r := l.cfg.SampleRate
	return math.Floor(float64(n)*r) != math.Floor(float64(n-1)*r)
}

// mix hashes s: FNV-1a, then the SplitMix64 finaliser so that ids differing
// only in their last bytes spread over the whole range.
func mix(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Stats returns the Logger's counters.
func (l *Logger) Stats() Stats {
	return Stats{
		Queued:     l.queued.Load(),
		Dropped:    l.dropped.Load(),
		Sampled:    l.sampled.Load(),
		Written:    l.written.Load(),
		Lost:       l.lost.Load(),
		QueueDepth: len(l.queue),
		Segments:   l.segments.Load(),
	}
}

// Start starts the background writer. ctx bounds its life: when ctx is done
// the writer stops, and the records it has not written are counted as lost;
// stop it with Close instead to write them. Starting twice, or after Close,
// does nothing.
func (l *Logger) Start(ctx context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.started {
		return
	}
	l.started = true
	wctx, cancel := context.WithCancel(ctx)
	l.cancel = cancel
	go l.run(wctx)
}

// Close stops accepting records, writes every queued record and open
// segment, and waits for the writer to finish (starting it first if Start
// was never called). If ctx ends first, Close cancels the writes in flight,
// counts what is unwritten as lost and returns ctx's error. It also returns
// an error when segments could not be written. Closing twice waits again
// and returns nil.
func (l *Logger) Close(ctx context.Context) error {
	l.closed.Store(true)
	// A Log that passed its closed check finishes its send at once (it
	// never blocks); wait for those so that nothing lands in the queue
	// after the writer's final drain.
	for l.inflight.Load() > 0 {
		runtime.Gosched()
	}
	l.Start(context.WithoutCancel(ctx))
	l.mu.Lock()
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	cancel := l.cancel
	l.mu.Unlock()

	lostBefore := l.lost.Load()
	select {
	case <-l.done:
	case <-ctx.Done():
		cancel()
		<-l.done
		l.discardQueue()
		return fmt.Errorf("payloadlog: close: %d records not written: %w", l.lost.Load()-lostBefore, ctx.Err())
	}
	cancel()
	l.discardQueue()
	if n := l.lost.Load() - lostBefore; n > 0 {
		err := l.lastErr
		if err == nil || ctxErr(err) {
			err = errWriterStopped
		}
		return fmt.Errorf("payloadlog: close: %d records lost: %w", n, err)
	}
	return nil
}

// errWriterStopped explains records lost because the writer's start
// context ended before they were written.
var errWriterStopped = errors.New("the writer's context ended before they were written")

// ctxErr reports whether err is a context's cancellation or deadline.
func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// discardQueue counts the records left in the queue as lost. It runs once
// the writer has exited — after its start context ended, records may have
// been queued that no writer will take.
func (l *Logger) discardQueue() {
	for {
		select {
		case rec := <-l.queue:
			l.pending.Add(-rec.size())
			l.lost.Add(1)
		default:
			return
		}
	}
}

// batchInterval is how often the writer takes the queued records.
const batchInterval = 10 * time.Millisecond

// run is the writer goroutine.
func (l *Logger) run(ctx context.Context) {
	defer close(l.done)
	tick := l.cfg.SegmentAge / 4
	tick = min(max(tick, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	// The writer takes records in batches, every batchInterval or when
	// Log nudges it, rather than waking for each record: a wake-up per
	// request cost the serving path more than writing the record does.
	batch := time.NewTicker(batchInterval)
	defer batch.Stop()
	for {
		select {
		case <-batch.C:
			l.drain(ctx)
		case <-l.nudge:
			l.drain(ctx)
		case <-t.C:
			l.drain(ctx)
			l.flushAged(ctx)
		case <-l.stop:
			l.drain(ctx)
			l.flushAll(ctx)
			return
		case <-ctx.Done():
			// Nothing will write from now on: refuse new records (they
			// count as dropped) rather than queue them to be lost.
			l.stopped.Store(true)
			l.drain(ctx) // counts them lost: every write fails now
			l.flushAll(ctx)
			return
		}
	}
}

// drain adds every record waiting in the queue.
func (l *Logger) drain(ctx context.Context) {
	for {
		select {
		case rec := <-l.queue:
			l.add(ctx, &rec)
		default:
			return
		}
	}
}

// add appends rec, just taken from the queue, to its partition's segment,
// writing the segment when it is full.
func (l *Logger) add(ctx context.Context, rec *Record) {
	l.pending.Add(-rec.size())
	p := partition{deployment: rec.Deployment, hour: rec.Time.Unix() / 3600}
	if rec.Time.Unix() < 0 && rec.Time.Unix()%3600 != 0 {
		p.hour-- // floor, for times before 1970
	}
	s := l.parts[p]
	if s == nil {
		enc, err := l.encoder()
		if err != nil {
			l.log.Error("payload log: record lost", "deployment", rec.Deployment, "error", err)
			l.lost.Add(1)
			l.lastErr = err
			return
		}
		s = &segment{opened: l.cfg.Now(), enc: enc}
		s.enc.Reset(&s.buf)
		l.parts[p] = s
	}
	l.line = appendRecord(l.line[:0], rec)
	if _, err := s.enc.Write(l.line); err != nil {
		// Writing to a bytes.Buffer does not fail; an encoder error is a bug.
		l.log.Error("payload log: record lost", "deployment", rec.Deployment, "error", err)
		l.lost.Add(1)
		l.lastErr = err
		return
	}
	s.n++
	s.raw += int64(len(l.line))
	if s.n >= l.cfg.SegmentRecords || s.raw >= l.cfg.SegmentBytes {
		l.flush(ctx, p, s)
	}
}

// flushAged writes the segments open for SegmentAge or longer.
func (l *Logger) flushAged(ctx context.Context) {
	now := l.cfg.Now()
	for p, s := range l.parts {
		if now.Sub(s.opened) >= l.cfg.SegmentAge {
			l.flush(ctx, p, s)
		}
	}
}

// flushAll writes every open segment.
func (l *Logger) flushAll(ctx context.Context) {
	for p, s := range l.parts {
		l.flush(ctx, p, s)
	}
}

// flush closes segment s of partition p and writes it, retrying with
// backoff; when every attempt fails its records are counted as lost.
func (l *Logger) flush(ctx context.Context, p partition, s *segment) {
	delete(l.parts, p)
	defer l.release(s)
	if err := s.enc.Close(); err != nil {
		l.lostSegment(p, s, "", fmt.Errorf("compress segment: %w", err))
		return
	}
	l.seq++
	key := segmentKey(p, s.opened, l.seq)
	data := s.buf.Bytes()
	backoff := l.cfg.RetryBackoff
	var err error
	for attempt := 0; ; attempt++ {
		if err = ctx.Err(); err != nil {
			break
		}
		if err = l.sink.Put(ctx, key, bytes.NewReader(data)); err == nil {
			l.written.Add(int64(s.n))
			l.segments.Add(1)
			return
		}
		if attempt >= l.cfg.Retries || mloop.ErrorCode(err) == mloop.EINVALID {
			break
		}
		l.log.Warn("payload log: segment write failed; retrying",
			"key", key, "records", s.n, "attempt", attempt+1, "retry_in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		backoff *= 2
	}
	l.lostSegment(p, s, key, err)
}

// lostSegment counts a segment's records as lost and reports it.
func (l *Logger) lostSegment(p partition, s *segment, key string, err error) {
	l.lost.Add(int64(s.n))
	l.lastErr = err
	l.log.Error("payload log: segment lost",
		"deployment", p.deployment, "key", key, "records", s.n, "error", err)
}

// encoder returns an idle zstd encoder, creating one when none is left.
func (l *Logger) encoder() (*zstd.Encoder, error) {
	if n := len(l.encs); n > 0 {
		e := l.encs[n-1]
		l.encs = l.encs[:n-1]
		return e, nil
	}
	// One goroutine per encoder and a 1 MiB window keep each open segment's
	// memory small; payload rows repeat within far less than that.
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(1<<20),
		zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return nil, fmt.Errorf("payloadlog: create zstd encoder: %w", err)
	}
	return e, nil
}

// release returns a written segment's encoder for reuse, keeping a few.
func (l *Logger) release(s *segment) {
	s.enc.Reset(nil)
	if len(l.encs) < 4 {
		l.encs = append(l.encs, s.enc)
	}
	s.enc = nil
}

// segmentKey returns the key of the segment of partition p opened at opened
// with sequence number seq. The deployment name is path-escaped so that it
// is always one key segment.
func segmentKey(p partition, opened time.Time, seq uint64) string {
	dep := url.PathEscape(p.deployment)
	switch dep {
	case "":
		dep = "_"
	case ".", "..":
		dep = "%2E" + dep[1:]
	}
	h := time.Unix(p.hour*3600, 0).UTC()
	return fmt.Sprintf("payloads/%s/%04d/%02d/%02d/%02d/%d-%d.ndjson.zst",
		dep, h.Year(), int(h.Month()), h.Day(), h.Hour(), opened.UnixNano(), seq)
}
