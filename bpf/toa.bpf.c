// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* xdplb's TOA reader: the client's address for a Full-NAT backend, with no
 * kernel module.
 *
 * The balancer puts the client's address and port in TCP option kind 254 on
 * the client's packets that acknowledge the backend's SYN-ACK, in the format
 * of LVS's and DPVS's toa.ko: length 8 for IPv4, 20 for IPv6. On the
 * backend, this object is attached to a cgroup. When a socket of that cgroup
 * completes a passive handshake, the sockops program reads the option off
 * the ACK that completed it and keeps the address with the socket; the
 * getpeername hooks then answer accept() and getpeername() with it instead
 * of the balancer's local address. A socket without the option is left as
 * it is. */

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lib/tcpopt.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* From <sys/socket.h>, which a BPF program cannot include. */
#define AF_INET 2
#define AF_INET6 10

#define TCP_HDR_LEN 20

/* toa_addr is what a socket keeps: the client's address as the option
 * carried it, in network byte order. An IPv4 address is addr[0]. */
struct toa_addr {
	__u32 family; /* AF_INET or AF_INET6 */
	__be16 port;
	__u16 pad;
	__be32 addr[4];
};

enum toa_counter {
	TOA_SOCKETS,   /* passive handshakes completed */
	TOA_FOUND_V4,  /* ... whose ACK carried an IPv4 TOA */
	TOA_FOUND_V6,  /* ... an IPv6 TOA */
	TOA_ABSENT,    /* ... no TOA */
	TOA_MALFORMED, /* ... an option list the search could not walk */
	TOA_COUNTERS,
};

/* Storage that lives and dies with its socket: nothing to expire. */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct toa_addr);
} toa_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TOA_COUNTERS);
	__type(key, enum toa_counter);
	__type(value, __u64);
} toa_reader_stats SEC(".maps");

static __always_inline void count(enum toa_counter what)
{
	__u64 *n = bpf_map_lookup_elem(&toa_reader_stats, &what);

	if (n)
		*n += 1;
}

/* find_toa walks the options of the TCP header [th, end) for a TOA and
 * returns the counter that says what it found, filling *out if found.
 * bpf_load_hdr_opt cannot do this: for kind 254 it also matches a 2-byte
 * magic after the length, where TOA has the port. */
static __always_inline enum toa_counter find_toa(__u8 *th, void *end, struct toa_addr *out)
{
	__u8 *opts = th + TCP_HDR_LEN;
	__u32 off = 0;

	/* Each step moves off on by one byte at least: at most 40 steps. The
	 * loop has no counter of its own, which would tell otherwise equal
	 * steps apart and keep the verifier from pruning them. */
	while (off < TCP_MAX_OPTS) {
		__u8 *o;
		__u8 len;

		/* The mask tells the verifier what the loop condition already
		 * says; the barrier keeps the compiler from folding the
		 * bounds checks below into arithmetic on end. */
		o = opts + (off & 0x3f);
		asm volatile("" : "+r"(o));
		if ((void *)(o + 1) > end || o[0] == TCP_OPT_EOL)
			return TOA_ABSENT;
		if (o[0] == TCP_OPT_NOP) {
			off++;
			continue;
		}
		if ((void *)(o + 2) > end)
			return TOA_MALFORMED;
		len = o[1];
		if (len < 2)
			return TOA_MALFORMED;
		if (o[0] == TOA_KIND && len == TOA_LEN_V4) {
			if ((void *)(o + TOA_LEN_V4) > end)
				return TOA_MALFORMED;
			out->family = AF_INET;
			out->port = *(__be16 *)(o + 2);
			out->addr[0] = *(__be32 *)(o + 4);
			return TOA_FOUND_V4;
		}
		if (o[0] == TOA_KIND && len == TOA_LEN_V6) {
			if ((void *)(o + TOA_LEN_V6) > end)
				return TOA_MALFORMED;
			out->family = AF_INET6;
			out->port = *(__be16 *)(o + 2);
			__builtin_memcpy(out->addr, o + 4, sizeof(out->addr));
			return TOA_FOUND_V6;
		}
		off += len;
	}
	return TOA_ABSENT;
}

/* At PASSIVE_ESTABLISHED (Linux 5.10 and later) skb_data..skb_data_end is
 * the TCP header, options included, of the ACK that completed the
 * handshake: the packet the balancer puts the option on. Every other
 * operation is left alone, and so is skops->reply. */
SEC("sockops")
int toa_sockops(struct bpf_sock_ops *skops)
{
	struct toa_addr found = {};
	struct toa_addr *stored;
	struct bpf_sock *sk;
	enum toa_counter what;
	__u8 *th;

	if (skops->op != BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB)
		return 1;
	count(TOA_SOCKETS);
	th = (void *)(long)skops->skb_data;
	if ((void *)(th + TCP_HDR_LEN) > (void *)(long)skops->skb_data_end) {
		count(TOA_MALFORMED);
		return 1;
	}
	what = find_toa(th, (void *)(long)skops->skb_data_end, &found);
	count(what);
	if (what != TOA_FOUND_V4 && what != TOA_FOUND_V6)
		return 1;
	sk = skops->sk;
	if (!sk)
		return 1;
	stored = bpf_sk_storage_get(&toa_addrs, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (stored)
		*stored = found;
	return 1;
}

/* The getpeername hooks run in inet_getname and inet6_getname for the
 * peer's address: getpeername() and the address accept() returns. They may
 * only allow (return 1). */
SEC("cgroup/getpeername4")
int toa_getpeername4(struct bpf_sock_addr *ctx)
{
	struct toa_addr *a;

	if (!ctx->sk)
		return 1;
	a = bpf_sk_storage_get(&toa_addrs, ctx->sk, 0, 0);
	/* An IPv6 client cannot be put in an IPv4 socket's address. */
	if (!a || a->family != AF_INET)
		return 1;
	ctx->user_ip4 = a->addr[0];
	ctx->user_port = a->port;
	return 1;
}

/* An IPv6 socket answers for IPv4 clients too (a server listening on [::]
 * gets them as v4-mapped addresses): an IPv4 TOA is given as
 * ::ffff:a.b.c.d. */
SEC("cgroup/getpeername6")
int toa_getpeername6(struct bpf_sock_addr *ctx)
{
	struct toa_addr *a;

	if (!ctx->sk)
		return 1;
	a = bpf_sk_storage_get(&toa_addrs, ctx->sk, 0, 0);
	if (!a)
		return 1;
	if (a->family == AF_INET6) {
		ctx->user_ip6[0] = a->addr[0];
		ctx->user_ip6[1] = a->addr[1];
		ctx->user_ip6[2] = a->addr[2];
		ctx->user_ip6[3] = a->addr[3];
	} else {
		ctx->user_ip6[0] = 0;
		ctx->user_ip6[1] = 0;
		ctx->user_ip6[2] = bpf_htonl(0xffff);
		ctx->user_ip6[3] = a->addr[0];
	}
	ctx->user_port = a->port;
	return 1;
}
