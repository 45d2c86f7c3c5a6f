package pipeline

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"testing"
)

// TestSchemaMatchesBuiltinConfigs checks that the `with:` schemas of the
// built-in steps in docs/pipeline.schema.json list exactly the keys their
// decoders accept.
func TestSchemaMatchesBuiltinConfigs(t *testing.T) {
	data, err := os.ReadFile("../../docs/pipeline.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var root struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Properties map[string]any `json:"properties"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(data, &root); err != nil {
		t.Fatal(err)
	}
	keys := func(typ reflect.Type) []string {
		var out []string
		for i := range typ.NumField() {
			out = append(out, typ.Field(i).Tag.Get("with"))
		}
		sort.Strings(out)
		return out
	}
	schemaKeys := func(def string) []string {
		var out []string
		for k := range root.Defs[def].Properties {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	for def, typ := range map[string]reflect.Type{
		"gate_with":      reflect.TypeFor[gateConfig](),
		"gate_threshold": reflect.TypeFor[gateThreshold](),
		"gate_change":    reflect.TypeFor[changeThreshold](),
		"register_with":  reflect.TypeFor[registerConfig](),
		"validate_with":  reflect.TypeFor[validateConfig](),
	} {
		if got, want := schemaKeys(def), keys(typ); !slices.Equal(got, want) {
			t.Errorf("schema %s: keys %v, the decoder's %v", def, got, want)
		}
	}
	var aliases []string
	for k := range root.Defs["register_with"].Properties["aliases"].Properties {
		aliases = append(aliases, k)
	}
	sort.Strings(aliases)
	if want := keys(reflect.TypeFor[registerAliases]()); !slices.Equal(aliases, want) {
		t.Errorf("schema register_with.aliases: keys %v, the decoder's %v", aliases, want)
	}
}
