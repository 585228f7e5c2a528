package ident

import (
	"cmp"
	"fmt"
	"net/netip"
)

// Service identifies a service by what a client puts on the wire.
type Service struct {
	VIP   netip.Addr
	Port  uint16
	Proto Protocol
}

// String is how listings and logs write a service: "172.19.0.10:80/tcp".
func (k Service) String() string {
	return fmt.Sprintf("%s/%s", netip.AddrPortFrom(k.VIP, k.Port), k.Proto)
}

// AddrPort is the service's VIP and port.
func (k Service) AddrPort() netip.AddrPort { return netip.AddrPortFrom(k.VIP, k.Port) }

// Compare orders services by VIP, port and protocol, for listings and
// writes that must not depend on map order.
func (k Service) Compare(o Service) int {
	if c := k.VIP.Compare(o.VIP); c != 0 {
		return c
	}
	if c := cmp.Compare(k.Port, o.Port); c != 0 {
		return c
	}
	return cmp.Compare(k.Proto, o.Proto)
}

// Backend identifies one backend of one service: the same address and
// port behind two services are two backends, with their own counters and
// health.
type Backend struct {
	Service Service
	Addr    netip.AddrPort
}

func (b Backend) String() string { return fmt.Sprintf("%s %s", b.Service, b.Addr) }
