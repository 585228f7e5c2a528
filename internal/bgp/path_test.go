package bgp

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

func TestBuildPath(t *testing.T) {
	v4 := netip.MustParsePrefix("10.99.0.10/32")
	v6 := netip.MustParsePrefix("2001:db8::10/128")
	comms := []uint32{65001<<16 | 100}
	tests := []struct {
		name     string
		prefix   netip.Prefix
		attrs    Attrs
		shutdown bool
		family   bgp.Family
		nextHop  netip.Addr
		asPath   []uint32
		comms    []uint32
	}{
		{"primary", v4, Attrs{}, false, bgp.RF_IPv4_UC, netip.IPv4Unspecified(), nil, comms},
		{"backup prepends own AS twice", v4, Attrs{Backup: true}, false, bgp.RF_IPv4_UC, netip.IPv4Unspecified(), []uint32{65001, 65001}, comms},
		{"graceful shutdown", v4, Attrs{}, true, bgp.RF_IPv4_UC, netip.IPv4Unspecified(), nil, []uint32{65001<<16 | 100, 0xFFFF0000}},
		{"ipv6", v6, Attrs{}, false, bgp.RF_IPv6_UC, netip.IPv6Unspecified(), nil, comms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := buildPath(tt.prefix, tt.attrs, 65001, comms, tt.shutdown)
			if err != nil {
				t.Fatal(err)
			}
			s := readPath(p)
			if p.Family != tt.family || p.Nlri.String() != tt.prefix.String() {
				t.Errorf("family %s nlri %s, want %s %s", p.Family, p.Nlri, tt.family, tt.prefix)
			}
			if s.nextHop != tt.nextHop || s.origin != bgp.BGP_ORIGIN_ATTR_TYPE_IGP {
				t.Errorf("next hop %s origin %d, want %s (self) and IGP", s.nextHop, s.origin, tt.nextHop)
			}
			if !slices.Equal(s.asPath, tt.asPath) || !slices.Equal(s.communities, tt.comms) {
				t.Errorf("as path %v communities %#x, want %v %#x", s.asPath, s.communities, tt.asPath, tt.comms)
			}
		})
	}
	if len(comms) != 1 {
		t.Error("buildPath appended to the caller's communities")
	}
}
