/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* TOA: the client's address for Full-NAT backends, in a TCP option.
 *
 * A Full-NAT backend sees the local address. For services with
 * client_address toa, the client's packets that acknowledge the backend's
 * SYN-ACK (the handshake ACK, and the next ones if it was lost) carry the
 * client's address and port in option kind 254, length 8: the format of
 * LVS's and DPVS's toa.ko, which a backend reads with that module or with
 * `xdplb toa install`. The backend's SYN-ACK announces an MSS 8 bytes
 * lower, so a full-size segment that carries the option still fits.
 * Options take no sequence space: nothing else of the connection changes,
 * and a backend that does not read the option ignores it.
 *
 * A client's own kind-254 options are disabled (their kind becomes 253)
 * on every packet of a TOA service that carries none of ours, so that a
 * client can never choose the address its backend sees. */
#ifndef XDPLB_TOA_H
#define XDPLB_TOA_H

#include "parse.h"
#include "csum.h"
#include "fib.h"
#include "tcpopt.h"

#define TOA_LEN TOA_LEN_V4

struct toa_option {
	__u8 kind;
	__u8 len;
	__be16 port;
	__be32 addr;
} __attribute__((packed));

static __always_inline void count_toa(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&toa_stats, &what);

	if (n)
		*n += 1;
}

static __always_inline int sends_toa(__u32 svc_id)
{
	__u32 *mode = bpf_map_lookup_elem(&svc_client_addr, &svc_id);

	return mode && *mode == CLIENT_ADDR_TOA;
}

/* tcp_at finds the IPv4 header l2 bytes into the frame and the TCP header
 * after it, or NULL if the frame is too short for either. A global
 * function gets no packet pointers: each finds its headers again. */
static __always_inline struct tcphdr *tcp_at(void *data, void *end, __u32 l2, struct iphdr **ipp)
{
	struct iphdr *ip = data + (l2 & 0x1f);
	struct tcphdr *th;

	if ((void *)(ip + 1) > end)
		return NULL;
	th = (void *)ip + ((ip->ihl * 4) & 0x3c);
	if ((void *)(th + 1) > end)
		return NULL;
	*ipp = ip;
	return th;
}

/* The most kind-254 options a TCP header holds (2 bytes each at least). */
#define MAX_FORGED (TCP_MAX_OPTS / 2)

/* What toa_fix_options does to the options it walks. */
enum option_fix {
	LOWER_MSS,      /* a backend's SYN-ACK: its MSS, TOA_LEN lower */
	DISABLE_FORGED, /* a client's packet: its own kind-254 options, kind 253 */
};

/* toa_fix_options walks the options of the TCP header tcp_off bytes into
 * the frame, from the option at from_off, and fixes the first it finds
 * as fix says, with the checksum, counted. It returns where the walk may
 * go on (the next option's offset), or 0 when there is nothing more to
 * fix: a walk that went on after a fix would keep the verifier from
 * pruning it.
 *
 * A client must never choose the address its backend sees: kind 253,
 * which no TOA reader takes, replaces its 254. A global function: the verifier checks the walk once, not
 * once per path of the program that calls it. */
__attribute__((noinline)) int toa_fix_options(struct xdp_md *ctx, __u32 tcp_off, __u32 fix, __u32 from_off)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 len, off = from_off;
	struct tcphdr *th;
	__u8 *opts;

	if (tcp_off > ETH_HLEN + sizeof(struct vlan_tag) + 60)
		return 0;
	th = data + tcp_off;
	if ((void *)(th + 1) > end || th->doff < 5)
		return 0;
	opts = (void *)(th + 1);
	len = th->doff * 4 - sizeof(*th);
	/* Each step moves off on by a byte at least. No counter of its own:
	 * it would tell otherwise equal steps apart and keep the verifier
	 * from pruning them. */
	while (off < TCP_MAX_OPTS) {
		__u16 from, to;
		__u8 *o;

		if (off >= len)
			return 0;
		o = opts + (off & 0x3f);
		asm volatile("" : "+r"(o));
		if ((void *)(o + 2) > end || o[0] == TCP_OPT_EOL)
			return 0;
		if (o[0] == TCP_OPT_NOP) {
			off++;
			continue;
		}
		if (o[1] < 2)
			return 0;
		if (fix == DISABLE_FORGED && o[0] == TOA_KIND) {
			/* the kind byte: the high half of its word at an even offset */
			from = off & 1 ? TOA_KIND : TOA_KIND << 8;
			to = off & 1 ? TOA_KIND - 1 : (TOA_KIND - 1) << 8;
			o[0] = TOA_KIND - 1;
		} else if (fix == LOWER_MSS && o[0] == TCP_OPT_MSS && o[1] == 4) {
			__u16 mss, lower;

			if ((void *)(o + 4) > end)
				return 0;
			mss = (o[2] << 8) | o[3];
			if (mss <= TOA_LEN)
				return 0;
			lower = mss - TOA_LEN;
			o[2] = lower >> 8;
			o[3] = lower & 0xff;
			/* the value: one word at an even offset, across two at an odd one */
			from = off & 1 ? __builtin_bswap16(mss) : mss;
			to = off & 1 ? __builtin_bswap16(lower) : lower;
		} else {
			off += o[1];
			continue;
		}
		th->check = bpf_htons(csum_apply(bpf_ntohs(th->check), csum_delta16(0, from, to)));
		count_toa(fix == LOWER_MSS ? TOA_MSS_LOWERED : TOA_FORGED);
		return off + o[1];
	}
	return 0;
}

/* toa_synack notes a backend's SYN-ACK to a client of a TOA service: the
 * client's packets that acknowledge it are to carry the option, and the
 * MSS it announces is lowered to leave room for it. l2 is the length of
 * the Ethernet header (and VLAN tag); the caller has checked that the
 * service sends TOA. A global function gets no map values, so the
 * connection is looked up again by the packet's tuple: a second lookup for
 * a TOA service's SYN-ACK, which keeps the branches out of every other
 * reply's path, and the verifier checks it once. */
__attribute__((noinline)) int toa_synack(struct xdp_md *ctx, __u32 l2)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ct_key rk = {};
	struct tcphdr *th;
	struct ct_rev *rev;
	struct iphdr *ip;
	__u32 ihl_len, ack;

	if (l2 > ETH_HLEN + sizeof(struct vlan_tag))
		return 0;
	th = tcp_at(data, end, l2, &ip);
	if (!th || ip->protocol != IPPROTO_TCP)
		return 0;
	ihl_len = (void *)th - (void *)ip;
	if ((((__u8 *)th)[13] & (TCP_SYN | TCP_ACK | TCP_RST)) != (TCP_SYN | TCP_ACK))
		return 0;
	rk.saddr = ip->saddr;
	rk.daddr = ip->daddr;
	rk.sport = th->source;
	rk.dport = th->dest;
	rk.proto = IPPROTO_TCP;
	rev = bpf_map_lookup_elem(&ct_reverse, &rk);
	if (!rev)
		return 0;
	ack = bpf_ntohl(th->seq) + 1;
	bpf_map_update_elem(&toa_pending, &rev->client, &ack, BPF_ANY);
	toa_fix_options(ctx, l2 + ihl_len, LOWER_MSS, 0);
	return 0;
}

/* move_headers moves the first n bytes of the frame to its new start,
 * TOA_LEN bytes earlier. Ascending copies never overwrite a byte still to
 * be read: each destination lies before its source. */
static __always_inline int move_headers(void *data, void *end, __u32 n)
{
	__u16 *dst = data;
	__u16 *src = data + TOA_LEN;

	if ((void *)src + n > end)
		return -1;
#pragma unroll
	for (int i = 0; i < (ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr)) / 2; i++) {
		dst[i] = src[i];
		/* one word at a time: batched loads would spill to the stack */
		asm volatile("" ::: "memory");
	}
	if (n > ETH_HLEN + sizeof(struct iphdr) + sizeof(struct tcphdr)) {
		/* the VLAN tag's 4 bytes */
		dst[27] = src[27];
		dst[28] = src[28];
	}
	return 0;
}

/* toa_insert grows the frame whose Ethernet header (and VLAN tag) is l2
 * bytes by TOA_LEN, writes the option right after the basic TCP header,
 * where DPVS puts it, and fixes lengths and checksums: the IPv4 total
 * length, the TCP data offset, the pseudo header's TCP length and the
 * option's own words. It returns 0 when done, -1 when the frame is
 * untouched (no headroom), -2 when it grew but could not be finished. */
static __always_inline int toa_insert(struct xdp_md *ctx, __u32 l2)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct toa_option *opt;
	__u16 ip_len, word;
	struct tcphdr *th;
	struct iphdr *ip;
	__be16 port;
	__be32 addr;
	__u32 delta;

	if (l2 != ETH_HLEN && l2 != ETH_HLEN + sizeof(struct vlan_tag))
		return -1;
	ip = data + l2;
	th = (void *)(ip + 1);
	if ((void *)(th + 1) > end)
		return -1;
	ip_len = bpf_ntohs(ip->tot_len);
	addr = ip->saddr;
	port = th->source;
	word = bpf_ntohs(((__be16 *)th)[6]); /* data offset and flags */

	if (bpf_xdp_adjust_head(ctx, -TOA_LEN))
		return -1;
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (move_headers(data, end, l2 + sizeof(*ip) + sizeof(*th)))
		return -2;
	ip = data + l2;
	th = (void *)(ip + 1);
	opt = (void *)(th + 1);
	if ((void *)(opt + 1) > end)
		return -2;
	opt->kind = TOA_KIND;
	opt->len = TOA_LEN;
	opt->port = port;
	opt->addr = addr;

	ip->tot_len = bpf_htons(ip_len + TOA_LEN);
	ip->check = bpf_htons(csum_apply(bpf_ntohs(ip->check), csum_delta16(0, ip_len, ip_len + TOA_LEN)));

	((__be16 *)th)[6] = bpf_htons(word + ((TOA_LEN / 4) << 12));
	delta = csum_delta16(0, word, word + ((TOA_LEN / 4) << 12));
	delta = csum_delta16(delta, ip_len - sizeof(*ip), ip_len - sizeof(*ip) + TOA_LEN);
	delta += (TOA_KIND << 8) + TOA_LEN + bpf_ntohs(port) + (bpf_ntohl(addr) >> 16) + (bpf_ntohl(addr) & 0xffff);
	th->check = bpf_htons(csum_apply(bpf_ntohs(th->check), delta));
	return 0;
}

/* too_big tells whether the packet, rewritten to saddr:sport ->
 * daddr:dport, would exceed its route's MTU at length len. */
static __always_inline int too_big(struct xdp_md *ctx, __be32 saddr, __be32 daddr, __u32 ports,
				   __u16 len, __u8 tos)
{
	struct bpf_fib_lookup fib = {
		.family = AF_INET,
		.l4_protocol = IPPROTO_TCP,
		.sport = ports >> 16,
		.dport = ports & 0xffff,
		.tot_len = len,
		.tos = tos,
		.ipv4_src = saddr,
		.ipv4_dst = daddr,
		.ifindex = ctx->ingress_ifindex,
	};

	return bpf_fib_lookup(ctx, &fib, sizeof(fib), 0) == BPF_FIB_LKUP_RET_FRAG_NEEDED;
}

/* toa_client adds the option to a client packet of a TOA service that
 * acknowledges the backend's SYN-ACK, after disabling any the client put
 * there itself. The packet's Ethernet header (and VLAN tag) is l2 bytes;
 * it is going to be rewritten to saddr:sport -> daddr:dport (ports:
 * sport << 16 | dport, each in network order), which the MTU check needs.
 * One that cannot take the option goes on without, counted: the
 * connection works, the backend just does not learn the address. It
 * returns -1 for a frame that grew and could not be finished (never
 * seen), 0 otherwise. A global function: the verifier checks it once,
 * not once per path of from_client. */
__attribute__((noinline)) int toa_client(struct xdp_md *ctx, __u32 l2, __be32 saddr, __be32 daddr, __u32 ports)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ct_key key = {};
	__u32 *want, ack, ihl_len;
	struct tcphdr *th;
	struct iphdr *ip;
	int seg, ret;

	if (l2 != ETH_HLEN && l2 != ETH_HLEN + sizeof(struct vlan_tag))
		return 0;
	th = tcp_at(data, end, l2, &ip);
	if (!th || th->doff < 5)
		return 0;
	ihl_len = (void *)th - (void *)ip;
	/* A SYN or a reset never completes a handshake: no reader looks. */
	if ((((__u8 *)th)[13] & (TCP_SYN | TCP_RST | TCP_ACK)) != TCP_ACK)
		return 0;
	for (int i = 0, at = 0; i < MAX_FORGED && th->doff > 5; i++) {
		at = toa_fix_options(ctx, l2 + ihl_len, DISABLE_FORGED, at);
		if (at <= 0)
			break;
	}
	key.saddr = ip->saddr;
	key.daddr = ip->daddr;
	key.sport = th->source;
	key.dport = th->dest;
	key.proto = IPPROTO_TCP;
	want = bpf_map_lookup_elem(&toa_pending, &key);
	if (!want)
		return 0;
	ack = bpf_ntohl(th->ack_seq);
	if (ack != *want) {
		if ((__s32)(ack - *want) > 0)
			bpf_map_delete_elem(&toa_pending, &key);
		return 0;
	}
	/* IPv4 options: the headers to move are not of the fixed size
	 * toa_insert moves. */
	if (ihl_len != sizeof(*ip) || th->doff * 4 + TOA_LEN > 60) {
		count_toa(TOA_NO_ROOM);
		return 0;
	}
	seg = bpf_ntohs(ip->tot_len) - sizeof(*ip) - th->doff * 4;
	if (seg > 0 && too_big(ctx, saddr, daddr, ports, bpf_ntohs(ip->tot_len) + TOA_LEN, ip->tos)) {
		count_toa(TOA_TOO_BIG);
		return 0;
	}
	ret = toa_insert(ctx, l2);
	if (ret == -2)
		return -1;
	count_toa(ret == 0 ? TOA_INSERTED : TOA_NO_ROOM);
	return 0;
}

/* reparse points p at the headers again after a call that may have moved
 * the frame: the verifier forgets every packet pointer, whether it did or
 * not. l2 bytes of Ethernet (and VLAN tag), then IPv4 and TCP. */
static __always_inline int reparse(struct xdp_md *ctx, struct packet *p, __u32 l2)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct tcphdr *th;
	struct iphdr *ip;

	/* Both checks: a bound proven for a pointer with a variable offset
	 * says nothing about the frame's start. */
	th = tcp_at(data, end, l2, &ip);
	if (!th || data + sizeof(struct ethhdr) > end)
		return -1;
	p->eth = data;
	p->ip = ip;
	p->sport = &th->source;
	p->dport = &th->dest;
	p->l4_csum = &th->check;
	p->len = end - data;
	return 0;
}

/* toa_forward runs toa_client for a TCP packet of a TOA service about to
 * be rewritten to `to`. */
static __always_inline int toa_forward(struct xdp_md *ctx, struct packet *p, const struct tuple *to)
{
	__u32 l2 = (void *)p->ip - (void *)p->eth;

	if (toa_client(ctx, l2, to->saddr, to->daddr, ((__u32)to->sport << 16) | to->dport) ||
	    reparse(ctx, p, l2))
		return verdict(R_DROP_ABORTED, XDP_DROP);
	return CONTINUE;
}

#endif
