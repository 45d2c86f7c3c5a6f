package xgboost

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/ubjson"
)

// Limits on what a model may declare, so that a few bytes of input cannot
// demand unbounded memory.
const (
	maxFeatures = 1 << 20
	maxGroups   = 1 << 16
	// maxCategory is the largest category code a split may hold; XGBoost
	// keeps categories exactly representable as float32 (below 2^24).
	maxCategory = 1 << 24
	// maxCategoryWords bounds the 64-bit words of all the categorical
	// split sets of a model (16 MiB), so that a small file naming huge
	// category codes cannot demand gigabytes.
	maxCategoryWords = 1 << 21
)

// parse decodes data (JSON or UBJSON) into a tree and builds the model.
func parse(data []byte, name string) (*Model, error) {
	var (
		doc any
		err error
	)
	if isUBJSON(data) {
		doc, err = ubjson.Unmarshal(data)
	} else {
		doc, err = parseJSON(data)
	}
	if err != nil {
		return nil, err
	}
	return build(doc, name)
}

// invalid returns an EINVALID error for a model that cannot be served.
func invalid(format string, args ...any) error {
	return mloop.Errorf(mloop.EINVALID, format, args...)
}

// within prefixes err's message with where it happened, keeping its kind.
func within(where string, err error) error {
	where = strings.TrimSuffix(where, ": ")
	if mloop.ErrorCode(err) == mloop.EINVALID {
		return invalid("%s: %s", where, mloop.ErrorMessage(err))
	}
	return fmt.Errorf("%s: %w", where, err)
}

// build turns a decoded model document into a Model.
func build(doc any, name string) (*Model, error) {
	root, ok := doc.(map[string]any)
	if !ok {
		return nil, invalid("not an XGBoost model: the top level is not an object")
	}
	learner, err := object(root, "learner")
	if err != nil {
		return nil, invalid("not an XGBoost model (save it with Booster.save_model to a .json or .ubj file): %v", mloop.ErrorMessage(err))
	}
	lmp, err := object(learner, "learner_model_param")
	if err != nil {
		return nil, err
	}
	m := &Model{name: name}

	objSpec, err := object(learner, "objective")
	if err != nil {
		return nil, err
	}
	if m.objective, err = str(objSpec, "name"); err != nil {
		return nil, within("objective: ", err)
	}
	var known bool
	if m.obj, known = lookupObjective(m.objective); !known {
		return nil, invalid("objective %q is not supported (supported: binary:logistic, binary:logitraw, multi:softprob, multi:softmax, reg:squarederror, reg:logistic, reg:pseudohubererror, count:poisson, reg:gamma, reg:tweedie, reg:absoluteerror)", m.objective)
	}

	numFeature, err := intParam(lmp, "num_feature", 0, maxFeatures)
	if err != nil {
		return nil, err
	}
	numClass, err := intParam(lmp, "num_class", 0, maxGroups)
	if err != nil {
		return nil, err
	}
	numTarget := 1
	if _, ok := lmp["num_target"]; ok {
		if numTarget, err = intParam(lmp, "num_target", 1, maxGroups); err != nil {
			return nil, err
		}
	}
	switch {
	case m.obj.multi && numClass < 2:
		return nil, invalid("objective %s needs num_class ≥ 2, model has %d", m.objective, numClass)
	case !m.obj.multi && numClass > 1:
		return nil, invalid("objective %s does not take num_class (%d)", m.objective, numClass)
	case numClass > 1 && numTarget > 1:
		return nil, invalid("multi-class models with several targets are not supported")
	}
	m.groups = max(numClass, numTarget, 1)

	if m.features, err = features(learner, numFeature); err != nil {
		return nil, err
	}
	if m.base, err = baseScore(lmp, m.groups, m.obj.link); err != nil {
		return nil, err
	}

	gb, err := object(learner, "gradient_booster")
	if err != nil {
		return nil, err
	}
	booster, err := str(gb, "name")
	if err != nil {
		return nil, within("gradient_booster: ", err)
	}
	var trees map[string]any
	var weights []float32
	switch booster {
	case "gbtree":
		if trees, err = object(gb, "model"); err != nil {
			return nil, err
		}
	case "dart":
		inner, err := object(gb, "gbtree")
		if err != nil {
			return nil, within("dart booster: ", err)
		}
		if trees, err = object(inner, "model"); err != nil {
			return nil, within("dart booster: ", err)
		}
		if weights, err = floats(gb["weight_drop"], "weight_drop"); err != nil {
			return nil, within("dart booster: ", err)
		}
	case "gblinear":
		return nil, invalid("the gblinear booster is not supported: only tree models (gbtree, dart) can be served natively; serve it with the process runtime")
	default:
		return nil, invalid("gradient booster %q is not supported (want gbtree or dart)", booster)
	}
	if err := m.buildTrees(trees, weights, numFeature); err != nil {
		return nil, err
	}
	return m, nil
}

// features reads feature_names and feature_types, defaulting to f0, f1, …
// and numeric.
func features(learner map[string]any, n int) ([]serving.Feature, error) {
	names, err := stringList(learner["feature_names"], "feature_names")
	if err != nil {
		return nil, err
	}
	types, err := stringList(learner["feature_types"], "feature_types")
	if err != nil {
		return nil, err
	}
	if len(names) != 0 && len(names) != n {
		return nil, invalid("feature_names has %d names, num_feature is %d", len(names), n)
	}
	if len(types) != 0 && len(types) != n {
		return nil, invalid("feature_types has %d types, num_feature is %d", len(types), n)
	}
	fs := make([]serving.Feature, n)
	for i := range fs {
		fs[i] = serving.Feature{Name: "f" + strconv.Itoa(i), Type: serving.Numeric}
		if len(names) != 0 {
			fs[i].Name = names[i]
		}
		if len(types) != 0 {
			switch types[i] {
			case "c":
				fs[i].Type = serving.Categorical
			case "q", "float", "int", "i":
			default:
				return nil, invalid("feature %q has unsupported type %q (want q, c, int, float or i)", fs[i].Name, types[i])
			}
		}
	}
	return fs, nil
}

// baseScore parses base_score ("5E-1", "[5E-1]" or "[a,b,…]") and converts
// it to per-group margins with the objective's inverse link, in float32 as
// XGBoost does.
func baseScore(lmp map[string]any, groups int, link transform) ([]float32, error) {
	var vals []float32
	switch v := lmp["base_score"].(type) {
	case string:
		s := strings.TrimSpace(v)
		if strings.HasPrefix(s, "[") {
			if !strings.HasSuffix(s, "]") {
				return nil, invalid("base_score %q: unterminated list", v)
			}
			s = s[1 : len(s)-1]
		}
		parts := strings.Split(s, ",")
		if len(parts) > maxGroups {
			return nil, invalid("base_score has %d values, more than %d", len(parts), maxGroups)
		}
		for _, p := range parts {
			f, err := strconv.ParseFloat(strings.TrimSpace(p), 32)
			if err != nil {
				return nil, invalid("base_score %q is not a number or a list of numbers", v)
			}
			vals = append(vals, float32(f))
		}
	case int64, float64:
		f, _ := toFloat(v)
		vals = []float32{float32(f)}
	case nil:
		return nil, invalid("learner_model_param.base_score is missing")
	default:
		return nil, invalid("learner_model_param.base_score has type %T, want a string", v)
	}
	switch {
	case len(vals) == 1 && groups > 1:
		for len(vals) < groups {
			vals = append(vals, vals[0])
		}
	case len(vals) != groups:
		return nil, invalid("base_score has %d values, the model has %d outputs", len(vals), groups)
	}
	for i, b := range vals {
		switch link {
		case sigmoid:
			if !(b > 0 && b < 1) {
				return nil, invalid("base_score %g must lie in (0, 1) for a logistic objective", b)
			}
			t := 1/b - 1
			vals[i] = float32(-math.Log(float64(t)))
		case exponential:
			if !(b > 0) {
				return nil, invalid("base_score %g must be positive for a log-link objective", b)
			}
			vals[i] = float32(math.Log(float64(b)))
		}
		if math.IsNaN(float64(vals[i])) || math.IsInf(float64(vals[i]), 0) {
			return nil, invalid("base_score %g gives a non-finite margin", b)
		}
	}
	return vals, nil
}

// buildTrees flattens the trees of a gbtree model into m.nodes.
func (m *Model) buildTrees(gbm map[string]any, weights []float32, numFeature int) error {
	list, ok := gbm["trees"].([]any)
	if !ok {
		return invalid("gradient_booster model has no trees list")
	}
	info, err := ints(gbm["tree_info"], "tree_info")
	if err != nil {
		return err
	}
	if len(info) != len(list) {
		return invalid("tree_info has %d entries for %d trees", len(info), len(list))
	}
	if weights != nil && len(weights) != len(list) {
		return invalid("dart weight_drop has %d weights for %d trees", len(weights), len(list))
	}
	if p, ok := gbm["gbtree_model_param"].(map[string]any); ok {
		if n, err := intParam(p, "num_trees", 0, math.MaxInt32); err == nil && n != len(list) {
			return invalid("gbtree_model_param.num_trees is %d but the model holds %d trees", n, len(list))
		}
	}
	m.roots = make([]int32, len(list))
	m.treeGroup = make([]int32, len(list))
	m.depths = make([]int32, len(list))
	m.treeCat = make([]bool, len(list))
	for t, raw := range list {
		if info[t] < 0 || info[t] >= int64(m.groups) {
			return invalid("tree %d: tree_info class %d out of range [0, %d)", t, info[t], m.groups)
		}
		m.treeGroup[t] = int32(info[t])
		w := float32(1)
		if weights != nil {
			w = weights[t]
		}
		tree, ok := raw.(map[string]any)
		if !ok {
			return invalid("tree %d is not an object", t)
		}
		splits := m.catSplits
		root, depth, err := m.addTree(tree, w, numFeature)
		if err != nil {
			return within(fmt.Sprintf("tree %d", t), err)
		}
		m.roots[t], m.depths[t], m.treeCat[t] = root, depth, m.catSplits > splits
	}
	return nil
}

// rawTree holds one tree's arrays as read from the file.
type rawTree struct {
	left, right, split []int64
	cond               []float32
	defaultLeft        []int64
	splitType          []int64
	n                  int
}

// addTree validates one tree and appends its reachable nodes to m.nodes in
// breadth-first order with sibling children adjacent; it returns the root's
// index. Nodes that are not reachable from the root (deleted nodes) are
// dropped; a node reached twice (a cycle or a shared child) is an error.
func (m *Model) addTree(tree map[string]any, w float32, numFeature int) (root, depth int32, err error) {
	if p, ok := tree["tree_param"].(map[string]any); ok {
		if _, has := p["size_leaf_vector"]; has {
			if s, err := intParam(p, "size_leaf_vector", 0, math.MaxInt32); err != nil {
				return 0, 0, err
			} else if s > 1 {
				return 0, 0, invalid("vector-leaf (multi-target) trees are not supported")
			}
		}
	}
	var rt rawTree
	if rt.left, err = ints(tree["left_children"], "left_children"); err != nil {
		return 0, 0, err
	}
	rt.n = len(rt.left)
	if rt.n == 0 {
		return 0, 0, invalid("tree has no nodes")
	}
	if rt.right, err = ints(tree["right_children"], "right_children"); err != nil {
		return 0, 0, err
	}
	if rt.split, err = ints(tree["split_indices"], "split_indices"); err != nil {
		return 0, 0, err
	}
	if rt.cond, err = floats(tree["split_conditions"], "split_conditions"); err != nil {
		return 0, 0, err
	}
	if rt.defaultLeft, err = ints(tree["default_left"], "default_left"); err != nil {
		return 0, 0, err
	}
	if st, ok := tree["split_type"]; ok {
		if rt.splitType, err = ints(st, "split_type"); err != nil {
			return 0, 0, err
		}
	} else {
		rt.splitType = make([]int64, rt.n)
	}
	for _, a := range []struct {
		name string
		n    int
	}{{"right_children", len(rt.right)}, {"split_indices", len(rt.split)}, {"split_conditions", len(rt.cond)}, {"default_left", len(rt.defaultLeft)}, {"split_type", len(rt.splitType)}} {
		if a.n != rt.n {
			return 0, 0, invalid("%s has %d entries, left_children has %d", a.name, a.n, rt.n)
		}
	}
	if p, ok := tree["tree_param"].(map[string]any); ok {
		if nn, err := intParam(p, "num_nodes", 0, math.MaxInt32); err == nil && nn != rt.n {
			return 0, 0, invalid("tree_param.num_nodes is %d but the arrays have %d nodes", nn, rt.n)
		}
	}
	cats, err := readCategories(tree, rt.n)
	if err != nil {
		return 0, 0, err
	}
	if len(m.nodes)+rt.n > math.MaxInt32-1 {
		return 0, 0, invalid("model has more than %d nodes", math.MaxInt32-1)
	}

	// Breadth-first copy. queue holds original ids; pos maps an original id
	// to its new absolute index (-1 before it is reached).
	pos := make([]int32, rt.n)
	for i := range pos {
		pos[i] = -1
	}
	base := int32(len(m.nodes))
	pos[0] = base
	m.nodes = append(m.nodes, node{})
	type item struct {
		id    int64
		depth int32
	}
	queue := []item{{0, 0}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		id, at := it.id, pos[it.id]
		l, r := rt.left[id], rt.right[id]
		if l == -1 {
			// A leaf is its own only child, so a walk of fixed length stays put.
			m.nodes[at] = leaf(rt.cond[id]*w, at)
			depth = max(depth, it.depth)
			continue
		}
		if l < 0 || l >= int64(rt.n) || r < 0 || r >= int64(rt.n) {
			return 0, 0, invalid("node %d: child index out of range (left %d, right %d, tree has %d nodes)", id, l, r, rt.n)
		}
		if l == r || pos[l] != -1 || pos[r] != -1 || l == 0 || r == 0 {
			return 0, 0, invalid("node %d: children %d and %d are reached twice (the tree has a cycle or shared nodes)", id, l, r)
		}
		f := rt.split[id]
		if f < 0 || f >= int64(numFeature) {
			return 0, 0, invalid("node %d: split feature index %d out of range (num_feature is %d)", id, f, numFeature)
		}
		nd := node{value: rt.cond[id], feature: int32(f), left: int32(len(m.nodes)), meta: 0}
		if dl := rt.defaultLeft[id]; dl != 0 && dl != 1 {
			return 0, 0, invalid("node %d: default_left is %d, want 0 or 1", id, dl)
		} else if dl == 1 {
			nd.meta |= metaDefaultLeft
		}
		switch rt.splitType[id] {
		case 0:
			if math.IsNaN(float64(nd.value)) {
				return 0, 0, invalid("node %d: numerical split with a NaN condition", id)
			}
		case 1:
			// XGBoost writes NaN, but a NaN threshold marks a leaf here;
			// value is set below.
			bits, ok := cats[id]
			if !ok {
				return 0, 0, invalid("node %d: categorical split without categories (categories_nodes does not list it)", id)
			}
			if len(m.catBits)+len(bits) > maxCategoryWords {
				return 0, 0, invalid("the model's categorical splits need more than %d words of category sets", maxCategoryWords)
			}
			if len(m.catBits) == 0 {
				// Word 0 stays unused, so that offset 0 in a node's
				// meta means a numerical split.
				m.catBits = append(m.catBits, 0)
			}
			// The set's first word goes in meta and its size in
			// categories (exact in a float32: a multiple of 64 below
			// 2^27) in the threshold, which a categorical split does
			// not otherwise use.
			nd.meta |= uint32(len(m.catBits)) << metaCatShift
			nd.value = float32(len(bits) * 64)
			m.catBits = append(m.catBits, bits...)
			m.catSplits++
		default:
			return 0, 0, invalid("node %d: split_type %d is neither 0 (numerical) nor 1 (categorical)", id, rt.splitType[id])
		}
		m.nodes[at] = nd
		pos[l], pos[r] = nd.left, nd.left+1
		m.nodes = append(m.nodes, node{}, node{})
		queue = append(queue, item{l, it.depth + 1}, item{r, it.depth + 1})
	}
	return base, depth, nil
}

// readCategories reads a tree's categorical split sets into bitsets keyed
// by original node id.
func readCategories(tree map[string]any, n int) (map[int64][]uint64, error) {
	if _, ok := tree["categories_nodes"]; !ok {
		return nil, nil
	}
	cats, err := ints(tree["categories"], "categories")
	if err != nil {
		return nil, err
	}
	nodes, err := ints(tree["categories_nodes"], "categories_nodes")
	if err != nil {
		return nil, err
	}
	segs, err := ints(tree["categories_segments"], "categories_segments")
	if err != nil {
		return nil, err
	}
	sizes, err := ints(tree["categories_sizes"], "categories_sizes")
	if err != nil {
		return nil, err
	}
	if len(segs) != len(nodes) || len(sizes) != len(nodes) {
		return nil, invalid("categories_nodes, categories_segments and categories_sizes differ in length (%d, %d, %d)", len(nodes), len(segs), len(sizes))
	}
	out := make(map[int64][]uint64, len(nodes))
	var words int64
	for i, id := range nodes {
		if id < 0 || id >= int64(n) {
			return nil, invalid("categories_nodes[%d] = %d out of range (tree has %d nodes)", i, id, n)
		}
		if _, dup := out[id]; dup {
			return nil, invalid("categories_nodes lists node %d twice", id)
		}
		s, z := segs[i], sizes[i]
		if s < 0 || z < 0 || s > int64(len(cats)) || z > int64(len(cats))-s {
			return nil, invalid("node %d: category segment [%d, %d+%d) outside categories (%d entries)", id, s, s, z, len(cats))
		}
		var hi int64 = -1
		for _, c := range cats[s : s+z] {
			if c < 0 || c >= maxCategory {
				return nil, invalid("node %d: category %d out of range [0, %d)", id, c, maxCategory)
			}
			hi = max(hi, c)
		}
		if words += hi/64 + 1; words > maxCategoryWords {
			return nil, invalid("the categorical splits of this tree need more than %d words of category sets (categories up to %d)", maxCategoryWords, hi)
		}
		bits := make([]uint64, hi/64+1)
		for _, c := range cats[s : s+z] {
			bits[c/64] |= 1 << (c % 64)
		}
		out[id] = bits
	}
	return out, nil
}

// object returns the object at key.
func object(m map[string]any, key string) (map[string]any, error) {
	v, ok := m[key]
	if !ok {
		return nil, invalid("%q is missing", key)
	}
	o, ok := v.(map[string]any)
	if !ok {
		return nil, invalid("%q is %T, want an object", key, v)
	}
	return o, nil
}

// str returns the string at key.
func str(m map[string]any, key string) (string, error) {
	v, ok := m[key].(string)
	if !ok {
		return "", invalid("%q is missing or not a string", key)
	}
	return v, nil
}

// intParam reads an integer parameter, which XGBoost stores as a decimal
// string ("5"), and checks lo ≤ n ≤ hi.
func intParam(m map[string]any, key string, lo, hi int) (int, error) {
	var n int64
	switch v := m[key].(type) {
	case string:
		var err error
		if n, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64); err != nil {
			return 0, invalid("%s %q is not an integer", key, v)
		}
	case int64:
		n = v
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return 0, invalid("%s %g is not an integer", key, v)
		}
		n = int64(v)
	case nil:
		return 0, invalid("%s is missing", key)
	default:
		return 0, invalid("%s has type %T, want an integer", key, v)
	}
	if n < int64(lo) || n > int64(hi) {
		return 0, invalid("%s is %d, want %d to %d", key, n, lo, hi)
	}
	return int(n), nil
}

// toFloat converts a decoded number (or null, read as NaN) to float64.
func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case nil:
		return math.NaN(), true
	}
	return 0, false
}

// floats reads a numeric array as float32.
func floats(v any, name string) ([]float32, error) {
	switch a := v.(type) {
	case []float32:
		return a, nil
	case []float64:
		out := make([]float32, len(a))
		for i, x := range a {
			out[i] = float32(x)
		}
		return out, nil
	case []any:
		out := make([]float32, len(a))
		for i, e := range a {
			f, ok := toFloat(e)
			if !ok {
				return nil, invalid("%s[%d] is %T, want a number", name, i, e)
			}
			out[i] = float32(f)
		}
		return out, nil
	case []int8, []uint8, []int64:
		is, err := ints(v, name)
		if err != nil {
			return nil, err
		}
		out := make([]float32, len(is))
		for i, x := range is {
			out[i] = float32(x)
		}
		return out, nil
	case nil:
		return nil, invalid("%s is missing", name)
	}
	return nil, invalid("%s is %T, want an array of numbers", name, v)
}

// ints reads an integer array (booleans count as 0 and 1).
func ints(v any, name string) ([]int64, error) {
	switch a := v.(type) {
	case []int64:
		return a, nil
	case []int8:
		out := make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
		return out, nil
	case []uint8:
		out := make([]int64, len(a))
		for i, x := range a {
			out[i] = int64(x)
		}
		return out, nil
	case []float32, []float64:
		fs, err := floats(v, name)
		if err != nil {
			return nil, err
		}
		return intsOfFloats(fs, name)
	case []any:
		out := make([]int64, len(a))
		for i, e := range a {
			switch x := e.(type) {
			case int64:
				out[i] = x
			case bool:
				if x {
					out[i] = 1
				}
			case float64:
				if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
					return nil, invalid("%s[%d] = %g is not an integer", name, i, x)
				}
				out[i] = int64(x)
			default:
				return nil, invalid("%s[%d] is %T, want an integer", name, i, e)
			}
		}
		return out, nil
	case nil:
		return nil, invalid("%s is missing", name)
	}
	return nil, invalid("%s is %T, want an array of integers", name, v)
}

func intsOfFloats(fs []float32, name string) ([]int64, error) {
	out := make([]int64, len(fs))
	for i, x := range fs {
		if float64(x) != math.Trunc(float64(x)) || math.Abs(float64(x)) > 1<<53 {
			return nil, invalid("%s[%d] = %g is not an integer", name, i, x)
		}
		out[i] = int64(x)
	}
	return out, nil
}

// stringList reads an optional array of strings (nil when absent).
func stringList(v any, name string) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, invalid("%s is %T, want an array of strings", name, v)
	}
	out := make([]string, len(a))
	for i, e := range a {
		s, ok := e.(string)
		if !ok {
			return nil, invalid("%s[%d] is %T, want a string", name, i, e)
		}
		out[i] = s
	}
	return out, nil
}
