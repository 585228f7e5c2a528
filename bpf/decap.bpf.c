// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* xdplb's decapsulator: the backend's side of direct server return.
 *
 * Attached to a backend's interface by `xdplb decap attach`. A packet the
 * balancer tunnelled to the backend (IPIP, or GUE variant 1: lib/decap.h)
 * leaves here as the client's own packet, to the VIP on the backend's
 * loopback, and the stack answers the client directly. A tunnelled packet
 * from a source that is not an allowed balancer, or whose inner packet is
 * not IPv4, is dropped. Everything else goes to the stack untouched. */

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lib/decap.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

enum decap_counter {
	DECAP_PASS_INNER,      /* tunnelled: the inner packet went to the stack */
	DECAP_DROP_SOURCE,     /* tunnelled from a source not allowed */
	DECAP_DROP_MALFORMED,  /* tunnelled from an allowed source, not IPv4 inside */
	DECAP_PASS_NOT_TUNNEL, /* not tunnelled: to the stack untouched */
	DECAP_COUNTERS,
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, DECAP_COUNTERS);
	__type(key, enum decap_counter);
	__type(value, __u64);
} decap_stats SEC(".maps");

/* verdict counts why a packet leaves and returns the action. */
static __always_inline int verdict(enum decap_counter why, int action)
{
	__u64 *n = bpf_map_lookup_elem(&decap_stats, &why);

	if (n)
		*n += 1;
	return action;
}

SEC("xdp")
int xdplb_decap(struct xdp_md *ctx)
{
	switch (decap_frame(ctx)) {
	case DECAP_DONE:
		return verdict(DECAP_PASS_INNER, XDP_PASS);
	case DECAP_UNKNOWN_SOURCE:
		return verdict(DECAP_DROP_SOURCE, XDP_DROP);
	case DECAP_MALFORMED:
		return verdict(DECAP_DROP_MALFORMED, XDP_DROP);
	case DECAP_NOT_TUNNEL:
		break;
	}
	return verdict(DECAP_PASS_NOT_TUNNEL, XDP_PASS);
}
