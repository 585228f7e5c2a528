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

/* Segments that end or restart a connection are checked against what
 * their receiver acknowledged (RFC 5961), since the datapath sees both
 * directions. Each half keeps the acknowledgement its own direction last
 * carried: the forward half where the client has the backend's sequence,
 * the reverse half where the backend has the client's. So what a reset
 * from one side is checked against comes from the other side's packets,
 * which a blind attacker on the first side cannot send. One store per
 * segment that advances it, into the entry the packet has just read.
 *
 * A reset carrying exactly the acknowledged number (or one more: after a
 * FIN not acknowledged yet) is acted on as before (the half closes); one
 * within RST_WINDOW_BACK behind or RST_WINDOW ahead
 * of it is passed on to the endpoint, which accepts it if it is exact for
 * it (data still in flight) and otherwise answers a challenge ACK that a
 * live peer answers with an exact reset; the entry is left as it is.
 * Anything further is a blind reset: dropped and counted. A FIN is acted
 * on at or up to RST_WINDOW after the acknowledged number, and otherwise
 * passed on. A SYN on an established half is passed on without acting
 * (the endpoint answers it with a challenge ACK too). */
#define RST_WINDOW (1u << 20)
#define RST_WINDOW_BACK (1u << 16)
/* How far one acknowledgement may move the recorded one: more than any
 * window a peer could have been sent, so a spoofed ACK must land close. */
#define ACK_ADVANCE_MAX (1u << 24)

enum seq_check {
	SEQ_ACT,      /* in order, or nothing to check it against */
	SEQ_PASS_ON,  /* forwarded, the entry left as it is */
	SEQ_REFUSE,   /* a blind reset */
};

static __always_inline struct tcphdr *tcp_header(struct xdp_md *ctx, const struct packet *p)
{
	struct tcphdr *th = (struct tcphdr *)p->sport;

	if (p->proto != IPPROTO_TCP || (void *)(th + 1) > (void *)(long)ctx->data_end)
		return NULL;
	return th;
}

/* note_ack records the acknowledgement a packet carries in its own half
 * (0: none recorded yet). A SYN-ACK starts it over (a new connection). */
static __always_inline void note_ack(__u32 *acked, struct xdp_md *ctx, const struct packet *p)
{
	struct tcphdr *th = tcp_header(ctx, p);
	__u32 ack, moved;

	if (!th || !(p->tcp_flags & TCP_ACK) || (p->tcp_flags & TCP_RST))
		return;
	ack = bpf_ntohl(th->ack_seq);
	moved = ack - *acked;
	if (*acked == 0 || (p->tcp_flags & TCP_SYN) || (moved != 0 && moved <= ACK_ADVANCE_MAX))
		*acked = ack;
}

/* check_segment judges a reset, a FIN or a SYN from one side against
 * acked, what the other side acknowledged last (0: not known); state is
 * the sender's half. */
static __always_inline enum seq_check check_segment(struct xdp_md *ctx, const struct packet *p,
						    __u32 acked, enum ct_state state)
{
	struct tcphdr *th = tcp_header(ctx, p);
	__s32 ahead;

	if (!th)
		return SEQ_ACT;
	if ((p->tcp_flags & TCP_SYN) && !(p->tcp_flags & TCP_RST))
		return state == CT_ESTABLISHED ? SEQ_PASS_ON : SEQ_ACT;
	if (acked == 0)
		return SEQ_ACT;
	ahead = (__s32)(bpf_ntohl(th->seq) - acked);
	if (p->tcp_flags & TCP_RST) {
		if (ahead == 0 || ahead == 1) /* 1: after a FIN not acknowledged yet */
			return SEQ_ACT;
		if (ahead >= -(__s32)RST_WINDOW_BACK && ahead <= (__s32)RST_WINDOW)
			return SEQ_PASS_ON;
		return SEQ_REFUSE;
	}
	return ahead >= 0 && ahead <= (__s32)RST_WINDOW ? SEQ_ACT : SEQ_PASS_ON;
}

/* ends_or_restarts tells the segments check_segment judges. */
static __always_inline int ends_or_restarts(const struct packet *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_RST | TCP_FIN | TCP_SYN));
}

static __always_inline int same_key(const struct ct_key *a, const struct ct_key *b)
{
	return a->saddr == b->saddr && a->daddr == b->daddr && a->sport == b->sport &&
	       a->dport == b->dport && a->proto == b->proto;
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
	struct backend_load *load;
	struct ct_rev *rev;

	/* A DSR connection has no reverse half, nor port, to reopen. */
	if (!(fwd->flags & CT_FWD_MODE)) {
		rev = bpf_map_lookup_elem(&ct_reverse, &rk);
		if (!rev || rev->origin != node_id)
			return -1;
		rev->state = CT_SYN_SENT;
		rev->last_seen = bpf_ktime_get_coarse_ns();
		rev->seq_next = 0; /* a new connection: new sequences */
	}
	fwd->seq_next = 0;
	load = bpf_map_lookup_elem(&backend_loads, &fwd->backend_id);
	if (load)
		__sync_fetch_and_add(&load->conns, 256);
	return 0;
}

/* forget_connection removes both halves of a finished connection (a DSR
 * connection has only the forward one). */
static __always_inline void forget_connection(const struct ct_key *fk, const struct ct_fwd *fwd)
{
	struct ct_key rk = reverse_key(fk, fwd);

	if (!(fwd->flags & CT_FWD_MODE))
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
