package gbdt

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mloop/mloop"
)

// kRtEps is the least loss change a split must bring (XGBoost's kRtEps).
const kRtEps = 1e-6

// gpair is a row's gradient and hessian, in float32 as XGBoost keeps them.
type gpair struct{ g, h float32 }

// hbin is a histogram bin: sums of gradients and hessians, in float64 as
// XGBoost's hist method sums them.
type hbin struct{ g, h float64 }

func (a hbin) sub(b hbin) hbin { return hbin{a.g - b.g, a.h - b.h} }

// Train fits a gradient-boosted tree ensemble to train with cfg. valid,
// when not nil, is scored after every round (Progress.Valid) and is what
// early stopping watches. Bad data or configuration is an EINVALID error
// that says what to fix; a cancelled ctx stops training between rounds and
// between tree levels with ctx's error.
func Train(ctx context.Context, train, valid *Data, cfg Config) (*Model, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	if err := train.check(cfg, "training data", nil); err != nil {
		return nil, err
	}
	if valid != nil {
		if err := valid.check(cfg, "validation data", train); err != nil {
			return nil, err
		}
	}
	if cfg.EarlyStoppingRounds > 0 && valid == nil {
		return nil, mloop.Errorf(mloop.EINVALID, "early stopping needs validation data: give a validation set or set early stopping rounds to 0")
	}
	start := time.Now()
	b, err := newBinner(ctx, train, cfg.MaxBins, cfg.Threads)
	if err != nil {
		return nil, err
	}
	bins, err := b.binRows(ctx, train, cfg.Threads)
	if err != nil {
		return nil, err
	}

	n, nf, k := train.Rows(), len(train.Features), cfg.groups()
	m := &Model{
		Objective: cfg.Objective,
		NumClass:  cfg.NumClass,
		Features:  slices.Clone(train.Features),
		Classes:   slices.Clone(train.Classes),
		Params:    cfg,
	}
	m.BaseScore = baseScore(cfg, train)
	m.setBase()
	margins := make([]float32, n*k)
	for i := range margins {
		margins[i] = m.baseMargin
	}
	var vmargins []float32
	if valid != nil {
		vmargins = make([]float32, valid.Rows()*k)
		for i := range vmargins {
			vmargins[i] = m.baseMargin
		}
	}

	g := &grower{cfg: cfg, b: b, bins: bins, nf: nf, n: n, rows: make([]int32, n), scratch: make([]int32, n)}
	g.cols = make([][]uint16, nf)
	for j := range g.cols {
		g.cols[j] = make([]uint16, n)
	}
	if err := parallelFor(ctx, nf, cfg.Threads, func(j int) {
		col := g.cols[j]
		for i := range col {
			col[i] = bins[i*nf+j]
		}
	}); err != nil {
		return nil, err
	}
	gp := make([][]gpair, k)
	for c := range gp {
		gp[c] = make([]gpair, n)
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15))
	metric := MetricName(cfg.Objective)
	best, bestRound, vloss := math.Inf(1), -1, math.NaN()
	for round := 0; round <= cfg.NumTrees; round++ {
		// The gradients at the margins after `round` rounds, and the
		// training metric there.
		report := cfg.Progress != nil && round > 0 && (round%cfg.ProgressEvery == 0 || round == cfg.NumTrees)
		loss, err := gradients(ctx, cfg, margins, train.Labels, train.Weights, gp, report)
		if err != nil {
			return nil, err
		}
		stop := false
		if round > 0 {
			if report {
				cfg.Progress(Progress{Round: round, Rounds: cfg.NumTrees, Elapsed: time.Since(start), Metric: metric, Train: loss, Valid: vloss})
			}
			if cfg.EarlyStoppingRounds > 0 {
				if vloss < best {
					best, bestRound = vloss, round-1
				} else if round-1-bestRound >= cfg.EarlyStoppingRounds {
					stop = true
				}
			}
		}
		if stop || round == cfg.NumTrees {
			break
		}
		for c := range k {
			active := sampleFeatures(rng, nf, cfg.ColsampleByTree)
			sampled := g.sampleRows(rng)
			t, err := g.grow(ctx, gp[c], active)
			if err != nil {
				return nil, err
			}
			tr := t.finish(nf)
			g.addLeaves(ctx, t, tr, sampled, margins, k, c)
			if valid != nil {
				addTree(ctx, tr, valid.Columns, vmargins, k, c, cfg.Threads)
			}
			m.trees = append(m.trees, tr)
			m.treeClass = append(m.treeClass, c)
		}
		if valid != nil {
			vloss = evalMetric(cfg, vmargins, valid.Labels, valid.Weights)
		}
	}
	m.Rounds = len(m.trees) / k
	if cfg.EarlyStoppingRounds > 0 && bestRound >= 0 {
		m.BestIteration = bestRound
		m.trees = m.trees[:(bestRound+1)*k]
		m.treeClass = m.treeClass[:(bestRound+1)*k]
	} else {
		m.BestIteration = m.Rounds - 1
	}
	return m, nil
}

// sampleFeatures returns the features a tree may split on, ascending.
func sampleFeatures(rng *rand.Rand, nf int, share float64) []int {
	all := make([]int, nf)
	for j := range all {
		all[j] = j
	}
	if share >= 1 {
		return all
	}
	keep := max(1, int(share*float64(nf)))
	rng.Shuffle(nf, func(i, j int) { all[i], all[j] = all[j], all[i] })
	all = all[:keep]
	slices.Sort(all)
	return all
}

// grower grows one tree at a time from the binned training data.
type grower struct {
	cfg     Config
	b       *binner
	bins    []uint16   // row-major, nf per row, for histograms
	cols    [][]uint16 // the same bins column by column, for partitions
	nf, n   int
	rows    []int32 // the tree's rows, grouped by node
	nrows   int     // how many of rows the tree uses
	scratch []int32
	free    [][]hbin // histogram buffers to reuse
}

// sampleRows fills g.rows with the rows the next tree sees and reports
// whether that is a sample rather than every row.
func (g *grower) sampleRows(rng *rand.Rand) bool {
	if g.cfg.Subsample >= 1 {
		for i := range g.n {
			g.rows[i] = int32(i)
		}
		g.nrows = g.n
		return false
	}
	k := 0
	for i := range g.n {
		if rng.Float64() < g.cfg.Subsample {
			g.rows[k] = int32(i)
			k++
		}
	}
	g.nrows = k
	return true
}

// tnode is a node of the tree being grown.
type tnode struct {
	left, right int32 // children, -1 for a leaf
	feature     int32
	thr         int32    // numerical split: a row goes left when its bin ≤ thr
	cond        float32  // numerical split's condition
	cat         []uint64 // categorical split: the codes that go right
	defaultLeft bool
	depth       int
	start, end  int // the node's rows: g.rows[start:end]
	sum         hbin
	weight      float64 // −G/(H+λ)
	lossChg     float64
}

// split is a candidate split of a node.
type split struct {
	lossChg     float64
	feature     int
	thr         int32
	cond        float32
	cat         []uint64
	defaultLeft bool
	left, right hbin
}

// gtree is a grown tree before it is written out.
type gtree struct {
	nodes []tnode
	eta   float32
}

func (g *grower) getHist() []hbin {
	if k := len(g.free); k > 0 {
		h := g.free[k-1]
		g.free = g.free[:k-1]
		clear(h)
		return h
	}
	return make([]hbin, g.b.total)
}

func (g *grower) putHist(h []hbin) {
	if h != nil {
		g.free = append(g.free, h)
	}
}

// grow grows a tree on the rows g.rows[:g.nrows] with gradients gp,
// splitting only on the active features.
func (g *grower) grow(ctx context.Context, gp []gpair, active []int) (*gtree, error) {
	cfg := g.cfg
	t := &gtree{eta: float32(cfg.LearningRate)}
	root := tnode{left: -1, right: -1, start: 0, end: g.nrows}
	root.sum = sumRows(gp, g.rows[:g.nrows])
	t.nodes = append(t.nodes, root)
	hists := map[int32][]hbin{}
	if cfg.MaxDepth > 0 {
		h := g.getHist()
		if err := g.buildHists(ctx, gp, active, []*tnode{&t.nodes[0]}, [][]hbin{h}); err != nil {
			return nil, err
		}
		hists[0] = h
	}
	level := []int32{0}
	for depth := 0; depth < cfg.MaxDepth && len(level) > 0; depth++ {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		splits := make([]split, len(level))
		if err := parallelFor(ctx, len(level), cfg.Threads, func(i int) {
			splits[i] = g.evaluate(hists[level[i]], &t.nodes[level[i]], active)
		}); err != nil {
			return nil, err
		}
		var parents, next []int32
		for i, id := range level {
			sp := &splits[i]
			if !(sp.lossChg > kRtEps) || sp.left.h <= 0 || sp.right.h <= 0 {
				continue
			}
			nd := &t.nodes[id]
			nd.feature, nd.thr, nd.cond, nd.cat, nd.defaultLeft, nd.lossChg = int32(sp.feature), sp.thr, sp.cond, sp.cat, sp.defaultLeft, sp.lossChg
			l, r := int32(len(t.nodes)), int32(len(t.nodes)+1)
			nd.left, nd.right = l, r
			t.nodes = append(t.nodes,
				tnode{left: -1, right: -1, depth: depth + 1, sum: sp.left},
				tnode{left: -1, right: -1, depth: depth + 1, sum: sp.right})
			parents = append(parents, id)
			next = append(next, l, r)
		}
		if err := g.partition(ctx, t, parents); err != nil {
			return nil, err
		}
		for _, id := range level {
			if !slices.Contains(parents, id) {
				g.putHist(hists[id])
				delete(hists, id)
			}
		}
		if depth+1 < cfg.MaxDepth && len(parents) > 0 {
			// Build the smaller child's histogram, subtract it from the
			// parent's for the larger one.
			var build []*tnode
			var bh [][]hbin
			var small, large []int32
			for _, id := range parents {
				nd := &t.nodes[id]
				s, l := nd.left, nd.right
				if t.nodes[s].end-t.nodes[s].start > t.nodes[l].end-t.nodes[l].start {
					s, l = l, s
				}
				h := g.getHist()
				hists[s] = h
				build = append(build, &t.nodes[s])
				bh = append(bh, h)
				small, large = append(small, s), append(large, l)
			}
			if err := g.buildHists(ctx, gp, active, build, bh); err != nil {
				return nil, err
			}
			for i, id := range parents {
				ph, sh := hists[id], hists[small[i]]
				for j := range ph {
					ph[j] = ph[j].sub(sh[j])
				}
				hists[large[i]] = ph // the parent's buffer becomes the larger child's
				delete(hists, id)
			}
		} else {
			for _, id := range parents {
				g.putHist(hists[id])
				delete(hists, id)
			}
		}
		level = next
	}
	for id, h := range hists {
		g.putHist(h)
		delete(hists, id)
	}
	for i := range t.nodes {
		nd := &t.nodes[i]
		nd.weight = calcWeight(cfg, nd.sum)
	}
	if cfg.Gamma > 0 {
		t.prune(0, cfg.Gamma)
	}
	return t, nil
}

// prune turns splits whose children are leaves and whose loss change is
// below gamma into leaves, from the bottom up, as XGBoost's pruner does.
// It reports whether node id is a leaf afterwards.
func (t *gtree) prune(id int32, gamma float64) bool {
	nd := &t.nodes[id]
	if nd.left < 0 {
		return true
	}
	l := t.prune(nd.left, gamma)
	r := t.prune(nd.right, gamma)
	if l && r && nd.lossChg < gamma {
		nd.left, nd.right = -1, -1
		return true
	}
	return false
}

// calcGain is XGBoost's CalcGain without L1 or max_delta_step.
func calcGain(cfg Config, s hbin) float64 {
	if s.h < cfg.MinChildWeight || s.h <= 0 {
		return 0
	}
	return s.g * s.g / (s.h + cfg.Lambda)
}

// calcWeight is XGBoost's CalcWeight without L1 or max_delta_step.
func calcWeight(cfg Config, s hbin) float64 {
	if s.h < cfg.MinChildWeight || s.h <= 0 {
		return 0
	}
	return -s.g / (s.h + cfg.Lambda)
}

// evaluate returns the best split of node nd from its histogram h, as
// XGBoost's hist evaluator finds it; a lossChg of 0 means none.
func (g *grower) evaluate(h []hbin, nd *tnode, active []int) split {
	cfg := g.cfg
	parent := nd.sum
	rootGain := calcGain(cfg, parent)
	mcw := cfg.MinChildWeight
	var best split
	update := func(loss float64, f int, thr int32, cond float32, defLeft bool, left, right hbin) bool {
		if loss > best.lossChg {
			best = split{lossChg: loss, feature: f, thr: thr, cond: cond, defaultLeft: defLeft, left: left, right: right}
			return true
		}
		return false
	}
	for _, f := range active {
		off := g.b.offset[f]
		nb := g.b.nbins[f]
		fh := h[off : off+nb]
		if !g.b.isCat[f] {
			cuts := g.b.cuts[f]
			// Forward: bins 0…i go left, missing values right.
			var e hbin
			for i := range nb {
				e.g += fh[i].g
				e.h += fh[i].h
				if e.h >= mcw {
					c := parent.sub(e)
					if c.h >= mcw {
						loss := calcGain(cfg, e) + calcGain(cfg, c) - rootGain
						update(loss, f, int32(i), cuts[i], false, e, c)
					}
				}
			}
			// Backward: bins i… go right, missing values left.
			e = hbin{}
			for i := nb - 1; i >= 0; i-- {
				e.g += fh[i].g
				e.h += fh[i].h
				if e.h >= mcw {
					c := parent.sub(e)
					if c.h >= mcw {
						loss := calcGain(cfg, c) + calcGain(cfg, e) - rootGain
						cond := g.b.minVal[f]
						if i > 0 {
							cond = cuts[i-1]
						}
						update(loss, f, int32(i-1), cond, true, c, e)
					}
				}
			}
			continue
		}
		// Categorical: XGBoost's partition split. Sort the categories
		// present by their leaf weight and try the prefixes of that order
		// as the set that goes right.
		codes := slices.Clone(g.b.cats[f])
		if len(codes) < 2 {
			continue
		}
		slices.SortStableFunc(codes, func(a, b uint16) int {
			wa, wb := calcWeight(cfg, fh[a]), calcWeight(cfg, fh[b])
			switch {
			case wa < wb:
				return -1
			case wb < wa:
				return 1
			}
			return 0
		})
		ncat := min(cfg.MaxCatThreshold, len(codes))
		bestThresh, bestForward := -1, false
		// Forward: codes[0…i] go right, missing values left.
		var right hbin
		for i := 0; i < ncat-1; i++ {
			right.g += fh[codes[i]].g
			right.h += fh[codes[i]].h
			left := parent.sub(right)
			if left.h >= mcw && right.h >= mcw {
				loss := calcGain(cfg, left) + calcGain(cfg, right) - rootGain
				if update(loss, f, 0, float32(math.NaN()), true, left, right) {
					bestThresh, bestForward = i, true
				}
			}
		}
		// Backward: codes[i…] go left, the rest and missing values right.
		var left hbin
		for i := len(codes) - 1; i > len(codes)-ncat; i-- {
			left.g += fh[codes[i]].g
			left.h += fh[codes[i]].h
			right := parent.sub(left)
			if left.h >= mcw && right.h >= mcw {
				loss := calcGain(cfg, left) + calcGain(cfg, right) - rootGain
				if update(loss, f, 0, float32(math.NaN()), false, left, right) {
					bestThresh, bestForward = i, false
				}
			}
		}
		if bestThresh >= 0 {
			k := bestThresh
			if bestForward {
				k++
			}
			set := make([]uint64, (nb+63)/64)
			for _, c := range codes[:k] {
				set[c/64] |= 1 << (c % 64)
			}
			best.cat = set
		}
	}
	return best
}

// goLeft reports whether binned row r goes to nd's left child.
func (g *grower) goLeft(nd *tnode, r int32) bool {
	b := g.cols[nd.feature][r]
	switch {
	case b == missingBin:
		return nd.defaultLeft
	case nd.cat != nil:
		w := int(b) / 64
		return w >= len(nd.cat) || nd.cat[w]>>(b%64)&1 == 0
	}
	return int32(b) <= nd.thr
}

// chunkRows is the least number of rows a goroutine works on.
const chunkRows = 1 << 14

// partition splits the rows of each node in parents between its children,
// left child's rows first, keeping their order.
func (g *grower) partition(ctx context.Context, t *gtree, parents []int32) error {
	var small []int32
	for _, id := range parents {
		nd := &t.nodes[id]
		if nd.end-nd.start < 2*chunkRows || g.cfg.Threads == 1 {
			small = append(small, id)
			continue
		}
		if err := g.partitionParallel(ctx, t, id); err != nil {
			return err
		}
	}
	return parallelFor(ctx, len(small), g.cfg.Threads, func(i int) {
		nd := &t.nodes[small[i]]
		rows, scratch := g.rows[nd.start:nd.end], g.scratch[nd.start:nd.end]
		nl, nr := 0, 0
		for _, r := range rows {
			if g.goLeft(nd, r) {
				rows[nl] = r
				nl++
			} else {
				scratch[nr] = r
				nr++
			}
		}
		copy(rows[nl:], scratch[:nr])
		g.setChildren(t, nd, nl)
	})
}

func (g *grower) setChildren(t *gtree, nd *tnode, nl int) {
	l, r := &t.nodes[nd.left], &t.nodes[nd.right]
	l.start, l.end = nd.start, nd.start+nl
	r.start, r.end = nd.start+nl, nd.end
}

// partitionParallel partitions one large node's rows in chunks.
func (g *grower) partitionParallel(ctx context.Context, t *gtree, id int32) error {
	nd := &t.nodes[id]
	size := nd.end - nd.start
	chunks := min(g.cfg.Threads*4, (size+chunkRows-1)/chunkRows)
	nls := make([]int, chunks)
	bounds := func(c int) (int, int) { return nd.start + c*size/chunks, nd.start + (c+1)*size/chunks }
	err := parallelFor(ctx, chunks, g.cfg.Threads, func(c int) {
		s, e := bounds(c)
		rows, scratch := g.rows[s:e], g.scratch[s:e]
		nl, nr := 0, 0
		for _, r := range rows {
			if g.goLeft(nd, r) {
				scratch[nl] = r
				nl++
			} else {
				rows[nr] = r
				nr++
			}
		}
		copy(scratch[nl:], rows[:nr])
		nls[c] = nl
	})
	if err != nil {
		return err
	}
	totalLeft := 0
	for _, nl := range nls {
		totalLeft += nl
	}
	err = parallelFor(ctx, chunks, g.cfg.Threads, func(c int) {
		s, e := bounds(c)
		lo, ro := nd.start, nd.start+totalLeft
		for p := range c {
			ps, pe := bounds(p)
			lo += nls[p]
			ro += pe - ps - nls[p]
		}
		copy(g.rows[lo:], g.scratch[s:s+nls[c]])
		copy(g.rows[ro:], g.scratch[s+nls[c]:e])
	})
	if err != nil {
		return err
	}
	g.setChildren(t, nd, totalLeft)
	return nil
}

// buildHists builds the histogram of each node into hs (zeroed): small
// nodes one goroutine each, large nodes split among all goroutines.
func (g *grower) buildHists(ctx context.Context, gp []gpair, active []int, nodes []*tnode, hs [][]hbin) error {
	var small []int
	for i, nd := range nodes {
		if nd.end-nd.start < 2*chunkRows || g.cfg.Threads == 1 {
			small = append(small, i)
			continue
		}
		if err := g.buildLarge(ctx, gp, active, nd, hs[i]); err != nil {
			return err
		}
	}
	return parallelFor(ctx, len(small), g.cfg.Threads, func(i int) {
		nd := nodes[small[i]]
		g.accumulate(gp, active, g.rows[nd.start:nd.end], hs[small[i]])
	})
}

// buildLarge builds one large node's histogram with every goroutine.
func (g *grower) buildLarge(ctx context.Context, gp []gpair, active []int, nd *tnode, h []hbin) error {
	size := nd.end - nd.start
	parts := min(g.cfg.Threads, (size+chunkRows-1)/chunkRows)
	partial := make([][]hbin, parts)
	partial[0] = h
	for p := 1; p < parts; p++ {
		partial[p] = g.getHist()
	}
	err := parallelFor(ctx, parts, parts, func(p int) {
		s, e := nd.start+p*size/parts, nd.start+(p+1)*size/parts
		g.accumulate(gp, active, g.rows[s:e], partial[p])
	})
	for p := 1; p < parts; p++ {
		for j, v := range partial[p] {
			h[j].g += v.g
			h[j].h += v.h
		}
		g.putHist(partial[p])
	}
	return err
}

// accumulate adds the gradients of rows to histogram h.
func (g *grower) accumulate(gp []gpair, active []int, rows []int32, h []hbin) {
	nf := g.nf
	off := g.b.offset
	if len(active) == nf {
		for _, r := range rows {
			p := gp[r]
			gg, hh := float64(p.g), float64(p.h)
			rb := g.bins[int(r)*nf : int(r)*nf+nf]
			for f, b := range rb {
				if b != missingBin {
					x := &h[off[f]+int(b)]
					x.g += gg
					x.h += hh
				}
			}
		}
		return
	}
	for _, r := range rows {
		p := gp[r]
		gg, hh := float64(p.g), float64(p.h)
		base := int(r) * nf
		for _, f := range active {
			if b := g.bins[base+f]; b != missingBin {
				x := &h[off[f]+int(b)]
				x.g += gg
				x.h += hh
			}
		}
	}
}

// sumRows returns the sum of the gradients of rows.
func sumRows(gp []gpair, rows []int32) hbin {
	var s hbin
	for _, r := range rows {
		s.g += float64(gp[r].g)
		s.h += float64(gp[r].h)
	}
	return s
}

// addLeaves adds the leaf values of grown tree t (finished as tr) to the
// training margins of class c: by the leaves' rows, or, when the tree saw
// a sample, by walking every row through it.
func (g *grower) addLeaves(ctx context.Context, t *gtree, tr *tree, sampled bool, margins []float32, k, c int) {
	if !sampled {
		var walk func(id int32)
		walk = func(id int32) {
			nd := &t.nodes[id]
			if nd.left >= 0 {
				walk(nd.left)
				walk(nd.right)
				return
			}
			v := t.leafValue(nd)
			for _, r := range g.rows[nd.start:nd.end] {
				margins[int(r)*k+c] += v
			}
		}
		walk(0)
		return
	}
	_ = parallelFor(ctx, (g.n+chunkRows-1)/chunkRows, g.cfg.Threads, func(ch int) {
		for r := ch * chunkRows; r < min((ch+1)*chunkRows, g.n); r++ {
			id := int32(0)
			for t.nodes[id].left >= 0 {
				nd := &t.nodes[id]
				if g.goLeft(nd, int32(r)) {
					id = nd.left
				} else {
					id = nd.right
				}
			}
			margins[r*k+c] += t.leafValue(&t.nodes[id])
		}
	})
}

// leafValue is a leaf's output: its weight times eta, in float32 as
// XGBoost computes it.
func (t *gtree) leafValue(nd *tnode) float32 {
	return float32(nd.weight) * t.eta
}

// finish returns the grown tree in the form the model keeps and writes,
// its nodes numbered breadth first.
func (t *gtree) finish(nf int) *tree {
	out := &tree{numFeature: nf}
	type item struct{ id, parent int32 }
	queue := []item{{0, -1}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		nd := &t.nodes[it.id]
		at := int32(len(out.nodes))
		n := node{left: -1, right: -1, parent: it.parent, weight: float32(nd.weight), sumHess: float32(nd.sum.h)}
		if nd.left < 0 {
			n.cond = t.leafValue(nd)
		} else {
			n.feature, n.cond, n.cat, n.defaultLeft, n.lossChg = nd.feature, nd.cond, nd.cat, nd.defaultLeft, float32(nd.lossChg)
			// Children are numbered in the order they are queued.
			next := at + int32(len(queue)) + 1
			n.left, n.right = next, next+1
			queue = append(queue, item{nd.left, at}, item{nd.right, at})
		}
		out.nodes = append(out.nodes, n)
	}
	return out
}

// addTree adds tree tr's outputs for the rows of cols to class c of margins.
func addTree(ctx context.Context, tr *tree, cols [][]float32, margins []float32, k, c, threads int) {
	n := len(margins) / k
	_ = parallelFor(ctx, (n+chunkRows-1)/chunkRows, threads, func(ch int) {
		for i := ch * chunkRows; i < min((ch+1)*chunkRows, n); i++ {
			margins[i*k+c] += tr.leafCols(cols, i)
		}
	})
}

// parallelFor calls fn(i) for i in [0, n) on up to threads goroutines and
// returns ctx's error if it was cancelled (remaining items are skipped).
func parallelFor(ctx context.Context, n, threads int, fn func(i int)) error {
	if n == 0 {
		return ctx.Err()
	}
	workers := min(threads, n)
	if workers <= 1 {
		for i := range n {
			if i%64 == 0 && ctx.Err() != nil {
				break
			}
			fn(i)
		}
	} else {
		var next atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Go(func() {
				for {
					i := int(next.Add(1) - 1)
					if i >= n || ctx.Err() != nil {
						return
					}
					fn(i)
				}
			})
		}
		wg.Wait()
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	return nil
}
