/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Backend choice for a new connection: one slot of the service's ring. */
#ifndef XDPLB_SCHED_H
#define XDPLB_SCHED_H

#include "parse.h"

/* pick_backend returns the backend for a new connection to svc, or NULL
 * with *reason set. Round robin advances a counter shared by all CPUs; it is
 * touched only here, so established packets never contend for it. */
static __always_inline const struct backend *
pick_backend(const struct svc_value *svc, __u32 *backend_id, __u32 *reason)
{
	__u32 *pos, slot, *id;
	const struct backend *be;

	if (svc->ring_len == 0) {
		*reason = R_DROP_NO_BACKEND;
		return NULL;
	}
	pos = bpf_map_lookup_elem(&rr_pos, &svc->id);
	if (!pos) {
		*reason = R_DROP_NO_BACKEND;
		return NULL;
	}
	slot = svc->ring_off + __sync_fetch_and_add(pos, 1) % svc->ring_len;
	id = bpf_map_lookup_elem(&rings, &slot);
	if (!id) {
		*reason = R_DROP_BAD_BACKEND;
		return NULL;
	}
	be = bpf_map_lookup_elem(&backends, id);
	if (!be || !be->addr) {
		*reason = R_DROP_BAD_BACKEND;
		return NULL;
	}
	*backend_id = *id;
	return be;
}

#endif
