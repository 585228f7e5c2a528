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
