/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* NAT64 in Full-NAT: an IPv6 client of an IPv6 service whose backends are
 * IPv4. The backend side is a new connection from an IPv4 local address
 * anyway, so the header is translated (RFC 7915) where IPv6 Full-NAT
 * would rewrite addresses: the forward half is in ct6_forward (addresses
 * IPv4-mapped), the reverse half in ct_reverse, where its local port is
 * claimed with BPF_NOEXIST like an IPv4 connection's, so the two kinds
 * never share one; the IPv6 client of a reverse half is in
 * ct_rev_client6. The fields translated: version and lengths, traffic
 * class and TOS, hop limit and TTL (one less: forwarded), next header
 * and protocol, addresses; IPv4 gets DF (RFC 7915 5.1: IPv6 is never
 * fragmented on the way) and a fresh header checksum. Extension headers
 * are left behind; an IPv4 header with options, or a UDP datagram
 * without a checksum (which IPv6 forbids), is not translated. */
#ifndef XDPLB_NAT64_H
#define XDPLB_NAT64_H

#include "nat6.h"
#include "fib.h"
#include "fib6.h"
#include "snat.h"
#include "reply.h"
#include "sched6.h"

/* How much longer an IPv6 header is than an IPv4 one without options. */
#define NAT64_GROW (sizeof(struct ipv6hdr) - sizeof(struct iphdr))

static __always_inline struct addr6 mapped4(__be32 a)
{
	struct addr6 m = { .w = { 0, 0, bpf_htonl(0xffff), a } };

	return m;
}

static __always_inline int nat64_service(__u32 svc_id)
{
	__u32 *on = bpf_map_lookup_elem(&svc_nat64, &svc_id);

	return on && *on;
}

/* pick_backend64 is pick_backend6 over the service's IPv4 backends: the
 * IPv6 client hashed and remembered (persist6, the backend IPv4-mapped). */
static __always_inline const struct backend *
pick_backend64(const struct svc_value *svc, const struct packet *p, __u32 *backend_id, __u32 *reason)
{
	struct persist6_key k = { .svc_id = svc->id };
	struct persist6_value *v;
	const struct backend *be;
	__u64 now = 0;
	__u32 *id;

	if (svc->ring_len == 0) {
		*reason = R_DROP_NO_BACKEND;
		return NULL;
	}
	if (svc->persist_secs) {
		now = bpf_ktime_get_coarse_ns();
		k.client = persist6_client(svc, p);
		v = bpf_map_lookup_elem(&persist6, &k);
		if (v && now - v->last_seen <= (__u64)svc->persist_secs * 1000000000ULL) {
			be = backend_by_id(v->backend_id);
			if (be && !(be->flags & BACKEND_DRAINED) && v->addr.w[3] == be->addr && v->port == be->port) {
				v->last_seen = now;
				*backend_id = v->backend_id;
				return be;
			}
		}
	}
	id = ring_id6(svc, p);
	be = id ? backend_by_id(*id) : NULL;
	if (!be) {
		*reason = R_DROP_BAD_BACKEND;
		return NULL;
	}
	*backend_id = *id;
	if (svc->persist_secs) {
		struct persist6_value nv = {
			.last_seen = now, .backend_id = *id, .addr = mapped4(be->addr), .port = be->port,
		};

		bpf_map_update_elem(&persist6, &k, &nv, BPF_ANY);
	}
	return be;
}

/* reverse_key64 is the IPv4 key of a NAT64 connection's reverse half. */
static __always_inline struct ct_key reverse_key64(const struct ct6_key *fk, const struct ct6_fwd *fwd)
{
	struct ct_key rk = {
		.saddr = fwd->backend_addr.w[3], .daddr = fwd->local_addr.w[3],
		.sport = fwd->backend_port, .dport = fwd->local_port, .proto = fk->proto,
	};

	return rk;
}

/* open64 records a new NAT64 connection to backend be (id backend_id):
 * the reverse half with an IPv4 local port claimed for it, its client,
 * and the forward half's fields in fwd (the caller inserts it). */
static __always_inline int open64(struct xdp_md *ctx, struct packet *p, const struct svc_value *svc,
				  const struct ct6_key *fk, const struct backend *be, __u32 backend_id,
				  struct ct6_fwd *fwd, struct ct_rev *rev)
{
	struct ct_key rk = {};
	int ret;

	__builtin_memset(rev, 0, sizeof(*rev));
	rev->last_seen = bpf_ktime_get_coarse_ns();
	__builtin_memcpy(rev->client_mac, p->eth->h_source, ETH_ALEN);
	__builtin_memcpy(rev->lb_mac, p->eth->h_dest, ETH_ALEN);
	rev->ifindex = ctx->ingress_ifindex;
	rev->svc_id = svc->id;
	rev->backend_id = backend_id;
	rev->state = initial_state(p->proto);
	rev->origin = node_id;
	rev->flags = CT_F_NAT64;
	ret = claim_local_port(p, be, backend_id, rev, &rk);
	if (ret >= 0)
		return ret;
	if (bpf_map_update_elem(&ct_rev_client6, &rk, fk, BPF_ANY) != 0) {
		release_local_port(&rk, backend_id);
		return verdict(R_DROP_CT_FULL, XDP_DROP);
	}
	fwd->last_seen = rev->last_seen;
	fwd->local_addr = mapped4(rk.daddr);
	fwd->local_port = rk.dport;
	fwd->backend_addr = mapped4(be->addr);
	fwd->backend_port = be->port;
	fwd->flags = CT6_FWD_NAT64;
	return CONTINUE;
}

/* release64 removes a NAT64 connection's reverse half and its client,
 * the local port going back to its pool. */
static __always_inline void release64(const struct ct_key *rk, __u32 backend_id)
{
	bpf_map_delete_elem(&ct_rev_client6, rk);
	release_local_port(rk, backend_id);
}

/* backend64_takes_new: backend_takes_new for a NAT64 entry. */
static __always_inline int backend64_takes_new(const struct ct6_fwd *fwd)
{
	const struct backend *be = bpf_map_lookup_elem(&backends, &fwd->backend_id);

	return be && !(be->flags & BACKEND_DRAINED) && be->addr == fwd->backend_addr.w[3] &&
	       be->port == fwd->backend_port && be->svc_id == fwd->svc_id;
}

/* hop64 makes sure a NAT64 connection has its next hop towards its IPv4
 * backend, as connection_hop6 does, asking the FIB about the packet as it
 * will leave: IPv4, 20 bytes shorter. */
static __always_inline int hop64(struct xdp_md *ctx, const struct packet *p, struct ct6_fwd *conn,
				 struct ct6_fwd *fwd, int refresh, struct bpf_fib_lookup *fib)
{
	int rc;

	if (conn->hop_ifindex && !refresh)
		return CONTINUE;
	__builtin_memset(fib, 0, sizeof(*fib));
	fib->family = AF_INET;
	fib->l4_protocol = p->proto;
	fib->sport = conn->local_port;
	fib->dport = conn->backend_port;
	fib->tot_len = bpf_ntohs(p->ip6->payload_len) - p->ext_len + sizeof(struct iphdr);
	fib->ipv4_src = conn->local_addr.w[3];
	fib->ipv4_dst = conn->backend_addr.w[3];
	fib->ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, fib, sizeof(*fib), 0);
	if (rc == BPF_FIB_LKUP_RET_NO_NEIGH) {
		emit_event(EV_NO_NEIGH, conn->backend_addr.w[3]);
		return verdict(R_DROP_NO_NEIGH, XDP_DROP);
	}
	/* RFC 7915 4.4: the IPv6 side's MTU is IPv4's plus 20. */
	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big6(ctx, p, fib->mtu_result + NAT64_GROW);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS)
		return verdict(R_DROP_NO_ROUTE, XDP_DROP);
	conn->hop_ifindex = fib->ifindex;
	__builtin_memcpy(conn->hop_dmac, fib->dmac, ETH_ALEN);
	__builtin_memcpy(conn->hop_smac, fib->smac, ETH_ALEN);
	if (fwd) {
		fwd->hop_ifindex = conn->hop_ifindex;
		__builtin_memcpy(fwd->hop_dmac, conn->hop_dmac, ETH_ALEN);
		__builtin_memcpy(fwd->hop_smac, conn->hop_smac, ETH_ALEN);
	}
	return CONTINUE;
}

/* trim_frame cuts a translated frame of have bytes to the want its
 * headers say: what followed the packet (Ethernet's padding of a short
 * one) is not the other family's to carry. */
static __always_inline int trim_frame(struct xdp_md *ctx, __u32 want, __u32 have)
{
	if (want < have && bpf_xdp_adjust_tail(ctx, (int)want - (int)have))
		return verdict(R_DROP_ABORTED, XDP_DROP);
	return CONTINUE;
}

/* finish_l4 writes a translated packet's ports (at l4) and moves its
 * TCP or UDP checksum by delta (the addresses', from one pseudo header to
 * the other, and the ports'), then cuts the frame of have bytes to the
 * want its headers say. */
static __always_inline int finish_l4(struct xdp_md *ctx, __be16 *l4, void *end, __u8 proto, __be16 sport,
				     __be16 dport, __u32 delta, __u32 want, __u32 have)
{
	__be16 *csum = &l4[3];
	__u16 check;

	if ((void *)l4 + 8 > end)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	l4[0] = sport;
	l4[1] = dport;
	if (proto == IPPROTO_TCP) {
		if ((void *)l4 + 18 > end)
			return verdict(R_DROP_ABORTED, XDP_DROP);
		csum = &l4[8];
	}
	check = csum_apply(bpf_ntohs(*csum), delta);
	if (proto == IPPROTO_UDP && check == 0)
		check = 0xffff;
	*csum = bpf_htons(check);
	return trim_frame(ctx, want, have);
}

/* to_ipv4 translates the client's IPv6 packet into the IPv4 one to the
 * backend (conn) and sends it. l2 must be a constant at each call. */
static __always_inline int to_ipv4(struct xdp_md *ctx, struct packet *p, const struct ct6_fwd *conn,
				   const __u16 l2)
{
	__u32 first = bpf_ntohl(*(__be32 *)p->ip6), delta = 0, shrink;
	__u16 l4_len = bpf_ntohs(p->ip6->payload_len) - p->ext_len;
	__u8 proto = p->proto, ttl = p->ip6->hop_limit - 1, tos = first >> 20;
	__u8 l2hdr[sizeof(struct ethhdr) + sizeof(struct vlan_tag)];
	struct iphdr *ip;
	void *data, *end;

	/* The checksum's change: the pseudo header's addresses (its length
	 * and protocol are the same for both), and the ports. */
	delta = addr6_delta(delta, (const struct addr6 *)&p->ip6->saddr, &conn->local_addr);
	delta = addr6_delta(delta, (const struct addr6 *)&p->ip6->daddr, &conn->backend_addr);
	delta = csum_delta16(delta, bpf_ntohs(*p->sport), bpf_ntohs(conn->local_port));
	delta = csum_delta16(delta, bpf_ntohs(*p->dport), bpf_ntohs(conn->backend_port));
	__builtin_memcpy(l2hdr, p->eth, l2);
	shrink = sizeof(struct ipv6hdr) + p->ext_len - sizeof(struct iphdr);
	if (shrink > 2048 * IPV6_EXT_MAX || bpf_xdp_adjust_head(ctx, (int)shrink))
		return verdict(R_DROP_ABORTED, XDP_DROP);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	ip = data + l2;
	if ((void *)(ip + 1) + 8 > end)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	__builtin_memcpy(data, l2hdr, l2);
	__builtin_memcpy(((struct ethhdr *)data)->h_dest, conn->hop_dmac, ETH_ALEN);
	__builtin_memcpy(((struct ethhdr *)data)->h_source, conn->hop_smac, ETH_ALEN);
	*(__be16 *)(data + l2 - 2) = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(l4_len + sizeof(*ip));
	ip->id = 0;
	ip->frag_off = bpf_htons(IP_DF);
	ip->ttl = ttl;
	ip->protocol = proto;
	ip->check = 0;
	ip->saddr = conn->local_addr.w[3];
	ip->daddr = conn->backend_addr.w[3];
	ip->check = bpf_htons(csum_fold_final(csum_words(0, (__be16 *)ip, sizeof(*ip) / 2, end)));
	return finish_l4(ctx, (void *)(ip + 1), end, proto, conn->local_port, conn->backend_port, delta,
			 l2 + sizeof(*ip) + l4_len, end - data);
}

/* The answers of the families' paths for what their callers must call:
 * a call in the caller adds nothing to the path's own stack (512 bytes
 * for a whole chain of calls, on older kernels each frame rounded up to
 * 32). */
#define NAT64_REPLY -4  /* ipv4_packet: a reply to a NAT64 connection (nat64_reply) */
#define NAT64_CLIENT -5 /* ipv6_l4: a client's packet to a NAT64 service (client64) */

/* nat64_send sends a client's packet of NAT64 connection conn (fwd: its
 * entry, NULL for one being opened; refresh: its next hop is due for a
 * lookup) to its IPv4 backend. */
static __always_inline int nat64_send(struct xdp_md *ctx, struct packet *p, struct ct6_fwd *conn,
				      struct ct6_fwd *fwd, int refresh, struct bpf_fib_lookup *fib)
{
	__u32 len4, mtu, bytes = p->len;
	int ret;

	ret = hop64(ctx, p, conn, fwd, refresh, fib);
	if (ret >= 0)
		return ret;
	len4 = bpf_ntohs(p->ip6->payload_len) - p->ext_len + sizeof(struct iphdr);
	mtu = len4;
	if (len4 > ALWAYS_FITS6 - NAT64_GROW &&
	    bpf_check_mtu(ctx, conn->hop_ifindex, &mtu, 0, 0) == BPF_MTU_CHK_RET_FRAG_NEEDED)
		return too_big6(ctx, p, mtu + NAT64_GROW);
	if ((void *)p->ip6 - (void *)p->eth == sizeof(struct ethhdr) + sizeof(struct vlan_tag))
		ret = to_ipv4(ctx, p, conn, sizeof(struct ethhdr) + sizeof(struct vlan_tag));
	else
		ret = to_ipv4(ctx, p, conn, sizeof(struct ethhdr));
	if (ret >= 0)
		return ret;
	count_traffic(&svc_stats, conn->svc_id, bytes, 1);
	count_traffic(&backend_stats, conn->backend_id, bytes, 1);
	if (conn->hop_ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_TX, XDP_TX);
	return verdict(R_FWD_REDIRECT, bpf_redirect(conn->hop_ifindex, 0));
}

/* to_ipv6 translates a backend's IPv4 reply of NAT64 connection rev
 * (client: its IPv6 forward key) into the IPv6 packet to the client. l2
 * must be a constant at each call. */
static __always_inline int to_ipv6(struct xdp_md *ctx, struct packet *p, const struct ct_rev *rev,
				   const struct ct6_key *client, const __u16 l2)
{
	__u16 l4_len = bpf_ntohs(p->ip->tot_len) - sizeof(struct iphdr);
	__u8 proto = p->proto, hop = p->ip->ttl - 1, tos = p->ip->tos;
	__u8 l2hdr[sizeof(struct ethhdr) + sizeof(struct vlan_tag)];
	struct addr6 from = mapped4(p->ip->saddr), to = mapped4(p->ip->daddr);
	struct ipv6hdr *ip6;
	void *data, *end;
	__u32 delta;

	/* Mapped, an IPv4 address adds only 0xffff, which is 0 to the sum. */
	delta = addr6_delta(0, &from, &client->daddr);
	delta = addr6_delta(delta, &to, &client->saddr);
	delta = csum_delta16(delta, bpf_ntohs(*p->sport), bpf_ntohs(client->dport));
	delta = csum_delta16(delta, bpf_ntohs(*p->dport), bpf_ntohs(client->sport));
	__builtin_memcpy(l2hdr, p->eth, l2);
	if (bpf_xdp_adjust_head(ctx, -(int)NAT64_GROW))
		return verdict(R_DROP_NO_HEADROOM, XDP_DROP);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	ip6 = data + l2;
	if ((void *)(ip6 + 1) + 8 > end)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	__builtin_memcpy(data, l2hdr, l2);
	__builtin_memcpy(((struct ethhdr *)data)->h_dest, rev->client_mac, ETH_ALEN);
	__builtin_memcpy(((struct ethhdr *)data)->h_source, rev->lb_mac, ETH_ALEN);
	*(__be16 *)(data + l2 - 2) = bpf_htons(ETH_P_IPV6);

	*(__be32 *)ip6 = bpf_htonl(0x60000000 | (__u32)tos << 20);
	ip6->payload_len = bpf_htons(l4_len);
	ip6->nexthdr = proto;
	ip6->hop_limit = hop;
	__builtin_memcpy(&ip6->saddr, &client->daddr, sizeof(client->daddr));
	__builtin_memcpy(&ip6->daddr, &client->saddr, sizeof(client->saddr));

	return finish_l4(ctx, (void *)(ip6 + 1), end, proto, client->dport, client->sport, delta,
			 l2 + sizeof(*ip6) + l4_len, end - data);
}

/* nat64_reply handles a backend's reply to a NAT64 connection's local
 * address:port (from_backend found its reverse half): translated into
 * IPv6 and sent to the client. A global function, verified on its own: it
 * finds its headers and the connection again from the context. */
__attribute__((noinline)) int nat64_reply(struct xdp_md *ctx)
{
	struct packet p = {};
	struct ct_key rk = {};
	const struct ct6_key *client;
	const struct ct6_fwd *fwd;
	struct ct_rev *rev;
	__u32 len6, mtu, bytes;
	int ret;

	ret = parse_packet(ctx, &p);
	if (ret >= 0 || ret == PARSED_ICMP)
		return verdict(R_DROP_ABORTED, XDP_DROP);
	key_from_packet(&rk, &p);
	rev = bpf_map_lookup_elem(&ct_reverse, &rk);
	client = bpf_map_lookup_elem(&ct_rev_client6, &rk);
	if (!rev || !client)
		return verdict(R_PASS_NO_CONN, XDP_PASS);
	ret = check_forwardable(ctx, &p);
	if (ret >= 0)
		return ret;
	/* IPv4 options have no IPv6 twin; a UDP datagram without a checksum
	 * would need one computed over all its data. */
	if (p.ip->ihl != 5 || (p.proto == IPPROTO_UDP && *p.l4_csum == 0))
		return verdict(R_PASS_BAD_HEADER, XDP_PASS);
	len6 = bpf_ntohs(p.ip->tot_len) + NAT64_GROW;
	mtu = len6;
	if (len6 > ALWAYS_FITS6 && bpf_check_mtu(ctx, rev->ifindex, &mtu, 0, 0) == BPF_MTU_CHK_RET_FRAG_NEEDED)
		return answer_too_big(ctx, &p, mtu - NAT64_GROW);
	fwd = bpf_map_lookup_elem(&ct6_forward, client);
	ret = ends_or_restarts(&p) ? check_segment(ctx, &p, fwd ? fwd->seq_next : 0, rev->state) : SEQ_ACT;
	if (ret == SEQ_REFUSE)
		return verdict(R_DROP_RST_WINDOW, XDP_DROP);
	note_ack(&rev->seq_next, ctx, &p);
	if (ret == SEQ_ACT)
		touch(&rev->last_seen, &rev->state, p.proto, p.tcp_flags);

	bytes = p.len;
	if ((void *)p.ip - (void *)p.eth == sizeof(struct ethhdr) + sizeof(struct vlan_tag))
		ret = to_ipv6(ctx, &p, rev, client, sizeof(struct ethhdr) + sizeof(struct vlan_tag));
	else
		ret = to_ipv6(ctx, &p, rev, client, sizeof(struct ethhdr));
	if (ret >= 0)
		return ret;
	count_traffic(&svc_stats, rev->svc_id, bytes, 0);
	count_traffic(&backend_stats, rev->backend_id, bytes, 0);
	if (rev->ifindex == ctx->ingress_ifindex)
		return verdict(R_FWD_TX, XDP_TX);
	return verdict(R_FWD_REDIRECT, bpf_redirect(rev->ifindex, 0));
}

#endif
