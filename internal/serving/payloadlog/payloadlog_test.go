package payloadlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/serving"
)

var _ Sink = (*artifact.Store)(nil)

// memSink is a Sink that keeps segments in memory. Fail, when set, decides
// the result of each Put before it is stored; Block, when set, makes Put
// wait until it is closed (or ctx ends), after signalling Entered.
type memSink struct {
	mu       sync.Mutex
	segs     map[string][]byte
	attempts atomic.Int64
	Fail     func(attempt int64) error
	Block    chan struct{}
	Entered  chan struct{}
}

func newMemSink() *memSink { return &memSink{segs: make(map[string][]byte)} }

func (s *memSink) Put(ctx context.Context, key string, r io.Reader) error {
	n := s.attempts.Add(1)
	if s.Block != nil {
		if s.Entered != nil {
			select {
			case s.Entered <- struct{}{}:
			default:
			}
		}
		select {
		case <-s.Block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.Fail != nil {
		if err := s.Fail(n); err != nil {
			return err
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.segs[key] = b
	return nil
}

// records returns every stored record by key.
func (s *memSink) records(tb testing.TB) map[string][]Record {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Record)
	for k, b := range s.segs {
		recs, err := ReadSegment(bytes.NewReader(b))
		if err != nil {
			tb.Fatalf("ReadSegment(%s): %v", k, err)
		}
		out[k] = recs
	}
	return out
}

func (s *memSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.segs)
}

// clock is an injectable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// quiet returns a logger that discards its output.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// rec returns a one-row record.
func rec(id, dep string, t time.Time, vals ...float32) Record {
	return Record{
		Time: t, RequestID: id, Deployment: dep, Revision: "r1", ModelVersion: "m/1",
		LatencyMicros: 42, Status: 200,
		Inputs:  serving.Batch{Rows: 1, Cols: len(vals), Values: vals},
		Outputs: []float32{0.5}, OutputsPerRow: 1,
	}
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func mustClose(tb testing.TB, l *Logger) {
	tb.Helper()
	if err := l.Close(context.Background()); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

// sameRecord compares records, with NaN equal to NaN and times by instant.
func sameRecord(a, b Record) bool {
	eq := func(x, y []float32) bool {
		return slices.EqualFunc(x, y, func(p, q float32) bool {
			return p == q || (p != p && q != q)
		})
	}
	return a.Time.Equal(b.Time) && a.RequestID == b.RequestID && a.Deployment == b.Deployment &&
		a.Revision == b.Revision && a.ModelVersion == b.ModelVersion &&
		a.LatencyMicros == b.LatencyMicros && a.Status == b.Status &&
		a.Inputs.Rows == b.Inputs.Rows && a.Inputs.Cols == b.Inputs.Cols &&
		eq(a.Inputs.Values, b.Inputs.Values) && eq(a.Outputs, b.Outputs) &&
		a.OutputsPerRow == b.OutputsPerRow && a.Error == b.Error
}

// TestPartitions writes through a real file artifact store and checks that
// records land in one segment per deployment and hour, under the right keys.
func TestPartitions(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := artifact.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()

	h10 := time.Date(2026, 3, 4, 10, 15, 0, 0, time.UTC)
	h11 := time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC)
	clk := &clock{t: h10.Add(30 * time.Minute)} // 10:45
	l := New(store, Config{Now: clk.Now, Logger: quiet()})
	l.Start(ctx)

	nan := float32(math.NaN())
	in := []Record{
		rec("a1", "flights", h10, 1, nan, 3),
		rec("b1", "churn", h10, 4),
		rec("a2", "flights", h11, 5, 6, 7),
		rec("a3", "flights", time.Time{}, 8, 9, 10), // Now: 10:45
		rec("a4", "flights", h10.Add(time.Minute), float32(math.Inf(1)), float32(math.Inf(-1)), -0.125),
	}
	in[1].Status, in[1].Error, in[1].Outputs, in[1].OutputsPerRow = 500, "model \"churn\" failed\n", nil, 0
	for _, r := range in {
		if !l.Log(r) {
			t.Fatalf("Log(%s) = false, want true", r.RequestID)
		}
	}
	mustClose(t, l)

	got := make(map[string][]Record)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		recs, err := ReadSegment(f)
		if err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		// Key the result by its folder: the file name holds a time and seq.
		got[filepath.ToSlash(filepath.Dir(rel))] = recs
		if !strings.HasSuffix(rel, ".ndjson.zst") {
			t.Errorf("segment %s: want suffix .ndjson.zst", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	in[3].Time = clk.Now()
	want := map[string][]Record{
		"payloads/flights/2026/03/04/10": {in[0], in[3], in[4]},
		"payloads/churn/2026/03/04/10":   {in[1]},
		"payloads/flights/2026/03/04/11": {in[2]},
	}
	if len(got) != len(want) {
		t.Fatalf("got segments in %v, want %d partitions", keys(got), len(want))
	}
	for k, w := range want {
		g := got[k]
		if len(g) != len(w) {
			t.Fatalf("%s: got %d records, want %d", k, len(g), len(w))
		}
		for i := range w {
			if !sameRecord(g[i], w[i]) {
				t.Errorf("%s record %d:\ngot  %+v\nwant %+v", k, i, g[i], w[i])
			}
		}
	}
	st := l.Stats()
	if st.Queued != 5 || st.Written != 5 || st.Segments != 3 || st.Lost != 0 || st.Dropped != 0 || st.QueueDepth != 0 {
		t.Errorf("Stats = %+v, want 5 queued and written in 3 segments", st)
	}
}

func keys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestSegmentRecords checks that a segment is written once it holds
// SegmentRecords records, before Close.
func TestSegmentRecords(t *testing.T) {
	sink := newMemSink()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(sink, Config{SegmentRecords: 3, Now: func() time.Time { return t0 }, Logger: quiet()})
	l.Start(context.Background())
	for i := range 7 {
		l.Log(rec(fmt.Sprint("r", i), "d", t0))
	}
	waitFor(t, "two full segments", func() bool { return sink.count() == 2 })
	if st := l.Stats(); st.Written != 6 {
		t.Errorf("before Close: Written = %d, want 6", st.Written)
	}
	mustClose(t, l)
	var sizes []int
	var ids []string
	recs := sink.records(t)
	for _, k := range keys(recs) {
		sizes = append(sizes, len(recs[k]))
		for _, r := range recs[k] {
			ids = append(ids, r.RequestID)
		}
	}
	slices.Sort(sizes)
	slices.Sort(ids)
	if !slices.Equal(sizes, []int{1, 3, 3}) {
		t.Errorf("segment sizes %v, want [1 3 3]", sizes)
	}
	if want := []string{"r0", "r1", "r2", "r3", "r4", "r5", "r6"}; !slices.Equal(ids, want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
}

// TestSegmentAge checks that a segment is written once it is SegmentAge old
// by the injected clock, before Close.
func TestSegmentAge(t *testing.T) {
	sink := newMemSink()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := &clock{t: t0}
	l := New(sink, Config{SegmentAge: 40 * time.Millisecond, Now: clk.Now, Logger: quiet()})
	l.Start(context.Background())
	defer mustClose(t, l)
	l.Log(rec("r0", "d", t0))
	waitFor(t, "the record to reach the writer", func() bool { return l.Stats().QueueDepth == 0 })
	if n := sink.count(); n != 0 {
		t.Fatalf("a segment was written before it aged: %d segments", n)
	}
	// Advance the clock on every poll: the writer may have opened the
	// segment only now.
	now := t0
	waitFor(t, "the aged segment", func() bool {
		now = now.Add(time.Minute)
		clk.Set(now)
		return sink.count() == 1
	})
	if st := l.Stats(); st.Written != 1 || st.Segments != 1 {
		t.Errorf("Stats = %+v, want 1 written in 1 segment", st)
	}
}

// TestSampling checks that sampling keeps the same requests in every Logger,
// about the configured share of them, and counts the rest as sampled.
func TestSampling(t *testing.T) {
	cfg := Config{SampleRate: 0.1, QueueSize: 20000, Logger: quiet()}
	a, b := New(newMemSink(), cfg), New(newMemSink(), cfg)
	const n = 10000
	kept := 0
	for i := range n {
		id := fmt.Sprintf("req-%d", i)
		ka, kb := a.Log(rec(id, "d", time.Time{})), b.Log(rec(id, "d", time.Time{}))
		if ka != kb {
			t.Fatalf("request %s: logger a kept=%v, logger b kept=%v", id, ka, kb)
		}
		if a.Wants(id) != ka {
			t.Fatalf("request %s: Wants = %v, Log = %v", id, a.Wants(id), ka)
		}
		if ka {
			kept++
		}
	}
	if kept < 850 || kept > 1150 {
		t.Errorf("kept %d of %d at rate 0.1, want about 1000", kept, n)
	}
	st := a.Stats()
	if st.Queued != int64(kept) || st.Sampled != int64(n-kept) || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want %d queued and %d sampled", st, kept, n-kept)
	}

	// Records without an id are sampled by count: exactly one in ten.
	c := New(newMemSink(), cfg)
	kept = 0
	for range 100 {
		if c.Log(rec("", "d", time.Time{})) {
			kept++
		}
	}
	if kept != 10 {
		t.Errorf("kept %d of 100 records without id, want 10", kept)
	}

	// A rate of 1 (the default) keeps everything.
	d := New(newMemSink(), Config{Logger: quiet()})
	for i := range 100 {
		if !d.Log(rec(fmt.Sprint(i), "d", time.Time{})) {
			t.Fatalf("default rate dropped record %d", i)
		}
	}
	for _, l := range []*Logger{a, b, c, d} {
		mustClose(t, l)
	}
}

// TestFullQueueDrops blocks the Sink so the writer stalls, then checks that
// Log refuses records once the queue is full, without blocking, and counts
// them as dropped.
func TestFullQueueDrops(t *testing.T) {
	sink := newMemSink()
	sink.Block = make(chan struct{})
	sink.Entered = make(chan struct{}, 1)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(sink, Config{QueueSize: 2, SegmentRecords: 1, Now: func() time.Time { return t0 }, Logger: quiet()})
	l.Start(context.Background())
	if !l.Log(rec("r0", "d", t0)) {
		t.Fatal("first Log = false")
	}
	<-sink.Entered // the writer now waits in Put
	var got []bool
	for i := 1; i <= 5; i++ {
		got = append(got, l.Log(rec(fmt.Sprint("r", i), "d", t0)))
	}
	if want := []bool{true, true, false, false, false}; !slices.Equal(got, want) {
		t.Fatalf("Log results %v, want %v", got, want)
	}
	st := l.Stats()
	if st.Queued != 3 || st.Dropped != 3 || st.QueueDepth != 2 {
		t.Errorf("Stats = %+v, want 3 queued, 3 dropped, depth 2", st)
	}
	close(sink.Block)
	mustClose(t, l)
	st = l.Stats()
	if st.Written != 3 || st.Lost != 0 || st.QueueDepth != 0 {
		t.Errorf("after Close: Stats = %+v, want 3 written", st)
	}
	if l.Log(rec("late", "d", t0)) {
		t.Error("Log after Close = true, want false")
	}
	if st := l.Stats(); st.Dropped != 4 {
		t.Errorf("after a Log past Close: Dropped = %d, want 4", st.Dropped)
	}
}

// TestCloseFlushes checks that Close writes every queued record, even when
// Start was never called.
func TestCloseFlushes(t *testing.T) {
	sink := newMemSink()
	l := New(sink, Config{Logger: quiet()})
	const n = 250
	for i := range n {
		l.Log(rec(fmt.Sprint(i), fmt.Sprint("d", i%3), time.Time{}, float32(i)))
	}
	mustClose(t, l)
	total := 0
	for k, recs := range sink.records(t) {
		for _, r := range recs {
			if !strings.HasPrefix(k, "payloads/"+r.Deployment+"/") {
				t.Errorf("record of %s in segment %s", r.Deployment, k)
			}
		}
		total += len(recs)
	}
	if total != n || sink.count() != 3 {
		t.Errorf("got %d records in %d segments, want %d in 3", total, sink.count(), n)
	}
	if err := l.Close(context.Background()); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestCloseDeadline checks that Close gives up when its context ends, counting
// what it could not write as lost.
func TestCloseDeadline(t *testing.T) {
	sink := newMemSink()
	sink.Block = make(chan struct{}) // never released
	sink.Entered = make(chan struct{}, 1)
	l := New(sink, Config{SegmentRecords: 1, Logger: quiet()})
	l.Start(context.Background())
	for i := range 3 {
		l.Log(rec(fmt.Sprint(i), "d", time.Time{}))
	}
	<-sink.Entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := l.Close(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Close = %v, want context.Canceled", err)
	}
	if st := l.Stats(); st.Lost != 3 || st.Written != 0 {
		t.Errorf("Stats = %+v, want 3 lost", st)
	}
}

// TestFailingSink checks that a failed write is retried, and that a segment
// whose every attempt fails is counted as lost without stopping the writer.
func TestFailingSink(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cfg := Config{Retries: 2, RetryBackoff: time.Millisecond, Now: func() time.Time { return t0 }, Logger: quiet()}

	t.Run("always", func(t *testing.T) {
		sink := newMemSink()
		sink.Fail = func(int64) error { return errors.New("disk on fire") }
		l := New(sink, cfg)
		l.Start(context.Background())
		for i := range 4 {
			l.Log(rec(fmt.Sprint(i), "d", t0))
		}
		err := l.Close(context.Background())
		if err == nil || !strings.Contains(err.Error(), "disk on fire") {
			t.Errorf("Close = %v, want the sink's error", err)
		}
		if got := sink.attempts.Load(); got != 3 {
			t.Errorf("%d Put attempts, want 3 (1 + 2 retries)", got)
		}
		if st := l.Stats(); st.Lost != 4 || st.Written != 0 || st.Segments != 0 {
			t.Errorf("Stats = %+v, want 4 lost", st)
		}
	})
	t.Run("once", func(t *testing.T) {
		sink := newMemSink()
		sink.Fail = func(n int64) error {
			if n == 1 {
				return errors.New("flaky")
			}
			return nil
		}
		l := New(sink, cfg)
		l.Start(context.Background())
		for i := range 4 {
			l.Log(rec(fmt.Sprint(i), "d", t0))
		}
		mustClose(t, l)
		if st := l.Stats(); st.Written != 4 || st.Lost != 0 || sink.attempts.Load() != 2 {
			t.Errorf("Stats = %+v after %d attempts, want 4 written after 2", st, sink.attempts.Load())
		}
	})
	t.Run("invalid key is not retried", func(t *testing.T) {
		sink := newMemSink()
		sink.Fail = func(int64) error { return mloop.Errorf(mloop.EINVALID, "bad key") }
		l := New(sink, cfg)
		l.Log(rec("x", "d", t0))
		if err := l.Close(context.Background()); err == nil {
			t.Error("Close = nil, want an error")
		}
		if got := sink.attempts.Load(); got != 1 {
			t.Errorf("%d Put attempts, want 1", got)
		}
	})
}

// TestConcurrentLog logs from many goroutines while the writer runs; every
// record is accounted for exactly once and every written one can be read.
func TestConcurrentLog(t *testing.T) {
	sink := newMemSink()
	l := New(sink, Config{QueueSize: 500, SegmentRecords: 300, Logger: quiet()})
	l.Start(context.Background())
	const workers, per = 8, 1000
	var wg sync.WaitGroup
	var accepted atomic.Int64
	for w := range workers {
		wg.Go(func() {
			for i := range per {
				vals := []float32{float32(w), float32(i)}
				if l.Log(rec(fmt.Sprintf("%d-%d", w, i), fmt.Sprint("d", w%2), time.Time{}, vals...)) {
					accepted.Add(1)
				}
				if i%100 == 0 {
					_ = l.Stats()
				}
			}
		})
	}
	wg.Wait()
	mustClose(t, l)
	st := l.Stats()
	if st.Queued+st.Dropped != workers*per || st.Queued != accepted.Load() {
		t.Errorf("Stats = %+v, want queued+dropped = %d and queued = %d", st, workers*per, accepted.Load())
	}
	if st.Written != st.Queued || st.Lost != 0 {
		t.Errorf("Stats = %+v, want every queued record written", st)
	}
	seen := make(map[string]bool)
	for _, recs := range sink.records(t) {
		for _, r := range recs {
			if seen[r.RequestID] {
				t.Fatalf("record %s written twice", r.RequestID)
			}
			seen[r.RequestID] = true
		}
	}
	if int64(len(seen)) != st.Written {
		t.Errorf("read %d records, Stats.Written = %d", len(seen), st.Written)
	}
}

// TestSegmentKey checks the escaping of deployment names in keys.
func TestSegmentKey(t *testing.T) {
	opened := time.Unix(0, 1234)
	hour := time.Date(2026, 12, 31, 23, 59, 0, 0, time.UTC).Unix() / 3600
	for _, tc := range []struct{ dep, want string }{
		{"flights", "payloads/flights/2026/12/31/23/1234-7.ndjson.zst"},
		{"a/b", "payloads/a%2Fb/2026/12/31/23/1234-7.ndjson.zst"},
		{"", "payloads/_/2026/12/31/23/1234-7.ndjson.zst"},
		{"..", "payloads/%2E./2026/12/31/23/1234-7.ndjson.zst"},
	} {
		if got := segmentKey(partition{tc.dep, hour}, opened, 7); got != tc.want {
			t.Errorf("segmentKey(%q) = %q, want %q", tc.dep, got, tc.want)
		}
	}
}

// TestQueueBytesDrops checks that records are dropped once the values
// waiting in the queue reach QueueBytes, however short the queue is.
func TestQueueBytesDrops(t *testing.T) {
	sink := newMemSink()
	sink.Block = make(chan struct{})
	sink.Entered = make(chan struct{}, 1)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// Each record holds 8 inputs and 1 output: 36 bytes.
	l := New(sink, Config{QueueBytes: 100, SegmentRecords: 1, Now: func() time.Time { return t0 }, Logger: quiet()})
	l.Start(context.Background())
	eight := func() []float32 { return []float32{1, 2, 3, 4, 5, 6, 7, 8} }
	l.Log(rec("r0", "d", t0, eight()...))
	<-sink.Entered // the writer took r0 and waits in Put
	var got []bool
	for i := 1; i <= 4; i++ {
		got = append(got, l.Log(rec(fmt.Sprint("r", i), "d", t0, eight()...)))
	}
	if want := []bool{true, true, false, false}; !slices.Equal(got, want) {
		t.Fatalf("Log results %v, want %v", got, want)
	}
	// A record without values still fits.
	if !l.Log(Record{RequestID: "empty", Deployment: "d", Time: t0}) {
		t.Error("Log of a record without values = false, want true")
	}
	close(sink.Block)
	mustClose(t, l)
	if st := l.Stats(); st.Written != 4 || st.Dropped != 2 {
		t.Errorf("Stats = %+v, want 4 written, 2 dropped", st)
	}
}

// TestStartContextEnds checks that when the writer's context ends before
// Close, every later record is accounted for: dropped at once.
func TestStartContextEnds(t *testing.T) {
	sink := newMemSink()
	l := New(sink, Config{Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	l.Start(ctx)
	cancel()
	waitFor(t, "the writer to stop", func() bool {
		select {
		case <-l.done:
			return true
		default:
			return false
		}
	})
	// Nothing will write them: they are refused and counted as dropped at
	// once, not queued to be lost later.
	for i := range 5 {
		if l.Log(rec(fmt.Sprint(i), "d", time.Time{})) {
			t.Fatalf("Log(%d) = true after the writer stopped", i)
		}
	}
	if st := l.Stats(); st.Dropped != 5 || st.Written != 0 || st.QueueDepth != 0 {
		t.Errorf("Stats = %+v, want 5 dropped", st)
	}
	l.Close(context.Background())
}

// TestSegmentBytes checks that a segment is written once it holds
// SegmentBytes of NDJSON, however few records that is.
func TestSegmentBytes(t *testing.T) {
	sink := newMemSink()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(sink, Config{SegmentBytes: 1, Now: func() time.Time { return t0 }, Logger: quiet()})
	l.Start(context.Background())
	for i := range 3 {
		l.Log(rec(fmt.Sprint("r", i), "d", t0))
	}
	waitFor(t, "a segment per record", func() bool { return sink.count() == 3 })
	mustClose(t, l)
	if st := l.Stats(); st.Written != 3 || st.Segments != 3 {
		t.Errorf("Stats = %+v, want 3 records in 3 segments", st)
	}
}
