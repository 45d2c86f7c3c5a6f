package pipeline

import "time"

// SetRetryBackoff sets the base delay between a failed attempt and its retry,
// so that tests of retries run fast.
func SetRetryBackoff(s *Service, d time.Duration) { s.rs.backoff = d }
