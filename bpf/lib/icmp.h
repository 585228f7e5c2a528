/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* ICMP errors about balanced connections. Full-NAT hides each side from
 * the other, so an error about a packet the balancer sent carries that
 * packet, rewritten, as its quote, and is addressed to a local address or
 * the VIP: the kernel has no socket for it and drops it. A router between
 * the balancer and a backend telling it the path's MTU is then lost, and
 * the client's full-size segments with it (a PMTU black hole). So an
 * error is matched to its connection by the header it quotes, and sent
 * on to the other side, outer and quoted headers translated back to what
 * that side sent, every checksum they cover updated:
 *
 *   from the backend's side, quoting local:port -> backend:port: to the
 *   client, from the VIP, quoting client:port -> VIP:port;
 *   from the client's side, quoting VIP:port -> client:port: to the
 *   backend, from the local address, quoting backend:port -> local:port.
 *
 * The MTU a "fragmentation needed" carries passes as it is: both sides'
 * headers are the same size. Errors about anything else belong to the
 * host. A per-CPU budget bounds the work under a flood of errors. */
#ifndef XDPLB_ICMP_H
#define XDPLB_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include "parse.h"
#include "csum.h"
#include "nat.h"
#include "fib.h"
#include "sanity.h"
#include "toobig.h"

#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

/* Errors translated per CPU: a token a millisecond, up to a burst. */
#define ICMP_TOKEN_NS 1000000ULL
#define ICMP_BURST 100

struct icmp_error_hdr {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 rest; /* unused, or the MTU of a "fragmentation needed" */
};

struct icmp_budget {
	__u64 last; /* coarse clock of the last token added */
	__u64 tokens;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct icmp_budget);
} icmp_budget SEC(".maps");

static __always_inline int icmp_budget_left(void)
{
	struct icmp_budget *b;
	__u32 zero = 0;
	__u64 now, add;

	b = bpf_map_lookup_elem(&icmp_budget, &zero);
	if (!b)
		return 0;
	now = bpf_ktime_get_coarse_ns();
	add = (now - b->last) / ICMP_TOKEN_NS;
	if (add) {
		b->tokens = b->tokens + add > ICMP_BURST ? ICMP_BURST : b->tokens + add;
		b->last += add * ICMP_TOKEN_NS;
	}
	if (!b->tokens)
		return 0;
	b->tokens--;
	return 1;
}

/* A translation: the outer header's new addresses, the quoted packet's
 * new addresses and ports, the next hop that way, and whether that is
 * the backend. */
struct icmp_way {
	__be32 outer_src, outer_dst;
	__be32 in_src, in_dst;
	__be16 in_sport, in_dport;
	__u32 ifindex;
	__u8 dmac[ETH_ALEN];
	__u8 smac[ETH_ALEN];
	__u8 to_backend;
};

/* icmp_fib_hop asks the FIB for the next hop from src to dst, for a
 * connection adopted from a peer whose half here has none yet (it has
 * seen no packet of that side): a peer's connection is as much the
 * balancer's as its own. */
static __always_inline int icmp_fib_hop(struct xdp_md *ctx, __be32 src, __be32 dst, struct icmp_way *w)
{
	struct bpf_fib_lookup fib = {};

	fib.family = AF_INET;
	fib.ipv4_src = src;
	fib.ipv4_dst = dst;
	fib.ifindex = ctx->ingress_ifindex;
	if (bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return 0;
	w->ifindex = fib.ifindex;
	__builtin_memcpy(w->dmac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(w->smac, fib.smac, ETH_ALEN);
	return 1;
}

/* icmp_way_of finds the connection whose packet the error quotes (key:
 * the quoted tuple turned around, which is how either conntrack half is
 * keyed) and the way to its other side; 0 if none, or no way there. */
static __always_inline int icmp_way_of(struct xdp_md *ctx, const struct ct_key *k, struct icmp_way *w)
{
	const struct ct_rev *rev = bpf_map_lookup_elem(&ct_reverse, k);
	const struct ct_fwd *fwd;

	if (rev) {
		/* A NAT64 connection's client is IPv6: its errors are not
		 * translated across families. */
		if (rev->flags & CT_F_NAT64)
			return 0;
		w->outer_src = rev->client.daddr;
		w->outer_dst = rev->client.saddr;
		w->in_src = rev->client.saddr;
		w->in_dst = rev->client.daddr;
		w->in_sport = rev->client.sport;
		w->in_dport = rev->client.dport;
		if (!rev->ifindex)
			return icmp_fib_hop(ctx, w->outer_src, w->outer_dst, w);
		w->ifindex = rev->ifindex;
		__builtin_memcpy(w->dmac, rev->client_mac, ETH_ALEN);
		__builtin_memcpy(w->smac, rev->lb_mac, ETH_ALEN);
		return 1;
	}
	fwd = bpf_map_lookup_elem(&ct_forward, k);
	/* A DSR connection's answers never came through here. */
	if (!fwd || (fwd->flags & CT_FWD_MODE))
		return 0;
	w->outer_src = fwd->local_addr;
	w->outer_dst = fwd->backend_addr;
	w->in_src = fwd->backend_addr;
	w->in_dst = fwd->local_addr;
	w->in_sport = fwd->backend_port;
	w->in_dport = fwd->local_port;
	w->to_backend = 1;
	if (!fwd->hop_ifindex)
		return icmp_fib_hop(ctx, w->outer_src, w->outer_dst, w);
	w->ifindex = fwd->hop_ifindex;
	__builtin_memcpy(w->dmac, fwd->hop_dmac, ETH_ALEN);
	__builtin_memcpy(w->smac, fwd->hop_smac, ETH_ALEN);
	return 1;
}

#define ICMP_PROT_UNREACH 2
#define ICMP_PORT_UNREACH 3

/* A "fragmentation needed" from the client's side lowers the backend's
 * MTU towards the local address, which all the backend's connections
 * through that address share: one client could shrink them all for the
 * ten minutes the kernel keeps it (net.ipv4.route.mtu_expires). Below
 * this, IPv6's minimum, it is not passed on. */
#define ICMP_CLIENT_MTU_FLOOR 1280

/* icmp_error handles an ICMP packet (parse_packet found one, not a
 * fragment): an error about a balanced connection is translated and sent
 * on, anything else passes to the host. A global function, verified on
 * its own: it finds its headers again from the context. */
__attribute__((noinline)) int icmp_error(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct icmp_error_hdr *icmp;
	struct iphdr *ip, *in;
	struct icmp_way w = {};
	struct ct_key k = {};
	__u32 l2 = sizeof(*eth), in_len, quote, addr_delta, icmp_delta;
	__u16 old_check, l4_old = 0, l4_new = 0, vid = 0, tot_len;
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
	ip = data + l2;
	if ((void *)(ip + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	/* Options in the outer header (a source route) are the host's. */
	if (ip->ihl != 5)
		return verdict(R_PASS_ICMP, XDP_PASS);
	icmp = (void *)(ip + 1);
	if ((void *)(icmp + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	if (icmp->type != ICMP_DEST_UNREACH && icmp->type != ICMP_TIME_EXCEEDED &&
	    icmp->type != ICMP_PARAMETERPROB)
		return verdict(R_PASS_ICMP, XDP_PASS);
	in = (void *)(icmp + 1);
	if ((void *)(in + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	in_len = (in->ihl * 4) & 0x3c;
	/* Only a first fragment (or a whole packet) starts with the ports. */
	if (in->version != 4 || in_len < sizeof(*in) || (in->frag_off & bpf_htons(IP_OFFSET)) ||
	    (in->protocol != IPPROTO_TCP && in->protocol != IPPROTO_UDP))
		return verdict(R_PASS_ICMP, XDP_PASS);
	/* RFC 792: the quote holds at least 8 bytes of the transport header:
	 * the ports, and for UDP the checksum too. What lies past the
	 * datagram's own length is no part of it. */
	tot_len = bpf_ntohs(ip->tot_len);
	if ((void *)ip + tot_len > end || tot_len < sizeof(*ip) + sizeof(*icmp) + in_len + 8)
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	quote = tot_len - sizeof(*ip) - sizeof(*icmp) - in_len;
	ports = (void *)in + in_len;
	if ((void *)ports + 8 > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	/* An error is about a packet its receiver sent; and a protocol or
	 * port unreachable comes from the host the packet was for. Else it
	 * is forged, or not about a connection here. */
	if (ip->daddr != in->saddr ||
	    (icmp->type == ICMP_DEST_UNREACH && (icmp->code == ICMP_PROT_UNREACH || icmp->code == ICMP_PORT_UNREACH) &&
	     ip->saddr != in->daddr))
		return verdict(R_PASS_ICMP, XDP_PASS);

	if (!addressed_to_us(ctx, eth) || !vlan_is_ours(ctx, vid))
		return verdict(R_PASS_NOT_OURS, XDP_PASS);
	if (!ipv4_csum_ok(ip, end))
		return verdict(R_PASS_BAD_CHECKSUM, XDP_PASS);
	k.saddr = in->daddr;
	k.daddr = in->saddr;
	k.sport = ports[1];
	k.dport = ports[0];
	k.proto = in->protocol;
	if (!icmp_way_of(ctx, &k, &w))
		return verdict(R_PASS_ICMP, XDP_PASS);
	if (ip->ttl <= 1)
		return verdict(R_DROP_TTL, XDP_DROP);
	if (w.to_backend && icmp->type == ICMP_DEST_UNREACH && icmp->code == ICMP_FRAG_NEEDED &&
	    (bpf_ntohl(icmp->rest) & 0xffff) < ICMP_CLIENT_MTU_FLOOR)
		return verdict(R_DROP_ICMP_LOW_MTU, XDP_DROP);
	if (!icmp_budget_left())
		return verdict(R_PASS_ICMP_RATE, XDP_PASS);

	/* The quoted transport checksum, where the quote holds it (UDP's
	 * always, TCP's with 18 bytes or more; a UDP 0 means none). */
	if (in->protocol == IPPROTO_UDP && ports[3] != 0)
		l4_csum = &ports[3];
	else if (in->protocol == IPPROTO_TCP && quote >= 18 && (void *)ports + 18 <= end)
		l4_csum = &ports[8];

	addr_delta = csum_delta32(0, bpf_ntohl(in->saddr), bpf_ntohl(w.in_src));
	addr_delta = csum_delta32(addr_delta, bpf_ntohl(in->daddr), bpf_ntohl(w.in_dst));
	icmp_delta = csum_delta16(addr_delta, bpf_ntohs(ports[0]), bpf_ntohs(w.in_sport));
	icmp_delta = csum_delta16(icmp_delta, bpf_ntohs(ports[1]), bpf_ntohs(w.in_dport));
	if (l4_csum) {
		l4_old = bpf_ntohs(*l4_csum);
		l4_new = csum_apply(l4_old, icmp_delta);
		if (in->protocol == IPPROTO_UDP && l4_new == 0)
			l4_new = 0xffff;
		*l4_csum = bpf_htons(l4_new);
		icmp_delta = csum_delta16(icmp_delta, l4_old, l4_new);
	}
	old_check = bpf_ntohs(in->check);
	in->check = bpf_htons(csum_apply(old_check, addr_delta));
	icmp_delta = csum_delta16(icmp_delta, old_check, bpf_ntohs(in->check));
	in->saddr = w.in_src;
	in->daddr = w.in_dst;
	ports[0] = w.in_sport;
	ports[1] = w.in_dport;
	icmp->checksum = bpf_htons(csum_apply(bpf_ntohs(icmp->checksum), icmp_delta));

	old_check = ttl_word(ip);
	ip->ttl--; /* forwarded, as any packet the balancer passes on */
	addr_delta = csum_delta16(0, old_check, ttl_word(ip));
	addr_delta = csum_delta32(addr_delta, bpf_ntohl(ip->saddr), bpf_ntohl(w.outer_src));
	addr_delta = csum_delta32(addr_delta, bpf_ntohl(ip->daddr), bpf_ntohl(w.outer_dst));
	ip->check = bpf_htons(csum_apply(bpf_ntohs(ip->check), addr_delta));
	ip->saddr = w.outer_src;
	ip->daddr = w.outer_dst;

	__builtin_memcpy(eth->h_dest, w.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, w.smac, ETH_ALEN);
	if (w.ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_ICMP_ERROR, XDP_TX);
	return verdict(R_FWD_ICMP_ERROR, bpf_redirect(w.ifindex, 0));
}

#endif
