/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* SYN authentication: every new connection holds a local port and both
 * conntrack halves until it completes or times out, so spoofed SYNs can
 * fill the ports. While authentication is engaged, a SYN from a source not
 * yet verified is answered with a SYN-ACK whose acknowledgement number is a
 * cookie, never the one the client expects, and nothing is kept. A real
 * client's TCP answers an unacceptable acknowledgement in SYN-SENT with a
 * reset whose sequence number is that cookie (RFC 9293 3.10.7.3) and stays
 * in SYN-SENT; the reset proves the source (a spoofed one never sees the
 * SYN-ACK), the source is verified for a while, and the client's own SYN
 * retransmission opens the connection as usual. Linux retransmits within a
 * few milliseconds of such a reset. No sequence numbers are ever rewritten.
 *
 * What a reset proves is that someone at the address answers, not that it
 * sent the SYN: a live host that gets an unasked-for SYN-ACK answers with
 * the same reset. An attacker spoofing SYNs from live hosts' addresses can
 * get those verified, and then open connections from them unchallenged
 * (each still a half-open connection that expires after syn_sent). */
#ifndef XDPLB_SYNAUTH_H
#define XDPLB_SYNAUTH_H

#include "reply.h"

/* Settings, written by the control plane (the key at start and every
 * rotation). */
volatile __u32 syn_mode; /* enum syn_auth_mode */
volatile __u32 syn_auth_threshold; /* new-connection SYNs per second, for auto */
volatile __u64 syn_verified_ns;    /* how long a proof lasts */
volatile __u64 syn_key[2];

/* Bounds of half-open connections (0: none) and what a SYN over one gets. */
volatile __u32 half_open_max;     /* all services together */
volatile __u32 half_open_svc_max; /* each service */
volatile __u32 half_open_act;     /* enum half_open_action */
/* When (coarse clock) the control plane was last asked to count them. */
volatile __u64 half_open_asked;

/* A cookie is valid for the 2^36 ns (about 69 s) slot it was made in and
 * the next one. */
#define SYN_SLOT_SHIFT 36

#define ROTL64(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND                                                               \
	do {                                                                   \
		v0 += v1; v1 = ROTL64(v1, 13); v1 ^= v0; v0 = ROTL64(v0, 32); \
		v2 += v3; v3 = ROTL64(v3, 16); v3 ^= v2;                       \
		v0 += v3; v3 = ROTL64(v3, 21); v3 ^= v0;                       \
		v2 += v1; v1 = ROTL64(v1, 17); v1 ^= v2; v2 = ROTL64(v2, 32); \
	} while (0)

/* syn_cookie is SipHash-2-4, keyed with syn_key, of the connection's
 * addresses and ports (as they sit in the packet) and the time slot, cut
 * to 32 bits: nobody without the key can make one for a tuple. */
static __always_inline __u32 syn_cookie(__be32 saddr, __be32 daddr, __be16 sport, __be16 dport, __u64 slot)
{
	__u64 k0 = syn_key[0], k1 = syn_key[1];
	__u64 v0 = k0 ^ 0x736f6d6570736575ULL, v1 = k1 ^ 0x646f72616e646f6dULL;
	__u64 v2 = k0 ^ 0x6c7967656e657261ULL, v3 = k1 ^ 0x7465646279746573ULL;
	__u64 m0 = ((__u64)saddr << 32) | daddr;
	__u64 m1 = ((__u64)sport << 48) | ((__u64)dport << 32) | (slot & 0xffffffff);
	__u64 b = 16ULL << 56;

	v3 ^= m0; SIPROUND; SIPROUND; v0 ^= m0;
	v3 ^= m1; SIPROUND; SIPROUND; v0 ^= m1;
	v3 ^= b; SIPROUND; SIPROUND; v0 ^= b;
	v2 ^= 0xff;
	SIPROUND; SIPROUND; SIPROUND; SIPROUND;
	return (__u32)(v0 ^ v1 ^ v2 ^ v3);
}

/* How long authentication stays engaged once new-connection SYNs passed
 * the threshold within a second: a flood re-engages it after at most a
 * threshold's worth of SYNs per period, and while engaged nothing is
 * counted, so a flood costs no shared write per packet. */
#define SYN_ENGAGED_NS (10ULL * 1000000000ULL)

/* syn_auth_engaged tells whether a new-connection SYN must come from a
 * verified source. In auto mode it counts the SYN; the count is shared by
 * all CPUs and only approximate at a second's turn (a race there lets a
 * few more SYNs be counted or not), which decides when to challenge, never
 * whether a connection is correct. */
static __always_inline int syn_auth_engaged(void)
{
	struct syn_window *w;
	__u32 zero = 0;
	__u64 now, second;

	if (syn_mode == SYN_AUTH_ALWAYS)
		return 1;
	if (syn_mode != SYN_AUTH_AUTO)
		return 0;
	w = bpf_map_lookup_elem(&syn_rate, &zero);
	if (!w)
		return 0;
	now = bpf_ktime_get_coarse_ns();
	if (now < w->engaged_until)
		return 1;
	second = now >> 30; /* about seconds */
	if (w->second != second) {
		w->second = second;
		w->count = 0;
	}
	if (__sync_fetch_and_add(&w->count, 1) < syn_auth_threshold)
		return 0;
	w->engaged_until = now + SYN_ENGAGED_NS;
	return 1;
}

/* Half-open connections are counted only while a bound is set: the
 * count is a shared write per new connection. */
static __always_inline int half_open_counted(void)
{
	return half_open_max || half_open_svc_max;
}

static __always_inline void count_half_open(__u32 svc_id, __s64 delta)
{
	__u32 all = HALF_OPEN_ALL;
	__s64 *n;

	if (!half_open_counted())
		return;
	n = bpf_map_lookup_elem(&half_open, &svc_id);
	if (n)
		__sync_fetch_and_add(n, delta);
	n = bpf_map_lookup_elem(&half_open, &all);
	if (n)
		__sync_fetch_and_add(n, delta);
}

/* over_half_open tells whether service svc_id, or all services, have as
 * many half-open connections as their bound allows (never, without a
 * bound: no count is read then). Then the control
 * plane is asked, at most once a second, to count them again: the count
 * leaves out only what expired since its last sweep, which after a flood
 * is most of it. */
static __always_inline int over_half_open(__u32 svc_id)
{
	__u32 all = HALF_OPEN_ALL;
	__s64 *svc = NULL, *total = NULL;
	__u64 now;

	if (half_open_svc_max)
		svc = bpf_map_lookup_elem(&half_open, &svc_id);
	if (half_open_max)
		total = bpf_map_lookup_elem(&half_open, &all);
	if (!(svc && *svc >= half_open_svc_max) && !(total && *total >= half_open_max))
		return 0;
	now = bpf_ktime_get_coarse_ns();
	if (now - half_open_asked >= 1000000000ULL) {
		half_open_asked = now;
		emit_event(EV_HALF_OPEN, 0);
	}
	return 1;
}

static __always_inline int source_verified(__be32 saddr)
{
	__u64 *until = bpf_map_lookup_elem(&syn_verified, &saddr);

	return until && *until > bpf_ktime_get_coarse_ns();
}

/* challenges_sent tells whether any SYN may have been challenged, so that
 * a reset without ACK can be the answer to one. */
static __always_inline int challenges_sent(void)
{
	return syn_mode != SYN_AUTH_OFF || (half_open_counted() && half_open_act == HALF_OPEN_CHALLENGE);
}

/* syn_auth screens a TCP packet to service svc_id that has no connection:
 * a SYN while authentication is engaged, or while the service's half-open
 * connections are at their bound, gets a challenge unless its source is
 * verified (or, with the bound's drop action, is dropped); a reset
 * (without ACK, as a client in SYN-SENT sends it) is checked as the answer
 * to a challenge. Anything else goes on. */
static __always_inline int syn_auth(struct xdp_md *ctx, struct packet *p, __u32 svc_id)
{
	struct tcphdr *th = (void *)p->sport;
	void *end = (void *)(long)ctx->data_end;
	__u64 slot, until;
	__u32 cookie, seq, reason = R_FWD_SYN_CHALLENGE;
	__be32 saddr = p->ip->saddr;

	if ((void *)(th + 1) > end)
		return CONTINUE;
	if (!challenges_sent()) {
		/* Nothing to prove; a bound with the drop action still holds. */
		if (is_pure_syn(p) && over_half_open(svc_id))
			return verdict(R_DROP_HALF_OPEN, XDP_DROP);
		return CONTINUE;
	}
	slot = bpf_ktime_get_coarse_ns() >> SYN_SLOT_SHIFT;
	if ((p->tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_RST) {
		seq = bpf_ntohl(th->seq);
		for (int back = 0; back < 2; back++) {
			cookie = syn_cookie(saddr, p->ip->daddr, th->source, th->dest, slot - back);
			if (seq == cookie || seq == (cookie ^ 1)) {
				until = bpf_ktime_get_coarse_ns() + syn_verified_ns;
				bpf_map_update_elem(&syn_verified, &saddr, &until, BPF_ANY);
				return verdict(R_DROP_SYN_PROOF, XDP_DROP);
			}
		}
		return verdict(R_DROP_BAD_PROOF, XDP_DROP);
	}
	if (!is_pure_syn(p))
		return CONTINUE;
	if (over_half_open(svc_id)) {
		if (half_open_act == HALF_OPEN_DROP)
			return verdict(R_DROP_HALF_OPEN, XDP_DROP);
		reason = R_FWD_HALF_OPEN_CHALLENGE;
	} else if (!syn_auth_engaged()) {
		return CONTINUE;
	}
	if (source_verified(saddr))
		return CONTINUE;
	if ((p->ip->ihl * 4) != sizeof(struct iphdr))
		return verdict(R_DROP_SYN_UNCHALLENGED, XDP_DROP); /* options: not worth a challenge */
	cookie = syn_cookie(saddr, p->ip->daddr, th->source, th->dest, slot);
	/* The client must find the acknowledgement unacceptable, or it would
	 * complete a handshake nobody keeps. */
	if (cookie == bpf_ntohl(th->seq) + 1)
		cookie ^= 1;
	if (send_back(ctx, p, bpf_htonl(~cookie), bpf_htonl(cookie), TCP_SYN | TCP_ACK))
		return verdict(R_DROP_SYN_UNCHALLENGED, XDP_DROP);
	return verdict(reason, XDP_TX);
}

#endif
