/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Path MTU discovery through the balancer: a packet too big for the way
 * on (the route's or the device's MTU, or a DSR tunnel's once
 * encapsulated) is answered, as a router would (RFC 1191), with an ICMP
 * "fragmentation needed" that tells its sender the MTU left for it.
 * Without the answer the sender retransmits the same size forever and the
 * connection stalls (a PMTU black hole). */
#ifndef XDPLB_TOOBIG_H
#define XDPLB_TOOBIG_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include "parse.h"
#include "reply.h"

/* ICMP's destination unreachable, code "fragmentation needed" (RFC 792,
 * RFC 1191). linux/icmp.h is not usable here: it pulls in libc headers. */
#define ICMP_DEST_UNREACH 3
#define ICMP_FRAG_NEEDED 4

struct icmp_frag_needed {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 unused;
	__be16 mtu;
};

/* The answer quotes the packet's IPv4 header and the first 8 bytes of its
 * transport header: enough for the sender to find its connection. */
#define QUOTE_LEN (20 + 8)
#define FRAG_NEEDED_LEN (20 + 8 + QUOTE_LEN)

/* reply_frag_needed turns the packet into the ICMP error to its sender,
 * from the address it was sent to, announcing mtu, and sends it back
 * where it came from. l2 (the Ethernet header's length, with a VLAN tag
 * if any) must be a constant at each call. A packet with IPv4 options is
 * only dropped: its quote would not have a fixed size. */
static __always_inline int reply_frag_needed(struct xdp_md *ctx, const struct packet *p, __u16 mtu,
					     const __u16 l2)
{
	__be32 sender = p->ip->saddr, dest = p->ip->daddr;
	__u8 smac[ETH_ALEN], dmac[ETH_ALEN];
	struct icmp_frag_needed *icmp;
	struct iphdr *ip;
	void *data, *end;
	__u32 sum;

	if (p->ip->ihl != 5)
		return verdict(R_DROP_TOO_BIG, XDP_DROP);
	__builtin_memcpy(smac, p->eth->h_source, ETH_ALEN);
	__builtin_memcpy(dmac, p->eth->h_dest, ETH_ALEN);
	if (bpf_xdp_adjust_head(ctx, -(int)(sizeof(*ip) + sizeof(*icmp))))
		return verdict(R_DROP_TOO_BIG, XDP_DROP);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + l2 + FRAG_NEEDED_LEN > end)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	/* The new headers (28 bytes) are longer than the Ethernet header:
	 * the copy does not overlap. */
	__builtin_memcpy(data, data + sizeof(*ip) + sizeof(*icmp), l2);
	__builtin_memcpy(((struct ethhdr *)data)->h_dest, smac, ETH_ALEN);
	__builtin_memcpy(((struct ethhdr *)data)->h_source, dmac, ETH_ALEN);

	ip = data + l2;
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(FRAG_NEEDED_LEN);
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = dest;
	ip->daddr = sender;
	sum = 0x4500 + FRAG_NEEDED_LEN + (64 << 8 | IPPROTO_ICMP) +
	      (bpf_ntohl(dest) >> 16) + (bpf_ntohl(dest) & 0xffff) +
	      (bpf_ntohl(sender) >> 16) + (bpf_ntohl(sender) & 0xffff);
	ip->check = bpf_htons(csum_fold_final(sum));

	icmp = (void *)(ip + 1);
	icmp->type = ICMP_DEST_UNREACH;
	icmp->code = ICMP_FRAG_NEEDED;
	icmp->unused = 0;
	icmp->mtu = bpf_htons(mtu);
	sum = (ICMP_DEST_UNREACH << 8 | ICMP_FRAG_NEEDED) + mtu;
	sum = csum_words(sum, (void *)(icmp + 1), QUOTE_LEN / 2, end);
	icmp->checksum = bpf_htons(csum_fold_final(sum));

	if (bpf_xdp_adjust_tail(ctx, (int)(l2 + FRAG_NEEDED_LEN) - (int)(end - data)))
		return verdict(R_DROP_ABORTED, XDP_DROP);
	return verdict(R_FWD_FRAG_NEEDED, XDP_TX);
}

/* answer_too_big answers a packet that does not fit mtu: with a
 * "fragmentation needed" if it has DF (and the MTU is one an IPv4 link can
 * have), else it is dropped, as XDP cannot fragment. */
static __always_inline int answer_too_big(struct xdp_md *ctx, const struct packet *p, __u32 mtu)
{
	if (!(p->ip->frag_off & bpf_htons(IP_DF)) || mtu < 68 || mtu > 0xffff)
		return verdict(R_DROP_TOO_BIG, XDP_DROP);
	if ((void *)p->ip - (void *)p->eth == sizeof(struct ethhdr) + sizeof(struct vlan_tag))
		return reply_frag_needed(ctx, p, mtu, sizeof(struct ethhdr) + sizeof(struct vlan_tag));
	return reply_frag_needed(ctx, p, mtu, sizeof(struct ethhdr));
}

/* Packets up to this size (the datagram every IPv4 host must take, RFC
 * 791) are not measured: links with a smaller MTU, legal down to 68, are
 * all but extinct, and small packets are most of what a connection sends
 * besides its full-size segments. */
#define ALWAYS_FITS 576

/* fits_device makes sure the packet, as long as it is, fits the MTU of
 * the device it leaves by (ifindex): the FIB measured it against the
 * route when the next hop was looked up, but a connection's next hop is
 * looked up once a second, and the way back to the client never. */
static __always_inline int fits_device(struct xdp_md *ctx, const struct packet *p, __u32 ifindex)
{
	__u32 len = bpf_ntohs(p->ip->tot_len), mtu = len;

	if (len <= ALWAYS_FITS)
		return CONTINUE;
	/* Given an L3 length, the helper compares it with the MTU alone
	 * (a VLAN tag is not counted against it), and returns the MTU. */
	/* An error (a device gone) is not "too big": the packet goes on,
	 * and meets whatever the device's absence means. */
	if (bpf_check_mtu(ctx, ifindex, &mtu, 0, 0) != BPF_MTU_CHK_RET_FRAG_NEEDED)
		return CONTINUE;
	return answer_too_big(ctx, p, mtu);
}

#endif
