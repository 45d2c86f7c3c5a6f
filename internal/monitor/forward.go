package monitor

// Forwarding: an `mloop serve` replica has no monitor of its own. Its
// router hands every answered request to a Forwarder, which batches the
// observations in memory and posts them to the control plane, whose monitor
// observes them as if its own data plane had served them
// (POST /api/v1/monitoring/observations, docs/monitoring.md).
//
// # Wire format
//
// A batch is a compact binary document, version 1, little-endian; uvarint
// and varint are encoding/binary's:
//
//	"MLOB" | version (1 byte) | sent (int64, Unix ns, 8 bytes)
//	strings:      uvarint n, then n × (uvarint length, UTF-8 bytes)
//	feature sets: uvarint n, then n × (uvarint k, k × (uvarint name string, type byte: 0 numeric, 1 categorical))
//	observations: uvarint n, then n × (
//	    varint time (Unix ns), uvarint deployment string, varint revision,
//	    uvarint model_version string, uvarint model string, varint version,
//	    uvarint length + request id bytes, uvarint feature set + 1 (0: none),
//	    uvarint objective string, uvarint status, varint latency (ns),
//	    uvarint rows, uvarint cols, rows×cols float32 (IEEE 754 bits),
//	    uvarint outputs per row, uvarint outputs (0 or rows×outputs per row), that many float32)
//
// Strings (deployment, model, objective, feature names) are sent once per
// batch. Floats travel as their bits, so NaN (a missing value) arrives as
// sent. sent is the replica's clock when the batch was (last) sent: the
// receiver moves every time by the difference between its clock and sent
// (Rebase), so a replica's clock skew does not matter.

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// Limits of the observation wire format.
const (
	// MaxObservationsBody is the largest batch body a server takes (16 MB,
	// twice the largest batch a Forwarder sends by default): a decoded
	// batch takes several times its size in memory.
	MaxObservationsBody = 16 << 20
	// MaxBatchObservations is the most observations one batch holds.
	MaxBatchObservations = 1 << 16
	// ObservationsContentType is the media type of a batch body.
	ObservationsContentType = "application/vnd.mloop.observations"

	obsMagic      = "MLOB"
	obsVersion    = 1
	obsHeaderSize = len(obsMagic) + 1 + 8
	maxObsString  = 64 << 10
	maxObsCols    = 1 << 16
	maxObsOutputs = 1 << 16
	maxObsRows    = 1 << 24
	// minObsSize is the fewest bytes an encoded observation takes.
	minObsSize = 15
	// The decoded batch takes memory beyond its bytes: strings, feature
	// sets and observations are bounded in number.
	maxObsStrings  = 1 << 20
	maxObsFeatures = 1 << 20
	// maxObsAge bounds how far an observation's time may lie from the
	// batch's sent time (a replica holds observations seconds, not days).
	maxObsAge = 30 * 24 * time.Hour
)

// ObservationBatch is a decoded batch of forwarded observations.
type ObservationBatch struct {
	// Sent is the sender's clock when it sent the batch.
	Sent time.Time
	// Observations are the observations, in the order they were observed.
	Observations []*Observation
}

// Rebase moves every observation's time by now − Sent, so that times are
// on the receiver's clock, and clamps times after now to now.
func (b *ObservationBatch) Rebase(now time.Time) {
	for _, o := range b.Observations {
		age := b.Sent.Sub(o.Time)
		if age < 0 {
			age = 0
		}
		o.Time = now.Add(-age)
	}
}

// obsEncoder appends observations to a batch body being built. Strings and
// feature sets are interned: the tables are written in front of the
// observations when the batch is finished.
type obsEncoder struct {
	strs    map[string]uint64
	strList []string
	feats   map[featKey]uint64
	featSet [][]serving.Feature
	obs     []byte // the encoded observations
	n       int    // observations
	rows    int    // rows of the observations
}

// featKey identifies a feature slice by its backing array: the router
// passes the same slice for every request of a revision.
type featKey struct {
	p *serving.Feature
	n int
}

func newObsEncoder() *obsEncoder {
	return &obsEncoder{strs: map[string]uint64{}, feats: map[featKey]uint64{}}
}

func (e *obsEncoder) reset() {
	clear(e.strs)
	clear(e.strList)
	clear(e.feats)
	clear(e.featSet)
	e.strList, e.featSet, e.obs, e.n, e.rows = e.strList[:0], e.featSet[:0], e.obs[:0], 0, 0
}

func (e *obsEncoder) str(s string) uint64 {
	if i, ok := e.strs[s]; ok {
		return i
	}
	i := uint64(len(e.strList))
	e.strs[s] = i
	e.strList = append(e.strList, s)
	return i
}

// featureSet returns the feature set's index + 1 (0: none).
func (e *obsEncoder) featureSet(fs []serving.Feature) uint64 {
	if len(fs) == 0 {
		return 0
	}
	k := featKey{unsafe.SliceData(fs), len(fs)}
	if i, ok := e.feats[k]; ok {
		return i + 1
	}
	i := uint64(len(e.featSet))
	for _, f := range fs {
		e.str(f.Name)
	}
	e.feats[k] = i
	e.featSet = append(e.featSet, fs)
	return i + 1
}

// add appends one observation, copying what it needs; t replaces a zero
// o.Time.
func (e *obsEncoder) add(o *Observation, t time.Time) {
	if !o.Time.IsZero() {
		t = o.Time
	}
	// What the decoder would reject is sent as the monitor would read it
	// anyway, so that one odd request never costs a whole batch: rows
	// that do not fit become a request without rows, an id that is not
	// UTF-8 (no JSON label could name it) is made valid, one too long
	// (no label either) is dropped.
	in := o.Inputs
	if in.Rows <= 0 || in.Cols <= 0 || in.Rows > maxObsRows || in.Cols > maxObsCols || in.Check() != nil {
		in = serving.Batch{}
	}
	out, per := o.Outputs, max(o.OutputsPerRow, 0)
	if per > maxObsOutputs {
		out, per = nil, 0
	}
	if len(out) != in.Rows*per {
		out = nil
	}
	id := o.RequestID
	if len(id) > maxObsString {
		id = ""
	} else if !utf8.ValidString(id) {
		id = strings.ToValidUTF8(id, "\uFFFD")
	}
	status := o.Status
	if status < 100 || status > 999 {
		status = 500
	}
	b := e.obs
	b = binary.AppendVarint(b, t.UnixNano())
	b = binary.AppendUvarint(b, e.str(o.Deployment))
	b = binary.AppendVarint(b, o.Revision)
	b = binary.AppendUvarint(b, e.str(o.ModelVersion))
	b = binary.AppendUvarint(b, e.str(o.Model))
	b = binary.AppendVarint(b, o.Version)
	b = binary.AppendUvarint(b, uint64(len(id)))
	b = append(b, id...)
	b = binary.AppendUvarint(b, e.featureSet(o.Features))
	b = binary.AppendUvarint(b, e.str(o.Objective))
	b = binary.AppendUvarint(b, uint64(status))
	b = binary.AppendVarint(b, int64(max(o.Latency, 0)))
	b = binary.AppendUvarint(b, uint64(in.Rows))
	b = binary.AppendUvarint(b, uint64(in.Cols))
	b = appendFloats(b, in.Values)
	b = binary.AppendUvarint(b, uint64(per))
	b = binary.AppendUvarint(b, uint64(len(out)))
	b = appendFloats(b, out)
	e.obs = b
	e.n++
	e.rows += in.Rows
}

func appendFloats(b []byte, vs []float32) []byte {
	off := len(b)
	b = append(b, make([]byte, 4*len(vs))...)
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[off+4*i:], math.Float32bits(v))
	}
	return b
}

// size is about the body's size so far.
func (e *obsEncoder) size() int { return len(e.obs) }

// finish returns the whole body, sent at sent.
func (e *obsEncoder) finish(sent time.Time) []byte {
	n := obsHeaderSize + 3*binary.MaxVarintLen64 + len(e.obs)
	for _, s := range e.strList {
		n += binary.MaxVarintLen64 + len(s)
	}
	for _, fs := range e.featSet {
		n += binary.MaxVarintLen64 + len(fs)*(binary.MaxVarintLen64+1)
	}
	b := make([]byte, 0, n)
	b = append(b, obsMagic...)
	b = append(b, obsVersion)
	b = binary.LittleEndian.AppendUint64(b, uint64(sent.UnixNano()))
	b = binary.AppendUvarint(b, uint64(len(e.strList)))
	for _, s := range e.strList {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(len(e.featSet)))
	for _, fs := range e.featSet {
		b = binary.AppendUvarint(b, uint64(len(fs)))
		for _, f := range fs {
			b = binary.AppendUvarint(b, e.strs[f.Name])
			var typ byte
			if f.Type == serving.Categorical {
				typ = 1
			}
			b = append(b, typ)
		}
	}
	b = binary.AppendUvarint(b, uint64(e.n))
	return append(b, e.obs...)
}

// EncodeObservations encodes observations as one batch sent at sent (the
// format DecodeObservations reads). A zero Observation.Time is sent as
// sent.
func EncodeObservations(obs []*Observation, sent time.Time) []byte {
	e := newObsEncoder()
	for _, o := range obs {
		e.add(o, sent)
	}
	return e.finish(sent)
}

// setSent rewrites the sent time of an encoded batch.
func setSent(body []byte, sent time.Time) {
	binary.LittleEndian.PutUint64(body[len(obsMagic)+1:], uint64(sent.UnixNano()))
}

// obsReader reads an encoded batch, failing with the first problem.
type obsReader struct {
	b   []byte
	err error
	at  string // what is read, for errors
}

func (r *obsReader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = mloop.Errorf(mloop.EINVALID, "invalid observations batch: %s: %s", r.at, fmt.Sprintf(format, args...))
	}
}

func (r *obsReader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("%s: truncated or overlong number", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *obsReader) varint(what string) int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("%s: truncated or overlong number", what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a uvarint that is at most max.
func (r *obsReader) count(what string, max uint64) int {
	v := r.uvarint(what)
	if v > max {
		r.fail("%s %d is more than %d", what, v, max)
		return 0
	}
	return int(v)
}

func (r *obsReader) bytes(what string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail("%s: %d bytes announced, %d left", what, n, len(r.b))
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *obsReader) string(what string) string {
	n := r.count(what+" length", maxObsString)
	b := r.bytes(what, n)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		r.fail("%s is not valid UTF-8", what)
		return ""
	}
	return string(b)
}

func (r *obsReader) floats(what string, n int) []float32 {
	if r.err != nil || n == 0 {
		return nil
	}
	if n > len(r.b)/4 {
		r.fail("%s: %d values announced, %d bytes left", what, n, len(r.b))
		return nil
	}
	out := make([]float32, n)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(r.b[4*i:]))
	}
	r.b = r.b[4*n:]
	return out
}

// DecodeObservations reads one batch of at most limit bytes (at most
// MaxObservationsBody when limit ≤ 0) from r and checks everything in it:
// lengths (inputs hold rows × cols values, outputs none or rows × outputs
// per row), bounds, string indexes, UTF-8, times. Any problem is EINVALID
// naming the field (ETOOLARGE for a body over limit). The times are the
// sender's; see ObservationBatch.Rebase.
func DecodeObservations(rd io.Reader, limit int64) (*ObservationBatch, error) {
	if limit <= 0 {
		limit = MaxObservationsBody
	}
	body, err := io.ReadAll(io.LimitReader(rd, limit+1))
	if err != nil {
		return nil, mloop.Errorf(mloop.EBADREQUEST, "read the observations batch: %v", err)
	}
	if int64(len(body)) > limit {
		return nil, mloop.Errorf(mloop.ETOOLARGE, "the observations batch is larger than %d bytes: send smaller batches", limit)
	}
	return decodeObservations(body)
}

func decodeObservations(body []byte) (*ObservationBatch, error) {
	if len(body) < obsHeaderSize || string(body[:len(obsMagic)]) != obsMagic {
		return nil, mloop.Errorf(mloop.EINVALID, "invalid observations batch: it does not start with %q and a version: send what monitor.Forwarder encodes", obsMagic)
	}
	if v := body[len(obsMagic)]; v != obsVersion {
		return nil, mloop.Errorf(mloop.EINVALID, "invalid observations batch: version %d is not supported (this server reads version %d): run replicas of the server's mloop version", v, obsVersion)
	}
	sentNs := int64(binary.LittleEndian.Uint64(body[len(obsMagic)+1:]))
	r := &obsReader{b: body[obsHeaderSize:], at: "header"}

	r.at = "strings"
	// Every count is bounded by the bytes left (each item takes at least
	// one byte, a feature two, an observation minObsSize), so that a
	// small body cannot make the decoder allocate much.
	nStr := r.count("count", min(maxObsStrings, uint64(len(r.b))))
	strs := make([]string, 0, min(nStr, 1024))
	for i := range nStr {
		r.at = "strings[" + strconv.Itoa(i) + "]"
		strs = append(strs, r.string("string"))
	}
	strAt := func(what string) string {
		i := r.uvarint(what)
		if r.err == nil && i >= uint64(len(strs)) {
			r.fail("%s: string %d of %d", what, i, len(strs))
			return ""
		}
		if r.err != nil {
			return ""
		}
		return strs[i]
	}

	r.at = "feature sets"
	nSets := r.count("count", uint64(len(r.b)))
	features := 0 // in every set
	sets := make([][]serving.Feature, 0, min(nSets, 64))
	for i := range nSets {
		r.at = "feature sets[" + strconv.Itoa(i) + "]"
		k := r.count("features", min(maxObsCols, uint64(len(r.b)/2)))
		if features += k; features > maxObsFeatures {
			r.fail("more than %d features in all sets", maxObsFeatures)
			break
		}
		fs := make([]serving.Feature, k)
		for j := range fs {
			fs[j].Name = strAt("feature " + strconv.Itoa(j) + " name")
			switch t := r.bytes("feature type", 1); {
			case r.err != nil:
			case t[0] == 0:
				fs[j].Type = serving.Numeric
			case t[0] == 1:
				fs[j].Type = serving.Categorical
			default:
				r.fail("feature %d: type %d is neither 0 (numeric) nor 1 (categorical)", j, t[0])
			}
		}
		sets = append(sets, fs)
	}

	r.at = "observations"
	nObs := r.count("count", min(MaxBatchObservations, uint64(len(r.b)/minObsSize)))
	if r.err != nil {
		return nil, r.err
	}
	sent := time.Unix(0, sentNs)
	out := &ObservationBatch{Sent: sent, Observations: make([]*Observation, 0, nObs)}
	for i := range nObs {
		r.at = "observations[" + strconv.Itoa(i) + "]"
		o := &Observation{}
		t := r.varint("time")
		o.Deployment = strAt("deployment")
		o.Revision = r.varint("revision")
		o.ModelVersion = strAt("model_version")
		o.Model = strAt("model")
		o.Version = r.varint("version")
		if n := r.count("request id length", maxObsString); r.err == nil {
			id := r.bytes("request id", n)
			if r.err == nil && !utf8.Valid(id) {
				r.fail("request id is not valid UTF-8")
			}
			o.RequestID = string(id)
		}
		if fi := r.uvarint("feature set"); r.err == nil && fi > 0 {
			if fi > uint64(len(sets)) {
				r.fail("feature set %d of %d", fi-1, len(sets))
			} else {
				o.Features = sets[fi-1]
			}
		}
		o.Objective = strAt("objective")
		o.Status = r.count("status", 999)
		lat := r.varint("latency")
		rows := r.count("rows", maxObsRows)
		cols := r.count("cols", maxObsCols)
		if r.err != nil {
			return nil, r.err
		}
		switch {
		case o.Deployment == "":
			r.fail("empty deployment")
		case o.ModelVersion == "":
			r.fail("empty model_version")
		case o.Status < 100:
			r.fail("status %d is not an HTTP status", o.Status)
		case o.Revision < 0 || o.Version < 0:
			r.fail("negative revision %d or version %d", o.Revision, o.Version)
		case lat < 0:
			r.fail("negative latency %d ns", lat)
		case (rows == 0) != (cols == 0):
			r.fail("%d rows of %d columns: rows and columns are both 0 or both positive", rows, cols)
		}
		if age := sentNs - t; r.err == nil && (age > int64(maxObsAge) || age < -int64(maxObsAge)) {
			r.fail("time %d ns is more than %v from the batch's sent time %d ns", t, maxObsAge, sentNs)
		}
		o.Time = time.Unix(0, t)
		o.Latency = time.Duration(lat)
		o.Inputs = serving.Batch{Rows: rows, Cols: cols, Values: r.floats("inputs", rows*cols)}
		o.OutputsPerRow = r.count("outputs per row", maxObsOutputs)
		nOut := r.count("outputs", uint64(len(r.b)))
		if r.err == nil && nOut != 0 && (rows == 0 || nOut/rows != o.OutputsPerRow || nOut%rows != 0) {
			r.fail("%d outputs for %d rows of %d outputs per row: want 0 or rows × outputs per row", nOut, rows, o.OutputsPerRow)
		}
		o.Outputs = r.floats("outputs", nOut)
		if r.err != nil {
			return nil, r.err
		}
		out.Observations = append(out.Observations, o)
	}
	if len(r.b) > 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "invalid observations batch: %d bytes after the last observation", len(r.b))
	}
	return out, nil
}

// Sink takes encoded observation batches: the control plane's
// POST /api/v1/monitoring/observations (internal/client implements it).
// An error of kind EINVALID, ETOOLARGE, EBADREQUEST, EUNAUTHENTICATED,
// EFORBIDDEN or ENOTIMPLEMENTED is final (the batch is not retried); any
// other is retried.
type Sink interface {
	PostObservations(ctx context.Context, body []byte) error
}

// ForwarderConfig tunes a Forwarder; zero values mean the defaults.
type ForwarderConfig struct {
	// FlushInterval is how often a partly filled batch is sent (1s).
	FlushInterval time.Duration
	// BatchRows closes a batch once it holds that many rows or requests
	// (4096; at most MaxBatchObservations).
	BatchRows int
	// BatchBytes closes a batch once its encoding reaches that size (8 MB;
	// at most MaxObservationsBody/2).
	BatchBytes int
	// QueueBatches is how many closed batches may wait to be sent (16);
	// more are dropped and counted.
	QueueBatches int
	// Retries is how many times a failed send is tried again (3; negative:
	// never), after RetryBackoff (500ms), doubled each time; then the
	// batch is dropped and counted.
	Retries      int
	RetryBackoff time.Duration
	// SendTimeout bounds one send (30s).
	SendTimeout time.Duration
	// PauseNotImplemented is how long observations are dropped (counted)
	// without encoding after the sink said it does not monitor (1 minute).
	PauseNotImplemented time.Duration
	// Registerer, when set, gets mloop_monitor_forward_sent_total and
	// mloop_monitor_forward_dropped_total at Open.
	Registerer prometheus.Registerer
	// Logger logs failed sends (slog.Default()).
	Logger *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

func (c ForwarderConfig) withDefaults() ForwarderConfig {
	if c.FlushInterval <= 0 {
		c.FlushInterval = time.Second
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 4096
	}
	c.BatchRows = min(c.BatchRows, MaxBatchObservations)
	if c.BatchBytes <= 0 {
		c.BatchBytes = 8 << 20
	}
	c.BatchBytes = min(c.BatchBytes, MaxObservationsBody/2)
	if c.QueueBatches <= 0 {
		c.QueueBatches = 16
	}
	if c.Retries < 0 {
		c.Retries = 0
	} else if c.Retries == 0 {
		c.Retries = 3
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 500 * time.Millisecond
	}
	if c.SendTimeout <= 0 {
		c.SendTimeout = 30 * time.Second
	}
	if c.PauseNotImplemented <= 0 {
		c.PauseNotImplemented = time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Forwarder observes requests for a monitor elsewhere: it implements the
// router's Monitor (Observe) by encoding each observation into the batch
// being built, and sends each batch through a Sink from a background
// goroutine. Observe never blocks on I/O; what cannot be sent (queue full,
// sends failing) is dropped by whole batches and counted. Create it with
// NewForwarder, start it with Open, stop it with Close.
type Forwarder struct {
	cfg  ForwarderConfig
	sink Sink
	log  *slog.Logger

	mu     sync.Mutex
	enc    *obsEncoder
	closed bool
	pool   sync.Pool // *obsEncoder

	queue      chan *obsEncoder
	ctx        context.Context
	cancel     context.CancelFunc
	opened     atomic.Bool
	stop       chan struct{} // closed by Close: the ticker stops
	tickerDone chan struct{}
	senderDone chan struct{}

	pausedUntil atomic.Int64 // Unix ns: drop without encoding until then

	sent, sentBatches       atomic.Int64
	dropped, droppedBatches atomic.Int64
	failures                atomic.Int64
	failing                 atomic.Bool

	sentCtr, droppedCtr prometheus.CounterFunc
}

// ForwarderStats are a Forwarder's counters.
type ForwarderStats struct {
	// Sent and SentBatches count the observations (requests) and batches
	// the sink took.
	Sent        int64 `json:"sent"`
	SentBatches int64 `json:"sent_batches"`
	// Dropped and DroppedBatches were lost: the queue was full, the sends
	// failed, the sink does not monitor, or Close ran out of time.
	Dropped        int64 `json:"dropped"`
	DroppedBatches int64 `json:"dropped_batches"`
	// Failures counts failed send attempts.
	Failures int64 `json:"failures"`
}

var _ interface{ Observe(*Observation) } = (*Forwarder)(nil)

// NewForwarder returns a forwarder sending to sink.
func NewForwarder(sink Sink, cfg ForwarderConfig) *Forwarder {
	cfg = cfg.withDefaults()
	f := &Forwarder{cfg: cfg, sink: sink, log: cfg.Logger,
		queue: make(chan *obsEncoder, cfg.QueueBatches), stop: make(chan struct{}),
		tickerDone: make(chan struct{}), senderDone: make(chan struct{})}
	f.pool.New = func() any { return newObsEncoder() }
	f.sentCtr = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mloop_monitor_forward_sent_total",
		Help: "Observed requests this replica forwarded to the control plane's monitor.",
	}, func() float64 { return float64(f.sent.Load()) })
	f.droppedCtr = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "mloop_monitor_forward_dropped_total",
		Help: "Observed requests this replica could not forward to the control plane's monitor (queue full, sends failed, or the control plane does not monitor).",
	}, func() float64 { return float64(f.dropped.Load()) })
	return f
}

// Open registers the metrics and starts sending.
func (f *Forwarder) Open(ctx context.Context) error {
	if !f.opened.CompareAndSwap(false, true) {
		return mloop.Errorf(mloop.ECONFLICT, "the forwarder is already open")
	}
	if r := f.cfg.Registerer; r != nil {
		for _, c := range []prometheus.Collector{f.sentCtr, f.droppedCtr} {
			if err := r.Register(c); err != nil {
				return mloop.Errorf(mloop.EINTERNAL, "register forwarding metrics: %v", err)
			}
		}
	}
	f.ctx, f.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go func() { defer close(f.senderDone); f.runSender() }()
	go func() { defer close(f.tickerDone); f.runTicker() }()
	return nil
}

// Observe encodes o into the batch being built; it copies what it needs
// and keeps nothing of o. Observations before Open or after Close are
// ignored.
func (f *Forwarder) Observe(o *Observation) {
	if o == nil || !f.opened.Load() {
		return
	}
	now := f.cfg.Now()
	if until := f.pausedUntil.Load(); until != 0 && now.UnixNano() < until {
		f.dropped.Add(1)
		return
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	if f.enc == nil {
		f.enc = f.pool.Get().(*obsEncoder)
	}
	e := f.enc
	e.add(o, now)
	if e.rows >= f.cfg.BatchRows || e.n >= f.cfg.BatchRows || e.size() >= f.cfg.BatchBytes {
		// Under mu, so that Close cannot close the queue meanwhile; the
		// send never blocks.
		f.enc = nil
		f.enqueue(e)
	}
	f.mu.Unlock()
}

// enqueue queues a closed batch, dropping it when the queue is full.
func (f *Forwarder) enqueue(e *obsEncoder) {
	select {
	case f.queue <- e:
	default:
		f.drop(e)
	}
}

// drop counts a batch that will not be sent.
func (f *Forwarder) drop(e *obsEncoder) {
	f.dropped.Add(int64(e.n))
	f.droppedBatches.Add(1)
	f.release(e)
}

func (f *Forwarder) release(e *obsEncoder) {
	if cap(e.obs) > 2*f.cfg.BatchBytes {
		return // do not keep an outsized buffer
	}
	e.reset()
	f.pool.Put(e)
}

// takeBatch closes the batch being built (nil when empty).
func (f *Forwarder) takeBatch() *obsEncoder {
	f.mu.Lock()
	defer f.mu.Unlock()
	e := f.enc
	f.enc = nil
	if e != nil && e.n == 0 {
		f.release(e)
		return nil
	}
	return e
}

// runTicker closes the batch being built every FlushInterval.
func (f *Forwarder) runTicker() {
	t := time.NewTicker(f.cfg.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if e := f.takeBatch(); e != nil {
				f.enqueue(e)
			}
		case <-f.stop:
			return
		}
	}
}

// runSender sends the queued batches until the queue is closed.
func (f *Forwarder) runSender() {
	for e := range f.queue {
		f.send(e)
	}
}

// send posts one batch, retrying failures, and counts the outcome.
func (f *Forwarder) send(e *obsEncoder) {
	n := int64(e.n)
	body := e.finish(f.cfg.Now())
	backoff := f.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		if f.ctx.Err() != nil {
			f.drop(e)
			return
		}
		setSent(body, f.cfg.Now())
		ctx, cancel := context.WithTimeout(f.ctx, f.cfg.SendTimeout)
		err := f.sink.PostObservations(ctx, body)
		cancel()
		if err == nil {
			f.sent.Add(n)
			f.sentBatches.Add(1)
			f.release(e)
			if f.failing.CompareAndSwap(true, false) {
				f.log.Info("monitor: forwarding observations works again")
			}
			return
		}
		f.failures.Add(1)
		final := isFinal(err)
		if final || attempt >= f.cfg.Retries {
			if mloop.ErrorCode(err) == mloop.ENOTIMPLEMENTED {
				f.pausedUntil.Store(f.cfg.Now().Add(f.cfg.PauseNotImplemented).UnixNano())
			}
			if f.failing.CompareAndSwap(false, true) || final {
				f.log.Warn("monitor: forwarding observations failed; the batch is dropped (mloop_monitor_forward_dropped_total)",
					"observations", n, "attempts", attempt+1, "error", err)
			}
			f.drop(e)
			return
		}
		select {
		case <-time.After(backoff):
		case <-f.ctx.Done():
		}
		backoff *= 2
	}
}

// isFinal reports whether a send error will not go away by retrying.
func isFinal(err error) bool {
	switch mloop.ErrorCode(err) {
	case mloop.EINVALID, mloop.ETOOLARGE, mloop.EBADREQUEST, mloop.EUNAUTHENTICATED, mloop.EFORBIDDEN, mloop.ENOTIMPLEMENTED:
		return true
	}
	return false
}

// Close stops observing, sends what is held and queued (retrying failures
// until ctx ends), then stops; what is not sent when ctx ends is dropped
// and counted.
func (f *Forwarder) Close(ctx context.Context) error {
	if !f.opened.Load() {
		return nil
	}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	e := f.enc
	f.enc = nil
	f.mu.Unlock()
	close(f.stop)
	<-f.tickerDone // nothing enqueues from now on
	var err error
	if e != nil && e.n > 0 {
		// The last batch waits for room rather than being dropped.
		select {
		case f.queue <- e:
		case <-ctx.Done():
			f.drop(e)
		}
	}
	close(f.queue)
	select {
	case <-f.senderDone:
	case <-ctx.Done():
		f.cancel() // the sender drops what is left
		<-f.senderDone
		err = fmt.Errorf("close the observation forwarder: %w", ctx.Err())
	}
	f.cancel()
	if r := f.cfg.Registerer; r != nil {
		r.Unregister(f.sentCtr)
		r.Unregister(f.droppedCtr)
	}
	return err
}

// Stats returns the forwarder's counters.
func (f *Forwarder) Stats() ForwarderStats {
	return ForwarderStats{
		Sent: f.sent.Load(), SentBatches: f.sentBatches.Load(),
		Dropped: f.dropped.Load(), DroppedBatches: f.droppedBatches.Load(),
		Failures: f.failures.Load(),
	}
}
