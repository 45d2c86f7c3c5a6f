//go:build !unix

package dataset

import "time"

// readerCPUTime is not measured on this system.
func readerCPUTime() time.Duration { return 0 }
