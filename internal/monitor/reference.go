package monitor

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/pipeline"
)

// Reference is what a model version's windows are compared with.
type Reference struct {
	// Dataset names the training dataset version ("flights@3").
	Dataset string
	// Profile is its profile (nil when none: no feature drift).
	Profile *dataset.Profile
	// Schema is the dataset's schema (nil when none: data quality counts
	// only nulls and type errors).
	Schema *dataset.Schema
	// Predictions, when set, is a profile of the model's predictions on
	// reference data (columns "prediction" or "prediction_0"…); without it
	// prediction drift compares with the model version's first window.
	Predictions *dataset.Profile
	// Categories maps a categorical feature whose reference column holds
	// strings to the category of each integer code the model reads (code i
	// is Categories[f][i]), so that codes compare with the strings. A
	// string column without a mapping is not compared (a skipped column).
	Categories map[string][]string
}

// ReferenceSource finds the reference of a model version. An error kind
// ENOTFOUND means there is none (the windows are profiled, drift reports
// "no reference" with the error's message); other errors are retried later.
type ReferenceSource interface {
	Reference(ctx context.Context, model string, version int64) (*Reference, error)
}

// LineageGraph walks lineage; *pipeline.Service implements it.
type LineageGraph interface {
	Lineage(ctx context.Context, ref string, d pipeline.Direction, depth int) (*pipeline.Lineage, error)
}

// DatasetVersions reads dataset versions and schemas; *dataset.Service
// implements it.
type DatasetVersions interface {
	GetVersion(ctx context.Context, ref dataset.Ref, withProfile bool) (*dataset.Version, error)
	GetSchema(ctx context.Context, name string) ([]byte, error)
}

// LineageReferences finds a model version's reference in its lineage: the
// dataset version its training read. Walking up from models:/NAME/V, the
// dataset versions that fed a step run are candidates; one whose input is
// named "train" (or whose name contains "train") wins, else the nearest
// (fewest hops), else the first by name. Its stored profile and its
// dataset's schema make the Reference.
type LineageReferences struct {
	Lineage  LineageGraph
	Datasets DatasetVersions
}

var _ ReferenceSource = (*LineageReferences)(nil)

// Reference implements ReferenceSource.
func (l *LineageReferences) Reference(ctx context.Context, model string, version int64) (*Reference, error) {
	ref := "models:/" + model + "/" + strconv.FormatInt(version, 10)
	lin, err := l.Lineage.Lineage(ctx, ref, pipeline.Up, 0)
	if err != nil {
		return nil, fmt.Errorf("reference of %s/%d: %w", model, version, err)
	}
	id := pickTrainingDataset(lin)
	if id == "" {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "model version %s/%d has no dataset version in its lineage: train it in a pipeline that reads an mloop dataset", model, version)
	}
	dref, err := dataset.ParseRef(id)
	if err != nil {
		return nil, fmt.Errorf("reference of %s/%d: lineage dataset %q: %w", model, version, id, err)
	}
	v, err := l.Datasets.GetVersion(ctx, dref, true)
	if err != nil {
		return nil, fmt.Errorf("reference of %s/%d: %w", model, version, err)
	}
	r := &Reference{Dataset: v.Ref(), Profile: v.Profile}
	text, err := l.Datasets.GetSchema(ctx, dref.Name)
	switch {
	case mloop.IsNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("reference of %s/%d: schema of %s: %w", model, version, dref.Name, err)
	case len(strings.TrimSpace(string(text))) > 0:
		s, err := dataset.ParseSchema(text)
		if err != nil {
			return nil, fmt.Errorf("reference of %s/%d: schema of %s: %w", model, version, dref.Name, err)
		}
		r.Schema = s
	}
	return r, nil
}

// pickTrainingDataset chooses the training dataset among a lineage's
// dataset nodes (see LineageReferences); "" when there is none.
func pickTrainingDataset(lin *pipeline.Lineage) string {
	// Hops from the root, walking edges backwards (breadth first).
	dist := map[pipeline.Node]int{lin.Root: 0}
	frontier := []pipeline.Node{lin.Root}
	for len(frontier) > 0 {
		var next []pipeline.Node
		for _, n := range frontier {
			for _, e := range lin.Edges {
				if e.To == n {
					if _, seen := dist[e.From]; !seen {
						dist[e.From] = dist[n] + 1
						next = append(next, e.From)
					}
				}
			}
		}
		frontier = next
	}
	type cand struct {
		id    string
		train bool
		hops  int
	}
	byID := map[string]*cand{}
	for _, e := range lin.Edges {
		if e.From.Kind != pipeline.NodeDataset {
			continue
		}
		c := byID[e.From.ID]
		if c == nil {
			h, ok := dist[e.From]
			if !ok {
				h = 1 << 30
			}
			c = &cand{id: e.From.ID, hops: h}
			byID[e.From.ID] = c
		}
		if strings.Contains(strings.ToLower(e.Name), "train") {
			c.train = true
		}
	}
	if len(byID) == 0 {
		return ""
	}
	cands := make([]*cand, 0, len(byID))
	for _, c := range byID {
		cands = append(cands, c)
	}
	slices.SortFunc(cands, func(a, b *cand) int {
		if a.train != b.train {
			if a.train {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(a.hops, b.hops), cmp.Compare(a.id, b.id))
	})
	return cands[0].id
}

// refCache caches references per model version: found ones (and "none",
// ENOTFOUND) for good, other failures for retryAfter.
type refCache struct {
	src        ReferenceSource
	retryAfter time.Duration
	now        func() time.Time

	mu      sync.Mutex
	entries map[string]*refEntry
}

type refEntry struct {
	ref *Reference
	err error
	at  time.Time
}

func (c *refCache) get(ctx context.Context, model string, version int64) (*Reference, error) {
	if c.src == nil {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "the monitor has no reference source")
	}
	key := model + "/" + strconv.FormatInt(version, 10)
	c.mu.Lock()
	e := c.entries[key]
	c.mu.Unlock()
	if e != nil && (e.err == nil || mloop.IsNotFound(e.err) || c.now().Sub(e.at) < c.retryAfter) {
		return e.ref, e.err
	}
	ref, err := c.src.Reference(ctx, model, version)
	if err == nil && ref == nil {
		err = mloop.Errorf(mloop.ENOTFOUND, "no reference for %s", key)
	}
	c.mu.Lock()
	c.entries[key] = &refEntry{ref: ref, err: err, at: c.now()}
	c.mu.Unlock()
	return ref, err
}
