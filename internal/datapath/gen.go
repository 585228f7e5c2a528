package datapath

// The BPF object and its Go bindings are committed, so building xdplb needs
// no clang. Rebuild them after changing bpf/ with `go generate ./...`.
//go:generate go tool bpf2go -cc clang -cflags "-O2 -g -Wall -Werror -mcpu=v3 -I/usr/include/x86_64-linux-gnu" -target bpfel -type svc_key -type svc_value -type backend -type ct_key -type ct_fwd -type ct_rev -type lb_config -type traffic -type reason -type ct_state -type event -type event_type -type layout_version -type sched_kind -type backend_flags -type persist_key -type persist_value -type limits -type backend_load -type sync_event -type sync_counter -type syn_auth_mode -type half_open_action -type syn_window -type toa_counter -type client_addr_mode -type fwd_mode -type ct_fwd_flags -type addr6 -type svc6_key -type backend6 -type ct6_key -type ct6_fwd -type ct6_rev -type persist6_key -type persist6_value -type lb_config6 -type ct6_fwd_flags -type ct_flags xdplb ../../bpf/xdplb.bpf.c
