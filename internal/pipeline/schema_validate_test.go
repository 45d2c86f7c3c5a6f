package pipeline

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// TestSchemaAcceptsValidSpecs validates the example specs and the valid
// test specs against docs/pipeline.schema.json with a JSON Schema
// (draft 2020-12) validator, and checks that it rejects specs the parser
// rejects for their shape.
func TestSchemaAcceptsValidSpecs(t *testing.T) {
	c := jsonschema.NewCompiler()
	data, err := os.ReadFile("../../docs/pipeline.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddResource("pipeline.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("pipeline.schema.json")
	if err != nil {
		t.Fatalf("compile the schema: %v", err)
	}
	instance := func(t *testing.T, yamlText []byte) any {
		t.Helper()
		var v any
		if err := yaml.Unmarshal(yamlText, &v); err != nil {
			t.Fatal(err)
		}
		j, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
		if err != nil {
			t.Fatal(err)
		}
		return inst
	}
	valid, _ := filepath.Glob("testdata/spec/valid*/*.yaml")
	valid = append(valid, "../../examples/flights/mloop.yaml")
	checked := 0
	for _, file := range valid {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSpec(file, text); err != nil {
			continue // not valid for the parser either (a test of its own)
		}
		checked++
		if err := sch.Validate(instance(t, text)); err != nil {
			t.Errorf("%s: the parser accepts it, the schema does not: %v", file, err)
		}
	}
	if checked < 3 {
		t.Fatalf("validated %d specs, want the test specs and the example", checked)
	}
	for name, text := range map[string]string{
		"unknown gate key":         "name: p\nsteps:\n  g:\n    uses: gate\n    with: {threshold: []}\n",
		"change without direction": "name: p\nsteps:\n  g:\n    uses: gate\n    with: {thresholds: [{metric: auc, change: {absolute: 0.1}}]}\n",
		"register without model":   "name: p\nsteps:\n  r:\n    uses: register\n    with: {description: x}\n",
		"bad fail_on":              "name: p\nsteps:\n  v:\n    uses: validate\n    with: {fail_on: never}\n",
		"run and uses":             "name: p\nsteps:\n  a:\n    run: echo\n    uses: gate\n",
	} {
		if err := sch.Validate(instance(t, []byte(text))); err == nil {
			t.Errorf("%s: the schema accepts it", name)
		}
	}
}
