package backendprep

import (
	"bytes"
	"errors"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/hostnet"
	"github.com/xdplb/xdplb/internal/testbed"
)

var (
	vip    = netip.MustParseAddr("192.0.2.100")
	theirs = netip.MustParseAddr("192.0.2.101") // on lo before apply
)

// backend is a throw-away namespace with lo and eth0, removed when the
// test ends, failed or not. Everything the tests change is in it; the
// host's own namespace is never touched.
func backend(t *testing.T) *testbed.Host {
	t.Helper()
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.78.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := seg.Close(); err != nil {
			t.Error(err)
		}
	})
	h, err := seg.AddHost("backend", netip.MustParseAddr("10.78.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// in runs fn inside h's namespace.
func in(t *testing.T, h *testbed.Host, fn func()) {
	t.Helper()
	if err := h.Do(func() error { fn(); return nil }); err != nil {
		t.Fatal(err)
	}
}

// set gives settings ("dir:setting") values, inside the namespace.
func set(t *testing.T, values map[string]int) {
	t.Helper()
	for k, v := range values {
		dir, setting, _ := strings.Cut(k, ":")
		if err := hostnet.SetConf(dir, setting, v); err != nil {
			t.Fatal(err)
		}
	}
}

// expect checks settings, inside the namespace.
func expect(t *testing.T, when string, values map[string]int) {
	t.Helper()
	for k, want := range values {
		dir, setting, _ := strings.Cut(k, ":")
		got, err := hostnet.Conf(dir, setting)
		if err != nil || got != want {
			t.Errorf("%s: %s is %d (%v), want %d", when, hostnet.ConfName(dir, setting), got, err, want)
		}
	}
}

func onLo(t *testing.T, a netip.Addr) bool {
	t.Helper()
	holders, err := hostnet.Holders(a)
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(holders, func(h hostnet.Holder) bool { return h.Interface == "lo" })
}

// TestApplyAndUndo prepares a backend for dsr-l2, again, then for
// dsr-ipip too, and undoes it all after someone changed one setting: the
// values before apply come back, the VIP the host had stays, and the
// setting changed since stays as they left it.
func TestApplyAndUndo(t *testing.T) {
	h := backend(t)
	path := filepath.Join(t.TempDir(), "xdplb", "backend-prep.json")
	before := map[string]int{
		"all:arp_ignore": 0, "all:arp_announce": 0, "all:rp_filter": 1,
		"default:arp_ignore": 0, "default:arp_announce": 0, "default:rp_filter": 1,
		"eth0:arp_ignore": 3, "eth0:arp_announce": 0, "eth0:rp_filter": 0,
	}
	in(t, h, func() {
		set(t, before)
		if err := hostnet.AddAddrTo("lo", theirs); err != nil {
			t.Fatal(err)
		}

		var out bytes.Buffer
		l2 := Options{VIPs: []netip.Addr{vip, theirs}, Mode: DSRL2}
		if err := Apply(l2, path, &out); err != nil {
			t.Fatal(err)
		}
		want := "added 192.0.2.100/32 to lo\n" +
			"already so: 192.0.2.101 is on lo\n" +
			"net.ipv4.conf.all.arp_ignore: 0 -> 1\n" +
			"net.ipv4.conf.eth0.arp_ignore: 3 -> 1 (the larger of all's and eth0's counts, and 3 would answer ARP for the VIPs)\n" +
			"net.ipv4.conf.all.arp_announce: 0 -> 2\n" +
			"recorded in " + path + ": xdplb backend-prep undo puts it all back\n"
		if out.String() != want {
			t.Errorf("apply dsr-l2:\n%s\nwant:\n%s", out.String(), want)
		}
		if !onLo(t, vip) || !onLo(t, theirs) {
			t.Error("the VIPs are not both on lo")
		}
		expect(t, "after apply dsr-l2", map[string]int{"all:arp_ignore": 1, "all:arp_announce": 2, "eth0:arp_ignore": 1, "all:rp_filter": 1})
		st, _, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if want := []Address{{"lo", vip}}; !slices.Equal(st.Addresses, want) {
			t.Errorf("recorded addresses %v, want only %v (the other was there before)", st.Addresses, want)
		}

		// Again: nothing changes, the record stays as it is.
		saved, _ := os.ReadFile(path)
		out.Reset()
		if err := Apply(l2, path, &out); err != nil {
			t.Fatal(err)
		}
		if strings.Count(out.String(), "already so: ") != 4 || !strings.Contains(out.String(), "nothing to change") {
			t.Errorf("apply dsr-l2 again:\n%s", out.String())
		}
		if again, _ := os.ReadFile(path); !bytes.Equal(again, saved) {
			t.Errorf("the record changed:\n%s\nwas:\n%s", again, saved)
		}

		out.Reset()
		if err := Apply(Options{VIPs: []netip.Addr{vip}, Mode: DSRIPIP}, path, &out); err != nil {
			t.Fatal(err)
		}
		expect(t, "after apply dsr-ipip", map[string]int{"all:rp_filter": 1, "default:rp_filter": 2, "eth0:rp_filter": 2})

		out.Reset()
		if err := Status(path, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), "prepared for dsr-l2 and dsr-ipip; "+path+" records:\n") ||
			strings.Count(out.String(), ": in effect") != 6 {
			t.Errorf("status:\n%s", out.String())
		}

		set(t, map[string]int{"all:arp_announce": 1})
		out.Reset()
		if err := Undo(path, &out); err != nil {
			t.Fatal(err)
		}
		if w := "warning: net.ipv4.conf.all.arp_announce is 1, not the 2 apply set: someone changed it since, so it stays (it was 0 before apply)\n"; !strings.Contains(out.String(), w) {
			t.Errorf("undo:\n%s\nwant the line %s", out.String(), w)
		}
		after := overlay(before, map[string]int{"all:arp_announce": 1})
		expect(t, "after undo", after)
		if onLo(t, vip) {
			t.Error("after undo the VIP apply added is still on lo")
		}
		if !onLo(t, theirs) {
			t.Error("undo took away the VIP the host had before apply")
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the record is still there after undo: %v", err)
		}

		out.Reset()
		if err := Undo(path, &out); err != nil || !strings.HasPrefix(out.String(), "nothing to undo") {
			t.Errorf("undo again: %q, %v", out.String(), err)
		}
	})
}

// TestKernelDecap prepares for the tunnel modes with the kernel's own
// decapsulation: tunl0 up with rp_filter 0, all's too, and the other
// interfaces keeping their filter; for GUE a receiver on the port. A
// kernel without ipip or fou is refused before anything changes.
//
// On a kernel with ipip and fou as modules this loads them (as apply
// does on a backend), which makes a tunl0, down, in every namespace.
func TestKernelDecap(t *testing.T) {
	h := backend(t)
	before := map[string]int{"all:rp_filter": 2, "default:rp_filter": 0, "eth0:rp_filter": 0}
	for _, mode := range []Mode{DSRIPIP, DSRGUE} {
		t.Run(string(mode), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "backend-prep.json")
			in(t, h, func() {
				set(t, overlay(before, map[string]int{"all:arp_ignore": 1, "all:arp_announce": 2}))
				var out bytes.Buffer
				err := Apply(Options{VIPs: []netip.Addr{vip}, Mode: mode, KernelDecap: true, GUEPort: 6080}, path, &out)
				if errors.Is(err, ErrNoIPIP) || errors.Is(err, ErrNoFOU) {
					t.Logf("refused: %v", err)
					if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) || onLo(t, vip) || out.Len() != 0 {
						t.Errorf("the refusal changed something: %q, record %v, VIP on lo %v", out.String(), serr, onLo(t, vip))
					}
					expect(t, "after the refusal", before)
					return
				}
				if err != nil {
					t.Fatalf("%v\n%s", err, out.String())
				}
				t.Logf("apply:\n%s", out.String())
				expect(t, "after apply", map[string]int{"all:rp_filter": 0, "tunl0:rp_filter": 0, "default:rp_filter": 2, "eth0:rp_filter": 2})
				if l, err := readLink(tunnelDev); err != nil || !l.up {
					t.Errorf("tunl0 after apply: %+v, %v", l, err)
				}
				if mode == DSRGUE {
					if gue, _, err := guePorts(); err != nil || !slices.Contains(gue, 6080) {
						t.Errorf("GUE receivers after apply: %v, %v", gue, err)
					}
				}

				out.Reset()
				if err := Undo(path, &out); err != nil {
					t.Fatalf("%v\n%s", err, out.String())
				}
				t.Logf("undo:\n%s", out.String())
				expect(t, "after undo", before)
				if l, err := readLink(tunnelDev); err != nil || l.up {
					t.Errorf("tunl0 after undo: %+v, %v", l, err)
				}
				if mode == DSRGUE {
					if gue, _, err := guePorts(); err != nil || len(gue) != 0 {
						t.Errorf("GUE receivers after undo: %v, %v", gue, err)
					}
				}
			})
		})
	}
}

// overlay returns a copy of a with b's entries laid over it.
func overlay(a, b map[string]int) map[string]int {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}
