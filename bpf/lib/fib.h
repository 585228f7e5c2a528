/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Next hop towards a backend from the kernel's FIB and neighbour table. */
#ifndef XDPLB_FIB_H
#define XDPLB_FIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* send_to_backend fills in the MACs for the (already rewritten) packet and
 * returns the verdict that sends it towards its new destination. */
static __always_inline int send_to_backend(struct xdp_md *ctx, struct packet *p)
{
	struct bpf_fib_lookup fib = {};
	struct iphdr *ip = p->ip;
	int rc;

	fib.family = AF_INET;
	fib.l4_protocol = p->proto;
	fib.sport = *p->sport;
	fib.dport = *p->dport;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.tos = ip->tos;
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		emit_event(EV_NO_NEIGH, ip->daddr);
		return verdict(R_DROP_NO_NEIGH, XDP_DROP);
	}
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return verdict(R_DROP_NO_ROUTE, XDP_DROP);

	__builtin_memcpy(p->eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, fib.smac, ETH_ALEN);
	if (fib.ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_TX, XDP_TX);
	return verdict(R_FWD_REDIRECT, bpf_redirect(fib.ifindex, 0));
}

/* send_to_client uses the next hop the client's packets arrived from. */
static __always_inline int send_to_client(struct xdp_md *ctx, struct packet *p,
					  const struct ct_rev *rev)
{
	__builtin_memcpy(p->eth->h_dest, rev->client_mac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, rev->lb_mac, ETH_ALEN);
	if (rev->ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_TX, XDP_TX);
	return verdict(R_FWD_REDIRECT, bpf_redirect(rev->ifindex, 0));
}

#endif
