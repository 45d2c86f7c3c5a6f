//go:build unix

package dataset

import (
	"syscall"
	"time"
)

// readerCPUTime returns the CPU time the process has used, so that
// benchmarks can report a figure that other processes on a shared machine
// do not inflate.
func readerCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
