/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Direct server return: the packet keeps the VIP as its destination and
 * reaches the backend by its MAC (dsr-l2) or inside an outer IPv4 header
 * (dsr-ipip, dsr-gue); the backend, which has the VIP on its loopback,
 * answers the client itself. A backend that is this host (co-located mode)
 * gets the packet through the host's own stack, unchanged. */
#ifndef XDPLB_DSR_H
#define XDPLB_DSR_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include "fib.h"
#include "reply.h"
#include "sched.h"
#include "toobig.h"

#define IPIP_GROW 20			/* an outer IPv4 header */
#define GUE_GROW (20 + 8)		/* outer IPv4 + UDP; variant 1 has no GUE header */
#define ENCAP_TTL 64

/* The outer source of encapsulated packets (dsr.encap_source). */
volatile __be32 encap_saddr;
/* Whether decap_sources holds any balancer: only then does a packet pay
 * for decap_frame's look at its headers. */
volatile __u32 decap_on;

/* Per service id, enum fwd_mode. Apart from struct svc_value so that
 * services pinned by earlier versions keep their layout. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} svc_fwd_mode SEC(".maps");

static __always_inline __u32 service_fwd_mode(__u32 svc_id)
{
	__u32 *mode = bpf_map_lookup_elem(&svc_fwd_mode, &svc_id);

	return mode ? *mode & CT_FWD_MODE : FWD_FULLNAT;
}

static __always_inline __u32 conn_fwd_mode(const struct ct_fwd *conn)
{
	return conn->flags & CT_FWD_MODE;
}

/* gue_source_port spreads a backend's GUE packets over its receive queues
 * (and over ECMP paths) by flow, from the dynamic range (RFC 6335), so the
 * packets of one flow stay in order. A DSR connection has no local port:
 * its forward half keeps this in local_port, computed once. */
static __always_inline __be16 gue_source_port(const struct packet *p)
{
	return bpf_htons(49152 + (flow_hash(p, SCHED_HASH_TUPLE) & 16383));
}

/* fill_outer writes the outer IPv4 header. Its checksum is summed from
 * the values written, word by word, rather than read back: no loop. */
static __always_inline void fill_outer(struct iphdr *outer, __u16 inner_len, __u8 tos, __be16 df,
				       __u8 proto, __be32 src, __be32 daddr, __u16 grow)
{
	__u32 saddr = bpf_ntohl(src), dst = bpf_ntohl(daddr), sum;
	__u16 tot_len = inner_len + grow;

	outer->version = 4;
	outer->ihl = 5;
	outer->tos = tos;
	outer->tot_len = bpf_htons(tot_len);
	outer->id = 0;
	outer->frag_off = df; /* RFC 2003: copied from the inner header */
	outer->ttl = ENCAP_TTL;
	outer->protocol = proto;
	outer->saddr = src;
	outer->daddr = daddr;
	sum = (0x45 << 8 | tos) + tot_len + bpf_ntohs(df) + (ENCAP_TTL << 8 | proto) +
	      (saddr >> 16) + (saddr & 0xffff) + (dst >> 16) + (dst & 0xffff);
	outer->check = bpf_htons(csum_fold_final(sum));
}

/* send_towards sends the frame to the connection's next hop. */
static __always_inline int send_towards(struct xdp_md *ctx, const struct ct_fwd *conn, __u32 reason)
{
	if (conn->hop_ifindex == ctx->ingress_ifindex)
		return verdict(reason, XDP_TX);
	return verdict(reason, bpf_redirect(conn->hop_ifindex, 0));
}

/* encapsulate puts `grow` bytes of outer headers (an IPv4 header, and a
 * UDP header for GUE) between the Ethernet header (l2 bytes, with a VLAN
 * tag if any) and the packet, which is left as the client sent it. grow
 * and l2 are constants in each inlined copy: the verifier wants them so. */
static __always_inline int encapsulate(struct xdp_md *ctx, const struct packet *p,
				       const struct ct_fwd *conn, const __u16 grow, const __u16 l2)
{
	__u16 inner_len = bpf_ntohs(p->ip->tot_len);
	__be32 src = encap_saddr; /* read once: the control plane may change it */
	__be16 df = p->ip->frag_off & bpf_htons(IP_DF);
	__u8 tos = p->ip->tos;
	struct iphdr *outer;
	void *data, *end;
	__u32 mtu = conn->local_addr;

	/* Measured against the device's MTU (tunnel_mtu) for every packet:
	 * the FIB is asked only once a second. XDP cannot fragment: without
	 * DF the packet is lost. An MTU of 0 was not told (a device gone
	 * since the lookup): the packet goes, and the next lookup knows. */
	if (mtu && inner_len + grow > mtu) {
		if (!df || mtu <= grow)
			return verdict(R_DROP_TOO_BIG, XDP_DROP);
		return reply_frag_needed(ctx, p, mtu - grow, l2);
	}
	if (bpf_xdp_adjust_head(ctx, -(int)grow))
		return verdict(R_DROP_NO_HEADROOM, XDP_DROP);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + grow + l2 + sizeof(struct iphdr) > end)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	/* The outer headers are at least as long as the Ethernet header,
	 * so the two never overlap. */
	__builtin_memcpy(data, data + grow, l2);
	__builtin_memcpy(((struct ethhdr *)data)->h_dest, conn->hop_dmac, ETH_ALEN);
	__builtin_memcpy(((struct ethhdr *)data)->h_source, conn->hop_smac, ETH_ALEN);

	outer = data + l2;
	if (grow == GUE_GROW) {
		struct udphdr *udp = (void *)(outer + 1);

		fill_outer(outer, inner_len, tos, df, IPPROTO_UDP, src, conn->backend_addr, grow);
		udp->source = conn->local_port;
		udp->dest = bpf_htons(gue_port);
		udp->len = bpf_htons(inner_len + sizeof(*udp));
		udp->check = 0; /* optional over IPv4; the inner packet has its own */
	} else {
		fill_outer(outer, inner_len, tos, df, IPPROTO_IPIP, src, conn->backend_addr, grow);
	}
	return CONTINUE;
}

/* tunnel_mtu keeps, with a tunnelled connection's next hop, its device's
 * MTU: in local_addr, which a DSR connection has no other use for. It is
 * read again when the next hop is (once a second, and for a new
 * connection), so each packet is measured without a helper call. */
static __always_inline void tunnel_mtu(struct xdp_md *ctx, struct ct_fwd *conn, struct ct_fwd *fwd,
				       int refresh)
{
	__u32 mtu = 0;

	if (conn->local_addr && !refresh)
		return;
	bpf_check_mtu(ctx, conn->hop_ifindex, &mtu, 0, 0); /* sets mtu whatever it returns */
	conn->local_addr = mtu;
	if (fwd)
		fwd->local_addr = mtu;
}

/* encapsulate_as picks the inlined copy of encapsulate for the mode and
 * the Ethernet header's length. */
static __always_inline int encapsulate_as(struct xdp_md *ctx, const struct packet *p,
					  const struct ct_fwd *conn, __u32 mode)
{
	if ((void *)p->ip - (void *)p->eth == sizeof(struct ethhdr) + sizeof(struct vlan_tag)) {
		if (mode == FWD_DSR_GUE)
			return encapsulate(ctx, p, conn, GUE_GROW, sizeof(struct ethhdr) + sizeof(struct vlan_tag));
		return encapsulate(ctx, p, conn, IPIP_GROW, sizeof(struct ethhdr) + sizeof(struct vlan_tag));
	}
	if (mode == FWD_DSR_GUE)
		return encapsulate(ctx, p, conn, GUE_GROW, sizeof(struct ethhdr));
	return encapsulate(ctx, p, conn, IPIP_GROW, sizeof(struct ethhdr));
}

/* dsr_forward sends a DSR connection's packet on: to the host's own stack
 * when the backend is this host, else to the backend by its MAC or in a
 * tunnel. conn is the connection as used (fwd its entry, NULL while it is
 * being opened), refresh says its next hop is due for a new lookup. */
static __always_inline int dsr_forward(struct xdp_md *ctx, struct packet *p, struct ct_fwd *conn,
				       struct ct_fwd *fwd, int refresh)
{
	__u32 mode = conn_fwd_mode(conn), reason;
	struct hop_need need = {};
	struct tuple to = {
		.saddr = p->ip->saddr, .daddr = conn->backend_addr,
		.sport = *p->sport, .dport = *p->dport,
	};
	int ret;

	if (conn->flags & CT_FWD_LOCAL) {
		count_traffic(&svc_stats, conn->svc_id, p->len, 1);
		count_traffic(&backend_stats, conn->backend_id, p->len, 1);
		return verdict(R_PASS_LOCAL_BACKEND, XDP_PASS);
	}
	if (mode == FWD_DSR_L2) {
		need.on_link = 1;
	} else {
		to.saddr = encap_saddr;
		need.unmeasured = 1;
	}
	ret = connection_hop(ctx, p, &to, conn, fwd, refresh, need);
	if (ret >= 0)
		return ret;
	if (mode == FWD_DSR_L2) {
		/* Routed, as it were: a ring that differs between two nodes
		 * must not bounce a packet between them for ever. A tunnel
		 * leaves the inner TTL as it is, as IPVS's tunnelling does;
		 * the loop rule keeps tunnels from bouncing. */
		decrement_ttl(p->ip);
		__builtin_memcpy(p->eth->h_dest, conn->hop_dmac, ETH_ALEN);
		__builtin_memcpy(p->eth->h_source, conn->hop_smac, ETH_ALEN);
		reason = R_FWD_DSR_L2;
	} else {
		tunnel_mtu(ctx, conn, fwd, refresh);
		ret = encapsulate_as(ctx, p, conn, mode);
		if (ret >= 0)
			return ret;
		reason = R_FWD_ENCAP;
	}
	count_traffic(&svc_stats, conn->svc_id, p->len, 1);
	count_traffic(&backend_stats, conn->backend_id, p->len, 1);
	return send_towards(ctx, conn, reason);
}

#endif
