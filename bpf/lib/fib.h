/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Next hop towards a backend from the kernel's FIB and neighbour table. */
#ifndef XDPLB_FIB_H
#define XDPLB_FIB_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "nat.h"
#include "toobig.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* next_hop asks the FIB for the next hop of the packet once rewritten to
 * `to`, and whether it fits the route's MTU unless unmeasured; event names
 * the missing neighbour's kind for the control plane. It runs before the
 * rewrite, so a packet dropped here leaves as it came. */
static __always_inline int next_hop(struct xdp_md *ctx, const struct packet *p,
				    const struct tuple *to, struct bpf_fib_lookup *fib, __u32 event,
				    int unmeasured)
{
	int rc;

	fib->family = AF_INET;
	fib->l4_protocol = p->proto;
	fib->sport = to->sport;
	fib->dport = to->dport;
	fib->tot_len = unmeasured ? 0 : bpf_ntohs(p->ip->tot_len); /* 0: no MTU check */
	fib->tos = p->ip->tos;
	fib->ipv4_src = to->saddr;
	fib->ipv4_dst = to->daddr;
	fib->ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		emit_event(event, to->daddr);
		return verdict(R_DROP_NO_NEIGH, XDP_DROP);
	}
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return answer_too_big(ctx, p, fib->mtu_result);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return verdict(R_DROP_NO_ROUTE, XDP_DROP);
	return CONTINUE;
}

/* How a connection's packets leave towards its backend, for the FIB:
 * whether they are measured elsewhere (a DSR tunnel's, against the
 * device's MTU for every packet, where one too big is answered: dsr.h),
 * and whether the backend must be on a link of this host (dsr-l2 only
 * rewrites the MAC, so a router between would send the packet back to
 * the VIP: to us). */
struct hop_need {
	__u8 unmeasured;
	__u8 on_link;
};

/* backend_hop is the next hop towards the backend, for `to`. The FIB
 * leaves ipv4_dst as it was only when no gateway is in the way. */
static __always_inline int backend_hop(struct xdp_md *ctx, const struct packet *p,
				       const struct tuple *to, struct bpf_fib_lookup *fib,
				       struct hop_need need)
{
	int ret = next_hop(ctx, p, to, fib, EV_NO_NEIGH, need.unmeasured);

	if (ret >= 0)
		return ret;
	if (need.on_link && fib->ipv4_dst != to->daddr)
		return verdict(R_DROP_DSR_NOT_ONLINK, XDP_DROP);
	return CONTINUE;
}

/* A backend's cached next hop serves new connections for this long, as a
 * connection's own serves its packets (CT_TOUCH_NS). */
#define BACKEND_HOP_NS 1000000000ULL

/* connection_hop makes sure conn has its next hop towards the backend:
 * looked up in the FIB when refresh says it is due (once a second) or it
 * has none yet, unless it has none yet and its backend's cached one is
 * fresh (a new connection's first packets). A lookup refreshes the
 * backend's cache; fwd (the entry, NULL for a connection being opened)
 * gets what conn got. */
static __always_inline int connection_hop(struct xdp_md *ctx, const struct packet *p,
					  const struct tuple *to, struct ct_fwd *conn,
					  struct ct_fwd *fwd, int refresh, struct hop_need need)
{
	struct bpf_fib_lookup fib = {};
	struct backend_hop *cached;
	__u64 now;
	int ret;

	if (conn->hop_ifindex && !refresh)
		return CONTINUE;
	cached = bpf_map_lookup_elem(&backend_hops, &conn->backend_id);
	now = bpf_ktime_get_coarse_ns();
	/* A new dsr-l2 connection asks the FIB: only its answer says "on link". */
	if (!conn->hop_ifindex && !need.on_link && cached && cached->addr == conn->backend_addr &&
	    cached->in_ifindex == ctx->ingress_ifindex && now - cached->at < BACKEND_HOP_NS) {
		conn->hop_ifindex = cached->ifindex;
		__builtin_memcpy(conn->hop_dmac, cached->dmac, ETH_ALEN);
		__builtin_memcpy(conn->hop_smac, cached->smac, ETH_ALEN);
	} else {
		ret = backend_hop(ctx, p, to, &fib, need);
		if (ret >= 0)
			return ret;
		conn->hop_ifindex = fib.ifindex;
		__builtin_memcpy(conn->hop_dmac, fib.dmac, ETH_ALEN);
		__builtin_memcpy(conn->hop_smac, fib.smac, ETH_ALEN);
		/* Written at most twice a second, however many connections. */
		if (cached && now - cached->at >= BACKEND_HOP_NS / 2) {
			cached->at = now;
			cached->addr = conn->backend_addr;
			cached->in_ifindex = ctx->ingress_ifindex;
			cached->ifindex = fib.ifindex;
			__builtin_memcpy(cached->dmac, fib.dmac, ETH_ALEN);
			__builtin_memcpy(cached->smac, fib.smac, ETH_ALEN);
		}
	}
	if (fwd) {
		fwd->hop_ifindex = conn->hop_ifindex;
		__builtin_memcpy(fwd->hop_dmac, conn->hop_dmac, ETH_ALEN);
		__builtin_memcpy(fwd->hop_smac, conn->hop_smac, ETH_ALEN);
	}
	return CONTINUE;
}

/* send_to_backend sends the rewritten packet to the connection's cached
 * next hop. */
static __always_inline int send_to_backend(struct xdp_md *ctx, struct packet *p,
					   const struct ct_fwd *conn)
{
	__builtin_memcpy(p->eth->h_dest, conn->hop_dmac, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, conn->hop_smac, ETH_ALEN);
	if (conn->hop_ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_TX, XDP_TX);
	return verdict(R_FWD_REDIRECT, bpf_redirect(conn->hop_ifindex, 0));
}

/* client_hop finds the next hop towards the client of a connection adopted
 * from a peer: this host never saw the client's packets, so it has no
 * recorded hop. The answer is stored in the reverse half, so only the
 * first reply pays for the lookup. It runs before the rewrite, like
 * backend_hop. */
static __always_inline int client_hop(struct xdp_md *ctx, const struct packet *p,
				      struct ct_rev *rev)
{
	struct bpf_fib_lookup fib = {};
	struct tuple to = {
		.saddr = rev->client.daddr, .daddr = rev->client.saddr,
		.sport = rev->client.dport, .dport = rev->client.sport,
	};
	int ret;

	ret = next_hop(ctx, p, &to, &fib, EV_NO_CLIENT_NEIGH, 0);
	if (ret >= 0)
		return ret;
	__builtin_memcpy(rev->client_mac, fib.dmac, ETH_ALEN);
	__builtin_memcpy(rev->lb_mac, fib.smac, ETH_ALEN);
	rev->ifindex = fib.ifindex;
	return CONTINUE;
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
