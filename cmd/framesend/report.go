package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/framesend/framesend/internal/peakrss"
	"github.com/framesend/framesend/pipeline"
)

// report shows a run's progress while it goes: a progress bar on stderr
// when stderr is a terminal and the total is known, and a log line every
// interval. It returns a func that stops the reports and waits for them.
func report(c *cli.Context, live *pipeline.Live, total int64, interval time.Duration, queue int, log *slog.Logger, noProgress bool) func() {
	var bar *progressbar.ProgressBar
	if !noProgress && total > 0 && isTerminal(c.App.ErrWriter) {
		bar = progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(c.App.ErrWriter),
			progressbar.OptionSetDescription("sending"),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString("frames"),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond),
			progressbar.OptionClearOnFinish(),
		)
	}
	if bar == nil && interval <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		every := 100 * time.Millisecond
		if interval > 0 && interval < every {
			every = interval
		}
		tick := time.NewTicker(every)
		defer tick.Stop()
		last, lastFrames := time.Now(), int64(0)
		for {
			select {
			case <-done:
				if bar != nil {
					bar.Set64(live.Frames())
					bar.Finish()
				}
				return
			case now := <-tick.C:
				frames := live.Frames()
				if bar != nil {
					bar.Set64(frames)
				}
				if interval > 0 && now.Sub(last) >= interval {
					if bar != nil {
						// The log line gets a line of its own; the bar is
						// drawn again below it on the next tick.
						bar.Clear()
					}
					log.Info("progress", "frames", frames, "frames_per_second", int64(float64(frames-lastFrames)/now.Sub(last).Seconds()),
						"queue_bytes", live.Queued(), "queue_capacity_bytes", queue, "dropped", live.Dropped(), "kernel_dropped", live.KernelDropped(), "goroutines", runtime.NumGoroutine())
					last, lastFrames = now, frames
				}
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// printSummary prints a send's summary on stderr, as text or JSON. The
// text is Stats.String; JSON gives the rate while writing and over the run.
func printSummary(c *cli.Context, format, path string, st pipeline.Stats, err error) {
	w := c.App.ErrWriter
	if format == "json" {
		out := struct {
			Port string `json:"port"`
			pipeline.Stats
			Seconds        float64 `json:"seconds"`
			WritingSeconds float64 `json:"writing_seconds"`
			Rate           float64 `json:"frames_per_second"` // while writing
			RunRate        float64 `json:"frames_per_second_over_run"`
			PeakRSS        int64   `json:"peak_rss_kib,omitempty"`
			Error          string  `json:"error,omitempty"`
		}{Port: path, Stats: st, Seconds: st.Elapsed.Seconds(), WritingSeconds: st.Active.Seconds(), Rate: st.Rate(), PeakRSS: peakrss.Of(0)}
		if st.Elapsed > 0 {
			out.RunRate = float64(st.Frames) / st.Elapsed.Seconds()
		}
		if err != nil {
			out.Error = message(err)
		}
		b, _ := json.Marshal(out)
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "framesend: sent %v to %s\n", st, path)
}
