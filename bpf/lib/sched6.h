/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Backend choice for a new IPv6 connection: sched.h's rings, loads and
 * schedulers, with IPv6 addresses hashed and remembered. */
#ifndef XDPLB_SCHED6_H
#define XDPLB_SCHED6_H

#include "sched.h"
#include "nat6.h"

/* flow_hash6 is flow_hash over IPv6 addresses, word by word. */
static __always_inline __u32 flow_hash6(const struct packet *p, enum sched_kind kind)
{
	const struct addr6 *s = (const struct addr6 *)&p->ip6->saddr;
	const struct addr6 *d = (const struct addr6 *)&p->ip6->daddr;
	__u32 h = 0x9e3779b9;
	int i;

	for (i = 0; i < 4; i++)
		h = mix32(h ^ s->w[i]);
	if (kind == SCHED_HASH_SRC)
		return h;
	for (i = 0; i < 4; i++)
		h = mix32(h ^ d->w[i]);
	h = mix32(h ^ (((__u32)*p->sport << 16) | *p->dport));
	return mix32(h ^ p->proto);
}

static __always_inline __u32 ring_position6(const struct svc_value *svc, const struct packet *p)
{
	__u32 *pos;

	if (svc->sched != SCHED_COUNTER)
		return flow_hash6(p, svc->sched);
	pos = bpf_map_lookup_elem(&rr_pos, &svc->id);
	return pos ? __sync_fetch_and_add(pos, 1) : 0;
}

/* ring_id6 is the backend id in the ring slot svc's scheduler picks for
 * a new IPv6 connection (the ring is not empty), of either family. */
static __always_inline __u32 *ring_id6(const struct svc_value *svc, const struct packet *p)
{
	__u32 slot;

	if (svc->sched == SCHED_LEAST)
		slot = least_slot(svc);
	else
		slot = svc->ring_off + ring_position6(svc, p) % svc->ring_len;
	return bpf_map_lookup_elem(&rings, &slot);
}

static __always_inline const struct backend6 *backend6_by_id(__u32 id)
{
	const struct backend6 *be = bpf_map_lookup_elem(&backends6, &id);

	return be && !addr6_zero(&be->addr) ? be : NULL;
}

/* persist6_client is the client's address masked with the service's
 * persistence prefix. */
static __always_inline struct addr6 persist6_client(const struct svc_value *svc, const struct packet *p)
{
	struct addr6 *mask = bpf_map_lookup_elem(&persist6_masks, &svc->id);
	struct addr6 c;
	int i;

	__builtin_memcpy(&c, &p->ip6->saddr, sizeof(c));
	if (mask && !addr6_zero(mask))
		for (i = 0; i < 4; i++)
			c.w[i] &= mask->w[i];
	return c;
}

static __always_inline const struct backend6 *
persisted_backend6(const struct svc_value *svc, const struct persist6_key *k, __u64 now, __u32 *backend_id)
{
	struct persist6_value *v = bpf_map_lookup_elem(&persist6, k);
	const struct backend6 *be;

	if (!v || now - v->last_seen > (__u64)svc->persist_secs * 1000000000ULL)
		return NULL;
	be = backend6_by_id(v->backend_id);
	if (!be || (be->flags & BACKEND_DRAINED) || !addr6_eq(&be->addr, &v->addr) || be->port != v->port)
		return NULL;
	v->last_seen = now;
	*backend_id = v->backend_id;
	return be;
}

/* pick_backend6: pick_backend for IPv6. */
static __always_inline const struct backend6 *
pick_backend6(const struct svc_value *svc, const struct packet *p, __u32 *backend_id, __u32 *reason)
{
	struct persist6_key k = { .svc_id = svc->id };
	const struct backend6 *be;
	__u64 now = 0;
	__u32 *id;

	if (svc->ring_len == 0) {
		*reason = R_DROP_NO_BACKEND;
		return NULL;
	}
	if (svc->persist_secs) {
		now = bpf_ktime_get_coarse_ns();
		k.client = persist6_client(svc, p);
		be = persisted_backend6(svc, &k, now, backend_id);
		if (be)
			return be;
	}
	id = ring_id6(svc, p);
	be = id ? backend6_by_id(*id) : NULL;
	if (!be) {
		*reason = R_DROP_BAD_BACKEND;
		return NULL;
	}
	*backend_id = *id;
	if (svc->persist_secs) {
		struct persist6_value v = {
			.last_seen = now, .backend_id = *id, .addr = be->addr, .port = be->port,
		};

		bpf_map_update_elem(&persist6, &k, &v, BPF_ANY);
	}
	return be;
}

#endif
