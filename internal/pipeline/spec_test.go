package pipeline

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// MustParse parses a spec or fails the test.
func MustParse(tb testing.TB, src string) *Spec {
	tb.Helper()
	s, err := ParseSpec("mloop.yaml", []byte(src))
	if err != nil {
		tb.Fatalf("ParseSpec: %v", err)
	}
	return s
}

func TestLoadSpecFlights(t *testing.T) {
	s, err := LoadSpec("testdata/spec/valid_flights/mloop.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range s.Steps {
		names = append(names, st.Name)
	}
	if want := []string{"validate", "train", "evaluate", "gate", "register"}; !slices.Equal(names, want) {
		t.Fatalf("steps: got %v want %v", names, want)
	}
	if got, _ := s.Param("lr"); got != "0.1" {
		t.Errorf("param lr: got %q want 0.1", got)
	}
	tr := s.Step("train")
	if !tr.Shell || len(tr.Run) != 1 {
		t.Errorf("train run: got %q shell=%v, want one shell string", tr.Run, tr.Shell)
	}
	if tr.Timeout != 30*time.Minute || tr.Retries != 1 || !tr.Cache || tr.Image != "python:3.11" {
		t.Errorf("train: got timeout %v retries %d cache %v image %q", tr.Timeout, tr.Retries, tr.Cache, tr.Image)
	}
	if o := tr.Output("model"); o == nil || o.Type != "model" || o.Flavor != "xgboost" || o.Path != "model" {
		t.Errorf("train model output: got %+v", o)
	}
	in := tr.Input("data")
	if in.Kind != InputData || in.Dataset.Name != "flights" || in.Dataset.Version != 3 {
		t.Errorf("train data input: got %+v", in)
	}
	if in := tr.Input("code"); in.Kind != InputPath || in.Path != "src" {
		t.Errorf("train code input: got %+v", in)
	}
	if in := tr.Input("report"); in.Kind != InputStep || in.Step != "validate" || in.Output != "report" {
		t.Errorf("train report input: got %+v", in)
	}
	if ev := s.Step("evaluate"); ev.Cache || len(ev.Run) != 3 || ev.Shell {
		t.Errorf("evaluate: got cache %v run %q", ev.Cache, ev.Run)
	}
	if o := s.Step("gate").Output("verdict"); o == nil || o.Type != "file" {
		t.Errorf("gate short-form output: got %+v", o)
	}
	th, ok := s.Step("gate").With["thresholds"].([]any)
	if !ok || len(th) != 2 {
		t.Errorf("gate with.thresholds: got %#v", s.Step("gate").With["thresholds"])
	}
	if s.Step("register").With["model"] != "flights-delay" {
		t.Errorf("register with: got %#v", s.Step("register").With)
	}
}

func TestValidFixturesParse(t *testing.T) {
	files, _ := filepath.Glob("testdata/spec/valid*/*.yaml")
	if len(files) < 2 {
		t.Fatalf("got %d fixtures, want at least 2", len(files))
	}
	for _, f := range files {
		if _, err := LoadSpec(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// specErrors returns the *SpecError values joined in err.
func specErrors(t *testing.T, err error) []*SpecError {
	t.Helper()
	var out []*SpecError
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("got error %v (%T), want joined spec errors", err, err)
	}
	for _, e := range joined.Unwrap() {
		var se *SpecError
		if !errors.As(e, &se) {
			t.Fatalf("got %T %v, want *SpecError", e, e)
		}
		out = append(out, se)
	}
	return out
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		line int    // line of the (first) error
		msg  string // substring of its message
	}{
		{"invalid yaml", "name: x\nsteps:\n  a:\n    run: [echo\n", 4, "invalid YAML"},
		{"empty", "", 1, "empty"},
		{"unknown top key", "name: x\nstepz: {}\nsteps:\n  a: {run: echo}\n", 2, `unknown key "stepz"`},
		{"unknown step key", "name: x\nsteps:\n  a:\n    run: echo\n    retry: 3\n", 5, `unknown key "retry"`},
		{"unknown output key", "name: x\nsteps:\n  a:\n    run: echo\n    outputs:\n      m:\n        path: m\n        kind: model\n", 8, `unknown key "kind"`},
		{"wrong type name", "name: [x]\nsteps:\n  a: {run: echo}\n", 1, "name must be a string"},
		{"wrong type retries", "name: x\nsteps:\n  a:\n    run: echo\n    retries: many\n", 5, "must be an integer"},
		{"negative retries", "name: x\nsteps:\n  a:\n    run: echo\n    retries: -1\n", 5, "from 0 to 100"},
		{"wrong type cache", "name: x\nsteps:\n  a:\n    run: echo\n    cache: yes please\n", 5, "true or false"},
		{"neither run nor uses", "name: x\nsteps:\n  a:\n    image: busybox\n", 3, "neither run nor uses"},
		{"both run and uses", "name: x\nsteps:\n  a:\n    run: echo\n    uses: gate\n", 3, "both run and uses"},
		{"unknown builtin", "name: x\nsteps:\n  a:\n    uses: deploy\n", 4, "unknown built-in"},
		{"unknown step ref", "name: x\nsteps:\n  a:\n    run: echo\n    inputs:\n      m: steps.b.outputs.m\n", 6, `unknown step "b"`},
		{"unknown output ref", "name: x\nsteps:\n  a:\n    run: echo\n    outputs: {m: m.txt}\n  b:\n    run: echo\n    inputs:\n      m: steps.a.outputs.n\n", 9, `unknown output "n"`},
		{"bad step ref", "name: x\nsteps:\n  a:\n    run: echo\n    inputs:\n      m: steps.a.m\n", 6, "steps.STEP.outputs.OUTPUT"},
		{"bad data ref", "name: x\nsteps:\n  a:\n    run: echo\n    inputs:\n      d: data://flights@sha256:zz\n", 6, "invalid dataset reference"},
		{"undefined param in run", "name: x\nsteps:\n  a:\n    run: echo ${{ params.lr }}\n", 4, `undefined parameter "lr"`},
		{"undefined param in step params", "name: x\nparams: {lr: 1}\nsteps:\n  a:\n    run: echo\n    params:\n      rate: ${{ params.rate }}\n", 7, `undefined parameter "rate"`},
		{"unknown input in env", "name: x\nsteps:\n  a:\n    run: echo\n    env:\n      X: ${{ inputs.nope }}\n", 6, `no input "nope"`},
		{"bad expression", "name: x\nsteps:\n  a:\n    run: echo ${{ lr }}\n", 4, "invalid expression"},
		{"invalid step name", "name: x\nsteps:\n  a.b:\n    run: echo\n", 3, "invalid step name"},
		{"invalid output name", "name: x\nsteps:\n  a:\n    run: echo\n    outputs:\n      m/x: m\n", 6, "invalid output name"},
		{"invalid duration", "name: x\nsteps:\n  a:\n    run: echo\n    timeout: 10 minutes\n", 5, "invalid duration"},
		{"absolute output path", "name: x\nsteps:\n  a:\n    run: echo\n    outputs:\n      m: /etc/passwd\n", 6, "must be relative"},
		{"escaping output path", "name: x\nsteps:\n  a:\n    run: echo\n    outputs:\n      m: {path: ../../m}\n", 6, "leaves its folder"},
		{"escaping code input", "name: x\nsteps:\n  a:\n    run: echo\n    inputs:\n      c: ../secret\n", 6, "leaves its folder"},
		{"duplicate key", "name: x\nsteps:\n  a:\n    run: echo\n    run: ls\n", 5, "already defined"},
		{"no steps", "name: x\n", 1, "no steps"},
		{"with without uses", "name: x\nsteps:\n  a:\n    run: echo\n    with: {x: 1}\n", 5, "needs uses"},
		{"needs unknown step", "name: x\nsteps:\n  a:\n    run: echo\n    needs: [b]\n", 5, `needs unknown step "b"`},
		{"needs itself", "name: x\nsteps:\n  a:\n    run: echo\n    needs: a\n", 5, "needs itself"},
		{"needs twice", "name: x\nsteps:\n  a:\n    run: echo\n  b:\n    run: echo\n    needs: [a, a]\n", 7, "listed twice"},
		{"needs cycle", "name: x\nsteps:\n  a:\n    run: echo\n    needs: [b]\n  b:\n    run: echo\n    needs: [a]\n", 3, "cycle"},
		{"unknown param override type", "name: x\nparams:\n  lr: [1]\nsteps:\n  a: {run: echo}\n", 3, "must be a string, number or boolean"},
		{"cycle", "name: x\nsteps:\n  pre:\n    run: echo\n  a:\n    run: echo\n    inputs: {x: steps.b.outputs.o}\n    outputs: {o: o}\n  b:\n    run: echo\n    inputs: {x: steps.a.outputs.o}\n    outputs: {o: o}\n", 5, "cycle: a → b → a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec("mloop.yaml", []byte(tt.src))
			if err == nil {
				t.Fatalf("got no error, want %q at line %d", tt.msg, tt.line)
			}
			errs := specErrors(t, err)
			if errs[0].Line != tt.line || !strings.Contains(errs[0].Msg, tt.msg) {
				t.Errorf("got %v, want line %d with %q", err, tt.line, tt.msg)
			}
			if !strings.HasPrefix(errs[0].Error(), "mloop.yaml:") {
				t.Errorf("got %q, want the file name first", errs[0].Error())
			}
		})
	}
}

func TestParseSpecAllErrorsSorted(t *testing.T) {
	src := "name: x\nsteps:\n  b:\n    run: echo ${{ params.nope }}\n    timeout: soon\n  a:\n    bogus: 1\n    run: echo\n"
	_, err := ParseSpec("f.yaml", []byte(src))
	errs := specErrors(t, err)
	var lines []int
	for _, e := range errs {
		lines = append(lines, e.Line)
	}
	if want := []int{4, 5, 7}; !slices.Equal(lines, want) {
		t.Errorf("got lines %v want %v (%v)", lines, want, err)
	}
	if errs[1].Column != 14 {
		t.Errorf("timeout error column: got %d want 14", errs[1].Column)
	}
}

func TestParseSpecCycleOfThree(t *testing.T) {
	src := `name: x
steps:
  c:
    run: echo
    inputs: {x: steps.b.outputs.o}
    outputs: {o: o}
  a:
    run: echo
    inputs: {x: steps.c.outputs.o}
    outputs: {o: o}
  b:
    run: echo
    inputs: {x: steps.a.outputs.o}
    outputs: {o: o}
`
	_, err := ParseSpec("f.yaml", []byte(src))
	errs := specErrors(t, err)
	if len(errs) != 1 || errs[0].Line != 3 || !strings.Contains(errs[0].Msg, "c → a → b → c") {
		t.Errorf("got %v, want one cycle error at line 3 with c → a → b → c", err)
	}
}

func TestWithParams(t *testing.T) {
	s := MustParse(t, "name: x\nparams: {lr: 0.1, depth: 3}\nsteps:\n  a: {run: echo}\n")
	s2, err := s.WithParams(map[string]string{"lr": "0.2"})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := s2.Param("lr"); got != "0.2" {
		t.Errorf("override: got %q want 0.2", got)
	}
	if got, _ := s.Param("lr"); got != "0.1" {
		t.Errorf("original changed: got %q want 0.1", got)
	}
	_, err = s.WithParams(map[string]string{"rate": "1"})
	if err == nil || !strings.Contains(err.Error(), `parameter rate (defined: lr, depth)`) {
		t.Errorf("got %v, want an error naming rate and listing lr, depth", err)
	}
}

func TestSubstitute(t *testing.T) {
	vals := map[string]string{"params.lr": "0.1", "inputs.data": "/in/d", "outputs.model": "/out/m"}
	lookup := func(scope, name string) (string, error) {
		v, ok := vals[scope+"."+name]
		if !ok {
			return "", errors.New("missing " + scope + "." + name)
		}
		return v, nil
	}
	tests := []struct{ in, want, err string }{
		{"train --lr ${{ params.lr }} ${{inputs.data}}", "train --lr 0.1 /in/d", ""},
		{"${{ outputs.model }}/x", "/out/m/x", ""},
		{"literal $${{ params.lr }}", "literal ${{ params.lr }}", ""},
		{"no subst $HOME", "no subst $HOME", ""},
		{"${{ params.lr ", "", "unterminated"},
		{"${{ env.HOME }}", "", "invalid expression"},
		{"${{ params.nope }}", "", "missing params.nope"},
	}
	for _, tt := range tests {
		got, err := Substitute(tt.in, lookup)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("Substitute(%q): got %q, %v want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Substitute(%q): got %q, %v want %q", tt.in, got, err, tt.want)
		}
	}
}

// TestSchemaMatchesParser checks that docs/pipeline.schema.json is valid JSON
// and accepts exactly the keys the parser accepts.
func TestSchemaMatchesParser(t *testing.T) {
	data, err := os.ReadFile("../../docs/pipeline.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	type object struct {
		Schema               string            `json:"$schema"`
		Properties           map[string]any    `json:"properties"`
		AdditionalProperties *bool             `json:"additionalProperties"`
		Defs                 map[string]object `json:"$defs"`
	}
	var root object
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatalf("schema is not valid JSON: %v", err)
	}
	if root.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema: got %q want draft 2020-12", root.Schema)
	}
	check := func(what string, o object, want []string) {
		var got []string
		for k := range o.Properties {
			got = append(got, k)
		}
		sort.Strings(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("%s keys: got %v want %v", what, got, want)
		}
		if o.AdditionalProperties == nil || *o.AdditionalProperties {
			t.Errorf("%s: got additionalProperties %v, want false", what, o.AdditionalProperties)
		}
	}
	check("spec", root, specKeys)
	check("step", root.Defs["step"], stepKeys)
	check("output", root.Defs["output"], outputKeys)
}

func FuzzParseSpec(f *testing.F) {
	files, _ := filepath.Glob("testdata/spec/valid*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\nsteps:\n  a:\n    run: echo ${{ params.p }}\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec("f.yaml", data)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) || se.Line < 1 {
				t.Fatalf("got error %v without a position", err)
			}
			return
		}
		p, err := s.Plan()
		if err != nil {
			t.Fatalf("valid spec does not plan: %v", err)
		}
		if len(p.Order) != len(s.Steps) {
			t.Fatalf("order: got %d steps want %d", len(p.Order), len(s.Steps))
		}
	})
}
