package backendprep

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/xdplb/xdplb/internal/hostnet"
)

// The net.ipv4.conf settings apply looks at. For each of them the kernel
// applies the larger of all's value and the interface's own.
const (
	arpIgnore   = "arp_ignore"
	arpAnnounce = "arp_announce"
	rpFilter    = "rp_filter"
)

// loopback is where the VIPs go; its settings do not matter (no ARP, and
// its packets skip the reverse-path filter).
const loopback = "lo"

// tunnelDev is the kernel's catch-all ipip device, which takes in IPIP
// packets from any source and GUE packets once fou has opened them.
const tunnelDev = "tunl0"

type confKey struct{ dir, setting string }

// conf is a snapshot of the settings apply looks at, in every directory
// of net.ipv4.conf.
type conf map[confKey]int

// readConf takes the snapshot in the calling thread's namespace. An
// interface that goes away while it is read is left out.
func readConf() (conf, error) {
	dirs, err := hostnet.ConfDirs()
	if err != nil {
		return nil, err
	}
	c := conf{}
	for _, d := range dirs {
		for _, s := range []string{arpIgnore, arpAnnounce, rpFilter} {
			v, err := hostnet.Conf(d, s)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			c[confKey{d, s}] = v
		}
	}
	return c, nil
}

// dirs are the directories other than all and lo that have setting, in
// order: default first, then the interfaces by name.
func (c conf) dirs(setting string, skip ...string) []string {
	var out []string
	for k := range c {
		if k.setting == setting && k.dir != "all" && k.dir != loopback && !slices.Contains(skip, k.dir) {
			out = append(out, k.dir)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		switch {
		case a == b:
			return 0
		case a == "default":
			return -1
		case b == "default":
			return 1
		case a < b:
			return -1
		}
		return 1
	})
	return out
}

// sysctlStep is one setting apply changes, or a note that something is
// already as it must be.
type sysctlStep struct {
	Dir, Setting string
	From, To     int
	// Why explains a change that is not obvious from its name.
	Why string
	// Note, if not empty, is what is already so; the rest is unused.
	Note string
}

func (s sysctlStep) String() string {
	if s.Note != "" {
		return "already so: " + s.Note
	}
	line := fmt.Sprintf("%s: %d -> %d", hostnet.ConfName(s.Dir, s.Setting), s.From, s.To)
	if s.Why != "" {
		line += " (" + s.Why + ")"
	}
	return line
}

// planSysctls lists what o needs changed in c, in the order to change
// it. It changes no more than it must: a value that already does the
// job stays, even if it is not the one apply would pick.
func planSysctls(c conf, o Options) []sysctlStep {
	var p []sysctlStep
	p = append(p, planARP(c)...)
	if o.Mode.tunnelled() {
		p = append(p, planRPFilter(c, o.KernelDecap)...)
	}
	return p
}

// ignoresVIPs reports whether arp_ignore v keeps an interface from
// answering ARP for an address on lo: 1 answers only for addresses of the
// interface the request came in on, 2 also wants the asker in their
// subnet, 8 never answers. 0 answers for any local address, 3 for any but
// those of host scope (a VIP on lo has global scope), and 4-7 and above
// 8 act as 0.
func ignoresVIPs(v int) bool { return v == 1 || v == 2 || v == 8 }

// hidesVIPs reports whether arp_announce v keeps the host from naming a
// VIP as the sender of its own ARP requests: only 2, the best address of
// the outgoing interface. 0 takes the source of the packet waiting (a
// reply from the VIP), 1 does when the target's subnet allows, and other
// values act as 0.
func hidesVIPs(v int) bool { return v == 2 }

// planARP sets all's arp_ignore to 1 and arp_announce to 2 where they do
// not already do the job, and lowers an interface's own value where it
// would win over all's and undo it.
func planARP(c conf) []sysctlStep {
	var p []sysctlStep
	for _, s := range []struct {
		setting string
		want    int
		ok      func(int) bool
		harm    string
	}{
		{arpIgnore, 1, ignoresVIPs, "answer ARP for the VIPs"},
		{arpAnnounce, 2, hidesVIPs, "announce the VIPs in ARP requests"},
	} {
		all := c[confKey{"all", s.setting}]
		if s.ok(all) {
			p = append(p, sysctlStep{Note: fmt.Sprintf("%s is %d", hostnet.ConfName("all", s.setting), all)})
		} else {
			p = append(p, sysctlStep{Dir: "all", Setting: s.setting, From: all, To: s.want})
			all = s.want
		}
		for _, d := range c.dirs(s.setting) {
			own := c[confKey{d, s.setting}]
			if !s.ok(max(all, own)) {
				p = append(p, sysctlStep{Dir: d, Setting: s.setting, From: own, To: s.want,
					Why: fmt.Sprintf("the larger of all's and %s's counts, and %d would %s", d, own, s.harm)})
			}
		}
	}
	return p
}

// planRPFilter relaxes the reverse-path filter for tunnelled packets.
//
// No interface stays strict (1): an interface where the tunnels arrive
// whose route back to the clients leaves by another interface (common
// when the balancers are in another network) would drop every client.
// Loose (2) still drops sources with no route at all. Off stays off.
//
// With the kernel's decapsulation the client's packet comes in on tunl0,
// which has no address, and for an interface without one both strict and
// loose drop every packet whose source is not routed through it: tunl0
// must be 0, and since the larger of all's and tunl0's counts, all too.
// Every other interface then gets its own value raised to what it had
// from all, so that none loses its filter.
func planRPFilter(c conf, kernelDecap bool) []sysctlStep {
	var p []sysctlStep
	all := c[confKey{"all", rpFilter}]
	var skip []string
	if kernelDecap {
		skip = append(skip, tunnelDev)
	}
	for _, d := range c.dirs(rpFilter, skip...) {
		own := c[confKey{d, rpFilter}]
		was := max(all, own)
		want := was
		if was == 1 {
			want = 2
		}
		switch {
		case was == 1:
			// Without kernelDecap all stays: 2 outweighs its 1.
			p = append(p, sysctlStep{Dir: d, Setting: rpFilter, From: own, To: 2,
				Why: "loose: strict drops clients whose route back leaves by another interface"})
		case kernelDecap && own != want:
			p = append(p, sysctlStep{Dir: d, Setting: rpFilter, From: own, To: want,
				Why: fmt.Sprintf("keeps the filter %s had from all, which goes to 0", d)})
		}
	}
	if !kernelDecap {
		if len(p) == 0 {
			p = append(p, sysctlStep{Note: "no interface filters reverse paths strictly (rp_filter 1)"})
		}
		return p
	}
	why := tunnelDev + " has no address: any filter drops what comes out of it, and the larger of all's and " + tunnelDev + "'s counts"
	if all != 0 {
		p = append(p, sysctlStep{Dir: "all", Setting: rpFilter, From: all, To: 0, Why: why})
	} else {
		p = append(p, sysctlStep{Note: hostnet.ConfName("all", rpFilter) + " is 0"})
	}
	if own, ok := c[confKey{tunnelDev, rpFilter}]; ok && own != 0 {
		p = append(p, sysctlStep{Dir: tunnelDev, Setting: rpFilter, From: own, To: 0, Why: why})
	} else if ok {
		p = append(p, sysctlStep{Note: hostnet.ConfName(tunnelDev, rpFilter) + " is 0"})
	}
	return p
}
