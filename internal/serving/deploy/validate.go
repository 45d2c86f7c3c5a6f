package deploy

import (
	"math"
	"strings"
	"time"
	"unicode"

	"github.com/mloop/mloop"
)

// Bounds of a Spec.
const (
	// MaxNameLength is the longest deployment name.
	MaxNameLength = 63
	// MaxBatchRowsLimit is the largest Spec.MaxBatchRows.
	MaxBatchRowsLimit = 1_000_000
	// MaxBatchSizeLimit is the largest Batching.MaxBatchSize.
	MaxBatchSizeLimit = 10_000
	// MaxBatchDelayLimit is the longest Batching.MaxDelay.
	MaxBatchDelayLimit = time.Second
	// MaxRollbackWindow is the longest RollbackPolicy.Window: canaries are
	// judged on recent traffic, and each replica keeps the window's figures
	// in memory.
	MaxRollbackWindow = time.Hour
)

// ValidateName checks a deployment name: 1 to 63 lowercase ASCII letters,
// digits and '-', starting and ending with a letter or digit (a DNS label),
// so that it is safe in URL paths, metric labels and host names. A bad
// name is EINVALID.
func ValidateName(name string) error {
	ok := len(name) >= 1 && len(name) <= MaxNameLength && name[0] != '-' && name[len(name)-1] != '-'
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-'
	}
	if !ok {
		return mloop.Errorf(mloop.EINVALID, "deployment name %q: use 1 to %d lowercase letters, digits and '-', starting and ending with a letter or digit (such as flights-prod)",
			name, MaxNameLength)
	}
	return nil
}

// validateRef checks a reference built in Go (JSON ones come through
// ParseRef): a model name, and either a version or an alias.
func validateRef(field string, r Ref) error {
	switch {
	case r.Model == "":
		return mloop.Errorf(mloop.EINVALID, "%s: a model reference needs a model name: use MODEL@VERSION or MODEL@ALIAS, such as flights@3 or flights@champion", field)
	case strings.ContainsFunc(r.Model+r.Alias, unicode.IsControl):
		return mloop.Errorf(mloop.EINVALID, "%s: model reference %q holds control characters", field, r.String())
	case r.Version < 0, r.Version > 0 && r.Alias != "", r.Version == 0 && r.Alias == "":
		return mloop.Errorf(mloop.EINVALID, "%s: model reference %q needs either a version (from 1) or an alias, such as flights@3 or flights@champion", field, r.String())
	}
	return nil
}

// normalize returns s with an empty canary or shadow reference removed.
func (s Spec) normalize() Spec {
	if s.Canary != nil && s.Canary.IsZero() {
		s.Canary = nil
	}
	if s.Shadow != nil && s.Shadow.IsZero() {
		s.Shadow = nil
	}
	if s.Rollout != nil && s.Rollout.Disabled {
		s.Rollout = nil
	}
	return s
}

// finite reports whether f is neither NaN nor infinite.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// Validate checks the spec (after dropping an empty canary or shadow
// reference): a primary model; a canary with canary_percent from 1 to 100
// and a different reference than the primary's; no canary_percent without
// a canary; payload_sample from 0 to 1; max_batch_rows from 0 to 1,000,000;
// batching at most 10,000 rows and 1s of delay; non-negative rollback
// figures, max_error_rate_increase at most 1 and max_latency_ratio 0 or at
// least 1; a rollout policy's figures within their bounds (see
// RolloutPolicy). The error is EINVALID and names the field. That a
// rollout policy needs the primary to follow an alias is checked by
// Service.Create and Service.Update.
func (s Spec) Validate() error {
	s = s.normalize()
	if s.Model.IsZero() {
		return mloop.Errorf(mloop.EINVALID, "model: a deployment needs a model to serve: give MODEL@VERSION or MODEL@ALIAS, such as flights@3 or flights@champion")
	}
	if err := validateRef("model", s.Model); err != nil {
		return err
	}
	if s.Canary != nil {
		if err := validateRef("canary", *s.Canary); err != nil {
			return err
		}
		if *s.Canary == s.Model {
			return mloop.Errorf(mloop.EINVALID, "canary %s is the primary model reference: a canary serves a different model version", s.Canary)
		}
		if s.CanaryPercent < 1 || s.CanaryPercent > 100 {
			return mloop.Errorf(mloop.EINVALID, "canary_percent %d: a canary takes from 1 to 100 percent of traffic", s.CanaryPercent)
		}
	} else if s.CanaryPercent != 0 {
		return mloop.Errorf(mloop.EINVALID, "canary_percent %d without a canary: give a canary model reference, or leave the percent out", s.CanaryPercent)
	}
	if s.Shadow != nil {
		if err := validateRef("shadow", *s.Shadow); err != nil {
			return err
		}
	}
	if p := s.PayloadSample; p != nil && (!finite(*p) || *p < 0 || *p > 1) {
		return mloop.Errorf(mloop.EINVALID, "payload_sample %v: give a fraction from 0 (log nothing) to 1 (log every request)", *p)
	}
	if s.MaxBatchRows < 0 || s.MaxBatchRows > MaxBatchRowsLimit {
		return mloop.Errorf(mloop.EINVALID, "max_batch_rows %d: give 0 (the default, %d) up to %d", s.MaxBatchRows, DefaultMaxBatchRows, MaxBatchRowsLimit)
	}
	if b := s.Batching; b.MaxBatchSize < 0 || b.MaxBatchSize > MaxBatchSizeLimit {
		return mloop.Errorf(mloop.EINVALID, "batching.max_batch_size %d: give 0 (no batching) up to %d rows", b.MaxBatchSize, MaxBatchSizeLimit)
	}
	if d := time.Duration(s.Batching.MaxDelay); d < 0 || d > MaxBatchDelayLimit {
		return mloop.Errorf(mloop.EINVALID, "batching.max_delay %v: give a delay from 0 to %v", d, MaxBatchDelayLimit)
	}
	r := s.Rollback
	switch {
	case r.Window < 0 || time.Duration(r.Window) > MaxRollbackWindow:
		return mloop.Errorf(mloop.EINVALID, "rollback.window %v: give a duration up to %v such as 1m (0 for the default)", time.Duration(r.Window), MaxRollbackWindow)
	case r.MinRequests < 0:
		return mloop.Errorf(mloop.EINVALID, "rollback.min_requests %d: give a positive count (0 for the default)", r.MinRequests)
	case !finite(r.MaxErrorRateIncrease) || r.MaxErrorRateIncrease < 0 || r.MaxErrorRateIncrease > 1:
		return mloop.Errorf(mloop.EINVALID, "rollback.max_error_rate_increase %v: give a fraction from 0 (the default) to 1", r.MaxErrorRateIncrease)
	case !finite(r.MaxLatencyRatio) || r.MaxLatencyRatio < 0 || r.MaxLatencyRatio > 0 && r.MaxLatencyRatio < 1:
		return mloop.Errorf(mloop.EINVALID, "rollback.max_latency_ratio %v: give a ratio of at least 1 (0 for the default, %v)", r.MaxLatencyRatio, DefaultMaxLatencyRatio)
	case r.MinLatencyIncrease < 0:
		return mloop.Errorf(mloop.EINVALID, "rollback.min_latency_increase %v: give a non-negative duration such as 5ms", time.Duration(r.MinLatencyIncrease))
	}
	if s.Rollout != nil {
		return s.Rollout.validate()
	}
	return nil
}
