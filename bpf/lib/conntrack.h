/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Connection state kept by the datapath. Each half follows the flags its own
 * direction sends; the control plane reads both to decide expiry. */
#ifndef XDPLB_CONNTRACK_H
#define XDPLB_CONNTRACK_H

#include "parse.h"
#include "stats.h"
#include "snat.h"

/* Refreshing last_seen on every packet would write a shared cache line per
 * packet; a second of resolution is plenty for timeouts of minutes. */
#define CT_TOUCH_NS 1000000000ULL

static __always_inline enum ct_state initial_state(__u8 proto)
{
	return proto == IPPROTO_TCP ? CT_SYN_SENT : CT_UDP;
}

/* next_state follows one direction's flags. A SYN starts the half over:
 * the backend's SYN-ACK to a retransmitted SYN, or a SYN on an entry the
 * reset of a half-open attempt closed. (A client's new connection on the
 * port of a finished one: see syn_on_entry.) */
static __always_inline enum ct_state next_state(enum ct_state state, __u8 proto, __u8 flags)
{
	if (proto != IPPROTO_TCP)
		return state;
	if (flags & TCP_RST)
		return CT_CLOSE;
	if (flags & TCP_SYN)
		return (flags & TCP_ACK) ? CT_ESTABLISHED : CT_SYN_SENT;
	if (state == CT_CLOSE)
		return state;
	if (flags & TCP_FIN)
		return CT_FIN_WAIT;
	if (state == CT_SYN_SENT && (flags & TCP_ACK))
		return CT_ESTABLISHED;
	return state;
}

/* touch updates one half's state and last-seen time, writing only when
 * something changed enough to matter; it returns whether it wrote. */
static __always_inline int touch(__u64 *last_seen, enum ct_state *state, __u8 proto,
				 __u8 flags)
{
	enum ct_state next = next_state(*state, proto, flags);
	__u64 now = bpf_ktime_get_coarse_ns();

	/* A change of state restarts the clock too, so the (short) timeout
	 * of the new phase counts from the packet that began it. */
	if (next != *state) {
		*state = next;
		*last_seen = now;
		return 1;
	}
	if (now - *last_seen >= CT_TOUCH_NS) {
		*last_seen = now;
		return 1;
	}
	return 0;
}

/* Resets are checked against the sequence number their receiver expects
 * next (RFC 5961), which the datapath follows in each half since it sees
 * both directions: one store per segment that advances it, into the entry
 * the packet has just read. A reset carrying exactly that number is acted
 * on as before (the half closes). One within RST_WINDOW_BACK behind or
 * RST_WINDOW ahead of it is passed to the endpoint, which accepts it if it
 * is exact for it (we may have missed a segment) and otherwise answers a
 * challenge ACK that a live peer answers with an exact reset; the entry is
 * left as it is. Anything further is a blind reset: dropped and counted. */
#define RST_WINDOW (1u << 20)
#define RST_WINDOW_BACK (1u << 16)

enum reset_check {
	RESET_ACT,     /* exact, or nothing to check it against */
	RESET_PASS_ON, /* in the window: the endpoint decides, the entry stays */
	RESET_REFUSE,  /* a blind reset */
};

/* follow_seq records how far one direction's sender got, and tells what to
 * do with a reset from it. seq_next is its half's field (0: unknown). */
static __always_inline enum reset_check follow_seq(__u32 *seq_next, struct xdp_md *ctx,
						   const struct packet *p)
{
	void *data_end = (void *)(long)ctx->data_end;
	struct tcphdr *th = (struct tcphdr *)p->sport;
	__u32 seq, end;
	__s32 ahead;

	if (p->proto != IPPROTO_TCP || (void *)(th + 1) > data_end)
		return RESET_ACT;
	seq = bpf_ntohl(th->seq);
	if (p->tcp_flags & TCP_RST) {
		if (*seq_next == 0)
			return RESET_ACT;
		ahead = (__s32)(seq - *seq_next);
		if (ahead == 0)
			return RESET_ACT;
		if (ahead >= -(__s32)RST_WINDOW_BACK && ahead <= (__s32)RST_WINDOW)
			return RESET_PASS_ON;
		return RESET_REFUSE;
	}
	/* check_forwardable has checked these lengths against each other. */
	end = seq + bpf_ntohs(p->ip->tot_len) - p->ip->ihl * 4 - th->doff * 4 +
	      !!(p->tcp_flags & TCP_SYN) + !!(p->tcp_flags & TCP_FIN);
	/* A SYN starts the sequence over (a new connection on the tuple). */
	if (*seq_next == 0 || (p->tcp_flags & TCP_SYN) || (__s32)(end - *seq_next) > 0)
		*seq_next = end;
	return RESET_ACT;
}

/* backend_takes_new tells whether the entry's backend may still be given
 * new connections: not taken out by health checks nor drained, and its id
 * still names it. */
static __always_inline int backend_takes_new(const struct ct_fwd *fwd)
{
	const struct backend *be = bpf_map_lookup_elem(&backends, &fwd->backend_id);

	return be && !(be->flags & BACKEND_DRAINED) && be->addr == fwd->backend_addr &&
	       be->port == fwd->backend_port && be->svc_id == fwd->svc_id;
}

/* What a client's pure SYN on an existing entry means. */
enum syn_on_entry {
	SYN_FOLLOWS,    /* a retransmission, or the entry's connection as before */
	SYN_REOPENS,    /* a new connection on the port of a finished one, same path */
	SYN_RESCHEDULES, /* a new attempt that must not go where the entry goes */
};

/* syn_on_entry tells a SYN on an existing entry apart. A client's new
 * connection on the port of a finished one (FIN or RST seen) reopens the
 * entry: same backend, same local port, so the backend sees the tuple
 * reused exactly as it would from the client directly (its TIME_WAIT
 * takes a new SYN on a known tuple), where a fresh local port, freed early,
 * could meet another connection's TIME_WAIT there. It is scheduled afresh
 * instead when its backend takes no new connections any more, and so is a
 * SYN retransmitted on a half-open entry whose backend went. (next_state
 * starts a half over on a SYN.) */
static __always_inline enum syn_on_entry syn_on_entry(const struct ct_fwd *fwd, const struct packet *p)
{
	if (!is_pure_syn(p))
		return SYN_FOLLOWS;
	if (fwd->state == CT_FIN_WAIT || fwd->state == CT_CLOSE)
		return backend_takes_new(fwd) ? SYN_REOPENS : SYN_RESCHEDULES;
	if (fwd->state == CT_SYN_SENT && !backend_takes_new(fwd))
		return SYN_RESCHEDULES;
	return SYN_FOLLOWS;
}

/* reverse_key is the key of the backend's half of the connection fk, fwd:
 * backend -> local address. */
static __always_inline struct ct_key reverse_key(const struct ct_key *fk, const struct ct_fwd *fwd)
{
	struct ct_key rk = {
		.saddr = fwd->backend_addr, .daddr = fwd->local_addr,
		.sport = fwd->backend_port, .dport = fwd->local_port, .proto = fk->proto,
	};

	return rk;
}

/* reopen starts a connection over on the entry of a finished one (see
 * syn_on_entry): both halves opening again, from now, the backend's load
 * counted as for any new connection. It fails, and the SYN must be
 * scheduled afresh, if the backend's half is gone or was adopted from a
 * peer (its local port is of the peer's slice). */
static __always_inline int reopen(const struct ct_key *fk, struct ct_fwd *fwd)
{
	struct ct_key rk = reverse_key(fk, fwd);
	struct ct_rev *rev = bpf_map_lookup_elem(&ct_reverse, &rk);
	struct backend_load *load;

	if (!rev || rev->origin != node_id)
		return -1;
	rev->state = CT_SYN_SENT;
	rev->last_seen = bpf_ktime_get_coarse_ns();
	rev->seq_next = 0; /* the backend picks a new sequence */
	load = bpf_map_lookup_elem(&backend_loads, &fwd->backend_id);
	if (load)
		__sync_fetch_and_add(&load->conns, 256);
	return 0;
}

/* forget_connection removes both halves of a finished connection. */
static __always_inline void forget_connection(const struct ct_key *fk, const struct ct_fwd *fwd)
{
	struct ct_key rk = reverse_key(fk, fwd);

	release_local_port(&rk, fwd->backend_id);
	bpf_map_delete_elem(&ct_forward, fk);
}

static __always_inline void key_from_packet(struct ct_key *k, const struct packet *p)
{
	k->saddr = p->ip->saddr;
	k->daddr = p->ip->daddr;
	k->sport = *p->sport;
	k->dport = *p->dport;
	k->proto = p->proto;
}

#endif
