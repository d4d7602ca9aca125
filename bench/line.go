package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/framesend/framesend/device"
	"github.com/framesend/framesend/device/ptyfake"
	"github.com/framesend/framesend/pipeline"
)

// timedLine is the port with a clock on the calls the sender makes: each
// frame's break and mark (the port's own record, taken around TIOCSBRK,
// TIOCCBRK and the frame's write(2)) and when each write began. It adds
// nothing to the line's timing but a clock read per call.
type timedLine struct {
	*device.Port
	mu     sync.Mutex
	writes []time.Time
	breaks []device.BreakTiming
}

func (l *timedLine) Write(p []byte) (int, error) {
	now := time.Now()
	n, err := l.Port.Write(p)
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.Port.LastBreak(); b.Mark > 0 {
		now = b.End.Add(b.Mark) // the write(2) began after the mark
		l.breaks = append(l.breaks, b)
	}
	l.writes = append(l.writes, now)
	return n, err
}

// runTimed sends frames counter frames to a fresh fake through the port
// opened with c, at rate, and returns the clock records.
func runTimed(c device.Config, frameSize int, rate float64, frames int64) (*timedLine, error) {
	fake, err := ptyfake.New(ptyfake.Options{})
	if err != nil {
		return nil, err
	}
	defer fake.Close()
	go func() { // the far end reads everything
		buf := make([]byte, 64<<10)
		for {
			if _, err := fake.Read(buf); err != nil {
				return
			}
		}
	}()
	port, err := device.Open(fake.Path(), c)
	if err != nil {
		return nil, err
	}
	defer port.Close()
	l := &timedLine{Port: port}
	cfg := pipeline.DefaultConfig()
	cfg.FrameSize = frameSize
	cfg.Count = frames
	cfg.Rate = rate
	cfg.WriteTimeout = 10 * time.Second
	cfg.ByteTime = c.ByteTime()
	if _, err := pipeline.Run(context.Background(), l, cfg); err != nil {
		return nil, err
	}
	return l, nil
}

func quantiles(ds []time.Duration) (median, p99 time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*99/100]
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/float64(time.Microsecond)) }

// lineRows measures per-frame line shaping on the pty fake: DMX512's
// BREAK and mark-after-break before every frame at 44 frames/s, and
// Modbus RTU's 3.5-character gap at 9600. The fake has no wire, so what is
// measured is what framesend does to the line: a break from just before
// TIOCSBRK to just after TIOCCBRK, the mark from then to the frame's write,
// and the gap from the end of the frame's time on the line (its write
// plus its bytes at the baud, the UART starting at once on an idle line) to
// the next frame's write.
func lineRows(t *strings.Builder) error {
	const dmxFrames = 220 // 5 s at 44 frames/s
	dmx := device.Config{Baud: 250000, DataBits: 8, Parity: device.ParityNone, StopBits: 2,
		FrameBreak: 100 * time.Microsecond, MarkAfterBreak: 12 * time.Microsecond}
	l, err := runTimed(dmx, 513, 44, dmxFrames)
	if err != nil {
		return fmt.Errorf("dmx512: %w", err)
	}
	prio := "real-time priority refused (not root): timings as a busy machine leaves them"
	if l.RealTime() {
		prio = "real-time priority granted"
	}
	var brk, mab, period []time.Duration
	for i, b := range l.breaks {
		brk = append(brk, b.Break)
		mab = append(mab, b.Mark)
		if i > 0 {
			period = append(period, l.writes[i].Sub(l.writes[i-1]))
		}
	}
	rate := float64(len(l.writes)-1) / l.writes[len(l.writes)-1].Sub(l.writes[0]).Seconds()
	bm, bp := quantiles(brk)
	mm, mp := quantiles(mab)
	pm, pp := quantiles(period)
	fmt.Fprintf(t, "\n| line shaping on the fake, per frame (%s) | asked | median | p99 | target |\n|---|---|---|---|---|\n", prio)
	fmt.Fprintf(t, "| DMX512 BREAK (--frame-break, %d frames of 513 bytes, 250000 8N2) | 100.0 µs | %s | %s | p99 within 20 µs of asked |\n", dmxFrames, us(bm), us(bp))
	fmt.Fprintf(t, "| DMX512 mark after break (--mark-after-break) | 12.0 µs | %s | %s | p99 within 20 µs of asked |\n", us(mm), us(mp))
	fmt.Fprintf(t, "| DMX512 frame period at --rate 44 (%.2f frames/s achieved) | %s | %s | %s | 44.0 frames/s |\n", rate, us(time.Second/44), us(pm), us(pp))

	const gapFrames = 400
	mb := device.Config{Baud: 9600, DataBits: 8, Parity: device.ParityNone, StopBits: 1}
	char := mb.ByteTime()
	mb.Gap = time.Duration(3.5 * float64(char))
	g, err := runTimed(mb, 7, 0, gapFrames)
	if err != nil {
		return fmt.Errorf("gap: %w", err)
	}
	var gaps []time.Duration
	for i := 1; i < len(g.writes); i++ {
		gaps = append(gaps, g.writes[i].Sub(g.writes[i-1].Add(7*char)))
	}
	gm, gp := quantiles(gaps)
	fmt.Fprintf(t, "| --gap 3.5c at 9600 8N1 (%d frames of 7 bytes; a character is %s) | %s | %s | %s | p99 within one character time of asked |\n",
		gapFrames, us(char), us(mb.Gap), us(gm), us(gp))
	fmt.Fprintf(os.Stderr, "line shaping done\n")
	return nil
}
