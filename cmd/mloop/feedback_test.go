package main

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/monitor"
)

// TestReadFeedback checks both formats, the header, batching and the line
// named in errors.
func TestReadFeedback(t *testing.T) {
	var batches [][]monitor.Label
	send := func(ls []monitor.Label) error {
		batches = append(batches, append([]monitor.Label(nil), ls...))
		return nil
	}
	in := "request_id,label,time\na,1,2026-01-02T15:04:05Z\nb, 0 \nc,true\nd,2.5\ne,false\n"
	if err := readFeedback(strings.NewReader(in), true, 2, send); err != nil {
		t.Fatal(err)
	}
	if len(batches) != 3 || len(batches[2]) != 1 || batches[0][0].RequestID != "a" || batches[0][0].Time.Year() != 2026 ||
		batches[1][0].Value != 1 || batches[1][1].Value != 2.5 || batches[2][0].Value != 0 {
		t.Errorf("CSV batches %+v", batches)
	}
	batches = nil
	if err := readFeedback(strings.NewReader("x,1\ny,0\n"), true, 10, send); err != nil || len(batches) != 1 || len(batches[0]) != 2 {
		t.Errorf("CSV without header: %v %+v", err, batches)
	}
	batches = nil
	if err := readFeedback(strings.NewReader(`{"request_id":"a","label":1}`+"\n\n"+`{"request_id":"b","label":0.5,"time":"2026-01-02T15:04:05Z"}`+"\n"), false, 10, send); err != nil ||
		len(batches) != 1 || len(batches[0]) != 2 || batches[0][1].Value != 0.5 {
		t.Errorf("NDJSON: %v %+v", err, batches)
	}
	for _, c := range []struct {
		in   string
		csv  bool
		want string
	}{
		{"a,1\nb,yes\n", true, `line 2: label "yes" is not a number`},
		{"a,1\n,1\n", true, "line 2: missing request_id"},
		{"a,1,2,3\n", true, "line 1: 4 fields"},
		{"a,NaN\n", true, "line 1: label NaN is not a number"},
		{"a,1,tomorrow\n", true, `line 1: time "tomorrow"`},
		{`{"request_id":"a","label":1}` + "\nnot json\n", false, "line 2: not a JSON object"},
		{`{"request_id":"a","label":[1]}`, false, "line 1: label [1] is not a number"},
	} {
		err := readFeedback(strings.NewReader(c.in), c.csv, 10, send)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.in, err, c.want)
		}
	}
}

// FuzzReadFeedback checks that any file gives labels with an id and a
// finite value, or an error, in both formats.
func FuzzReadFeedback(f *testing.F) {
	for _, s := range []string{"request_id,label\na,1\n", "a,true,2026-01-02T15:04:05Z\n", "\"a\nb\",1\n",
		`{"request_id":"a","label":1}` + "\n", `{"request_id":"a","label":1e400}`, "a,1e400\n"} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, isCSV bool) {
		readFeedback(bytes.NewReader(data), isCSV, 3, func(ls []monitor.Label) error {
			if len(ls) == 0 || len(ls) > 3 {
				t.Fatalf("batch of %d", len(ls))
			}
			for _, l := range ls {
				if l.RequestID == "" || math.IsNaN(l.Value) || math.IsInf(l.Value, 0) {
					t.Fatalf("label %+v from %q", l, data)
				}
			}
			return nil
		})
	})
}
