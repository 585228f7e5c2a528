package demo

import (
	"fmt"
	"path/filepath"
)

// ReferenceConfig is the balancer's configuration for the reference
// scenario: VIP 172.19.0.10:80 round robin over rs1 and rs2, SNAT from the
// balancer's own address, plus a UDP service on port 5353 for the tests.
func ReferenceConfig(mode, dir string) string {
	return fmt.Sprintf(`interfaces: [eth0]
xdp_mode: %s
local:
  addresses: [172.19.0.5]
  ports: 10000-19999
services:
  - name: web
    vip: 172.19.0.10
    port: 80
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
  - name: echo
    vip: 172.19.0.10
    port: 5353
    protocol: udp
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
api:
  socket: %s
`, mode, filepath.Join(dir, "xdplb.sock"))
}
