package demo

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
)

// WebService is the reference scenario's service (a YAML list item): VIP
// 172.19.0.10:80 round robin over rs1 and rs2.
const WebService = `  - name: web
    vip: 172.19.0.10
    port: 80
    protocol: tcp
    scheduler: rr
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`

// EchoService is a UDP service on 172.19.0.10:5353 over both real
// servers (a YAML list item), for the tests.
const EchoService = `  - name: echo
    vip: 172.19.0.10
    port: 5353
    protocol: udp
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`

// ReferenceServices are the web service plus the UDP echo service.
const ReferenceServices = WebService + EchoService

// Setup describes a balancer configuration on the reference topology.
type Setup struct {
	Mode     string // xdp_mode
	Dir      string // holds the API socket and ownership file
	Services string // YAML list items under services:
	Ports    string // local port range; default 10000-19999
	Local    string // local (Full-NAT source) address; default the lb's own, 172.19.0.5
	Extra    string // more top-level YAML, e.g. a conntrack section
}

// YAML renders the configuration. Its pinned state goes to a directory
// named after Dir, so balancers of concurrent runs never share it.
func (s Setup) YAML() string {
	ports := s.Ports
	if ports == "" {
		ports = "10000-19999"
	}
	local := s.Local
	if local == "" {
		local = "172.19.0.5"
	}
	return fmt.Sprintf(`interfaces: [eth0]
xdp_mode: %s
local:
  addresses: [%s]
  ports: %s
services:
%sapi:
  socket: %s
state:
  pin_path: %s
%s`, s.Mode, local, ports, s.Services, filepath.Join(s.Dir, "xdplb.sock"), PinPath(s.Dir), s.Extra)
}

// PinPath is the BPF filesystem directory a balancer set up in dir pins to.
func PinPath(dir string) string {
	h := fnv.New64a()
	h.Write([]byte(dir))
	return fmt.Sprintf("/sys/fs/bpf/xdplb-test-%016x", h.Sum64())
}

// ReferenceConfig is the balancer's configuration for the reference
// scenario.
func ReferenceConfig(mode, dir string) string {
	return Setup{Mode: mode, Dir: dir, Services: ReferenceServices}.YAML()
}
