package config

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

const bgpBase = `
interfaces: [eth0]
local:
  addresses: [172.19.0.5]
services:
  - vip: 172.19.0.10
    port: 80
    backends: [{address: 172.19.0.2}]
`

func TestBGPSection(t *testing.T) {
	c, err := Parse([]byte(bgpBase + `
bgp:
  asn: 65001
  router_id: 172.19.0.5
  peers:
    - address: 172.19.0.1
      asn: 65000
      hold_time: 3s
      keepalive: 1s
      bfd_interval: 300ms
  communities: ["65001:100"]
  min_up_backends: 2
`))
	if err != nil {
		t.Fatal(err)
	}
	want := BGP{
		ASN: 65001, RouterID: netip.MustParseAddr("172.19.0.5"),
		Peers:           []BGPPeer{{Address: netip.MustParseAddr("172.19.0.1"), ASN: 65000, HoldTime: 3 * time.Second, Keepalive: time.Second, BFDInterval: 300 * time.Millisecond}},
		Communities:     []string{"65001:100"},
		GracefulRestart: true, RestartTime: defaultBGP.RestartTime, ShutdownWait: defaultBGP.ShutdownWait, MinUpBackends: 2,
	}
	if !reflect.DeepEqual(c.BGP, want) {
		t.Errorf("bgp\n got %+v\nwant %+v", c.BGP, want)
	}
	sc := c.BGP.Speaker()
	if sc.Peers[0].BFD == nil || sc.Peers[0].BFD.Multiplier != 3 || sc.ListenPort != -1 {
		t.Errorf("speaker config %+v: want BFD with the default multiplier and no listener", sc)
	}
	out, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(out)
	if err != nil {
		t.Fatalf("Parse(Render(c)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again.BGP, c.BGP) {
		t.Errorf("render round trip\n got %+v\nwant %+v\n%s", again.BGP, c.BGP, out)
	}
}

func TestBGPProblems(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, path, says string
	}{
		{"no peers", "bgp:\n  asn: 65001\n", "bgp.peers", "none"},
		{"no asn", "bgp:\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000}]\n", "bgp.asn", "not set"},
		{"iBGP", "bgp:\n  asn: 65000\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000}]\n", "bgp.peers[0].asn", "iBGP"},
		{"hold time too short", "bgp:\n  asn: 65001\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000, hold_time: 1s}]\n",
			"bgp.peers[0].hold_time", "between 3s"},
		{"restart time", "bgp:\n  asn: 65001\n  router_id: 172.19.0.5\n  restart_time: 5000s\n  peers: [{address: 172.19.0.1, asn: 65000}]\n",
			"bgp.restart_time", "between 1s and 1h8m15s"},
		{"BFD with multihop", "bgp:\n  asn: 65001\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000, bfd_interval: 100ms, multihop: true}]\n",
			"bgp.peers[0].bfd_interval", "single-hop"},
		{"a node's local address is a VIP", "bgp:\n  asn: 65001\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000}]\n" +
			"  nodes: [{node_id: 2, local_addresses: [172.19.0.10]}]\nha:\n  node_id: 1\nsync:\n  listen: 172.19.0.5:8849\n  peers: [172.19.0.6:8849]\n  key_file: /etc/xdplb/sync.key\n",
			"bgp.nodes[0].local_addresses[0]", "is also in a service's vip"},
		{"nodes without sync", "bgp:\n  asn: 65001\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000}]\n" +
			"  nodes: [{node_id: 2, local_addresses: [172.19.0.102]}]\n",
			"bgp.nodes[0]", "needs sync.peers"},
		{"with vrrp", "bgp:\n  asn: 65001\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000}]\n" +
			"ha:\n  mode: external\n  node_id: 1\n", "bgp", "ha.mode external"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := onlyProblem(t, bgpBase+tc.yaml)
			if p.Path != tc.path || !strings.Contains(p.Msg, tc.says) {
				t.Errorf("problem %s: %s; want %s saying %q", p.Path, p.Msg, tc.path, tc.says)
			}
		})
	}
}
