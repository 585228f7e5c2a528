/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Next hops of IPv6 packets, from the kernel's FIB and neighbour (ND)
 * table, as fib.h's for IPv4. */
#ifndef XDPLB_FIB6_H
#define XDPLB_FIB6_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "nat6.h"

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

/* too_big6 answers a packet too big for the way on. XDP cannot fragment,
 * and IPv6 routers never do: the packet is dropped and counted. */
static __always_inline int too_big6(void)
{
	return verdict(R_DROP_TOO_BIG, XDP_DROP);
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
		return too_big6();
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
	return too_big6();
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
