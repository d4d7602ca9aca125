package pipeline

// UseRuntimeTimers makes paced runs wait on runtime timers alone, which a
// synctest bubble's fake clock drives, and returns a func that undoes it.
func UseRuntimeTimers() (restore func()) {
	old := preciseSleep
	preciseSleep = false
	return func() { preciseSleep = old }
}
