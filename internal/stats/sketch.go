package stats

import (
	"bytes"
	"encoding/json"
	"errors"
)

// This file declares the sketch API; implementations live in quantile.go,
// distinct.go, frequent.go and moments.go.

// DefaultQuantileK is the KLL accuracy parameter used when none is given.
const DefaultQuantileK = 200

// DefaultFrequentLimit is how many distinct values FrequentItems counts
// exactly before it switches to approximate counting.
const DefaultFrequentLimit = 1000

// ItemCount is a value and how many times it was seen.
type ItemCount struct {
	Value string `json:"value"`
	Count int64  `json:"count"`
}

// decodeStrict decodes b, one JSON value, into v: unknown fields and data
// after the value are errors, as a sketch's stored form allows neither.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if len(bytes.TrimSpace(b[dec.InputOffset():])) > 0 {
		return errors.New("trailing data")
	}
	return nil
}
