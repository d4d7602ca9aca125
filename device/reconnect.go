//go:build linux

package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// Reconnecting is a port that outlives its device: when the device goes
// away (a USB adapter unplugged, a socat pair restarted), Reconnect waits
// for the same path to come back and opens it again with the same settings
// and lock: every line setting of the Config (speed, format, flow control,
// DTR and RTS, HUPCL, RS-485, low latency, the frame shaping) is applied and
// read back again, as by Open. A udev link such as /dev/serial/by-id/… disappears with the
// device and reappears with it, so waiting on the path finds the same
// adapter even if the kernel gives it another ttyUSB number.
type Reconnecting struct {
	path    string
	config  Config
	lock    bool
	timeout time.Duration // 0 waits for ever
	poll    time.Duration
	log     *slog.Logger
	cur     atomic.Pointer[Port] // replaced by Reconnect; read from any goroutine
	gone    atomic.Bool          // the device went away and has not come back
}

// OpenReconnecting opens path as Open (or OpenShared, if lock is false) does
// and returns a port that Reconnect can reopen. timeout bounds each wait for
// the device to come back; 0 waits for ever.
func OpenReconnecting(path string, c Config, lock bool, timeout time.Duration, log *slog.Logger) (*Reconnecting, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reconnecting{path: path, config: c, lock: lock, timeout: timeout, poll: 100 * time.Millisecond, log: log}
	p, err := r.open()
	if err != nil {
		return nil, err
	}
	r.cur.Store(p)
	return r, nil
}

func (r *Reconnecting) open() (*Port, error) { return open(r.path, r.config, r.lock) }

func (r *Reconnecting) port() *Port { return r.cur.Load() }

// Write writes to the current port; see Port.Write.
func (r *Reconnecting) Write(b []byte) (int, error) { return r.port().Write(b) }

// Drain drains the current port; see Port.Drain. While the device is gone
// there is nothing left to drain.
func (r *Reconnecting) Drain() error {
	if r.gone.Load() {
		return nil
	}
	return r.port().Drain()
}

// DrainBy drains the current port; see Port.DrainBy.
func (r *Reconnecting) DrainBy(deadline time.Time) error {
	if r.gone.Load() {
		return nil
	}
	return r.port().DrainBy(deadline)
}

// SetWriteDeadline bounds the current port's writes; see
// Port.SetWriteDeadline. A port opened again by Reconnect starts without
// one.
func (r *Reconnecting) SetWriteDeadline(t time.Time) error {
	if r.gone.Load() {
		return nil // nothing to write to until Reconnect opens it again
	}
	return r.port().SetWriteDeadline(t)
}

// ShapeFrames, BeforeFrame and AfterFrame shape the current port's line
// around each frame; see Port.ShapeFrames.
func (r *Reconnecting) ShapeFrames() bool { return r.port().ShapeFrames() }

// BeforeFrame: see Port.BeforeFrame.
func (r *Reconnecting) BeforeFrame() error { return r.port().BeforeFrame() }

// AfterFrame: see Port.AfterFrame.
func (r *Reconnecting) AfterFrame() error { return r.port().AfterFrame() }

// Port returns the port open now.
func (r *Reconnecting) Port() *Port { return r.port() }

// Gone reports whether the device is away; it is safe to call from any
// goroutine.
func (r *Reconnecting) Gone() bool { return r.gone.Load() }

// Close closes the current port.
func (r *Reconnecting) Close() error { return r.port().Close() }

// Reconnect handles a failed write: if err says the device went away, it
// closes the port, waits for the path to come back, and reopens it. It
// returns nil once the port is open again, err itself for any other
// failure, a timeout error after the reconnect timeout, and ctx's error if
// ctx is done while it waits. It blocks while it waits.
func (r *Reconnecting) Reconnect(ctx context.Context, err error) error {
	if !errors.Is(err, ErrGone) {
		return err
	}
	r.port().Close()
	r.gone.Store(true)
	went := time.Now()
	r.log.Warn("device went away; waiting for it to come back", "port", r.path, "error", err.Error())
	var deadline <-chan time.Time
	if r.timeout > 0 {
		t := time.NewTimer(r.timeout)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(r.poll)
	defer tick.Stop()
	var last error
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline:
			return fmt.Errorf("%w, and it %w within %v", err, ErrNotBack, r.timeout)
		case <-tick.C:
		}
		p, oerr := r.open()
		if oerr == nil {
			r.cur.Store(p)
			r.gone.Store(false)
			for _, n := range p.Notes() {
				r.log.Info(n)
			}
			r.log.Info("device is back", "port", r.path, "went", went.Format(time.RFC3339Nano), "outage", time.Since(went).Round(time.Millisecond).String())
			return nil
		}
		// Not there yet, or there but udev has not yet given it its
		// group: keep waiting. Anything else is not an unplug.
		if !errors.Is(oerr, ErrNotFound) && !errors.Is(oerr, ErrPermission) && !errors.Is(oerr, ErrGone) && !errors.Is(oerr, ErrBusy) {
			return oerr
		}
		if last == nil || last.Error() != oerr.Error() {
			r.log.Debug("waiting for the device", "port", r.path, "error", oerr.Error())
			last = oerr
		}
	}
}
