package pipeline

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"

	"github.com/mloop/mloop"
)

// MaxMetricsFileSize bounds a metrics file (a JSON document of numbers).
const MaxMetricsFileSize = 16 << 20

// Metrics is the content of a step's metrics output: a JSON object whose
// numeric members are metrics ("auc": 0.81) and whose optional "slices"
// member maps slice names to objects of metrics, as in
//
//	{"auc": 0.81, "logloss": 0.42,
//	 "slices": {"origin=SFO": {"auc": 0.78}, "origin=LAX": {"auc": 0.83}}}
//
// Other members (strings, booleans, nested objects) are ignored, so a file
// may carry notes beside its numbers.
type Metrics struct {
	// Values are the overall metrics.
	Values map[string]float64 `json:"values"`
	// Slices are the metrics per slice, by slice name.
	Slices map[string]map[string]float64 `json:"slices,omitempty"`
}

// ParseMetrics reads a metrics document. A document that is not a JSON
// object, or whose "slices" is not an object of objects, is EINVALID with
// the reason; non-finite numbers cannot occur in JSON.
func ParseMetrics(data []byte) (*Metrics, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "metrics file is not a JSON object: %v", err)
	}
	m := &Metrics{Values: map[string]float64{}}
	for k, raw := range top {
		if k == "slices" {
			var slices map[string]map[string]json.RawMessage
			if err := json.Unmarshal(raw, &slices); err != nil {
				return nil, mloop.Errorf(mloop.EINVALID, `metrics file: "slices" must be an object of objects of numbers: %v`, err)
			}
			m.Slices = make(map[string]map[string]float64, len(slices))
			for name, vals := range slices {
				sm := map[string]float64{}
				for mk, mv := range vals {
					if f, ok := number(mv); ok {
						sm[mk] = f
					}
				}
				m.Slices[name] = sm
			}
			continue
		}
		if f, ok := number(raw); ok {
			m.Values[k] = f
		}
	}
	return m, nil
}

// number decodes raw as a JSON number.
func number(raw json.RawMessage) (float64, bool) {
	var f float64
	s := strings.TrimSpace(string(raw))
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return 0, false
	}
	if err := json.Unmarshal(raw, &f); err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false
	}
	return f, true
}

// ReadMetricsFile reads and parses a metrics file, refusing one larger than
// MaxMetricsFileSize.
func ReadMetricsFile(path string) (*Metrics, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	if fi.Size() > MaxMetricsFileSize {
		return nil, mloop.Errorf(mloop.ETOOLARGE, "metrics file %s is %d bytes; the limit is %d", path, fi.Size(), MaxMetricsFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	m, err := ParseMetrics(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// Flat returns the metrics as MLflow metric keys: overall metrics by their
// name, slice metrics as "slice/<slice>/<metric>", with characters MLflow
// does not allow in keys (anything but letters, digits, '_', '-', '.', ' '
// and '/') replaced by '_'.
func (m *Metrics) Flat() map[string]float64 {
	out := make(map[string]float64, len(m.Values))
	for k, v := range m.Values {
		out[MetricKey(k)] = v
	}
	for s, vals := range m.Slices {
		for k, v := range vals {
			out[MetricKey("slice/"+s+"/"+k)] = v
		}
	}
	return out
}

// SliceNames returns the slice names in order.
func (m *Metrics) SliceNames() []string {
	names := make([]string, 0, len(m.Slices))
	for s := range m.Slices {
		names = append(names, s)
	}
	sort.Strings(names)
	return names
}

// MetricKey makes s a valid MLflow metric key.
func MetricKey(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' || c == ' ' || c == '/') {
			b[i] = '_'
		}
	}
	return string(b)
}
