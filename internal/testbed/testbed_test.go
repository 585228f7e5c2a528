package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"go.uber.org/goleak"
)

// rootNetns is the namespace the test binary started in; no thread may be
// left anywhere else once a test is over.
var rootNetns, _ = os.Readlink("/proc/self/ns/net")

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// pinned lists the namespaces in /run/netns that carry prefix.
func pinned(t *testing.T, prefix string) []string {
	t.Helper()
	entries, err := os.ReadDir(netnsDir)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read %s: %v", netnsDir, err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// checkThreads fails unless every thread of the process is back in the
// root namespace (threads used by Do must have been discarded).
func checkThreads(t *testing.T) {
	t.Helper()
	if rootNetns == "" {
		t.Fatal("could not read the initial network namespace")
	}
	var stray []string
	for deadline := time.Now().Add(3 * time.Second); ; {
		stray = stray[:0]
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatalf("list threads: %v", err)
		}
		for _, task := range tasks {
			ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/net"))
			if err != nil {
				continue // thread exited meanwhile
			}
			if ns != rootNetns {
				stray = append(stray, task.Name()+"="+ns)
			}
		}
		if len(stray) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("threads outside %s: %v", rootNetns, stray)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReferenceTopology(t *testing.T) {
	RequirePrivileges(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	r, err := NewReference()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	seg := r.Segment
	prefix := seg.Prefix()
	if !regexp.MustCompile(`^xlb[0-9a-f]{6}$`).MatchString(prefix) {
		t.Errorf("prefix %q does not look like xlb + 6 hex digits", prefix)
	}
	if got := pinned(t, prefix); len(got) != 5 {
		t.Errorf("pinned namespaces = %v, want bridge + 4 hosts", got)
	}
	if got := seg.Hosts(); len(got) != 4 || got[0] != r.Client || got[3] != r.RS2 {
		t.Errorf("Hosts() = %v", got)
	}
	if r.Client.NSName != prefix+"-client" {
		t.Errorf("client netns = %q", r.Client.NSName)
	}

	checkRootNamespaceUntouched(t, seg)
	for _, h := range seg.Hosts() {
		checkHostSide(t, h)
	}
	checkBridgeSide(t, seg)

	if err := r.ServeBackends(":80", ":9000"); err != nil {
		t.Fatal(err)
	}
	checkHTTP(t, r.Client, "http://172.19.0.2/", "rs-1\n", false)
	checkHTTP(t, r.Client, "http://172.19.0.3/", "rs-2\n", true)
	checkUDPEcho(t, r.Client, "172.19.0.3:9000", "rs-2:")

	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if got := pinned(t, prefix); len(got) != 0 {
		t.Errorf("namespaces left after Close: %v", got)
	}
	if err := r.Client.Do(func() error { return nil }); !errors.Is(err, errClosed) {
		t.Errorf("Do after Close = %v, want errClosed", err)
	}
	if _, err := seg.AddHost("late", netip.MustParseAddr("172.19.0.99")); !errors.Is(err, errClosed) {
		t.Errorf("AddHost after Close = %v, want errClosed", err)
	}
	checkThreads(t)
}

// checkRootNamespaceUntouched makes sure none of our interfaces is visible
// in the namespace the tests run in.
func checkRootNamespaceUntouched(t *testing.T, seg *Segment) {
	t.Helper()
	links, err := netlink.LinkList()
	if err != nil {
		t.Fatalf("list root links: %v", err)
	}
	macs := map[string]string{}
	for _, h := range seg.Hosts() {
		macs[h.MAC.String()] = h.Name
		macs[h.PeerMAC.String()] = h.Name
	}
	for _, l := range links {
		a := l.Attrs()
		if strings.HasPrefix(a.Name, seg.Prefix()) {
			t.Errorf("root namespace has %s", a.Name)
		}
		if owner, ok := macs[a.HardwareAddr.String()]; ok {
			t.Errorf("root namespace has %s with the MAC of host %s", a.Name, owner)
		}
	}
}

func checkHostSide(t *testing.T, h *Host) {
	t.Helper()
	link, err := h.Link()
	if err != nil {
		t.Fatal(err)
	}
	a := link.Attrs()
	if a.Name != "eth0" || h.IfName != "eth0" {
		t.Errorf("%s: interface %q / IfName %q, want eth0", h.Name, a.Name, h.IfName)
	}
	if a.Index != h.Ifindex() {
		t.Errorf("%s: ifindex %d, Ifindex() %d", h.Name, a.Index, h.Ifindex())
	}
	if !bytes.Equal(a.HardwareAddr, h.MAC) {
		t.Errorf("%s: MAC %s, want %s", h.Name, a.HardwareAddr, h.MAC)
	}
	if a.Flags&(1<<0) == 0 { // net.FlagUp
		t.Errorf("%s: eth0 is down", h.Name)
	}
	if a.Xdp != nil && a.Xdp.Attached {
		t.Errorf("%s: eth0 unexpectedly carries XDP program %d", h.Name, a.Xdp.ProgId)
	}
	err = h.Do(func() error {
		addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
		if err != nil {
			return err
		}
		want := netip.PrefixFrom(h.Addr, 16)
		found := false
		for _, ad := range addrs {
			if p, ok := netip.AddrFromSlice(ad.IP); ok && netip.PrefixFrom(p.Unmap(), maskBits(ad)) == want {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("eth0 addresses %v lack %s", addrs, want)
		}
		v6, err := os.ReadFile("/proc/sys/net/ipv6/conf/eth0/disable_ipv6")
		if err == nil && strings.TrimSpace(string(v6)) != "1" {
			return fmt.Errorf("IPv6 still enabled on eth0")
		}
		return checkTxOff("eth0")
	})
	if err != nil {
		t.Errorf("%s: %v", h.Name, err)
	}
}

func maskBits(a netlink.Addr) int {
	ones, _ := a.Mask.Size()
	return ones
}

func checkTxOff(ifname string) error {
	feats, err := TxChecksumFeatures(ifname)
	if err != nil {
		return err
	}
	if _, ok := feats["tx-checksum-ip-generic"]; !ok {
		return fmt.Errorf("%s: no tx-checksum-ip-generic feature in %v", ifname, feats)
	}
	for name, on := range feats {
		if on {
			return fmt.Errorf("%s: %s is still on", ifname, name)
		}
	}
	return nil
}

func checkBridgeSide(t *testing.T, seg *Segment) {
	t.Helper()
	err := seg.Do(func() error {
		br, err := netlink.LinkByName(seg.BridgeName())
		if err != nil {
			return err
		}
		for _, h := range seg.Hosts() {
			link, err := netlink.LinkByName(h.PeerName)
			if err != nil {
				return err
			}
			a := link.Attrs()
			if a.MasterIndex != br.Attrs().Index {
				return fmt.Errorf("%s: master %d, want bridge %d", a.Name, a.MasterIndex, br.Attrs().Index)
			}
			if !bytes.Equal(a.HardwareAddr, h.PeerMAC) {
				return fmt.Errorf("%s: MAC %s, want %s", a.Name, a.HardwareAddr, h.PeerMAC)
			}
			if a.Xdp == nil || !a.Xdp.Attached || a.Xdp.AttachMode != nl.XDP_ATTACHED_DRV || a.Xdp.ProgId == 0 {
				return fmt.Errorf("%s: no native XDP program attached (%+v)", a.Name, a.Xdp)
			}
			if err := checkTxOff(h.PeerName); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func checkHTTP(t *testing.T, from *Host, url, want string, keepAlive bool) {
	t.Helper()
	c := from.HTTPClient(keepAlive)
	defer c.CloseIdleConnections()
	for i := 0; i < 3; i++ {
		resp, err := c.Get(url)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", url, from.Name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s from %s: %v", url, from.Name, err)
		}
		if string(body) != want {
			t.Fatalf("GET %s from %s = %q, want %q", url, from.Name, body, want)
		}
	}
}

func checkUDPEcho(t *testing.T, from *Host, addr, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := from.DialContext(ctx, "udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatalf("udp write to %s: %v", addr, err)
	}
	buf := make([]byte, 100)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatalf("udp read from %s: %v", addr, err)
	}
	if got, want := string(buf[:n]), prefix+"ping"; got != want {
		t.Fatalf("udp echo from %s = %q, want %q", addr, got, want)
	}
}

func TestTwoSegmentsConcurrently(t *testing.T) {
	RequirePrivileges(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	// Same subnet and host names on purpose: only the prefix separates them.
	subnet := netip.MustParsePrefix("10.77.0.0/24")
	segs := make([]*Segment, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range segs {
		wg.Go(func() {
			seg, err := NewSegment(subnet)
			if err != nil {
				errs[i] = err
				return
			}
			segs[i] = seg
			for j, name := range []string{"a", "b"} {
				if _, err := seg.AddHost(name, netip.AddrFrom4([4]byte{10, 77, 0, byte(j + 1)})); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, s := range segs {
			if s != nil {
				s.Close()
			}
		}
	}()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if segs[0].Prefix() == segs[1].Prefix() {
		t.Fatalf("both segments got prefix %s", segs[0].Prefix())
	}
	for _, s := range segs {
		if _, err := s.Hosts()[1].ServeHTTP(":8080", s.Prefix()); err != nil {
			t.Fatal(err)
		}
	}
	// Each client must reach its own segment's server, proving isolation.
	for _, s := range segs {
		checkHTTP(t, s.Hosts()[0], "http://10.77.0.2:8080/", s.Prefix()+"\n", false)
	}
	for _, s := range segs {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if got := pinned(t, s.Prefix()); len(got) != 0 {
			t.Errorf("namespaces left after Close: %v", got)
		}
	}
	checkThreads(t)
}

func TestProcesses(t *testing.T) {
	RequirePrivileges(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	seg, err := NewSegment(netip.MustParsePrefix("10.78.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	h, err := seg.AddHost("h", netip.MustParseAddr("10.78.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	var inside string
	if err := h.Do(func() (err error) {
		inside, err = os.Readlink("/proc/thread-self/ns/net")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if inside == rootNetns {
		t.Fatal("Do did not switch namespace")
	}

	ctx := context.Background()
	cmd := h.Command(ctx, "readlink", "/proc/self/ns/net")
	var out bytes.Buffer
	cmd.Stdout = &out
	p, err := h.StartCmd(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Wait(); err != nil {
		t.Fatalf("readlink: %v", err)
	}
	if got := strings.TrimSpace(out.String()); got != inside {
		t.Errorf("child runs in %s, want %s", got, inside)
	}

	// A child that forks a grandchild: Close must kill the whole group.
	sleeper, err := h.Start(ctx, "sh", "-c", "sleep 1000 & sleep 1000")
	if err != nil {
		t.Fatal(err)
	}
	bad := h.Command(ctx, "true")
	bad.SysProcAttr.Pdeathsig = syscall.SIGKILL
	if _, err := h.StartCmd(bad); err == nil {
		t.Error("StartCmd accepted Pdeathsig")
	}

	start := time.Now()
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-sleeper.Done():
	default:
		t.Fatal("Close returned before the process was reaped")
	}
	if err := sleeper.Wait(); err == nil || time.Since(start) > 5*time.Second {
		t.Errorf("sleeper: err=%v after %v, want killed promptly", err, time.Since(start))
	}
	// The grandchild may linger briefly as a zombie until its new parent
	// reaps it; what matters is that nothing in the group still runs.
	if live := liveGroupMembers(sleeper.Cmd.Process.Pid); len(live) != 0 {
		t.Errorf("process group %d still running after Close: %v", sleeper.Cmd.Process.Pid, live)
	}
	checkThreads(t)
}

func TestDoPropagatesPanicAndErrors(t *testing.T) {
	RequirePrivileges(t)
	seg, err := NewSegment(netip.MustParsePrefix("10.79.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	h, err := seg.AddHost("h", netip.MustParseAddr("10.79.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	sentinel := errors.New("sentinel")
	if err := h.Do(func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Errorf("Do returned %v, want sentinel", err)
	}
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Errorf("recovered %v, want boom", r)
			}
		}()
		h.Do(func() error { panic("boom") })
	}()
	if _, err := h.DialContext(context.Background(), "tcp", "localhost:80"); err == nil {
		t.Error("DialContext accepted a host name")
	}
	if err := h.AddAddr(netip.MustParsePrefix("10.79.0.200/32")); err != nil {
		t.Fatal(err)
	}
	l, err := h.Listen("tcp", "10.79.0.200:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	seg.Close()
	checkThreads(t)
}

func TestValidation(t *testing.T) {
	RequirePrivileges(t)
	for _, p := range []string{"fd00::/64", "10.80.0.0/31"} {
		if s, err := NewSegment(netip.MustParsePrefix(p)); err == nil {
			s.Close()
			t.Errorf("NewSegment(%s) succeeded", p)
		}
	}
	seg, err := NewSegment(netip.MustParsePrefix("10.80.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if _, err := seg.AddHost("a", netip.MustParseAddr("10.80.0.1")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, addr string }{
		{"", "10.80.0.2"},
		{"Upper", "10.80.0.2"},
		{"much-too-long-name", "10.80.0.2"},
		{"b", "10.81.0.2"},
		{"b", "10.80.0.0"},
		{"b", "10.80.0.255"},
		{"b", "10.80.0.1"}, // taken by a
		{"a", "10.80.0.2"}, // name taken
	} {
		if _, err := seg.AddHost(c.name, netip.MustParseAddr(c.addr)); err == nil {
			t.Errorf("AddHost(%q, %s) succeeded", c.name, c.addr)
		}
	}
	if got := pinned(t, seg.Prefix()); len(got) != 2 {
		t.Errorf("pinned = %v, want bridge + a", got)
	}
}

func TestCleanupOnError(t *testing.T) {
	RequirePrivileges(t)
	defer func() { failpointHook = nil }()
	injected := errors.New("injected")

	for _, step := range []string{"segment-netns", "segment-bridge"} {
		var prefix string
		failpointHook = func(p, s string) error {
			prefix = p
			if s == step {
				return injected
			}
			return nil
		}
		if s, err := NewSegment(netip.MustParsePrefix("10.82.0.0/24")); !errors.Is(err, injected) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("%s: NewSegment err = %v", step, err)
		}
		if got := pinned(t, prefix); prefix == "" || len(got) != 0 {
			t.Errorf("%s: left behind %v (prefix %q)", step, got, prefix)
		}
	}
	failpointHook = nil

	seg, err := NewSegment(netip.MustParsePrefix("10.82.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	for _, step := range []string{"host-netns", "host-veth", "host-if"} {
		failpointHook = func(_, s string) error {
			if s == step {
				return injected
			}
			return nil
		}
		if _, err := seg.AddHost("b", netip.MustParseAddr("10.82.0.2")); !errors.Is(err, injected) {
			t.Fatalf("%s: AddHost err = %v", step, err)
		}
		failpointHook = nil
		if got := pinned(t, seg.Prefix()); len(got) != 1 {
			t.Errorf("%s: pinned = %v, want only the bridge", step, got)
		}
		err := seg.Do(func() error {
			links, err := netlink.LinkList()
			if err != nil {
				return err
			}
			for _, l := range links {
				if l.Attrs().Name != "lo" && l.Attrs().Name != seg.BridgeName() {
					return fmt.Errorf("leftover link %s", l.Attrs().Name)
				}
			}
			return nil
		})
		if err != nil {
			t.Errorf("%s: %v", step, err)
		}
	}
	// The names must be free again.
	if _, err := seg.AddHost("b", netip.MustParseAddr("10.82.0.2")); err != nil {
		t.Fatal(err)
	}
	if len(seg.Hosts()) != 1 {
		t.Errorf("Hosts() = %v", seg.Hosts())
	}
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
	checkThreads(t)
}

// liveGroupMembers lists the non-zombie processes in process group pgid.
func liveGroupMembers(pgid int) []string {
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	var live []string
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// Fields after the parenthesised comm: state ppid pgrp ...
		rest := string(b[bytes.LastIndexByte(b, ')')+1:])
		f := strings.Fields(rest)
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if f[2] == fmt.Sprint(pgid) {
			live = append(live, d+" "+f[0])
		}
	}
	return live
}
