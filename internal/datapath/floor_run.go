package datapath

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// This file holds the hooks the benchmark harness (bench/) needs to compare
// the datapath with reference programs run the same way.

// RunProgram is Datapath.Run for any XDP program: it passes one frame
// through prog with BPF_PROG_TEST_RUN as if it had arrived on ifindex (in
// the caller's network namespace), repeat times, and returns the verdict,
// the frame as the program left it and the kernel's mean time per run.
func RunProgram(prog *ebpf.Program, frame []byte, ifindex int, repeat uint32) (verdict uint32, out []byte, perRun time.Duration, err error) {
	return runProgram(prog, frame, ifindex, repeat)
}

// bpfFTestXDPLiveFrames is BPF_F_TEST_XDP_LIVE_FRAMES: every run starts
// from a fresh copy of the frame, and what the program transmits or
// redirects really leaves through the interface.
const bpfFTestXDPLiveFrames = 1 << 1

// RunProgramLive runs prog repeat times in live-frames mode, batchSize
// frames at a time (0: the kernel's default of 64), each run on a fresh
// copy of frame arriving on ifindex. XDP_TX really transmits out of
// ifindex, so a veth's peer must run an XDP program or the frames vanish.
// It returns the wall time of the whole call and the kernel's mean time
// per run. A signal interrupting the run is reported as unix.EINTR; the
// caller decides whether to retry.
func RunProgramLive(prog *ebpf.Program, frame []byte, ifindex int, repeat, batchSize uint32) (wall, perRun time.Duration, err error) {
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

// Program is the datapath's XDP program, for test runs Run does not cover
// (the benchmark's live-frames packet rate tail-calls it).
func (d *Datapath) Program() *ebpf.Program { return d.objs.Xdplb }

// ConntrackMemlock is the kernel's own account of the memory both
// conntrack maps hold (the "memlock" line of their fdinfo), in bytes.
func (d *Datapath) ConntrackMemlock() (uint64, error) {
	var total uint64
	for _, m := range []*ebpf.Map{d.objs.CtForward, d.objs.CtReverse} {
		n, err := fdinfoMemlock(m.FD())
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func fdinfoMemlock(fd int) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "memlock:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	if err := s.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("fdinfo of map fd %d: no memlock line", fd)
}
