/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Backend choice for a new connection: one slot of the service's ring. */
#ifndef XDPLB_SCHED_H
#define XDPLB_SCHED_H

#include "parse.h"

/* flow_hash mixes words with the murmur3 finaliser. It must stay stable:
 * two balancers (and one balancer across restarts) send the same client
 * to the same backend only if they hash alike. */
static __always_inline __u32 mix32(__u32 h)
{
	h ^= h >> 16;
	h *= 0x85ebca6b;
	h ^= h >> 13;
	h *= 0xc2b2ae35;
	h ^= h >> 16;
	return h;
}

/* maybe_vip is false only for addresses that are surely no VIP. The
 * control plane sets the bits with the same hash. */
static __always_inline int maybe_vip(__be32 addr)
{
	__u32 bit = mix32(addr) & (VIP_FILTER_BITS - 1);

	return (vip_filter[bit / 64] >> (bit % 64)) & 1;
}

static __always_inline __u32 flow_hash(const struct packet *p, enum sched_kind kind)
{
	__u32 h = mix32(p->ip->saddr ^ 0x9e3779b9);

	if (kind == SCHED_HASH_SRC)
		return h;
	h = mix32(h ^ p->ip->daddr);
	h = mix32(h ^ (((__u32)*p->sport << 16) | *p->dport));
	return mix32(h ^ p->proto);
}

/* LEAST_WINDOW is how many ring slots the least-connection schedulers
 * compare. Their rings hold each usable backend once, so a service of up
 * to this many backends is scheduled exactly as IPVS's lc/wlc would; a
 * larger one gets the least loaded of a window starting at a random slot. */
#define LEAST_WINDOW 16

/* least_slot returns the ring slot of the backend with the least load per
 * weight among up to LEAST_WINDOW slots of svc's ring, and counts the new
 * connection in its load. Loads are compared as a*wb < b*wa, with no
 * division. */
static __always_inline __u32 least_slot(const struct svc_value *svc)
{
	__u32 start = bpf_get_prandom_u32(), best = 0, i;
	__u64 best_conns = 0, best_weight = 0;
	struct backend_load *chosen = NULL;

	for (i = 0; i < LEAST_WINDOW && i < svc->ring_len; i++) {
		__u32 slot = svc->ring_off + (start + i) % svc->ring_len;
		__u32 *id = bpf_map_lookup_elem(&rings, &slot);
		struct backend_load *l;

		if (!id)
			continue;
		l = bpf_map_lookup_elem(&backend_loads, id);
		if (!l || !l->weight)
			continue;
		if (!chosen || l->conns * best_weight < best_conns * l->weight) {
			chosen = l;
			best = slot;
			best_conns = l->conns;
			best_weight = l->weight;
		}
	}
	if (!chosen)
		return svc->ring_off + start % svc->ring_len;
	__sync_fetch_and_add(&chosen->conns, 256);
	return best;
}

static __always_inline __u32 ring_position(const struct svc_value *svc, const struct packet *p)
{
	__u32 *pos;

	if (svc->sched != SCHED_COUNTER)
		return flow_hash(p, svc->sched);
	/* Shared by all CPUs, and touched only for new connections, so
	 * established packets never contend for it. */
	pos = bpf_map_lookup_elem(&rr_pos, &svc->id);
	return pos ? __sync_fetch_and_add(pos, 1) : 0;
}

static __always_inline const struct backend *backend_by_id(__u32 id)
{
	const struct backend *be = bpf_map_lookup_elem(&backends, &id);

	return be && be->addr ? be : NULL;
}

/* persist_client is the client's address as persistence keys it: masked
 * with the service's persistence netmask, if it has one. */
static __always_inline __be32 persist_client(const struct svc_value *svc, const struct packet *p)
{
	__be32 *mask = bpf_map_lookup_elem(&persist_masks, &svc->id);

	return mask && *mask ? p->ip->saddr & *mask : p->ip->saddr;
}

/* persisted_backend returns the backend the client with persistence key k
 * last got, if that is recent and the backend still takes new connections. */
static __always_inline const struct backend *
persisted_backend(const struct svc_value *svc, const struct persist_key *k, __u64 now, __u32 *backend_id)
{
	struct persist_value *v = bpf_map_lookup_elem(&persist, k);
	const struct backend *be;

	if (!v || now - v->last_seen > (__u64)svc->persist_secs * 1000000000ULL)
		return NULL;
	be = backend_by_id(v->backend_id);
	if (!be || (be->flags & BACKEND_DRAINED) || be->addr != v->addr || be->port != v->port)
		return NULL;
	v->last_seen = now;
	*backend_id = v->backend_id;
	return be;
}

/* pick_backend returns the backend for a new connection to svc, or NULL
 * with *reason set. */
static __always_inline const struct backend *
pick_backend(const struct svc_value *svc, const struct packet *p, __u32 *backend_id, __u32 *reason)
{
	struct persist_key k = { .svc_id = svc->id };
	const struct backend *be;
	__u64 now = 0;
	__u32 slot, *id;

	if (svc->ring_len == 0) {
		*reason = R_DROP_NO_BACKEND;
		return NULL;
	}
	if (svc->persist_secs) {
		now = bpf_ktime_get_coarse_ns();
		k.client = persist_client(svc, p);
		be = persisted_backend(svc, &k, now, backend_id);
		if (be)
			return be;
	}
	if (svc->sched == SCHED_LEAST)
		slot = least_slot(svc);
	else
		slot = svc->ring_off + ring_position(svc, p) % svc->ring_len;
	id = bpf_map_lookup_elem(&rings, &slot);
	be = id ? backend_by_id(*id) : NULL;
	if (!be) {
		*reason = R_DROP_BAD_BACKEND;
		return NULL;
	}
	*backend_id = *id;
	if (svc->persist_secs) {
		struct persist_value v = {
			.last_seen = now, .backend_id = *id, .addr = be->addr, .port = be->port,
		};

		bpf_map_update_elem(&persist, &k, &v, BPF_ANY);
	}
	return be;
}

#endif
