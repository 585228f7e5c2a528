package datapath

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"github.com/cilium/ebpf"
)

// Sizes of the conntrack maps' parts, as the kernel stores them.
const (
	// ConntrackKeySize is the size of a key of either conntrack half.
	ConntrackKeySize = uint32(unsafe.Sizeof(xdplbCtKey{}))
	// ConntrackForwardValueSize is the size of a forward half's value.
	ConntrackForwardValueSize = uint32(unsafe.Sizeof(xdplbCtFwd{}))
)

// htabElemOverhead approximates the kernel's per-element bookkeeping in a
// preallocated hash map (struct htab_elem without the key and value).
const htabElemOverhead = 48

// ConntrackEntryBytes is the kernel memory one tracked connection takes:
// both halves, keys, values and per-element overhead.
const ConntrackEntryBytes = 2*unsafe.Sizeof(xdplbCtKey{}) + unsafe.Sizeof(xdplbCtFwd{}) +
	unsafe.Sizeof(xdplbCtRev{}) + 2*htabElemOverhead

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
