package story

import (
	"encoding/json"
	"strings"
	"testing"
)

// FuzzParse feeds what any client may write — trigger event payloads and
// subjects, deployment event details, model version metrics tags — to the
// story's readers: they never fail on it and keep their promises.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"event":"firing","alert":{"id":"al-00000000000000aa","deployment":"weather"}}`), "alert/r/weather",
		[]byte(`{"before":[{"role":"primary","revision":1,"ref":"weather@1","model":"weather","version":1}],"after":[{"role":"canary","revision":2,"ref":"weather@champion","model":"weather","version":2}],"details":{"decision":"promote"}}`),
		`{"values":{"auc":0.9,"x":"y"},"champion":{"auc":0.8}}`)
	f.Add([]byte(`{"alert":null}`), "alert//", []byte(`{"after":[{"ref":"bad"}]}`), `{"values":[1]}`)
	f.Add([]byte(`[]`), "alert/a/b/c", []byte(`null`), `nope`)
	f.Fuzz(func(t *testing.T, payload []byte, subject string, details []byte, metrics string) {
		if id, _ := AlertOfPayload(payload); id != "" && !strings.HasPrefix(id, "al-") {
			t.Errorf("AlertOfPayload(%q) = %q, not an alert id", payload, id)
		}
		if AlertSubject(subject, "weather") && !strings.HasPrefix(subject, "alert/") {
			t.Errorf("AlertSubject(%q) accepted a subject not starting with alert/", subject)
		}
		det := parseDetails(details)
		for _, sl := range introduced(det) {
			if sl.Model == "" || sl.Version <= 0 {
				t.Errorf("introduced(%q) returned slot %+v without a model version", details, sl)
			}
		}
		if s := MetricsSummary(metrics, 3); s != "" && !json.Valid([]byte(metrics)) {
			t.Errorf("MetricsSummary(%q, 3) = %q from a tag that is not JSON", metrics, s)
		}
	})
}
