package bgp

import (
	"fmt"
	"net/netip"

	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// Attrs is how one prefix is announced.
type Attrs struct {
	// Backup announces a worse path, for a prefix this node carries only
	// while its owner is gone (a dead node's local addresses): the
	// owner's own announcement wins as soon as it is back. The path
	// carries this node's AS two more times (AS path prepend); see the
	// package comment for why not MED.
	Backup bool
}

// communityGracefulShutdown is GRACEFUL_SHUTDOWN (RFC 8326), 65535:0.
// Routers that honour it lower the path's preference to 0, so traffic
// moves to the other nodes before the withdrawal.
const communityGracefulShutdown = 0xFFFF0000

// backupPrepend is how many extra times a backup path carries this
// node's AS: two, so it loses to the owner's path even where the owner's
// announcement picked up one prepend on the way (as in vc5 and the
// research notes).
const backupPrepend = 2

// unspecified next hops are replaced by the session's local address
// (GoBGP does this for locally originated paths, eBGP and iBGP alike):
// next hop self without knowing the address.
var (
	nextHopSelf4 = netip.IPv4Unspecified()
	nextHopSelf6 = netip.IPv6Unspecified()
)

// buildPath is the GoBGP path that announces prefix with attrs. asn is
// this node's AS, communities those of Config (parsed), and
// gracefulShutdown adds GRACEFUL_SHUTDOWN.
func buildPath(prefix netip.Prefix, attrs Attrs, asn uint32, communities []uint32, gracefulShutdown bool) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("prefix %s: %w", prefix, err)
	}
	family, nh := bgp.RF_IPv4_UC, nextHopSelf4
	if prefix.Addr().Is6() {
		family, nh = bgp.RF_IPv6_UC, nextHopSelf6
	}
	nextHop, err := bgp.NewPathAttributeNextHop(nh)
	if err != nil {
		return nil, err
	}
	pattrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP), nextHop}
	if attrs.Backup {
		prepend := make([]uint32, backupPrepend)
		for i := range prepend {
			prepend[i] = asn
		}
		pattrs = append(pattrs, bgp.NewPathAttributeAsPath([]bgp.AsPathParamInterface{
			bgp.NewAs4PathParam(bgp.BGP_ASPATH_ATTR_TYPE_SEQ, prepend),
		}))
	}
	comms := communities
	if gracefulShutdown {
		comms = append(comms[:len(comms):len(comms)], communityGracefulShutdown)
	}
	if len(comms) > 0 {
		pattrs = append(pattrs, bgp.NewPathAttributeCommunities(comms))
	}
	return &apiutil.Path{Family: family, Nlri: nlri, Attrs: pattrs}, nil
}

// checkPrefix says why prefix cannot be announced, or nil.
func checkPrefix(prefix netip.Prefix) error {
	switch {
	case !prefix.IsValid():
		return fmt.Errorf("%s is not a prefix", prefix)
	case prefix.Addr().Is4In6():
		return fmt.Errorf("%s is an IPv4-mapped IPv6 prefix; give it as IPv4", prefix)
	case prefix.Masked() != prefix:
		return fmt.Errorf("%s has host bits set (the network is %s)", prefix, prefix.Masked())
	}
	return nil
}
