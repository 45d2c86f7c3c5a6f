package payloadlog

import "math"

// Keep reports whether sampling at rate keeps a record with this request
// id: the same deterministic choice, by a hash of the id, that a Logger
// with Config.SampleRate = rate makes, so that every replica keeps the same
// requests. A caller that samples per deployment (at rates of its own)
// asks Keep before building a record, and gives Log only the records it
// keeps, to a Logger whose SampleRate is 1. A rate of 1 or more keeps every
// record, a rate of 0 or less (or NaN) none; an empty id is kept.
func Keep(requestID string, rate float64) bool {
	switch {
	case rate >= 1:
		return true
	case !(rate > 0):
		return false
	case requestID == "":
		return true
	}
	return mix(requestID) < uint64(math.Ldexp(rate, 64))
}
