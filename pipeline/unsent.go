package pipeline

// Frames is how many frames n bytes make in frames of fs bytes under
// partial: the whole frames, and a short tail as one more under PartialPad
// (under PartialError the tail ends the run; under PartialDrop it is
// dropped). Under AlignDatagram it is what each datagram becomes.
func Frames(n int64, fs int, partial Partial) int64 {
	frames := n / int64(fs)
	if n%int64(fs) != 0 && partial == PartialPad {
		frames++
	}
	return frames
}

// unsent counts what a run read from its source and never wrote, taken in
// the order it was read, as the frames it would have become. Under
// AlignStream the bytes make frames in a row; under AlignDatagram each
// datagram makes its own (see Frames), and a short tail that would
// not be a frame is counted in cut, with the bytes of a frame or a datagram
// that never ended.
type unsent struct {
	fs      int
	align   Align
	partial Partial

	frames int64
	cut    int64
	// pending is the bytes of a frame (stream) or of a datagram (datagram
	// aligned) that may go on in what comes next.
	pending int
}

// framed counts n bytes already cut into frames, as the sender's buffer
// holds them: whole frames, then the start of one.
func (u *unsent) framed(n int) {
	u.frames += int64(n / u.fs)
	u.pending += n % u.fs
}

// block counts b's bytes from offset from on.
func (u *unsent) block(b *Block, from int) {
	if u.align != AlignDatagram || len(b.ends) == 0 && !b.open {
		u.pending += len(b.data) - from
		return
	}
	start := from
	for _, e := range b.ends {
		if int(e) <= from {
			continue
		}
		n := u.pending + int(e) - start
		u.frames += Frames(int64(n), u.fs, u.partial)
		if n%u.fs != 0 && u.partial != PartialPad {
			u.cut += int64(n % u.fs)
		}
		u.pending, start = 0, int(e)
	}
	u.pending += len(b.data) - start // a datagram that goes on in the next block
}

// done counts what is pending as bytes that never made a whole frame
// (beyond its whole frames, if a datagram's) and returns the totals.
func (u *unsent) done() (frames, cut int64) {
	u.frames += int64(u.pending / u.fs)
	u.cut += int64(u.pending % u.fs)
	u.pending = 0
	return u.frames, u.cut
}
