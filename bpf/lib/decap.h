/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Decapsulation: the backend's side of direct server return.
 *
 * For DSR the balancer does not rewrite the client's packet; it wraps it in
 * an outer IPv4 header addressed to the backend and sends it on. Two
 * wrappings are understood:
 *
 *   IPIP:          outer IPv4 (protocol 4) | inner IPv4 ...      20 bytes
 *   GUE variant 1: outer IPv4 | UDP to gue_port | inner IPv4 ... 28 bytes
 *
 * GUE variant 1 has no GUE header: the UDP payload is the inner IP packet,
 * told apart from a GUE header by its version nibble. It is what
 * `ip fou add port N gue` accepts too. UDP gives the NIC a flow to spread
 * over its queues (the balancer varies the source port per connection),
 * which IPIP cannot.
 *
 * decap_frame takes the outer headers off and leaves the inner packet,
 * addressed to a VIP the backend holds on its loopback, byte for byte as
 * the client sent it: the stack answers the client directly. Only the
 * balancers in decap_sources may send tunnelled packets; anyone else could
 * use the tunnel to reach the VIP's sockets from any source address.
 *
 * Self-contained: the standalone decapsulator (decap.bpf.c) and the
 * datapath both include it. */
#ifndef XDPLB_DECAP_H
#define XDPLB_DECAP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define DECAP_MAX_SOURCES 1024

/* The outer source addresses allowed to send tunnelled packets: the
 * balancers. The value is unused (0). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DECAP_MAX_SOURCES);
	__type(key, __be32);
	__type(value, __u32);
} decap_sources SEC(".maps");

/* The UDP destination port of GUE, in host byte order; 0: GUE is not
 * accepted, only IPIP. Set by the control plane. */
volatile __u32 gue_port;

enum decap_result {
	DECAP_NOT_TUNNEL = 0, /* not for us: the frame is untouched */
	DECAP_DONE,           /* the frame now is Ethernet | inner packet */
	DECAP_UNKNOWN_SOURCE, /* a tunnel from a source not allowed: untouched */
	DECAP_MALFORMED,      /* an allowed tunnel whose inner packet is not IPv4 */
};

#define DECAP_IPIP_LEN ((__u32)sizeof(struct iphdr))
#define DECAP_GUE_LEN ((__u32)(sizeof(struct iphdr) + sizeof(struct udphdr)))

/* The fragment bits of frag_off: more fragments, and the offset. */
#define DECAP_IP_FRAGMENT 0x3fff

/* An 802.1Q or 802.1AD tag, between the source MAC and the EtherType. */
struct decap_vlan {
	__be16 tci;
	__be16 proto;
};

/* decap_strip copies the l2_len bytes of Ethernet header (and tag) at the
 * start of the frame over the last bytes of the outer headers, just before
 * the inner packet, and moves the frame's start there. Both lengths must
 * be constants at each call: the copy is unrolled, and the verifier checks
 * its bounds as constant offsets. The two ranges do not overlap, as
 * outer_len >= l2_len. */
static __always_inline enum decap_result decap_strip(struct xdp_md *ctx, const __u32 l2_len,
						     const __u32 outer_len)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;

	/* decap_frame has checked this already; the verifier needs it here,
	 * where the pointers are derived afresh. */
	if (data + l2_len + outer_len > end)
		return DECAP_MALFORMED;
	__builtin_memcpy(data + outer_len, data, l2_len);
	/* It fails only if less than an Ethernet header would remain, which
	 * the checks above rule out. The outer headers are overwritten by
	 * then, so the frame is dropped as malformed. */
	if (bpf_xdp_adjust_head(ctx, outer_len))
		return DECAP_MALFORMED;
	return DECAP_DONE;
}

/* decap_frame strips the outer headers of a tunnelled packet from an
 * allowed balancer, and tells what it did. */
static __always_inline enum decap_result decap_frame(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 frame_len = ctx->data_end - ctx->data;
	struct ethhdr *eth = data;
	struct iphdr *outer, *inner;
	__u32 l2_len = sizeof(*eth);
	__u32 outer_len;
	__be32 src;
	__be16 proto;

	if ((void *)(eth + 1) > end)
		return DECAP_NOT_TUNNEL;
	proto = eth->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q) || proto == bpf_htons(ETH_P_8021AD)) {
		struct decap_vlan *tag = (void *)(eth + 1);

		if ((void *)(tag + 1) > end)
			return DECAP_NOT_TUNNEL;
		proto = tag->proto;
		l2_len += sizeof(*tag);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return DECAP_NOT_TUNNEL;

	/* The balancer sends outer headers without options; a header with
	 * them, or a fragment, is left to the stack. */
	outer = data + l2_len;
	if ((void *)(outer + 1) > end)
		return DECAP_NOT_TUNNEL;
	if (outer->version != 4 || outer->ihl != 5 || (outer->frag_off & bpf_htons(DECAP_IP_FRAGMENT)))
		return DECAP_NOT_TUNNEL;
	if (outer->protocol == IPPROTO_IPIP) {
		outer_len = DECAP_IPIP_LEN;
	} else if (outer->protocol == IPPROTO_UDP && gue_port != 0) {
		struct udphdr *uh = (void *)(outer + 1);

		if ((void *)(uh + 1) > end)
			return DECAP_NOT_TUNNEL;
		if (uh->dest != bpf_htons((__u16)gue_port))
			return DECAP_NOT_TUNNEL;
		outer_len = DECAP_GUE_LEN;
	} else {
		return DECAP_NOT_TUNNEL;
	}

	src = outer->saddr;
	if (!bpf_map_lookup_elem(&decap_sources, &src))
		return DECAP_UNKNOWN_SOURCE;

	/* What the stack gets must be an IPv4 packet that the frame holds
	 * whole (it trims what follows). Anything else from a balancer is
	 * a bug or an attack on it; either way, the stack has no use for
	 * it. GUE variant 0, with a GUE header, fails the version check. */
	inner = data + l2_len + outer_len;
	if ((void *)(inner + 1) > end)
		return DECAP_MALFORMED;
	if (inner->version != 4 || inner->ihl < 5)
		return DECAP_MALFORMED;
	if (bpf_ntohs(inner->tot_len) < inner->ihl * 4 ||
	    l2_len + outer_len + bpf_ntohs(inner->tot_len) > frame_len)
		return DECAP_MALFORMED;

	if (l2_len == sizeof(struct ethhdr))
		return outer_len == DECAP_IPIP_LEN ? decap_strip(ctx, sizeof(struct ethhdr), DECAP_IPIP_LEN)
						   : decap_strip(ctx, sizeof(struct ethhdr), DECAP_GUE_LEN);
	return outer_len == DECAP_IPIP_LEN
		       ? decap_strip(ctx, sizeof(struct ethhdr) + sizeof(struct decap_vlan), DECAP_IPIP_LEN)
		       : decap_strip(ctx, sizeof(struct ethhdr) + sizeof(struct decap_vlan), DECAP_GUE_LEN);
}

#endif
