package payloadlog

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
)

// segmentBytes compresses NDJSON text as a segment.
func segmentBytes(tb testing.TB, text string) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write([]byte(text)); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// encodeSegment encodes records as a Logger does.
func encodeSegment(tb testing.TB, recs []Record) []byte {
	tb.Helper()
	var text []byte
	for i := range recs {
		text = appendRecord(text, &recs[i])
	}
	return segmentBytes(tb, string(text))
}

// TestEncodeRoundTrip checks that every line is standard JSON (so any NDJSON
// reader reads it) and that ReadSegment returns the records written,
// including missing values, infinities and awkward strings.
func TestEncodeRoundTrip(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	recs := []Record{
		{
			Time: time.Date(2026, 5, 6, 7, 8, 9, 123456789, time.UTC), RequestID: "id \"quoted\" \\ \t\x01 é 😀",
			Deployment: "flights", Revision: "rev-2", ModelVersion: "flights/7", LatencyMicros: 1234567, Status: 200,
			Inputs:  serving.Batch{Rows: 2, Cols: 3, Values: []float32{1, nan, -inf, 3.4028235e38, 1e-45, 0.1}},
			Outputs: []float32{0.25, 0.75, nan, inf}, OutputsPerRow: 2,
		},
		{Time: time.Date(2026, 5, 6, 7, 8, 9, 0, time.FixedZone("x", 3600)), Deployment: "d", Status: 400, Error: "bad <input> & more"},
		{Deployment: "d", Inputs: serving.Batch{Rows: 2, Cols: 0}, Status: 200},
	}
	for i := range recs {
		line := appendRecord(nil, &recs[i])
		if !json.Valid(bytes.TrimSuffix(line, []byte("\n"))) {
			t.Errorf("record %d: line is not valid JSON: %s", i, line)
		}
		if bytes.Count(line, []byte("\n")) != 1 {
			t.Errorf("record %d: line has embedded newlines: %q", i, line)
		}
	}
	got, err := ReadSegment(bytes.NewReader(encodeSegment(t, recs)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("got %d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if !sameRecord(got[i], recs[i]) {
			t.Errorf("record %d:\ngot  %+v\nwant %+v", i, got[i], recs[i])
		}
	}

	// Invalid UTF-8 is replaced, as encoding/json does.
	r := Record{RequestID: "a\xffb"}
	got, err = ReadSegment(bytes.NewReader(encodeSegment(t, []Record{r})))
	if err != nil || len(got) != 1 || got[0].RequestID != "a\uFFFDb" {
		t.Errorf("invalid UTF-8 id read back as %+v, %v", got, err)
	}
}

// TestReadSegmentErrors checks that malformed segments are rejected with an
// error that names the record.
func TestReadSegmentErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"not json", "{\"time\":\"\"}\nhello\n", "record 2"},
		{"ragged rows", `{"inputs":[[1,2],[3]]}`, "row 1 has 1 values"},
		{"string value", `{"inputs":[["1"]]}`, "is not a number"},
		{"nested", `{"outputs":[[1]]}`, "is not a number"},
		{"object inputs", `{"inputs":{"a":1}}`, "want an array of rows"},
		{"bad time", `{"time":"yesterday"}`, "RFC 3339"},
		{"wrong type", `{"status":"ok"}`, "record 1"},
		{"truncated", `{"status":1`, "record 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadSegment(bytes.NewReader(segmentBytes(t, tc.text)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Errorf("kind %q, want %q", mloop.ErrorCode(err), mloop.EINVALID)
			}
		})
	}
	if _, err := ReadSegment(strings.NewReader("not zstd at all")); err == nil {
		t.Error("ReadSegment(not zstd) = nil error")
	}
	recs, err := ReadSegment(bytes.NewReader(segmentBytes(t, "")))
	if err != nil || len(recs) != 0 {
		t.Errorf("empty segment: %v, %v; want no records", recs, err)
	}
}

// FuzzReadSegment feeds ReadSegment arbitrary NDJSON (compressed) and
// arbitrary bytes. It must never panic, and whatever it accepts must
// survive another write and read unchanged.
func FuzzReadSegment(f *testing.F) {
	nan := float32(math.NaN())
	f.Add(string(appendRecord(nil, &Record{
		Time: time.Unix(1, 2).UTC(), RequestID: "r", Deployment: "d",
		Inputs:  serving.Batch{Rows: 2, Cols: 2, Values: []float32{1, nan, 3, 4}},
		Outputs: []float32{1, 2}, OutputsPerRow: 1,
	})), true)
	f.Add(`{"inputs":[[1e999,-1e999,null]],"outputs":null}`+"\n{}", true)
	f.Add(`{"inputs":[[1],[2,3]]}`, true)
	f.Add(`{"inputs":[[ 1 , 2 ] , [3,4]] , "outputs" : [ ] }`, true)
	f.Add("\x28\xb5\x2f\xfd\x00\x00\x00", false)
	f.Fuzz(func(t *testing.T, data string, compress bool) {
		b := []byte(data)
		if compress {
			b = segmentBytes(t, data)
		}
		recs, err := ReadSegment(bytes.NewReader(b))
		if err != nil {
			return
		}
		for i := range recs {
			in := recs[i].Inputs
			if in.Rows < 0 || in.Cols < 0 || len(in.Values) != in.Rows*in.Cols {
				t.Fatalf("record %d: inconsistent inputs %+v", i, in)
			}
		}
		again, err := ReadSegment(bytes.NewReader(encodeSegment(t, recs)))
		if err != nil {
			t.Fatalf("re-reading written records: %v", err)
		}
		if len(again) != len(recs) {
			t.Fatalf("re-read %d records, want %d", len(again), len(recs))
		}
		for i := range recs {
			if !sameRecord(again[i], recs[i]) {
				t.Fatalf("record %d changed:\nfirst  %+v\nsecond %+v", i, recs[i], again[i])
			}
		}
	})
}
