package config

import (
	"fmt"
	"net/netip"
)

// The rules that follow from an address family: which addresses may be a
// VIP, backend or local address, and what an IPv6 service cannot do yet.
// The datapath translates IPv4 to IPv4 and IPv6 to IPv6 (NAT66); it
// keeps one table of local addresses per family.

// family names a's address family in messages.
func family(a netip.Addr) string {
	if a.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// unicastProblem explains why a cannot be a local address, VIP or
// backend, of either family, or returns "" if it can.
func unicastProblem(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "missing (an IPv4 or IPv6 address is required)"
	case a.Is4In6():
		// The datapath would see an IPv6 packet to an address no IPv6
		// client uses; the address meant is the IPv4 one.
		return fmt.Sprintf("%s is an IPv4-mapped IPv6 address; write it as the IPv4 address %s", a, a.Unmap())
	case a.Zone() != "":
		return fmt.Sprintf("%s has a zone (%%%s); write the address without one", a, a.Zone())
	case a.IsUnspecified():
		return fmt.Sprintf("%s is the unspecified address", a)
	case a.IsLoopback():
		return fmt.Sprintf("%s is a loopback address", a)
	case a.IsMulticast():
		return fmt.Sprintf("%s is a multicast address", a)
	case a == broadcast:
		return fmt.Sprintf("%s is the broadcast address", a)
	case a.Is6() && a.IsLinkLocalUnicast():
		// Valid on one link only: the FIB cannot route to it, and a
		// client elsewhere cannot reach it.
		return fmt.Sprintf("%s is an IPv6 link-local address (fe80::/10); use a global or unique local address", a)
	}
	return ""
}

// unicastIPv4Problem is unicastProblem for the addresses that must be
// IPv4 whatever the services use: the DSR tunnels' ends, and the local
// addresses taken over from other nodes, whose connections only reach
// this node through connection sync, which carries IPv4 connections.
func unicastIPv4Problem(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "missing (an IPv4 address is required)"
	case !a.Is4():
		return fmt.Sprintf("%s is an IPv6 address; IPv6 is not supported yet", a)
	}
	return unicastProblem(a)
}

// localFamilies checks the count of local addresses of each family, and
// returns which families have any; nil when that is unknown (none listed,
// or one that is no address), which the problems already reported say.
func (ps *problems) localFamilies(addrs []netip.Addr) (has map[string]bool) {
	count := map[string]int{}
	for _, a := range addrs {
		if unicastProblem(a) == "" {
			count[family(a)]++
		}
	}
	for _, f := range []string{"IPv4", "IPv6"} {
		if count[f] > MaxLocalAddresses {
			ps.add("local.addresses", "%d %s addresses, more than the maximum of %d per family", count[f], f, MaxLocalAddresses)
		}
	}
	if len(addrs) == 0 || count["IPv4"]+count["IPv6"] < len(addrs) {
		return nil
	}
	return map[string]bool{"IPv4": count["IPv4"] > 0, "IPv6": count["IPv6"] > 0}
}

// serviceFamily checks that a service at path has what its backends'
// family needs: backends and a fallback of one family (the VIP's, or
// IPv4 behind an IPv6 VIP: NAT64), and a local address of that family to
// reach them from. s.VIP is a valid unicast address.
func (ps *problems) serviceFamily(path string, s Service, localFamilies map[string]bool) {
	vipFamily := family(s.VIP)
	backendFamily := vipFamily
	if s.NAT64() {
		backendFamily = "IPv4"
	}
	// DSR sends the client's packet as it is, from no local address.
	if localFamilies != nil && !localFamilies[backendFamily] && !s.DSR() {
		ps.add(field(path, "vip"), "%s is %s with %s backends, and local.addresses has no %s address to reach them from "+
			"(Full-NAT sends the packets to a backend from a local address of its family); add one",
			s.VIP, vipFamily, backendFamily, backendFamily)
	}
	sameFamily := func(p string, a netip.Addr) {
		if unicastProblem(a) != "" || family(a) == backendFamily {
			return
		}
		ps.add(p, "%s is %s, and the vip %s is %s with %s backends: %s",
			a, family(a), s.VIP, vipFamily, backendFamily, mixedFamilies(vipFamily))
	}
	for i, b := range s.Backends {
		sameFamily(field(index(field(path, "backends"), i), "address"), b.Address)
	}
	if f := s.Fallback; f != nil {
		sameFamily(field(field(path, "fallback"), "address"), f.Address)
	}
}

// mixedFamilies says which backends a VIP of family vip can have.
func mixedFamilies(vip string) string {
	if vip == "IPv6" {
		return "a service's backends and fallback are all IPv6, or all IPv4 (NAT64)"
	}
	return "translating IPv4 clients to IPv6 backends (NAT46) is not supported; use IPv4 backends for this vip"
}

// prefixBits is the longest persistence_netmask a VIP's family allows.
func prefixBits(vip netip.Addr) uint8 {
	if vip.Is4() {
		return 32
	}
	return 128
}
