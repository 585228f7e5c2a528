/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Local address and port allocation for Full-NAT. */
#ifndef XDPLB_SNAT_H
#define XDPLB_SNAT_H

#include "parse.h"

#ifndef EEXIST
#define EEXIST 17
#endif

/* How many slots one new connection may find taken before it gives up.
 * A slot is found taken only once per pool (see claim_local_port), so
 * this bounds a burst, not the steady cost. */
#define ALLOC_TRIES 64

/* Slots near the end of a pool: the collector is asked to look now. */
#define POOL_LOW_WATER 64

/* When (coarse clock) a full pool was last reported. */
volatile __u64 pool_full_told;

/* return_slot queues a freed slot; a full queue asks for the pool to be
 * made afresh (see port_pools), at most every few milliseconds so a burst
 * of frees cannot fill the event ring. */
static __always_inline void return_slot(void *queue, __u32 pool, __u32 slot)
{
	__u64 now;

	if (bpf_map_push_elem(queue, &slot, 0) == 0)
		return;
	now = bpf_ktime_get_coarse_ns();
	if (now - pool_full_told >= 4000000ULL) {
		pool_full_told = now;
		emit_event(EV_POOL_FULL, pool);
	}
}

/* pool_of is backend id backend_id's pool (its index in *pool), NULL if
 * it has none yet. */
static __always_inline void *pool_of(__u32 backend_id, __u32 *pool)
{
	__u32 *ref = bpf_map_lookup_elem(&backend_pool, &backend_id);

	if (!ref || *ref == 0)
		return NULL;
	*pool = *ref - 1;
	return bpf_map_lookup_elem(&port_pools, pool);
}

/* claim_local_port takes a free (local address, port) towards backend
 * backend_id from its pool (maps.h, port_pools) and claims it by inserting
 * the reverse entry with BPF_NOEXIST: the insert is the lock, so two CPUs
 * never hand out the same tuple, whatever the pool says. A slot the insert
 * finds taken belongs to a connection older than the pool (a pool is made
 * afresh when the local addresses or ports change); it is skipped for
 * good, and comes back to the pool when that connection ends. On success
 * rk holds the claimed reverse key. */
static __always_inline int claim_local_port(const struct packet *p, const struct backend *be,
					    __u32 backend_id, const struct ct_rev *rev,
					    struct ct_key *rk)
{
	__u32 zero = 0, total, pool = 0, *cursor, i;
	struct lb_config *cfg;
	void *queue;
	long err;

	cfg = bpf_map_lookup_elem(&config, &zero);
	queue = pool_of(backend_id, &pool);
	cursor = bpf_map_lookup_elem(&pool_cursor, &pool);
	if (!cfg || !queue || !cursor || cfg->local_count == 0 || cfg->port_max < cfg->port_min)
		return verdict(R_DROP_PORTS_EXHAUSTED, XDP_DROP);
	total = ((__u32)cfg->port_max - cfg->port_min + 1) * cfg->local_count;

	rk->saddr = be->addr;
	rk->sport = be->port;
	rk->proto = p->proto;
	for (i = 0; i < ALLOC_TRIES; i++) {
		__u32 slot, addr_idx, port, n;
		__be32 *local;

		/* Slots never handed out first, then the queue of freed ones. */
		n = *cursor < total ? __sync_fetch_and_add(cursor, 1) : total;
		if (n < total) {
			slot = (n % cfg->local_count) << 16 | (cfg->port_min + n / cfg->local_count);
			if (n + POOL_LOW_WATER == total)
				emit_event(EV_PORTS_PRESSURE, be->addr);
		} else if (bpf_map_pop_elem(queue, &slot) != 0) {
			break;
		}
		addr_idx = slot >> 16;
		port = slot & 0xffff;
		if (addr_idx >= cfg->local_count || port < cfg->port_min || port > cfg->port_max)
			continue; /* queued before the range changed */
		local = bpf_map_lookup_elem(&local_addrs, &addr_idx);
		if (!local)
			continue;
		rk->daddr = *local;
		rk->dport = bpf_htons(port);
		err = bpf_map_update_elem(&ct_reverse, rk, rev, BPF_NOEXIST);
		if (err == 0)
			return CONTINUE;
		if (err != -EEXIST) {
			return_slot(queue, pool, slot);
			return verdict(R_DROP_CT_FULL, XDP_DROP);
		}
	}
	emit_event(EV_PORTS_PRESSURE, be->addr);
	return verdict(R_DROP_PORTS_EXHAUSTED, XDP_DROP);
}

/* release_local_port removes the reverse half rk of a connection to
 * backend_id and, if it was there, returns its slot to the pool. The
 * backend id is checked against the key: an id given to another backend
 * since has another pool. */
static __always_inline void release_local_port(const struct ct_key *rk, __u32 backend_id)
{
	__u32 zero = 0, *addr_idx, pool = 0, port = bpf_ntohs(rk->dport);
	const struct backend *be;
	struct lb_config *cfg;
	void *queue;

	if (bpf_map_delete_elem(&ct_reverse, rk) != 0)
		return;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || port < cfg->port_min || port > cfg->port_max)
		return; /* a peer's slice: not ours to hand out */
	be = bpf_map_lookup_elem(&backends, &backend_id);
	addr_idx = bpf_map_lookup_elem(&local_index, &rk->daddr);
	queue = pool_of(backend_id, &pool);
	if (!be || be->addr != rk->saddr || be->port != rk->sport || !addr_idx || !queue)
		return;
	return_slot(queue, pool, *addr_idx << 16 | port);
}

#endif
