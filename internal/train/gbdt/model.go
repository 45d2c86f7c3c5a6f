package gbdt

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
)

// Model is a trained tree ensemble. It predicts with the same float32
// arithmetic as mloop's native XGBoost runtime, and WriteXGBoostJSON writes
// it as a file that runtime and XGBoost load.
type Model struct {
	// Objective and NumClass are the learning task.
	Objective Objective
	NumClass  int
	// Features are the input columns, in order; Classes names the class
	// indices of a multi-class model trained on text labels.
	Features []Feature
	Classes  []string
	// BaseScore is the prediction before any tree, in the output space.
	BaseScore float32
	// Rounds is the number of boosting rounds trained; BestIteration is the
	// 0-based round the model keeps trees up to (the last round, or the
	// best one when early stopping was on).
	Rounds        int
	BestIteration int
	// Params are the hyperparameters it was trained with.
	Params Config

	baseMargin float32
	trees      []*tree
	treeClass  []int
}

// tree is a trained tree, its nodes numbered breadth first from the root.
type tree struct {
	nodes      []node
	numFeature int
}

// node is a tree node as XGBoost's JSON holds it.
type node struct {
	left, right int32 // -1 for a leaf
	parent      int32 // -1 for the root
	feature     int32
	// cond is a numerical split's condition (x < cond goes left), NaN for a
	// categorical split, a leaf's value.
	cond        float32
	cat         []uint64 // categorical split: the codes that go right
	defaultLeft bool
	weight      float32 // base weight −G/(H+λ)
	lossChg     float32
	sumHess     float32
}

// setBase computes the base margin from BaseScore as the runtime does.
func (m *Model) setBase() {
	b := m.BaseScore
	m.baseMargin = b
	if m.Objective == BinaryLogistic {
		t := 1/b - 1
		m.baseMargin = float32(-math.Log(float64(t)))
	}
}

// NumTrees returns the number of trees (rounds × classes for multi-class).
func (m *Model) NumTrees() int { return len(m.trees) }

// Outputs returns the number of values predicted per row: NumClass for
// multi:softprob, else 1.
func (m *Model) Outputs() int {
	if m.Objective == MultiSoftprob {
		return m.NumClass
	}
	return 1
}

// Predict writes the predictions for rows, a row-major matrix of
// len(Features) values per row (NaN is missing), into out, Outputs()
// values per row: probabilities of class 1 (binary:logistic), class
// probabilities (multi:softprob) or the target (reg:squarederror). A
// matrix or output of the wrong size is EINVALID.
func (m *Model) Predict(rows []float32, out []float32) error {
	nf := len(m.Features)
	if len(rows)%nf != 0 {
		return mloop.Errorf(mloop.EINVALID, "the matrix holds %d values, not a multiple of %d features", len(rows), nf)
	}
	n := len(rows) / nf
	if len(out) != n*m.Outputs() {
		return mloop.Errorf(mloop.EINVALID, "output holds %d values, want %d (%d rows × %d outputs)", len(out), n*m.Outputs(), n, m.Outputs())
	}
	k := m.Outputs()
	for i := range n {
		row := rows[i*nf : (i+1)*nf]
		acc := out[i*k : (i+1)*k]
		for c := range acc {
			acc[c] = m.baseMargin
		}
		for t, tr := range m.trees {
			acc[m.treeClass[t]] += tr.leafRow(row)
		}
		m.transform(acc)
	}
	return nil
}

// PredictData returns the predictions for every row of d, Outputs() values
// per row. d's features must be the model's.
func (m *Model) PredictData(d *Data) ([]float32, error) {
	if len(d.Columns) != len(m.Features) {
		return nil, mloop.Errorf(mloop.EINVALID, "data has %d features, the model %d", len(d.Columns), len(m.Features))
	}
	n := d.Rows()
	for j, col := range d.Columns {
		if len(col) != n {
			return nil, mloop.Errorf(mloop.EINVALID, "feature %q has %d values for %d rows", m.Features[j].Name, len(col), n)
		}
	}
	k := m.Outputs()
	out := make([]float32, n*k)
	for i := range out {
		out[i] = m.baseMargin
	}
	for t, tr := range m.trees {
		c := m.treeClass[t]
		for i := range n {
			out[i*k+c] += tr.leafCols(d.Columns, i)
		}
	}
	for i := range n {
		m.transform(out[i*k : (i+1)*k])
	}
	return out, nil
}

// EvaluateData returns the model's metrics on d (see Evaluate).
func (m *Model) EvaluateData(d *Data) (map[string]float64, error) {
	p, err := m.PredictData(d)
	if err != nil {
		return nil, err
	}
	return Evaluate(m.Objective, m.NumClass, d.Labels, d.Weights, p)
}

func (m *Model) transform(acc []float32) {
	switch m.Objective {
	case BinaryLogistic:
		acc[0] = sigmoid32(acc[0])
	case MultiSoftprob:
		softmax32(acc)
	}
}

// goRight reports whether value v goes to the right child of split nd.
func (nd *node) goRight(v float32) bool {
	switch {
	case v != v:
		return !nd.defaultLeft
	case nd.cat != nil:
		// As the runtime: a category outside the set (negative or beyond
		// it) goes left; codes are truncated to integers.
		if !(v >= 0 && v < float32(len(nd.cat)*64)) {
			return false
		}
		c := uint32(v)
		return nd.cat[c>>6]>>(c&63)&1 == 1
	}
	return v >= nd.cond
}

// leafRow returns the value of the leaf row reaches.
func (t *tree) leafRow(row []float32) float32 {
	k := int32(0)
	for {
		nd := &t.nodes[k]
		if nd.left < 0 {
			return nd.cond
		}
		if nd.goRight(row[nd.feature]) {
			k = nd.right
		} else {
			k = nd.left
		}
	}
}

// leafCols returns the value of the leaf row i of cols reaches.
func (t *tree) leafCols(cols [][]float32, i int) float32 {
	k := int32(0)
	for {
		nd := &t.nodes[k]
		if nd.left < 0 {
			return nd.cond
		}
		if nd.goRight(cols[nd.feature][i]) {
			k = nd.right
		} else {
			k = nd.left
		}
	}
}

// XGBoost JSON attributes that mloop adds to a model: the names of the
// categories of categorical features read from text (a JSON object of
// feature name to list of names, code i being the i-th), and the class
// names of a multi-class label read from text (a JSON list).
const (
	AttrCategories = "mloop_categories"
	AttrClasses    = "mloop_classes"
)

// WriteXGBoostJSON writes the model as an XGBoost JSON model file (the
// format of XGBoost 1.7, which later versions read): learner with
// feature_names and feature_types ("float" or "c"), learner_model_param
// with base_score in the "5E-1" form, the objective, and a gbtree booster
// whose trees hold XGBoost's arrays. Category and class names, when the
// data had them, are kept in the learner's attributes (AttrCategories,
// AttrClasses).
func (m *Model) WriteXGBoostJSON(w io.Writer) error {
	bw := bufio.NewWriterSize(w, 1<<16)
	var b []byte
	b = append(b, `{"learner":{"attributes":{`...)
	attrs := m.attributes()
	for i, kv := range attrs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, kv[0])
		b = append(b, ':')
		b = appendString(b, kv[1])
	}
	b = append(b, `},"feature_names":[`...)
	for i, f := range m.Features {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.Name)
	}
	b = append(b, `],"feature_types":[`...)
	for i, f := range m.Features {
		if i > 0 {
			b = append(b, ',')
		}
		if f.Categorical {
			b = append(b, `"c"`...)
		} else {
			b = append(b, `"float"`...)
		}
	}
	nf := len(m.Features)
	b = append(b, `],"gradient_booster":{"model":{"gbtree_model_param":{"num_parallel_tree":"1","num_trees":"`...)
	b = strconv.AppendInt(b, int64(len(m.trees)), 10)
	b = append(b, `","size_leaf_vector":"0"},"tree_info":[`...)
	for i, c := range m.treeClass {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(c), 10)
	}
	b = append(b, `],"trees":[`...)
	for i, t := range m.trees {
		if i > 0 {
			b = append(b, ',')
		}
		b = t.appendJSON(b, i, nf)
		if len(b) > 1<<16 {
			if _, err := bw.Write(b); err != nil {
				return fmt.Errorf("write model: %w", err)
			}
			b = b[:0]
		}
	}
	b = append(b, `]},"name":"gbtree"},"learner_model_param":{"base_score":"`...)
	b = append(b, FormatBaseScore(m.BaseScore)...)
	b = append(b, `","boost_from_average":"1","num_class":"`...)
	b = strconv.AppendInt(b, int64(m.NumClass), 10)
	b = append(b, `","num_feature":"`...)
	b = strconv.AppendInt(b, int64(nf), 10)
	b = append(b, `","num_target":"1"},"objective":{"name":"`...)
	b = append(b, m.Objective...)
	if m.Objective == MultiSoftprob {
		b = append(b, `","softmax_multiclass_param":{"num_class":"`...)
		b = strconv.AppendInt(b, int64(m.NumClass), 10)
		b = append(b, `"}}},"version":[1,7,0]}`...)
	} else {
		b = append(b, `","reg_loss_param":{"scale_pos_weight":"1"}}},"version":[1,7,0]}`...)
	}
	b = append(b, '\n')
	if _, err := bw.Write(b); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write model: %w", err)
	}
	return nil
}

// attributes returns the learner attributes to write, in order.
func (m *Model) attributes() [][2]string {
	var out [][2]string
	if m.Params.EarlyStoppingRounds > 0 {
		out = append(out,
			[2]string{"best_iteration", strconv.Itoa(m.BestIteration)},
			[2]string{"best_ntree_limit", strconv.Itoa(m.BestIteration + 1)})
	}
	cats := map[string][]string{}
	for _, f := range m.Features {
		if f.Categories != nil {
			cats[f.Name] = f.Categories
		}
	}
	if len(cats) > 0 {
		j, _ := json.Marshal(cats)
		out = append(out, [2]string{AttrCategories, string(j)})
	}
	if m.Classes != nil {
		j, _ := json.Marshal(m.Classes)
		out = append(out, [2]string{AttrClasses, string(j)})
	}
	return out
}

// appendJSON appends tree t, the id-th, in XGBoost's JSON form.
func (t *tree) appendJSON(b []byte, id, nf int) []byte {
	ints := func(b []byte, key string, f func(n *node) int64) []byte {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":[`...)
		for i := range t.nodes {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, f(&t.nodes[i]), 10)
		}
		return append(b, "],"...)
	}
	floats := func(b []byte, key string, f func(n *node) float32) []byte {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":[`...)
		for i := range t.nodes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendFloat32(b, f(&t.nodes[i]))
		}
		return append(b, "],"...)
	}
	b = append(b, '{')
	b = floats(b, "base_weights", func(n *node) float32 { return n.weight })
	// Categorical splits: the codes of each split's set, concatenated.
	var cats, catNodes, segs, sizes []int64
	for i := range t.nodes {
		nd := &t.nodes[i]
		if nd.left < 0 || nd.cat == nil {
			continue
		}
		catNodes = append(catNodes, int64(i))
		segs = append(segs, int64(len(cats)))
		for w, word := range nd.cat {
			for bit := range 64 {
				if word>>bit&1 == 1 {
					cats = append(cats, int64(w*64+bit))
				}
			}
		}
		sizes = append(sizes, int64(len(cats))-segs[len(segs)-1])
	}
	list := func(b []byte, key string, v []int64) []byte {
		b = append(b, '"')
		b = append(b, key...)
		b = append(b, `":[`...)
		for i, x := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendInt(b, x, 10)
		}
		return append(b, "],"...)
	}
	b = list(b, "categories", cats)
	b = list(b, "categories_nodes", catNodes)
	b = list(b, "categories_segments", segs)
	b = list(b, "categories_sizes", sizes)
	b = ints(b, "default_left", func(n *node) int64 {
		if n.left >= 0 && n.defaultLeft {
			return 1
		}
		return 0
	})
	b = append(b, `"id":`...)
	b = strconv.AppendInt(b, int64(id), 10)
	b = append(b, ',')
	b = ints(b, "left_children", func(n *node) int64 { return int64(n.left) })
	b = floats(b, "loss_changes", func(n *node) float32 { return n.lossChg })
	b = ints(b, "parents", func(n *node) int64 {
		if n.parent < 0 {
			return math.MaxInt32
		}
		return int64(n.parent)
	})
	b = ints(b, "right_children", func(n *node) int64 { return int64(n.right) })
	b = floats(b, "split_conditions", func(n *node) float32 { return n.cond })
	b = ints(b, "split_indices", func(n *node) int64 { return int64(n.feature) })
	b = ints(b, "split_type", func(n *node) int64 {
		if n.left >= 0 && n.cat != nil {
			return 1
		}
		return 0
	})
	b = floats(b, "sum_hessian", func(n *node) float32 { return n.sumHess })
	b = append(b, `"tree_param":{"num_deleted":"0","num_feature":"`...)
	b = strconv.AppendInt(b, int64(nf), 10)
	b = append(b, `","num_nodes":"`...)
	b = strconv.AppendInt(b, int64(len(t.nodes)), 10)
	b = append(b, `","size_leaf_vector":"0"}}`...)
	return b
}

// appendFloat32 appends v as XGBoost writes a float: its shortest digits
// in scientific notation ("1.6263565E1", "0E0"), which XGBoost's reader
// needs to tell a float from an integer; non-finite values as NaN,
// Infinity and -Infinity.
func appendFloat32(b []byte, v float32) []byte {
	switch {
	case v != v:
		return append(b, "NaN"...)
	case math.IsInf(float64(v), 1):
		return append(b, "Infinity"...)
	case math.IsInf(float64(v), -1):
		return append(b, "-Infinity"...)
	}
	return append(b, FormatBaseScore(v)...)
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	j, _ := json.Marshal(s)
	return append(b, j...)
}

// FormatBaseScore formats a float32 as XGBoost writes floats, and
// base_score before 3.1: the shortest digits in scientific notation with a
// bare exponent ("5E-1", "1.2345E2", "0E0").
func FormatBaseScore(v float32) string {
	s := strconv.FormatFloat(float64(v), 'E', -1, 32)
	mant, exp, _ := strings.Cut(s, "E")
	e, _ := strconv.Atoi(exp)
	return mant + "E" + strconv.Itoa(e)
}
