//go:build linux

package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// taskGroups returns the process groups of the live processes whose
// environment holds MLOOP_TASK_ID=taskID (the local executor sets it on
// every task), read from /proc. ok is false when /proc cannot be read.
func taskGroups(taskID string) (groups []int, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, false
	}
	marker := []byte(taskIDEnv + "=" + taskID)
	self := syscall.Getpgrp()
	seen := map[int]bool{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours
		}
		found := false
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, marker) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		pgid, err := syscall.Getpgid(pid)
		if err != nil || pgid <= 1 || pgid == self || seen[pgid] {
			continue
		}
		seen[pgid] = true
		groups = append(groups, pgid)
	}
	return groups, true
}
