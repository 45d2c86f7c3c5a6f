package pipeline

import (
	"fmt"
	"slices"
	"strings"
)

// Plan is the DAG of a spec's steps: which step needs which, an order to run
// them in, and the groups of steps that can run in parallel.
type Plan struct {
	// Spec is the planned spec.
	Spec *Spec
	// Order lists every step once, each after all the steps it needs; among
	// steps that are ready at the same time, file order decides.
	Order []string

	deps       map[string][]string
	dependents map[string][]string
	level      map[string]int
}

// Plan builds the DAG from the steps' references. A spec from ParseSpec has
// no cycles, so Plan fails only on a spec built or changed by hand.
func (s *Spec) Plan() (*Plan, error) {
	if cyc := findCycle(s); cyc != nil {
		return nil, fmt.Errorf("plan pipeline %q: steps form a cycle: %s", s.Name, strings.Join(append(cyc, cyc[0]), " → "))
	}
	p := &Plan{
		Spec:       s,
		deps:       map[string][]string{},
		dependents: map[string][]string{},
		level:      map[string]int{},
	}
	for _, st := range s.Steps {
		if _, dup := p.deps[st.Name]; dup {
			return nil, fmt.Errorf("plan pipeline %q: two steps are named %q", s.Name, st.Name)
		}
		p.deps[st.Name] = stepDeps(s, st)
	}
	for _, st := range s.Steps { // file order, so dependents come out in file order
		for _, d := range p.deps[st.Name] {
			p.dependents[d] = append(p.dependents[d], st.Name)
		}
	}
	// Kahn's algorithm, always taking the ready step that comes first in the file.
	waiting := map[string]int{}
	for name, d := range p.deps {
		waiting[name] = len(d)
	}
	done := make([]bool, len(s.Steps))
	for len(p.Order) < len(s.Steps) {
		next := -1
		for i, st := range s.Steps {
			if !done[i] && waiting[st.Name] == 0 {
				next = i
				break
			}
		}
		if next < 0 {
			return nil, fmt.Errorf("plan pipeline %q: steps form a cycle", s.Name)
		}
		done[next] = true
		name := s.Steps[next].Name
		p.Order = append(p.Order, name)
		lvl := 0
		for _, d := range p.deps[name] {
			lvl = max(lvl, p.level[d]+1)
		}
		p.level[name] = lvl
		for _, c := range p.dependents[name] {
			waiting[c]--
		}
	}
	return p, nil
}

// Deps returns the steps that step takes inputs from or needs, in file
// order.
func (p *Plan) Deps(step string) []string { return slices.Clone(p.deps[step]) }

// Dependents returns the steps that take inputs from step or need it, in
// file order.
func (p *Plan) Dependents(step string) []string { return slices.Clone(p.dependents[step]) }

// Level returns the step's depth in the DAG: 0 for steps without
// dependencies, else one more than the deepest step it needs.
func (p *Plan) Level(step string) int { return p.level[step] }

// Levels groups the steps by Level, in file order within each group. The
// steps of one group do not depend on each other and can run in parallel
// once the groups before it are done.
func (p *Plan) Levels() [][]string {
	var out [][]string
	for _, st := range p.Spec.Steps {
		l := p.level[st.Name]
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], st.Name)
	}
	return out
}

// Downstream returns the steps that depend on step directly or indirectly,
// in plan order: the steps to skip when step fails.
func (p *Plan) Downstream(step string) []string {
	reach := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		for _, c := range p.dependents[n] {
			if !reach[c] {
				reach[c] = true
				walk(c)
			}
		}
	}
	walk(step)
	var out []string
	for _, n := range p.Order {
		if reach[n] {
			out = append(out, n)
		}
	}
	return out
}
