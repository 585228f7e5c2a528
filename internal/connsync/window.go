package connsync

// windowSize is how far behind the newest datagram a late one may arrive
// and still be accepted.
const windowSize = 64

// window is the anti-replay state of one sender, in the manner of IPsec's
// sliding window: the sender's epoch, the highest seq accepted in it, and
// which of the windowSize numbers up to that one have been seen.
type window struct {
	started bool
	epoch   uint32
	top     uint32
	seen    uint64 // bit i: seq top-i was accepted
}

// verdict is what admit decided about one datagram.
type verdict struct {
	ok bool // accept it; otherwise it is a replay
	// gaps counts the numbers the datagram skipped past: datagrams lost,
	// or late. They are counted when skipped and never taken back, so
	// that gaps is a counter; a late arrival sets late instead, and
	// gaps minus lates is what was lost.
	gaps uint32
	late bool
}

// admit decides on a datagram and, if it is accepted, records it.
func (w *window) admit(epoch, seq uint32) verdict {
	switch {
	case !w.started || epoch > w.epoch:
		// First contact, or the sender restarted: what it sent
		// before is unknown, so nothing counts as a gap.
		*w = window{started: true, epoch: epoch, top: seq, seen: 1}
		return verdict{ok: true}
	case epoch < w.epoch:
		return verdict{}
	case seq > w.top:
		skip := seq - w.top
		if skip >= windowSize {
			w.seen = 1
		} else {
			w.seen = w.seen<<skip | 1
		}
		w.top = seq
		return verdict{ok: true, gaps: skip - 1}
	}
	back := w.top - seq
	if back >= windowSize || w.seen&(1<<back) != 0 {
		return verdict{}
	}
	w.seen |= 1 << back
	return verdict{ok: true, late: true}
}
