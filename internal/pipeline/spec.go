package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// The keys the parser accepts at each level of a spec. docs/pipeline.schema.json
// lists the same keys; a test keeps the two in step.
var (
	specKeys   = []string{"name", "params", "steps"}
	stepKeys   = []string{"run", "uses", "with", "needs", "inputs", "outputs", "env", "params", "retries", "timeout", "cache", "image"}
	outputKeys = []string{"path", "type", "flavor"}
)

// OutputTypes lists the kinds of step outputs: a file, a folder, a metrics
// JSON file, or a model (with a flavor).
var OutputTypes = []string{"file", "folder", "metrics", "model"}

// BuiltinSteps lists the steps built into mloop that a step can name with
// `uses:` instead of giving a command with `run:`.
var BuiltinSteps = []string{"evaluate", "gate", "register", "train/gbdt", "validate"}

var (
	nameRE   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]{0,63}$`)
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	stepRefR = regexp.MustCompile(`^steps\.([^.]*)\.outputs\.([^.]*)$`)
)

// SpecError is one problem in a pipeline spec, at a position of its file.
type SpecError struct {
	File   string
	Line   int
	Column int
	Msg    string
}

// Error formats the problem as "file:line:column: message".
func (e *SpecError) Error() string {
	if e.Column > 0 {
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// Spec is a parsed and validated pipeline spec.
type Spec struct {
	// File is the name the spec was read from, used in error messages.
	File string
	// Name names the pipeline (and its experiment).
	Name string
	// Params are the pipeline's parameters with their defaults, in file order.
	Params []Param
	// Steps are the steps in file order.
	Steps []*Step
}

// Param is a pipeline parameter and its default value, kept as text.
type Param struct {
	Name    string
	Default string
	Line    int
}

// Step is one step of a pipeline.
type Step struct {
	// Name is the step's key under `steps:`.
	Name string
	// Line and Column locate the step's name in the spec file.
	Line, Column int
	// Run is the command as written: for a string `run`, the one string
	// (run by `sh -c`); for a list, the argv.
	Run []string
	// Shell reports whether `run` was a string, run by `sh -c`.
	Shell bool
	// Uses names a built-in step (one of BuiltinSteps) instead of Run.
	Uses string
	// With is the raw configuration of a built-in step.
	With map[string]any
	// Needs names steps that must succeed before this one runs, besides
	// those it takes inputs from (order only: they do not enter the cache
	// key). NeedsLine locates the key.
	Needs     []string
	NeedsLine int
	// Inputs are the step's inputs in file order.
	Inputs []Input
	// Outputs are the step's outputs in file order.
	Outputs []Output
	// Env is the step's extra environment; values may use substitutions.
	Env map[string]string
	// Params are the step's parameters; values may use ${{ params.NAME }}.
	Params map[string]string
	// Retries is how many times a failed step is retried.
	Retries int
	// Timeout bounds one attempt of the step; zero means no limit.
	Timeout time.Duration
	// Cache reports whether a cached result may be reused (default true).
	Cache bool
	// Image is the container image used by container executors.
	Image string
}

// InputKind tells what an input refers to.
type InputKind int

// The kinds of inputs.
const (
	// InputPath is a file or folder of the project (code).
	InputPath InputKind = iota
	// InputData is a dataset version, data://NAME@REF.
	InputData
	// InputStep is an output of another step, steps.STEP.outputs.OUTPUT.
	InputStep
)

// String names the kind: "path", "data" or "step".
func (k InputKind) String() string {
	switch k {
	case InputData:
		return "data"
	case InputStep:
		return "step"
	}
	return "path"
}

// Input is one input of a step.
type Input struct {
	Name string
	// Ref is the reference as written.
	Ref  string
	Kind InputKind
	// Dataset is the dataset reference of an InputData.
	Dataset dataset.Ref
	// Step and Output name the upstream output of an InputStep.
	Step, Output string
	// Path is the cleaned project-relative path of an InputPath.
	Path string
	Line int
}

// Output is one declared output of a step.
type Output struct {
	Name string
	// Path is relative to the step's output folder.
	Path string
	// Type is one of OutputTypes; "file" when not given.
	Type string
	// Flavor is the model flavor of a "model" output.
	Flavor string
	Line   int
}

// Step returns the step named name, or nil.
func (s *Spec) Step(name string) *Step {
	for _, st := range s.Steps {
		if st.Name == name {
			return st
		}
	}
	return nil
}

// Param returns the default of the pipeline parameter name.
func (s *Spec) Param(name string) (string, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p.Default, true
		}
	}
	return "", false
}

// Output returns the output named name, or nil.
func (st *Step) Output(name string) *Output {
	for i := range st.Outputs {
		if st.Outputs[i].Name == name {
			return &st.Outputs[i]
		}
	}
	return nil
}

// Input returns the input named name, or nil.
func (st *Step) Input(name string) *Input {
	for i := range st.Inputs {
		if st.Inputs[i].Name == name {
			return &st.Inputs[i]
		}
	}
	return nil
}

// MaxSpecSize bounds the size of a spec file.
const MaxSpecSize = 4 << 20

// ReadSpecFile returns the text of the spec file at path: a regular file of
// at most MaxSpecSize bytes. A missing, unreadable or oversized file is
// EINVALID (ETOOLARGE) with the path.
func ReadSpecFile(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", mloop.Errorf(mloop.EINVALID, "there is no pipeline spec %s (give the path of an mloop.yaml on the server's machine)", path)
	} else if err != nil {
		return "", mloop.Errorf(mloop.EINVALID, "cannot read the pipeline spec %s: %v", path, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", mloop.Errorf(mloop.EINVALID, "the pipeline spec %s is not a regular file", path)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return "", mloop.Errorf(mloop.EINVALID, "cannot read the pipeline spec %s: %v", path, err)
	}
	if len(data) > MaxSpecSize {
		return "", mloop.Errorf(mloop.ETOOLARGE, "the pipeline spec %s exceeds the limit of %d bytes", path, MaxSpecSize)
	}
	return string(data), nil
}

// LoadSpec reads (ReadSpecFile) and parses the spec file at path.
func LoadSpec(path string) (*Spec, error) {
	text, err := ReadSpecFile(path)
	if err != nil {
		return nil, fmt.Errorf("load pipeline spec: %w", err)
	}
	return ParseSpec(path, []byte(text))
}

// WithParams returns a copy of the spec whose parameter defaults are replaced
// by overrides. An override of a parameter the spec does not define is an
// error that lists the defined ones.
func (s *Spec) WithParams(overrides map[string]string) (*Spec, error) {
	c := *s
	c.Params = slices.Clone(s.Params)
	var unknown []string
	for k, v := range overrides {
		i := slices.IndexFunc(c.Params, func(p Param) bool { return p.Name == k })
		if i < 0 {
			unknown = append(unknown, k)
			continue
		}
		c.Params[i].Default = v
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		defined := make([]string, len(s.Params))
		for i, p := range s.Params {
			defined[i] = p.Name
		}
		list := "none"
		if len(defined) > 0 {
			list = strings.Join(defined, ", ")
		}
		return nil, fmt.Errorf("pipeline %q has no parameter %s (defined: %s)", s.Name, strings.Join(unknown, ", "), list)
	}
	return &c, nil
}

// ParseSpec parses and validates a pipeline spec. file names the spec in
// error messages. On failure the error joins one *SpecError per problem
// found, sorted by position.
func ParseSpec(file string, data []byte) (*Spec, error) {
	p := &specParser{file: file}
	s := p.parse(data)
	if len(p.errs) > 0 {
		sort.SliceStable(p.errs, func(i, j int) bool {
			a, b := p.errs[i], p.errs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Column < b.Column
		})
		errs := make([]error, len(p.errs))
		for i, e := range p.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return s, nil
}

type specParser struct {
	file string
	errs []*SpecError
}

func (p *specParser) errAt(line, col int, format string, args ...any) {
	if line < 1 {
		line = 1
	}
	p.errs = append(p.errs, &SpecError{File: p.file, Line: line, Column: col, Msg: fmt.Sprintf(format, args...)})
}

func (p *specParser) errNode(n ast.Node, format string, args ...any) {
	line, col := pos(n)
	p.errAt(line, col, format, args...)
}

func pos(n ast.Node) (int, int) {
	if n == nil {
		return 1, 0
	}
	if m, ok := n.(*ast.MappingNode); ok && len(m.Values) > 0 {
		return pos(m.Values[0].Key)
	}
	if s, ok := n.(*ast.SequenceNode); ok && s.Start != nil {
		return s.Start.Position.Line, s.Start.Position.Column
	}
	t := n.GetToken()
	if t == nil || t.Position == nil {
		return 1, 0
	}
	return t.Position.Line, t.Position.Column
}

// yamlErrorWithToken matches the syntax errors of github.com/goccy/go-yaml,
// which carry the offending token.
type yamlErrorWithToken interface {
	GetToken() *token.Token
	GetMessage() string
}

func (p *specParser) parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("yaml parser failed: %v", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

// entry is one key of a mapping with its value.
type entry struct {
	key   string
	kNode ast.Node
	value ast.Node
}

func (p *specParser) parse(data []byte) *Spec {
	f, err := p.parseYAML(data)
	if err != nil {
		var ye yamlErrorWithToken
		if errors.As(err, &ye) && ye.GetToken() != nil && ye.GetToken().Position != nil {
			tp := ye.GetToken().Position
			p.errAt(tp.Line, tp.Column, "invalid YAML: %s", ye.GetMessage())
		} else {
			p.errAt(1, 0, "invalid YAML: %v", err)
		}
		return nil
	}
	var docs []*ast.DocumentNode
	for _, d := range f.Docs {
		if d != nil && d.Body != nil {
			docs = append(docs, d)
		}
	}
	if len(docs) == 0 {
		p.errAt(1, 0, "the spec is empty; it needs at least name and steps")
		return nil
	}
	if len(docs) > 1 {
		p.errNode(docs[1].Body, "the spec holds more than one YAML document")
		return nil
	}
	root := docs[0].Body
	s := &Spec{File: p.file}
	entries, ok := p.mapping(root, "the spec")
	if !ok {
		return nil
	}
	p.checkKeys(entries, specKeys, "the spec")
	var stepsNode ast.Node
	var haveName bool
	// Params first: steps refer to them wherever they are in the file.
	for _, e := range entries {
		if e.key == "params" {
			s.Params = p.params(e.value)
		}
	}
	for _, e := range entries {
		switch e.key {
		case "name":
			if v, ok := p.str(e.value, "name"); ok {
				haveName = true
				s.Name = v
				if !nameRE.MatchString(v) {
					p.errNode(e.value, "invalid pipeline name %q: use letters, digits, '_' and '-', starting with a letter or '_'", v)
				}
			}
		case "steps":
			stepsNode = e.value
		}
	}
	if !haveName && !p.hasKey(entries, "name") {
		p.errNode(root, "the spec has no name")
	}
	if stepsNode == nil {
		p.errNode(root, "the spec has no steps")
		return s
	}
	stepEntries, ok := p.mapping(stepsNode, "steps")
	if !ok {
		return s
	}
	if len(stepEntries) == 0 {
		p.errNode(stepsNode, "steps is empty")
	}
	for _, e := range stepEntries {
		if st := p.step(s, e); st != nil {
			s.Steps = append(s.Steps, st)
		}
	}
	p.checkReferences(s)
	if len(p.errs) == 0 {
		p.checkCycles(s)
	}
	return s
}

func (p *specParser) hasKey(entries []entry, k string) bool {
	return slices.ContainsFunc(entries, func(e entry) bool { return e.key == k })
}

// unwrap removes anchors, tags and comments around a value.
func unwrap(n ast.Node) ast.Node {
	for {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		default:
			return n
		}
	}
}

func (p *specParser) mapping(n ast.Node, what string) ([]entry, bool) {
	n = unwrap(n)
	var values []*ast.MappingValueNode
	switch m := n.(type) {
	case *ast.MappingNode:
		values = m.Values
	case *ast.MappingValueNode:
		values = []*ast.MappingValueNode{m}
	case *ast.AliasNode:
		p.errNode(n, "%s: YAML aliases are not supported", what)
		return nil, false
	default:
		p.errNode(n, "%s must be a mapping, not %s", what, kind(n))
		return nil, false
	}
	seen := map[string]bool{}
	var out []entry
	for _, mv := range values {
		kn := unwrap(mv.Key)
		var key string
		switch k := kn.(type) {
		case *ast.StringNode:
			key = k.Value
		case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode:
			key = k.GetToken().Value
		default:
			p.errNode(mv.Key, "%s: keys must be plain strings", what)
			continue
		}
		if seen[key] {
			p.errNode(mv.Key, "%s: duplicate key %q", what, key)
			continue
		}
		seen[key] = true
		out = append(out, entry{key: key, kNode: mv.Key, value: mv.Value})
	}
	return out, true
}

func (p *specParser) checkKeys(entries []entry, allowed []string, what string) {
	for _, e := range entries {
		if !slices.Contains(allowed, e.key) {
			p.errNode(e.kNode, "unknown key %q in %s (allowed: %s)", e.key, what, strings.Join(allowed, ", "))
		}
	}
}

func kind(n ast.Node) string {
	switch unwrap(n).(type) {
	case nil, *ast.NullNode:
		return "null"
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode:
		return "an integer"
	case *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "a boolean"
	}
	return "an unsupported value"
}

// str returns the value of a string node.
func (p *specParser) str(n ast.Node, what string) (string, bool) {
	switch v := unwrap(n).(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value != nil {
			return v.Value.Value, true
		}
		return "", true
	}
	p.errNode(n, "%s must be a string, not %s", what, kind(n))
	return "", false
}

// scalar returns the text of a string, number or boolean node.
func (p *specParser) scalar(n ast.Node, what string) (string, bool) {
	switch v := unwrap(n).(type) {
	case *ast.StringNode, *ast.LiteralNode:
		return p.str(v, what)
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		return v.GetToken().Value, true
	}
	p.errNode(n, "%s must be a string, number or boolean, not %s", what, kind(n))
	return "", false
}

func (p *specParser) params(n ast.Node) []Param {
	entries, ok := p.mapping(n, "params")
	if !ok {
		return nil
	}
	var out []Param
	for _, e := range entries {
		line, _ := pos(e.kNode)
		if !nameRE.MatchString(e.key) {
			p.errNode(e.kNode, "invalid parameter name %q: use letters, digits, '_' and '-', starting with a letter or '_'", e.key)
			continue
		}
		v, ok := p.scalar(e.value, "default of parameter "+strconv.Quote(e.key))
		if !ok {
			continue
		}
		if strings.Contains(v, "${{") {
			p.errNode(e.value, "default of parameter %q cannot use ${{ }} substitutions", e.key)
		}
		out = append(out, Param{Name: e.key, Default: v, Line: line})
	}
	return out
}

// stepNodes keeps the AST nodes of a step needed by later checks.
type stepNodes struct {
	run    ast.Node
	env    map[string]ast.Node
	params map[string]ast.Node
}

func (p *specParser) step(s *Spec, e entry) *Step {
	line, col := pos(e.kNode)
	st := &Step{Name: e.key, Line: line, Column: col, Cache: true}
	if !nameRE.MatchString(e.key) {
		p.errNode(e.kNode, "invalid step name %q: use letters, digits, '_' and '-', starting with a letter or '_'", e.key)
	}
	what := "step " + strconv.Quote(e.key)
	entries, ok := p.mapping(e.value, what)
	if !ok {
		return nil
	}
	p.checkKeys(entries, stepKeys, what)
	nodes := stepNodes{env: map[string]ast.Node{}, params: map[string]ast.Node{}}
	var withNode ast.Node
	for _, f := range entries {
		fw := what + ": " + f.key
		switch f.key {
		case "run":
			nodes.run = f.value
			p.run(st, f.value, fw)
		case "uses":
			if v, ok := p.str(f.value, fw); ok {
				st.Uses = v
				if !slices.Contains(BuiltinSteps, v) {
					p.errNode(f.value, "%s: unknown built-in step %q (built-ins: %s)", what, v, strings.Join(BuiltinSteps, ", "))
				}
			}
		case "with":
			withNode = f.value
			if m, ok := p.rawValue(f.value, fw).(map[string]any); ok {
				st.With = m
			} else if ok := isMapping(f.value); !ok {
				p.errNode(f.value, "%s must be a mapping, not %s", fw, kind(f.value))
			}
		case "needs":
			st.NeedsLine, _ = pos(f.value)
			p.needs(st, f.value, fw)
		case "inputs":
			p.inputs(st, f.value, fw)
		case "outputs":
			p.outputs(st, f.value, fw)
		case "env":
			st.Env = p.stringMap(f.value, fw, envKeyRE, "environment variable", nodes.env)
		case "params":
			st.Params = p.stringMap(f.value, fw, nameRE, "parameter", nodes.params)
		case "retries":
			if v, ok := unwrap(f.value).(*ast.IntegerNode); ok {
				n, err := strconv.Atoi(v.GetToken().Value)
				if err != nil || n < 0 || n > 100 {
					p.errNode(f.value, "%s must be an integer from 0 to 100", fw)
				} else {
					st.Retries = n
				}
			} else {
				p.errNode(f.value, "%s must be an integer, not %s", fw, kind(f.value))
			}
		case "timeout":
			if v, ok := p.str(f.value, fw); ok {
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					p.errNode(f.value, "%s: invalid duration %q: give a positive Go duration such as 90s, 30m or 2h", what, v)
				} else {
					st.Timeout = d
				}
			}
		case "cache":
			if v, ok := unwrap(f.value).(*ast.BoolNode); ok {
				st.Cache = v.Value
			} else {
				p.errNode(f.value, "%s must be true or false, not %s", fw, kind(f.value))
			}
		case "image":
			if v, ok := p.str(f.value, fw); ok {
				st.Image = v
				if strings.TrimSpace(v) == "" {
					p.errNode(f.value, "%s is empty", fw)
				}
			}
		}
	}
	hasRun, hasUses := p.hasKey(entries, "run"), p.hasKey(entries, "uses")
	switch {
	case hasRun && hasUses:
		p.errAt(line, col, "%s has both run and uses; give one", what)
	case !hasRun && !hasUses:
		p.errAt(line, col, "%s has neither run nor uses; give one", what)
	case withNode != nil && !hasUses:
		p.errNode(withNode, "%s: with configures a built-in step and needs uses", what)
	}
	p.checkSubstitutions(s, st, nodes)
	return st
}

// needs reads a step's needs: a step name or a list of them.
func (p *specParser) needs(st *Step, n ast.Node, what string) {
	var nodes []ast.Node
	if seq, ok := unwrap(n).(*ast.SequenceNode); ok {
		nodes = seq.Values
	} else {
		nodes = []ast.Node{n}
	}
	for _, x := range nodes {
		v, ok := p.str(x, what)
		if !ok {
			continue
		}
		switch {
		case !nameRE.MatchString(v):
			p.errNode(x, "%s: invalid step name %q", what, v)
		case slices.Contains(st.Needs, v):
			p.errNode(x, "%s: step %q is listed twice", what, v)
		default:
			st.Needs = append(st.Needs, v)
		}
	}
}

func isMapping(n ast.Node) bool {
	switch unwrap(n).(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return true
	}
	return false
}

// rawValue converts a YAML node to plain Go values (map[string]any, []any,
// string, int64, float64, bool, nil).
func (p *specParser) rawValue(n ast.Node, what string) any {
	switch v := unwrap(n).(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.MappingNode, *ast.MappingValueNode:
		entries, ok := p.mapping(v, what)
		if !ok {
			return nil
		}
		m := make(map[string]any, len(entries))
		for _, e := range entries {
			m[e.key] = p.rawValue(e.value, what+"."+e.key)
		}
		return m
	case *ast.SequenceNode:
		out := make([]any, 0, len(v.Values))
		for i, x := range v.Values {
			out = append(out, p.rawValue(x, fmt.Sprintf("%s[%d]", what, i)))
		}
		return out
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := p.str(v, what)
		return s
	case *ast.IntegerNode:
		if i, err := strconv.ParseInt(v.GetToken().Value, 0, 64); err == nil {
			return i
		}
		return v.GetToken().Value
	case *ast.FloatNode:
		return v.Value
	case *ast.BoolNode:
		return v.Value
	case *ast.AliasNode:
		p.errNode(v, "%s: YAML aliases are not supported", what)
		return nil
	}
	p.errNode(n, "%s: unsupported value", what)
	return nil
}

func (p *specParser) run(st *Step, n ast.Node, what string) {
	switch v := unwrap(n).(type) {
	case *ast.StringNode, *ast.LiteralNode:
		s, _ := p.str(v, what)
		if strings.TrimSpace(s) == "" {
			p.errNode(n, "%s is empty", what)
			return
		}
		st.Run, st.Shell = []string{s}, true
	case *ast.SequenceNode:
		if len(v.Values) == 0 {
			p.errNode(n, "%s is an empty list", what)
			return
		}
		for i, x := range v.Values {
			s, ok := p.scalar(x, fmt.Sprintf("%s[%d]", what, i))
			if ok {
				st.Run = append(st.Run, s)
			}
		}
	default:
		p.errNode(n, "%s must be a string (run by sh -c) or a list (argv), not %s", what, kind(n))
	}
}

func (p *specParser) stringMap(n ast.Node, what string, keyRE *regexp.Regexp, keyWhat string, nodes map[string]ast.Node) map[string]string {
	entries, ok := p.mapping(n, what)
	if !ok {
		return nil
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		if !keyRE.MatchString(e.key) {
			p.errNode(e.kNode, "%s: invalid %s name %q", what, keyWhat, e.key)
			continue
		}
		v, ok := p.scalar(e.value, what+"."+e.key)
		if !ok {
			continue
		}
		out[e.key] = v
		nodes[e.key] = e.value
	}
	return out
}

func (p *specParser) inputs(st *Step, n ast.Node, what string) {
	entries, ok := p.mapping(n, what)
	if !ok {
		return
	}
	for _, e := range entries {
		line, _ := pos(e.value)
		if !nameRE.MatchString(e.key) {
			p.errNode(e.kNode, "%s: invalid input name %q", what, e.key)
			continue
		}
		ref, ok := p.str(e.value, what+"."+e.key)
		if !ok {
			continue
		}
		in := Input{Name: e.key, Ref: ref, Line: line}
		switch {
		case strings.HasPrefix(ref, "data://"):
			r, err := dataset.ParseRef(strings.TrimPrefix(ref, "data://"))
			if err != nil {
				p.errNode(e.value, "%s.%s: invalid dataset reference %q: %v", what, e.key, ref, err)
				continue
			}
			in.Kind, in.Dataset = InputData, r
		case strings.HasPrefix(ref, "steps."):
			m := stepRefR.FindStringSubmatch(ref)
			if m == nil {
				p.errNode(e.value, "%s.%s: invalid step reference %q: write steps.STEP.outputs.OUTPUT", what, e.key, ref)
				continue
			}
			in.Kind, in.Step, in.Output = InputStep, m[1], m[2]
		default:
			clean, err := relPath(ref)
			if err != nil {
				p.errNode(e.value, "%s.%s: invalid project path %q: %v", what, e.key, ref, err)
				continue
			}
			in.Kind, in.Path = InputPath, clean
		}
		st.Inputs = append(st.Inputs, in)
	}
}

// relPath cleans a relative slash-separated path and rejects absolute paths
// and paths leaving their base folder.
func relPath(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", errors.New("the path is empty")
	}
	if path.IsAbs(s) || strings.HasPrefix(s, `\`) || (len(s) >= 2 && s[1] == ':') {
		return "", errors.New("the path must be relative")
	}
	c := path.Clean(s)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errors.New("the path leaves its folder (..)")
	}
	return c, nil
}

func (p *specParser) outputs(st *Step, n ast.Node, what string) {
	entries, ok := p.mapping(n, what)
	if !ok {
		return
	}
	for _, e := range entries {
		line, _ := pos(e.kNode)
		ow := what + "." + e.key
		if !nameRE.MatchString(e.key) {
			p.errNode(e.kNode, "%s: invalid output name %q", what, e.key)
			continue
		}
		out := Output{Name: e.key, Type: "file", Line: line}
		pathNode := e.value
		if isMapping(e.value) {
			fields, ok := p.mapping(e.value, ow)
			if !ok {
				continue
			}
			p.checkKeys(fields, outputKeys, ow)
			pathNode = nil
			for _, f := range fields {
				switch f.key {
				case "path":
					pathNode = f.value
				case "type":
					if v, ok := p.str(f.value, ow+".type"); ok {
						out.Type = v
						if !slices.Contains(OutputTypes, v) {
							p.errNode(f.value, "%s: unknown output type %q (types: %s)", ow, v, strings.Join(OutputTypes, ", "))
						}
					}
				case "flavor":
					if v, ok := p.str(f.value, ow+".flavor"); ok {
						out.Flavor = v
					}
				}
			}
			if pathNode == nil {
				p.errNode(e.kNode, "%s has no path", ow)
				continue
			}
			if out.Flavor != "" && out.Type != "model" {
				p.errNode(e.kNode, "%s: flavor is only for outputs of type model", ow)
			}
		}
		v, ok := p.str(pathNode, ow+" path")
		if !ok {
			continue
		}
		clean, err := relPath(v)
		if err != nil || clean == "." {
			if err == nil {
				err = errors.New("the path names the step's folder itself")
			}
			p.errNode(pathNode, "%s: invalid output path %q: %v; outputs live inside the step's output folder", ow, v, err)
			continue
		}
		out.Path = clean
		st.Outputs = append(st.Outputs, out)
	}
}

// checkSubstitutions checks the ${{ }} expressions of a step: step params may
// use params; run and env may use params, inputs and outputs of the step.
func (p *specParser) checkSubstitutions(s *Spec, st *Step, nodes stepNodes) {
	for _, k := range sortedKeys(st.Params) {
		p.checkExprs(s, st.Params[k], nodes.params[k], []string{"params"}, nil, fmt.Sprintf("step %q: params.%s", st.Name, k))
	}
	for _, k := range sortedKeys(st.Env) {
		p.checkExprs(s, st.Env[k], nodes.env[k], []string{"params", "inputs", "outputs"}, st, fmt.Sprintf("step %q: env.%s", st.Name, k))
	}
	for _, r := range st.Run {
		p.checkExprs(s, r, nodes.run, []string{"params", "inputs", "outputs"}, st, fmt.Sprintf("step %q: run", st.Name))
	}
}

func (p *specParser) checkExprs(spec *Spec, s string, n ast.Node, scopes []string, st *Step, what string) {
	_, err := Substitute(s, func(scope, name string) (string, error) {
		if !slices.Contains(scopes, scope) {
			return "", fmt.Errorf("%s.%s cannot be used here (allowed: %s)", scope, name, strings.Join(scopes, ", "))
		}
		switch scope {
		case "params":
			// In run and env, a step parameter shadows a pipeline parameter.
			if st != nil {
				if _, ok := st.Params[name]; ok {
					return "", nil
				}
			}
			if _, ok := spec.Param(name); !ok {
				return "", fmt.Errorf("undefined parameter %q", name)
			}
		case "inputs":
			if st.Input(name) == nil {
				return "", fmt.Errorf("the step has no input %q", name)
			}
		case "outputs":
			if st.Output(name) == nil {
				return "", fmt.Errorf("the step has no output %q", name)
			}
		}
		return "", nil
	})
	if err != nil {
		p.errNode(n, "%s: %v", what, err)
	}
}

// checkReferences checks that step inputs name existing steps and outputs,
// and that ${{ params.NAME }} names a defined parameter.
func (p *specParser) checkReferences(s *Spec) {
	for _, st := range s.Steps {
		for _, n := range st.Needs {
			switch up := s.Step(n); {
			case up == nil:
				p.errAt(st.NeedsLine, 0, "step %q needs unknown step %q", st.Name, n)
			case up == st:
				p.errAt(st.NeedsLine, 0, "step %q needs itself", st.Name)
			}
		}
		for _, in := range st.Inputs {
			if in.Kind != InputStep {
				continue
			}
			up := s.Step(in.Step)
			switch {
			case up == nil:
				p.errAt(in.Line, 0, "step %q: input %s refers to unknown step %q", st.Name, in.Name, in.Step)
			case up == st:
				p.errAt(in.Line, 0, "step %q: input %s refers to the step itself", st.Name, in.Name)
			case up.Output(in.Output) == nil:
				p.errAt(in.Line, 0, "step %q: input %s refers to unknown output %q of step %q", st.Name, in.Name, in.Output, in.Step)
			}
		}
	}
}

// checkCycles reports each cycle once, at the first step of the cycle in file
// order, with the path of the cycle.
func (p *specParser) checkCycles(s *Spec) {
	if cyc := findCycle(s); cyc != nil {
		st := s.Step(cyc[0])
		p.errAt(st.Line, st.Column, "steps form a cycle: %s", strings.Join(append(cyc, cyc[0]), " → "))
	}
}

// findCycle returns the steps of a cycle, rotated to start at the step that
// comes first in the file, or nil when the steps form a DAG.
func findCycle(s *Spec) []string {
	index := map[string]int{}
	for i, st := range s.Steps {
		index[st.Name] = i
	}
	const (
		white = iota
		grey
		black
	)
	color := make([]int, len(s.Steps))
	var stack []int
	var found []int
	var visit func(i int) bool
	visit = func(i int) bool {
		color[i] = grey
		stack = append(stack, i)
		for _, d := range stepDeps(s, s.Steps[i]) {
			j := index[d]
			switch color[j] {
			case grey:
				k := slices.Index(stack, j)
				found = slices.Clone(stack[k:])
				return true
			case white:
				if visit(j) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[i] = black
		return false
	}
	for i := range s.Steps {
		if color[i] == white && visit(i) {
			break
		}
	}
	if found == nil {
		return nil
	}
	// Rotate so the cycle starts at its step that comes first in the file.
	m := slices.Index(found, slices.Min(found))
	found = append(found[m:], found[:m]...)
	// found follows dependency edges (step → what it needs); report the flow
	// of data instead (producer → consumer).
	slices.Reverse(found[1:])
	names := make([]string, len(found))
	for i, j := range found {
		names[i] = s.Steps[j].Name
	}
	return names
}

// stepDeps lists the steps st takes inputs from or needs, in file order,
// once each.
func stepDeps(s *Spec, st *Step) []string {
	seen := map[string]bool{}
	var deps []string
	for _, in := range st.Inputs {
		if in.Kind == InputStep && !seen[in.Step] && s.Step(in.Step) != nil {
			seen[in.Step] = true
			deps = append(deps, in.Step)
		}
	}
	for _, n := range st.Needs {
		if !seen[n] && n != st.Name && s.Step(n) != nil {
			seen[n] = true
			deps = append(deps, n)
		}
	}
	order := map[string]int{}
	for i, x := range s.Steps {
		order[x.Name] = i
	}
	sort.Slice(deps, func(i, j int) bool { return order[deps[i]] < order[deps[j]] })
	return deps
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Substitute replaces every ${{ SCOPE.NAME }} in s with lookup(SCOPE, NAME).
// Spaces inside the braces are optional; SCOPE is params, inputs or outputs;
// NAME uses letters, digits, '_' and '-'. "$${{" stands for a literal "${{".
// Any other use of "${{" is an error.
func Substitute(s string, lookup func(scope, name string) (string, error)) (string, error) {
	var b strings.Builder
	for {
		i := strings.Index(s, "${{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		if i > 0 && s[i-1] == '$' {
			b.WriteString(s[:i-1])
			b.WriteString("${{")
			s = s[i+3:]
			continue
		}
		b.WriteString(s[:i])
		rest := s[i+3:]
		j := strings.Index(rest, "}}")
		if j < 0 {
			return "", errors.New("unterminated ${{ expression: close it with }}")
		}
		expr := strings.TrimSpace(rest[:j])
		scope, name, ok := strings.Cut(expr, ".")
		if !ok || !slices.Contains([]string{"params", "inputs", "outputs"}, scope) || !nameRE.MatchString(name) {
			return "", fmt.Errorf("invalid expression ${{ %s }}: write ${{ params.NAME }}, ${{ inputs.NAME }} or ${{ outputs.NAME }}", expr)
		}
		v, err := lookup(scope, name)
		if err != nil {
			return "", err
		}
		b.WriteString(v)
		s = rest[j+2:]
	}
}
