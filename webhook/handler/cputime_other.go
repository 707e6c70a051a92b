//go:build !linux

package handler

import "time"

// cpuClock is not available on this platform: nothing is measured.
type cpuClock struct{}

func startCPUClock() cpuClock { return cpuClock{} }

func (cpuClock) stop() (time.Duration, bool) { return 0, false }
