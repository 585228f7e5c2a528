/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Lock-free per-CPU counters. */
#ifndef XDPLB_STATS_H
#define XDPLB_STATS_H

#include "maps.h"

/* verdict counts why a packet leaves and returns the action, so every exit
 * reads `return verdict(R_..., XDP_...)`. */
static __always_inline int verdict(__u32 reason, int action)
{
	__u64 *n = bpf_map_lookup_elem(&reasons, &reason);

	if (n)
		*n += 1;
	return action;
}

static __always_inline void count_traffic(void *map, __u32 id, __u32 bytes,
					  int inbound)
{
	struct traffic *t = bpf_map_lookup_elem(map, &id);

	if (!t)
		return;
	if (inbound) {
		t->packets_in++;
		t->bytes_in += bytes;
	} else {
		t->packets_out++;
		t->bytes_out += bytes;
	}
}

static __always_inline void count_new_conn(void *map, __u32 id)
{
	struct traffic *t = bpf_map_lookup_elem(map, &id);

	if (t)
		t->new_conns++;
}

static __always_inline void emit_event(__u32 type, __be32 addr)
{
	struct event *ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);

	if (!ev)
		return; /* the control plane is behind; the counter still moved */
	ev->type = type;
	ev->addr = addr;
	bpf_ringbuf_submit(ev, 0);
}

#endif
