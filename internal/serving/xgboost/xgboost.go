// Package xgboost is mloop's native runtime for XGBoost tree models. It
// reads the JSON and UBJSON model files XGBoost writes (save_model with a
// .json or .ubj name), validates them completely at load time, and predicts
// in process with the same float32 arithmetic as XGBoost's CPU predictor,
// so its outputs match XGBoost's own to within 1e-6.
//
// Supported: the gbtree and dart boosters; numerical splits with default
// directions for missing values; categorical splits; base_score in both the
// pre-3.1 ("5E-1") and the 3.1+ ("[5E-1]", one value per class) forms; the
// objectives binary:logistic, binary:logitraw, multi:softprob,
// multi:softmax, reg:squarederror, reg:logistic, reg:pseudohubererror,
// count:poisson, reg:gamma, reg:tweedie and reg:absoluteerror. Anything else
// (gblinear, vector-leaf trees, other objectives) is rejected with an
// EINVALID error that names the reason.
package xgboost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// MaxModelBytes is the largest model file Load reads.
const MaxModelBytes = 1 << 30

// blockRows is how many rows Predict walks through one tree before moving
// to the next, so a tree's nodes stay in cache across the block.
const blockRows = 64

// node is one node of a flattened tree (16 bytes). Children of a split are
// adjacent: the right child is at left+1. Indices are absolute in
// Model.nodes.
//
// A leaf has a NaN threshold, feature 0, left pointing at itself and its
// value's bits in meta. Since no comparison with NaN holds, a walk that
// takes more steps than the leaf's depth stays on the leaf, so every walk
// through a tree can take the same number of steps without testing for
// leaves.
type node struct {
	// value is the split threshold, for a categorical split the number of
	// categories its set covers (a multiple of 64), NaN for a leaf.
	value float32
	// feature is the split's feature index (0 for a leaf).
	feature int32
	// left is the index of the left child; the right child is left+1.
	left int32
	// meta holds, for a split, the metaDefaultLeft bit and, from bit
	// metaCatShift up, the index in Model.catBits of a categorical split's
	// set's first word (0 for a numerical split); for a leaf, the bits of its
	// float32 value (already multiplied by the tree's DART weight).
	meta uint32
}

// leaf returns the leaf node at index at with the given value.
func leaf(value float32, at int32) node {
	return node{value: float32(math.NaN()), left: at, meta: math.Float32bits(value)}
}

func (nd *node) isLeaf() bool { return nd.value != nd.value }

func (nd *node) leafValue() float32 { return math.Float32frombits(nd.meta) }

// Bits of node.meta for a split.
const (
	metaDefaultLeft = 1 << 0 // a missing value goes left
	metaCatShift    = 1
)

// transform is the objective's output function.
type transform uint8

const (
	identity transform = iota
	sigmoid
	exponential
	softmax
	argmax
)

// objective describes how an XGBoost objective maps margins to outputs and
// how its base_score maps to a margin.
type objective struct {
	out transform
	// link converts base_score (stored in the output space) to the margin.
	link transform
	// multi is true for the multi-class objectives.
	multi bool
}

// lookupObjective returns how the named objective maps margins to outputs.
func lookupObjective(name string) (objective, bool) {
	switch name {
	case "binary:logistic", "reg:logistic":
		return objective{out: sigmoid, link: sigmoid}, true
	case "binary:logitraw":
		// Raw logits out; XGBoost adds base_score to the margin unchanged
		// (checked against XGBoost 1.7.4 in the binary_logitraw fixture).
		return objective{out: identity, link: identity}, true
	case "multi:softprob":
		return objective{out: softmax, link: identity, multi: true}, true
	case "multi:softmax":
		return objective{out: argmax, link: identity, multi: true}, true
	case "reg:squarederror", "reg:linear", "reg:pseudohubererror", "reg:absoluteerror":
		return objective{out: identity, link: identity}, true
	case "count:poisson", "reg:gamma", "reg:tweedie":
		return objective{out: exponential, link: exponential}, true
	}
	return objective{}, false
}

// Model is a loaded XGBoost tree ensemble. It implements serving.Predictor
// and is safe for concurrent use: after Load nothing in it changes.
type Model struct {
	name      string
	objective string
	obj       objective
	features  []serving.Feature
	groups    int       // margins per row: classes, targets or 1
	base      []float32 // per-group base margin
	nodes     []node
	roots     []int32  // root node of each tree
	depths    []int32  // depth of each tree's deepest leaf
	treeCat   []bool   // whether each tree has categorical splits
	treeGroup []int32  // output group of each tree
	catBits   []uint64 // categorical splits' sets; word 0 is empty
	catSplits int      // number of categorical splits
}

var _ serving.Predictor = (*Model)(nil)

// LoadFile reads an XGBoost model file (JSON or UBJSON) from path.
func LoadFile(path string) (*Model, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, mloop.Errorf(mloop.ENOTFOUND, "xgboost model file %q does not exist", path)
		}
		return nil, fmt.Errorf("open xgboost model: %w", err)
	}
	defer f.Close()
	return Load(f, filepath.Base(path))
}

// Load reads an XGBoost model in JSON or UBJSON form (told apart by their
// bytes, not by name) from r. name is used in error messages. A model that
// is malformed, inconsistent or uses an unsupported feature yields an
// EINVALID error whose message says why; a model larger than MaxModelBytes
// is ETOOLARGE.
func Load(r io.Reader, name string) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxModelBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read xgboost model %q: %w", name, err)
	}
	if len(data) > MaxModelBytes {
		return nil, mloop.Errorf(mloop.ETOOLARGE, "xgboost model %q is larger than %d bytes", name, MaxModelBytes)
	}
	m, err := parse(data, name)
	if err != nil {
		if mloop.ErrorCode(err) == mloop.EINVALID {
			return nil, mloop.Errorf(mloop.EINVALID, "xgboost model %q: %s", name, mloop.ErrorMessage(err))
		}
		return nil, fmt.Errorf("xgboost model %q: %w", name, err)
	}
	return m, nil
}

// Name returns the name the model was loaded under.
func (m *Model) Name() string { return m.name }

// Objective returns the model's XGBoost objective, e.g. "binary:logistic".
func (m *Model) Objective() string { return m.objective }

// NumTrees returns the number of trees in the ensemble.
func (m *Model) NumTrees() int { return len(m.roots) }

// Features returns the model's input columns in order. The caller must not
// modify the returned slice.
func (m *Model) Features() []serving.Feature { return m.features }

// Outputs returns the number of values Predict writes per row: the number
// of classes for multi:softprob, 1 for multi:softmax (the class index), the
// number of targets (usually 1) otherwise.
func (m *Model) Outputs() int {
	if m.obj.out == argmax {
		return 1
	}
	return m.groups
}

// MarginOutputs returns the number of values PredictMargin writes per row:
// the number of classes for multi-class models, else Outputs().
func (m *Model) MarginOutputs() int { return m.groups }

// Predict writes the model's predictions for each row of b into out, as
// XGBoost's predict() does: probabilities for the logistic and softprob
// objectives, the class index for multi:softmax, exp(margin) for the
// log-link objectives, the margin otherwise. A batch whose Cols differs
// from len(Features()) or an out of the wrong length is EINVALID.
func (m *Model) Predict(ctx context.Context, b serving.Batch, out []float32) error {
	return m.predict(ctx, b, out, false)
}

// PredictMargin writes the untransformed margins (XGBoost's
// output_margin=True), MarginOutputs() values per row, into out.
func (m *Model) PredictMargin(ctx context.Context, b serving.Batch, out []float32) error {
	return m.predict(ctx, b, out, true)
}

func (m *Model) predict(ctx context.Context, b serving.Batch, out []float32, margin bool) error {
	nf := len(m.features)
	if b.Cols != nf {
		return mloop.Errorf(mloop.EINVALID, "model %q expects %d features per row, got %d", m.name, nf, b.Cols)
	}
	if err := b.Check(); err != nil {
		return err
	}
	outs := m.Outputs()
	if margin {
		outs = m.groups
	}
	if len(out)/outs != b.Rows || len(out)%outs != 0 {
		return mloop.Errorf(mloop.EINVALID, "output buffer holds %d values, want %d (%d rows × %d outputs)", len(out), b.Rows*outs, b.Rows, outs)
	}
	workers := 1
	if b.Rows >= parallelMinRows {
		workers = min(runtime.GOMAXPROCS(0), (b.Rows+blockRows-1)/blockRows, maxWorkers)
	}
	if workers <= 1 {
		return m.predictRows(ctx, b, out, 0, b.Rows, outs, margin)
	}
	return m.predictParallel(ctx, b, out, workers, outs, margin)
}

// predictParallel splits a large batch into runs of whole blocks predicted
// by workers goroutines, as XGBoost predicts with its threads. (Apart from
// predict, so that the goroutines' captures do not make small batches
// allocate.)
func (m *Model) predictParallel(ctx context.Context, b serving.Batch, out []float32, workers, outs int, margin bool) error {
	blocks := (b.Rows + blockRows - 1) / blockRows
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		start := w * blocks / workers * blockRows
		end := min((w+1)*blocks/workers*blockRows, b.Rows)
		wg.Go(func() { errs[w] = m.predictRows(ctx, b, out, start, end, outs, margin) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// parallelMinRows is the smallest batch predicted by several goroutines,
// and maxWorkers the most goroutines one batch uses.
const (
	parallelMinRows = 4 * blockRows
	maxWorkers      = 16
)

// predictRows predicts rows [start, end) of b into out, block by block.
func (m *Model) predictRows(ctx context.Context, b serving.Batch, out []float32, start, end, outs int, margin bool) error {
	nf := len(m.features)
	g := m.groups
	// acc holds the margins of one block of rows. With outs == g the block's
	// slice of out is used directly; only multi:softmax needs scratch space.
	var scratch []float32
	if outs != g {
		scratch = make([]float32, blockRows*g)
	}
	for ; start < end; start += blockRows {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("predict: %w", err)
		}
		n := min(blockRows, end-start)
		var acc []float32
		if scratch != nil {
			acc = scratch[:n*g]
		} else {
			acc = out[start*g : (start+n)*g]
		}
		for i := range n {
			copy(acc[i*g:(i+1)*g], m.base)
		}
		rows := b.Values[start*nf : (start+n)*nf]
		m.accumulate(rows, nf, n, acc)
		if margin {
			continue
		}
		switch m.obj.out {
		case identity:
		case sigmoid:
			for i, v := range acc {
				acc[i] = sigmoid32(v)
			}
		case exponential:
			for i, v := range acc {
				acc[i] = exp32(v)
			}
		case softmax:
			for i := range n {
				softmax32(acc[i*g : (i+1)*g])
			}
		case argmax:
			for i := range n {
				out[start+i] = float32(argmax32(acc[i*g : (i+1)*g]))
			}
		}
	}
	return nil
}

// accumulate adds every tree's leaf value to acc for n rows of nf features,
// tree by tree, so each row's sum is formed in the same order as XGBoost's.
//
// Each walk takes exactly the tree's depth in steps (leaves loop on
// themselves) and picks the child without branches, so the CPU does not
// mispredict a branch at every level; four rows walk side by side. Groups
// of rows without missing values take the cheaper numerical step. Trees with
// categorical splits walk level by level instead (walkCat).
func (m *Model) accumulate(rows []float32, nf, n int, acc []float32) {
	// missing[i] tells whether row i holds a missing value; quad[i/4]
	// whether any of rows i…i+3 does.
	var missing [blockRows]bool
	var quad [blockRows / 4]bool
	for i := range n {
		for _, v := range rows[i*nf : (i+1)*nf] {
			if v != v {
				missing[i] = true
				quad[i/4] = true
				break
			}
		}
	}
	for t, root := range m.roots {
		grp := int(m.treeGroup[t])
		depth := int(m.depths[t])
		if m.treeCat[t] {
			m.walkCat(root, depth, grp, rows, nf, n, acc, &missing)
		} else {
			m.walkNumeric(root, depth, grp, rows, nf, n, acc, &missing, &quad)
		}
	}
}

// walkNumeric adds the leaf values of a tree without categorical splits.
func (m *Model) walkNumeric(root int32, depth, grp int, rows []float32, nf, n int, acc []float32,
	missing *[blockRows]bool, quad *[blockRows / 4]bool) {
	nodes := m.nodes
	g := len(m.base)
	i := 0
	for ; i+4 <= n; i += 4 {
		r0 := rows[i*nf : (i+1)*nf]
		r1 := rows[(i+1)*nf : (i+2)*nf]
		r2 := rows[(i+2)*nf : (i+3)*nf]
		r3 := rows[(i+3)*nf : (i+4)*nf]
		k0, k1, k2, k3 := root, root, root, root
		if quad[i/4] {
			for range depth {
				k0 = stepMissing(&nodes[k0], r0)
				k1 = stepMissing(&nodes[k1], r1)
				k2 = stepMissing(&nodes[k2], r2)
				k3 = stepMissing(&nodes[k3], r3)
			}
		} else {
			for range depth {
				k0 = step(&nodes[k0], r0)
				k1 = step(&nodes[k1], r1)
				k2 = step(&nodes[k2], r2)
				k3 = step(&nodes[k3], r3)
			}
		}
		acc[i*g+grp] += nodes[k0].leafValue()
		acc[(i+1)*g+grp] += nodes[k1].leafValue()
		acc[(i+2)*g+grp] += nodes[k2].leafValue()
		acc[(i+3)*g+grp] += nodes[k3].leafValue()
	}
	for ; i < n; i++ {
		row := rows[i*nf : (i+1)*nf]
		k := root
		if missing[i] {
			for range depth {
				k = stepMissing(&nodes[k], row)
			}
		} else {
			for range depth {
				k = step(&nodes[k], row)
			}
		}
		acc[i*g+grp] += nodes[k].leafValue()
	}
}

// walkCat adds the leaf values of a tree with categorical splits. It walks
// level by level: every row of the block takes one step before any takes
// the next, so the steps of one level are independent of each other and
// the CPU overlaps them (a categorical step is a longer chain of dependent
// loads than a numerical one). A categorical split sends the categories in
// its set to the right; a value that is negative, beyond the set or not in
// it goes left; a missing value follows the default direction. (Measured
// on a 150-tree flights model with categorical airports, this was faster
// than four rows walking side by side, with or without branches.)
func (m *Model) walkCat(root int32, depth, grp int, rows []float32, nf, n int, acc []float32, missing *[blockRows]bool) {
	nodes := m.nodes
	bits := m.catBits
	g := len(m.base)
	var ks [blockRows]int32
	for i := range n {
		ks[i] = root
	}
	for range depth {
		for i := range n {
			nd := &nodes[ks[i]]
			v := rows[i*nf+int(nd.feature)]
			off := nd.meta >> metaCatShift
			split := nd.value == nd.value
			if !missing[i] {
				// Without missing values a numerical step needs no
				// default direction, and a leaf (NaN threshold: no
				// comparison holds) stays where it is.
				var right int32
				if off != 0 && split {
					if v >= 0 && v < nd.value {
						c := uint32(v)
						right = int32(bits[off+c>>6]>>(c&63)) & 1
					}
				} else if v >= nd.value {
					right = 1
				}
				ks[i] = nd.left + right
				continue
			}
			var right uint32
			switch {
			case !split: // a leaf stays where it is
			case v != v: // missing: the default direction
				right = ^nd.meta & metaDefaultLeft
			case off == 0:
				if v >= nd.value {
					right = 1
				}
			case v >= 0 && v < nd.value:
				c := uint32(v)
				right = uint32(bits[off+c>>6]>>(c&63)) & 1
			}
			ks[i] = nd.left + int32(right)
		}
	}
	for i := range n {
		acc[i*g+grp] += nodes[ks[i]].leafValue()
	}
}

// step returns the child of numerical split nd that row goes to, for a row
// without missing values (nd itself for a leaf, whose threshold is NaN).
func step(nd *node, row []float32) int32 {
	var right int32
	if row[nd.feature] >= nd.value {
		right = 1
	}
	return nd.left + right
}

// stepMissing is step for a row that may hold missing values: a missing
// value follows the split's default direction.
func stepMissing(nd *node, row []float32) int32 {
	v := row[nd.feature]
	var right, nan, split uint32
	if v >= nd.value {
		right = 1
	}
	if v != v {
		nan = 1
	}
	if nd.value == nd.value {
		split = 1
	}
	// A missing value goes right unless the default is left.
	right |= nan &^ nd.meta
	return nd.left + int32(right&split)
}

func sigmoid32(x float32) float32 {
	e := float32(math.Exp(float64(-x)))
	return 1 / (1 + e)
}

func exp32(x float32) float32 { return float32(math.Exp(float64(x))) }

func softmax32(v []float32) {
	mx := v[0]
	for _, x := range v[1:] {
		mx = max(mx, x)
	}
	// As XGBoost: exponentials in float32, their sum in float64, the
	// division in float32.
	var sum float64
	for i, x := range v {
		v[i] = exp32(x - mx)
		sum += float64(v[i])
	}
	s := float32(sum)
	for i := range v {
		v[i] /= s
	}
}

func argmax32(v []float32) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}

// isUBJSON reports whether data looks like UBJSON rather than JSON: both
// start with '{', but a JSON object's next significant byte is '"' or '}'
// while a UBJSON object continues with a length marker or a type marker.
func isUBJSON(data []byte) bool {
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	rest := bytes.TrimLeft(data[1:], " \t\r\n")
	return len(rest) > 0 && rest[0] != '"' && rest[0] != '}'
}
