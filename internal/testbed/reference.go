package testbed

import (
	"errors"
	"fmt"
	"net/netip"
)

// The project's reference scenario: one /16 with a client, the balancer and
// two real servers. The VIP (ReferenceVIP) is deliberately not configured
// here; bringing it up is the balancer's job.
var (
	ReferenceSubnet = netip.MustParsePrefix("172.19.0.0/16")
	ReferenceVIP    = netip.MustParseAddr("172.19.0.10")
	ReferenceClient = netip.MustParseAddr("172.19.0.9")
	ReferenceLB     = netip.MustParseAddr("172.19.0.5")
	ReferenceRS1    = netip.MustParseAddr("172.19.0.2")
	ReferenceRS2    = netip.MustParseAddr("172.19.0.3")
)

// Reference is the reference topology: client, lb, rs1 and rs2 on one segment.
type Reference struct {
	Segment *Segment
	Client  *Host
	LB      *Host
	RS1     *Host
	RS2     *Host
}

// NewReference builds the reference topology. Nothing is left behind if it
// fails.
func NewReference() (_ *Reference, err error) {
	seg, err := NewSegment(ReferenceSubnet)
	if err != nil {
		return nil, fmt.Errorf("reference topology: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, seg.Close())
		}
	}()
	r := &Reference{Segment: seg}
	for _, spec := range []struct {
		host **Host
		name string
		addr netip.Addr
	}{
		{&r.Client, "client", ReferenceClient},
		{&r.LB, "lb", ReferenceLB},
		{&r.RS1, "rs1", ReferenceRS1},
		{&r.RS2, "rs2", ReferenceRS2},
	} {
		if *spec.host, err = seg.AddHost(spec.name, spec.addr); err != nil {
			return nil, fmt.Errorf("reference topology: %w", err)
		}
	}
	return r, nil
}

// ServeBackends starts the reference backends: on rs1 and rs2 an HTTP server
// on httpAddr answering "rs-1" / "rs-2", and a UDP echo server on udpAddr
// prefixing replies with "rs-1:" / "rs-2:". Empty addresses skip a service.
// Everything is stopped by Close.
func (r *Reference) ServeBackends(httpAddr, udpAddr string) error {
	for i, rs := range []*Host{r.RS1, r.RS2} {
		id := fmt.Sprintf("rs-%d", i+1)
		if httpAddr != "" {
			if _, err := rs.ServeHTTP(httpAddr, id); err != nil {
				return err
			}
		}
		if udpAddr != "" {
			if _, err := rs.ServeUDPEcho(udpAddr, id+":"); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close tears the whole topology down; see Segment.Close.
func (r *Reference) Close() error {
	return r.Segment.Close()
}
