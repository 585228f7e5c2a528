package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// Reason is why a packet left the program; every packet counts once.
type Reason uint32

var reasonNames = map[xdplbReason]string{}

// reasonText names a reason and says what it means, for people.
type reasonText struct{ name, meaning string }

var reasonInfo = map[xdplbReason]reasonText{
	xdplbReasonR_FWD_TX:                  {"fwd_tx", "forwarded out of the interface it came in on"},
	xdplbReasonR_FWD_REDIRECT:            {"fwd_redirect", "forwarded out of another interface"},
	xdplbReasonR_PASS_NOT_IPV4:           {"pass_not_ipv4", "neither IPv4 nor IPv6 (ARP, LLDP): to the host"},
	xdplbReasonR_PASS_NOT_L4:             {"pass_not_l4", "IPv4 or IPv6 but neither TCP nor UDP (SCTP, GRE, an IPv6 next header of 59, ...): to the host"},
	xdplbReasonR_PASS_NO_SERVICE:         {"pass_no_service", "not for a service: to the host"},
	xdplbReasonR_PASS_NO_CONN:            {"pass_no_conn", "to a NAT port but no connection: the host's own traffic"},
	xdplbReasonR_PASS_TRUNCATED:          {"pass_truncated", "headers cut short: to the host, which drops it"},
	xdplbReasonR_PASS_BAD_HEADER:         {"pass_bad_header", "inconsistent header: to the host, which drops it"},
	xdplbReasonR_PASS_FRAGMENT:           {"pass_fragment", "a fragment not for a VIP: to the host"},
	xdplbReasonR_DROP_FRAGMENT:           {"drop_fragment", "a fragment for a VIP: cannot be balanced"},
	xdplbReasonR_DROP_NO_CONN:            {"drop_no_conn", "TCP to a service, not a SYN, no connection"},
	xdplbReasonR_DROP_NO_BACKEND:         {"drop_no_backend", "new connection to a service without backends"},
	xdplbReasonR_DROP_PORTS_EXHAUSTED:    {"drop_ports_exhausted", "no free local address:port for a new connection"},
	xdplbReasonR_DROP_CT_FULL:            {"drop_ct_full", "connection table full"},
	xdplbReasonR_DROP_NO_NEIGH:           {"drop_no_neigh", "next hop not resolved yet (the backend's, or the client's for a connection adopted from a peer)"},
	xdplbReasonR_DROP_NO_ROUTE:           {"drop_no_route", "no route to the backend (or to the client of an adopted connection)"},
	xdplbReasonR_DROP_BAD_BACKEND:        {"drop_bad_backend", "ring names a backend that is gone"},
	xdplbReasonR_FWD_RESET:               {"fwd_reset", "answered with a TCP reset: the connection's backend was taken out"},
	xdplbReasonR_PASS_NOT_OURS:           {"pass_not_ours", "to a service, but in a frame to another MAC (broadcast, multicast, another host's) or of a VLAN the host does not have: to the host, which drops it"},
	xdplbReasonR_PASS_BAD_CHECKSUM:       {"pass_bad_checksum", "to a service, with a wrong IPv4 header checksum: to the host, which drops it"},
	xdplbReasonR_DROP_TTL:                {"drop_ttl", "to a service, with TTL (IPv6: hop limit) 0 or 1: a router would not forward it"},
	xdplbReasonR_DROP_BAD_FLAGS:          {"drop_bad_flags", "TCP flags no stack sends: SYN with FIN or RST, none of SYN, ACK, RST, FIN without ACK"},
	xdplbReasonR_FWD_SYN_CHALLENGE:       {"fwd_syn_challenge", "a SYN from a source not verified yet, answered with a SYN-ACK carrying a cookie (SYN authentication)"},
	xdplbReasonR_DROP_SYN_PROOF:          {"drop_syn_proof", "a client's reset carrying a valid cookie: its source is verified, its next SYN opens the connection"},
	xdplbReasonR_DROP_BAD_PROOF:          {"drop_bad_proof", "a reset to a service without a connection that answers no challenge, while challenges may be out"},
	xdplbReasonR_DROP_SYN_UNCHALLENGED:   {"drop_syn_unchallenged", "a SYN from an unverified source that could not be challenged (IPv4 options)"},
	xdplbReasonR_DROP_ABORTED:            {"drop_aborted", "a packet the program began to change and could not finish (never expected)"},
	xdplbReasonR_DROP_RST_WINDOW:         {"drop_rst_window", "a TCP reset far from the sequence number its receiver expects (a blind reset)"},
	xdplbReasonR_DROP_HALF_OPEN:          {"drop_half_open", "a new connection's SYN while half-open connections were at their bound (action drop)"},
	xdplbReasonR_FWD_HALF_OPEN_CHALLENGE: {"fwd_half_open_challenge", "a new connection's SYN answered with a challenge: half-open connections were at their bound"},
	xdplbReasonR_DROP_TOO_BIG:            {"drop_too_big", "too big for the way on and not answered: without DF (XDP cannot fragment), or with IPv4 options"},
	xdplbReasonR_FWD_ENCAP:               {"fwd_encap", "DSR: encapsulated (IPIP or GUE) and sent to the backend"},
	xdplbReasonR_FWD_DSR_L2:              {"fwd_dsr_l2", "DSR: sent to the backend's MAC, the packet otherwise unchanged"},
	xdplbReasonR_PASS_LOCAL_BACKEND:      {"pass_local_backend", "DSR: the backend is this host: passed to its stack unchanged"},
	xdplbReasonR_DROP_DSR_NOT_ONLINK:     {"drop_dsr_not_onlink", "dsr-l2 to a backend that is not on a link of this host (a router is in the way)"},
	xdplbReasonR_DROP_NO_HEADROOM:        {"drop_no_headroom", "no room in front of the frame for a DSR tunnel's outer headers"},
	xdplbReasonR_PASS_DECAP:              {"pass_decap", "IPIP or GUE from a balancer in dsr.decap_sources: decapsulated and passed to the host, never balanced again"},
	xdplbReasonR_DROP_DECAP_SOURCE:       {"drop_decap_source", "IPIP or GUE from a source not in dsr.decap_sources"},
	xdplbReasonR_DROP_DECAP_MALFORMED:    {"drop_decap_malformed", "IPIP or GUE whose inner packet is not a whole IPv4 packet"},
	xdplbReasonR_FWD_FRAG_NEEDED:         {"fwd_frag_needed", "too big for the way on (route, device, or DSR tunnel), with DF or over IPv6: answered with ICMP \"fragmentation needed\" (RFC 1191) or ICMPv6 \"packet too big\" (RFC 8201) and the MTU left"},
	xdplbReasonR_FWD_ICMP_ERROR:          {"fwd_icmp_error", "an ICMP or ICMPv6 error about a balanced connection, translated and sent to its other side (client or backend)"},
	xdplbReasonR_PASS_ICMP_RATE:          {"pass_icmp_rate", "an ICMP error about a balanced connection over the per-CPU budget for translating them: to the host"},
	xdplbReasonR_PASS_ICMP:               {"pass_icmp", "ICMP or ICMPv6 that is no error about a balanced connection (echo, neighbour discovery, an error about the host's own traffic, a forged one): to the host"},
	xdplbReasonR_DROP_ICMP_LOW_MTU:       {"drop_icmp_low_mtu", "a \"fragmentation needed\" or \"packet too big\" from the client's side announcing less than 1280: not passed to the backend, whose MTU towards the local address all its connections through it share"},
	xdplbReasonR_PASS_IPV6EXT:            {"pass_ipv6_ext", "IPv6 with an extension header the datapath does not walk (routing, ESP, AH, more than four): to the host"},
}

func init() {
	for r, info := range reasonInfo {
		reasonNames[r] = info.name
	}
}

// Describe says what a reason (by its String form) means, for people.
func Describe(name string) string {
	for _, info := range reasonInfo {
		if info.name == name {
			return info.meaning
		}
	}
	return ""
}

// ReasonCount is the number of reasons the datapath counts.
const ReasonCount = int(xdplbReasonR_MAX)

func (r Reason) String() string {
	if name, ok := reasonNames[xdplbReason(r)]; ok {
		return name
	}
	return fmt.Sprintf("reason_%d", uint32(r))
}

// ReasonByName finds a reason by its String form.
func ReasonByName(name string) (Reason, bool) {
	for r, n := range reasonNames {
		if n == name {
			return Reason(r), true
		}
	}
	return 0, false
}

// Reasons returns every reason's count, summed over CPUs, indexed by Reason.
func (d *Datapath) Reasons() ([]uint64, error) {
	out := make([]uint64, ReasonCount)
	for r := range out {
		n, err := SumCounter(d.objs.Reasons, uint32(r))
		if err != nil {
			return nil, fmt.Errorf("read counter %s: %w", Reason(r), err)
		}
		out[r] = n
	}
	return out, nil
}

// SumCounter reads one counter of a per-CPU array of uint64, summed over
// CPUs.
func SumCounter(m *ebpf.Map, key uint32) (uint64, error) {
	var perCPU []uint64
	if err := m.Lookup(key, &perCPU); err != nil {
		return 0, err
	}
	var n uint64
	for _, v := range perCPU {
		n += v
	}
	return n, nil
}

// Traffic is what one service or backend carried, summed over CPUs. In is
// client -> backend, Out is backend -> client.
type Traffic struct {
	PacketsIn  uint64
	BytesIn    uint64
	PacketsOut uint64
	BytesOut   uint64
	NewConns   uint64
}

// ServiceTraffic reads the counters of a service id.
func (d *Datapath) ServiceTraffic(id uint32) (Traffic, error) {
	return sumTraffic(d.objs.SvcStats, id)
}

// BackendTraffic reads the counters of a backend id.
func (d *Datapath) BackendTraffic(id uint32) (Traffic, error) {
	return sumTraffic(d.objs.BackendStats, id)
}

// ResetServiceTraffic zeroes a service id's counters, so a reused id starts
// from nothing.
func (d *Datapath) ResetServiceTraffic(id uint32) error {
	return resetTraffic(d.objs.SvcStats, id)
}

// ResetBackendTraffic zeroes a backend id's counters.
func (d *Datapath) ResetBackendTraffic(id uint32) error {
	return resetTraffic(d.objs.BackendStats, id)
}

func sumTraffic(m *ebpf.Map, id uint32) (Traffic, error) {
	var perCPU []xdplbTraffic
	if err := m.Lookup(id, &perCPU); err != nil {
		return Traffic{}, fmt.Errorf("read traffic of id %d: %w", id, err)
	}
	var t Traffic
	for _, c := range perCPU {
		t.PacketsIn += c.PacketsIn
		t.BytesIn += c.BytesIn
		t.PacketsOut += c.PacketsOut
		t.BytesOut += c.BytesOut
		t.NewConns += c.NewConns
	}
	return t, nil
}

func resetTraffic(m *ebpf.Map, id uint32) error {
	zero := make([]xdplbTraffic, ebpf.MustPossibleCPU())
	if err := m.Update(id, zero, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("reset traffic of id %d: %w", id, err)
	}
	return nil
}
