/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Header parsing: Ethernet (one optional VLAN tag), IPv4 with options,
 * TCP and UDP. Anything not understood is handed back to the host. */
#ifndef XDPLB_PARSE_H
#define XDPLB_PARSE_H

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/in.h>
#include <bpf/bpf_endian.h>
#include "stats.h"

/* Helpers return an XDP verdict to stop, or CONTINUE to go on. */
#define CONTINUE -1
/* parse_packet's answer for an ICMP packet (not a fragment): icmp.h's. */
#define PARSED_ICMP -2

#define IP_DF 0x4000
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

struct vlan_tag {
	__be16 tci;
	__be16 proto;
};

struct packet {
	struct ethhdr *eth;
	struct iphdr *ip;     /* NULL on the IPv6 path */
	struct ipv6hdr *ip6;  /* the IPv6 path's (ipv6.h) */
	__be16 *sport;   /* points into the L4 header */
	__be16 *dport;
	__sum16 *l4_csum;
	__u32 len;       /* whole frame, for byte counters */
	__u16 vlan;      /* the VLAN tag's id; 0: untagged (or priority-tagged) */
	__u16 ext_len;   /* IPv6: the extension headers' length, before L4 */
	__u8 proto;
	__u8 tcp_flags;  /* TCP_FLAG_* below, 0 for UDP */
};

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* is_pure_syn tells a TCP segment that opens a connection: SYN without ACK
 * or RST. */
static __always_inline int is_pure_syn(const struct packet *p)
{
	return p->proto == IPPROTO_TCP && (p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN;
}

static __always_inline int is_fragment(const struct iphdr *ip)
{
	return (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)) != 0;
}

/* A fragment has no ports to find a service by, and a later fragment none at
 * all. Those sent to a VIP are dropped (never mis-forwarded); others belong
 * to the host. */
static __always_inline int handle_fragment(const struct iphdr *ip)
{
	__be32 dst = ip->daddr;

	if (bpf_map_lookup_elem(&vips, &dst))
		return verdict(R_DROP_FRAGMENT, XDP_DROP);
	return verdict(R_PASS_FRAGMENT, XDP_PASS);
}

static __always_inline int parse_l4(struct packet *p, void *l4, void *end)
{
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > end)
			return verdict(R_PASS_TRUNCATED, XDP_PASS);
		if (th->doff < 5)
			return verdict(R_PASS_BAD_HEADER, XDP_PASS);
		p->sport = &th->source;
		p->dport = &th->dest;
		p->l4_csum = &th->check;
		p->tcp_flags = ((__u8 *)th)[13];
		return CONTINUE;
	}
	if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;

		if ((void *)(uh + 1) > end)
			return verdict(R_PASS_TRUNCATED, XDP_PASS);
		p->sport = &uh->source;
		p->dport = &uh->dest;
		p->l4_csum = &uh->check;
		p->tcp_flags = 0;
		return CONTINUE;
	}
	return verdict(R_PASS_NOT_L4, XDP_PASS);
}

/* parse_l2 finds the network header behind Ethernet and one optional VLAN
 * tag: *l3 and its EtherType *proto. */
static __always_inline int parse_l2(struct xdp_md *ctx, struct packet *p, void **l3, __be16 *proto)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;

	p->len = end - data;
	if ((void *)(eth + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	p->eth = eth;
	*proto = eth->h_proto;
	*l3 = eth + 1;
	if (*proto == bpf_htons(ETH_P_8021Q) || *proto == bpf_htons(ETH_P_8021AD)) {
		struct vlan_tag *tag = *l3;

		if ((void *)(tag + 1) > end)
			return verdict(R_PASS_TRUNCATED, XDP_PASS);
		*proto = tag->proto;
		p->vlan = bpf_ntohs(tag->tci) & 0x0fff;
		*l3 = tag + 1;
	}
	return CONTINUE;
}

/* is_ipv6 tells a frame for the IPv6 path (ipv6.h). No stack of its
 * own: the entry's frame adds to every call chain's 512 bytes. */
static __always_inline int is_ipv6(struct xdp_md *ctx)
{
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = (void *)(long)ctx->data;
	struct vlan_tag *tag = (void *)(eth + 1);

	if ((void *)(eth + 1) > end)
		return 0;
	if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		return 1;
	if (eth->h_proto != bpf_htons(ETH_P_8021Q) && eth->h_proto != bpf_htons(ETH_P_8021AD))
		return 0;
	return (void *)(tag + 1) <= end && tag->proto == bpf_htons(ETH_P_IPV6);
}

static __always_inline int parse_packet(struct xdp_md *ctx, struct packet *p)
{
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip;
	__be16 proto;
	__u32 ihl_len;
	void *l3;
	int ret;

	ret = parse_l2(ctx, p, &l3, &proto);
	if (ret >= 0)
		return ret;
	if (proto != bpf_htons(ETH_P_IP))
		return verdict(R_PASS_NOT_IPV4, XDP_PASS);

	ip = l3;
	if ((void *)(ip + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	if (ip->version != 4 || ip->ihl < 5)
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	ihl_len = ip->ihl * 4;
	if (bpf_ntohs(ip->tot_len) < ihl_len)
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	/* The verifier needs the variable IHL bounded before it is added to a
	 * packet pointer; ihl is 4 bits, so this never changes the value. */
	ihl_len &= 0x3c;
	if (l3 + ihl_len > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	p->ip = ip;
	p->proto = ip->protocol;
	if (p->proto == IPPROTO_ICMP && !is_fragment(ip))
		return PARSED_ICMP;
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return verdict(R_PASS_NOT_L4, XDP_PASS);
	if (is_fragment(ip))
		return handle_fragment(ip);
	return parse_l4(p, l3 + ihl_len, end);
}

#endif
