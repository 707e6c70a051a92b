package handler

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// cpuClock measures the CPU time the current goroutine uses: it pins the
// goroutine to its thread and reads the thread's CPU clock, so time spent
// waiting for a CPU (another goroutine or process running) is not counted.
// The zero cpuClock measures nothing.
type cpuClock struct {
	start   time.Duration
	ok      bool
	started bool
}

func startCPUClock() cpuClock {
	runtime.LockOSThread()
	t, ok := threadCPUTime()
	return cpuClock{start: t, ok: ok, started: true}
}

// stop unpins the goroutine and returns the CPU time used since start;
// ok is false when the clock could not be read.
func (c cpuClock) stop() (time.Duration, bool) {
	if !c.started {
		return 0, false
	}
	end, ok := threadCPUTime()
	runtime.UnlockOSThread()
	if !c.ok || !ok || end < c.start {
		return 0, false
	}
	return end - c.start, true
}

func threadCPUTime() (time.Duration, bool) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0, false
	}
	return time.Duration(ts.Nano()), true
}
