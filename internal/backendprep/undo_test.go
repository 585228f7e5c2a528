package backendprep

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// recorded is a state as apply leaves it after preparing for dsr-gue
// with the kernel's decapsulation.
func recorded() *State {
	return &State{
		Version: stateVersion,
		Modes:   []Mode{DSRGUE},
		Addresses: []Address{
			{Interface: "lo", Address: netip.MustParseAddr("10.0.0.100")},
			{Interface: "lo", Address: netip.MustParseAddr("10.0.0.101")},
		},
		Sysctls: []Sysctl{
			{Dir: "all", Setting: arpIgnore, Previous: 0, Value: 1},
			{Dir: "all", Setting: arpAnnounce, Previous: 0, Value: 2},
			{Dir: "eth1", Setting: rpFilter, Previous: 0, Value: 1},
			{Dir: "all", Setting: rpFilter, Previous: 1, Value: 0},
			{Dir: tunnelDev, Setting: rpFilter, Previous: 2, Value: 0},
		},
		Links:    []Link{{Name: tunnelDev, SetUp: true}},
		GUEPorts: []uint16{6080},
	}
}

// TestPlanUndo: what apply set and is still so is put back; what someone
// changed since stays, with a warning; what is gone is said so; and the
// order takes the GUE receiver before tunl0, and a setting of tunl0
// before tunl0.
func TestPlanUndo(t *testing.T) {
	s := recorded()
	o := observed{
		conf: conf{
			{"all", arpIgnore}:   1, // as apply left it
			{"all", arpAnnounce}: 1, // someone changed it
			// eth1 is gone
			{"all", rpFilter}:     1, // someone put it back
			{tunnelDev, rpFilter}: 0,
		},
		addrs:    map[Address]bool{s.Addresses[0]: true},
		links:    map[string]linkState{tunnelDev: {exists: true, up: true}},
		guePorts: map[uint16]bool{6080: true},
	}
	want := []struct {
		action undoAction
		line   string
	}{
		{undoRemoveGUEPort, "closed the kernel's GUE receiver on UDP port 6080"},
		{undoRestoreSysctl, "net.ipv4.conf.tunl0.rp_filter: 0 -> 2 (as before apply)"},
		{undoNothing, "already so: net.ipv4.conf.all.rp_filter is 1 again"},
		{undoNothing, "already gone: net.ipv4.conf.eth1.rp_filter (eth1 is no more)"},
		{undoLeave, "warning: net.ipv4.conf.all.arp_announce is 1, not the 2 apply set: someone changed it since, so it stays (it was 0 before apply)"},
		{undoRestoreSysctl, "net.ipv4.conf.all.arp_ignore: 1 -> 0 (as before apply)"},
		{undoSetLinkDown, "set tunl0 down (as before apply)"},
		{undoRemoveAddress, "removed 10.0.0.100/32 from lo"},
		{undoNothing, "already gone: 10.0.0.101 from lo"},
	}
	got := planUndo(s, o)
	if len(got) != len(want) {
		t.Fatalf("%d steps, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Action != w.action || got[i].Line != w.line {
			t.Errorf("step %d: %d %q\nwant %d %q", i, got[i].Action, got[i].Line, w.action, w.line)
		}
	}

	// Steps not done go back into a state as they were recorded.
	rest := &State{Version: stateVersion, Modes: s.Modes}
	for _, u := range got {
		u.keepIn(rest)
	}
	if !reflect.DeepEqual(rest, s) {
		t.Errorf("kept:\n%+v\nwant:\n%+v", rest, s)
	}
}

func TestPlanUndoLinks(t *testing.T) {
	for _, tc := range []struct {
		link Link
		now  linkState
		want undoAction
		line string
	}{
		{Link{Name: tunnelDev, Created: true, SetUp: true}, linkState{exists: true, up: true}, undoDeleteLink, "deleted tunl0 (apply created it)"},
		{Link{Name: tunnelDev, Created: true, SetUp: true}, linkState{}, undoNothing, "already gone: tunl0"},
		{Link{Name: tunnelDev, SetUp: true}, linkState{exists: true}, undoNothing, "already so: tunl0 is down"},
	} {
		got := planUndo(&State{Links: []Link{tc.link}}, observed{links: map[string]linkState{tunnelDev: tc.now}})
		if len(got) != 1 || got[0].Action != tc.want || got[0].Line != tc.line {
			t.Errorf("%+v, now %+v: %+v; want %d %q", tc.link, tc.now, got, tc.want, tc.line)
		}
	}
}

func TestStatusLines(t *testing.T) {
	s := recorded()
	o := observed{
		conf:     conf{{"all", arpIgnore}: 1, {"all", arpAnnounce}: 1, {"all", rpFilter}: 0, {tunnelDev, rpFilter}: 0},
		addrs:    map[Address]bool{s.Addresses[0]: true},
		links:    map[string]linkState{tunnelDev: {exists: true}},
		guePorts: map[uint16]bool{6080: true},
	}
	want := []string{
		"added 10.0.0.100/32 to lo: in effect",
		"added 10.0.0.101/32 to lo: NOT IN EFFECT, it is gone",
		"net.ipv4.conf.all.arp_ignore: 0 -> 1: in effect",
		"net.ipv4.conf.all.arp_announce: 0 -> 2: NOT IN EFFECT, it is 1 now",
		"net.ipv4.conf.eth1.rp_filter: 0 -> 1: NOT IN EFFECT, eth1 is no more",
		"net.ipv4.conf.all.rp_filter: 1 -> 0: in effect",
		"net.ipv4.conf.tunl0.rp_filter: 2 -> 0: in effect",
		"set tunl0 up: NOT IN EFFECT, it is down",
		"opened the kernel's GUE receiver on UDP port 6080: in effect",
	}
	if got := statusLines(s, o); !reflect.DeepEqual(got, want) {
		t.Errorf("status:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
