package loadgen

import (
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// sleeper sleeps precisely enough for sub-millisecond schedules: the Go
// runtime's timers wake a sleeping goroutine up to about a millisecond late
// on Linux (its poller waits in whole milliseconds), which is more than the
// latencies measured. The schedule's goroutine keeps its own thread, with
// a timer slack of 1 ns, and sleeps in nanosleep(2): tens of microseconds
// late. The thread sleeps; it does not spin.
type sleeper struct{}

func newSleeper() sleeper {
	runtime.LockOSThread()
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 1, 0, 0, 0)
	return sleeper{}
}

func (sleeper) sleep(d time.Duration) {
	ts := unix.NsecToTimespec(d.Nanoseconds())
	_ = unix.Nanosleep(&ts, nil)
}

// close gives the thread back its default slack and unlocks it.
func (sleeper) close() {
	_ = unix.Prctl(unix.PR_SET_TIMERSLACK, 0, 0, 0, 0)
	runtime.UnlockOSThread()
}
