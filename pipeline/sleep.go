package pipeline

import "time"

// preciseSleep says whether paced runs finish each wait with a nanosleep
// instead of a runtime timer. Tests that run in a synctest bubble, where only
// runtime timers follow the fake clock, turn it off.
var preciseSleep = true

// timerSlack is how long before a frame is due a paced sender stops
// trusting the runtime's timer and sleeps precisely. Runtime timers are
// served by the network poller, whose wait has millisecond resolution.
const timerSlack = 2 * time.Millisecond
