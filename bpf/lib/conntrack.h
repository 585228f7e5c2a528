/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Connection state kept by the datapath. Each half follows the flags its own
 * direction sends; the control plane reads both to decide expiry. */
#ifndef XDPLB_CONNTRACK_H
#define XDPLB_CONNTRACK_H

#include "parse.h"

/* Refreshing last_seen on every packet would write a shared cache line per
 * packet; a second of resolution is plenty for timeouts of minutes. */
#define CT_TOUCH_NS 1000000000ULL

static __always_inline enum ct_state initial_state(__u8 proto)
{
	return proto == IPPROTO_TCP ? CT_SYN_SENT : CT_UDP;
}

/* next_state follows one direction's flags. A SYN starts the half over, so
 * a client reusing its port after a close revives the entry instead of
 * leaving it marked closed (and soon expired) while in use. */
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

static __always_inline void key_from_packet(struct ct_key *k, const struct packet *p)
{
	k->saddr = p->ip->saddr;
	k->daddr = p->ip->daddr;
	k->sport = *p->sport;
	k->dport = *p->dport;
	k->proto = p->proto;
}

#endif
