package batcher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// fakeCols and fakeOutputs shape the fake model: three features in, two
// values out per row.
const (
	fakeCols    = 3
	fakeOutputs = 2
)

// fake is a serving.Predictor whose outputs are a known function of each
// row (want), which records the size of every batch it predicts, and which
// can hold its first call until released, fail, or panic.
type fake struct {
	mu    sync.Mutex
	sizes []int

	holdFirst bool          // the first call blocks until release is closed
	entered   chan struct{} // closed when the first call starts
	release   chan struct{}
	once      sync.Once
	err       error
	panics    bool
}

func newFake() *fake {
	return &fake{entered: make(chan struct{}), release: make(chan struct{})}
}

func (f *fake) Features() []serving.Feature {
	fs := make([]serving.Feature, fakeCols)
	for i := range fs {
		fs[i] = serving.Feature{Name: fmt.Sprintf("f%d", i), Type: serving.Numeric}
	}
	return fs
}

func (f *fake) Outputs() int { return fakeOutputs }

func (f *fake) Predict(ctx context.Context, b serving.Batch, out []float32) error {
	f.mu.Lock()
	f.sizes = append(f.sizes, b.Rows)
	first := len(f.sizes) == 1
	f.mu.Unlock()
	if first && f.holdFirst {
		f.once.Do(func() { close(f.entered) })
		<-f.release
	}
	if f.panics {
		panic("fake model exploded")
	}
	if f.err != nil {
		return f.err
	}
	if b.Cols != fakeCols || len(out) != b.Rows*fakeOutputs {
		return fmt.Errorf("fake: got batch %d×%d with %d outputs", b.Rows, b.Cols, len(out))
	}
	for i := range b.Rows {
		copy(out[i*fakeOutputs:], want(b.Row(i)))
	}
	return nil
}

func (f *fake) batchSizes() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sizes)
}

// want is the fake model's function of one row.
func want(row []float32) []float32 {
	return []float32{row[0] + row[1] + row[2], row[0] * 2}
}

// rows returns a batch of n rows whose values start at base, so that every
// request of a test carries distinct values.
func rows(n int, base float32) serving.Batch {
	v := make([]float32, n*fakeCols)
	for i := range v {
		v[i] = base + float32(i)
	}
	return serving.Batch{Rows: n, Cols: fakeCols, Values: v}
}

// checkOutputs fails unless out holds want(row) for every row of b.
func checkOutputs(t *testing.T, b serving.Batch, out []float32) {
	t.Helper()
	for i := range b.Rows {
		got, exp := out[i*fakeOutputs:(i+1)*fakeOutputs], want(b.Row(i))
		if !slices.Equal(got, exp) {
			t.Errorf("row %d %v: got outputs %v, want %v", i, b.Row(i), got, exp)
		}
	}
}

// mustNew starts a Batcher over f and closes it when the test ends.
func mustNew(tb testing.TB, f serving.Predictor, cfg Config) *Batcher {
	tb.Helper()
	b := New(f, cfg)
	tb.Cleanup(func() { b.Close() })
	return b
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// call is a Predict running in its own goroutine.
type call struct {
	b    serving.Batch
	out  []float32
	done chan error
}

func start(ctx context.Context, b *Batcher, batch serving.Batch) *call {
	c := &call{b: batch, out: make([]float32, batch.Rows*fakeOutputs), done: make(chan error, 1)}
	go func() { c.done <- b.Predict(ctx, c.b, c.out) }()
	return c
}

// wait returns the call's result, failing the test if it never comes.
func (c *call) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-c.done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("Predict did not return")
		return nil
	}
}

// holdWorker starts a one-row call that the fake blocks in its first
// Predict, so that the Batcher has a batch in flight.
func holdWorker(t *testing.T, b *Batcher, f *fake) *call {
	t.Helper()
	c := start(context.Background(), b, rows(1, -1000))
	select {
	case <-f.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first request never reached the model")
	}
	return c
}

// queue starts one call per size in order, each queued before the next
// starts, so that their order in the queue is known.
func queue(t *testing.T, b *Batcher, sizes ...int) []*call {
	t.Helper()
	var calls []*call
	for i, n := range sizes {
		before := b.Stats().QueuedRows
		calls = append(calls, start(context.Background(), b, rows(n, float32(i*100))))
		waitFor(t, fmt.Sprintf("request %d to queue", i), func() bool { return b.Stats().QueuedRows == before+int64(n) })
	}
	return calls
}

func TestCoalescesWhileBusy(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBatch int
		queued   []int
		want     []int // batch sizes after the held one
	}{
		{"all in one batch", 64, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int{10}},
		{"max batch size splits", 4, []int{1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, []int{4, 4, 2}},
		{"whole requests only, in order", 4, []int{3, 3, 1}, []int{3, 4}},
		{"a full request alone", 4, []int{4, 1}, []int{4, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.holdFirst = true
			b := mustNew(t, f, Config{MaxBatchSize: tc.maxBatch, MaxDelay: time.Hour, Workers: 1})
			held := holdWorker(t, b, f)
			calls := queue(t, b, tc.queued...)
			close(f.release)
			if err := held.wait(t); err != nil {
				t.Fatalf("held request: %v", err)
			}
			for i, c := range calls {
				if err := c.wait(t); err != nil {
					t.Fatalf("request %d: %v", i, err)
				}
				checkOutputs(t, c.b, c.out)
			}
			if got, want := f.batchSizes(), append([]int{1}, tc.want...); !slices.Equal(got, want) {
				t.Errorf("batch sizes: got %v, want %v", got, want)
			}
		})
	}
}

func TestOutputsReachTheirCallers(t *testing.T) {
	f := newFake()
	const maxBatch = 8
	b := mustNew(t, f, Config{MaxBatchSize: maxBatch, Workers: 2})
	const callers, each = 16, 50
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	totalRows := 0
	for g := range callers {
		n := 1 + g%4
		totalRows += n * each
		wg.Go(func() {
			for i := range each {
				batch := rows(n, float32(g*10000+i*10))
				out := make([]float32, n*fakeOutputs)
				if err := b.Predict(context.Background(), batch, out); err != nil {
					errs <- err
					return
				}
				for r := range n {
					if got, exp := out[r*fakeOutputs:(r+1)*fakeOutputs], want(batch.Row(r)); !slices.Equal(got, exp) {
						errs <- fmt.Errorf("caller %d request %d row %d: got %v, want %v", g, i, r, got, exp)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sizes := f.batchSizes()
	sum := 0
	for _, s := range sizes {
		if s > maxBatch {
			t.Errorf("a batch of %d rows exceeds MaxBatchSize %d", s, maxBatch)
		}
		sum += s
	}
	if sum != totalRows {
		t.Errorf("the model saw %d rows, want %d", sum, totalRows)
	}
	if st := b.Stats(); st.Rows != uint64(totalRows) || st.Batches != uint64(len(sizes)) || st.QueuedRows != 0 {
		t.Errorf("stats: got %+v, want %d rows in %d batches, none queued", st, totalRows, len(sizes))
	}
	t.Logf("%d rows in %d batches", sum, len(sizes))
}

func TestIdleRequestIsNotDelayed(t *testing.T) {
	// With MaxDelay an hour, a request that waited for it would hit the
	// context's deadline instead of returning.
	f := newFake()
	b := mustNew(t, f, Config{MaxDelay: time.Hour, Workers: 2})
	for i := range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		batch := rows(1+i, float32(i))
		out := make([]float32, batch.Rows*fakeOutputs)
		err := b.Predict(ctx, batch, out)
		cancel()
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		checkOutputs(t, batch, out)
	}
	if got, want := f.batchSizes(), []int{1, 2, 3, 4, 5}; !slices.Equal(got, want) {
		t.Errorf("batch sizes: got %v, want %v", got, want)
	}
}

func TestMaxDelayDispatchesToAFreeWorker(t *testing.T) {
	// One worker is held; a second request must reach the other worker
	// once MaxDelay passes, without waiting for the first batch.
	f := newFake()
	f.holdFirst = true
	b := mustNew(t, f, Config{MaxDelay: time.Millisecond, Workers: 2})
	held := holdWorker(t, b, f)
	c := start(context.Background(), b, rows(2, 7))
	if err := c.wait(t); err != nil {
		t.Fatal(err)
	}
	checkOutputs(t, c.b, c.out)
	close(f.release)
	if err := held.wait(t); err != nil {
		t.Fatal(err)
	}
}

func TestLargeRequestIsPredictedAlone(t *testing.T) {
	f := newFake()
	b := mustNew(t, f, Config{MaxBatchSize: 4})
	batch := rows(10, 1)
	out := make([]float32, 10*fakeOutputs)
	if err := b.Predict(context.Background(), batch, out); err != nil {
		t.Fatal(err)
	}
	checkOutputs(t, batch, out)
	if got := f.batchSizes(); !slices.Equal(got, []int{10}) {
		t.Errorf("batch sizes: got %v, want [10]", got)
	}
}

func TestCancel(t *testing.T) {
	const sentinel = -42
	fresh := func(c *call) {
		for i := range c.out {
			c.out[i] = sentinel
		}
	}
	untouched := func(t *testing.T, c *call) {
		t.Helper()
		for i, v := range c.out {
			if v != sentinel {
				t.Fatalf("out[%d] = %v written after Predict returned", i, v)
			}
		}
	}
	t.Run("while queued", func(t *testing.T) {
		f := newFake()
		f.holdFirst = true
		b := New(f, Config{MaxDelay: time.Hour, Workers: 1})
		held := holdWorker(t, b, f)
		ctx, cancel := context.WithCancel(context.Background())
		c := &call{b: rows(2, 5), out: make([]float32, 2*fakeOutputs), done: make(chan error, 1)}
		fresh(c)
		go func() { c.done <- b.Predict(ctx, c.b, c.out) }()
		waitFor(t, "the request to queue", func() bool { return b.Stats().QueuedRows == 2 })
		cancel()
		if err := c.wait(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		close(f.release)
		if err := held.wait(t); err != nil {
			t.Fatal(err)
		}
		b.Close()
		untouched(t, c)
		if got := f.batchSizes(); !slices.Equal(got, []int{1}) {
			t.Errorf("batch sizes: got %v, want [1] (the canceled rows skipped)", got)
		}
	})
	t.Run("while predicting", func(t *testing.T) {
		f := newFake()
		f.holdFirst = true
		b := New(f, Config{Workers: 1})
		ctx, cancel := context.WithCancel(context.Background())
		c := &call{b: rows(1, 5), out: make([]float32, fakeOutputs), done: make(chan error, 1)}
		fresh(c)
		go func() { c.done <- b.Predict(ctx, c.b, c.out) }()
		<-f.entered
		cancel()
		if err := c.wait(t); !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		close(f.release)
		b.Close() // waits for the worker to finish the batch
		untouched(t, c)
	})
}

func TestErrorsReachEveryCaller(t *testing.T) {
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		setup  func(*fake)
		wantIs func(error) bool
	}{
		{"error", func(f *fake) { f.err = errBoom }, func(err error) bool { return errors.Is(err, errBoom) }},
		{"panic", func(f *fake) { f.panics = true }, func(err error) bool { return mloop.ErrorCode(err) == mloop.EINTERNAL }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.holdFirst = true
			tc.setup(f)
			b := mustNew(t, f, Config{MaxDelay: time.Hour, Workers: 1, Logger: slog.New(slog.DiscardHandler)})
			held := holdWorker(t, b, f)
			calls := queue(t, b, 1, 2, 3)
			close(f.release)
			for i, c := range append([]*call{held}, calls...) {
				if err := c.wait(t); !tc.wantIs(err) {
					t.Errorf("caller %d: got %v", i, err)
				}
			}
			if got := f.batchSizes(); !slices.Equal(got, []int{1, 6}) {
				t.Errorf("batch sizes: got %v, want [1 6]", got)
			}
		})
	}
}

func TestInvalidBatch(t *testing.T) {
	b := mustNew(t, newFake(), Config{})
	for _, tc := range []struct {
		name  string
		batch serving.Batch
		out   int
	}{
		{"wrong column count", serving.Batch{Rows: 1, Cols: 2, Values: make([]float32, 2)}, fakeOutputs},
		{"values do not match shape", serving.Batch{Rows: 2, Cols: fakeCols, Values: make([]float32, fakeCols)}, 2 * fakeOutputs},
		{"negative rows", serving.Batch{Rows: -1, Cols: fakeCols}, 0},
		{"short output buffer", rows(2, 0), fakeOutputs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := b.Predict(context.Background(), tc.batch, make([]float32, tc.out))
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Errorf("got %v, want EINVALID", err)
			}
		})
	}
	if err := b.Predict(context.Background(), rows(0, 0), nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestCloseFinishesQueuedWork(t *testing.T) {
	baseline := runtime.NumGoroutine()
	f := newFake()
	f.holdFirst = true
	b := New(f, Config{MaxDelay: time.Hour, Workers: 3})
	held := holdWorker(t, b, f)
	calls := queue(t, b, 1, 2, 3)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	waitFor(t, "Predict to refuse after Close", func() bool {
		err := b.Predict(context.Background(), rows(1, 0), make([]float32, fakeOutputs))
		return mloop.ErrorCode(err) == mloop.EUNAVAILABLE
	})
	close(f.release)
	for i, c := range append([]*call{held}, calls...) {
		if err := c.wait(t); err != nil {
			t.Fatalf("request %d queued before Close: %v", i, err)
		}
		checkOutputs(t, c.b, c.out)
	}
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := b.Predict(context.Background(), rows(1, 0), make([]float32, fakeOutputs)); mloop.ErrorCode(err) != mloop.EUNAVAILABLE {
		t.Errorf("Predict after Close: got %v, want EUNAVAILABLE", err)
	}
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= baseline })
}

func TestNoGoroutineLeakUnderLoad(t *testing.T) {
	baseline := runtime.NumGoroutine()
	b := New(newFake(), Config{MaxBatchSize: 5, Workers: 4})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for i := range 100 {
				n := 1 + r.IntN(7)
				ctx, cancel := context.WithCancel(context.Background())
				if i%10 == 0 {
					cancel() // some requests give up at once
				}
				_ = b.Predict(ctx, rows(n, float32(i)), make([]float32, n*fakeOutputs))
				cancel()
			}
		})
	}
	wg.Wait()
	b.Close()
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= baseline })
}

// trivial is a predictor that does almost nothing, so that a benchmark over
// it measures the Batcher's own cost.
type trivial struct{}

func (trivial) Features() []serving.Feature { return make([]serving.Feature, fakeCols) }
func (trivial) Outputs() int                { return 1 }
func (trivial) Predict(_ context.Context, b serving.Batch, out []float32) error {
	for i := range b.Rows {
		out[i] = b.Values[i*b.Cols]
	}
	return nil
}

// perCall is a predictor whose every call costs a fixed 20µs of CPU however
// many rows it holds, like a runtime with a per-request overhead (a hop to
// another process, a framework's setup): the case batching is for.
type perCall struct{ trivial }

func (p perCall) Predict(ctx context.Context, b serving.Batch, out []float32) error {
	for start := time.Now(); time.Since(start) < 20*time.Microsecond; {
	}
	return p.trivial.Predict(ctx, b, out)
}

// BenchmarkBatcher measures one single-row Predict with 8 callers running
// at once; "rows/batch" is the mean batch size reached. Over "trivial", a
// predictor that does almost no work, it is the Batcher's own cost; over
// "per-call", whose calls cost 20µs each, it is the gain from batching.
// The "direct" variants call the predictor itself, for comparison.
func BenchmarkBatcher(b *testing.B) {
	const callers = 8
	run := func(b *testing.B, p serving.Predictor) {
		b.ReportAllocs()
		var wg sync.WaitGroup
		per := b.N/callers + 1
		b.ResetTimer()
		for range callers {
			wg.Go(func() {
				batch := serving.Batch{Rows: 1, Cols: fakeCols, Values: make([]float32, fakeCols)}
				out := make([]float32, 1)
				for range per {
					if err := p.Predict(context.Background(), batch, out); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	for _, p := range []struct {
		name string
		p    serving.Predictor
	}{{"trivial", trivial{}}, {"per-call", perCall{}}} {
		b.Run(p.name+"/batched", func(b *testing.B) {
			bt := New(p.p, Config{})
			defer bt.Close()
			run(b, bt)
			if st := bt.Stats(); st.Batches > 0 {
				b.ReportMetric(float64(st.Rows)/float64(st.Batches), "rows/batch")
			}
		})
		b.Run(p.name+"/direct", func(b *testing.B) { run(b, p.p) })
	}
}
