package pipeline

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestPlanDiamond(t *testing.T) {
	// d needs b and c; b and c need a. File order puts d before c.
	s := MustParse(t, `name: diamond
steps:
  a:
    run: echo
    outputs: {o: o}
  b:
    run: echo
    inputs: {x: steps.a.outputs.o}
    outputs: {o: o}
  d:
    run: echo
    inputs: {x: steps.c.outputs.o, y: steps.b.outputs.o}
  c:
    run: echo
    inputs: {x: steps.a.outputs.o}
    outputs: {o: o}
`)
	p, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "b", "c", "d"}; !slices.Equal(p.Order, want) {
		t.Errorf("order: got %v want %v", p.Order, want)
	}
	if got, want := fmt.Sprint(p.Levels()), "[[a] [b c] [d]]"; got != want {
		t.Errorf("levels: got %s want %s", got, want)
	}
	if got := p.Deps("d"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("deps of d: got %v want [b c] (file order)", got)
	}
	if got := p.Dependents("a"); !slices.Equal(got, []string{"b", "c"}) {
		t.Errorf("dependents of a: got %v want [b c]", got)
	}
	if got := p.Downstream("a"); !slices.Equal(got, []string{"b", "c", "d"}) {
		t.Errorf("downstream of a: got %v want [b c d]", got)
	}
	if got := p.Downstream("d"); len(got) != 0 {
		t.Errorf("downstream of d: got %v want none", got)
	}
}

// TestPlanNeeds: needs orders steps without an input between them, and a
// step both needed and read from counts once.
func TestPlanNeeds(t *testing.T) {
	s := MustParse(t, `name: needs
steps:
  train:
    run: echo
    needs: validate
    outputs: {m: m}
  validate:
    run: echo
  register:
    run: echo
    needs: [train, validate]
    inputs: {m: steps.train.outputs.m}
`)
	p, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"validate", "train", "register"}; !slices.Equal(p.Order, want) {
		t.Errorf("order: got %v want %v", p.Order, want)
	}
	if got := p.Deps("register"); !slices.Equal(got, []string{"train", "validate"}) {
		t.Errorf("deps of register: got %v want [train validate]", got)
	}
	if got := p.Downstream("validate"); !slices.Equal(got, []string{"train", "register"}) {
		t.Errorf("downstream of validate: got %v want [train register]", got)
	}
}

func TestPlanWide(t *testing.T) {
	var b strings.Builder
	b.WriteString("name: wide\nsteps:\n")
	var want []string
	for i := 19; i >= 0; i-- {
		fmt.Fprintf(&b, "  s%02d:\n    run: echo\n    outputs: {o: o}\n", i)
		want = append(want, fmt.Sprintf("s%02d", i))
	}
	b.WriteString("  join:\n    run: echo\n    inputs:\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "      i%d: steps.s%02d.outputs.o\n", i, i)
	}
	p, err := MustParse(t, b.String()).Plan()
	if err != nil {
		t.Fatal(err)
	}
	levels := p.Levels()
	if len(levels) != 2 || !slices.Equal(levels[0], want) || !slices.Equal(levels[1], []string{"join"}) {
		t.Errorf("levels: got %v want [%v [join]]", levels, want)
	}
	if got := p.Order; !slices.Equal(got[:20], want) || got[20] != "join" {
		t.Errorf("order: got %v", got)
	}
}

func TestPlanChainStableOrder(t *testing.T) {
	// z is independent and comes last in the file; the chain c → b → a is
	// written backwards. Among ready steps the one first in the file goes first.
	s := MustParse(t, `name: chain
steps:
  a:
    run: echo
    inputs: {x: steps.b.outputs.o}
  b:
    run: echo
    inputs: {x: steps.c.outputs.o}
    outputs: {o: o}
  c:
    run: echo
    outputs: {o: o}
  z:
    run: echo
`)
	p, err := s.Plan()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"c", "b", "a", "z"}; !slices.Equal(p.Order, want) {
		t.Errorf("order: got %v want %v", p.Order, want)
	}
	if got, want := fmt.Sprint(p.Levels()), "[[c z] [b] [a]]"; got != want {
		t.Errorf("levels: got %s want %s", got, want)
	}
}

func TestPlanRejectsHandMadeCycle(t *testing.T) {
	s := MustParse(t, "name: x\nsteps:\n  a:\n    run: echo\n    outputs: {o: o}\n  b:\n    run: echo\n    inputs: {x: steps.a.outputs.o}\n    outputs: {o: o}\n")
	s.Steps[0].Inputs = append(s.Steps[0].Inputs, Input{Name: "y", Kind: InputStep, Step: "b", Output: "o"})
	if _, err := s.Plan(); err == nil || !strings.Contains(err.Error(), "a → b → a") {
		t.Errorf("got %v, want a cycle error a → b → a", err)
	}
}
