package config

import (
	"slices"
	"testing"
)

// TestDiff: what a reload or an edit changes, field by field, in the
// order an operator reads it.
func TestDiff(t *testing.T) {
	old, err := Parse([]byte(`interfaces: [eth0]
local: {addresses: [172.19.0.5]}
services:
  - name: web
    vip: 172.19.0.10
    port: 80
    backends: [{address: 172.19.0.2}, {address: 172.19.0.3}]
  - {vip: 172.19.0.10, port: 53, protocol: udp, backends: [{address: 172.19.0.2}]}
`))
	if err != nil {
		t.Fatal(err)
	}
	new, err := Parse([]byte(`interfaces: [eth0]
local: {addresses: [172.19.0.5]}
log: {level: debug}
services:
  - name: web
    vip: 172.19.0.10
    port: 80
    scheduler: maglev
    health_check: {kind: tcp}
    client_address: toa
    backends: [{address: 172.19.0.2, weight: 3}, {address: 172.19.0.4}]
  - {vip: 172.19.0.11, port: 80, backends: []}
`))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range Diff(old, new) {
		got = append(got, c.String())
	}
	want := []string{
		"log.level: info -> debug",
		"service 172.19.0.10:53/udp removed",
		"service web (172.19.0.10:80/tcp): scheduler rr -> maglev",
		"service web (172.19.0.10:80/tcp): health_check (none) -> {kind: tcp, interval: 1s, timeout: 1s, rise: 2, fall: 2, initial: up}",
		"service web (172.19.0.10:80/tcp): client_address none -> toa",
		"backend 172.19.0.3:80 of service web removed",
		"backend 172.19.0.2:80 of service web: weight 1 -> 3",
		"backend 172.19.0.4:80 of service web added",
		"service 172.19.0.11:80/tcp added",
	}
	if !slices.Equal(got, want) {
		t.Errorf("Diff:\n got  %q\n want %q", got, want)
	}
	if d := Diff(old, old); d != nil {
		t.Errorf("Diff of a configuration with itself: %v", d)
	}
}

func TestDiffBGP(t *testing.T) {
	old, err := Parse([]byte(bgpBase))
	if err != nil {
		t.Fatal(err)
	}
	next, err := Parse([]byte(bgpBase + "bgp:\n  asn: 65001\n  router_id: 172.19.0.5\n  peers: [{address: 172.19.0.1, asn: 65000, hold_time: 3s}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Change{}
	for _, c := range Diff(old, next) {
		got[c.What] = c
	}
	if c := got["bgp.peers"]; !c.Restart || c.New != "- address: 172.19.0.1 asn: 65000 hold_time: 3s" {
		t.Errorf("bgp.peers change %+v", c)
	}
	if c := got["bgp.asn"]; !c.Restart || c.New != "65001" {
		t.Errorf("bgp.asn change %+v", c)
	}
}
