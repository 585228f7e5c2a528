package decap

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"

	"github.com/xdplb/xdplb/internal/testbed"
)

// newHost makes a segment with one host, whose eth0 is a veth in a
// network namespace of the test's own; all of it goes when the test ends,
// after the decapsulator is detached from it.
func newHost(t *testing.T) *testbed.Host {
	t.Helper()
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.91.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	h, err := seg.AddHost("backend", netip.MustParseAddr("10.91.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.Do(func() error {
			if _, err := Detach("eth0"); err != nil {
				t.Errorf("detach from %s's eth0: %v", h.Name, err)
			}
			return nil
		})
	})
	return h
}

// attachment returns the status of the pin directory dir.
func attachment(t *testing.T, dir string) (Attachment, bool) {
	t.Helper()
	all, err := Status()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range all {
		if a.PinDir == dir {
			return a, true
		}
	}
	return Attachment{}, false
}

// xdpOn returns the id of the XDP program on ifname, and the mode.
func xdpOn(t *testing.T, ifname string) (uint32, Mode) {
	t.Helper()
	l, err := netlink.LinkByName(ifname)
	if err != nil {
		t.Fatal(err)
	}
	mode, _ := attachedMode(l)
	if x := l.Attrs().Xdp; x != nil && x.Attached {
		return x.ProgId, mode
	}
	return 0, mode
}

func linkID(t *testing.T, dir string) link.ID {
	t.Helper()
	l, err := link.LoadPinnedLink(filepath.Join(dir, linkPin), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		t.Fatal(err)
	}
	return info.ID
}

// TestAttachUpdateDetach: attach puts the program on the interface and
// pins it; attaching again replaces program, allow-list and port in the
// same link; a change of mode is refused; status says all of it, from the
// interface's namespace and from another; detach leaves nothing, and a
// second detach is a no-op that says so.
func TestAttachUpdateDetach(t *testing.T) {
	h := newHost(t)
	b1, b2, b3 := netip.MustParseAddr("10.91.0.1"), netip.MustParseAddr("10.91.0.3"), netip.MustParseAddr("10.91.0.4")
	var dir string
	h.Do(func() error {
		ns, err := currentNetns()
		if err != nil {
			t.Fatal(err)
		}
		done, err := Attach("eth0", []netip.Addr{b1, b1}, 6080, Native)
		if err != nil {
			t.Fatal(err)
		}
		dir = filepath.Join(PinRoot, "eth0@netns-"+strconv.FormatUint(ns, 10))
		if done.Updated || done.PinDir != dir || done.Ifindex != h.Ifindex() || !slices.Equal(done.Sources, []netip.Addr{b1}) {
			t.Errorf("first attach: %+v", done)
		}
		prog, mode := xdpOn(t, "eth0")
		a, ok := attachment(t, dir)
		if !ok || !a.Attached || a.Interface != "eth0" || a.Netns != ns || !a.Here || a.Ifindex != h.Ifindex() ||
			a.Program != prog || a.Mode != "native" || mode != Native || a.Problem != "" ||
			!slices.Equal(a.Sources, []netip.Addr{b1}) || a.GUEPort != 6080 {
			t.Errorf("status after attach: %+v (eth0 has program %d in %v mode)", a, prog, mode)
		}
		firstLink := linkID(t, dir)

		done, err = Attach("eth0", []netip.Addr{b3, b2}, 0, Native)
		if err != nil || !done.Updated {
			t.Fatalf("second attach: %+v, %v; want updated", done, err)
		}
		again, _ := xdpOn(t, "eth0")
		if id := linkID(t, dir); id != firstLink || again == prog || again == 0 {
			t.Errorf("second attach: link %d program %d, then link %d program %d; want the same link with a new program",
				firstLink, prog, id, again)
		}
		a, _ = attachment(t, dir)
		if !a.Attached || a.Program != again || !slices.Equal(a.Sources, []netip.Addr{b2, b3}) || a.GUEPort != 0 {
			t.Errorf("status after the update: %+v", a)
		}

		_, err = Attach("eth0", []netip.Addr{b1}, 6080, Generic)
		if err == nil || !strings.Contains(err.Error(), "eth0 has the decapsulator in native mode") {
			t.Errorf("attach in generic mode over native: %v", err)
		}
		if a, _ := attachment(t, dir); !slices.Equal(a.Sources, []netip.Addr{b2, b3}) || a.GUEPort != 0 {
			t.Errorf("the refused attach changed the allow-list or port: %+v", a)
		}
		return nil
	})

	// From the test's own namespace, the interface is in another.
	a, ok := attachment(t, dir)
	if !ok || !a.Attached || a.Here || a.Netns == 0 || a.Mode != "" || a.Interface != "eth0" {
		t.Errorf("status from another namespace: %+v", a)
	}

	h.Do(func() error {
		d, err := Detach("eth0")
		if err != nil || !d.Found || d.PinDir != dir {
			t.Fatalf("detach: %+v, %v", d, err)
		}
		if prog, _ := xdpOn(t, "eth0"); prog != 0 {
			t.Errorf("after detach eth0 has program %d", prog)
		}
		if _, err := os.Lstat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after detach %s: %v", dir, err)
		}
		if a, ok := attachment(t, dir); ok {
			t.Errorf("status still lists %+v", a)
		}
		if d, err := Detach("eth0"); err != nil || d.Found {
			t.Errorf("second detach: %+v, %v; want nothing found, no error", d, err)
		}

		if _, err := Attach("eth0", []netip.Addr{b1}, 0, Generic); err != nil {
			t.Fatal(err)
		}
		if a, _ := attachment(t, dir); !a.Attached || a.Mode != "generic" {
			t.Errorf("status after a generic attach: %+v", a)
		}
		if _, mode := xdpOn(t, "eth0"); mode != Generic {
			t.Errorf("eth0 has the program in %v mode; want generic", mode)
		}
		return nil
	})
}

// TestAttachRefusedLeavesNothing: an interface with another XDP program
// refuses the decapsulator; attach says why and leaves no pins.
func TestAttachRefusedLeavesNothing(t *testing.T) {
	h := newHost(t)
	var objs decapObjects
	if err := loadDecapObjects(&objs, nil); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	h.Do(func() error {
		l, err := netlink.LinkByName("eth0")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.LinkSetXdpFd(l, objs.XdplbDecap.FD()); err != nil {
			t.Fatal(err)
		}
		defer netlink.LinkSetXdpFd(l, -1)
		ns, _ := currentNetns()
		_, err = Attach("eth0", []netip.Addr{balancer}, 0, Native)
		if err == nil || !strings.Contains(err.Error(), "eth0 has another XDP program (id ") {
			t.Errorf("attach over another program: %v", err)
		}
		if _, err := os.Lstat(pinDir("eth0", ns)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after the refused attach %s: %v", pinDir("eth0", ns), err)
		}
		return nil
	})
}

// TestDetachLeavesOthersAlone: a pin xdplb decap did not make, in its
// directory, survives detach, which says so.
func TestDetachLeavesOthersAlone(t *testing.T) {
	h := newHost(t)
	h.Do(func() error {
		done, err := Attach("eth0", []netip.Addr{balancer}, 0, Native)
		if err != nil {
			t.Fatal(err)
		}
		other, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		pin := filepath.Join(done.PinDir, "someone-elses")
		if err := other.Pin(pin); err != nil {
			t.Fatal(err)
		}
		defer func() {
			other.Unpin()
			os.Remove(done.PinDir)
		}()
		_, err = Detach("eth0")
		if err == nil || !strings.Contains(err.Error(), "still holds files xdplb decap did not make") {
			t.Errorf("detach: %v", err)
		}
		if _, err := os.Lstat(pin); err != nil {
			t.Errorf("detach took %s: %v", pin, err)
		}
		if prog, _ := xdpOn(t, "eth0"); prog != 0 {
			t.Errorf("after detach eth0 has program %d", prog)
		}
		return nil
	})
}

// TestConcurrentAttaches: attaches at once to one interface take turns:
// one attaches, the others update, and one link holds the program.
func TestConcurrentAttaches(t *testing.T) {
	h := newHost(t)
	type result struct {
		done Attached
		err  error
	}
	results := make(chan result)
	for i := range 4 {
		go func() {
			var r result
			h.Do(func() error {
				r.done, r.err = Attach("eth0", []netip.Addr{netip.AddrFrom4([4]byte{10, 91, 0, byte(10 + i)})}, 0, Native)
				return nil
			})
			results <- r
		}()
	}
	fresh := 0
	for range 4 {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
		} else if !r.done.Updated {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d of 4 attaches found nothing attached; want 1", fresh)
	}
	h.Do(func() error {
		ns, _ := currentNetns()
		a, ok := attachment(t, pinDir("eth0", ns))
		prog, _ := xdpOn(t, "eth0")
		if !ok || !a.Attached || a.Program != prog || len(a.Sources) != 1 {
			t.Errorf("after the attaches: %+v (eth0 has program %d); want one source, the last attach's", a, prog)
		}
		return nil
	})
}

// TestAttachErrors: bad arguments are refused before anything is done,
// all at once, each saying what is wrong.
func TestAttachErrors(t *testing.T) {
	for _, tc := range []struct {
		ifname  string
		allowed []string
		mode    Mode
		want    []string
	}{
		{"", nil, Native, []string{"no interface given", "no allowed sources: give the addresses the balancers send tunnels from"}},
		{"eth0", []string{"2001:db8::1", "10.0.0.1"}, Native, []string{"allowed source 2001:db8::1 is not an IPv4 address"}},
		{"eth0", []string{"0.0.0.0", "224.0.0.1", "255.255.255.255"}, Native, []string{
			"allowed source 0.0.0.0 cannot be", "allowed source 224.0.0.1 cannot be", "allowed source 255.255.255.255 cannot be"}},
		{"eth0", []string{"10.0.0.1"}, Mode(7), []string{"XDP mode Mode(7) is neither native nor generic"}},
		{"a/b", []string{"10.0.0.1"}, Native, []string{`"a/b" is not an interface name`}},
		{"eth0:1", []string{"10.0.0.1"}, Native, []string{`"eth0:1" is not an interface name`}},
		{"sixteen-letters!", []string{"10.0.0.1"}, Native, []string{"is not an interface name"}},
	} {
		var allowed []netip.Addr
		for _, s := range tc.allowed {
			allowed = append(allowed, netip.MustParseAddr(s))
		}
		_, err := Attach(tc.ifname, allowed, 0, tc.mode)
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Attach(%q, %v, %v): %v; want %q", tc.ifname, tc.allowed, tc.mode, err, want)
			}
		}
	}
	var many []netip.Addr
	for i := range MaxSources + 1 {
		many = append(many, netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if _, err := Attach("eth0", many, 0, Native); err == nil || !strings.Contains(err.Error(), "1025 allowed sources; the allow-list holds 1024") {
		t.Errorf("Attach with %d sources: %v", len(many), err)
	}
	if _, err := ParseMode("offload"); err == nil || !strings.Contains(err.Error(), `"offload" is neither native nor generic`) {
		t.Errorf("ParseMode(offload): %v", err)
	}
}

// TestAttachNoInterface: an interface that is not there is named.
func TestAttachNoInterface(t *testing.T) {
	h := newHost(t)
	h.Do(func() error {
		_, err := Attach("nosuch0", []netip.Addr{balancer}, 0, Native)
		if err == nil || !strings.Contains(err.Error(), "interface nosuch0: not found in this network namespace") {
			t.Errorf("attach to nosuch0: %v", err)
		}
		return nil
	})
}

func TestDirName(t *testing.T) {
	for _, tc := range []struct {
		ifname string
		netns  uint64
		want   string
	}{
		{"eth0", 4026531840, "eth0@netns-4026531840"},
		{"eth0.100", 4026531840, "eth0:100@netns-4026531840"},
		{"bond0.7.8", 7, "bond0:7:8@netns-7"},
		{"a@netns-5", 9, "a@netns-5@netns-9"},
	} {
		got := dirName(tc.ifname, tc.netns)
		if got != tc.want {
			t.Errorf("dirName(%q, %d) = %q; want %q", tc.ifname, tc.netns, got, tc.want)
		}
		ifname, netns, ok := parseDirName(got)
		if !ok || ifname != tc.ifname || netns != tc.netns {
			t.Errorf("parseDirName(%q) = %q, %d, %v", got, ifname, netns, ok)
		}
	}
	for _, bad := range []string{"", "eth0", "@netns-12", "eth0@netns-", "eth0@netns-x", "eth0@netns-0", "much-too-long-name@netns-1"} {
		if _, _, ok := parseDirName(bad); ok {
			t.Errorf("parseDirName(%q) is ok", bad)
		}
	}
}
