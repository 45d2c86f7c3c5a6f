package pipeline

// ProcessIdentity exposes processIdentity to the external tests.
func ProcessIdentity(pid int) (string, bool) { return processIdentity(pid) }
