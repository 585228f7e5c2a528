package datapath

import (
	"time"

	"github.com/cilium/ebpf"

	"github.com/xdplb/xdplb/internal/testrun"
)

// Run passes one frame through the program with BPF_PROG_TEST_RUN, as if it
// had arrived on ifindex (which must exist in the caller's network
// namespace), repeat times, and returns the verdict, the frame as the
// program left it and the kernel's mean time per run. It transmits nothing.
// Tests and benchmarks use it.
func (d *Datapath) Run(frame []byte, ifindex int, repeat uint32) (verdict uint32, out []byte, perRun time.Duration, err error) {
	return testrun.Run(d.objs.Xdplb, frame, ifindex, repeat)
}

// Program is the datapath's XDP program, for test runs Run does not cover
// (the benchmark harness's live-frames packet rate tail-calls it).
func (d *Datapath) Program() *ebpf.Program { return d.objs.Xdplb }
