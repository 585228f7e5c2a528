/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Next hops of IPv6 packets, from the kernel's FIB and neighbour (ND)
 * table, as fib.h's for IPv4. */
#ifndef XDPLB_FIB6_H
#define XDPLB_FIB6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "nat6.h"
#include "reply.h"

#ifndef AF_INET6
#define AF_INET6 10
#endif

/* Every IPv6 link carries 1280 bytes (RFC 8200): a packet no longer is
 * never measured. */
#define ALWAYS_FITS6 1280

#define IPV6_FLOWINFO_MASK 0x0fffffff

static __always_inline __u32 ipv6_len(const struct packet *p)
{
	return bpf_ntohs(p->ip6->payload_len) + sizeof(struct ipv6hdr);
}

/* ICMPv6's "packet too big" (RFC 4443). */
#define ICMPV6_PKT_TOOBIG 2

struct icmp6_too_big {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 mtu;
};

/* The answer quotes the packet's IPv6 header and the first 8 bytes of
 * what follows: its sender's stack finds its connection by them. */
#define PTB_QUOTE_LEN (40 + 8)
#define PTB_LEN (40 + 8 + PTB_QUOTE_LEN)

/* sum_addr6 adds an IPv6 address's 16-bit words to a checksum sum. */
static __always_inline __u32 sum_addr6(__u32 sum, const struct addr6 *a)
{
	int i;

	for (i = 0; i < 4; i++)
		sum += (bpf_ntohl(a->w[i]) >> 16) + (bpf_ntohl(a->w[i]) & 0xffff);
	return sum;
}

/* reply_too_big6 turns the packet into a "packet too big" to its sender,
 * from the address it was sent to, announcing mtu, and sends it back
 * where it came from, as reply_frag_needed does for IPv4. l2 must be a
 * constant at each call. */
static __always_inline int reply_too_big6(struct xdp_md *ctx, const struct packet *p, __u32 mtu,
					  const __u16 l2)
{
	struct addr6 sender, dest;
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN];
	struct icmp6_too_big *icmp;
	struct ipv6hdr *ip6;
	void *data, *end;
	__u32 sum;

	__builtin_memcpy(&sender, &p->ip6->saddr, sizeof(sender));
	__builtin_memcpy(&dest, &p->ip6->daddr, sizeof(dest));
	__builtin_memcpy(smac, p->eth->h_source, ETH_ALEN);
	__builtin_memcpy(dmac, p->eth->h_dest, ETH_ALEN);
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(*ip6) + sizeof(*icmp))))
		return verdict(R_DROP_TOO_BIG, XDP_DROP);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + l2 + PTB_LEN > end)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	/* The new headers (48 bytes) are longer than the Ethernet header:
	 * the copy does not overlap. */
	__builtin_memcpy(data, data + sizeof(*ip6) + sizeof(*icmp), l2);
	__builtin_memcpy(((struct ethhdr *)data)->h_dest, smac, ETH_ALEN);
	__builtin_memcpy(((struct ethhdr *)data)->h_source, dmac, ETH_ALEN);

	ip6 = data + l2;
	*(__be32 *)ip6 = bpf_htonl(0x60000000); /* version 6, no class, no flow label */
	ip6->payload_len = bpf_htons(sizeof(*icmp) + PTB_QUOTE_LEN);
	ip6->nexthdr = IPPROTO_ICMPV6;
	ip6->hop_limit = 64;
	__builtin_memcpy(&ip6->saddr, &dest, sizeof(dest));
	__builtin_memcpy(&ip6->daddr, &sender, sizeof(sender));

	icmp = (void *)(ip6 + 1);
	icmp->type = ICMPV6_PKT_TOOBIG;
	icmp->code = 0;
	icmp->mtu = bpf_htonl(mtu);
	/* The pseudo header (both addresses, the length, the next header),
	 * then the message. */
	sum = sum_addr6(0, &dest);
	sum = sum_addr6(sum, &sender);
	sum += sizeof(*icmp) + PTB_QUOTE_LEN + IPPROTO_ICMPV6;
	sum += (ICMPV6_PKT_TOOBIG << 8) + (mtu >> 16) + (mtu & 0xffff);
	sum = csum_words(sum, (void *)(icmp + 1), PTB_QUOTE_LEN / 2, end);
	icmp->checksum = bpf_htons(csum_fold_final(sum));

	if (bpf_xdp_adjust_tail(ctx, (int)(l2 + PTB_LEN) - (int)(end - data)))
		return verdict(R_DROP_ABORTED, XDP_DROP);
	return verdict(R_FWD_FRAG_NEEDED, XDP_TX);
}

/* too_big6 answers a packet too big for mtu with a "packet too big": IPv6
 * routers never fragment, so every sender expects one. An MTU below
 * IPv6's minimum is no MTU a link has: the packet is only dropped. */
static __always_inline int too_big6(struct xdp_md *ctx, const struct packet *p, __u32 mtu)
{
	if (mtu < ALWAYS_FITS6)
		return verdict(R_DROP_TOO_BIG, XDP_DROP);
	if ((void *)p->ip6 - (void *)p->eth == sizeof(struct ethhdr) + sizeof(struct vlan_tag))
		return reply_too_big6(ctx, p, mtu, sizeof(struct ethhdr) + sizeof(struct vlan_tag));
	return reply_too_big6(ctx, p, mtu, sizeof(struct ethhdr));
}

/* next_hop6 asks the FIB for the next hop of the packet once rewritten to
 * `to`, measured against the route's MTU. A missing neighbour only asks
 * the control plane to look (the event carries no IPv6 address): it keeps
 * every backend's neighbour resolved. */
static __always_inline int next_hop6(struct xdp_md *ctx, const struct packet *p,
				     const struct tuple6 *to, struct bpf_fib_lookup *fib)
{
	int rc;

	fib->family = AF_INET6;
	fib->l4_protocol = p->proto;
	fib->sport = to->sport;
	fib->dport = to->dport;
	fib->tot_len = ipv6_len(p);
	fib->flowinfo = *(__be32 *)p->ip6 & bpf_htonl(IPV6_FLOWINFO_MASK);
	__builtin_memcpy(fib->ipv6_src, &to->saddr, sizeof(to->saddr));
	__builtin_memcpy(fib->ipv6_dst, &to->daddr, sizeof(to->daddr));
	fib->ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		emit_event(EV_NO_NEIGH, 0);
		return verdict(R_DROP_NO_NEIGH, XDP_DROP);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big6(ctx, p, fib->mtu_result);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return verdict(R_DROP_NO_ROUTE, XDP_DROP);
	return CONTINUE;
}

/* connection_hop6 makes sure conn has its next hop towards the backend,
 * looked up when it has none or refresh says it is due (once a second);
 * fwd (the entry, NULL for a connection being opened) gets what conn got;
 * fib is room for the lookup. */
static __always_inline int connection_hop6(struct xdp_md *ctx, const struct packet *p,
					   const struct tuple6 *to, struct ct6_fwd *conn,
					   struct ct6_fwd *fwd, int refresh, struct bpf_fib_lookup *fib)
{
	int ret;

	if (conn->hop_ifindex && !refresh)
		return CONTINUE;
	__builtin_memset(fib, 0, sizeof(*fib));
	ret = next_hop6(ctx, p, to, fib);
	if (ret >= 0)
		return ret;
	conn->hop_ifindex = fib->ifindex;
	__builtin_memcpy(conn->hop_dmac, fib->dmac, ETH_ALEN);
	__builtin_memcpy(conn->hop_smac, fib->smac, ETH_ALEN);
	if (fwd) {
		fwd->hop_ifindex = conn->hop_ifindex;
		__builtin_memcpy(fwd->hop_dmac, conn->hop_dmac, ETH_ALEN);
		__builtin_memcpy(fwd->hop_smac, conn->hop_smac, ETH_ALEN);
	}
	return CONTINUE;
}

/* fits_device6 measures the packet against the MTU of the device it
 * leaves by, as fits_device does for IPv4. */
static __always_inline int fits_device6(struct xdp_md *ctx, const struct packet *p, __u32 ifindex)
{
	__u32 len = ipv6_len(p), mtu = len;

	if (len <= ALWAYS_FITS6)
		return CONTINUE;
	if (bpf_check_mtu(ctx, ifindex, &mtu, 0, 0) != BPF_MTU_CHK_RET_FRAG_NEEDED)
		return CONTINUE;
	return too_big6(ctx, p, mtu);
}

/* send_via sends the rewritten frame to a next hop. */
static __always_inline int send_via(struct xdp_md *ctx, struct packet *p, __u32 ifindex,
				    const __u8 *dmac, const __u8 *smac)
{
	__builtin_memcpy(p->eth->h_dest, dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, smac, ETH_ALEN);
	if (ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_TX, XDP_TX);
	return verdict(R_FWD_REDIRECT, bpf_redirect(ifindex, 0));
}

#endif
