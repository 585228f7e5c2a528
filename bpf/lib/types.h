/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Structures shared with the Go control plane. bpf2go generates their Go
 * twins with -type, so this file is the single definition of every map
 * layout: change a field here, run `go generate`, and both sides agree. */
#ifndef XDPLB_TYPES_H
#define XDPLB_TYPES_H

#include <linux/types.h>

/* Bump LAYOUT_VERSION whenever a pinned map's meaning changes, even if its
 * sizes do not: a daemon refuses to adopt maps of another version, unless
 * checkLayout (internal/datapath/load.go) knows how to migrate them. The
 * sizes of this version's structs are asserted at the end of this file. */
enum layout_version {
	LAYOUT_VERSION = 7,
};

/* Sizes of the maps, fixed when the object is compiled (the conntrack maps
 * are resized at load). An enum rather than #defines so that bpf2go exports
 * them to Go (-type limits) and the control plane never repeats a number. */
enum limits {
	MAX_SERVICES = 4096,
	MAX_BACKENDS = 1 << 17,
	RING_SLOTS = 1 << 22,
	MAX_LOCAL_ADDRS = 64,
	CT_DEFAULT_ENTRIES = 1 << 20,
	PERSIST_ENTRIES = 1 << 18,
	MAX_IF_MACS = 16,  /* interfaces the program can be attached to */
	MAX_IF_VLANS = 64, /* VLANs on them it tells apart */
	POOL_QUEUE_SLOTS = 1 << 16, /* freed local ports a pool holds (maps.h) */
};

/* A service is addressed by what a client puts on the wire. */
struct svc_key {
	__be32 vip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* How a new connection picks its slot of the service's ring. */
enum sched_kind {
	SCHED_COUNTER = 0,    /* rr, wrr: a counter shared by all CPUs */
	SCHED_HASH_TUPLE = 1, /* maglev: hash of the client's 5-tuple */
	SCHED_HASH_SRC = 2,   /* sh: hash of the client's address */
	SCHED_LEAST = 3,      /* lc, wlc: the least loaded of a window of the ring */
};

/* Every scheduler is a ring of backend ids: a contiguous slice
 * [ring_off, ring_off + ring_len) of the rings array. The control plane
 * writes a new slice and then swaps this value, so a packet always sees a
 * complete ring. */
struct svc_value {
	__u32 id;
	__u32 ring_off;
	__u32 ring_len;
	enum sched_kind sched;
	__u32 persist_secs; /* 0: no persistence */
};

enum backend_flags {
	BACKEND_DRAINED = 1,  /* weight 0 or unhealthy: no new connections */
	BACKEND_ASSIGNED = 2, /* svc_id is valid */
	BACKEND_LOCAL = 4,    /* an address of this host: a DSR service passes its packets to the stack */
};

/* A backend id's address. svc_id and BACKEND_ASSIGNED record which service
 * the id belongs to, so a new daemon taking over pinned maps keeps the ids
 * it finds. They are the control plane's bookkeeping: the packet path never
 * reads them. */
struct backend {
	__be32 addr;
	__be16 port;
	__u16 svc_id;
	enum backend_flags flags;
};

_Static_assert(MAX_SERVICES - 1 <= (__u16)~0,
	       "struct backend's svc_id is 16 bits: MAX_SERVICES must fit in it");

/* Persistence: which backend a client address last got, per service. */
struct persist_key {
	__u32 svc_id;
	__be32 client;
};

struct persist_value {
	__u64 last_seen;
	__u32 backend_id;
	/* The backend as it was: an id may be reused for another backend,
	 * and a client must never follow its old id there. */
	__be32 addr;
	__be16 port;
	__u16 pad[3];
};

/* A connection as one side sees it on the wire. The forward map is keyed by
 * the client's tuple (client -> VIP), the reverse map by the backend's reply
 * tuple (backend -> local address). */
struct ct_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

enum ct_state {
	CT_NONE = 0,
	CT_SYN_SENT = 1,
	CT_ESTABLISHED = 2,
	CT_FIN_WAIT = 3,
	CT_CLOSE = 4,
	CT_UDP = 5,
	CT_RESET = 6, /* set by the control plane: answer the client with an RST */
};

/* How a service's packets reach its backends (svc_fwd_mode, and the low
 * bits of a forward half's flags). Full-NAT rewrites both addresses and
 * sees both directions; the DSR modes leave the packet addressed to the
 * VIP, so the backend answers the client directly and the balancer keeps
 * only the forward half. */
enum fwd_mode {
	FWD_FULLNAT = 0,
	FWD_DSR_L2 = 1,   /* the backend's MAC: backends on a link of this host */
	FWD_DSR_IPIP = 2, /* in an outer IPv4 header (protocol 4) */
	FWD_DSR_GUE = 3,  /* in IPv4 + UDP (GUE variant 1: the inner header follows UDP) */
};

/* A forward half's flags: the mode it was opened with (a service's mode
 * changes only new connections), and whether its backend is this host. */
enum ct_fwd_flags {
	CT_FWD_MODE = 3,  /* mask: enum fwd_mode */
	CT_FWD_LOCAL = 4, /* DSR to this host: passed to the stack unchanged */
};

/* Forward half: how to rewrite client -> VIP into local -> backend. A DSR
 * connection has no local address:port: for a tunnel, local_addr holds
 * the next hop's MTU and local_port dsr-gue's outer UDP source port
 * (dsr.h). */
struct ct_fwd {
	__u64 last_seen; /* bpf_ktime_get_coarse_ns() */
	__be32 local_addr;
	__be32 backend_addr;
	__be16 local_port;
	__be16 backend_port;
	__u32 backend_id;
	__u32 svc_id;
	enum ct_state state;
	/* The next hop towards the backend, from the FIB, refreshed when
	 * last_seen is (at most once a second), so most packets skip the
	 * lookup. hop_ifindex 0: not looked up yet. */
	__u32 hop_ifindex;
	__u8 hop_dmac[6];
	__u8 hop_smac[6];
	/* TCP: the acknowledgement the client's packets last carried (host
	 * order): the backend's next sequence number as the client has it,
	 * which a reset from the backend is checked against (conntrack.h,
	 * check_segment). 0: not known. */
	__u32 seq_next;
	enum ct_fwd_flags flags; /* was padding, always 0: Full-NAT */
};

enum ct_flags {
	/* A UDP flow's backend answered: the flow is worth a sync record. */
	CT_F_ANSWERED = 1,
	/* The reverse half of an IPv6 client's connection to IPv4 backends
	 * (NAT64): its client is in ct_rev_client6, the forward half in
	 * ct6_forward. */
	CT_F_NAT64 = 2,
};

/* Reverse half: how to rewrite backend -> local back into VIP -> client,
 * and where the client's packets came from (its next hop), so the reply
 * needs no route or neighbour lookup. A connection adopted from a peer has
 * ifindex 0: its next hop towards the client is looked up in the FIB on
 * the first reply and stored here.
 *
 * origin and flags took the struct's tail padding, which was always zero,
 * so layout 3's entries read as "opened here, by a node without an id". */
struct ct_rev {
	__u64 last_seen;
	struct ct_key client; /* the forward key */
	__u8 client_mac[6];
	__u8 lb_mac[6];
	__u32 ifindex;
	__u32 svc_id;
	__u32 backend_id;
	enum ct_state state;
	__u8 origin; /* node id (ha.node_id) of the balancer that opened it */
	__u8 flags;  /* enum ct_flags */
	__u16 pad;
	__u32 seq_next; /* TCP: the backend's acknowledgement (the client's next sequence), as in struct ct_fwd */
	__u32 pad2;
};

/* Runtime settings the control plane may change without reloading. */
struct lb_config {
	__u32 local_count; /* entries used in the local_addrs array */
	__u16 port_min;    /* host order, inclusive */
	__u16 port_max;
};

/* Per service and per backend traffic, per CPU. "in" is client -> backend,
 * "out" is backend -> client. */
struct traffic {
	__u64 packets_in;
	__u64 bytes_in;
	__u64 packets_out;
	__u64 bytes_out;
	__u64 new_conns;
};

/* Why a packet left the program. Every exit bumps exactly one of these. */
enum reason {
	R_FWD_TX = 0,        /* forwarded out of the interface it came in on */
	R_FWD_REDIRECT,      /* forwarded out of another interface */
	R_PASS_NOT_IPV4,     /* neither IPv4 nor IPv6 (ARP, LLDP, ...): the host handles it */
	R_PASS_NOT_L4,       /* IPv4 or IPv6, neither TCP nor UDP (nor an ICMP error to translate) */
	R_PASS_NO_SERVICE,   /* no service and not a NAT port */
	R_PASS_NO_CONN,      /* to a NAT port but no connection: the host's own */
	R_PASS_TRUNCATED,    /* headers cut short */
	R_PASS_BAD_HEADER,   /* IHL < 5, TCP data offset < 5, IPv4 total length too small; for what would be forwarded, lengths beyond the frame or segment */
	R_PASS_FRAGMENT,     /* fragment not addressed to a VIP */
	R_DROP_FRAGMENT,     /* fragment addressed to a VIP: cannot be balanced */
	R_DROP_NO_CONN,      /* TCP non-SYN to a service with no connection */
	R_DROP_NO_BACKEND,   /* service has an empty ring */
	R_DROP_PORTS_EXHAUSTED, /* no free local address:port within the retries */
	R_DROP_CT_FULL,      /* forward entry could not be inserted */
	R_DROP_NO_NEIGH,     /* backend's next hop not resolved yet */
	R_DROP_NO_ROUTE,     /* FIB has no usable route to the backend */
	R_DROP_BAD_BACKEND,  /* ring names a backend id with no address */
	R_FWD_RESET,         /* answered with an RST: its backend was taken out */
	R_PASS_NOT_OURS,     /* frame to another MAC (broadcast, multicast, another host) */
	R_PASS_BAD_CHECKSUM, /* IPv4 header checksum wrong */
	R_DROP_TTL,          /* TTL 0 or 1: a router would not forward it */
	R_DROP_BAD_FLAGS,    /* TCP flags no stack sends (SYN+FIN, SYN+RST, none, FIN without ACK) */
	R_FWD_SYN_CHALLENGE, /* a SYN from an unverified source answered with a cookie */
	R_DROP_SYN_PROOF,    /* a reset carrying a valid cookie: its source is verified */
	R_DROP_BAD_PROOF,    /* a reset to a service without a connection, answering no challenge */
	R_DROP_SYN_UNCHALLENGED, /* a SYN to challenge that could not be (IPv4 options) */
	R_DROP_ABORTED,      /* a packet the program began to change and could not finish (never expected) */
	R_DROP_RST_WINDOW,   /* a TCP reset far from the sequence number its receiver expects (a blind reset) */
	R_DROP_HALF_OPEN,    /* a new connection's SYN while half-open connections are at their bound (action drop) */
	R_FWD_HALF_OPEN_CHALLENGE, /* one answered with a challenge instead (action challenge) */
	R_DROP_TOO_BIG,      /* larger than the route's MTU towards the backend (was counted as drop_no_route) */
	R_FWD_ENCAP,         /* DSR: encapsulated (IPIP or GUE) and sent to the backend */
	R_FWD_DSR_L2,        /* DSR: sent to the backend's MAC, unchanged otherwise */
	R_PASS_LOCAL_BACKEND, /* DSR: the backend chosen is this host: passed to its stack unchanged */
	R_DROP_DSR_NOT_ONLINK, /* dsr-l2 to a backend that is not on a link of this host */
	R_DROP_NO_HEADROOM,  /* no room in front of the frame for the outer headers */
	R_PASS_DECAP,        /* IPIP/GUE from an allowed balancer: decapsulated and passed, never balanced */
	R_DROP_DECAP_SOURCE, /* IPIP/GUE from a source not in dsr.decap_sources */
	R_DROP_DECAP_MALFORMED, /* IPIP/GUE whose inner packet is not a whole IPv4 packet */
	R_FWD_FRAG_NEEDED,   /* too big for the way on, DF set: answered with ICMP "fragmentation needed" */
	R_FWD_ICMP_ERROR,    /* an ICMP error about a balanced connection, translated for its other side */
	R_PASS_ICMP_RATE,    /* one over the per-CPU budget for translating them: to the host */
	R_PASS_ICMP,         /* ICMP that is no error about a balanced connection: the host's */
	R_DROP_ICMP_LOW_MTU, /* a client side's "fragmentation needed" below 1280: not passed to the backend */
	R_PASS_IPV6_EXT,     /* IPv6 with an extension header the program does not walk (routing, ESP, ...): the host's */
	R_MAX,
};

/* Events to the control plane. */
enum event_type {
	EV_NO_NEIGH = 1,     /* addr: the backend whose next hop is missing */
	EV_PORTS_PRESSURE = 2, /* addr: a backend whose pool of local ports is running out */
	EV_NO_CLIENT_NEIGH = 3, /* addr: a client (of an adopted connection) whose next hop is missing */
	EV_POOL_FULL = 4,    /* addr: the index (host order) of a port pool that lost a freed port */
	EV_HALF_OPEN = 5,    /* half-open connections at their bound: count them again now */
};

struct event {
	enum event_type type;
	__be32 addr;
};

/* A connection worth telling the peers about (connection sync), at the
 * moment one of its halves changed state. Addresses, never ids: ids are
 * each daemon's own. A state of CT_NONE means "not changed by this
 * event". */
struct sync_event {
	struct ct_key client; /* client -> VIP */
	__be32 local_addr;
	__be32 backend_addr;
	__be16 local_port;
	__be16 backend_port;
	__u8 fwd_state;
	__u8 rev_state;
	__u8 pad[2];
};

/* An interface the program is attached to, and its MAC address: frames
 * to another MAC are not this host's to forward. */
struct if_mac {
	__u32 ifindex;
	__u8 mac[6];
	__u16 pad;
};

/* When new connections must prove their source first (SYN authentication). */
enum syn_auth_mode {
	SYN_AUTH_OFF = 0,
	SYN_AUTH_ALWAYS = 1,
	SYN_AUTH_AUTO = 2, /* while new-connection SYNs exceed a rate */
};

/* What a new connection's SYN gets when half-open connections are at
 * their bound (synauth.h). */
enum half_open_action {
	HALF_OPEN_CHALLENGE = 0, /* a SYN challenge, as SYN authentication */
	HALF_OPEN_DROP = 1,
};

/* The rate of new-connection SYNs, in whole seconds of the coarse clock,
 * for SYN authentication's auto mode: the current second's count, and
 * until when (coarse clock, ns) authentication stays engaged once the
 * count passed the threshold. */
struct syn_window {
	__u64 second;
	__u64 count;
	__u64 engaged_until;
};

/* The next hop towards a backend as the FIB last gave it, for a packet to
 * addr arriving on in_ifindex: a new connection to that backend takes it
 * while it is fresh instead of asking the FIB (fib.h). */
struct backend_hop {
	__u64 at; /* coarse clock */
	__be32 addr;
	__u32 in_ifindex;
	__u32 ifindex;
	__u8 dmac[6];
	__u8 smac[6];
};

/* A VLAN the host has on an interface the program is attached to: tagged
 * frames of other VLANs are not the host's. */
struct if_vlan {
	__u32 ifindex;
	__u16 vid;
	__u16 pad;
};

/* Counters of the sync emitter, per CPU. */
enum sync_counter {
	SYNC_RING_FULL = 0, /* a record was lost: the ring was full (the packet was not) */
	SYNC_COUNTERS,
};

/* What a service's backends learn about the client (client_address). */
enum client_addr_mode {
	CLIENT_ADDR_NONE = 0, /* nothing: they see the local address */
	CLIENT_ADDR_TOA = 1,  /* a TCP option (kind 254) in the handshake ACK */
};

/* Counters of TOA (toa.h), per CPU. */
enum toa_counter {
	TOA_INSERTED = 0, /* a client packet carried the option to the backend */
	TOA_NO_ROOM,      /* one went without: IPv4 options, TCP options over 32 bytes, or no headroom */
	TOA_TOO_BIG,      /* one went without: 8 more bytes would exceed the route's MTU */
	TOA_MSS_LOWERED,  /* a backend's SYN-ACK announced an MSS 8 bytes lower */
	TOA_FORGED,       /* a client packet carried its own kind-254 option: disabled */
	TOA_COUNTERS,
};

/* A backend's load for the least-connection schedulers: the control plane
 * writes its weight and, after every conntrack sweep, its connections
 * counted as IPVS does (active * 256 + inactive); the datapath adds 256
 * for every connection it opens in between, so a burst of new connections
 * spreads before the next sweep. */
struct backend_load {
	__u64 conns;
	__u32 weight;
	__u32 pad;
};

/* IPv6 (NAT66) keeps maps of its own, so IPv4's keys stay as small as
 * they are (ipv6.h). Service and backend ids are one space for both
 * families: rings, counters, loads, half-open counts and port pools are
 * per id, whatever the address. An address is 16 bytes in network order,
 * read as words where compared or hashed. */
struct addr6 {
	__be32 w[4];
};

struct svc6_key {
	struct addr6 vip;
	__be16 port;
	__u8 proto;
	__u8 pad;
};

/* A backend id's IPv6 address; the id's entry in backends stays zero, so
 * the IPv4 path never takes it. */
struct backend6 {
	struct addr6 addr;
	__be16 port;
	__u16 svc_id;
	enum backend_flags flags;
};

struct ct6_key {
	struct addr6 saddr;
	struct addr6 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];
};

/* A forward half's flags (struct ct6_fwd). */
enum ct6_fwd_flags {
	/* To an IPv4 backend (NAT64): local_addr and backend_addr are
	 * IPv4-mapped (::ffff:a.b.c.d), the reverse half is in ct_reverse. */
	CT6_FWD_NAT64 = 1,
};

/* As struct ct_fwd, with IPv6 addresses (Full-NAT only). */
struct ct6_fwd {
	__u64 last_seen;
	struct addr6 local_addr;
	struct addr6 backend_addr;
	__be16 local_port;
	__be16 backend_port;
	__u32 backend_id;
	__u32 svc_id;
	enum ct_state state;
	__u32 hop_ifindex;
	__u8 hop_dmac[6];
	__u8 hop_smac[6];
	__u32 seq_next;
	enum ct6_fwd_flags flags;
};

/* As struct ct_rev, with the client's IPv6 tuple. */
struct ct6_rev {
	__u64 last_seen;
	struct ct6_key client;
	__u8 client_mac[6];
	__u8 lb_mac[6];
	__u32 ifindex;
	__u32 svc_id;
	__u32 backend_id;
	enum ct_state state;
	__u8 origin;
	__u8 flags;
	__u16 pad;
	__u32 seq_next;
	__u32 pad2;
};

struct persist6_key {
	__u32 svc_id;
	struct addr6 client;
};

struct persist6_value {
	__u64 last_seen;
	__u32 backend_id;
	__be16 port;
	__u16 pad;
	struct addr6 addr;
};

/* Runtime settings of the IPv6 path: how many entries of local6_addrs are
 * in use (the port range is lb_config's). */
struct lb_config6 {
	__u32 local_count;
};

/* Pinned maps hold these structs as LAYOUT_VERSION lays them out, and a
 * daemon adopts maps stamped with its own version as they are. So a struct
 * whose size changes must come with a new version: bump LAYOUT_VERSION and
 * record the new sizes here, under the new number. */
#define LAYOUT_SIZE(type, size)                                               \
	_Static_assert(sizeof(struct type) == (size),                          \
		       "struct " #type " changed size: bump LAYOUT_VERSION, "  \
		       "then record the new sizes at the end of bpf/lib/types.h")

_Static_assert(LAYOUT_VERSION == 7,
	       "LAYOUT_VERSION changed: record the new layout's struct sizes below, and its number here");
LAYOUT_SIZE(svc_key, 8);
LAYOUT_SIZE(svc_value, 20);
LAYOUT_SIZE(backend, 12);
LAYOUT_SIZE(persist_key, 8);
LAYOUT_SIZE(persist_value, 24);
LAYOUT_SIZE(ct_key, 16);
LAYOUT_SIZE(ct_fwd, 56);
LAYOUT_SIZE(ct_rev, 64);
LAYOUT_SIZE(lb_config, 8);
LAYOUT_SIZE(traffic, 40);
LAYOUT_SIZE(event, 8);
LAYOUT_SIZE(backend_load, 16);
LAYOUT_SIZE(sync_event, 32);
LAYOUT_SIZE(if_mac, 12);
LAYOUT_SIZE(if_vlan, 8);
LAYOUT_SIZE(syn_window, 24);
LAYOUT_SIZE(svc6_key, 20);
LAYOUT_SIZE(backend6, 24);
LAYOUT_SIZE(ct6_key, 40);
LAYOUT_SIZE(ct6_fwd, 80);
LAYOUT_SIZE(ct6_rev, 88);
LAYOUT_SIZE(persist6_key, 20);
LAYOUT_SIZE(persist6_value, 32);
LAYOUT_SIZE(lb_config6, 4);
LAYOUT_SIZE(backend_hop, 32);

#endif
