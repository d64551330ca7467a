package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procUsage counts a process's open file descriptors and reads its RSS.
func procUsage(pid int) (fds int, rss int64, err error) {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, 0, err
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("VmRSS: %w", err)
			}
			return len(entries), kb << 10, nil
		}
	}
	return 0, 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}
