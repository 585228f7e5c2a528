/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Connection sync: the moments a connection is worth telling the peers
 * about, as records in the sync_events ring. The control plane batches
 * them to the peers, which adopt the connection into their own tables. */
#ifndef XDPLB_SYNC_H
#define XDPLB_SYNC_H

#include "maps.h"

static __always_inline void sync_emit(const struct ct_key *client, __be32 local_addr,
				      __be16 local_port, __be32 backend_addr,
				      __be16 backend_port, __u8 fwd_state, __u8 rev_state)
{
	struct sync_event *ev;
	__u32 key = SYNC_RING_FULL;
	__u64 *full;

	ev = bpf_ringbuf_reserve(&sync_events, sizeof(*ev), 0);
	if (!ev) {
		/* The peers miss this record until the next refresh; the
		 * packet itself goes on. */
		full = bpf_map_lookup_elem(&sync_stats, &key);
		if (full)
			*full += 1;
		return;
	}
	ev->client = *client;
	ev->local_addr = local_addr;
	ev->local_port = local_port;
	ev->backend_addr = backend_addr;
	ev->backend_port = backend_port;
	ev->fwd_state = fwd_state;
	ev->rev_state = rev_state;
	ev->pad[0] = 0;
	ev->pad[1] = 0;
	bpf_ringbuf_submit(ev, 0);
}

/* sync_forward follows the client half from state `was` to its current
 * one. A connection is worth syncing once established (both halves exist
 * and the handshake completed: the backend's half is established too), and
 * again when it starts closing, so a peer shortens its timeout. */
static __always_inline void sync_forward(const struct ct_key *fk, const struct ct_fwd *fwd,
					 enum ct_state was)
{
	enum ct_state now = fwd->state;

	if (!sync_on || now == was)
		return;
	if (now == CT_ESTABLISHED && was == CT_SYN_SENT)
		sync_emit(fk, fwd->local_addr, fwd->local_port, fwd->backend_addr,
			  fwd->backend_port, CT_ESTABLISHED, CT_ESTABLISHED);
	else if (now == CT_FIN_WAIT || now == CT_CLOSE)
		sync_emit(fk, fwd->local_addr, fwd->local_port, fwd->backend_addr,
			  fwd->backend_port, now, CT_NONE);
}

/* sync_reverse does the same for the backend half (rk is its key: backend
 * -> local address): its close, and a UDP flow's first answer. */
static __always_inline void sync_reverse(const struct ct_key *rk, struct ct_rev *rev,
					 enum ct_state was)
{
	enum ct_state now = rev->state;

	if (!sync_on)
		return;
	if (now == CT_UDP) {
		if (rev->flags & CT_F_ANSWERED)
			return;
		rev->flags |= CT_F_ANSWERED;
		sync_emit(&rev->client, rk->daddr, rk->dport, rk->saddr, rk->sport,
			  CT_UDP, CT_UDP);
		return;
	}
	if (now != was && (now == CT_FIN_WAIT || now == CT_CLOSE))
		sync_emit(&rev->client, rk->daddr, rk->dport, rk->saddr, rk->sport,
			  CT_NONE, now);
}

#endif
