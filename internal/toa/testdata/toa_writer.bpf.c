// SPDX-License-Identifier: GPL-2.0-only OR BSD-2-Clause
/* A test's stand-in for the balancer: a client-side sockops program that
 * puts the option in option[] on every packet of its cgroup's connections
 * but SYNs and RSTs (the kernel writes none on RSTs), as the balancer puts
 * a TOA on the client's packets after the SYN. option_len is 8 or 20, or
 * anything else for a kind 254 option of that length that is no TOA.
 *
 * bpf_store_hdr_opt takes kind 254 without RFC 6994's magic: it uses the
 * two bytes after the length only to look for a duplicate. */

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TCPHDR_SYN 0x02
#define TCPHDR_RST 0x04
#define MAX_OPTION 20

volatile const __u8 option[MAX_OPTION];
volatile const __u32 option_len = 8;

SEC("sockops")
int toa_writer(struct bpf_sock_ops *skops)
{
	__u8 opt[MAX_OPTION];
	__u32 len = option_len;

	switch (skops->op) {
	case BPF_SOCK_OPS_TCP_CONNECT_CB:
		bpf_sock_ops_cb_flags_set(skops, skops->bpf_sock_ops_cb_flags | BPF_SOCK_OPS_WRITE_HDR_OPT_CB_FLAG);
		break;
	case BPF_SOCK_OPS_HDR_OPT_LEN_CB:
		if (!(skops->skb_tcp_flags & (TCPHDR_SYN | TCPHDR_RST)))
			bpf_reserve_hdr_opt(skops, len, 0);
		break;
	case BPF_SOCK_OPS_WRITE_HDR_OPT_CB:
		if (skops->skb_tcp_flags & (TCPHDR_SYN | TCPHDR_RST))
			break;
		for (int i = 0; i < MAX_OPTION; i++)
			opt[i] = option[i];
		if (len >= 2 && len <= MAX_OPTION)
			bpf_store_hdr_opt(skops, opt, len, 0);
		break;
	}
	return 1;
}
