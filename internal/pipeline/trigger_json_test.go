package pipeline

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
)

func TestTriggerJSON(t *testing.T) {
	in := &Trigger{Name: "retrain", SpecFile: "/p/mloop.yaml", Kind: OnDataset, Dataset: "flights-*",
		Cooldown: 10 * time.Minute, BatchWindow: 90 * time.Second, MaxConcurrent: 1, Overlap: OverlapQueue}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"cooldown":"10m0s"`, `"batch_window":"1m30s"`, `"dataset":"flights-*"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("encoding %s lacks %s", data, want)
		}
	}
	var out Trigger
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.Cooldown != in.Cooldown || out.BatchWindow != in.BatchWindow || out.Name != in.Name || out.Dataset != in.Dataset {
		t.Fatalf("round trip: got %+v, want %+v", out, *in)
	}
	if data, _ := json.Marshal(&Trigger{Name: "x"}); strings.Contains(string(data), "cooldown") {
		t.Errorf("zero durations are left out: %s", data)
	}
	for _, bad := range []string{`{"cooldown": "soon"}`, `{"batch_window": "-1m"}`} {
		var tr Trigger
		if err := json.Unmarshal([]byte(bad), &tr); mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "duration") {
			t.Errorf("Unmarshal(%s) = %v, want EINVALID about the duration", bad, err)
		}
	}
}

func FuzzTriggerJSON(f *testing.F) {
	f.Add([]byte(`{"name":"a","cooldown":"1h","batch_window":"5m","kind":"cron","cron":"@daily"}`))
	f.Add([]byte(`{"cooldown": 5}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tr Trigger
		if err := json.Unmarshal(data, &tr); err != nil {
			return
		}
		again, err := json.Marshal(tr)
		if err != nil {
			t.Fatalf("marshal decoded trigger: %v", err)
		}
		var back Trigger
		if err := json.Unmarshal(again, &back); err != nil {
			t.Fatalf("decode %s: %v", again, err)
		}
		if back.Cooldown != tr.Cooldown || back.BatchWindow != tr.BatchWindow {
			t.Fatalf("durations changed: %v %v → %v %v", tr.Cooldown, tr.BatchWindow, back.Cooldown, back.BatchWindow)
		}
	})
}
