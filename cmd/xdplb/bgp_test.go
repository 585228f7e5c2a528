package main

import (
	"strings"
	"testing"
)

func TestBGPStatus(t *testing.T) {
	_, socket := startDaemon(t)
	got := mustRun(t, socket, "bgp", "status")
	for _, want := range []string{
		"bgp: AS 65001, router id 172.19.0.5",
		"172.19.0.1  65000  established  1m0s    2     -    -",
		"172.19.0.10/32  vip    no         drained (xdplb bgp undrain to announce it again)",
		"172.19.0.5/32   local  yes        -",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("bgp status lacks %q:\n%s", want, got)
		}
	}
	mustRun(t, socket, "bgp", "drain", "172.19.0.10")
	mustRun(t, socket, "bgp", "undrain")
	wantErr(t, socket, "198.51.100.1 is not a VIP of any service", "bgp", "drain", "198.51.100.1")
	wantErr(t, socket, `VIP "web" is not an IP address`, "bgp", "drain", "web")
}
