/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* The IPv6 path's maps (ipv6.h): IPv4's, keyed and valued with IPv6
 * addresses. A daemon that finds pinned maps without them makes them, so
 * adding them changed no layout. */
#ifndef XDPLB_MAPS6_H
#define XDPLB_MAPS6_H

#include "maps.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc6_key);
	__type(value, struct svc_value);
} services6 SEC(".maps");

/* VIP addresses alone, as vips: a fragment to one is dropped. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct addr6);
	__type(value, __u32);
} vips6 SEC(".maps");

/* Indexed by backend id, as backends. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend6);
} backends6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_LOCAL_ADDRS);
	__type(key, __u32);
	__type(value, struct addr6);
} local6_addrs SEC(".maps");

/* Local address -> its index in local6_addrs, as local_index. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LOCAL_ADDRS);
	__type(key, struct addr6);
	__type(value, __u32);
} local6_index SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config6);
} config6 SEC(".maps");

/* Per service id, the persistence prefix of a client's IPv6 address, as
 * persist_masks (all ones: the whole address). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct addr6);
} persist6_masks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PERSIST_ENTRIES);
	__type(key, struct persist6_key);
	__type(value, struct persist6_value);
} persist6 SEC(".maps");

/* Plain hash maps for the reason ct_forward is one, but not preallocated:
 * a balancer with no IPv6 service holds no memory for them. They are
 * sized at load as the IPv4 ones are. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_DEFAULT_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ct6_key);
	__type(value, struct ct6_fwd);
} ct6_forward SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_DEFAULT_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ct6_key);
	__type(value, struct ct6_rev);
} ct6_reverse SEC(".maps");

/* Per service id of an IPv6 service, 1 if its backends are IPv4 (NAT64). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} svc_nat64 SEC(".maps");

/* The IPv6 client of a NAT64 connection (its forward key), by its reverse
 * half's key in ct_reverse: the IPv4 table holds the local port, so IPv4
 * and NAT64 connections never claim the same one. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_DEFAULT_ENTRIES);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ct_key);
	__type(value, struct ct6_key);
} ct_rev_client6 SEC(".maps");

/* The IPv6 path's largest values, per CPU instead of on the stack: the
 * verifier allows 512 bytes of stack for a whole chain of calls. */
struct scratch6 {
	struct ct6_fwd conn;
	struct ct6_rev rev;
	struct ct_rev rev4; /* a NAT64 connection's reverse half */
	/* struct bpf_fib_lookup, as bytes: bpf2go makes Go types of map
	 * values, and cannot of its anonymous unions. */
	__u64 fib[sizeof(struct bpf_fib_lookup) / 8];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch6);
} scratch6 SEC(".maps");

#endif
