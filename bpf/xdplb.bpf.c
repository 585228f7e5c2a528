// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* xdplb datapath: Full-NAT layer-4 load balancing in XDP.
 *
 * The story of a packet: parse it; if it is addressed to a service, find or
 * open its connection and rewrite client -> VIP into local -> backend; if it
 * is a backend's reply to a local address:port we handed out, rewrite it
 * back into VIP -> client. Everything else belongs to the host: XDP_PASS. */

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/types.h"
#include "lib/maps.h"
#include "lib/stats.h"
#include "lib/parse.h"
#include "lib/csum.h"
#include "lib/nat.h"
#include "lib/conntrack.h"
#include "lib/sched.h"
#include "lib/snat.h"
#include "lib/fib.h"
#include "lib/reply.h"
#include "lib/sync.h"
#include "lib/sanity.h"
#include "lib/synauth.h"
#include "lib/toa.h"
#include "lib/decap.h"
#include "lib/dsr.h"
#include "lib/icmp.h"
#include "lib/ipv6.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* check_client_segment judges a client's reset, FIN or SYN on entry fwd
 * against what the backend acknowledged (its reverse half's seq_next). */
static __always_inline int check_client_segment(struct xdp_md *ctx, const struct packet *p,
						const struct ct_key *fk, const struct ct_fwd *fwd)
{
	struct ct_key rk = reverse_key(fk, fwd);
	const struct ct_rev *rev = bpf_map_lookup_elem(&ct_reverse, &rk);

	return check_segment(ctx, p, rev && same_key(&rev->client, fk) ? rev->seq_next : 0, fwd->state);
}

/* check_backend_segment judges a backend's reset, FIN or SYN-ACK on entry
 * rev against what the client acknowledged (its forward half's seq_next). */
static __always_inline int check_backend_segment(struct xdp_md *ctx, const struct packet *p,
						 const struct ct_key *rk, const struct ct_rev *rev)
{
	const struct ct_fwd *fwd = bpf_map_lookup_elem(&ct_forward, &rev->client);
	__u32 acked = 0;

	if (fwd) {
		struct ct_key back = reverse_key(&rev->client, fwd);

		if (same_key(&back, rk))
			acked = fwd->seq_next;
	}
	return check_segment(ctx, p, acked, rev->state);
}

/* claim_for records the reverse half of a new Full-NAT connection to
 * backend be (id backend_id) with a local address:port claimed for it: on
 * CONTINUE, rk is its key. */
static __always_inline int claim_for(struct xdp_md *ctx, struct packet *p, const struct svc_value *svc,
				     const struct ct_key *fk, const struct backend *be, __u32 backend_id,
				     __u64 now, struct ct_key *rk)
{
	struct ct_rev rev = {};

	rev.last_seen = now;
	rev.client = *fk;
	__builtin_memcpy(rev.client_mac, p->eth->h_source, ETH_ALEN);
	__builtin_memcpy(rev.lb_mac, p->eth->h_dest, ETH_ALEN);
	rev.ifindex = ctx->ingress_ifindex;
	rev.svc_id = svc->id;
	rev.backend_id = backend_id;
	rev.state = initial_state(p->proto);
	rev.origin = node_id;
	return claim_local_port(p, be, backend_id, &rev, rk);
}

/* picks_up tells whether a DSR service takes up a TCP segment that is no
 * SYN and has no entry: with a hash scheduler it goes where the
 * connection's first packets went, through whichever balancer saw them
 * (another ECMP path, a peer that failed). Not a reset, which ends what
 * it would open. The entry starts half-open, so a flood of such segments
 * meets the half-open bounds and the 5 s timeout, as one of SYNs does. */
static __always_inline int picks_up(const struct packet *p, const struct svc_value *svc, __u32 mode)
{
	return mode != FWD_FULLNAT && !(p->tcp_flags & TCP_RST) &&
	       (svc->sched == SCHED_HASH_TUPLE || svc->sched == SCHED_HASH_SRC);
}

/* open_connection chooses a backend for a new connection and records it:
 * both halves and a local address:port for Full-NAT, the forward half
 * alone for DSR. On CONTINUE, *fwd holds the forward half to use (ours,
 * or one another CPU inserted first). */
static __always_inline int open_connection(struct xdp_md *ctx, struct packet *p,
					   const struct svc_value *svc, __u32 mode,
					   const struct ct_key *fk, struct ct_fwd *fwd)
{
	const struct backend *be;
	struct ct_key rk = {};
	struct ct_fwd *won;
	__u32 backend_id = 0, reason = 0;
	__u64 now;
	int ret;

	if (p->proto == IPPROTO_TCP) {
		ret = syn_auth(ctx, p, svc->id);
		if (ret >= 0)
			return ret;
		if (!is_pure_syn(p)) {
			if (!picks_up(p, svc, mode))
				return verdict(R_DROP_NO_CONN, XDP_DROP);
			if (over_half_open(svc->id))
				return verdict(R_DROP_HALF_OPEN, XDP_DROP);
		}
	}
	be = pick_backend(svc, p, &backend_id, &reason);
	if (!be)
		return verdict(reason, XDP_DROP);

	now = bpf_ktime_get_coarse_ns();
	fwd->flags = mode;
	if (mode == FWD_FULLNAT) {
		ret = claim_for(ctx, p, svc, fk, be, backend_id, now, &rk);
		if (ret >= 0)
			return ret;
	} else {
		if (be->flags & BACKEND_LOCAL)
			fwd->flags |= CT_FWD_LOCAL;
		if (mode == FWD_DSR_GUE)
			rk.dport = gue_source_port(p);
	}

	fwd->last_seen = now;
	fwd->local_addr = rk.daddr;
	fwd->local_port = rk.dport;
	fwd->backend_addr = be->addr;
	fwd->backend_port = be->port;
	fwd->backend_id = backend_id;
	fwd->svc_id = svc->id;
	fwd->state = initial_state(p->proto);
	if (bpf_map_update_elem(&ct_forward, fk, fwd, BPF_NOEXIST) != 0) {
		/* Another CPU opened this connection first (a retransmitted SYN
		 * on another queue), or the map refused: give our port back. */
		if (mode == FWD_FULLNAT)
			release_local_port(&rk, backend_id);
		won = bpf_map_lookup_elem(&ct_forward, fk);
		if (!won)
			return verdict(R_DROP_CT_FULL, XDP_DROP);
		*fwd = *won;
		return CONTINUE;
	}
	count_new_conn(&svc_stats, svc->id);
	count_new_conn(&backend_stats, backend_id);
	if (fwd->state == CT_SYN_SENT)
		count_half_open(svc->id, 1);
	return CONTINUE;
}

static __always_inline int from_client(struct xdp_md *ctx, struct packet *p,
				       const struct svc_value *svc)
{
	struct ct_fwd conn = {}, *fwd;
	struct ct_key fk = {};
	struct tuple to;
	int ret, refresh = 1, measured = 0;

	ret = check_forwardable(ctx, p);
	if (ret >= 0)
		return ret;
	key_from_packet(&fk, p);
	fwd = bpf_map_lookup_elem(&ct_forward, &fk);
	if (fwd && fwd->state == CT_RESET)
		return reply_reset(ctx, p);
	if (fwd) {
		enum syn_on_entry what = syn_on_entry(fwd, p);

		if (what == SYN_REOPENS && reopen(&fk, fwd) == 0) {
			count_new_conn(&svc_stats, fwd->svc_id);
			count_new_conn(&backend_stats, fwd->backend_id);
		} else if (what != SYN_FOLLOWS) {
			if (fwd->state == CT_SYN_SENT)
				count_half_open(fwd->svc_id, -1);
			forget_connection(&fk, fwd);
			fwd = NULL;
		}
	}
	if (fwd) {
		enum ct_state was = fwd->state;
		int dsr = conn_fwd_mode(fwd) != FWD_FULLNAT;

		/* A packet too big for the way on is answered before it moves
		 * the connection on. */
		if (!dsr && fwd->hop_ifindex) {
			ret = fits_device(ctx, p, fwd->hop_ifindex);
			if (ret >= 0)
				return ret;
			measured = 1;
		}
		/* DSR sees only the client's side: nothing to judge it by. */
		ret = ends_or_restarts(p) && !dsr ? check_client_segment(ctx, p, &fk, fwd) : SEQ_ACT;
		if (ret == SEQ_REFUSE)
			return verdict(R_DROP_RST_WINDOW, XDP_DROP);
		if (!dsr)
			note_ack(&fwd->seq_next, ctx, p);
		if (ret == SEQ_ACT) {
			refresh = touch(&fwd->last_seen, &fwd->state, p->proto, p->tcp_flags);
			if (was != fwd->state && (was == CT_SYN_SENT || fwd->state == CT_SYN_SENT))
				count_half_open(fwd->svc_id, fwd->state == CT_SYN_SENT ? 1 : -1);
		} else {
			refresh = 0;
		}
		/* DSR connections are not synced: a peer's hash scheduler
		 * finds their backend again (open_connection). */
		if (!dsr)
			sync_forward(&fk, fwd, was);
		conn = *fwd;
	} else {
		ret = open_connection(ctx, p, svc, service_fwd_mode(svc->id), &fk, &conn);
		if (ret >= 0)
			return ret;
	}
	if (conn_fwd_mode(&conn) != FWD_FULLNAT)
		return dsr_forward(ctx, p, &conn, fwd, refresh);

	to.saddr = conn.local_addr;
	to.daddr = conn.backend_addr;
	to.sport = conn.local_port;
	to.dport = conn.backend_port;
	/* A new connection's entry gets its hop with its next packet. */
	ret = connection_hop(ctx, p, &to, &conn, fwd, refresh, (struct hop_need){});
	if (ret >= 0)
		return ret;
	if (!measured) {
		ret = fits_device(ctx, p, conn.hop_ifindex);
		if (ret >= 0)
			return ret;
	}
	if (p->proto == IPPROTO_TCP && sends_toa(conn.svc_id)) {
		ret = toa_forward(ctx, p, &to);
		if (ret >= 0)
			return ret;
	}
	rewrite(p, &to);
	count_traffic(&svc_stats, conn.svc_id, p->len, 1);
	count_traffic(&backend_stats, conn.backend_id, p->len, 1);
	return send_to_backend(ctx, p, &conn);
}

/* from_backend handles what is not addressed to a service: a reply to one of
 * our local address:port pairs, or the host's own traffic. */
static __always_inline int from_backend(struct xdp_md *ctx, struct packet *p)
{
	struct ct_rev *rev;
	struct ct_key rk = {};
	struct tuple to;
	enum ct_state was;
	__u16 port;
	int ret;

	/* Only ports in the NAT range can be ours; skip the lookup otherwise. */
	port = bpf_ntohs(*p->dport);
	if (port < nat_port_min || port > nat_port_max)
		return verdict(R_PASS_NO_SERVICE, XDP_PASS);

	key_from_packet(&rk, p);
	rev = bpf_map_lookup_elem(&ct_reverse, &rk);
	if (!rev)
		return verdict(R_PASS_NO_CONN, XDP_PASS);
	if (rev->flags & CT_F_NAT64)
		return NAT64_REPLY;
	ret = check_forwardable(ctx, p);
	if (ret >= 0)
		return ret;
	if (!rev->ifindex) {
		ret = client_hop(ctx, p, rev);
		if (ret >= 0)
			return ret;
	}
	ret = fits_device(ctx, p, rev->ifindex);
	if (ret >= 0)
		return ret;
	ret = ends_or_restarts(p) ? check_backend_segment(ctx, p, &rk, rev) : SEQ_ACT;
	if (ret == SEQ_REFUSE)
		return verdict(R_DROP_RST_WINDOW, XDP_DROP);
	note_ack(&rev->seq_next, ctx, p);
	was = rev->state;
	if (ret == SEQ_ACT)
		touch(&rev->last_seen, &rev->state, p->proto, p->tcp_flags);
	sync_reverse(&rk, rev, was);

	/* Only a TOA service's SYN-ACK pays toa_synack's second lookup. */
	if ((p->tcp_flags & TCP_SYN) && sends_toa(rev->svc_id))
		toa_synack(ctx, (void *)p->ip - (void *)p->eth);

	to.saddr = rev->client.daddr;
	to.daddr = rev->client.saddr;
	to.sport = rev->client.dport;
	to.dport = rev->client.sport;
	rewrite(p, &to);
	count_traffic(&svc_stats, rev->svc_id, p->len, 0);
	count_traffic(&backend_stats, rev->backend_id, p->len, 0);
	return send_to_client(ctx, p, rev);
}

/* ipv4_packet is the story above, for every frame that is not IPv6. A
 * global function, as ipv6_packet: each family's path has its own stack
 * (the verifier allows 512 bytes for a chain of calls), and is verified
 * once. */
__attribute__((noinline)) int ipv4_packet(struct xdp_md *ctx)
{
	struct packet p = {};
	struct svc_key key = {};
	struct svc_value *svc;
	int ret;

	/* Co-located mode: a packet another node balanced to this one is
	 * passed as it was inside, never balanced again (one decision per
	 * packet, at most one extra hop). */
	if (decap_on) {
		switch (decap_frame(ctx)) {
		case DECAP_DONE:
			return verdict(R_PASS_DECAP, XDP_PASS);
		case DECAP_UNKNOWN_SOURCE:
			return verdict(R_DROP_DECAP_SOURCE, XDP_DROP);
		case DECAP_MALFORMED:
			return verdict(R_DROP_DECAP_MALFORMED, XDP_DROP);
		default:
			break;
		}
	}

	ret = parse_packet(ctx, &p);
	if (ret >= 0 || ret == PARSED_ICMP)
		return ret;

	if (!maybe_vip(p.ip->daddr))
		return from_backend(ctx, &p);
	key.vip = p.ip->daddr;
	key.port = *p.dport;
	key.proto = p.proto;
	svc = bpf_map_lookup_elem(&services, &key);
	if (svc)
		return from_client(ctx, &p, svc);
	return from_backend(ctx, &p);
}

SEC("xdp")
int xdplb(struct xdp_md *ctx)
{
	int ret;

	if (is_ipv6(ctx))
		return ipv6_packet(ctx);
	ret = ipv4_packet(ctx);
	if (ret == PARSED_ICMP)
		return icmp_error(ctx);
	if (ret == NAT64_REPLY)
		return nat64_reply(ctx);
	return ret;
}
