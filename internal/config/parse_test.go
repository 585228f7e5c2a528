package config

import (
	"slices"
	"strings"
	"testing"
)

// minimal is the smallest valid document; cases append to it.
const minimal = "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5]}\n"

// minimal6 is minimal with an IPv6 local address too, for IPv6 services.
const minimal6 = "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5, \"2001:db8::5\"]}\n"

// svc wraps flow-style service mappings into a services list.
func svc(services ...string) string {
	return minimal + "services: [" + strings.Join(services, ", ") + "]\n"
}

// svc6 is svc on minimal6.
func svc6(services ...string) string {
	return minimal6 + "services: [" + strings.Join(services, ", ") + "]\n"
}

// TestParseProblems checks that each broken document yields exactly one
// problem, at the expected YAML path, with a message containing msg.
func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		path string
		msg  string
	}{
		// Document level.
		{"empty", "", "", "configuration is empty"},
		{"comments only", "# nothing\n", "", "configuration is empty"},
		{"null document", "---\n~\n", "", "configuration is empty"},
		{"not a mapping", "- eth0\n", "", "expected a mapping at the top level, got a list"},
		{"syntax error", "interfaces: [eth0\n", "", "invalid YAML: "},
		{"two documents", minimal + "---\n" + minimal, "", "more than one YAML document"},

		// Strict decoding.
		{"unknown top-level field", minimal + "bogus: 1\n", "bogus", "unknown field at line 3"},
		{"unknown nested field", svc("{vip: 172.19.0.10, port: 80, prot: tcp}"), "services[0].prot", "unknown field at line 3 (known fields: backends, client_address, fallback, forwarding, health_check, name, on_backend_down, persistence, persistence_netmask, port, protocol, scheduler, vip)"},
		{"unknown backend field", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2, wieght: 2}]}"), "services[0].backends[0].wieght", "unknown field"},
		{"duplicate key", minimal + "xdp_mode: auto\nxdp_mode: native\n", "xdp_mode", "set twice, at lines 3 and 4"},
		{"list expected", "interfaces: eth0\nlocal: {addresses: [172.19.0.5]}\n", "interfaces", "expected a list, got string \"eth0\""},
		{"mapping expected", minimal + "log: debug\n", "log", "expected a mapping, got string \"debug\""},
		{"string expected", minimal + "xdp_mode: [auto]\n", "xdp_mode", "expected a string, got a list"},
		{"empty list item", "interfaces: [eth0, ~]\nlocal: {addresses: [172.19.0.5]}\n", "interfaces[1]", "empty list item"},

		// Interfaces.
		{"no interfaces", "local: {addresses: [172.19.0.5]}\n", "interfaces", "at least one interface is required"},
		{"interface too long", "interfaces: [abcdefghijklmnop]\nlocal: {addresses: [172.19.0.5]}\n", "interfaces[0]", "longer than 15 characters"},
		{"interface with slash", "interfaces: [eth/0]\nlocal: {addresses: [172.19.0.5]}\n", "interfaces[0]", "contains '/'"},
		{"interface with space", "interfaces: [\"eth 0\"]\nlocal: {addresses: [172.19.0.5]}\n", "interfaces[0]", "contains whitespace"},
		{"interface with control character", "interfaces: [\"eth\\e0\"]\nlocal: {addresses: [172.19.0.5]}\n", "interfaces[0]", `"eth\x1b0" is not a valid interface name: contains a control character`},
		{"interface empty", "interfaces: [\"\"]\nlocal: {addresses: [172.19.0.5]}\n", "interfaces[0]", "empty"},
		{"duplicate interface", "interfaces: [eth0, eth1, eth0]\nlocal: {addresses: [172.19.0.5]}\n", "interfaces[2]", `"eth0" is already listed at interfaces[0]`},

		// Top-level enums and numbers.
		{"wrong xdp_mode", minimal + "xdp_mode: turbo\n", "xdp_mode", `"turbo" is not an XDP mode (accepted: auto, native, generic)`},
		{"bad log level", minimal + "log: {level: verbose}\n", "log.level", `"verbose" is not a log level (accepted: debug, info, warn, error)`},
		{"bad log format", minimal + "log: {format: xml}\n", "log.format", `"xml" is not a log format (accepted: text, json)`},
		{"capacity too small", minimal + "conntrack: {capacity: 1000}\n", "conntrack.capacity", "1000 is out of range (1024-16777216)"},
		{"capacity too large", minimal + "conntrack: {capacity: 16777217}\n", "conntrack.capacity", "16777217 is out of range (1024-16777216)"},
		{"capacity explicit zero", minimal + "conntrack: {capacity: 0}\n", "conntrack.capacity", "0 is out of range"},
		{"timeout not a duration", minimal + "conntrack: {timeouts: {fin_wait: 2 minutes}}\n", "conntrack.timeouts.fin_wait", `"2 minutes" is not a duration`},
		{"timeout too short", minimal + "conntrack: {timeouts: {udp: 1ms}}\n", "conntrack.timeouts.udp", "1ms is too short"},
		{"unknown timeout", minimal + "conntrack: {timeouts: {time_wait: 1s}}\n", "conntrack.timeouts.time_wait", "unknown field"},
		{"gc interval too long", minimal + "conntrack: {gc_interval: 2h}\n", "conntrack.gc_interval", "2h0m0s is out of range"},
		{"relative pin path", minimal + "state: {pin_path: xdplb}\n", "state.pin_path", `"xdplb" is not an absolute path`},
		{"capacity not a number", minimal + "conntrack: {capacity: lots}\n", "conntrack.capacity", `expected an integer, got string "lots"`},

		// Local.
		{"no local addresses", "interfaces: [eth0]\n", "local.addresses", "at least one local address is required"},
		{"local IPv4-mapped IPv6", "interfaces: [eth0]\nlocal: {addresses: [\"::ffff:172.19.0.5\"]}\n", "local.addresses[0]", "::ffff:172.19.0.5 is an IPv4-mapped IPv6 address; write it as the IPv4 address 172.19.0.5"},
		{"local IPv6 link-local", "interfaces: [eth0]\nlocal: {addresses: [\"fe80::5\"]}\n", "local.addresses[0]", "fe80::5 is an IPv6 link-local address (fe80::/10)"},
		{"local IPv6 with a zone", "interfaces: [eth0]\nlocal: {addresses: [\"2001:db8::5%eth0\"]}\n", "local.addresses[0]", "2001:db8::5%eth0 has a zone (%eth0)"},
		{"local IPv6 unspecified", "interfaces: [eth0]\nlocal: {addresses: [\"::\"]}\n", "local.addresses[0]", ":: is the unspecified address"},
		{"local IPv6 loopback", "interfaces: [eth0]\nlocal: {addresses: [\"::1\"]}\n", "local.addresses[0]", "::1 is a loopback address"},
		{"local IPv6 multicast", "interfaces: [eth0]\nlocal: {addresses: [\"ff02::1\"]}\n", "local.addresses[0]", "ff02::1 is a multicast address"},
		{"duplicate local IPv6", "interfaces: [eth0]\nlocal: {addresses: [\"2001:db8::5\", \"2001:db8:0::5\"]}\n", "local.addresses[1]", "2001:db8::5 is already listed at local.addresses[0]"},
		{"local not an address", "interfaces: [eth0]\nlocal: {addresses: [abc]}\n", "local.addresses[0]", `"abc" is not an IP address`},
		{"local unspecified", "interfaces: [eth0]\nlocal: {addresses: [0.0.0.0]}\n", "local.addresses[0]", "unspecified"},
		{"local loopback", "interfaces: [eth0]\nlocal: {addresses: [127.0.0.1]}\n", "local.addresses[0]", "loopback"},
		{"local multicast", "interfaces: [eth0]\nlocal: {addresses: [224.0.0.1]}\n", "local.addresses[0]", "multicast"},
		{"local broadcast", "interfaces: [eth0]\nlocal: {addresses: [255.255.255.255]}\n", "local.addresses[0]", "broadcast"},
		{"duplicate local", "interfaces: [eth0]\nlocal: {addresses: [10.0.0.1, 10.0.0.1]}\n", "local.addresses[1]", "already listed at local.addresses[0]"},
		{"ports not a number", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: abc}\n", "local.ports", `"abc" is not a port range`},
		{"ports reversed", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: 20000-10000}\n", "local.ports", `"20000-10000" is not a port range: 20000 is greater than 10000`},
		{"ports from zero", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: 0-5}\n", "local.ports", `"0-5" is not a port range: 0 is not a port (1-65535)`},
		{"ports too high", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: 1-70000}\n", "local.ports", `"1-70000" is not a port range: 70000 is not a port (1-65535)`},
		{"ports as list", "interfaces: [eth0]\nlocal: {addresses: [172.19.0.5], ports: [1, 2]}\n", "local.ports", "expected a string, got a list"},

		// Services.
		{"service port too large", svc("{vip: 172.19.0.10, port: 70000}"), "services[0].port", "70000 is not a port (1-65535)"},
		{"service port zero", svc("{vip: 172.19.0.10, port: 0}"), "services[0].port", "0 is not a port (1-65535)"},
		{"service port negative", svc("{vip: 172.19.0.10, port: -1}"), "services[0].port", "-1 is not a port (1-65535)"},
		{"service port quoted", svc(`{vip: 172.19.0.10, port: "80"}`), "services[0].port", `expected a port (1-65535), got string "80"`},
		{"service port missing", svc("{vip: 172.19.0.10}"), "services[0].port", "missing"},
		{"vip missing", svc("{port: 80}"), "services[0].vip", "missing (an IPv4 or IPv6 address is required)"},
		{"vip IPv6 without an IPv6 local address", svc(`{vip: "2001:db8::10", port: 80}`), "services[0].vip",
			"2001:db8::10 is IPv6 with IPv6 backends, and local.addresses has no IPv6 address to reach them from"},
		{"vip IPv4 without an IPv4 local address", "interfaces: [eth0]\nlocal: {addresses: [\"2001:db8::5\"]}\nservices: [{vip: 172.19.0.10, port: 80}]\n", "services[0].vip",
			"172.19.0.10 is IPv4 with IPv4 backends, and local.addresses has no IPv4 address to reach them from"},
		{"vip IPv6 link-local", svc6(`{vip: "fe80::10", port: 80}`), "services[0].vip", "fe80::10 is an IPv6 link-local address"},
		{"vip IPv6 multicast", svc6(`{vip: "ff05::10", port: 80}`), "services[0].vip", "ff05::10 is a multicast address"},
		{"vip IPv4-mapped IPv6", svc6(`{vip: "::ffff:172.19.0.10", port: 80}`), "services[0].vip", "write it as the IPv4 address 172.19.0.10"},
		{"vip IPv6 is local", svc6(`{vip: "2001:db8::5", port: 80}`), "services[0].vip", "2001:db8::5 is also a local address (local.addresses[1])"},
		{"vip IPv6, backends IPv4 and IPv6", svc6(`{vip: "2001:db8::10", port: 80, backends: [{address: 172.19.0.2}, {address: "2001:db8::3"}]}`),
			"services[0].backends[1].address",
			"2001:db8::3 is IPv6, and the vip 2001:db8::10 is IPv6 with IPv4 backends: a service's backends and fallback are all IPv6, or all IPv4 (NAT64)"},
		{"vip IPv6, NAT64 without an IPv4 local address", "interfaces: [eth0]\nlocal: {addresses: [\"2001:db8::5\"]}\nservices: [{vip: \"2001:db8::10\", port: 80, backends: [{address: 172.19.0.2}]}]\n",
			"services[0].vip", "2001:db8::10 is IPv6 with IPv4 backends, and local.addresses has no IPv4 address to reach them from"},
		{"vip IPv4, backend IPv6", svc6(`{vip: 172.19.0.10, port: 80, backends: [{address: "2001:db8::2"}]}`), "services[0].backends[0].address",
			"2001:db8::2 is IPv6, and the vip 172.19.0.10 is IPv4 with IPv4 backends: translating IPv4 clients to IPv6 backends (NAT46) is not supported; use IPv4 backends for this vip"},
		{"vip IPv6, fallback IPv4", svc6(`{vip: "2001:db8::10", port: 80, backends: [{address: "2001:db8::2"}], fallback: {address: 172.19.0.9}}`),
			"services[0].fallback.address",
			"172.19.0.9 is IPv4, and the vip 2001:db8::10 is IPv6 with IPv6 backends: a service's backends and fallback are all IPv6, or all IPv4 (NAT64)"},
		{"vip IPv6, dsr", svc6(`{vip: "2001:db8::10", port: 80, forwarding: dsr-l2}`), "services[0].forwarding",
			"dsr-l2: direct server return over IPv6 is not supported yet (the vip 2001:db8::10 is IPv6); use fullnat"},
		{"vip IPv6, toa", svc6(`{vip: "2001:db8::10", port: 80, client_address: toa}`), "services[0].client_address",
			"toa carries an IPv4 address, and the vip 2001:db8::10 is IPv6: toa for IPv6 services is not supported yet"},
		{"persistence netmask of an IPv4 vip", svc6("{vip: 172.19.0.10, port: 80, persistence: 5m, persistence_netmask: 64}"), "services[0].persistence_netmask",
			"/64 is not a prefix length of an IPv4 vip (1-32)"},
		{"persistence netmask past IPv6", svc6(`{vip: "2001:db8::10", port: 80, persistence: 5m, persistence_netmask: 129}`), "services[0].persistence_netmask",
			"129 is not a prefix length (1-32 for an IPv4 vip, 1-128 for an IPv6 one)"},
		{"vip is local", svc("{vip: 172.19.0.5, port: 80}"), "services[0].vip", "172.19.0.5 is also a local address (local.addresses[0])"},
		{"bad protocol", svc("{vip: 172.19.0.10, port: 80, protocol: sctp}"), "services[0].protocol", `"sctp" is not a protocol (accepted: tcp, udp)`},
		{"bad scheduler", svc("{vip: 172.19.0.10, port: 80, scheduler: sed}"), "services[0].scheduler", `"sed" is not a scheduler (accepted: rr, wrr, maglev, sh, lc, wlc)`},
		{"bad persistence", svc("{vip: 172.19.0.10, port: 80, persistence: 48h}"), "services[0].persistence", "48h0m0s is out of range (0 for none, or 1s to 24h)"},
		{"persistence under a second", svc("{vip: 172.19.0.10, port: 80, persistence: 200ms}"), "services[0].persistence", "200ms is out of range"},
		{"persistence past a Duration", svc("{vip: 172.19.0.10, port: 80, persistence: 9999999999h}"), "services[0].persistence", "9999999999h is out of range (0 for none, or 1s to 24h)"},
		{"persistence past a Duration, fractional", svc("{vip: 172.19.0.10, port: 80, persistence: 1.5e300s}"), "services[0].persistence", `"1.5e300s" is not a duration`},
		{"persistence as a number", svc("{vip: 172.19.0.10, port: 80, persistence: 1e300}"), "services[0].persistence", `"1e300" is not a duration (write it like 900s, 15m or 250ms)`},
		{"timeout past a Duration", minimal + "conntrack: {timeouts: {udp: 99999999999999999999s}}\n", "conntrack.timeouts.udp", "99999999999999999999s is out of range (a duration is at most 2562047h)"},
		{"negative timeout past a Duration", minimal + "conntrack: {timeouts: {udp: -3000000h}}\n", "conntrack.timeouts.udp", "-3000000h is out of range"},
		{"unknown client_address", svc("{vip: 172.19.0.10, port: 80, client_address: proxy}"), "services[0].client_address", `"proxy" is not a client address mode (accepted: none, toa)`},
		{"client_address toa on udp", svc("{vip: 172.19.0.10, port: 53, protocol: udp, client_address: toa}"), "services[0].client_address", "toa is for tcp services: it carries the client's address in a TCP option, and UDP has no options"},
		{"client_address not a string", svc("{vip: 172.19.0.10, port: 80, client_address: [toa]}"), "services[0].client_address", "expected a string, got a list"},
		{"duplicate service", svc("{vip: 172.19.0.10, port: 80}", "{vip: 172.19.0.11, port: 80}", "{vip: 172.19.0.10, port: 80, protocol: TCP}"), "services[2]", "172.19.0.10:80/tcp duplicates services[0]"},
		{"duplicate name", svc("{name: web, vip: 172.19.0.10, port: 80}", "{name: web, vip: 172.19.0.10, port: 443}"), "services[1].name", `"web" is already the name of services[0]`},

		// Backends.
		{"backend port too large", svc("{vip: 172.19.0.10, port: 80}", "{vip: 172.19.0.10, port: 81, backends: [{address: 172.19.0.2, port: 70000}]}"), "services[1].backends[0].port", "70000 is not a port (1-65535)"},
		{"backend port zero", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2, port: 0}]}"), "services[0].backends[0].port", "0 is not a port (1-65535)"},
		{"backend address missing", svc("{vip: 172.19.0.10, port: 80, backends: [{port: 8080}]}"), "services[0].backends[0].address", "missing"},
		{"backend IPv6 loopback", svc6(`{vip: "2001:db8::10", port: 80, backends: [{address: "::1"}]}`), "services[0].backends[0].address", "::1 is a loopback address"},
		{"backend IPv6 link-local", svc6(`{vip: "2001:db8::10", port: 80, backends: [{address: "fe80::2"}]}`), "services[0].backends[0].address", "fe80::2 is an IPv6 link-local address"},
		{"duplicate IPv6 backend", svc6(`{vip: "2001:db8::10", port: 80, backends: [{address: "2001:db8::2"}, {address: "2001:db8::2", port: 80}]}`), "services[0].backends[1]", "[2001:db8::2]:80 duplicates backends[0]"},
		{"backend weight too large", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2, weight: 65536}]}"), "services[0].backends[0].weight", "65536 is not a weight (0-65535)"},
		{"backend weight negative", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2, weight: -1}]}"), "services[0].backends[0].weight", "-1 is not a weight (0-65535)"},
		{"duplicate backend", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2}, {address: 172.19.0.3}, {address: 172.19.0.2, port: 80}]}"), "services[0].backends[2]", "172.19.0.2:80 duplicates backends[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if p := onlyProblem(t, tt.yaml); p.Path != tt.path || !strings.Contains(p.Msg, tt.msg) {
				t.Errorf("got problem %q,\nwant path %q with message containing %q", p, tt.path, tt.msg)
			}
		})
	}
}

// TestParseAccepts covers inputs that look unusual but are valid.
func TestParseAccepts(t *testing.T) {
	tests := []struct{ name, yaml string }{
		{"no services", minimal},
		{"null sections", minimal + "services:\nconntrack:\nlog:\n"},
		{"service without backends", svc("{vip: 172.19.0.10, port: 80}")},
		{"same vip and port, different protocols", svc("{vip: 172.19.0.10, port: 53}", "{vip: 172.19.0.10, port: 53, protocol: udp}")},
		{"same backend in two services", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2}]}", "{vip: 172.19.0.11, port: 80, backends: [{address: 172.19.0.2}]}")},
		{"same backend address, different ports", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2}, {address: 172.19.0.2, port: 81}]}")},
		{"hex port", svc("{vip: 172.19.0.10, port: 0x50}")},
		{"anchors and aliases", "interfaces: [eth0]\nlocal: {addresses: [&a 172.19.0.5]}\nservices: [{vip: 172.19.0.10, port: 80, backends: &b [{address: 172.19.0.2}]}, {vip: 172.19.0.11, port: 80, backends: *b}]\n"},
		{"longest interface name", "interfaces: [abcdefghijklmno]\nlocal: {addresses: [172.19.0.5]}\n"},
		{"capacity bounds", minimal + "conntrack: {capacity: 1024}\n"},
		{"client_address none on udp", svc("{vip: 172.19.0.10, port: 53, protocol: udp, client_address: none}")},
		{"weight bounds", svc("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2, weight: 65535}]}")},
		{"IPv6 local address only", "interfaces: [eth0]\nlocal: {addresses: [\"2001:db8::5\"]}\n"},
		{"IPv6 service", svc6(`{vip: "2001:db8::10", port: 80, backends: [{address: "2001:db8:1::2", port: 8080}, {address: "fd00::3"}], fallback: {address: "2001:db8:1::9"}}`)},
		{"IPv6 addresses unquoted in block style", "interfaces: [eth0]\nlocal:\n  addresses:\n    - 172.19.0.5\n    - 2001:db8::5\nservices:\n  - vip: 2001:db8::10\n    port: 80\n    backends:\n      - address: 2001:db8:1::2\n"},
		{"IPv4 and IPv6 services side by side", svc6("{vip: 172.19.0.10, port: 80, backends: [{address: 172.19.0.2}]}", `{vip: "2001:db8::10", port: 80, backends: [{address: "2001:db8::2"}]}`)},
		{"IPv4 dsr service with only IPv6 local addresses", "interfaces: [eth0]\nlocal: {addresses: [\"2001:db8::5\"]}\nservices: [{vip: 172.19.0.10, port: 80, forwarding: dsr-l2, backends: [{address: 172.19.0.2}]}]\n"},
		{"persistence netmask of an IPv6 vip", svc6(`{vip: "2001:db8::10", port: 80, persistence: 5m, persistence_netmask: 64}`)},
		{"persistence netmask of a whole IPv6 address", svc6(`{vip: "2001:db8::10", port: 80, persistence: 5m, persistence_netmask: 128}`)},
		{"IPv6 udp service", svc6(`{vip: "2001:db8::10", port: 53, protocol: udp, backends: [{address: "2001:db8::2"}]}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.yaml)); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}

func TestParseReportsAllProblems(t *testing.T) {
	_, err := Parse([]byte(`
interfaces: []
local:
  addresses: ["::1"]
services:
  - vip: 172.19.0.10
    port: 80
    scheduler: fastest
    backends:
      - {address: "::1"}
  - vip: 172.19.0.10
    port: 80
log: {level: loud}
`))
	var got []string
	for _, p := range problemsOf(t, err) {
		got = append(got, p.Path)
	}
	want := []string{
		"interfaces",
		"local.addresses[0]",
		"services[0].scheduler",
		"services[0].backends[0].address",
		"services[1]", // duplicate of services[0]
		"log.level",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problem paths:\n got %q\nwant %q\nerror:\n%v", got, want, err)
	}
}

// Decoding problems are all reported too, even though they stop Parse
// before validation.
func TestParseReportsAllDecodeProblems(t *testing.T) {
	_, err := Parse([]byte(`
interfaces: [eth0]
typo: 1
services:
  - {vip: 172.19.0.10, port: 70000}
  - {vip: nope, port: 80, backends: [{address: 172.19.0.2, port: 99999}]}
`))
	var got []string
	for _, p := range problemsOf(t, err) {
		got = append(got, p.String())
	}
	want := []string{
		"typo: unknown field at line 3 (known fields: api, bgp, conntrack, dsr, ha, interfaces, local, log, metrics, services, state, syn_protection, sync, xdp_mode)",
		"services[0].port: 70000 is not a port (1-65535)",
		`services[1].vip: "nope" is not an IP address`,
		"services[1].backends[0].port: 99999 is not a port (1-65535)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got %q\nwant %q", got, want)
	}
}
