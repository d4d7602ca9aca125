// Package devicetest holds test helpers around framesend's pty fake
// (package device/ptyfake): Start makes a fake that a test cleans up.
// The product itself uses ptyfake, so that no test code is linked into it.
package devicetest

import (
	"testing"

	"github.com/framesend/framesend/device/ptyfake"
)

// Options shape how the fake's far end behaves; see ptyfake.Options.
type Options = ptyfake.Options

// PTY is the fake serial device on a pseudo-terminal pair; see ptyfake.PTY.
type PTY = ptyfake.PTY

// New opens a fake; see ptyfake.New.
func New(opts Options) (*PTY, error) { return ptyfake.New(opts) }

// Start is New for tests: it fails t if the fake cannot be made, and
// closes the fake when t ends.
func Start(t testing.TB, opts Options) *PTY {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatalf("pty fake: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}
