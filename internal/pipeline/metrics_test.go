package pipeline

import (
	"testing"

	"github.com/mloop/mloop"
)

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics([]byte(`{"auc": 0.81, "n": 10, "note": "x", "ok": true,
		"slices": {"origin=SFO": {"auc": 0.78, "name": "s"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Values) != 2 || m.Values["auc"] != 0.81 || m.Values["n"] != 10 {
		t.Fatalf("values = %v", m.Values)
	}
	if got := m.Slices["origin=SFO"]; len(got) != 1 || got["auc"] != 0.78 {
		t.Fatalf("slices = %v", m.Slices)
	}
	flat := m.Flat()
	if flat["slice/origin_SFO/auc"] != 0.78 || flat["auc"] != 0.81 {
		t.Fatalf("flat = %v", flat)
	}
	for _, bad := range []string{`[1]`, `{"slices": [1]}`, `not json`, `{"slices": {"a": 1}}`} {
		if _, err := ParseMetrics([]byte(bad)); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("ParseMetrics(%s) = %v, want EINVALID", bad, err)
		}
	}
}

func FuzzParseMetrics(f *testing.F) {
	f.Add([]byte(`{"auc": 0.8, "slices": {"a": {"auc": 1e308}}}`))
	f.Add([]byte(`{"x": -0, "y": "1"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseMetrics(data)
		if err != nil {
			return
		}
		for k := range m.Flat() {
			if MetricKey(k) != k {
				t.Fatalf("key %q not valid", k)
			}
		}
	})
}
