package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/testbed"
)

// TestBackendPrepErrors: bad input is refused naming the flag, before
// anything is looked at (so without root).
func TestBackendPrepErrors(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	for _, tc := range []struct {
		want string
		args []string
	}{
		{"--vip: missing: give the VIPs", []string{"apply", "--mode", "dsr-l2"}},
		{`--vip: "10.0.0.300" is not an IPv4 address`, []string{"apply", "--vip", "10.0.0.1,10.0.0.300", "--mode", "dsr-l2"}},
		{"--vip: 2001:db8::1 is an IPv6 address; IPv6 is not supported yet", []string{"apply", "--vip", "2001:db8::1", "--mode", "dsr-l2"}},
		{`--mode: "dsr-gre" is not a DSR mode (accepted: dsr-l2, dsr-ipip, dsr-gue)`, []string{"apply", "--vip", "10.0.0.1", "--mode", "dsr-gre"}},
		{"--mode: missing: one of dsr-l2, dsr-ipip, dsr-gue", []string{"apply", "--vip", "10.0.0.1"}},
		{"--gue-port: 70000 is not a port (1-65535)", []string{"apply", "--vip", "10.0.0.1", "--mode", "dsr-gue", "--kernel-decap", "--gue-port", "70000"}},
		{"--gue-port: it is the port of the kernel's GUE receiver, made with --kernel-decap only", []string{"apply", "--vip", "10.0.0.1", "--mode", "dsr-gue", "--gue-port", "7000"}},
		{"--kernel-decap: dsr-l2 sends the client's packet as it is", []string{"apply", "--vip", "10.0.0.1", "--mode", "dsr-l2", "--kernel-decap"}},
		{"unknown command \"redo\"", []string{"redo"}},
	} {
		wantErr(t, "/nonexistent.sock", tc.want, append(append([]string{"backend-prep"}, tc.args...), "--state", state)...)
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("a refused apply wrote a record")
	}
}

// TestBackendPrepHelp: each backend-prep command says what it does and
// shows how it is used.
func TestBackendPrepHelp(t *testing.T) {
	cmd, _, err := newRootCmd().Find([]string{"backend-prep"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(cmd.Commands(), cmd) {
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("xdplb %s lacks a short or long description or an example", c.CommandPath())
		}
	}
}

// TestBackendPrepCommands runs apply, status and undo as an operator
// would, inside a throw-away namespace.
func TestBackendPrepCommands(t *testing.T) {
	testbed.RequirePrivileges(t)
	seg, err := testbed.NewSegment(netip.MustParsePrefix("10.79.0.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	h, err := seg.AddHost("backend", netip.MustParseAddr("10.79.0.2"))
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "xdplb", "backend-prep.json")
	err = h.Do(func() error {
		for _, key := range []string{"arp_ignore", "arp_announce"} {
			for _, dir := range []string{"all", "default", "eth0"} {
				if err := os.WriteFile(filepath.Join("/proc/sys/net/ipv4/conf", dir, key), []byte("0"), 0o644); err != nil {
					return err
				}
			}
		}
		for _, step := range []struct {
			args []string
			want string
		}{
			{[]string{"apply", "--vip", "192.0.2.10,192.0.2.11", "--mode", "dsr-l2"},
				"added 192.0.2.10/32 to lo\nadded 192.0.2.11/32 to lo\nnet.ipv4.conf.all.arp_ignore: 0 -> 1\nnet.ipv4.conf.all.arp_announce: 0 -> 2\n" +
					"recorded in " + state + ": xdplb backend-prep undo puts it all back\n"},
			{[]string{"apply", "--vip", "192.0.2.10", "--mode", "dsr-l2"}, "already so: 192.0.2.10 is on lo\n"},
			{[]string{"status"}, "prepared for dsr-l2; " + state + " records:\n  added 192.0.2.10/32 to lo: in effect\n"},
			{[]string{"status"}, "  net.ipv4.conf.all.arp_announce: 0 -> 2: in effect\n"},
			{[]string{"undo"}, "net.ipv4.conf.all.arp_announce: 2 -> 0 (as before apply)\nnet.ipv4.conf.all.arp_ignore: 1 -> 0 (as before apply)\n" +
				"removed 192.0.2.10/32 from lo\nremoved 192.0.2.11/32 from lo\nremoved " + state + "\n"},
			{[]string{"status"}, "nothing recorded: there is no " + state},
		} {
			got := mustRun(t, "/nonexistent.sock", append(append([]string{"backend-prep"}, step.args...), "--state", state)...)
			if !strings.Contains(got, step.want) {
				t.Errorf("xdplb backend-prep %s:\n%s\nwant:\n%s", strings.Join(step.args, " "), got, step.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
