package datapath

import (
	"fmt"

	"github.com/cilium/ebpf"
)

// xdpMD mirrors struct xdp_md, the context BPF_PROG_TEST_RUN accepts.
type xdpMD struct {
	Data           uint32
	DataEnd        uint32
	DataMeta       uint32
	IngressIfindex uint32
	RxQueueIndex   uint32
	EgressIfindex  uint32
}

// Run passes one frame through the program with BPF_PROG_TEST_RUN, as if it
// had arrived on ifindex (which must exist in the caller's network
// namespace), and returns the verdict and the frame as the program left it.
// It does not transmit anything. Tests and benchmarks use it.
func (d *Datapath) Run(frame []byte, ifindex int, repeat uint32) (verdict uint32, out []byte, err error) {
	out = make([]byte, len(frame)+256)
	opts := ebpf.RunOptions{
		Data:    frame,
		DataOut: out,
		Context: xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)},
		Repeat:  repeat,
	}
	ret, err := d.objs.Xdplb.Run(&opts)
	if err != nil {
		return 0, nil, fmt.Errorf("test run: %w", err)
	}
	return ret, opts.DataOut, nil
}
