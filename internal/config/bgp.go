package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/bgp"
)

// BGP announces this node's VIPs and local addresses to routers by BGP,
// so that several nodes serve the same VIPs behind a router's ECMP
// (active-active), or a node serves them across L3. It is on when Peers
// is not empty; the speaker's own fields are internal/bgp's, under the
// same names.
type BGP struct {
	ASN             uint32        `yaml:"asn"`
	RouterID        netip.Addr    `yaml:"router_id"`
	ListenPort      int32         `yaml:"listen_port,omitempty"`
	Peers           []BGPPeer     `yaml:"peers"`
	Communities     []string      `yaml:"communities,omitempty"`
	GracefulRestart bool          `yaml:"graceful_restart"`
	RestartTime     time.Duration `yaml:"restart_time"`
	ShutdownWait    time.Duration `yaml:"shutdown_wait"`
	// MinUpBackends is how many backends each service of a VIP needs up
	// for the VIP to be announced.
	MinUpBackends int `yaml:"min_up_backends"`
	// Nodes are the other nodes of an active-active cluster with their
	// local addresses: while one is silent on the sync channel, a
	// survivor adds its local addresses and announces them, as a backup
	// path, so its connections' replies reach a node that has them.
	Nodes []BGPNode `yaml:"nodes,omitempty"`
}

// BGPNode is another node of the cluster.
type BGPNode struct {
	NodeID         uint8        `yaml:"node_id"`
	LocalAddresses []netip.Addr `yaml:"local_addresses"`
}

// BGPPeer is one router.
type BGPPeer struct {
	Address      netip.Addr    `yaml:"address"`
	ASN          uint32        `yaml:"asn"`
	Port         uint16        `yaml:"port,omitempty"`
	LocalAddress netip.Addr    `yaml:"local_address,omitempty"`
	HoldTime     time.Duration `yaml:"hold_time,omitempty"`
	Keepalive    time.Duration `yaml:"keepalive,omitempty"`
	PasswordFile string        `yaml:"password_file,omitempty"`
	// BFDInterval, if not 0, runs BFD with the router at this interval;
	// a failure is seen after BFDInterval × BFDMultiplier.
	BFDInterval   time.Duration `yaml:"bfd_interval,omitempty"`
	BFDMultiplier uint8         `yaml:"bfd_multiplier,omitempty"`
	Multihop      bool          `yaml:"multihop,omitempty"`
}

// defaultBGP: graceful restart on, so that a hitless restart keeps the
// routes; a VIP needs one backend up.
var defaultBGP = BGP{
	GracefulRestart: true,
	RestartTime:     bgp.DefaultRestartTime,
	ShutdownWait:    bgp.DefaultShutdownWait,
	MinUpBackends:   1,
}

// BGPEnabled reports whether this node announces by BGP.
func (c *Config) BGPEnabled() bool { return len(c.BGP.Peers) > 0 }

// Speaker is the bgp section as internal/bgp takes it, with its defaults.
func (b BGP) Speaker() bgp.Config {
	out := bgp.Config{
		ASN: b.ASN, RouterID: b.RouterID, ListenPort: b.ListenPort, Communities: b.Communities,
		GracefulRestart: bgp.GracefulRestart{Enabled: b.GracefulRestart, RestartTime: b.RestartTime},
		ShutdownWait:    b.ShutdownWait,
	}
	for _, p := range b.Peers {
		sp := bgp.Peer{
			Address: p.Address, ASN: p.ASN, Port: p.Port, LocalAddress: p.LocalAddress,
			HoldTime: p.HoldTime, Keepalive: p.Keepalive, PasswordFile: p.PasswordFile, Multihop: p.Multihop,
		}
		if p.BFDInterval != 0 {
			sp.BFD = &bgp.BFD{Interval: p.BFDInterval, Multiplier: p.BFDMultiplier}
		}
		out.Peers = append(out.Peers, sp)
	}
	out.Defaults()
	return out
}

func (d *decoder) bgp(n *yaml.Node, path string, b *BGP) {
	d.mapping(n, path, fieldDecoders{
		"asn": func(v *yaml.Node, p string) { d.asn(v, p, &b.ASN) },
		"router_id": func(v *yaml.Node, p string) {
			// Empty is unset, as yaml.Marshal writes an unset one.
			if s, ok := d.str(v, p); ok && s == "" {
				b.RouterID = netip.Addr{}
			} else if a, ok := d.addr(v, p); ok {
				b.RouterID = a
			}
		},
		"listen_port": func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a port (1-65535; leave it out for no listener)", 0, 65535); ok {
				b.ListenPort = int32(i)
			}
		},
		"peers": func(v *yaml.Node, p string) {
			b.Peers = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				var peer BGPPeer
				d.bgpPeer(item, ip, &peer)
				b.Peers = append(b.Peers, peer)
			})
		},
		"communities": func(v *yaml.Node, p string) {
			b.Communities = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				if s, ok := d.str(item, ip); ok {
					b.Communities = append(b.Communities, s)
				}
			})
		},
		"graceful_restart": func(v *yaml.Node, p string) {
			if ok, valid := d.boolean(v, p); valid {
				b.GracefulRestart = ok
			}
		},
		"restart_time":  func(v *yaml.Node, p string) { d.durationWithin(v, p, &b.RestartTime, "(1s to 4095s)") },
		"shutdown_wait": func(v *yaml.Node, p string) { d.durationWithin(v, p, &b.ShutdownWait, "(0 to 1h)") },
		"min_up_backends": func(v *yaml.Node, p string) {
			if i, ok := d.integer(v, p, "a backend count (0-65535)", 0, 65535); ok {
				b.MinUpBackends = int(i)
			}
		},
		"nodes": func(v *yaml.Node, p string) {
			b.Nodes = nil
			d.list(v, p, func(item *yaml.Node, ip string) {
				var n BGPNode
				d.mapping(item, ip, fieldDecoders{
					"node_id": func(v *yaml.Node, fp string) {
						if i, ok := d.integer(v, fp, "a node id "+nodeIDBounds, 1, maxNodes); ok {
							n.NodeID = uint8(i)
						}
					},
					"local_addresses": func(v *yaml.Node, fp string) {
						d.list(v, fp, func(a *yaml.Node, ap string) {
							if addr, ok := d.addr(a, ap); ok {
								n.LocalAddresses = append(n.LocalAddresses, addr)
							}
						})
					},
				})
				b.Nodes = append(b.Nodes, n)
			})
		},
	})
}

// asn decodes an AS number; 0, as yaml.Marshal writes an unset one, is
// left to the validation.
func (d *decoder) asn(n *yaml.Node, path string, out *uint32) {
	if i, ok := d.integer(n, path, "an AS number (1-4294967295)", 0, 1<<32-1); ok {
		*out = uint32(i)
	}
}

func (d *decoder) bgpPeer(n *yaml.Node, path string, p *BGPPeer) {
	d.mapping(n, path, fieldDecoders{
		"address": func(v *yaml.Node, fp string) {
			if a, ok := d.addr(v, fp); ok {
				p.Address = a
			}
		},
		"asn": func(v *yaml.Node, fp string) { d.asn(v, fp, &p.ASN) },
		"port": func(v *yaml.Node, fp string) {
			if i, ok := d.integer(v, fp, "a port (1-65535)", 1, 65535); ok {
				p.Port = uint16(i)
			}
		},
		"local_address": func(v *yaml.Node, fp string) {
			if a, ok := d.addr(v, fp); ok {
				p.LocalAddress = a
			}
		},
		"hold_time":    func(v *yaml.Node, fp string) { d.durationWithin(v, fp, &p.HoldTime, "(3s to 65535s)") },
		"keepalive":    func(v *yaml.Node, fp string) { d.durationWithin(v, fp, &p.Keepalive, "(1s to below hold_time)") },
		"bfd_interval": func(v *yaml.Node, fp string) { d.durationWithin(v, fp, &p.BFDInterval, "(10ms or more)") },
		"bfd_multiplier": func(v *yaml.Node, fp string) {
			if i, ok := d.integer(v, fp, "a multiplier (1-255)", 1, 255); ok {
				p.BFDMultiplier = uint8(i)
			}
		},
		"password_file": func(v *yaml.Node, fp string) {
			if s, ok := d.str(v, fp); ok {
				p.PasswordFile = s
			}
		},
		"multihop": func(v *yaml.Node, fp string) {
			if b, ok := d.boolean(v, fp); ok {
				p.Multihop = b
			}
		},
	})
}

// bgp checks the bgp section: the speaker's own checks, each under its
// field's path, and what only the whole configuration knows.
func (ps *problems) bgp(c *Config) {
	if !c.BGPEnabled() {
		if c.BGP.ASN != 0 || c.BGP.RouterID.IsValid() {
			ps.add("bgp.peers", "none; give at least one router to announce to, or remove the bgp section")
		}
		return
	}
	sc := c.BGP.Speaker()
	if err := sc.Validate(); err != nil {
		for _, e := range unjoin(err) {
			path, msg, ok := strings.Cut(e.Error(), ": ")
			if !ok {
				path, msg = "bgp", e.Error()
			}
			ps.add(speakerFields.Replace(path), "%s", msg)
		}
	}
	if c.BGP.MinUpBackends < 0 {
		ps.add("bgp.min_up_backends", "%d is negative", c.BGP.MinUpBackends)
	}
	if c.HAEnabled() {
		ps.add("bgp", "cannot be used with ha.mode %s: with BGP every node serves its VIPs (ha.mode none), "+
			"and the routers choose among them; keep sync for the connections", c.HA.Mode)
	}
	ps.bgpNodes(c)
}

// bgpNodes checks the other nodes whose local addresses this node takes
// over: it learns that one failed from the sync channel.
func (ps *problems) bgpNodes(c *Config) {
	seen := map[uint8]bool{}
	owner := map[netip.Addr]string{}
	for _, a := range c.Local.Addresses {
		owner[a] = "local.addresses"
	}
	for _, s := range c.Services {
		owner[s.VIP] = "a service's vip"
	}
	for i, n := range c.BGP.Nodes {
		path := fmt.Sprintf("bgp.nodes[%d]", i)
		if !c.SyncEnabled() {
			ps.add(path, "needs sync.peers: a failed node is noticed, and its connections are known, through connection sync")
			return
		}
		switch {
		case n.NodeID == 0:
			ps.add(path+".node_id", "missing (a node id %s)", nodeIDBounds)
		case n.NodeID == c.HA.NodeID:
			ps.add(path+".node_id", "%d is this node's own ha.node_id", n.NodeID)
		case seen[n.NodeID]:
			ps.add(path+".node_id", "%d is listed twice", n.NodeID)
		case n.NodeID > c.HA.Nodes:
			ps.add(path+".node_id", "%d is greater than ha.nodes (%d)", n.NodeID, c.HA.Nodes)
		}
		seen[n.NodeID] = true
		if len(n.LocalAddresses) == 0 {
			ps.add(path+".local_addresses", "none; list the node's local.addresses")
		}
		for j, a := range n.LocalAddresses {
			ap := fmt.Sprintf("%s.local_addresses[%d]", path, j)
			if why := unicastIPv4Problem(a); why != "" {
				ps.add(ap, "%s", why)
				continue
			}
			if prev, dup := owner[a]; dup {
				ps.add(ap, "%s is also in %s", a, prev)
			}
			owner[a] = ap
		}
	}
}

// speakerFields renames the speaker's nested fields to this section's
// flat ones.
var speakerFields = strings.NewReplacer(
	"graceful_restart.restart_time", "restart_time",
	".bfd.interval", ".bfd_interval",
	".bfd.multiplier", ".bfd_multiplier",
	".bfd", ".bfd_interval",
)

// unjoin lists the errors errors.Join made err of.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// bgpSection renders the bgp section of c with the fields that differ
// from their defaults; empty without peers.
func bgpSection(c *Config) *yaml.Node {
	b, db := c.BGP, defaultBGP
	m := mapping()
	if !c.BGPEnabled() {
		return m
	}
	setIf(m, "asn", true, strconv.FormatUint(uint64(b.ASN), 10))
	setIf(m, "router_id", b.RouterID.IsValid(), b.RouterID.String())
	setIf(m, "listen_port", b.ListenPort > 0, strconv.Itoa(int(b.ListenPort)))
	peers := &yaml.Node{Kind: yaml.SequenceNode}
	for _, p := range b.Peers {
		pm := mapping()
		setIf(pm, "address", true, p.Address.String())
		setIf(pm, "asn", true, strconv.FormatUint(uint64(p.ASN), 10))
		setIf(pm, "port", p.Port != 0, strconv.Itoa(int(p.Port)))
		setIf(pm, "local_address", p.LocalAddress.IsValid(), p.LocalAddress.String())
		setIf(pm, "hold_time", p.HoldTime != 0, p.HoldTime.String())
		setIf(pm, "keepalive", p.Keepalive != 0, p.Keepalive.String())
		setIf(pm, "password_file", p.PasswordFile != "", p.PasswordFile)
		setIf(pm, "bfd_interval", p.BFDInterval != 0, p.BFDInterval.String())
		setIf(pm, "bfd_multiplier", p.BFDMultiplier != 0, strconv.Itoa(int(p.BFDMultiplier)))
		setIf(pm, "multihop", p.Multihop, "true")
		peers.Content = append(peers.Content, pm)
	}
	set(m, "peers", peers)
	if len(b.Communities) > 0 {
		set(m, "communities", flow(b.Communities))
	}
	setIf(m, "graceful_restart", b.GracefulRestart != db.GracefulRestart, strconv.FormatBool(b.GracefulRestart))
	setIf(m, "restart_time", b.RestartTime != db.RestartTime, b.RestartTime.String())
	setIf(m, "shutdown_wait", b.ShutdownWait != db.ShutdownWait, b.ShutdownWait.String())
	setIf(m, "min_up_backends", b.MinUpBackends != db.MinUpBackends, strconv.Itoa(b.MinUpBackends))
	if len(b.Nodes) > 0 {
		nodes := &yaml.Node{Kind: yaml.SequenceNode}
		for _, n := range b.Nodes {
			addrs := make([]string, len(n.LocalAddresses))
			for i, a := range n.LocalAddresses {
				addrs[i] = a.String()
			}
			nm := mapping()
			setIf(nm, "node_id", true, strconv.Itoa(int(n.NodeID)))
			set(nm, "local_addresses", flow(addrs))
			nodes.Content = append(nodes.Content, nm)
		}
		set(m, "nodes", nodes)
	}
	return m
}
