package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/decap"
	"github.com/xdplb/xdplb/internal/testbed"
)

// TestDecapErrors: bad input is refused naming the flag or the address,
// before anything is looked at (so without root).
func TestDecapErrors(t *testing.T) {
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"--allow: missing: give the addresses the balancers send tunnels from", []string{"attach", "--interface", "eth0"}},
		{`--allow: "10.0.0.300" is not an IP address`, []string{"attach", "--interface", "eth0", "--allow", "10.0.0.1,10.0.0.300"}},
		{"allowed source 2001:db8::1 is not an IPv4 address", []string{"attach", "--interface", "eth0", "--allow", "2001:db8::1"}},
		{"--gue-port: 0 is not a port; leave --gue-port out to take IPIP alone", []string{"attach", "--interface", "eth0", "--allow", "10.0.0.1", "--gue-port", "0"}},
		{`--xdp-mode: XDP mode "offload" is neither native nor generic`, []string{"attach", "--interface", "eth0", "--allow", "10.0.0.1", "--xdp-mode", "offload"}},
		{`required flag(s) "interface" not set`, []string{"attach", "--allow", "10.0.0.1"}},
		{`required flag(s) "interface" not set`, []string{"detach"}},
		{`"a/b" is not an interface name`, []string{"detach", "--interface", "a/b"}},
		{`unknown command "atach"`, []string{"atach"}},
	} {
		wantErr(t, "/nonexistent.sock", tc.want, append([]string{"decap"}, tc.args...)...)
	}
}

// TestDecapHelp: each decap command says what it does and shows how it
// is used.
func TestDecapHelp(t *testing.T) {
	cmd, _, err := newRootCmd().Find([]string{"decap"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(cmd.Commands(), cmd) {
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("xdplb %s lacks a short or long description or an example", c.CommandPath())
		}
	}
}

// TestDecapCommands: attach, status, attach again, detach, detach again,
// inside a throw-away namespace, as an operator reads them.
func TestDecapCommands(t *testing.T) {
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.92.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	h, err := seg.AddHost("backend", netip.MustParseAddr("10.92.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Do(func() error { decap.Detach("eth0"); return nil }) })
	h.Do(func() error {
		for _, step := range []struct {
			args []string
			want string
		}{
			{[]string{"attach", "--interface", "eth0", "--allow", "10.92.0.1,10.92.0.3", "--gue-port", "6080"},
				"decapsulator attached to eth0 (native mode), pinned at " + decap.PinRoot + "/eth0@netns-"},
			{[]string{"attach", "--interface", "eth0", "--allow", "10.92.0.1,10.92.0.3", "--gue-port", "6080"},
				": IPIP and GUE on UDP port 6080 from 10.92.0.1, 10.92.0.3 reach the stack decapsulated\n"},
			{[]string{"status"}, "eth0 (index "},
			{[]string{"status"}, "  tunnels:          IPIP and GUE on UDP port 6080\n  allowed sources:  10.92.0.1, 10.92.0.3\n"},
			{[]string{"attach", "--interface", "eth0", "--allow", "10.92.0.1"}, "decapsulator updated in place on eth0 (native mode)"},
			{[]string{"status"}, "  tunnels:          IPIP\n  allowed sources:  10.92.0.1\n"},
			{[]string{"detach", "--interface", "eth0"}, "decapsulator detached from eth0\n"},
			{[]string{"detach", "--interface", "eth0"}, "the decapsulator is not attached to eth0 (nothing at " + decap.PinRoot + "/eth0@netns-"},
		} {
			args := append([]string{"decap"}, step.args...)
			if got := mustRun(t, "/nonexistent.sock", args...); !strings.Contains(got, step.want) {
				t.Errorf("xdplb %s:\n%s\nwant %q", strings.Join(args, " "), got, step.want)
			}
		}

		mustRun(t, "/nonexistent.sock", "decap", "attach", "--interface", "eth0", "--allow", "10.92.0.1", "--xdp-mode", "generic")
		var all []decap.Attachment
		if err := json.Unmarshal([]byte(mustRun(t, "/nonexistent.sock", "decap", "status", "--json")), &all); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, a := range all {
			if a.Here && a.Interface == "eth0" {
				found = a.Attached && a.Mode == "generic" && len(a.Sources) == 1 && a.Sources[0] == netip.MustParseAddr("10.92.0.1")
			}
		}
		if !found {
			t.Errorf("decap status --json: %+v; want eth0 attached in generic mode", all)
		}
		return nil
	})
}

func TestPrintDecapStatus(t *testing.T) {
	var out strings.Builder
	printDecapStatus(&out, nil)
	if want := "the decapsulator is not attached to any interface (nothing under " + decap.PinRoot + ")\n"; out.String() != want {
		t.Errorf("no attachments:\n%s\nwant:\n%s", out.String(), want)
	}
	out.Reset()
	printDecapStatus(&out, []decap.Attachment{
		{Interface: "eth0", Netns: 4026531840, Here: true, PinDir: decap.PinRoot + "/eth0@netns-4026531840",
			Attached: true, Ifindex: 2, Program: 57, Mode: "native", GUEPort: 6080,
			Sources:  []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")},
			Counters: decap.Counters{Decapsulated: 1200, DroppedSource: 3, DroppedMalformed: 1, NotTunnel: 9000}},
		{Interface: "eth0.100", Netns: 4026531840, Here: true, PinDir: decap.PinRoot + "/eth0:100@netns-4026531840",
			Problem: "its interface is gone, or it was detached by hand (xdplb decap attach attaches it again)",
			Sources: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
		{Interface: "eth0", Netns: 4026532999, PinDir: decap.PinRoot + "/eth0@netns-4026532999",
			Attached: true, Ifindex: 7, Program: 60, Sources: []netip.Addr{netip.MustParseAddr("10.0.0.1")}},
	})
	want := `eth0 (index 2): attached in native mode (program 57), pinned at /sys/fs/bpf/xdplb-decap/eth0@netns-4026531840
  tunnels:          IPIP and GUE on UDP port 6080
  allowed sources:  10.0.0.1, 10.0.0.2
  packets:          1200 decapsulated, 3 dropped from sources not allowed, 1 dropped malformed, 9000 not tunnelled

eth0.100: NOT ATTACHED: its interface is gone, or it was detached by hand (xdplb decap attach attaches it again); pinned at /sys/fs/bpf/xdplb-decap/eth0:100@netns-4026531840
  tunnels:          IPIP
  allowed sources:  10.0.0.1
  packets:          0 decapsulated, 0 dropped from sources not allowed, 0 dropped malformed, 0 not tunnelled

eth0 in network namespace 4026532999 (index 7): attached (program 60), pinned at /sys/fs/bpf/xdplb-decap/eth0@netns-4026532999
  tunnels:          IPIP
  allowed sources:  10.0.0.1
  packets:          0 decapsulated, 0 dropped from sources not allowed, 0 dropped malformed, 0 not tunnelled
`
	if out.String() != want {
		t.Errorf("status:\n%s\nwant:\n%s", out.String(), want)
	}
}
