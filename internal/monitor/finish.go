package monitor

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/stats"
)

// finisherMsg is a closed window to save, or (done set) a flush marker:
// the finisher saves pending quality and closes done.
type finisherMsg struct {
	window *closedWindow
	done   chan struct{}
}

// referenceTimeout bounds one reference lookup.
const referenceTimeout = 30 * time.Second

// saveTimeout bounds one store call of the finisher.
const saveTimeout = 30 * time.Second

func (m *Monitor) runFinisher() {
	tick := time.NewTicker(m.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case msg := <-m.closedCh:
			if msg.window != nil {
				m.saveWindow(msg.window)
			}
			if msg.done != nil {
				m.flushQuality()
				close(msg.done)
			}
		case <-tick.C:
			m.flushQuality()
			m.met.updateQuality()
		case <-m.ctx.Done():
			return
		}
	}
}

// reference returns the model version's reference lookup, refreshing it
// from the cache (which retries failures after ReferenceRetry).
func (m *Monitor) reference(mv *mvState) *refResult {
	return m.referenceWithin(mv, referenceTimeout)
}

// firstReferenceTimeout bounds the aggregator's first reference lookup of
// a model version.
const firstReferenceTimeout = 2 * time.Second

func (m *Monitor) referenceWithin(mv *mvState, timeout time.Duration) *refResult {
	ctx, cancel := context.WithTimeout(m.ctx, timeout)
	defer cancel()
	ref, err := m.refs.get(ctx, mv.model, mv.version)
	if old := mv.ref.Load(); old != nil && old.ref == ref && old.err == err {
		return old
	}
	rr := &refResult{ref: ref, err: err}
	if err == nil {
		rr.checks = buildChecks(mv.features, ref)
	}
	mv.ref.Store(rr)
	return rr
}

// prefetchReference loads the reference when a model version first serves,
// so that schema checks apply from the start. Aggregator only.
func (m *Monitor) prefetchReference(mv *mvState) {
	rr := m.referenceWithin(mv, firstReferenceTimeout)
	if rr.err != nil && !mloop.IsNotFound(rr.err) {
		m.log.Warn("monitor: reference lookup failed", "deployment", mv.dep.name, "model_version", mv.key, "error", rr.err)
	}
}

// saveWindow computes a closed window's drift and saves it.
func (m *Monitor) saveWindow(cw *closedWindow) {
	m.describe(cw, true)
	ctx, cancel := context.WithTimeout(m.ctx, saveTimeout)
	defer cancel()
	var err error
	if m.store != nil {
		err = m.store.SaveWindow(ctx, cw.sum)
	}
	m.windowsClosed.Add(1)
	if err != nil {
		m.saveErrors.Add(1)
		m.log.Error("monitor: save window", "deployment", cw.sum.Deployment, "model_version", cw.sum.ModelVersion, "error", err)
	} else {
		m.log.Debug("monitor: window closed", "deployment", cw.sum.Deployment, "model_version", cw.sum.ModelVersion,
			"rows", cw.sum.Rows, "dataset_drift", cw.sum.Drift.DatasetDrift)
	}
	m.fb.saved(cw.ref, err == nil)
	m.met.windowSaved(cw.sum)
	if m.cfg.OnWindow != nil && err == nil {
		m.cfg.OnWindow(cw.sum)
	}
}

// describe fills a window's reference, drift and prediction drift; first
// says the window is closed (so that it may become the model version's
// prediction reference).
func (m *Monitor) describe(cw *closedWindow, closed bool) {
	s := cw.sum
	rr := m.reference(cw.mv)
	s.Profiles = &WindowProfiles{Features: cw.feat, Predictions: cw.pred}
	var ref *Reference
	switch {
	case rr.err != nil && mloop.IsNotFound(rr.err):
		s.Drift = Drift{Status: DriftNoReference, Reason: mloop.ErrorMessage(rr.err)}
	case rr.err != nil:
		s.Drift = Drift{Status: DriftNoReference, Reason: "the reference could not be read: " + rr.err.Error()}
	default:
		ref = rr.ref
		s.Reference = ref.Dataset
		switch {
		case cw.feat.Rows == 0:
			s.Drift = Drift{Status: DriftEmpty, Reason: "the window has no rows"}
		case ref.Profile == nil:
			s.Drift = Drift{Status: DriftNoReference, Reason: fmt.Sprintf("the reference %s has no profile", ref.Dataset)}
		default:
			s.Drift = compareFeatures(ref, cw.feat, cw.mv.features, m.cfg.Drift)
		}
	}
	// Prediction drift: against the reference predictions, else the
	// model version's first window with rows.
	var predRef *dataset.Profile
	if ref != nil && ref.Predictions != nil {
		predRef = ref.Predictions
	} else if closed {
		predRef = m.firstPredictions(cw)
	} else {
		predRef = cw.mv.firstPredSnapshot()
	}
	switch {
	case cw.pred.Rows == 0:
		s.PredictionDrift = Drift{Status: DriftEmpty, Reason: "the window has no rows"}
	case predRef == nil && closed:
		s.PredictionDrift = Drift{Status: DriftIsReference, Reason: "the model version's first window is the reference of its prediction drift"}
	case predRef == nil:
		s.PredictionDrift = Drift{Status: DriftNoReference, Reason: "no window of this model version has closed yet"}
	default:
		s.PredictionDrift = compareProfiles(predRef, cw.pred, predictionColumns(cw.mv.outputs), nil, m.cfg.Drift)
	}
}

// firstPredictions returns the prediction profile the window is compared
// with: the model version's first window (looked up in the store after a
// restart), or nil when cw becomes that first window. Finisher only.
func (m *Monitor) firstPredictions(cw *closedWindow) *dataset.Profile {
	mv := cw.mv
	if !mv.firstDone && m.store != nil {
		mv.firstDone = true
		ctx, cancel := context.WithTimeout(m.ctx, saveTimeout)
		ws, err := m.store.ListWindows(ctx, mv.dep.name, WindowFilter{ModelVersion: mv.key, Oldest: true, Limit: 8, WithProfiles: true})
		cancel()
		if err != nil {
			m.log.Warn("monitor: read the first window", "deployment", mv.dep.name, "model_version", mv.key, "error", err)
		}
		for _, w := range ws {
			if w.Profiles != nil && w.Profiles.Predictions != nil && w.Profiles.Predictions.Rows > 0 {
				mv.setFirstPred(w.Profiles.Predictions)
				break
			}
		}
	}
	mv.firstDone = true
	if p := mv.firstPredSnapshot(); p != nil {
		return p
	}
	if cw.pred.Rows > 0 {
		mv.setFirstPred(cw.pred)
	}
	return nil
}

func (mv *mvState) setFirstPred(p *dataset.Profile) {
	mv.firstMu.Lock()
	mv.firstPred = p
	mv.firstMu.Unlock()
}

func (mv *mvState) firstPredSnapshot() *dataset.Profile {
	mv.firstMu.Lock()
	defer mv.firstMu.Unlock()
	return mv.firstPred
}

// compareFeatures compares a window's feature profile with the reference:
// the features whose reference column exists and can be compared (a
// categorical feature against a string column needs Reference.Categories).
func compareFeatures(ref *Reference, cur *dataset.Profile, features []serving.Feature, opts dataset.DriftOptions) Drift {
	var names []string
	var skipped []SkippedColumn
	converted := &dataset.Profile{Rows: cur.Rows}
	for _, f := range features {
		rc, cc := ref.Profile.Column(f.Name), cur.Column(f.Name)
		if cc == nil {
			continue
		}
		if rc == nil {
			skipped = append(skipped, SkippedColumn{f.Name, fmt.Sprintf("the reference %s has no column %q", ref.Dataset, f.Name)})
			continue
		}
		switch rc.Type {
		case dataset.TypeInteger, dataset.TypeFloat:
		case dataset.TypeString:
			cats := ref.Categories[f.Name]
			if f.Type != serving.Categorical || cats == nil {
				skipped = append(skipped, SkippedColumn{f.Name, fmt.Sprintf("the reference column is %s and the model reads numbers; set the category of each code (Reference.Categories) to compare them", rc.Type)})
				continue
			}
			sc, err := codesAsStrings(cc, cats)
			if err != nil {
				skipped = append(skipped, SkippedColumn{f.Name, err.Error()})
				continue
			}
			cc = sc
		default:
			skipped = append(skipped, SkippedColumn{f.Name, fmt.Sprintf("the reference column is %s and the model reads numbers", rc.Type)})
			continue
		}
		names = append(names, f.Name)
		converted.Columns = append(converted.Columns, cc)
	}
	d := compareProfiles(ref.Profile, converted, names, skipped, opts)
	return d
}

// compareProfiles runs dataset.DriftProfiles on the named columns.
func compareProfiles(ref, cur *dataset.Profile, names []string, skipped []SkippedColumn, opts dataset.DriftOptions) Drift {
	if len(names) == 0 {
		return Drift{Status: DriftNoReference, Reason: "no column can be compared with the reference", Skipped: skipped}
	}
	opts.Columns = names
	rep, err := dataset.DriftProfiles(ref, cur, opts)
	if err != nil {
		return Drift{Status: DriftFailed, Reason: err.Error(), Skipped: skipped}
	}
	d := Drift{Status: DriftOK, Drifted: rep.Drifted, Share: rep.Share, DriftShare: rep.DriftShare, DatasetDrift: rep.DatasetDrift, Skipped: skipped}
	for _, c := range rep.Columns {
		fd := FeatureDrift{Feature: c.Column, Method: c.Method, Drifted: c.Drift, Note: c.Note}
		if r := c.Result(c.Method); r != nil {
			fd.Statistic, fd.PValue, fd.Threshold = r.Statistic, r.PValue, r.Threshold
			if fd.Note == "" {
				fd.Note = r.Note
			}
		}
		if math.IsNaN(fd.Statistic) || math.IsInf(fd.Statistic, 0) {
			fd.Statistic = 0 // JSON cannot hold it; the note says why
		}
		d.Features = append(d.Features, fd)
	}
	return d
}

// codesAsStrings turns the integer column of a categorical feature into a
// string column of its categories (code i is cats[i]); it needs the codes'
// exact counts.
func codesAsStrings(c *dataset.ColumnProfile, cats []string) (*dataset.ColumnProfile, error) {
	out := &dataset.ColumnProfile{Name: c.Name, Type: dataset.TypeString, Count: c.Count, Nulls: c.Nulls,
		Frequent: stats.NewFrequentItems(stats.DefaultFrequentLimit), DistinctSketch: stats.NewDistinctCounter()}
	if c.Frequent == nil {
		return out, nil
	}
	if !c.Frequent.Exact() {
		return nil, fmt.Errorf("column %q has too many distinct codes to map them to categories", c.Name)
	}
	for _, it := range c.Frequent.Items() {
		code, err := strconv.ParseInt(it.Value, 10, 64)
		name := "(code " + it.Value + ")"
		if err == nil && code >= 0 && code < int64(len(cats)) {
			name = cats[code]
		}
		out.Frequent.Add(name, it.Count)
		out.DistinctSketch.AddString(name)
	}
	out.Distinct = int64(out.Frequent.Len())
	return out, nil
}

// featCheck is a feature's data-quality check from the schema.
type featCheck struct {
	notInSchema bool
	nullable    bool
	integer     bool
	boolean     bool
	lo, hi      float64
	domain      map[int64]bool // nil: any value
}

// buildChecks derives per-feature checks from a reference's schema; nil
// without one.
func buildChecks(features []serving.Feature, ref *Reference) []featCheck {
	if ref == nil || ref.Schema == nil {
		return nil
	}
	checks := make([]featCheck, len(features))
	for i, f := range features {
		c := &checks[i]
		c.lo, c.hi, c.nullable = math.Inf(-1), math.Inf(1), true
		cs := ref.Schema.Column(f.Name)
		if cs == nil {
			c.notInSchema = true
			continue
		}
		c.nullable = cs.Nullable
		if cs.Min != nil {
			c.lo = *cs.Min
		}
		if cs.Max != nil {
			c.hi = *cs.Max
		}
		switch cs.Type {
		case dataset.TypeInteger:
			c.integer = true
			if len(cs.Domain) > 0 {
				c.domain = map[int64]bool{}
				for _, v := range cs.Domain {
					if n, err := strconv.ParseInt(v, 10, 64); err == nil {
						c.domain[n] = true
					}
				}
			}
		case dataset.TypeBoolean:
			c.boolean = true
		case dataset.TypeString:
			cats := ref.Categories[f.Name]
			if f.Type == serving.Categorical && cats != nil && len(cs.Domain) > 0 {
				allowed := map[string]bool{}
				for _, v := range cs.Domain {
					allowed[v] = true
				}
				c.domain = map[int64]bool{}
				for code, name := range cats {
					if allowed[name] {
						c.domain[int64(code)] = true
					}
				}
			}
		}
	}
	return checks
}

// CurrentWindow returns the deployment's open window, one summary per
// model version, with drift against the reference computed now; nothing
// when no window is open. The window's rows still in Observe's buffers
// (at most FlushInterval old) are not in it.
func (m *Monitor) CurrentWindow(ctx context.Context, deployment string) ([]*WindowSummary, error) {
	if !m.opened.Load() || m.closed.Load() {
		return nil, mloop.Errorf(mloop.EUNAVAILABLE, "the monitor is not running")
	}
	cws, err := m.openWindows(ctx, deployment)
	if err != nil {
		return nil, err
	}
	out := make([]*WindowSummary, 0, len(cws))
	for _, cw := range cws {
		m.describe(cw, false)
		out = append(out, cw.sum)
	}
	return out, nil
}
