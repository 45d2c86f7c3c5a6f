package monitor

import (
	"math"
	"strconv"
	"time"

	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/stats"
)

// aggregator owns the open windows; only its goroutine touches them.
type aggregator struct {
	m       *Monitor
	windows map[*depState]*openWindow
}

// openWindow is a deployment's open window.
type openWindow struct {
	start    time.Time
	requests int64
	mvs      map[*mvState]*mvWindow
	order    []*mvState
}

// mvWindow is one model version's share of an open window.
type mvWindow struct {
	ref      *winRef
	mv       *mvState
	feat     *dataset.Profiler
	pred     *dataset.Profiler
	fb, pb   dataset.Batch // scratch batches
	rows     int64
	requests int64
	errors   int64
	client   int64
	revision int64
	lat      *stats.QuantileSketch
	dq       []FeatureQuality
	checked  int64 // rows checked against a schema
	schema   bool
}

func newAggregator(m *Monitor) *aggregator {
	return &aggregator{m: m, windows: map[*depState]*openWindow{}}
}

// snapRequest asks the aggregator for a copy of a deployment's open window.
type snapRequest struct {
	deployment string
	reply      chan []*closedWindow
}

func (a *aggregator) run() {
	m := a.m
	tick := time.NewTicker(m.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case b := <-m.full:
			a.add(b)
		case <-tick.C:
			a.drainStripes()
			a.closeDue()
			m.fb.sweep(m.cfg.Now().Add(-2 * m.cfg.Horizon).UnixNano())
		case done := <-m.flushReq:
			a.drainQueue()
			a.drainStripes()
			for d := range a.windows {
				a.close(d)
			}
			a.toFinisher(finisherMsg{done: done})
		case done := <-m.drainReq:
			a.drainQueue()
			a.drainStripes()
			close(done)
		case r := <-m.snapReq:
			r.reply <- a.snapshot(r.deployment)
		case <-m.ctx.Done():
			return
		}
	}
}

// toFinisher hands a message to the finisher, unless the monitor stops.
func (a *aggregator) toFinisher(msg finisherMsg) {
	select {
	case a.m.closedCh <- msg:
	case <-a.m.ctx.Done():
	}
}

func (a *aggregator) drainQueue() {
	for {
		select {
		case b := <-a.m.full:
			a.add(b)
		default:
			return
		}
	}
}

// drainStripes takes every partly filled buffer.
func (a *aggregator) drainStripes() {
	a.m.deps.Range(func(_, v any) bool {
		for _, mv := range *v.(*depState).mvs.Load() {
			for i := range mv.stripes {
				s := &mv.stripes[i]
				s.mu.Lock()
				b := s.buf
				s.buf = nil
				s.mu.Unlock()
				if b != nil {
					a.add(b)
				}
			}
		}
		return true
	})
}

// closeDue closes the windows whose time is up.
func (a *aggregator) closeDue() {
	now := a.m.cfg.Now()
	for d, w := range a.windows {
		if !now.Before(w.start.Add(a.m.cfg.Window)) {
			a.close(d)
		}
	}
}

// window returns the deployment's open window, opening one.
func (a *aggregator) window(d *depState) *openWindow {
	w := a.windows[d]
	if w == nil {
		w = &openWindow{start: a.m.cfg.Now(), mvs: map[*mvState]*mvWindow{}}
		a.windows[d] = w
	}
	return w
}

// mvWindow returns the model version's share of w, creating it.
func (a *aggregator) mvWindow(w *openWindow, mv *mvState) *mvWindow {
	mw := w.mvs[mv]
	if mw != nil {
		return mw
	}
	m := a.m
	// The first lookup is made here, once per model version, so that the
	// schema checks apply from its first row; it waits at most
	// firstReferenceTimeout (the finisher retries a failure).
	mv.prefetch.Do(func() { m.prefetchReference(mv) })
	fcols := make([]dataset.Column, len(mv.features))
	mw = &mvWindow{mv: mv, lat: stats.NewQuantileSketch(stats.DefaultQuantileK), dq: make([]FeatureQuality, len(mv.features))}
	mw.fb.Cols = make([]dataset.ColumnValues, len(mv.features))
	for i, f := range mv.features {
		fcols[i] = dataset.Column{Name: f.Name, Type: dataset.TypeFloat}
		mw.fb.Cols[i].Kind = dataset.KindFloat
		if f.Type == serving.Categorical {
			fcols[i].Type = dataset.TypeInteger
			mw.fb.Cols[i].Kind = dataset.KindInt
		}
		mw.dq[i].Feature = f.Name
	}
	names := predictionColumns(mv.outputs)
	pcols := make([]dataset.Column, len(names))
	mw.pb.Cols = make([]dataset.ColumnValues, len(names))
	for i, n := range names {
		pcols[i] = dataset.Column{Name: n, Type: dataset.TypeFloat}
		mw.pb.Cols[i].Kind = dataset.KindFloat
	}
	// One goroutine each: the monitor's work must leave the other CPUs to
	// the requests it watches (spreading columns over every CPU made the
	// serving p99 spike when a buffer was profiled).
	opts := dataset.ProfileOptions{Workers: 1}
	mw.feat = dataset.NewProfiler(mv.dep.name+" "+mv.key, fcols, opts)
	mw.pred = dataset.NewProfiler(mv.dep.name+" "+mv.key+" predictions", pcols, opts)
	mw.ref = &winRef{id: newWindowID(), mv: mv, start: w.start}
	m.fb.openWindow(mw.ref)
	w.mvs[mv] = mw
	w.order = append(w.order, mv)
	return mw
}

// predictionColumns names the prediction columns of a model with k outputs.
func predictionColumns(k int) []string {
	if k <= 1 {
		return []string{"prediction"}
	}
	out := make([]string, k)
	for i := range out {
		out[i] = "prediction_" + strconv.Itoa(i)
	}
	return out
}

// add adds a buffer to its deployment's open window, closing the window
// every WindowRequests requests (a buffer may straddle windows).
func (a *aggregator) add(b *buffer) {
	m := a.m
	mv := b.mv
	d := mv.dep
	reqs := b.reqs
	row := 0
	for len(reqs) > 0 {
		w := a.window(d)
		n := len(reqs)
		if lim := m.cfg.WindowRequests; lim > 0 {
			n = int(min(int64(n), lim-w.requests))
		}
		seg := reqs[:n]
		segRows := 0
		for _, r := range seg {
			segRows += int(r.rows)
		}
		a.addSegment(w, mv, seg, b, row, segRows)
		row += segRows
		reqs = reqs[n:]
		w.requests += int64(n)
		if lim := m.cfg.WindowRequests; lim > 0 && w.requests >= lim {
			a.close(d)
		}
	}
	m.release(b)
}

// addSegment adds requests seg, whose rows start at row of b, to w.
func (a *aggregator) addSegment(w *openWindow, mv *mvState, seg []reqRec, b *buffer, row, rows int) {
	m := a.m
	mw := a.mvWindow(w, mv)
	for _, r := range seg {
		mw.requests++
		switch {
		case r.status >= 500:
			mw.errors++
		case r.status >= 400:
			mw.client++
		}
		mw.lat.Add(float64(r.lat) / 1e6)
		mw.revision = r.revision
	}
	if rows == 0 {
		return
	}
	cols, outs := len(mv.features), mv.outputs
	x := b.x[row*cols : (row+rows)*cols]
	y := b.y[row*outs : (row+rows)*outs]
	var checks []featCheck
	if rr := mv.ref.Load(); rr != nil && rr.checks != nil {
		checks = rr.checks
		mw.schema = true
		mw.checked += int64(rows)
	}
	fillFeatures(&mw.fb, x, rows, cols, mw.dq, checks)
	fillFloats(&mw.pb, y, rows, outs)
	if err := mw.feat.Add(&mw.fb); err != nil {
		m.log.Error("monitor: profile features", "deployment", mv.dep.name, "model_version", mv.key, "error", err)
	}
	if err := mw.pred.Add(&mw.pb); err != nil {
		m.log.Error("monitor: profile predictions", "deployment", mv.dep.name, "model_version", mv.key, "error", err)
	}
	mw.rows += int64(rows)
	m.fb.track(mw.ref, seg, y, outs)
	m.met.windowRows(mv, mw.rows)
}

// fillFeatures converts rows of row-major float32 features into the
// profiler's columns (NaN as null; categorical codes as integers) and counts
// data-quality issues.
func fillFeatures(bt *dataset.Batch, x []float32, rows, cols int, dq []FeatureQuality, checks []featCheck) {
	bt.Rows = rows
	for j := range cols {
		cv := &bt.Cols[j]
		cv.Null = grow(cv.Null, rows)
		q := &dq[j]
		var c *featCheck
		if checks != nil {
			c = &checks[j]
			if c.notInSchema {
				q.NotInSchema = true
				c = nil
			}
		}
		if cv.Kind == dataset.KindInt {
			cv.Int = grow(cv.Int, rows)
			for i := range rows {
				v := float64(x[i*cols+j])
				code := int64(v)
				bad := v != v || float64(code) != v || code < 0
				cv.Null[i] = bad
				cv.Int[i] = 0
				if v != v {
					q.Nulls++
					if c != nil && !c.nullable {
						q.NullViolations++
					}
					continue
				}
				if bad {
					q.TypeErrors++
					continue
				}
				cv.Int[i] = code
				if c != nil && c.domain != nil && !c.domain[code] {
					q.OutOfDomain++
				}
			}
			continue
		}
		cv.Float = grow(cv.Float, rows)
		for i := range rows {
			v := float64(x[i*cols+j])
			cv.Float[i] = v
			isNull := v != v
			cv.Null[i] = isNull
			if isNull {
				q.Nulls++
				if c != nil && !c.nullable {
					q.NullViolations++
				}
				continue
			}
			if c == nil {
				continue
			}
			switch {
			case c.integer && (v != math.Trunc(v) || math.IsInf(v, 0)):
				q.TypeErrors++
			case c.boolean && v != 0 && v != 1:
				q.TypeErrors++
			case v < c.lo || v > c.hi:
				q.OutOfRange++
			case c.domain != nil && !c.domain[int64(v)]:
				q.OutOfDomain++
			}
		}
	}
}

// fillFloats converts rows of outputs into float columns.
func fillFloats(bt *dataset.Batch, y []float32, rows, outs int) {
	bt.Rows = rows
	for j := range outs {
		cv := &bt.Cols[j]
		cv.Float = grow(cv.Float, rows)
		for i := range rows {
			cv.Float[i] = float64(y[i*outs+j])
		}
	}
}

func grow[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// closedWindow is a window handed to the finisher: its counts and the
// profiles to compare.
type closedWindow struct {
	sum  *WindowSummary
	mv   *mvState
	ref  *winRef
	feat *dataset.Profile
	pred *dataset.Profile
}

// finish turns a model version's open window into a closedWindow; with
// snapshot, its profiles are copies and the window stays open.
func (mw *mvWindow) finish(start, end time.Time, snapshot bool) *closedWindow {
	mv := mw.mv
	feat, err := mw.feat.Finish()
	if err != nil {
		feat = &dataset.Profile{}
	}
	pred, err := mw.pred.Finish()
	if err != nil {
		pred = &dataset.Profile{}
	}
	if snapshot {
		f, p := &dataset.Profile{}, &dataset.Profile{}
		_ = f.Merge(feat)
		_ = p.Merge(pred)
		feat, pred = f, p
	}
	s := &WindowSummary{
		ID: mw.ref.id, Deployment: mv.dep.name, ModelVersion: mv.key, Model: mv.model, Version: mv.version,
		Revision: mw.revision, Start: start.UTC(), End: end.UTC(),
		Rows: mw.rows, Requests: mw.requests, Errors: mw.errors, ClientErrors: mw.client,
		DataQuality: DataQuality{Schema: mw.schema, CheckedRows: mw.checked, Features: append([]FeatureQuality(nil), mw.dq...)},
	}
	if mw.lat.Count() > 0 {
		s.LatencyP50, s.LatencyP99 = mw.lat.Quantile(0.5), mw.lat.Quantile(0.99)
	}
	for i := range s.DataQuality.Features {
		s.DataQuality.Issues += s.DataQuality.Features[i].issues()
	}
	return &closedWindow{sum: s, mv: mv, ref: mw.ref, feat: feat, pred: pred}
}

// close closes the deployment's open window and hands it to the finisher.
func (a *aggregator) close(d *depState) {
	w := a.windows[d]
	if w == nil {
		return
	}
	delete(a.windows, d)
	end := a.m.cfg.Now()
	for _, mv := range w.order {
		mw := w.mvs[mv]
		cw := mw.finish(w.start, end, false)
		cw.sum.Quality = a.m.fb.closeWindow(mw.ref)
		a.m.met.windowClosed(mv)
		a.toFinisher(finisherMsg{window: cw})
	}
}

// snapshot copies the deployment's open window.
func (a *aggregator) snapshot(deployment string) []*closedWindow {
	var out []*closedWindow
	for d, w := range a.windows {
		if d.name != deployment {
			continue
		}
		now := a.m.cfg.Now()
		for _, mv := range w.order {
			mw := w.mvs[mv]
			cw := mw.finish(w.start, now, true)
			cw.sum.Quality = a.m.fb.liveQuality(mw.ref)
			out = append(out, cw)
		}
	}
	return out
}
