package config

import (
	"net/netip"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// peered is a sync section's fields for a node with one peer.
const peered = "listen: 192.0.2.5:8849, peers: [192.0.2.6:8849], key_file: /etc/xdplb/sync.key"

// haDoc is the minimal document with the given fields in flow-style ha
// and sync sections.
func haDoc(ha, sync string) string {
	return minimal + "ha: {" + ha + "}\nsync: {" + sync + "}\n"
}

func TestParseHA(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "ha.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wantHA := HA{
		Mode:           HAModeVRRP,
		NodeID:         2,
		Nodes:          3,
		Interface:      "eth1",
		Priority:       150,
		AdvertInterval: 500 * time.Millisecond,
		Preempt:        false,
		PreemptDelay:   30 * time.Second,
		GARP:           GARP{Repeat: 3, Delay: 2 * time.Second},
	}
	wantSync := Sync{
		Listen:        netip.MustParseAddrPort("192.0.2.5:8849"),
		Peers:         []netip.AddrPort{netip.MustParseAddrPort("192.0.2.6:8849")},
		KeyFile:       "/etc/xdplb/sync.key",
		BatchInterval: 20 * time.Millisecond,
		Refresh:       2 * time.Minute,
		BulkTimeout:   time.Minute,
	}
	if !reflect.DeepEqual(c.HA, wantHA) {
		t.Errorf("ha:\n got %+v\nwant %+v", c.HA, wantHA)
	}
	if !reflect.DeepEqual(c.Sync, wantSync) {
		t.Errorf("sync:\n got %+v\nwant %+v", c.Sync, wantSync)
	}
	if !c.HAEnabled() || !c.SyncEnabled() {
		t.Errorf("HAEnabled %v, SyncEnabled %v; want both", c.HAEnabled(), c.SyncEnabled())
	}
	if got, want := c.AllocPorts(), (PortRange{13333, 16665}); got != want {
		t.Errorf("AllocPorts() = %v, want %v", got, want)
	}
}

// TestHADefaults: without ha and sync a node is alone; the derived
// defaults follow interfaces and sync.peers.
func TestHADefaults(t *testing.T) {
	tests := []struct {
		name      string
		yaml      string
		iface     string
		nodes     uint8
		ha, sync  bool
		allocated PortRange
	}{
		{"absent", minimal, "eth0", 1, false, false, defaultLocalPorts},
		{"null", minimal + "ha:\nsync:\n", "eth0", 1, false, false, defaultLocalPorts},
		{"first interface", "interfaces: [eth1, eth0]\nlocal: {addresses: [172.19.0.5]}\n", "eth1", 1, false, false, defaultLocalPorts},
		{"external, alone", haDoc("mode: external, node_id: 1", ""), "eth0", 1, true, false, defaultLocalPorts},
		{"one peer", haDoc("node_id: 2", peered), "eth0", 2, false, true, PortRange{15000, 19999}},
		{"two peers", haDoc("mode: vrrp, node_id: 1", "listen: 192.0.2.5:8849, peers: [192.0.2.6:8849, 192.0.2.7:8849], key_file: /k"),
			"eth0", 3, true, true, PortRange{10000, 13332}},
		{"explicit empty", haDoc(`interface: ""`, `listen: ""`), "eth0", 1, false, false, defaultLocalPorts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			want := defaultHA
			want.Interface, want.Nodes = tt.iface, tt.nodes
			want.Mode, want.NodeID = c.HA.Mode, c.HA.NodeID // as the case set them
			if c.HA != want {
				t.Errorf("ha:\n got %+v\nwant %+v", c.HA, want)
			}
			s := c.Sync
			s.Listen, s.Peers, s.KeyFile = defaultSync.Listen, defaultSync.Peers, defaultSync.KeyFile
			if !reflect.DeepEqual(s, defaultSync) {
				t.Errorf("sync timings %+v, want the defaults %+v", s, defaultSync)
			}
			if c.HAEnabled() != tt.ha || c.SyncEnabled() != tt.sync {
				t.Errorf("HAEnabled %v, SyncEnabled %v; want %v, %v", c.HAEnabled(), c.SyncEnabled(), tt.ha, tt.sync)
			}
			if got := c.AllocPorts(); got != tt.allocated {
				t.Errorf("AllocPorts() = %v, want %v", got, tt.allocated)
			}
		})
	}
}

// TestHAProblems: each broken ha or sync section yields exactly one
// problem, at its path, whether the decoder or Validate finds it.
func TestHAProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		path string
		msg  string
	}{
		// Decoding.
		{"unknown ha field", haDoc("prio: 1", ""), "ha.prio", "unknown field at line 3 (known fields: advert_interval, garp, interface, mode, node_id, nodes, preempt, preempt_delay, priority)"},
		{"unknown sync field", haDoc("", "port: 1"), "sync.port", "unknown field at line 4 (known fields: batch_interval, bulk_timeout, cluster_id, key_file, listen, peers, refresh)"},
		{"unknown garp field", haDoc("garp: {count: 1}", ""), "ha.garp.count", "unknown field"},
		{"mode as list", haDoc("mode: [vrrp]", ""), "ha.mode", "expected a string, got a list"},
		{"node id 0", haDoc("node_id: 0", ""), "ha.node_id", "0 is not a node id (1-255)"},
		{"node id 256", haDoc("node_id: 256", ""), "ha.node_id", "256 is not a node id (1-255)"},
		{"nodes 0", haDoc("nodes: 0", ""), "ha.nodes", "0 is not a node count (1-255)"},
		{"priority 0", haDoc("priority: 0", ""), "ha.priority", "0 is not a priority (1-254)"},
		{"priority 255", haDoc("priority: 255", ""), "ha.priority", "255 is not a priority (1-254)"},
		{"advert not a duration", haDoc("advert_interval: 1", ""), "ha.advert_interval", `"1" is not a duration`},
		{"advert past a Duration", haDoc("advert_interval: 9999999999h", ""), "ha.advert_interval", "9999999999h is out of range (100ms to 25s)"},
		{"preempt not a bool", haDoc("preempt: maybe", ""), "ha.preempt", `"maybe" is not true or false`},
		{"garp repeat 0", haDoc("garp: {repeat: 0}", ""), "ha.garp.repeat", "0 is not a count (1-100)"},
		{"garp repeat 101", haDoc("garp: {repeat: 101}", ""), "ha.garp.repeat", "101 is not a count (1-100)"},
		{"listen without port", haDoc("", "listen: 192.0.2.5"), "sync.listen", `"192.0.2.5" is not an address:port (for example 192.0.2.5:8849 or [2001:db8::5]:8849)`},
		{"listen as list", haDoc("", "listen: [192.0.2.5:8849]"), "sync.listen", "expected a string, got a list"},
		{"peers not a list", haDoc("", "peers: 192.0.2.6:8849"), "sync.peers", "expected a list"},
		{"peer not an address", haDoc("", "peers: [nope]"), "sync.peers[0]", `"nope" is not an address:port`},
		{"peer empty", haDoc("", "peers: [~]"), "sync.peers[0]", "empty list item"},

		// The ha section.
		{"unknown mode", haDoc("mode: keepalived", ""), "ha.mode", `"keepalived" is not an HA mode (accepted: none, vrrp, external)`},
		{"vrrp without node id", haDoc("mode: vrrp", peered), "ha.node_id", "missing (a node id (1-255) is required with ha.mode vrrp)"},
		{"external without node id", haDoc("mode: external", ""), "ha.node_id", "missing (a node id (1-255) is required with ha.mode external)"},
		{"peers without node id", haDoc("", peered), "ha.node_id", "missing (a node id (1-255) is required with sync.peers: it marks the connections this node opened)"},
		{"nodes without node id", haDoc("nodes: 2", ""), "ha.node_id", "missing (a node id (1-255) is required with ha.nodes 2: it picks this node's slice of local.ports)"},
		{"node id beyond derived nodes", haDoc("node_id: 3", peered), "ha.node_id", "3 is greater than ha.nodes (2); node ids run from 1 to ha.nodes, which defaults to the number of sync.peers plus one"},
		{"node id beyond nodes", haDoc("node_id: 3, nodes: 2", ""), "ha.node_id", "3 is greater than ha.nodes (2)"},
		{"nodes fewer than peers", haDoc("node_id: 1, nodes: 2", "listen: 192.0.2.5:8849, peers: [192.0.2.6:8849, 192.0.2.7:8849], key_file: /k"), "ha.nodes", "2 is fewer than the nodes sync connects (this one and 2 peers)"},
		{"a port each", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: 10000-10001}\nha: {node_id: 1, nodes: 3}\n", "local.ports", "10000-10001 has 2 ports, fewer than ha.nodes (3): each node hands out its own slice of local.ports, of at least one port"},
		{"interface not attached", haDoc("interface: eth1", ""), "ha.interface", `"eth1" is not one of interfaces (eth0)`},
		{"advert too short", haDoc("advert_interval: 50ms", ""), "ha.advert_interval", "50ms is out of range (100ms to 25s)"},
		{"advert too long", haDoc("advert_interval: 26s", ""), "ha.advert_interval", "26s is out of range (100ms to 25s)"},
		{"advert not in milliseconds", haDoc("advert_interval: 100500us", ""), "ha.advert_interval", "100.5ms is not a whole number of milliseconds (adverts carry it in milliseconds)"},
		{"preempt delay negative", haDoc("preempt_delay: -1s", ""), "ha.preempt_delay", "-1s is out of range (0 to 1h)"},
		{"preempt delay too long", haDoc("preempt_delay: 2h", ""), "ha.preempt_delay", "2h0m0s is out of range (0 to 1h)"},
		{"garp delay too long", haDoc("garp: {delay: 61m}", ""), "ha.garp.delay", "1h1m0s is out of range (0 to 1h)"},
		{"vrrp alone", haDoc("mode: vrrp, node_id: 1", ""), "sync.peers", "required with ha.mode vrrp: the election runs over the sync channel, so each node must list the others"},

		// The sync section.
		{"peers without listen", haDoc("node_id: 1", "peers: [192.0.2.6:8849], key_file: /k"), "sync.listen", "missing (this node's address:port is required with sync.peers, for example 192.0.2.5:8849)"},
		{"listen unspecified", haDoc("", "listen: 0.0.0.0:8849"), "sync.listen", "0.0.0.0 is the unspecified address; give the specific address the nodes reach each other at"},
		{"listen IPv6 unspecified", haDoc("", `listen: "[::]:8849"`), "sync.listen", ":: is the unspecified address"},
		{"listen port 0", haDoc("", "listen: 192.0.2.5:0"), "sync.listen", "192.0.2.5:0: 0 is not a port (1-65535)"},
		{"listen multicast", haDoc("", "listen: 224.0.0.18:8849"), "sync.listen", "224.0.0.18 is a multicast address"},
		{"listen broadcast", haDoc("", "listen: 255.255.255.255:8849"), "sync.listen", "255.255.255.255 is the broadcast address"},
		{"peer is listen", haDoc("node_id: 1", "listen: 192.0.2.5:8849, peers: [192.0.2.5:8849], key_file: /k"), "sync.peers[0]", "192.0.2.5:8849 is sync.listen, this node's own address"},
		{"peer of another family", haDoc("node_id: 1", `listen: 192.0.2.5:8849, peers: ["[2001:db8::6]:8849"], key_file: /k`), "sync.peers[0]", "[2001:db8::6]:8849 is not of the family of sync.listen (192.0.2.5:8849)"},
		{"peer twice", haDoc("node_id: 1, nodes: 3", "listen: 192.0.2.5:8849, peers: [192.0.2.6:8849, 192.0.2.6:8849], key_file: /k"), "sync.peers[1]", "192.0.2.6:8849 is already listed at sync.peers[0]"},
		{"peer unspecified", haDoc("node_id: 1", "listen: 192.0.2.5:8849, peers: [0.0.0.0:8849], key_file: /k"), "sync.peers[0]", "0.0.0.0 is the unspecified address"},
		{"peers without key", haDoc("node_id: 1", "listen: 192.0.2.5:8849, peers: [192.0.2.6:8849]"), "sync.key_file", "missing (the path of the key shared by all nodes is required with sync.peers)"},
		{"relative key", haDoc("", "key_file: sync.key"), "sync.key_file", `"sync.key" is not an absolute path`},
		{"batch 0", haDoc("", "batch_interval: 0s"), "sync.batch_interval", "0s is out of range (1ms to 1s)"},
		{"batch too long", haDoc("", "batch_interval: 2s"), "sync.batch_interval", "2s is out of range (1ms to 1s)"},
		{"refresh too short", haDoc("", "refresh: 500ms"), "sync.refresh", "500ms is too short (at least 1s)"},
		{"refresh half the timeout", haDoc("node_id: 1", peered+", refresh: 450s"), "sync.refresh", "7m30s is not less than half of conntrack.timeouts.udp (5m0s): a refresh must reach the peers before their copy of a busy connection expires, even if one is lost"},
		{"refresh with a short timeout", haDoc("node_id: 1", peered) + "conntrack: {timeouts: {established: 60s}}\n", "sync.refresh", "1m0s is not less than half of conntrack.timeouts.established (1m0s)"},
		{"refresh with a short UDP timeout", haDoc("node_id: 1", peered) + "conntrack: {timeouts: {udp: 90s}}\n", "sync.refresh", "1m0s is not less than half of conntrack.timeouts.udp (1m30s)"},
		{"listen without peers", haDoc("", "listen: 192.0.2.5:8849"), "sync.listen", "set, but sync.peers is empty: list the other nodes' sync.listen addresses, or remove the sync section"},
		{"cluster id too big", haDoc("node_id: 1", peered+", cluster_id: 65536"), "sync.cluster_id", "65536 is not a cluster id (0-65535)"},
		{"bulk too short", haDoc("", "bulk_timeout: 0s"), "sync.bulk_timeout", "0s is out of range (1s to 10m)"},
		{"bulk too long", haDoc("", "bulk_timeout: 11m"), "sync.bulk_timeout", "11m0s is out of range (1s to 10m)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := onlyProblem(t, tt.yaml); p.Path != tt.path || !strings.Contains(p.Msg, tt.msg) {
				t.Errorf("got problem %q,\nwant path %q with message containing %q", p, tt.path, tt.msg)
			}
		})
	}
}

// TestHAAccepts covers ha and sync sections that look unusual but are
// valid.
func TestHAAccepts(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"IPv6 sync", haDoc("mode: vrrp, node_id: 1", `listen: "[2001:db8::5]:8849", peers: ["[2001:db8::6]:8849"], key_file: /k`)},
		{"sync without election", haDoc("node_id: 1", peered)},
		{"spare node slices", haDoc("node_id: 1, nodes: 4", peered)},
		{"last node", haDoc("node_id: 255, nodes: 255", "")},
		{"a port per node", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: 10000-10002}\nha: {node_id: 3, nodes: 3}\n"},
		{"bounds", haDoc("priority: 254, advert_interval: 25s, preempt_delay: 1h, garp: {repeat: 100, delay: 0s}",
			"batch_interval: 1s, refresh: 1s, bulk_timeout: 10m")},
		{"refresh just under half", minimal + "conntrack: {timeouts: {established: 10s}}\nsync: {refresh: 4999ms}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.yaml)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

// TestValidateHA covers what only an ha or sync section built in Go can
// get wrong.
func TestValidateHA(t *testing.T) {
	manyPeers := func(n int) []netip.AddrPort {
		ps := make([]netip.AddrPort, n)
		for i := range ps {
			ps[i] = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 8849)
		}
		return ps
	}
	peers := func(c *Config, ps []netip.AddrPort) {
		c.Sync.Listen, c.Sync.Peers, c.Sync.KeyFile = netip.MustParseAddrPort("10.0.0.1:8849"), ps, "/k"
		c.HA.NodeID, c.HA.Nodes = 1, derivedNodes(ps)
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		path   string
		msg    string
	}{
		{"empty mode", func(c *Config) { c.HA.Mode = "" }, "ha.mode", `"" is not an HA mode (accepted: none, vrrp, external)`},
		{"no node count", func(c *Config) { c.HA.Nodes = 0 }, "ha.nodes", "0 is not a node count (1-255)"},
		{"no garp", func(c *Config) { c.HA.GARP.Repeat = 0 }, "ha.garp.repeat", "0 is not a count (1-100)"},
		{"zero peer", func(c *Config) { peers(c, []netip.AddrPort{{}}) }, "sync.peers[0]", "missing (an address:port is required)"},
		{"too many peers", func(c *Config) { peers(c, manyPeers(255)) }, "sync.peers", "255 peers, more than the maximum of 254 (a cluster has at most 255 nodes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := referenceConfig()
			tt.mutate(c)
			ps := problemsOf(t, c.Validate())
			if len(ps) != 1 {
				t.Fatalf("got %d problems, want 1:\n%v", len(ps), &Error{Problems: ps})
			}
			if ps[0].Path != tt.path || !strings.Contains(ps[0].Msg, tt.msg) {
				t.Errorf("got problem %q,\nwant path %q with message containing %q", ps[0], tt.path, tt.msg)
			}
		})
	}
	c := referenceConfig()
	peers(c, manyPeers(254))
	if err := c.Validate(); err != nil {
		t.Errorf("254 peers: %v", err)
	}
}
