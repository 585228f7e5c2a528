/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Local address and port allocation for Full-NAT. */
#ifndef XDPLB_SNAT_H
#define XDPLB_SNAT_H

#include "parse.h"

#ifndef EEXIST
#define EEXIST 17
#endif

/* Upper bound the verifier sees; alloc_tries (set at load) is the real one. */
#define ALLOC_TRIES_MAX 64

volatile const __u32 alloc_tries = 32;

/* claim_local_port picks a free (local address, port) towards backend `be`
 * and claims it by inserting the reverse entry with BPF_NOEXIST: the insert
 * is the lock, so two CPUs can never hand out the same tuple. The search
 * starts at a random point and probes linearly over every address x port,
 * at most alloc_tries times. On success rk holds the claimed reverse key. */
static __always_inline int claim_local_port(const struct packet *p,
					    const struct backend *be,
					    const struct ct_rev *rev,
					    struct ct_key *rk)
{
	__u32 zero = 0, span, total, tries, idx, i;
	long err;
	struct lb_config *cfg;

	cfg = bpf_map_lookup_elem(&config, &zero);
	if (!cfg || cfg->local_count == 0 || cfg->port_max < cfg->port_min)
		return verdict(R_DROP_PORTS_EXHAUSTED, XDP_DROP);
	span = (__u32)cfg->port_max - cfg->port_min + 1;
	total = span * cfg->local_count;
	tries = total < alloc_tries ? total : alloc_tries;
	idx = bpf_get_prandom_u32() % total;

	rk->saddr = be->addr;
	rk->sport = be->port;
	rk->proto = p->proto;
	for (i = 0; i < ALLOC_TRIES_MAX; i++) {
		__u32 addr_idx = idx / span;
		__be32 *local;

		if (i >= tries)
			break;
		local = bpf_map_lookup_elem(&local_addrs, &addr_idx);
		if (!local)
			break;
		rk->daddr = *local;
		rk->dport = bpf_htons(cfg->port_min + idx % span);
		err = bpf_map_update_elem(&ct_reverse, rk, rev, BPF_NOEXIST);
		if (err == 0) {
			if (i >= tries / 2 && i > 0)
				emit_event(EV_PORTS_PRESSURE, be->addr);
			return CONTINUE;
		}
		if (err != -EEXIST)
			return verdict(R_DROP_CT_FULL, XDP_DROP);
		if (++idx == total)
			idx = 0;
	}
	emit_event(EV_PORTS_PRESSURE, be->addr);
	return verdict(R_DROP_PORTS_EXHAUSTED, XDP_DROP);
}

#endif
