//go:build !linux

package pipeline

// taskGroups reports that processes cannot be found by their environment
// here (no /proc): callers fall back to the recorded process group.
func taskGroups(taskID string) ([]int, bool) { return nil, false }

// processIdentity reports that processes cannot be identified here: leases
// of processes that died then expire instead of being taken over at once.
func processIdentity(pid int) (string, bool) { return "", false }

// envUnreadable reports false: without /proc, KillTask uses the handle
// directly.
func envUnreadable(pid int) bool { return false }
