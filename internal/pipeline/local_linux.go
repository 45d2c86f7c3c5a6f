//go:build linux

package pipeline

import (
	"bytes"
	"errors"
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

// processIdentity names the process pid beyond its number: the boot it runs
// in, its PID namespace and its start time (in clock ticks since boot), as
// "bootid/pidns/start". A pid reused by another process, or the same number
// in another container, has another identity. ok is false when the process
// does not exist or /proc does not tell.
func processIdentity(pid int) (id string, ok bool) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", false
	}
	ns, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "ns", "pid"))
	if err != nil {
		return "", false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return "", false
	}
	// "pid (comm) state ppid …": comm may hold spaces and parentheses, so
	// count fields after the last ')'; the start time is field 22.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", false
	}
	fields := bytes.Fields(stat[i+1:])
	if len(fields) < 20 {
		return "", false
	}
	return string(bytes.TrimSpace(boot)) + "/" + ns + "/" + string(fields[19]), true
}

// envUnreadable reports whether process pid exists but hides its
// environment from this process (another user's).
func envUnreadable(pid int) bool {
	_, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	return errors.Is(err, os.ErrPermission)
}
