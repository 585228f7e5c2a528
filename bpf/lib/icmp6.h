/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* ICMPv6 errors about balanced IPv6 connections, translated for the other
 * side as icmp.h translates ICMP ones (see there for why). What differs:
 * ICMPv6's checksum covers a pseudo header, so the outer addresses count
 * in it too; there is no IP header checksum; a "packet too big" carries
 * its MTU in 32 bits, and passes as it is (both sides' headers are the
 * same size). */
#ifndef XDPLB_ICMP6_H
#define XDPLB_ICMP6_H

#include "icmp.h"
#include "fib6.h"

#define ICMPV6_DEST_UNREACH 1
#define ICMPV6_TIME_EXCEED 3
#define ICMPV6_PARAMPROB 4
#define ICMPV6_PORT_UNREACH 4 /* a code of ICMPV6_DEST_UNREACH */

/* A translation, as struct icmp_way. */
struct icmp6_way {
	struct addr6 outer_src, outer_dst;
	struct addr6 in_src, in_dst;
	__be16 in_sport, in_dport;
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u8 to_backend;
};

/* icmp6_way_of finds the connection whose packet the error quotes (k: the
 * quoted tuple turned around) and the way to its other side; 0 if none,
 * or no next hop there yet. */
static __always_inline int icmp6_way_of(const struct ct6_key *k, struct icmp6_way *w)
{
	const struct ct6_rev *rev = bpf_map_lookup_elem(&ct6_reverse, k);
	const struct ct6_fwd *fwd;

	if (rev) {
		w->outer_src = rev->client.daddr;
		w->outer_dst = rev->client.saddr;
		w->in_src = rev->client.saddr;
		w->in_dst = rev->client.daddr;
		w->in_sport = rev->client.sport;
		w->in_dport = rev->client.dport;
		w->ifindex = rev->ifindex;
		__builtin_memcpy(w->dmac, rev->client_mac, ETH_ALEN);
		__builtin_memcpy(w->smac, rev->lb_mac, ETH_ALEN);
		return 1;
	}
	fwd = bpf_map_lookup_elem(&ct6_forward, k);
	/* A NAT64 connection's backend is IPv4: its errors are not
	 * translated across families. */
	if (!fwd || !fwd->hop_ifindex || (fwd->flags & CT6_FWD_NAT64))
		return 0;
	w->outer_src = fwd->local_addr;
	w->outer_dst = fwd->backend_addr;
	w->in_src = fwd->backend_addr;
	w->in_dst = fwd->local_addr;
	w->in_sport = fwd->backend_port;
	w->in_dport = fwd->local_port;
	w->to_backend = 1;
	w->ifindex = fwd->hop_ifindex;
	__builtin_memcpy(w->dmac, fwd->hop_dmac, ETH_ALEN);
	__builtin_memcpy(w->smac, fwd->hop_smac, ETH_ALEN);
	return 1;
}

/* icmp6_error handles an ICMPv6 packet whose message follows the IPv6
 * header (walk_ipv6 found one): an error about a balanced connection is
 * translated and sent on, anything else (neighbour discovery among it)
 * passes to the host. A global function, verified on its own. */
__attribute__((noinline)) int icmp6_error(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct icmp_error_hdr *icmp;
	struct ipv6hdr *ip6, *in;
	struct icmp6_way w = {};
	struct ct6_key k = {};
	__u32 l2 = sizeof(*eth), delta, payload;
	__u16 l4_old, l4_new, vid = 0;
	__be16 *ports, *l4_csum = NULL;

	if ((void *)(eth + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_tag *tag = (void *)(eth + 1);

		if ((void *)(tag + 1) > end)
			return verdict(R_PASS_TRUNCATED, XDP_PASS);
		vid = bpf_ntohs(tag->tci) & 0x0fff;
		l2 += sizeof(*tag);
	}
	ip6 = data + l2;
	if ((void *)(ip6 + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	icmp = (void *)(ip6 + 1);
	if ((void *)(icmp + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	if (icmp->type != ICMPV6_DEST_UNREACH && icmp->type != ICMPV6_PKT_TOOBIG &&
	    icmp->type != ICMPV6_TIME_EXCEED && icmp->type != ICMPV6_PARAMPROB)
		return verdict(R_PASS_ICMP, XDP_PASS);
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	/* Only a quote whose transport header follows the IPv6 header at
	 * once is matched: the ports must be where they are looked for. */
	if (in->version != 6 || (in->nexthdr != IPPROTO_TCP && in->nexthdr != IPPROTO_UDP))
		return verdict(R_PASS_ICMP, XDP_PASS);
	/* RFC 4443 quotes as much as fits; the ports and UDP's checksum
	 * are in the first 8 bytes. */
	payload = bpf_ntohs(ip6->payload_len);
	if ((void *)(ip6 + 1) + payload > end || payload < sizeof(*icmp) + sizeof(*in) + 8)
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	ports = (void *)(in + 1);
	if ((void *)ports + 8 > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	/* An error is about a packet its receiver sent; a port unreachable
	 * comes from the host the packet was for. */
	if (!addr6_eq((const struct addr6 *)&ip6->daddr, (const struct addr6 *)&in->saddr) ||
	    (icmp->type == ICMPV6_DEST_UNREACH && icmp->code == ICMPV6_PORT_UNREACH &&
	     !addr6_eq((const struct addr6 *)&ip6->saddr, (const struct addr6 *)&in->daddr)))
		return verdict(R_PASS_ICMP, XDP_PASS);

	if (!addressed_to_us(ctx, eth) || !vlan_is_ours(ctx, vid))
		return verdict(R_PASS_NOT_OURS, XDP_PASS);
	__builtin_memcpy(&k.saddr, &in->daddr, sizeof(k.saddr));
	__builtin_memcpy(&k.daddr, &in->saddr, sizeof(k.daddr));
	k.sport = ports[1];
	k.dport = ports[0];
	k.proto = in->nexthdr;
	if (!icmp6_way_of(&k, &w))
		return verdict(R_PASS_ICMP, XDP_PASS);
	if (ip6->hop_limit <= 1)
		return verdict(R_DROP_TTL, XDP_DROP);
	/* Below IPv6's minimum an MTU is no link's: never passed on. */
	if (w.to_backend && icmp->type == ICMPV6_PKT_TOOBIG && bpf_ntohl(icmp->rest) < ALWAYS_FITS6)
		return verdict(R_DROP_ICMP_LOW_MTU, XDP_DROP);
	if (!icmp_budget_left())
		return verdict(R_PASS_ICMP_RATE, XDP_PASS);

	/* The quoted transport checksum, where the quote holds it (UDP's
	 * always, TCP's with 18 bytes or more; a UDP 0 means none). */
	if (in->nexthdr == IPPROTO_UDP && ports[3] != 0)
		l4_csum = &ports[3];
	else if (in->nexthdr == IPPROTO_TCP && payload >= sizeof(*icmp) + sizeof(*in) + 18 &&
		 (void *)ports + 18 <= end)
		l4_csum = &ports[8];

	/* The quote's addresses and ports, which its own transport checksum
	 * covers, and ICMPv6's too. */
	delta = addr6_delta(0, (const struct addr6 *)&in->saddr, &w.in_src);
	delta = addr6_delta(delta, (const struct addr6 *)&in->daddr, &w.in_dst);
	delta = csum_delta16(delta, bpf_ntohs(ports[0]), bpf_ntohs(w.in_sport));
	delta = csum_delta16(delta, bpf_ntohs(ports[1]), bpf_ntohs(w.in_dport));
	if (l4_csum) {
		l4_old = bpf_ntohs(*l4_csum);
		l4_new = csum_apply(l4_old, delta);
		if (in->nexthdr == IPPROTO_UDP && l4_new == 0)
			l4_new = 0xffff;
		*l4_csum = bpf_htons(l4_new);
		delta = csum_delta16(delta, l4_old, l4_new);
	}
	/* The outer addresses: in ICMPv6's pseudo header. */
	delta = addr6_delta(delta, (const struct addr6 *)&ip6->saddr, &w.outer_src);
	delta = addr6_delta(delta, (const struct addr6 *)&ip6->daddr, &w.outer_dst);
	icmp->checksum = bpf_htons(csum_apply(bpf_ntohs(icmp->checksum), delta));

	__builtin_memcpy(&in->saddr, &w.in_src, sizeof(w.in_src));
	__builtin_memcpy(&in->daddr, &w.in_dst, sizeof(w.in_dst));
	ports[0] = w.in_sport;
	ports[1] = w.in_dport;
	ip6->hop_limit--;
	__builtin_memcpy(&ip6->saddr, &w.outer_src, sizeof(w.outer_src));
	__builtin_memcpy(&ip6->daddr, &w.outer_dst, sizeof(w.outer_dst));

	__builtin_memcpy(eth->h_dest, w.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, w.smac, ETH_ALEN);
	if (w.ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_ICMP_ERROR, XDP_TX);
	return verdict(R_FWD_ICMP_ERROR, bpf_redirect(w.ifindex, 0));
}

#endif
