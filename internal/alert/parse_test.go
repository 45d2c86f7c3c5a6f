package alert_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
)

const goodRules = `rules:
  - name: flights-drift
    deployment: flights
    condition:
      kind: dataset_drift
      threshold: 0.5
    windows: 2
    for: 2h
    min_samples: 500
    actions:
      - webhook:
          url: https://hooks.example.com/mloop
          secret: s3cret
          timeout: 5s
          retries: 4
          backoff: 500ms
          on_resolve: true
      - trigger:
          event_type: drift
  - name: auc
    deployment: "*"
    condition: {kind: quality_below, metric: roc_auc, threshold: 0.65}
`

func TestParseRules(t *testing.T) {
	rules, err := alert.ParseRules([]byte(goodRules))
	if err != nil {
		t.Fatal(err)
	}
	if len(rules) != 2 {
		t.Fatalf("got %d rules, want 2", len(rules))
	}
	r := rules[0]
	wh := r.Actions[0].Webhook
	if r.Name != "flights-drift" || r.Windows != 2 || r.For.D() != 2*time.Hour || r.MinSamples != 500 || *r.Condition.Threshold != 0.5 ||
		wh.Secret != "s3cret" || wh.Timeout.D() != 5*time.Second || *wh.Retries != 4 || wh.Backoff.D() != 500*time.Millisecond || !wh.OnResolve ||
		r.Actions[1].Trigger.EventType != "drift" {
		t.Fatalf("rule 0: got %+v", r)
	}
	a := rules[1]
	if a.Deployment != "*" || a.Windows != 1 || a.Condition.MinLabels != alert.DefaultMinLabels {
		t.Fatalf("rule 1 defaults: got %+v", a)
	}
	// The JSON form reads back to the same rule.
	b, err := jsonMarshal(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := alert.ParseRule(b)
	if err != nil {
		t.Fatalf("parse JSON %s: %v", b, err)
	}
	if back.For != r.For || back.Actions[0].Webhook.Backoff != wh.Backoff || *back.Condition.Threshold != 0.5 {
		t.Fatalf("JSON round trip: got %+v", back)
	}
}

func TestParseRulesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown key", "rules:\n  - name: a\n    deployment: d\n    colour: red\n", "line 4:5"},
		{"unknown condition key", "rules:\n  - name: a\n    deployment: d\n    condition: {kind: dataset_drift, bound: 1}\n", "line 4:"},
		{"bad kind", "rules:\n  - name: a\n    deployment: d\n    condition:\n      kind: vibes\n", "line 5:13: rule \"a\": condition.kind: unknown kind"},
		{"bad duration", "rules:\n  - name: a\n    deployment: d\n    for: soon\n", "line 4:10: for: invalid duration"},
		{"bad type", "rules:\n  - name: a\n    deployment: d\n    windows: many\n", "line 4:"},
		{"missing threshold", "rules:\n  - name: a\n    deployment: d\n    condition:\n      kind: error_rate_above\n", "line 5:"},
		{"bad url", "rules:\n  - name: a\n    deployment: d\n    condition: {kind: dataset_drift}\n    actions:\n      - webhook:\n          url: ftp://x\n", "line 7:16"},
		{"two kinds", "rules:\n  - name: a\n    deployment: d\n    condition: {kind: dataset_drift}\n    actions:\n      - webhook: {url: http://x}\n        trigger: {}\n", "exactly one"},
		{"duplicate", "rules:\n  - name: a\n    deployment: d\n    condition: {kind: dataset_drift}\n  - name: a\n    deployment: d\n    condition: {kind: dataset_drift}\n", "line 5:11: rule \"a\" is listed twice"},
		{"bad name", "rules:\n  - name: 9lives\n    deployment: d\n    condition: {kind: dataset_drift}\n", "line 2:11"},
		{"syntax", "rules: [\n", "line "},
		{"not a mapping", "- a\n", "line 1:1"},
		{"empty", "", "one YAML document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := alert.ParseRules([]byte(tc.doc))
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), tc.want) {
				t.Fatalf("got %v, want EINVALID containing %q", err, tc.want)
			}
		})
	}
}

func TestParseRuleJSONErrors(t *testing.T) {
	for _, doc := range []string{
		`{"name":"a","deployment":"d","condition":{"kind":"dataset_drift"},"x":1}`,
		`{"name":"a","deployment":"d","condition":{"kind":"dataset_drift"},"for":"soon"}`,
		`{"name":"a","deployment":"d","condition":{"kind":"dataset_drift"}} {}`,
		`{"name":"a","deployment":"d","condition":{"kind":"latency_p99_above","threshold":-1}}`,
		`{"name":"a","deployment":"d","condition":{"kind":"quality_below","metric":"vibes","threshold":1}}`,
		`{"name":"a","deployment":"","condition":{"kind":"dataset_drift"}}`,
	} {
		if _, err := alert.ParseRule([]byte(doc)); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("%s: got %v, want EINVALID", doc, err)
		}
	}
}

// FuzzParseRules checks that no document crashes the parsers and that a
// rule they accept is valid and survives a JSON round trip.
func FuzzParseRules(f *testing.F) {
	f.Add([]byte(goodRules))
	f.Add([]byte(`{"name":"a","deployment":"d","condition":{"kind":"feature_drift","feature":"x"},"windows":3}`))
	f.Add([]byte("rules:\n  - name: a\n    deployment: d\n    for: 1h\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := alert.ParseRules(data)
		if err == nil {
			for _, r := range rules {
				roundTrip(t, r)
			}
		} else if c := mloop.ErrorCode(err); c != mloop.EINVALID && c != mloop.ETOOLARGE {
			t.Fatalf("ParseRules: error kind %q: %v", c, err)
		}
		r, err := alert.ParseRule(data)
		if err == nil {
			roundTrip(t, r)
		} else if c := mloop.ErrorCode(err); c != mloop.EINVALID && c != mloop.ETOOLARGE {
			t.Fatalf("ParseRule: error kind %q: %v", c, err)
		}
	})
}

func roundTrip(t *testing.T, r *alert.Rule) {
	t.Helper()
	if err := r.Check(); err != nil {
		t.Fatalf("accepted rule fails Check: %v", err)
	}
	b, err := jsonMarshal(r)
	if err != nil {
		t.Fatalf("marshal accepted rule: %v", err)
	}
	if _, err := alert.ParseRule(b); err != nil {
		t.Fatalf("accepted rule does not parse back from %s: %v", b, err)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
