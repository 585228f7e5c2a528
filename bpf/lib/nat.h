/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Address and port rewriting with checksum fix-up. */
#ifndef XDPLB_NAT_H
#define XDPLB_NAT_H

#include "csum.h"
#include "parse.h"

struct tuple {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
};

/* ttl_word is the IPv4 header's 16-bit word of TTL and protocol, as the
 * header checksum sums it. */
static __always_inline __u16 ttl_word(const struct iphdr *ip)
{
	return (__u16)ip->ttl << 8 | ip->protocol;
}

/* decrement_ttl counts the balancer as the hop it is (a loop between
 * balancers then ends); the caller dropped TTLs of 1 and less. */
static __always_inline void decrement_ttl(struct iphdr *ip)
{
	__u16 old = ttl_word(ip);

	ip->ttl--;
	ip->check = bpf_htons(csum_apply(bpf_ntohs(ip->check), csum_delta16(0, old, ttl_word(ip))));
}

/* rewrite replaces both addresses and both ports, and takes one from the
 * TTL. The IPv4 header checksum covers the addresses and the TTL; TCP and
 * UDP checksums cover the addresses too (pseudo header) and the ports. A
 * UDP checksum of zero means "none" and stays so; a computed zero is sent
 * as 0xffff (RFC 768). */
static __always_inline void rewrite(struct packet *p, const struct tuple *to)
{
	struct iphdr *ip = p->ip;
	__u32 addr_delta = 0, l4_delta, ip_delta;
	__u16 l4_check, ttl_old = ttl_word(ip);

	addr_delta = csum_delta32(addr_delta, bpf_ntohl(ip->saddr), bpf_ntohl(to->saddr));
	addr_delta = csum_delta32(addr_delta, bpf_ntohl(ip->daddr), bpf_ntohl(to->daddr));
	l4_delta = csum_delta16(addr_delta, bpf_ntohs(*p->sport), bpf_ntohs(to->sport));
	l4_delta = csum_delta16(l4_delta, bpf_ntohs(*p->dport), bpf_ntohs(to->dport));

	ip->ttl--;
	ip_delta = csum_delta16(addr_delta, ttl_old, ttl_word(ip));
	ip->check = bpf_htons(csum_apply(bpf_ntohs(ip->check), ip_delta));
	ip->saddr = to->saddr;
	ip->daddr = to->daddr;
	*p->sport = to->sport;
	*p->dport = to->dport;

	l4_check = bpf_ntohs(*p->l4_csum);
	if (p->proto == IPPROTO_UDP && l4_check == 0)
		return;
	l4_check = csum_apply(l4_check, l4_delta);
	if (p->proto == IPPROTO_UDP && l4_check == 0)
		l4_check = 0xffff;
	*p->l4_csum = bpf_htons(l4_check);
}

#endif
