/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* IPv6 address and port rewriting (NAT66). IPv6 has no header checksum:
 * only the TCP or UDP checksum covers the addresses (pseudo header) and
 * the ports. */
#ifndef XDPLB_NAT6_H
#define XDPLB_NAT6_H

#include "csum.h"
#include "parse6.h"

struct tuple6 {
	struct addr6 saddr;
	struct addr6 daddr;
	__be16 sport;
	__be16 dport;
};

static __always_inline int addr6_eq(const struct addr6 *a, const struct addr6 *b)
{
	return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

static __always_inline int addr6_zero(const struct addr6 *a)
{
	return !(a->w[0] | a->w[1] | a->w[2] | a->w[3]);
}

/* fold6 is an IPv6 address in one word, for the VIP filter (maybe_vip),
 * which IPv4 and IPv6 VIPs share. */
static __always_inline __be32 fold6(const struct addr6 *a)
{
	return a->w[0] ^ a->w[1] ^ a->w[2] ^ a->w[3];
}

/* addr6_delta accumulates the checksum change of one address. */
static __always_inline __u32 addr6_delta(__u32 acc, const struct addr6 *from, const struct addr6 *to)
{
	int i;

	for (i = 0; i < 4; i++)
		acc = csum_delta32(acc, bpf_ntohl(from->w[i]), bpf_ntohl(to->w[i]));
	return acc;
}

/* rewrite6 replaces both addresses and both ports and takes one from the
 * hop limit (the caller dropped hop limits of 1 and less). A UDP checksum
 * of zero is no checksum over IPv6 (RFC 8200): such a packet is dropped by
 * its receiver either way, and is left as it is; a computed zero is sent
 * as 0xffff. */
static __always_inline void rewrite6(struct packet *p, const struct tuple6 *to)
{
	struct ipv6hdr *ip6 = p->ip6;
	__u32 delta = 0;
	__u16 check;

	delta = addr6_delta(delta, (const struct addr6 *)&ip6->saddr, &to->saddr);
	delta = addr6_delta(delta, (const struct addr6 *)&ip6->daddr, &to->daddr);
	delta = csum_delta16(delta, bpf_ntohs(*p->sport), bpf_ntohs(to->sport));
	delta = csum_delta16(delta, bpf_ntohs(*p->dport), bpf_ntohs(to->dport));

	ip6->hop_limit--;
	__builtin_memcpy(&ip6->saddr, &to->saddr, sizeof(to->saddr));
	__builtin_memcpy(&ip6->daddr, &to->daddr, sizeof(to->daddr));
	*p->sport = to->sport;
	*p->dport = to->dport;

	check = bpf_ntohs(*p->l4_csum);
	if (p->proto == IPPROTO_UDP && check == 0)
		return;
	check = csum_apply(check, delta);
	if (p->proto == IPPROTO_UDP && check == 0)
		check = 0xffff;
	*p->l4_csum = bpf_htons(check);
}

static __always_inline void key6_from_packet(struct ct6_key *k, const struct packet *p)
{
	__builtin_memcpy(&k->saddr, &p->ip6->saddr, sizeof(k->saddr));
	__builtin_memcpy(&k->daddr, &p->ip6->daddr, sizeof(k->daddr));
	k->sport = *p->sport;
	k->dport = *p->dport;
	k->proto = p->proto;
}

/* reverse_key6 is the key of the backend's half of connection fk, fwd. */
static __always_inline struct ct6_key reverse_key6(const struct ct6_key *fk, const struct ct6_fwd *fwd)
{
	struct ct6_key rk = {
		.saddr = fwd->backend_addr, .daddr = fwd->local_addr,
		.sport = fwd->backend_port, .dport = fwd->local_port, .proto = fk->proto,
	};

	return rk;
}

static __always_inline int same_key6(const struct ct6_key *a, const struct ct6_key *b)
{
	return addr6_eq(&a->saddr, &b->saddr) && addr6_eq(&a->daddr, &b->daddr) &&
	       a->sport == b->sport && a->dport == b->dport && a->proto == b->proto;
}

#endif
