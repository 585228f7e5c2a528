package datapath

import (
	"errors"
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
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

// testRunAttr is the BPF_PROG_TEST_RUN member of union bpf_attr. It is
// spelt out here, not taken from cilium/ebpf, because the kernel's own
// per-run duration (which excludes the syscall) is only returned this way
// together with a context, and the context is what carries the ingress
// interface that the FIB lookups need.
type testRunAttr struct {
	progFD      uint32
	retval      uint32
	dataSizeIn  uint32
	dataSizeOut uint32
	dataIn      uint64
	dataOut     uint64
	repeat      uint32
	duration    uint32
	ctxSizeIn   uint32
	ctxSizeOut  uint32
	ctxIn       uint64
	ctxOut      uint64
	flags       uint32
	cpu         uint32
	batchSize   uint32
	_           uint32
}

const bpfProgTestRun = 10

// Run passes one frame through the program with BPF_PROG_TEST_RUN, as if it
// had arrived on ifindex (which must exist in the caller's network
// namespace), repeat times, and returns the verdict, the frame as the
// program left it and the kernel's mean time per run. It transmits nothing.
// Tests and benchmarks use it.
func (d *Datapath) Run(frame []byte, ifindex int, repeat uint32) (verdict uint32, out []byte, perRun time.Duration, err error) {
	if len(frame) == 0 {
		return 0, nil, 0, errors.New("test run: empty frame")
	}
	out = make([]byte, len(frame)+256)
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	attr := testRunAttr{
		progFD:      uint32(d.objs.Xdplb.FD()),
		dataSizeIn:  uint32(len(frame)),
		dataSizeOut: uint32(len(out)),
		dataIn:      uint64(uintptr(unsafe.Pointer(&frame[0]))),
		dataOut:     uint64(uintptr(unsafe.Pointer(&out[0]))),
		repeat:      repeat,
		ctxSizeIn:   uint32(unsafe.Sizeof(ctx)),
		ctxIn:       uint64(uintptr(unsafe.Pointer(&ctx))),
	}
	for {
		_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
		runtime.KeepAlive(frame)
		runtime.KeepAlive(out)
		runtime.KeepAlive(&ctx)
		if errno == unix.EINTR {
			continue // a signal cut a long repeat short; the kernel asks to retry
		}
		if errno != 0 {
			return 0, nil, 0, fmt.Errorf("test run: %w", errno)
		}
		return attr.retval, out[:attr.dataSizeOut], time.Duration(attr.duration), nil
	}
}

// Program is the datapath's XDP program, for test runs Run does not cover
// (the benchmark harness's live-frames packet rate tail-calls it).
func (d *Datapath) Program() *ebpf.Program { return d.objs.Xdplb }
