package health

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// fsm is the rise/fall state machine of one target. It is not safe for
// concurrent use; the Monitor guards it with its mutex.
//
// An up target goes down after fall consecutive failed probes; a down
// target comes up after rise consecutive passed probes. A probe that
// agrees with the current state resets the opposite streak, so a
// sequence like pass, fail, pass, fail never crosses fall = 2.
type fsm struct {
	rise, fall int

	up        bool
	since     time.Time // last change of up, or when the target was added
	successes int       // consecutive passed probes
	failures  int       // consecutive failed probes
	lastErr   string    // message of the most recent failed probe
	lastCheck time.Time
	checks    uint64
}

func newFSM(rise, fall int, up bool, now time.Time) fsm {
	return fsm{rise: rise, fall: fall, up: up, since: now}
}

// record feeds the result of one probe (err == nil: passed) finished at
// now, and returns whether the state changed, and why.
func (f *fsm) record(err error, now time.Time) (changed bool, reason string) {
	f.lastCheck = now
	f.checks++
	if err == nil {
		f.successes++
		f.failures = 0
		if !f.up && f.successes >= f.rise {
			f.up, f.since = true, now
			return true, fmt.Sprintf("%d consecutive checks passed", f.successes)
		}
		return false, ""
	}
	f.lastErr = printable(err.Error())
	f.failures++
	f.successes = 0
	if f.up && f.failures >= f.fall {
		f.up, f.since = false, now
		return true, f.lastErr
	}
	return false, ""
}

// retune applies new rise/fall parameters (a changed Spec), keeping the
// state and its time but restarting both streaks.
func (f *fsm) retune(rise, fall int) {
	f.rise, f.fall = rise, fall
	f.successes, f.failures = 0, 0
}

// maxReason bounds the length of a failed probe's message, which `xdplb
// list` and the log show.
const maxReason = 300

// printable makes a probe's error message safe to print on one line of
// a listing or log: its text comes partly from outside (a command's
// output, a server's answer), so control characters, bidirectional
// controls and invalid UTF-8 are escaped (a newline could forge a line
// of `xdplb list`, an escape sequence could rewrite the terminal), and it
// is cut at maxReason characters.
func printable(s string) string {
	var b strings.Builder
	for n := 0; s != ""; n++ {
		if n == maxReason {
			b.WriteString("...")
			break
		}
		r, size := utf8.DecodeRuneInString(s)
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[0])
		case unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r):
			q := strconv.QuoteRuneToASCII(r) // '\n', '\x1b', '\u202e'
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteString(s[:size])
		}
		s = s[size:]
	}
	return b.String()
}
