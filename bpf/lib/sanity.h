/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Only frames for this host, only packets a router would forward. The
 * parser accepts whatever it can read; these checks run only on what the
 * program is about to forward (to a service, or a reply to a local port),
 * so the host's own traffic pays nothing for them. What fails goes to the
 * kernel, which drops it the way it always does, or is dropped here, with
 * a counter either way. */
#ifndef XDPLB_SANITY_H
#define XDPLB_SANITY_H

#include "parse.h"

/* The MACs of the interfaces the program is attached to. A global array
 * scanned in order, not a map: the first entry is nearly always the one,
 * and a scan of a few entries costs less than a hash lookup. Set by the
 * control plane before it attaches; an ifindex of 0 ends the list. */
volatile struct if_mac if_macs[MAX_IF_MACS];

/* addressed_to_us tells whether the frame's destination MAC is the
 * receiving interface's. An interface the control plane did not list is
 * not checked. */
static __always_inline int addressed_to_us(const struct xdp_md *ctx, const struct ethhdr *eth)
{
	__u32 ifindex = ctx->ingress_ifindex;
	int i;

	for (i = 0; i < MAX_IF_MACS; i++) {
		__u32 idx = if_macs[i].ifindex;

		if (idx == 0)
			return 1;
		if (idx != ifindex)
			continue;
		return eth->h_dest[0] == if_macs[i].mac[0] && eth->h_dest[1] == if_macs[i].mac[1] &&
		       eth->h_dest[2] == if_macs[i].mac[2] && eth->h_dest[3] == if_macs[i].mac[3] &&
		       eth->h_dest[4] == if_macs[i].mac[4] && eth->h_dest[5] == if_macs[i].mac[5];
	}
	return 1;
}

/* The VLANs the host has on the attached interfaces, as if_macs: a frame
 * tagged for another one is not for this host (the kernel would drop it,
 * having no interface for it). An ifindex of 0 ends the list; a first
 * entry of VLAN_CHECK_OFF turns the check off (more VLANs than the table
 * holds). */
#define VLAN_CHECK_OFF 0xffffffff
volatile struct if_vlan if_vlans[MAX_IF_VLANS];

static __always_inline int vlan_is_ours(const struct xdp_md *ctx, __u16 vid)
{
	__u32 ifindex = ctx->ingress_ifindex;
	int i;

	if (vid == 0 || if_vlans[0].ifindex == VLAN_CHECK_OFF)
		return 1;
	for (i = 0; i < MAX_IF_VLANS; i++) {
		if (if_vlans[i].ifindex == 0)
			return 0;
		if (if_vlans[i].ifindex == ifindex && if_vlans[i].vid == vid)
			return 1;
	}
	return 0;
}

/* ipv4_csum_ok sums the header, options included, as the receiver of a
 * valid one finds 0xffff. */
static __always_inline int ipv4_csum_ok(const struct iphdr *ip, void *end)
{
	const __u16 *w = (const __u16 *)ip, *opt = (const __u16 *)(ip + 1);
	__u32 sum, words = (ip->ihl - 5) * 2;
	int i;

	sum = (__u32)w[0] + w[1] + w[2] + w[3] + w[4] + w[5] + w[6] + w[7] + w[8] + w[9];
	for (i = 0; i < 20; i++) {
		if (i >= words)
			break;
		/* The parser checked the options are in the frame; the verifier
		 * needs it again for each word, and the barrier keeps the
		 * compiler from turning the check into arithmetic on end,
		 * which the verifier refuses. */
		asm volatile("" : "+r"(opt));
		if ((void *)(opt + 1) > end)
			return 0;
		sum += *opt;
		opt++;
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

/* tcp_flags_valid refuses the combinations no TCP stack sends, which
 * scanners and floods do: SYN with FIN or RST, no SYN, ACK or RST at all,
 * FIN without ACK. */
static __always_inline int tcp_flags_valid(__u8 f)
{
	if ((f & TCP_SYN) && (f & (TCP_FIN | TCP_RST)))
		return 0;
	if (!(f & (TCP_SYN | TCP_ACK | TCP_RST)))
		return 0;
	return !(f & TCP_FIN) || (f & TCP_ACK);
}

/* lengths_ok checks that the IPv4 total length fits in the frame and the
 * L4 header's own length fits in the IPv4 payload. */
static __always_inline int lengths_ok(const struct packet *p, void *end)
{
	__u32 tot = bpf_ntohs(p->ip->tot_len), ihl = p->ip->ihl * 4, l4;

	if ((void *)p->ip + tot > end)
		return 0;
	l4 = tot - ihl;
	if (p->proto == IPPROTO_TCP)
		return (__u32)(((__u8 *)p->sport)[12] >> 4) * 4 <= l4;
	return bpf_ntohs(((struct udphdr *)p->sport)->len) >= sizeof(struct udphdr) &&
	       bpf_ntohs(((struct udphdr *)p->sport)->len) <= l4;
}

/* check_forwardable runs the checks, cheapest first. */
static __always_inline int check_forwardable(struct xdp_md *ctx, const struct packet *p)
{
	void *end = (void *)(long)ctx->data_end;

	if (!addressed_to_us(ctx, p->eth) || !vlan_is_ours(ctx, p->vlan))
		return verdict(R_PASS_NOT_OURS, XDP_PASS);
	if (p->ip->ttl <= 1)
		return verdict(R_DROP_TTL, XDP_DROP);
	if (!lengths_ok(p, end))
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	if (!ipv4_csum_ok(p->ip, end))
		return verdict(R_PASS_BAD_CHECKSUM, XDP_PASS);
	if (p->proto == IPPROTO_TCP && !tcp_flags_valid(p->tcp_flags))
		return verdict(R_DROP_BAD_FLAGS, XDP_DROP);
	return CONTINUE;
}

#endif
