/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Answering a client from the balancer itself, by turning its segment
 * around: a TCP reset for connections the control plane ended (their
 * backend failed its health checks and the service says expire), so the
 * client learns at once instead of retransmitting into the void, and the
 * SYN-ACK challenges of SYN authentication (synauth.h). */
#ifndef XDPLB_REPLY_H
#define XDPLB_REPLY_H

#include "parse.h"

/* csum_words adds n 16-bit words, n bounded for the verifier. */
static __always_inline __u32 csum_words(__u32 sum, const __be16 *w, int n, void *end)
{
	for (int i = 0; i < 30; i++) {
		if (i >= n)
			break;
		if ((void *)(w + i + 1) > end)
			break;
		sum += bpf_ntohs(w[i]);
	}
	return sum;
}

static __always_inline __u16 csum_fold_final(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* send_back turns the client's TCP segment around in place: addresses and
 * ports swapped, the given sequence, acknowledgement and flags, no options
 * and no payload (the frame is cut to the 20-byte header), checksums
 * computed afresh. The caller sends it with XDP_TX; on failure (the frame
 * could not be cut) it returns -1 and the frame must be dropped. */
static __always_inline int send_back(struct xdp_md *ctx, struct packet *p, __be32 seq, __be32 ack, __u8 flags)
{
	void *end = (void *)(long)ctx->data_end;
	struct iphdr *ip = p->ip;
	struct tcphdr *th = (void *)p->sport; /* the TCP header starts at the ports */
	__u8 mac[ETH_ALEN];
	__u32 ihl_len, sum;
	__be32 addr;
	__be16 port;
	int shrink;

	if ((void *)(th + 1) > end)
		return -1;
	ihl_len = (ip->ihl * 4) & 0x3c;

	__builtin_memcpy(mac, p->eth->h_source, ETH_ALEN);
	__builtin_memcpy(p->eth->h_source, p->eth->h_dest, ETH_ALEN);
	__builtin_memcpy(p->eth->h_dest, mac, ETH_ALEN);

	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	ip->tot_len = bpf_htons(ihl_len + sizeof(*th));
	ip->ttl = 64;
	ip->check = 0;
	ip->check = bpf_htons(csum_fold_final(csum_words(0, (__be16 *)ip, ihl_len / 2, end)));

	port = th->source;
	th->source = th->dest;
	th->dest = port;
	th->seq = seq;
	th->ack_seq = ack;
	((__u8 *)th)[12] = 5 << 4; /* data offset 5: the options go with the payload */
	((__u8 *)th)[13] = flags;
	th->window = 0;
	th->urg_ptr = 0;
	th->check = 0;
	/* Pseudo header, then the 20-byte header; nothing else is left. */
	sum = (bpf_ntohl(ip->saddr) >> 16) + (bpf_ntohl(ip->saddr) & 0xffff) +
	      (bpf_ntohl(ip->daddr) >> 16) + (bpf_ntohl(ip->daddr) & 0xffff) +
	      IPPROTO_TCP + sizeof(*th);
	th->check = bpf_htons(csum_fold_final(csum_words(sum, (__be16 *)th, sizeof(*th) / 2, end)));

	shrink = (long)end - (long)(th + 1);
	if (shrink > 0 && bpf_xdp_adjust_tail(ctx, -shrink))
		return -1;
	return 0;
}

/* reply_reset turns the client's packet into the reset RFC 793 prescribes
 * for it (SEQ = its ACK if it has one, else ACK = its SEQ + length), sent
 * back where it came from. A reset is never answered. */
static __always_inline int reply_reset(struct xdp_md *ctx, struct packet *p)
{
	void *end = (void *)(long)ctx->data_end;
	struct tcphdr *th = (void *)p->sport;
	__u32 seg_len;

	if (p->proto != IPPROTO_TCP || (p->tcp_flags & TCP_RST))
		return verdict(R_DROP_NO_CONN, XDP_DROP);
	if ((void *)(th + 1) > end)
		return verdict(R_PASS_TRUNCATED, XDP_PASS);
	if (p->tcp_flags & TCP_ACK) {
		if (send_back(ctx, p, th->ack_seq, 0, TCP_RST))
			return verdict(R_DROP_NO_CONN, XDP_DROP);
		return verdict(R_FWD_RESET, XDP_TX);
	}
	seg_len = bpf_ntohs(p->ip->tot_len) - ((p->ip->ihl * 4) & 0x3c) - th->doff * 4;
	if (p->tcp_flags & TCP_SYN)
		seg_len++;
	if (p->tcp_flags & TCP_FIN)
		seg_len++;
	if (send_back(ctx, p, 0, bpf_htonl(bpf_ntohl(th->seq) + seg_len), TCP_RST | TCP_ACK))
		return verdict(R_DROP_NO_CONN, XDP_DROP);
	return verdict(R_FWD_RESET, XDP_TX);
}

#endif
