package testbed

import (
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
)

// xdpPass is the XDP_PASS action code from <linux/bpf.h>.
const xdpPass = 2

// loadXDPPass loads the smallest useful XDP program: "return XDP_PASS".
// veth only delivers frames that arrive via XDP_TX or XDP_REDIRECT when the
// receiving end runs XDP itself (it needs the peer's NAPI/XDP rings), so every
// bridge-side veth end gets this program. Assembling it in Go keeps the
// testbed free of clang and object files.
func loadXDPPass() (*ebpf.Program, error) {
	spec := &ebpf.ProgramSpec{
		Name:    "xlb_pass",
		Type:    ebpf.XDP,
		License: "GPL",
		Instructions: asm.Instructions{
			asm.Mov.Imm(asm.R0, xdpPass),
			asm.Return(),
		},
	}
	prog, err := ebpf.NewProgram(spec)
	if err != nil {
		return nil, fmt.Errorf("load XDP_PASS program: %w", err)
	}
	return prog, nil
}

// attachXDPPass attaches prog in native (driver) mode to link. It must run in
// the link's namespace: the package-level netlink calls open their socket in
// the calling thread's namespace. A netlink attachment (unlike a bpf_link)
// stays in place after our program fd is closed and goes away with the
// interface, which is exactly the lifetime we want.
func attachXDPPass(prog *ebpf.Program, link netlink.Link) error {
	flags := nl.XDP_FLAGS_DRV_MODE | nl.XDP_FLAGS_UPDATE_IF_NOEXIST
	if err := netlink.LinkSetXdpFdWithFlags(link, prog.FD(), flags); err != nil {
		return fmt.Errorf("attach XDP_PASS to %s: %w", link.Attrs().Name, err)
	}
	return nil
}
