package connsync

import "testing"

func TestWindow(t *testing.T) {
	type step struct {
		epoch, seq uint32
		want       verdict
	}
	ok := verdict{ok: true}
	replay := verdict{}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"in order", []step{{5, 1, ok}, {5, 2, ok}, {5, 3, ok}}},
		{"first contact mid-stream counts no gaps", []step{{5, 1000, ok}, {5, 1001, ok}}},
		{"duplicate", []step{{5, 1, ok}, {5, 1, replay}}},
		{"skip counts gaps", []step{{5, 1, ok}, {5, 4, verdict{ok: true, gaps: 2}}}},
		{"late arrival fills a gap once", []step{
			{5, 1, ok}, {5, 4, verdict{ok: true, gaps: 2}},
			{5, 2, verdict{ok: true, late: true}}, {5, 2, replay}, {5, 3, verdict{ok: true, late: true}},
		}},
		{"63 behind is late, 64 behind too old", []step{
			{5, 100, ok}, {5, 200, verdict{ok: true, gaps: 99}},
			{5, 137, verdict{ok: true, late: true}}, {5, 136, replay},
		}},
		{"a jump past the window forgets it", []step{
			{5, 1, ok}, {5, 2, ok}, {5, 500, verdict{ok: true, gaps: 497}}, {5, 2, replay}, {5, 499, verdict{ok: true, late: true}},
		}},
		{"new epoch resets", []step{{5, 900, ok}, {6, 1, ok}, {6, 2, ok}, {6, 1, replay}}},
		{"older epoch is a replay", []step{{6, 1, ok}, {5, 901, replay}, {6, 2, ok}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w window
			for i, s := range tc.steps {
				if got := w.admit(s.epoch, s.seq); got != s.want {
					t.Errorf("step %d (epoch %d seq %d): %+v, want %+v", i, s.epoch, s.seq, got, s.want)
				}
			}
		})
	}
}
