package health

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestFSM feeds sequences of probe results ('+' passed, '-' failed) to the
// rise/fall state machine under a fake clock (probe i ends at t0+i s) and
// checks the exact probes at which the state changes.
func TestFSM(t *testing.T) {
	for _, tc := range []struct {
		name       string
		rise, fall int
		up         bool   // initial state
		seq        string // probe results
		want       string // state after each probe: 'U' up, 'D' down
	}{
		{"steady up", 2, 2, true, "++++", "UUUU"},
		{"down at the fall-th failure", 2, 2, true, "+--", "UUD"},
		{"flapping never crosses fall 2", 2, 2, true, "+-+-+-+-", "UUUUUUUU"},
		{"flapping after one failure", 2, 2, true, "-+-+-+-+", "UUUUUUUU"},
		{"up at the rise-th success", 2, 2, true, "--++", "UDDU"},
		{"flapping never crosses rise 2", 2, 2, true, "--+-+-+-", "UDDDDDDD"},
		{"streak restarts after a miss", 2, 2, true, "--+-++", "UDDDDU"},
		{"fall 1", 2, 1, true, "+-", "UD"},
		{"rise 1", 1, 2, true, "--+", "UDU"},
		{"fall 3", 2, 3, true, "--+---", "UUUUUD"},
		{"rise 3", 3, 2, false, "++-+++", "DDDDDU"},
		{"initial down needs rise successes", 2, 2, false, "+-++", "DDDU"},
		{"initial down stays down on failures", 2, 2, false, "----", "DDDD"},
		{"full cycle", 2, 2, true, "--++--++", "UDDUUDDU"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
			f := newFSM(tc.rise, tc.fall, tc.up, t0)
			since := t0
			for i, r := range tc.seq {
				now := t0.Add(time.Duration(i+1) * time.Second)
				var err error
				if r == '-' {
					err = errors.New("probe " + string(rune('0'+i)) + " failed")
				}
				wasUp := f.up
				changed, reason := f.record(err, now)
				up := tc.want[i] == 'U'
				if f.up != up {
					t.Fatalf("after probe %d (%c): up = %v, want %v", i, r, f.up, up)
				}
				if changed != (wasUp != up) {
					t.Fatalf("after probe %d: changed = %v, want %v", i, changed, wasUp != up)
				}
				if changed {
					since = now
					if reason == "" {
						t.Errorf("probe %d: change without a reason", i)
					}
					if !up && reason != err.Error() {
						t.Errorf("probe %d: down reason %q, want the probe's error %q", i, reason, err)
					}
				}
				if !f.since.Equal(since) {
					t.Errorf("after probe %d: since = %v, want %v", i, f.since, since)
				}
				if err != nil && f.lastErr != err.Error() {
					t.Errorf("after probe %d: lastErr = %q", i, f.lastErr)
				}
				if !f.lastCheck.Equal(now) || f.checks != uint64(i+1) {
					t.Errorf("after probe %d: lastCheck %v, checks %d", i, f.lastCheck, f.checks)
				}
			}
		})
	}
}

func TestFSMLastErrorKept(t *testing.T) {
	t0 := time.Now()
	f := newFSM(1, 1, true, t0)
	f.record(errors.New("refused"), t0)
	f.record(nil, t0)
	if !f.up || f.lastErr != "refused" {
		t.Errorf("up=%v lastErr=%q; want up with the old error kept", f.up, f.lastErr)
	}
}

func TestFSMRetune(t *testing.T) {
	t0 := time.Now()
	f := newFSM(2, 2, true, t0)
	f.record(errors.New("x"), t0) // one failure towards fall 2
	f.retune(2, 3)
	f.record(errors.New("x"), t0)
	f.record(errors.New("x"), t0)
	if !f.up {
		t.Fatal("down after 2 failures following retune to fall 3: the old streak was kept")
	}
	f.record(errors.New("x"), t0)
	if f.up {
		t.Fatal("still up after 3 failures with fall 3")
	}
	if !f.since.Equal(t0) {
		t.Errorf("since = %v", f.since)
	}
}

// TestReasonPrintable checks that a failed probe's message, partly
// written by the backend or the command, cannot break a listing's lines
// or a terminal.
func TestReasonPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"connection refused", "connection refused"},
		{"exit status 1: db down\n172.19.0.9:80 1 up", `exit status 1: db down\n172.19.0.9:80 1 up`},
		{"a\rb\tc\x1b[2Jd\x7f", `a\rb\tc\x1b[2Jd\x7f`},
		{"bad \xff\xfe utf-8", `bad \xff\xfe utf-8`},
		{"bidi \u202egnp.exe", `bidi \u202egnp.exe`},
		{"grüße, 日本", "grüße, 日本"},
		{strings.Repeat("é", 400), strings.Repeat("é", maxReason) + "..."},
	} {
		f := newFSM(2, 1, true, time.Time{})
		if _, reason := f.record(errors.New(tc.in), time.Time{}); reason != tc.want || f.lastErr != tc.want {
			t.Errorf("record(%q): reason %q, last error %q; want %q", tc.in, reason, f.lastErr, tc.want)
		}
	}
}
