/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* IPv6 parsing: the fixed header, the extension headers a packet to a
 * service may carry on its way (hop-by-hop and destination options), TCP
 * and UDP. A fragment to a VIP is dropped, as IPv4's; anything else the
 * program does not understand is the host's. */
#ifndef XDPLB_PARSE6_H
#define XDPLB_PARSE6_H

#include <linux/ipv6.h>
#include <linux/in6.h>
#include "parse.h"
#include "maps6.h"

/* Extension headers walked before the upper-layer header, at most. RFC
 * 8200 orders hop-by-hop, destination options, routing, fragment,
 * destination options: the two this walks, a fragment header and one
 * more is all a well-formed packet to a service carries. */
#define IPV6_EXT_MAX 4

#define IPV6_FRAG_OFFSET 0xfff8
#define IPV6_FRAG_MORE 0x0001

struct ipv6_frag {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off;
	__be32 identification;
};

/* handle_fragment6: as handle_fragment, for IPv6. */
static __always_inline int handle_fragment6(const struct ipv6hdr *ip6)
{
	struct addr6 dst;

	__builtin_memcpy(&dst, &ip6->daddr, sizeof(dst));
	if (bpf_map_lookup_elem(&vips6, &dst))
		return verdict(R_DROP_FRAGMENT, XDP_DROP);
	return verdict(R_PASS_FRAGMENT, XDP_PASS);
}

/* An IPv6 packet is parsed in two steps, each in a function of its own
 * (ipv6.h): walk_ipv6 finds the upper-layer header behind the extension
 * headers, and parse_ipv6 reads the headers again from its offset. The
 * verifier then checks what follows the walk once, for any offset, where
 * it would check it again for every way through the walk. */

/* walk_ipv6 finds the upper-layer protocol (*next) and the offset of its
 * header in the frame (*l4_off), or returns a verdict. */
static __always_inline int walk_ipv6(struct xdp_md *ctx, __u32 *l4_off, __u8 *next)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct packet p = {};
	struct ipv6hdr *ip6;
	__u32 ext = 0;
	__be16 proto;
	void *l3, *l4;
	int ret, i;

	ret = parse_l2(ctx, &p, &l3, &proto);
	if (ret >= 0)
		return ret;
	ip6 = l3;
	if ((void *)(ip6 + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	if (ip6->version != 6)
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	*next = ip6->nexthdr;
	l4 = ip6 + 1;
	for (i = 0; i < IPV6_EXT_MAX; i++) {
		if (*next == IPPROTO_HOPOPTS || *next == IPPROTO_DSTOPTS) {
			struct ipv6_opt_hdr *opt = l4;

			if ((void *)(opt + 1) > end)
				return verdict(R_PASS_TRUNCATED, XDP_PASS);
			*next = opt->nexthdr;
			ext += ((__u32)opt->hdrlen + 1) * 8;
			l4 = (void *)(ip6 + 1) + ext;
			continue;
		}
		if (*next == IPPROTO_FRAGMENT) {
			struct ipv6_frag *frag = l4;

			if ((void *)(frag + 1) > end)
				return verdict(R_PASS_TRUNCATED, XDP_PASS);
			/* An atomic fragment (offset 0, no more: RFC 6946)
			 * is the whole packet. */
			if (frag->frag_off & bpf_htons(IPV6_FRAG_OFFSET | IPV6_FRAG_MORE))
				return handle_fragment6(ip6);
			*next = frag->nexthdr;
			ext += sizeof(*frag);
			l4 = (void *)(ip6 + 1) + ext;
			continue;
		}
		break;
	}
	if (*next == IPPROTO_TCP || *next == IPPROTO_UDP) {
		*l4_off = l4 - data;
		return CONTINUE;
	}
	/* An ICMPv6 message right behind the IPv6 header may be an error
	 * about a balanced connection (icmp6.h); behind extension headers
	 * it is the host's. */
	if (*next == IPPROTO_ICMPV6)
		return ext == 0 ? PARSED_ICMP : verdict(R_PASS_ICMP, XDP_PASS);
	if (i == IPV6_EXT_MAX || *next == IPPROTO_HOPOPTS || *next == IPPROTO_DSTOPTS ||
	    *next == IPPROTO_ROUTING || *next == IPPROTO_FRAGMENT || *next == IPPROTO_AH ||
	    *next == IPPROTO_ESP || *next == IPPROTO_MH)
		return verdict(R_PASS_IPV6_EXT, XDP_PASS);
	return verdict(R_PASS_NOT_L4, XDP_PASS);
}

/* The furthest an upper-layer header can be: Ethernet, a VLAN tag, the
 * IPv6 header and IPV6_EXT_MAX extension headers of the most 2048 bytes. */
#define IPV6_L4_OFF_MAX (18 + 40 + IPV6_EXT_MAX * 2048)

/* parse_ipv6 reads the headers of an IPv6 packet whose upper-layer header
 * (TCP or UDP: next) walk_ipv6 found at l4_off. */
static __always_inline int parse_ipv6(struct xdp_md *ctx, struct packet *p, __u32 l4_off, __u8 next)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ipv6hdr *ip6;
	__be16 proto;
	void *l3;
	int ret;

	ret = parse_l2(ctx, p, &l3, &proto);
	if (ret >= 0)
		return ret;
	ip6 = l3;
	if ((void *)(ip6 + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	if (l4_off > IPV6_L4_OFF_MAX || data + l4_off < (void *)(ip6 + 1))
		return verdict(R_DROP_ABORTED, XDP_DROP);
	p->ip6 = ip6;
	p->proto = next;
	p->ext_len = data + l4_off - (void *)(ip6 + 1);
	return parse_l4(p, data + l4_off, end);
}

/* lengths6_ok checks that the payload length fits in the frame and the L4
 * header's own length in what is left of the payload. A payload length of
 * 0 (a jumbogram's) is not forwarded. */
static __always_inline int lengths6_ok(const struct packet *p, void *end)
{
	__u32 payload = bpf_ntohs(p->ip6->payload_len), l4;
	struct udphdr *uh;

	if (payload == 0 || payload < p->ext_len || (void *)(p->ip6 + 1) + payload > end)
		return 0;
	l4 = payload - p->ext_len;
	/* The bounds again: the verifier does not tie p->proto to the ones
	 * parse_l4 checked. */
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = (struct tcphdr *)p->sport;

		return (void *)(th + 1) <= end && (__u32)th->doff * 4 <= l4;
	}
	uh = (struct udphdr *)p->sport;
	return (void *)(uh + 1) <= end && bpf_ntohs(uh->len) >= sizeof(*uh) && bpf_ntohs(uh->len) <= l4;
}

/* check_forwardable6: check_forwardable's checks for IPv6, which has no
 * header checksum. */
static __always_inline int check_forwardable6(struct xdp_md *ctx, const struct packet *p)
{
	void *end = (void *)(long)ctx->data_end;

	if (!addressed_to_us(ctx, p->eth) || !vlan_is_ours(ctx, p->vlan))
		return verdict(R_PASS_NOT_OURS, XDP_PASS);
	if (p->ip6->hop_limit <= 1)
		return verdict(R_DROP_TTL, XDP_DROP);
	if (!lengths6_ok(p, end))
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	if (p->proto == IPPROTO_TCP && !tcp_flags_valid(p->tcp_flags))
		return verdict(R_DROP_BAD_FLAGS, XDP_DROP);
	return CONTINUE;
}

#endif
