package bgp

import (
	"net/netip"
	"slices"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// seen is what a test reads from a path: the attributes this package
// sets, in comparable form.
type seen struct {
	nextHop     netip.Addr
	asPath      []uint32
	communities []uint32
	origin      uint8
	stale       bool
}

func readPath(p *apiutil.Path) seen {
	s := seen{stale: p.Stale}
	for _, a := range p.Attrs {
		switch a := a.(type) {
		case *bgp.PathAttributeNextHop:
			s.nextHop = a.Value
		case *bgp.PathAttributeMpReachNLRI:
			s.nextHop = a.Nexthop
		case *bgp.PathAttributeAsPath:
			for _, seg := range a.Value {
				s.asPath = append(s.asPath, seg.GetAS()...)
			}
		case *bgp.PathAttributeCommunities:
			s.communities = slices.Clone(a.Value)
		case *bgp.PathAttributeOrigin:
			s.origin = a.Value
		}
	}
	return s
}

func (s seen) hasCommunity(c uint32) bool { return slices.Contains(s.communities, c) }
