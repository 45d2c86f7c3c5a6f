package deploy_test

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// FuzzParseRef checks that a reference that parses prints back to a
// string that parses to the same reference, and that a refused one is
// EINVALID.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"flights@3", "flights@champion", "a@b@c", "@3", "flights@", "flights@0", "flights@-1", "x@99999999999999999999", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := deploy.ParseRef(s)
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("ParseRef(%q): got %v, want an EINVALID error", s, err)
			}
			return
		}
		again, err := deploy.ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %+v prints %q, which parses to %+v, %v", s, r, r.String(), again, err)
		}
	})
}

// FuzzSpecJSON decodes untrusted spec bodies: decoding and validation
// never panic, and a valid spec survives an encoding round trip still
// valid and unchanged.
func FuzzSpecJSON(f *testing.F) {
	for _, s := range []string{
		`{"model":"flights@3"}`,
		`{"model":"flights@champion","canary":"flights@4","canary_percent":10,"shadow":"other@1"}`,
		`{"model":"f@1","batching":{"max_batch_size":64,"max_delay":"2ms"},"payload_sample":0.5,"max_batch_rows":100}`,
		`{"model":"f@1","rollback":{"window":60,"min_requests":5,"max_error_rate_increase":0.1,"max_latency_ratio":3,"min_latency_increase":"5ms"}}`,
		`{"model":"f@1","canary":"","canary_percent":5}`,
		`{"model":"f@1","payload_sample":1e400}`,
		`{"model":3}`,
		`{"model":"f@champion","rollout":{"canary_percent":50,"window":"3s","min_requests":10,"max_wait":"30s","metric":"accuracy","min_labels":5,"max_degradation":0.05}}`,
		`{"model":"f@champion","rollout":{"disabled":true}}`,
		`{"model":"f@champion","rollout":{"canary_percent":100,"window":"-1s","metric":"auc","max_wait":"1s"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var spec deploy.Spec
		if err := json.Unmarshal(b, &spec); err != nil {
			return
		}
		if err := spec.Validate(); err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("Validate: got %v, want an EINVALID error", err)
			}
			return
		}
		out, err := json.Marshal(spec)
		if err != nil {
			t.Fatalf("encode a valid spec: %v", err)
		}
		var again deploy.Spec
		if err := json.Unmarshal(out, &again); err != nil {
			t.Fatalf("decode the encoded spec %s: %v", out, err)
		}
		if err := again.Validate(); err != nil {
			t.Fatalf("the encoded spec %s no longer validates: %v", out, err)
		}
		out2, _ := json.Marshal(again)
		if !reflect.DeepEqual(out, out2) {
			t.Fatalf("round trip changed the spec:\n%s\n%s", out, out2)
		}
	})
}

// FuzzValidateName checks that an accepted name is safe in URL paths and
// metric labels.
func FuzzValidateName(f *testing.F) {
	for _, s := range []string{"flights-prod", "a", "-a", "A", "a_b", "a/b", "a..b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if deploy.ValidateName(s) != nil {
			return
		}
		if len(s) == 0 || len(s) > deploy.MaxNameLength {
			t.Fatalf("ValidateName accepted %q of length %d", s, len(s))
		}
		for _, c := range []byte(s) {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("ValidateName accepted %q holding %q", s, c)
			}
		}
	})
}
