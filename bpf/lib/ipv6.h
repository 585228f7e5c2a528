/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The IPv6 path (NAT66 Full-NAT): the IPv4 path's story with IPv6
 * addresses, in maps of its own (maps6.h). A client's packet to an IPv6
 * service becomes local6 -> backend6; the backend's reply to a local
 * address:port becomes VIP -> client. What it does not do yet: SYN
 * authentication (a new connection over the half-open bounds is dropped),
 * client addresses by TOA, direct server return and connection sync. */
#ifndef XDPLB_IPV6_H
#define XDPLB_IPV6_H

#include "parse6.h"
#include "nat6.h"
#include "sched6.h"
#include "snat6.h"
#include "fib6.h"
#include "conntrack.h"
#include "sanity.h"
#include "synauth.h"
#include "icmp6.h"
#include "nat64.h"

/* The helpers of the IPv6 path take nat64 as a constant: the path is
 * inlined twice, once for IPv6 backends (ipv6_l4) and once for IPv4 ones
 * (client64), so that neither copy has the other's branches for the
 * verifier to walk. */

static __always_inline int backend6_takes_new(const struct ct6_fwd *fwd, const int nat64)
{
	const struct backend6 *be;

	if (nat64)
		return backend64_takes_new(fwd);
	be = bpf_map_lookup_elem(&backends6, &fwd->backend_id);

	return be && !(be->flags & BACKEND_DRAINED) && addr6_eq(&be->addr, &fwd->backend_addr) &&
	       be->port == fwd->backend_port && be->svc_id == fwd->svc_id;
}

/* syn_on_entry6: syn_on_entry (conntrack.h) for an IPv6 entry. */
static __always_inline enum syn_on_entry syn_on_entry6(const struct ct6_fwd *fwd, const struct packet *p,
							 const int nat64)
{
	if (!is_pure_syn(p))
		return SYN_FOLLOWS;
	if (fwd->state == CT_FIN_WAIT || fwd->state == CT_CLOSE)
		return backend6_takes_new(fwd, nat64) ? SYN_REOPENS : SYN_RESCHEDULES;
	if (fwd->state == CT_SYN_SENT && !backend6_takes_new(fwd, nat64))
		return SYN_RESCHEDULES;
	return SYN_FOLLOWS;
}

/* reopen6: reopen (conntrack.h) for an IPv6 entry. */
static __always_inline int reopen6(const struct ct6_key *fk, struct ct6_fwd *fwd, const int nat64)
{
	struct ct6_key rk = reverse_key6(fk, fwd);
	struct ct_key rk4 = reverse_key64(fk, fwd);
	struct backend_load *load;
	struct ct6_rev *rev;
	struct ct_rev *rev4;

	if (nat64) {
		rev4 = bpf_map_lookup_elem(&ct_reverse, &rk4);
		if (!rev4 || !(rev4->flags & CT_F_NAT64) || rev4->origin != node_id)
			return -1;
		rev4->state = CT_SYN_SENT;
		rev4->last_seen = bpf_ktime_get_coarse_ns();
		rev4->seq_next = 0;
	} else {
		rev = bpf_map_lookup_elem(&ct6_reverse, &rk);
		if (!rev || rev->origin != node_id)
			return -1;
		rev->state = CT_SYN_SENT;
		rev->last_seen = bpf_ktime_get_coarse_ns();
		rev->seq_next = 0;
	}
	fwd->seq_next = 0;
	load = bpf_map_lookup_elem(&backend_loads, &fwd->backend_id);
	if (load)
		__sync_fetch_and_add(&load->conns, 256);
	return 0;
}

/* release_reverse6 removes connection fk, fwd's reverse half (IPv6, or
 * IPv4 for NAT64), its local port going back to its pool; only if the
 * half is still this connection's: one the control plane removed may
 * have been claimed by another since. */
static __always_inline void release_reverse6(const struct ct6_key *fk, const struct ct6_fwd *fwd,
					     const int nat64)
{
	struct ct6_key rk = reverse_key6(fk, fwd);
	struct ct_key rk4 = reverse_key64(fk, fwd);
	const struct ct6_key *client;
	const struct ct6_rev *rev;

	if (nat64) {
		client = bpf_map_lookup_elem(&ct_rev_client6, &rk4);
		if (client && same_key6(client, fk))
			release64(&rk4, fwd->backend_id);
		return;
	}
	rev = bpf_map_lookup_elem(&ct6_reverse, &rk);
	if (rev && same_key6(&rev->client, fk))
		release_local_port6(&rk, fwd->backend_id);
}

static __always_inline void forget_connection6(const struct ct6_key *fk, const struct ct6_fwd *fwd,
					       const int nat64)
{
	release_reverse6(fk, fwd, nat64);
	bpf_map_delete_elem(&ct6_forward, fk);
}

/* insert_forward6 completes a new connection's forward half fwd (its
 * reverse half recorded) and inserts it. On CONTINUE, *fwd holds the
 * forward half to use: ours, or one another CPU inserted first, whose
 * reverse half stays while ours goes. */
static __always_inline int insert_forward6(const struct packet *p, const struct svc_value *svc,
					   const struct ct6_key *fk, struct ct6_fwd *fwd, __u32 backend_id,
					   const int nat64)
{
	struct ct6_fwd *won;

	fwd->backend_id = backend_id;
	fwd->svc_id = svc->id;
	fwd->state = initial_state(p->proto);
	if (bpf_map_update_elem(&ct6_forward, fk, fwd, BPF_NOEXIST) != 0) {
		release_reverse6(fk, fwd, nat64);
		won = bpf_map_lookup_elem(&ct6_forward, fk);
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

/* open_connection6 chooses a backend for a new connection and records both
 * halves with a local address:port. On CONTINUE, *fwd holds the forward
 * half to use (ours, or one another CPU inserted first); rev is room for
 * the reverse half. */
static __always_inline int open_connection6(struct xdp_md *ctx, struct packet *p,
					    const struct svc_value *svc, const struct ct6_key *fk,
					    struct ct6_fwd *fwd, struct scratch6 *room, const int nat64)
{
	struct ct6_rev *rev = &room->rev;
	const struct backend6 *be;
	const struct backend *be4;
	struct ct6_key rk = {};
	__u32 backend_id = 0, reason = 0;
	__u64 now;
	int ret;

	if (p->proto == IPPROTO_TCP) {
		if (!is_pure_syn(p))
			return verdict(R_DROP_NO_CONN, XDP_DROP);
		if (over_half_open(svc->id))
			return verdict(R_DROP_HALF_OPEN, XDP_DROP);
	}
	if (nat64) {
		be4 = pick_backend64(svc, p, &backend_id, &reason);
		if (!be4)
			return verdict(reason, XDP_DROP);
		ret = open64(ctx, p, svc, fk, be4, backend_id, fwd, &room->rev4);
		if (ret >= 0)
			return ret;
		return insert_forward6(p, svc, fk, fwd, backend_id, nat64);
	}
	be = pick_backend6(svc, p, &backend_id, &reason);
	if (!be)
		return verdict(reason, XDP_DROP);

	now = bpf_ktime_get_coarse_ns();
	__builtin_memset(rev, 0, sizeof(*rev));
	rev->last_seen = now;
	rev->client = *fk;
	__builtin_memcpy(rev->client_mac, p->eth->h_source, ETH_ALEN);
	__builtin_memcpy(rev->lb_mac, p->eth->h_dest, ETH_ALEN);
	rev->ifindex = ctx->ingress_ifindex;
	rev->svc_id = svc->id;
	rev->backend_id = backend_id;
	rev->state = initial_state(p->proto);
	rev->origin = node_id;
	ret = claim_local_port6(p, be, backend_id, rev, &rk);
	if (ret >= 0)
		return ret;

	fwd->last_seen = now;
	fwd->local_addr = rk.daddr;
	fwd->local_port = rk.dport;
	fwd->backend_addr = be->addr;
	fwd->backend_port = be->port;
	return insert_forward6(p, svc, fk, fwd, backend_id, nat64);
}

/* check_client_segment6: check_client_segment for IPv6. */
static __always_inline int check_client_segment6(struct xdp_md *ctx, const struct packet *p,
						 const struct ct6_key *fk, const struct ct6_fwd *fwd,
						 const int nat64)
{
	struct ct6_key rk = reverse_key6(fk, fwd);
	struct ct_key rk4 = reverse_key64(fk, fwd);
	const struct ct6_rev *rev;
	const struct ct_rev *rev4;

	if (nat64) {
		rev4 = bpf_map_lookup_elem(&ct_reverse, &rk4);
		return check_segment(ctx, p, rev4 && (rev4->flags & CT_F_NAT64) ? rev4->seq_next : 0, fwd->state);
	}
	rev = bpf_map_lookup_elem(&ct6_reverse, &rk);
	return check_segment(ctx, p, rev && same_key6(&rev->client, fk) ? rev->seq_next : 0, fwd->state);
}

static __always_inline int check_backend_segment6(struct xdp_md *ctx, const struct packet *p,
						  const struct ct6_key *rk, const struct ct6_rev *rev)
{
	const struct ct6_fwd *fwd = bpf_map_lookup_elem(&ct6_forward, &rev->client);
	__u32 acked = 0;

	if (fwd) {
		struct ct6_key back = reverse_key6(&rev->client, fwd);

		if (same_key6(&back, rk))
			acked = fwd->seq_next;
	}
	return check_segment(ctx, p, acked, rev->state);
}

/* forgets6 tells whether the client's packet ends entry fwd for a new
 * connection: ended by the control plane (no reset is answered over IPv6
 * yet, so the connection is forgotten, and only a SYN opens another), or
 * a SYN syn_on_entry6 reschedules. A SYN that reopens it does so. */
static __always_inline int forgets6(const struct ct6_key *fk, struct ct6_fwd *fwd, const struct packet *p,
				    const int nat64)
{
	enum syn_on_entry what;

	if (fwd->state == CT_RESET)
		return 1;
	what = syn_on_entry6(fwd, p, nat64);
	if (what == SYN_REOPENS && reopen6(fk, fwd, nat64) == 0) {
		count_new_conn(&svc_stats, fwd->svc_id);
		count_new_conn(&backend_stats, fwd->backend_id);
		return 0;
	}
	if (what == SYN_FOLLOWS)
		return 0;
	if (fwd->state == CT_SYN_SENT)
		count_half_open(fwd->svc_id, -1);
	return 1;
}

static __always_inline int from_client6(struct xdp_md *ctx, struct packet *p,
					 const struct svc_value *svc, const int nat64)
{
	struct ct6_fwd *conn, *fwd;
	struct ct6_key fk = {};
	struct scratch6 *room;
	struct tuple6 to;
	__u32 zero = 0;
	int ret, refresh = 1, measured = 0;

	room = bpf_map_lookup_elem(&scratch6, &zero);
	if (!room)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	conn = &room->conn;
	ret = check_forwardable6(ctx, p);
	if (ret >= 0)
		return ret;
	key6_from_packet(&fk, p);
	fwd = bpf_map_lookup_elem(&ct6_forward, &fk);
	/* Opened before the service's backends changed family: its reverse
	 * half, of the other table, is left to expire. */
	if (fwd && !(fwd->flags & CT6_FWD_NAT64) != !nat64) {
		bpf_map_delete_elem(&ct6_forward, &fk);
		fwd = NULL;
	}
	if (fwd && forgets6(&fk, fwd, p, nat64)) {
		forget_connection6(&fk, fwd, nat64);
		fwd = NULL;
	}
	if (fwd) {
		enum ct_state was = fwd->state;

		/* A packet too big for the way on is answered before it moves
		 * the connection on. */
		if (fwd->hop_ifindex && !nat64) {
			ret = fits_device6(ctx, p, fwd->hop_ifindex);
			if (ret >= 0)
				return ret;
			measured = 1;
		}
		ret = ends_or_restarts(p) ? check_client_segment6(ctx, p, &fk, fwd, nat64) : SEQ_ACT;
		if (ret == SEQ_REFUSE)
			return verdict(R_DROP_RST_WINDOW, XDP_DROP);
		note_ack(&fwd->seq_next, ctx, p);
		if (ret == SEQ_ACT) {
			refresh = touch(&fwd->last_seen, &fwd->state, p->proto, p->tcp_flags);
			if (was != fwd->state && (was == CT_SYN_SENT || fwd->state == CT_SYN_SENT))
				count_half_open(fwd->svc_id, fwd->state == CT_SYN_SENT ? 1 : -1);
		} else {
			refresh = 0;
		}
		*conn = *fwd;
	} else {
		__builtin_memset(conn, 0, sizeof(*conn));
		ret = open_connection6(ctx, p, svc, &fk, conn, room, nat64);
		if (ret >= 0)
			return ret;
	}
	if (nat64)
		return nat64_send(ctx, p, conn, fwd, refresh, (struct bpf_fib_lookup *)room->fib);

	to.saddr = conn->local_addr;
	to.daddr = conn->backend_addr;
	to.sport = conn->local_port;
	to.dport = conn->backend_port;
	ret = connection_hop6(ctx, p, &to, conn, fwd, refresh, (struct bpf_fib_lookup *)room->fib);
	if (ret >= 0)
		return ret;
	if (!measured) {
		ret = fits_device6(ctx, p, conn->hop_ifindex);
		if (ret >= 0)
			return ret;
	}
	rewrite6(p, &to);
	count_traffic(&svc_stats, conn->svc_id, p->len, 1);
	count_traffic(&backend_stats, conn->backend_id, p->len, 1);
	return send_via(ctx, p, conn->hop_ifindex, conn->hop_dmac, conn->hop_smac);
}

/* from_backend6 handles what is not addressed to an IPv6 service: a reply
 * to one of our local address:port pairs, or the host's own traffic. */
static __always_inline int from_backend6(struct xdp_md *ctx, struct packet *p)
{
	struct ct6_key rk = {};
	struct ct6_rev *rev;
	struct tuple6 to;
	__u16 port;
	int ret;

	port = bpf_ntohs(*p->dport);
	if (port < nat_port_min || port > nat_port_max)
		return verdict(R_PASS_NO_SERVICE, XDP_PASS);
	key6_from_packet(&rk, p);
	rev = bpf_map_lookup_elem(&ct6_reverse, &rk);
	if (!rev)
		return verdict(R_PASS_NO_CONN, XDP_PASS);
	ret = check_forwardable6(ctx, p);
	if (ret >= 0)
		return ret;
	ret = fits_device6(ctx, p, rev->ifindex);
	if (ret >= 0)
		return ret;
	ret = ends_or_restarts(p) ? check_backend_segment6(ctx, p, &rk, rev) : SEQ_ACT;
	if (ret == SEQ_REFUSE)
		return verdict(R_DROP_RST_WINDOW, XDP_DROP);
	note_ack(&rev->seq_next, ctx, p);
	if (ret == SEQ_ACT)
		touch(&rev->last_seen, &rev->state, p->proto, p->tcp_flags);

	to.saddr = rev->client.daddr;
	to.daddr = rev->client.saddr;
	to.sport = rev->client.dport;
	to.dport = rev->client.sport;
	rewrite6(p, &to);
	count_traffic(&svc_stats, rev->svc_id, p->len, 0);
	count_traffic(&backend_stats, rev->backend_id, p->len, 0);
	return send_via(ctx, p, rev->ifindex, rev->client_mac, rev->lb_mac);
}

/* ipv6_l4 handles an IPv6 TCP or UDP packet whose header walk_ipv6 found
 * (see parse6.h for why this is a function of its own). */
__attribute__((noinline)) int ipv6_l4(struct xdp_md *ctx, __u32 l4_off, __u8 next)
{
	struct packet p = {};
	struct svc6_key key = {};
	struct svc_value *svc;
	int ret;

	ret = parse_ipv6(ctx, &p, l4_off, next);
	if (ret >= 0)
		return ret;
	__builtin_memcpy(&key.vip, &p.ip6->daddr, sizeof(key.vip));
	/* Most packets that reach no VIP are replies: the filter spares
	 * them the service lookup, as it does IPv4's. */
	if (!maybe_vip(fold6(&key.vip)))
		return from_backend6(ctx, &p);
	key.port = *p.dport;
	key.proto = p.proto;
	svc = bpf_map_lookup_elem(&services6, &key);
	if (svc)
		return nat64_service(svc->id) ? NAT64_CLIENT : from_client6(ctx, &p, svc, 0);
	return from_backend6(ctx, &p);
}

/* client64 handles a client's packet to an IPv6 service whose backends
 * are IPv4 (ipv6_l4 found one): from_client6 for NAT64, a function of its
 * own as ipv6_l4 is for IPv6 backends. */
__attribute__((noinline)) int client64(struct xdp_md *ctx, __u32 l4_off, __u8 next)
{
	struct packet p = {};
	struct svc6_key key = {};
	struct svc_value *svc;

	if (parse_ipv6(ctx, &p, l4_off, next) != CONTINUE)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	__builtin_memcpy(&key.vip, &p.ip6->daddr, sizeof(key.vip));
	key.port = *p.dport;
	key.proto = p.proto;
	svc = bpf_map_lookup_elem(&services6, &key);
	if (!svc)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	/* A UDP datagram without a checksum has none to translate: IPv6
	 * forbids it, so none such opens or uses a connection. */
	if (p.proto == IPPROTO_UDP && *p.l4_csum == 0)
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	return from_client6(ctx, &p, svc, 1);
}

/* ipv6_packet handles an IPv6 packet (parse_packet found one). A global
 * function, verified on its own: it finds its headers again from the
 * context, and the IPv4 path's instructions are not counted with it. */
__attribute__((noinline)) int ipv6_packet(struct xdp_md *ctx)
{
	__u32 l4_off = 0;
	__u8 next = 0;
	int ret;

	ret = walk_ipv6(ctx, &l4_off, &next);
	if (ret == PARSED_ICMP)
		return icmp6_error(ctx);
	if (ret >= 0)
		return ret;
	ret = ipv6_l4(ctx, l4_off, next);
	return ret == NAT64_CLIENT ? client64(ctx, l4_off, next) : ret;
}

#endif
