/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* Incremental Internet checksum updates (RFC 1624: HC' = ~(~HC + ~m + m')).
 * Rewriting addresses and ports touches a few 16-bit words, so the new
 * checksum is derived from the old one instead of summing the packet. */
#ifndef XDPLB_CSUM_H
#define XDPLB_CSUM_H

#include <linux/types.h>

/* csum_delta accumulates ~old + new for one 32-bit field, 16 bits at a time,
 * into a 32-bit sum that is folded only once at the end. */
static __always_inline __u32 csum_delta32(__u32 acc, __u32 from, __u32 to)
{
	__u32 nf = ~from;

	return acc + (nf >> 16) + (nf & 0xffff) + (to >> 16) + (to & 0xffff);
}

static __always_inline __u32 csum_delta16(__u32 acc, __u16 from, __u16 to)
{
	return acc + (__u16)~from + to;
}

static __always_inline __u16 csum_apply(__u16 check, __u32 delta)
{
	__u32 sum = (__u16)~check + delta;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

#endif
