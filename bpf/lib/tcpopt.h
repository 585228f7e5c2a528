/* SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause */
/* TCP options as the balancer and the backend's TOA reader walk them, and
 * the TOA option's format: that of LVS's and DPVS's toa.ko. Constants
 * only, so that both BPF objects can include it. */
#ifndef XDPLB_TCPOPT_H
#define XDPLB_TCPOPT_H

#define TCP_OPT_EOL 0
#define TCP_OPT_NOP 1
#define TCP_OPT_MSS 2
#define TCP_MAX_OPTS 40 /* option bytes a TCP header can hold */

#define TOA_KIND 254
#define TOA_LEN_V4 8  /* kind, length, port, IPv4 address */
#define TOA_LEN_V6 20 /* kind, length, port, IPv6 address */

#endif
