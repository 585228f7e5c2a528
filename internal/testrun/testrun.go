// Package testrun passes frames through any XDP program with
// BPF_PROG_TEST_RUN, so the datapath's tests and the benchmark harness run
// xdplb and its reference programs the same way.
package testrun

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
// spelt out, not taken from cilium/ebpf, because the kernel's own per-run
// duration (which excludes the syscall) is only returned this way together
// with a context, and the context carries the ingress interface that the
// FIB lookups need.
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

// Run passes one frame through prog with BPF_PROG_TEST_RUN as if it
// had arrived on ifindex (in the caller's network namespace), repeat
// times, and returns the verdict, the frame as the program left it and the
// kernel's mean time per run. It transmits nothing.
func Run(prog *ebpf.Program, frame []byte, ifindex int, repeat uint32) (verdict uint32, out []byte, perRun time.Duration, err error) {
	if len(frame) == 0 {
		return 0, nil, 0, errors.New("test run: empty frame")
	}
	out = make([]byte, len(frame)+256)
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	attr := testRunAttr{
		progFD:      uint32(prog.FD()),
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

// bpfFTestXDPLiveFrames is BPF_F_TEST_XDP_LIVE_FRAMES: every run starts
// from a fresh copy of the frame, and what the program transmits or
// redirects really leaves through the interface.
const bpfFTestXDPLiveFrames = 1 << 1

// Live runs prog repeat times in live-frames mode, batchSize
// frames at a time (0: the kernel's default of 64), each run on a fresh
// copy of frame arriving on ifindex. XDP_TX really transmits out of
// ifindex, so a veth's peer must run an XDP program or the frames vanish.
// It returns the wall time of the whole call and the kernel's mean time
// per run. A signal interrupting the run is reported as unix.EINTR; the
// caller decides whether to retry.
func Live(prog *ebpf.Program, frame []byte, ifindex int, repeat, batchSize uint32) (wall, perRun time.Duration, err error) {
	if len(frame) == 0 {
		return 0, 0, errors.New("live test run: empty frame")
	}
	ctx := xdpMD{DataEnd: uint32(len(frame)), IngressIfindex: uint32(ifindex)}
	attr := testRunAttr{
		progFD:     uint32(prog.FD()),
		dataSizeIn: uint32(len(frame)),
		dataIn:     uint64(uintptr(unsafe.Pointer(&frame[0]))),
		repeat:     repeat,
		ctxSizeIn:  uint32(unsafe.Sizeof(ctx)),
		ctxIn:      uint64(uintptr(unsafe.Pointer(&ctx))),
		flags:      bpfFTestXDPLiveFrames,
		batchSize:  batchSize,
	}
	start := time.Now()
	_, _, errno := unix.Syscall(unix.SYS_BPF, bpfProgTestRun, uintptr(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))
	wall = time.Since(start)
	runtime.KeepAlive(frame)
	runtime.KeepAlive(&ctx)
	if errno != 0 {
		return 0, 0, fmt.Errorf("live test run: %w", errno)
	}
	return wall, time.Duration(attr.duration), nil
}
