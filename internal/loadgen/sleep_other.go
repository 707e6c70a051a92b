//go:build !linux

package loadgen

import "time"

// sleeper is time.Sleep where nanosleep with a timer slack is not at hand.
type sleeper struct{}

func newSleeper() sleeper { return sleeper{} }

func (sleeper) sleep(d time.Duration) { time.Sleep(d) }

func (sleeper) close() {}
