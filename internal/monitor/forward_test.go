package monitor_test

import (
	"bytes"
	"context"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving"
)

var fwdFeatures = []serving.Feature{{Name: "temp", Type: serving.Numeric}, {Name: "weather", Type: serving.Categorical}}

// fwdObs returns an observation of rows rows, its first value NaN.
func fwdObs(id string, rows int, t time.Time) *monitor.Observation {
	vals := make([]float32, rows*2)
	out := make([]float32, rows)
	for i := range vals {
		vals[i] = float32(i) + 0.5
	}
	for i := range out {
		out[i] = float32(i) / 10
	}
	if rows > 0 {
		vals[0] = float32(math.NaN())
	}
	return &monitor.Observation{
		Time: t, Deployment: "weather", Revision: 3, ModelVersion: "weather/2", Model: "weather", Version: 2,
		RequestID: id, Features: fwdFeatures, Inputs: serving.Batch{Rows: rows, Cols: 2, Values: vals},
		Outputs: out, OutputsPerRow: 1, Objective: "binary:logistic", Status: 200, Latency: 1500 * time.Microsecond,
	}
}

// sameObs compares observations, NaN equal to NaN by bits.
func sameObs(t *testing.T, i int, got, want *monitor.Observation) {
	t.Helper()
	g, w := *got, *want
	if !g.Time.Equal(w.Time) {
		t.Errorf("observation %d: time got %v, want %v", i, g.Time, w.Time)
	}
	if !sameBits(g.Inputs.Values, w.Inputs.Values) || !sameBits(g.Outputs, w.Outputs) {
		t.Errorf("observation %d: values got %v / %v, want %v / %v", i, g.Inputs.Values, g.Outputs, w.Inputs.Values, w.Outputs)
	}
	g.Time, w.Time = time.Time{}, time.Time{}
	g.Inputs.Values, w.Inputs.Values, g.Outputs, w.Outputs = nil, nil, nil, nil
	if len(w.Features) == 0 {
		w.Features = nil
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("observation %d:\n got %+v\nwant %+v", i, g, w)
	}
}

func sameBits(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return false
		}
	}
	return true
}

func TestObservationsRoundTrip(t *testing.T) {
	sent := time.Unix(1_800_000_000, 123)
	noRows := fwdObs("r-2", 0, sent.Add(-time.Second))
	noRows.Inputs, noRows.Outputs, noRows.Features, noRows.Status = serving.Batch{}, nil, nil, 503
	multi := fwdObs("r-3", 2, sent.Add(-2*time.Second))
	multi.Outputs, multi.OutputsPerRow, multi.Objective, multi.ModelVersion = []float32{.1, .2, .7, .3, .3, .4}, 3, "multi:softprob", "other/1"
	multi.Model, multi.Version, multi.Features = "other", 1, []serving.Feature{{Name: "a"}, {Name: "é"}}
	multi.Features[0].Type, multi.Features[1].Type = serving.Numeric, serving.Numeric
	failed := fwdObs("", 3, sent)
	failed.Outputs, failed.OutputsPerRow, failed.Status = nil, 0, 400
	obs := []*monitor.Observation{fwdObs("r-1", 3, sent.Add(-time.Millisecond)), noRows, multi, failed}
	body := monitor.EncodeObservations(obs, sent)
	b, err := monitor.DecodeObservations(bytes.NewReader(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !b.Sent.Equal(sent) {
		t.Errorf("sent got %v, want %v", b.Sent, sent)
	}
	if len(b.Observations) != len(obs) {
		t.Fatalf("got %d observations, want %d", len(b.Observations), len(obs))
	}
	for i := range obs {
		sameObs(t, i, b.Observations[i], obs[i])
	}
	// Rebase moves the times onto the receiver's clock.
	now := sent.Add(time.Hour)
	b.Rebase(now)
	if got, want := b.Observations[0].Time, now.Add(-time.Millisecond); !got.Equal(want) {
		t.Errorf("rebased time got %v, want %v", got, want)
	}
}

// TestEncodeObservationsOddRequests: what the decoder would reject is
// sent in a form it takes, so one odd request never costs a batch.
func TestEncodeObservationsOddRequests(t *testing.T) {
	sent := time.Unix(1_800_000_000, 0)
	badID := fwdObs("r-\xff", 1, sent)
	longID := fwdObs(strings.Repeat("x", 70<<10), 1, sent)
	badShape := fwdObs("r-shape", 2, sent)
	badShape.Inputs.Values = badShape.Inputs.Values[:3]
	noStatus := fwdObs("r-status", 1, sent)
	noStatus.Status, noStatus.Latency = 0, -time.Second
	b, err := monitor.DecodeObservations(bytes.NewReader(monitor.EncodeObservations([]*monitor.Observation{badID, longID, badShape, noStatus}, sent)), 0)
	if err != nil {
		t.Fatal(err)
	}
	o := b.Observations
	if got, want := o[0].RequestID, "r-\uFFFD"; got != want {
		t.Errorf("invalid UTF-8 id: got %q, want %q", got, want)
	}
	if o[1].RequestID != "" || o[1].Inputs.Rows != 1 {
		t.Errorf("too long id: got %d bytes and %d rows, want no id and 1 row", len(o[1].RequestID), o[1].Inputs.Rows)
	}
	if o[2].Inputs.Rows != 0 || len(o[2].Outputs) != 0 {
		t.Errorf("inconsistent inputs: got %d rows, %d outputs, want a request without rows", o[2].Inputs.Rows, len(o[2].Outputs))
	}
	if o[3].Status != 500 || o[3].Latency != 0 {
		t.Errorf("status 0, negative latency: got %d, %v, want 500, 0", o[3].Status, o[3].Latency)
	}
}

func TestObservationsRebaseClampsFuture(t *testing.T) {
	sent := time.Unix(1_800_000_000, 0)
	body := monitor.EncodeObservations([]*monitor.Observation{fwdObs("r", 1, sent.Add(time.Minute))}, sent)
	b, err := monitor.DecodeObservations(bytes.NewReader(body), 0)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_700_000_000, 0)
	b.Rebase(now)
	if got := b.Observations[0].Time; !got.Equal(now) {
		t.Errorf("a time after sent got %v, want now %v", got, now)
	}
}

func TestDecodeObservationsInvalid(t *testing.T) {
	sent := time.Unix(1_800_000_000, 0)
	good := monitor.EncodeObservations([]*monitor.Observation{fwdObs("r-1", 2, sent)}, sent)
	empty := fwdObs("r", 1, sent)
	empty.Deployment = ""
	tests := []struct {
		name string
		body []byte
		want string
	}{
		{"empty", nil, "does not start with"},
		{"json", []byte(`{"observations": []}`), "does not start with"},
		{"version", append(append([]byte("MLOB"), 9), good[5:]...), "version 9"},
		{"truncated", good[:len(good)-3], "outputs: 2 values announced"},
		{"trailing", append(append([]byte(nil), good...), 0), "after the last observation"},
		{"empty deployment", monitor.EncodeObservations([]*monitor.Observation{empty}, sent), "empty deployment"},
		{"old time", monitor.EncodeObservations([]*monitor.Observation{fwdObs("r", 1, sent.Add(-60*24*time.Hour))}, sent), "from the batch's sent time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := monitor.DecodeObservations(bytes.NewReader(tt.body), 0)
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want EINVALID naming %q", err, tt.want)
			}
		})
	}
	if _, err := monitor.DecodeObservations(bytes.NewReader(good), int64(len(good)-1)); mloop.ErrorCode(err) != mloop.ETOOLARGE {
		t.Errorf("over the limit: got %v, want ETOOLARGE", err)
	}
}

func FuzzDecodeObservations(f *testing.F) {
	sent := time.Unix(1_800_000_000, 0)
	f.Add(monitor.EncodeObservations([]*monitor.Observation{fwdObs("r-1", 2, sent), fwdObs("r-2", 0, sent)}, sent))
	f.Add(monitor.EncodeObservations(nil, sent))
	f.Add([]byte("MLOB\x01"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, err := monitor.DecodeObservations(bytes.NewReader(body), 1<<20)
		if err != nil {
			if c := mloop.ErrorCode(err); c != mloop.EINVALID && c != mloop.ETOOLARGE {
				t.Fatalf("error kind %s: %v", c, err)
			}
			return
		}
		for i, o := range b.Observations {
			if err := o.Inputs.Check(); err != nil {
				t.Fatalf("observation %d: %v", i, err)
			}
			if len(o.Outputs) != 0 && len(o.Outputs) != o.Inputs.Rows*o.OutputsPerRow {
				t.Fatalf("observation %d: %d outputs for %d rows × %d", i, len(o.Outputs), o.Inputs.Rows, o.OutputsPerRow)
			}
		}
		// What decodes encodes back to the same observations.
		again, err := monitor.DecodeObservations(bytes.NewReader(monitor.EncodeObservations(b.Observations, b.Sent)), 1<<20)
		if err != nil {
			t.Fatalf("re-encoded batch: %v", err)
		}
		if len(again.Observations) != len(b.Observations) {
			t.Fatalf("re-encoded: %d observations, want %d", len(again.Observations), len(b.Observations))
		}
	})
}

// fakeSink records posted batches; block, when not nil, holds every post
// until it is closed; fail makes the first posts fail.
type fakeSink struct {
	mu      sync.Mutex
	batches []*monitor.ObservationBatch
	posts   int
	fail    int
	failErr error
	block   chan struct{}
	entered chan struct{}
}

func (s *fakeSink) PostObservations(ctx context.Context, body []byte) error {
	if s.entered != nil {
		select {
		case s.entered <- struct{}{}:
		default:
		}
	}
	if s.block != nil {
		select {
		case <-s.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	if s.fail > 0 {
		s.fail--
		return s.failErr
	}
	b, err := monitor.DecodeObservations(bytes.NewReader(body), 0)
	if err != nil {
		return err
	}
	s.batches = append(s.batches, b)
	return nil
}

func (s *fakeSink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, b := range s.batches {
		for _, o := range b.Observations {
			out = append(out, o.RequestID)
		}
	}
	return out
}

func (s *fakeSink) batchSizes() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, b := range s.batches {
		out = append(out, len(b.Observations))
	}
	return out
}

func openForwarder(t *testing.T, sink monitor.Sink, cfg monitor.ForwarderConfig) *monitor.Forwarder {
	t.Helper()
	f := monitor.NewForwarder(sink, cfg)
	if err := f.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close(context.Background()) })
	return f
}

func TestForwarderBatchesAndCloseFlushes(t *testing.T) {
	sink := &fakeSink{}
	reg := prometheus.NewRegistry()
	// A long flush interval: only BatchRows and Close send.
	f := openForwarder(t, sink, monitor.ForwarderConfig{FlushInterval: time.Hour, BatchRows: 4, Registerer: reg})
	now := time.Now()
	for i := range 10 {
		o := fwdObs("r-"+string(rune('a'+i)), 1, now)
		f.Observe(o)
		// The router reuses its slices: the forwarder must have copied.
		o.Inputs.Values[1], o.RequestID = 99, "reused"
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := sink.batchSizes(), []int{4, 4, 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("batch sizes got %v, want %v", got, want)
	}
	if got, want := strings.Join(sink.ids(), ","), "r-a,r-b,r-c,r-d,r-e,r-f,r-g,r-h,r-i,r-j"; got != want {
		t.Errorf("ids got %s, want %s", got, want)
	}
	for _, b := range sink.batches {
		for _, o := range b.Observations {
			if o.Inputs.Values[1] != 1.5 || !math.IsNaN(float64(o.Inputs.Values[0])) {
				t.Fatalf("values got %v, want [NaN 1.5]", o.Inputs.Values)
			}
		}
	}
	if got, want := f.Stats(), (monitor.ForwarderStats{Sent: 10, SentBatches: 3}); got != want {
		t.Errorf("stats got %+v, want %+v", got, want)
	}
	f.Observe(fwdObs("late", 1, now)) // after Close: ignored
	if got := len(sink.ids()); got != 10 {
		t.Errorf("after Close: %d sent, want 10", got)
	}
}

func TestForwarderFlushInterval(t *testing.T) {
	sink := &fakeSink{}
	f := openForwarder(t, sink, monitor.ForwarderConfig{FlushInterval: 5 * time.Millisecond})
	f.Observe(fwdObs("r-1", 2, time.Time{}))
	waitUntil(t, "the partial batch is sent", func() bool { return len(sink.ids()) == 1 })
	if got := sink.batches[0].Observations[0].Time; got.IsZero() {
		t.Errorf("a zero time must be sent as the observation's time, got zero")
	}
}

func TestForwarderDropsWhenQueueFull(t *testing.T) {
	sink := &fakeSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	reg := prometheus.NewRegistry()
	f := openForwarder(t, sink, monitor.ForwarderConfig{FlushInterval: time.Hour, BatchRows: 1, QueueBatches: 2, Registerer: reg})
	f.Observe(fwdObs("r-0", 1, time.Now()))
	<-sink.entered // the sender holds batch 0
	for i := 1; i <= 5; i++ {
		f.Observe(fwdObs("r", 1, time.Now()))
	}
	// Batches 1 and 2 wait in the queue; 3, 4 and 5 are dropped.
	if got, want := f.Stats(), (monitor.ForwarderStats{Dropped: 3, DroppedBatches: 3}); got != want {
		t.Errorf("stats got %+v, want %+v", got, want)
	}
	if got := counterValue(t, reg, "mloop_monitor_forward_dropped_total"); got != 3 {
		t.Errorf("mloop_monitor_forward_dropped_total got %v, want 3", got)
	}
	close(sink.block)
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := f.Stats(), (monitor.ForwarderStats{Sent: 3, SentBatches: 3, Dropped: 3, DroppedBatches: 3}); got != want {
		t.Errorf("after Close: stats got %+v, want %+v", got, want)
	}
}

func TestForwarderRetries(t *testing.T) {
	tests := []struct {
		name      string
		fail      int
		err       error
		wantStats monitor.ForwarderStats
		wantPosts int
	}{
		{"transient then ok", 2, mloop.Errorf(mloop.EUNAVAILABLE, "down"), monitor.ForwarderStats{Sent: 1, SentBatches: 1, Failures: 2}, 3},
		{"always failing", 10, mloop.Errorf(mloop.EUNAVAILABLE, "down"), monitor.ForwarderStats{Dropped: 1, DroppedBatches: 1, Failures: 3}, 3},
		{"final error", 10, mloop.Errorf(mloop.EINVALID, "bad"), monitor.ForwarderStats{Dropped: 1, DroppedBatches: 1, Failures: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sink := &fakeSink{fail: tt.fail, failErr: tt.err}
			f := monitor.NewForwarder(sink, monitor.ForwarderConfig{FlushInterval: time.Hour, BatchRows: 1,
				Retries: 2, RetryBackoff: time.Millisecond})
			if err := f.Open(context.Background()); err != nil {
				t.Fatal(err)
			}
			f.Observe(fwdObs("r-1", 1, time.Now()))
			if err := f.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := f.Stats(); got != tt.wantStats {
				t.Errorf("stats got %+v, want %+v", got, tt.wantStats)
			}
			if sink.posts != tt.wantPosts {
				t.Errorf("posts got %d, want %d", sink.posts, tt.wantPosts)
			}
		})
	}
}

func TestForwarderCloseDeadline(t *testing.T) {
	sink := &fakeSink{block: make(chan struct{}), entered: make(chan struct{}, 1)}
	f := monitor.NewForwarder(sink, monitor.ForwarderConfig{FlushInterval: time.Hour, BatchRows: 1})
	if err := f.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.Observe(fwdObs("r-1", 1, time.Now()))
	<-sink.entered // the sender holds r-1
	f.Observe(fwdObs("r-2", 1, time.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.Close(ctx); err == nil {
		t.Error("Close with a blocked sink: got no error, want the deadline")
	}
	if got, want := f.Stats(), (monitor.ForwarderStats{Dropped: 2, DroppedBatches: 2, Failures: 1}); got != want {
		t.Errorf("stats got %+v, want %+v", got, want)
	}
}

// counterValue reads a registered counter.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}

// waitUntil polls cond for up to 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// discardSink takes every batch.
type discardSink struct{}

func (discardSink) PostObservations(context.Context, []byte) error { return nil }

// BenchmarkForwarderObserve is the router's cost of forwarding one
// single-row request of two features.
func BenchmarkForwarderObserve(b *testing.B) {
	f := monitor.NewForwarder(discardSink{}, monitor.ForwarderConfig{QueueBatches: 1024})
	if err := f.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer f.Close(context.Background())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		o := fwdObs("request-0123456789", 1, time.Now())
		for pb.Next() {
			f.Observe(o)
		}
	})
}
