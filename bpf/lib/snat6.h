/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Local address and port allocation for IPv6 Full-NAT: snat.h's pools,
 * whose slots index local6_addrs for an IPv6 backend. A pool is per
 * backend address:port, so one never mixes the families. */
#ifndef XDPLB_SNAT6_H
#define XDPLB_SNAT6_H

#include "snat.h"
#include "nat6.h"

/* claim_local_port6: claim_local_port for IPv6 (the reverse half is
 * inserted in ct6_reverse, the lock as there). */
static __always_inline int claim_local_port6(const struct packet *p, const struct backend6 *be,
					     __u32 backend_id, const struct ct6_rev *rev,
					     struct ct6_key *rk)
{
	__u32 zero = 0, total, pool = 0, *cursor, i;
	struct lb_config *cfg;
	struct lb_config6 *cfg6;
	void *queue;
	long err;

	cfg = bpf_map_lookup_elem(&config, &zero);
	cfg6 = bpf_map_lookup_elem(&config6, &zero);
	queue = pool_of(backend_id, &pool);
	cursor = bpf_map_lookup_elem(&pool_cursor, &pool);
	if (!cfg || !cfg6 || !queue || !cursor || cfg6->local_count == 0 || cfg->port_max < cfg->port_min)
		return verdict(R_DROP_PORTS_EXHAUSTED, XDP_DROP);
	total = ((__u32)cfg->port_max - cfg->port_min + 1) * cfg6->local_count;

	rk->saddr = be->addr;
	rk->sport = be->port;
	rk->proto = p->proto;
	for (i = 0; i < ALLOC_TRIES; i++) {
		__u32 slot, addr_idx, port, n;
		struct addr6 *local;

		n = *cursor < total ? __sync_fetch_and_add(cursor, 1) : total;
		if (n < total) {
			slot = (n % cfg6->local_count) << 16 | (cfg->port_min + n / cfg6->local_count);
			if (n + POOL_LOW_WATER == total)
				emit_event(EV_PORTS_PRESSURE, 0);
		} else if (bpf_map_pop_elem(queue, &slot) != 0) {
			break;
		}
		addr_idx = slot >> 16;
		port = slot & 0xffff;
		if (addr_idx >= cfg6->local_count || port < cfg->port_min || port > cfg->port_max)
			continue;
		local = bpf_map_lookup_elem(&local6_addrs, &addr_idx);
		if (!local)
			continue;
		rk->daddr = *local;
		rk->dport = bpf_htons(port);
		err = bpf_map_update_elem(&ct6_reverse, rk, rev, BPF_NOEXIST);
		if (err == 0)
			return CONTINUE;
		if (err != -EEXIST) {
			return_slot(queue, pool, slot);
			return verdict(R_DROP_CT_FULL, XDP_DROP);
		}
	}
	emit_event(EV_PORTS_PRESSURE, 0);
	return verdict(R_DROP_PORTS_EXHAUSTED, XDP_DROP);
}

/* release_local_port6: release_local_port for IPv6. */
static __always_inline void release_local_port6(const struct ct6_key *rk, __u32 backend_id)
{
	__u32 zero = 0, *addr_idx, pool = 0, port = bpf_ntohs(rk->dport);
	const struct backend6 *be;
	struct lb_config *cfg;
	void *queue;

	if (bpf_map_delete_elem(&ct6_reverse, rk) != 0)
		return;
	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || port < cfg->port_min || port > cfg->port_max)
		return;
	be = bpf_map_lookup_elem(&backends6, &backend_id);
	addr_idx = bpf_map_lookup_elem(&local6_index, &rk->daddr);
	queue = pool_of(backend_id, &pool);
	if (!be || !addr6_eq(&be->addr, &rk->saddr) || be->port != rk->sport || !addr_idx || !queue)
		return;
	return_slot(queue, pool, *addr_idx << 16 | port);
}

#endif
