package backendprep

import (
	"fmt"
	"strings"
	"testing"
)

// host builds a conf snapshot from "dir.setting=value" words.
func host(t *testing.T, spec string) conf {
	t.Helper()
	c := conf{}
	for _, w := range strings.Fields(spec) {
		k, v, ok := strings.Cut(w, "=")
		dir, setting, ok2 := strings.Cut(k, ":")
		if !ok || !ok2 || len(v) != 1 {
			t.Fatalf("bad spec word %q", w)
		}
		c[confKey{dir, setting}] = int(v[0] - '0')
	}
	return c
}

// A host as a fresh kernel has it, with one interface and its settings
// at 0, and tunl0 when asked for.
const fresh = "all:arp_ignore=0 all:arp_announce=0 all:rp_filter=0 " +
	"default:arp_ignore=0 default:arp_announce=0 default:rp_filter=0 " +
	"lo:arp_ignore=0 lo:arp_announce=0 lo:rp_filter=0 " +
	"eth0:arp_ignore=0 eth0:arp_announce=0 eth0:rp_filter=0 "

// TestPlanSysctls: each setting changes only where the value the kernel
// applies, the larger of all's and the interface's, does not do the job.
func TestPlanSysctls(t *testing.T) {
	const looser = " (loose: strict drops clients whose route back leaves by another interface)"
	const noAddr = " (tunl0 has no address: any filter drops what comes out of it, and the larger of all's and tunl0's counts)"
	for _, tc := range []struct {
		name string
		conf string // on top of fresh
		o    Options
		want []string
	}{
		{name: "l2 fresh", o: Options{Mode: DSRL2}, want: []string{
			"net.ipv4.conf.all.arp_ignore: 0 -> 1",
			"net.ipv4.conf.all.arp_announce: 0 -> 2",
		}},
		{name: "l2 ready", conf: "all:arp_ignore=1 all:arp_announce=2", o: Options{Mode: DSRL2}, want: []string{
			"already so: net.ipv4.conf.all.arp_ignore is 1",
			"already so: net.ipv4.conf.all.arp_announce is 2",
		}},
		// 2 and 8 also keep the host from answering for the VIPs: kept.
		{name: "l2 stricter kept", conf: "all:arp_ignore=8 all:arp_announce=2 eth0:arp_ignore=2", o: Options{Mode: DSRL2}, want: []string{
			"already so: net.ipv4.conf.all.arp_ignore is 8",
			"already so: net.ipv4.conf.all.arp_announce is 2",
		}},
		// An interface's own 3 or 5 outweighs all's 1 and would answer;
		// lo does not matter.
		{name: "l2 interface outweighs", conf: "all:arp_ignore=1 all:arp_announce=2 eth0:arp_ignore=3 default:arp_ignore=5 lo:arp_ignore=3 eth0:arp_announce=3",
			o: Options{Mode: DSRL2}, want: []string{
				"already so: net.ipv4.conf.all.arp_ignore is 1",
				"net.ipv4.conf.default.arp_ignore: 5 -> 1 (the larger of all's and default's counts, and 5 would answer ARP for the VIPs)",
				"net.ipv4.conf.eth0.arp_ignore: 3 -> 1 (the larger of all's and eth0's counts, and 3 would answer ARP for the VIPs)",
				"already so: net.ipv4.conf.all.arp_announce is 2",
				"net.ipv4.conf.eth0.arp_announce: 3 -> 2 (the larger of all's and eth0's counts, and 3 would announce the VIPs in ARP requests)",
			}},
		{name: "l2 all 3", conf: "all:arp_ignore=3 all:arp_announce=1", o: Options{Mode: DSRL2}, want: []string{
			"net.ipv4.conf.all.arp_ignore: 3 -> 1",
			"net.ipv4.conf.all.arp_announce: 1 -> 2",
		}},
		// dsr-l2 leaves rp_filter alone, strict or not.
		{name: "l2 strict kept", conf: "all:arp_ignore=1 all:arp_announce=2 all:rp_filter=1", o: Options{Mode: DSRL2}, want: []string{
			"already so: net.ipv4.conf.all.arp_ignore is 1",
			"already so: net.ipv4.conf.all.arp_announce is 2",
		}},
		{name: "ipip off", conf: "all:arp_ignore=1 all:arp_announce=2", o: Options{Mode: DSRIPIP}, want: []string{
			"already so: net.ipv4.conf.all.arp_ignore is 1",
			"already so: net.ipv4.conf.all.arp_announce is 2",
			"already so: no interface filters reverse paths strictly (rp_filter 1)",
		}},
		// all's 1 makes every interface strict: each gets 2, which
		// outweighs it; all stays.
		{name: "ipip all strict", conf: "all:arp_ignore=1 all:arp_announce=2 all:rp_filter=1 default:rp_filter=1 lo:rp_filter=1", o: Options{Mode: DSRIPIP}, want: []string{
			"already so: net.ipv4.conf.all.arp_ignore is 1",
			"already so: net.ipv4.conf.all.arp_announce is 2",
			"net.ipv4.conf.default.rp_filter: 1 -> 2" + looser,
			"net.ipv4.conf.eth0.rp_filter: 0 -> 2" + looser,
		}},
		{name: "gue loose kept", conf: "all:arp_ignore=1 all:arp_announce=2 all:rp_filter=2 eth0:rp_filter=1", o: Options{Mode: DSRGUE}, want: []string{
			"already so: net.ipv4.conf.all.arp_ignore is 1",
			"already so: net.ipv4.conf.all.arp_announce is 2",
			"already so: no interface filters reverse paths strictly (rp_filter 1)",
		}},
		// tunl0 needs 0, so all 0; eth0 keeps the 2 it had from all,
		// eth1 gets loose, eth2 stays off.
		{name: "ipip kernel", conf: "all:arp_ignore=1 all:arp_announce=2 all:rp_filter=2 tunl0:rp_filter=2 eth1:rp_filter=1 eth2:rp_filter=0",
			o: Options{Mode: DSRIPIP, KernelDecap: true}, want: []string{
				"already so: net.ipv4.conf.all.arp_ignore is 1",
				"already so: net.ipv4.conf.all.arp_announce is 2",
				"net.ipv4.conf.default.rp_filter: 0 -> 2 (keeps the filter default had from all, which goes to 0)",
				"net.ipv4.conf.eth0.rp_filter: 0 -> 2 (keeps the filter eth0 had from all, which goes to 0)",
				"net.ipv4.conf.eth1.rp_filter: 1 -> 2 (keeps the filter eth1 had from all, which goes to 0)",
				"net.ipv4.conf.eth2.rp_filter: 0 -> 2 (keeps the filter eth2 had from all, which goes to 0)",
				"net.ipv4.conf.all.rp_filter: 2 -> 0" + noAddr,
				"net.ipv4.conf.tunl0.rp_filter: 2 -> 0" + noAddr,
			}},
		{name: "ipip kernel strict", conf: "all:arp_ignore=1 all:arp_announce=2 all:rp_filter=1 tunl0:rp_filter=0 eth1:rp_filter=2",
			o: Options{Mode: DSRIPIP, KernelDecap: true}, want: []string{
				"already so: net.ipv4.conf.all.arp_ignore is 1",
				"already so: net.ipv4.conf.all.arp_announce is 2",
				"net.ipv4.conf.default.rp_filter: 0 -> 2" + looser,
				"net.ipv4.conf.eth0.rp_filter: 0 -> 2" + looser,
				"net.ipv4.conf.all.rp_filter: 1 -> 0" + noAddr,
				"already so: net.ipv4.conf.tunl0.rp_filter is 0",
			}},
		{name: "gue kernel ready", conf: "all:arp_ignore=1 all:arp_announce=2 tunl0:rp_filter=0 eth0:rp_filter=2",
			o: Options{Mode: DSRGUE, KernelDecap: true}, want: []string{
				"already so: net.ipv4.conf.all.arp_ignore is 1",
				"already so: net.ipv4.conf.all.arp_announce is 2",
				"already so: net.ipv4.conf.all.rp_filter is 0",
				"already so: net.ipv4.conf.tunl0.rp_filter is 0",
			}},
		// A VLAN's sysctl name has a slash for the dot.
		{name: "vlan name", conf: "all:arp_ignore=1 all:arp_announce=2 eth0.100:arp_ignore=4", o: Options{Mode: DSRL2}, want: []string{
			"already so: net.ipv4.conf.all.arp_ignore is 1",
			"net.ipv4.conf.eth0/100.arp_ignore: 4 -> 1 (the larger of all's and eth0.100's counts, and 4 would answer ARP for the VIPs)",
			"already so: net.ipv4.conf.all.arp_announce is 2",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range planSysctls(host(t, fresh+tc.conf), tc.o) {
				got = append(got, s.String())
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("plan:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// TestPlanSysctlsDoesTheJob checks the property behind every plan: after
// it, the value the kernel applies on each interface (the larger of all's
// and its own) keeps the VIPs out of ARP and, in the tunnel modes, is not
// strict; with the kernel's decapsulation tunl0 applies 0; and no
// interface other than tunl0 filters less than it did, but for strict
// becoming loose. Every combination of values 0-9 on all and one
// interface is tried.
func TestPlanSysctlsDoesTheJob(t *testing.T) {
	for _, o := range []Options{{Mode: DSRL2}, {Mode: DSRIPIP}, {Mode: DSRGUE, KernelDecap: true}} {
		for all := range 10 {
			for own := range 10 {
				c := conf{}
				for _, s := range []string{arpIgnore, arpAnnounce, rpFilter} {
					c[confKey{"all", s}] = all
					c[confKey{"eth0", s}] = own
					c[confKey{tunnelDev, s}] = own
				}
				before := func(s, d string) int { return max(c[confKey{"all", s}], c[confKey{d, s}]) }
				after := conf{}
				for k, v := range c {
					after[k] = v
				}
				for _, s := range planSysctls(c, o) {
					if s.Note == "" {
						after[confKey{s.Dir, s.Setting}] = s.To
					}
				}
				applied := func(s, d string) int { return max(after[confKey{"all", s}], after[confKey{d, s}]) }
				where := func() string {
					return fmt.Sprintf("%s (kernel decap %v) all=%d own=%d", o.Mode, o.KernelDecap, all, own)
				}
				if !ignoresVIPs(applied(arpIgnore, "eth0")) || !hidesVIPs(applied(arpAnnounce, "eth0")) {
					t.Errorf("%s: eth0 applies arp_ignore %d, arp_announce %d", where(), applied(arpIgnore, "eth0"), applied(arpAnnounce, "eth0"))
				}
				if !o.Mode.tunnelled() {
					if after[confKey{"all", rpFilter}] != all || after[confKey{"eth0", rpFilter}] != own {
						t.Errorf("%s: rp_filter changed", where())
					}
					continue
				}
				was, now := before(rpFilter, "eth0"), applied(rpFilter, "eth0")
				if now == 1 || (was != 1 && now != was) || (was == 1 && now != 2) {
					t.Errorf("%s: eth0 applied rp_filter %d, now %d", where(), was, now)
				}
				if o.KernelDecap && applied(rpFilter, tunnelDev) != 0 {
					t.Errorf("%s: tunl0 applies rp_filter %d", where(), applied(rpFilter, tunnelDev))
				}
			}
		}
	}
}
