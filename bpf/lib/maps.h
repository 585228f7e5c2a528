/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Every map of the datapath. Their sizes are enum limits in types.h; the
 * control plane resizes the conntrack maps from its config before loading. */
#ifndef XDPLB_MAPS_H
#define XDPLB_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "types.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, struct svc_key);
	__type(value, struct svc_value);
} services SEC(".maps");

/* VIP addresses alone, so a fragment (no ports) can still be recognised as
 * service traffic. The value is unused. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __be32);
	__type(value, __u32);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RING_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} rings SEC(".maps");

/* Round-robin position per service. Shared by all CPUs on purpose: a
 * per-CPU counter would not alternate across CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} rr_pos SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend);
} backends SEC(".maps");

/* Persistence granularity per service id: the netmask (network order)
 * applied to a client's address before it keys persistence, so a whole
 * subnet sticks to one backend (IPVS's persistence netmask). 0: the whole
 * address. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __be32);
} persist_masks SEC(".maps");

/* Load per backend id, for lc and wlc (see struct backend_load). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_load);
} backend_loads SEC(".maps");

/* LRU is right here, unlike conntrack: forgetting a client's backend early
 * only costs it its stickiness, never a wrong mapping. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PERSIST_ENTRIES);
	__type(key, struct persist_key);
	__type(value, struct persist_value);
} persist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_LOCAL_ADDRS);
	__type(key, __u32);
	__type(value, __be32);
} local_addrs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct lb_config);
} config SEC(".maps");

/* Free local address:port slots, one pool per backend address:port (the
 * tuple space a slot is unique in). Slots never handed out since the pool
 * was made come first, counted by pool_cursor; then freed ones, from this
 * FIFO: a slot goes in when its connection's reverse half is removed, so
 * the one handed out next is the one free the longest, whose old
 * connection the backend has most likely forgotten (TIME_WAIT). A value
 * is local_index << 16 | port (host order). A slot is queued at most twice
 * (once from before the cursor reached it), so a pool of up to
 * POOL_QUEUE_SLOTS / 2 slots never finds its queue full; a larger one that
 * does is made afresh by the control plane (EV_POOL_FULL), which loses no
 * slot: the cursor goes over them all again. */
struct port_queue {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, POOL_QUEUE_SLOTS);
	__type(value, __u32);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__array(values, struct port_queue);
} port_pools SEC(".maps");

/* Per pool, how many of its slots were handed out fresh (see port_pools). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u32);
} pool_cursor SEC(".maps");

/* Per backend id, the index of its address:port's pool plus one (0: none
 * yet). Apart from struct backend so that backends pinned by earlier
 * versions keep their layout. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, __u32);
} backend_pool SEC(".maps");

/* Local address -> its index in local_addrs, so the datapath can return
 * the slot of a connection it removes to its pool. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_LOCAL_ADDRS);
	__type(key, __be32);
	__type(value, __u32);
} local_index SEC(".maps");

/* Plain hash maps, not LRU: an LRU map would evict a live connection's half
 * to make room, and a port whose reverse half vanished could be handed to a
 * second client while the first still uses it. A full table refuses new
 * connections instead (counted); the control plane expires old ones. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_DEFAULT_ENTRIES);
	__type(key, struct ct_key);
	__type(value, struct ct_fwd);
} ct_forward SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CT_DEFAULT_ENTRIES);
	__type(key, struct ct_key);
	__type(value, struct ct_rev);
} ct_reverse SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, struct traffic);
} svc_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct traffic);
} backend_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, R_MAX);
	__type(key, enum reason);
	__type(value, __u64);
} reasons SEC(".maps");

/* Hot-path settings as global variables: reading one is a plain load, no
 * map lookup. They live in the program's own .bss, which is not pinned, so
 * the control plane writes them before it attaches or replaces a program. */

/* The local port range again (config has it for the allocator), for the
 * check every packet not for a service goes through. */
volatile __u32 nat_port_min;
volatile __u32 nat_port_max;

/* A one-hash Bloom filter of the VIPs: a clear bit proves the destination
 * is no VIP, so the host's own traffic skips the service lookup. */
#define VIP_FILTER_BITS (1 << 16)
volatile __u64 vip_filter[VIP_FILTER_BITS / 64];

/* The layout version of the pinned maps, so a daemon can tell whether the
 * maps it finds pinned were made by a compatible datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, enum layout_version);
} layout SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* Connection records for the peers (connection sync), read by the control
 * plane and sent on. 4 MiB holds about 100,000 records: a reader that
 * falls that far behind loses records (counted), and the periodic refresh
 * repairs what the peers missed. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 * 1024 * 1024);
} sync_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SYNC_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} sync_stats SEC(".maps");

/* Sources that proved their address by answering a SYN challenge, with
 * when (coarse clock, ns) the proof expires. LRU: under a flood of proofs
 * the oldest go first, and a forgotten source is only challenged again. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 18);
	__type(key, __be32);
	__type(value, __u64);
} syn_verified SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct syn_window);
} syn_rate SEC(".maps");

/* Per backend id, its next hop as last looked up (struct backend_hop). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_BACKENDS);
	__type(key, __u32);
	__type(value, struct backend_hop);
} backend_hops SEC(".maps");

/* Half-open TCP connections (client SYN seen, its handshake ACK not yet)
 * per service id, and of all services at HALF_OPEN_ALL. The datapath adds
 * one for each it opens and takes one away for each that completes or
 * closes; the control plane writes the true counts after each conntrack
 * sweep, which also accounts for the ones that expired. Signed: a sweep's
 * count may be followed by a completion it already left out. */
#define HALF_OPEN_ALL MAX_SERVICES
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES + 1);
	__type(key, __u32);
	__type(value, __s64);
} half_open SEC(".maps");

/* Per service id, enum client_addr_mode. Apart from struct svc_value so
 * that services pinned by earlier versions keep their layout. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_SERVICES);
	__type(key, __u32);
	__type(value, __u32);
} svc_client_addr SEC(".maps");

/* Connections of TOA services whose backend sent its SYN-ACK, keyed by the
 * client's tuple, with the acknowledgement number (host order) that
 * acknowledges it: the client packets that carry it get the option. An
 * entry goes once the client acknowledges more (the backend has its
 * socket, so the address reached it); LRU forgets those that never do. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1 << 18);
	__type(key, struct ct_key);
	__type(value, __u32);
} toa_pending SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, TOA_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} toa_stats SEC(".maps");

/* Whether connections are synced at all, and the id this node stamps on
 * the connections it opens. Globals like nat_port_min: set before attach. */
volatile __u32 sync_on;
volatile __u32 node_id;

/* A ring buffer has no value type, so nothing would put struct event into
 * BTF; this unused pointer does, for bpf2go to generate its Go twin. The
 * limits enum is only ever used as constants, and gets in the same way. */
const struct event *unused_event __attribute__((unused));
const struct sync_event *unused_sync_event __attribute__((unused));
const enum sync_counter *unused_sync_counter __attribute__((unused));
const enum syn_auth_mode *unused_syn_auth_mode __attribute__((unused));
const enum half_open_action *unused_half_open_action __attribute__((unused));
const enum toa_counter *unused_toa_counter __attribute__((unused));
const enum client_addr_mode *unused_client_addr_mode __attribute__((unused));
const enum fwd_mode *unused_fwd_mode __attribute__((unused));
const enum limits *unused_limits __attribute__((unused));
const enum ct_flags *unused_ct_flags __attribute__((unused));

#endif
