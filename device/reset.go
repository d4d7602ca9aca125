//go:build linux

package device

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/framesend/framesend/internal/precise"
)

// ResetStep is one step of a reset sequence: set DTR, RTS or both, or wait.
type ResetStep struct {
	DTR, RTS Level         // LevelKeep leaves a line alone
	Wait     time.Duration // for a wait step
}

// ResetSeq is a sequence of DTR/RTS changes and waits, such as the pulse
// that resets a board into its bootloader.
type ResetSeq []ResetStep

// MaxResetWait bounds one wait of a reset sequence.
const MaxResetWait = 10 * time.Second

// ParseResetSeq reads a reset sequence in esptool's custom reset syntax:
// steps separated by |, each D0/D1 (DTR off/on), R0/R1 (RTS off/on), U0,1
// (DTR and RTS at once, in that order) or W followed by seconds (W0.1).
// "" is the empty sequence.
func ParseResetSeq(s string) (ResetSeq, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	var seq ResetSeq
	for i, step := range strings.Split(s, "|") {
		step = strings.TrimSpace(step)
		bad := func(why string) error {
			return fmt.Errorf("step %d %q %s: use D0/D1 (DTR), R0/R1 (RTS), U0,1 (DTR,RTS) or W0.1 (wait seconds), separated by |, such as D0|R1|W0.1|D1|R0|W0.05|D0", i+1, step, why)
		}
		if step == "" {
			return nil, bad("is empty")
		}
		arg := step[1:]
		switch step[0] {
		case 'D', 'd', 'R', 'r':
			lv, ok := bit(arg)
			if !ok {
				return nil, bad("needs 0 or 1")
			}
			if step[0] == 'D' || step[0] == 'd' {
				seq = append(seq, ResetStep{DTR: lv})
			} else {
				seq = append(seq, ResetStep{RTS: lv})
			}
		case 'U', 'u':
			d, r, ok := strings.Cut(arg, ",")
			dl, ok1 := bit(d)
			rl, ok2 := bit(r)
			if !ok || !ok1 || !ok2 {
				return nil, bad("needs two bits, DTR then RTS, such as U0,1")
			}
			seq = append(seq, ResetStep{DTR: dl, RTS: rl})
		case 'W', 'w':
			sec, err := strconv.ParseFloat(arg, 64)
			switch {
			case err != nil || sec != sec:
				return nil, bad("needs a number of seconds")
			case sec < 0:
				return nil, bad("is a negative wait")
			case sec > MaxResetWait.Seconds():
				return nil, bad(fmt.Sprintf("waits longer than %v", MaxResetWait))
			}
			seq = append(seq, ResetStep{Wait: time.Duration(sec * float64(time.Second))})
		default:
			return nil, bad("is not a step")
		}
	}
	return seq, nil
}

func bit(s string) (Level, bool) {
	switch strings.TrimSpace(s) {
	case "0":
		return LevelOff, true
	case "1":
		return LevelOn, true
	}
	return LevelKeep, false
}

// String gives the sequence back in esptool's syntax.
func (q ResetSeq) String() string {
	var b strings.Builder
	for i, st := range q {
		if i > 0 {
			b.WriteByte('|')
		}
		bitOf := func(l Level) string {
			if l == LevelOn {
				return "1"
			}
			return "0"
		}
		switch {
		case st.DTR != LevelKeep && st.RTS != LevelKeep:
			b.WriteString("U" + bitOf(st.DTR) + "," + bitOf(st.RTS))
		case st.DTR != LevelKeep:
			b.WriteString("D" + bitOf(st.DTR))
		case st.RTS != LevelKeep:
			b.WriteString("R" + bitOf(st.RTS))
		default:
			b.WriteString("W" + strconv.FormatFloat(st.Wait.Seconds(), 'f', -1, 64))
		}
	}
	return b.String()
}

// Reset runs q on the port's modem lines. A step that sets both lines sets
// them with one TIOCMSET, so they change together. It blocks for the waits.
func (p *Port) Reset(q ResetSeq) error {
	if p.closed.Load() {
		return &Error{Op: "reset", Path: p.path, Class: ErrClosed}
	}
	if err := runReset(p.line, q, precise.SleepSpin); err != nil {
		return &Error{Op: "reset", Path: p.path, Class: classOfControl(err), Err: err}
	}
	return nil
}

func runReset(l line, q ResetSeq, sleep func(time.Duration)) error {
	for _, st := range q {
		switch {
		case st.DTR != LevelKeep && st.RTS != LevelKeep:
			bits, err := modemBits(l)
			if err != nil {
				return err
			}
			bits &^= tiocmDTR | tiocmRTS
			if st.DTR == LevelOn {
				bits |= tiocmDTR
			}
			if st.RTS == LevelOn {
				bits |= tiocmRTS
			}
			b := int32(bits)
			if err := l.ioctlPtr(unix.TIOCMSET, unsafe.Pointer(&b)); err != nil {
				return modemErr(err)
			}
		case st.DTR != LevelKeep || st.RTS != LevelKeep:
			if err := setLines(l, st.DTR, st.RTS); err != nil {
				return err
			}
		default:
			sleep(st.Wait)
		}
	}
	return nil
}
