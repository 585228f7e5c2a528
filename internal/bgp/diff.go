package bgp

import (
	"net/netip"
	"slices"

	"github.com/google/uuid"
)

// route is one prefix that GoBGP holds for this node.
type route struct {
	attrs Attrs
	// id is what AddPath returned; DeletePath by id withdraws exactly
	// this path and nothing another caller added.
	id uuid.UUID
}

// plan is what takes GoBGP from the routes it holds to the desired ones.
type plan struct {
	announce []netip.Prefix // new, or announced with other Attrs
	withdraw []netip.Prefix // announced, no longer desired
}

// diff plans the change from current to desired, each list sorted so
// that the updates go out in a stable order. A prefix whose Attrs
// change is announced again, not withdrawn: the new path replaces the
// old one in a single UPDATE, with no moment without a route.
func diff(current map[netip.Prefix]route, desired map[netip.Prefix]Attrs) plan {
	var p plan
	for prefix, attrs := range desired {
		if r, ok := current[prefix]; !ok || r.attrs != attrs {
			p.announce = append(p.announce, prefix)
		}
	}
	for prefix := range current {
		if _, ok := desired[prefix]; !ok {
			p.withdraw = append(p.withdraw, prefix)
		}
	}
	slices.SortFunc(p.announce, netip.Prefix.Compare)
	slices.SortFunc(p.withdraw, netip.Prefix.Compare)
	return p
}
