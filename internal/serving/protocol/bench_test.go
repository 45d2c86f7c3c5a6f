package protocol

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/serving"
)

// flightsFeatures imitates the flights model: a dozen numeric and
// categorical columns.
func flightsFeatures() []serving.Feature {
	var fs []serving.Feature
	for i := range 12 {
		typ := serving.Numeric
		if i%4 == 3 {
			typ = serving.Categorical
		}
		fs = append(fs, serving.Feature{Name: fmt.Sprintf("feature_%d", i), Type: typ})
	}
	return fs
}

func BenchmarkDecodeOIPSingleRow(b *testing.B) {
	features := flightsFeatures()
	var vals []string
	for i := range features {
		vals = append(vals, fmt.Sprintf("%d.%d", i*37, i))
		if features[i].Type == serving.Categorical {
			vals[i] = fmt.Sprint(i)
		}
	}
	body := []byte(`{"id":"req-42","inputs":[{"name":"input-0","shape":[1,12],"datatype":"FP32","data":[` + strings.Join(vals, ",") + `]}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeOIP(body, features, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOIPSingleRowPerFeature(b *testing.B) {
	features := flightsFeatures()
	var inputs []string
	for i, f := range features {
		inputs = append(inputs, fmt.Sprintf(`{"name":%q,"shape":[1],"datatype":"FP32","data":[%d]}`, f.Name, i))
	}
	body := []byte(`{"id":"req-42","inputs":[` + strings.Join(inputs, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeOIP(body, features, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeOIP1000Rows(b *testing.B) {
	features := flightsFeatures()
	var rows []string
	for r := range 1000 {
		var vals []string
		for i := range features {
			vals = append(vals, fmt.Sprint((r+i)%50))
		}
		rows = append(rows, "["+strings.Join(vals, ",")+"]")
	}
	body := []byte(`{"inputs":[{"name":"x","shape":[1000,12],"datatype":"FP32","data":[` + strings.Join(rows, ",") + `]}]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := DecodeOIP(body, features, 1000); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeOIPSingleRow(b *testing.B) {
	preds := []float32{0.73125}
	b.ReportAllocs()
	for b.Loop() {
		EncodeOIP("flights", "3", "req-42", 1, preds, 1)
	}
}
