package toa

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/xdplb/xdplb/internal/datapath"
)

// Installation is the reader as installed on one cgroup.
type Installation struct {
	CgroupID uint64 `json:"cgroup_id"`
	// CgroupPath is empty when no cgroup has the id any more: the reader
	// is attached to nothing, and Remove by id clears its pins.
	CgroupPath string      `json:"cgroup_path,omitempty"`
	PinDir     string      `json:"pin_dir"`
	Hooks      []HookState `json:"hooks"`
	Counters   Counters    `json:"counters"`
}

// HookState says whether one hook's program is attached to the cgroup.
type HookState struct {
	Hook     string `json:"hook"`
	Attached bool   `json:"attached"`
	// Program is the attached program's id, as bpftool prog shows it.
	Program uint32 `json:"program,omitempty"`
	// Problem says why it is not attached.
	Problem string `json:"problem,omitempty"`
}

// Counters are the reader's counters, over all CPUs, since install.
type Counters struct {
	// Sockets completed a passive handshake in the cgroup.
	Sockets uint64 `json:"sockets"`
	// FoundV4 and FoundV6 had a TOA in the handshake's ACK.
	FoundV4 uint64 `json:"found_v4"`
	FoundV6 uint64 `json:"found_v6"`
	// Absent had none; Malformed had options that could not be walked.
	Absent    uint64 `json:"absent"`
	Malformed uint64 `json:"malformed"`
}

// Status lists every cgroup the reader is installed on.
func Status() ([]Installation, error) {
	if err := requireRoot("status"); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(PinRoot)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	var out []Installation
	for _, e := range entries {
		id, err := strconv.ParseUint(e.Name(), 10, 64)
		if err != nil || !e.IsDir() {
			continue
		}
		inst, err := status(id)
		if err != nil {
			return nil, err
		}
		out = append(out, inst)
	}
	slices.SortFunc(out, func(a, b Installation) int { return cmp.Compare(a.CgroupID, b.CgroupID) })
	return out, nil
}

func status(id uint64) (Installation, error) {
	dir := pinDir(id)
	inst := Installation{CgroupID: id, CgroupPath: cgroupPath(id), PinDir: dir}
	for _, h := range hooks {
		inst.Hooks = append(inst.Hooks, hookState(filepath.Join(dir, h.name), h, id))
	}
	counters, err := readCounters(filepath.Join(dir, "toa_reader_stats"))
	if err != nil {
		return Installation{}, err
	}
	inst.Counters = counters
	return inst, nil
}

func hookState(pin string, h hook, id uint64) HookState {
	st := HookState{Hook: h.name}
	l, err := link.LoadPinnedLink(pin, nil)
	if errors.Is(err, os.ErrNotExist) {
		st.Problem = "its pin is missing (xdplb toa install attaches it again)"
		return st
	} else if err != nil {
		st.Problem = err.Error()
		return st
	}
	defer l.Close()
	info, err := l.Info()
	if err != nil {
		st.Problem = err.Error()
		return st
	}
	switch attachedTo(l, h) {
	case id:
		st.Attached, st.Program = true, uint32(info.Program)
	case 0:
		st.Problem = "its cgroup is gone, or it was detached by hand"
	default:
		st.Problem = "attached to another cgroup"
	}
	return st
}

// readCounters sums the per-CPU counters pinned at pin. A missing map
// counts nothing.
func readCounters(pin string) (Counters, error) {
	m, err := ebpf.LoadPinnedMap(pin, &ebpf.LoadPinOptions{ReadOnly: true})
	if errors.Is(err, os.ErrNotExist) {
		return Counters{}, nil
	} else if err != nil {
		return Counters{}, fmt.Errorf("%s: %w", pin, err)
	}
	defer m.Close()
	sum := func(c toaToaCounter) uint64 {
		n, _ := datapath.SumCounter(m, uint32(c))
		return n
	}
	return Counters{
		Sockets:   sum(toaToaCounterTOA_SOCKETS),
		FoundV4:   sum(toaToaCounterTOA_FOUND_V4),
		FoundV6:   sum(toaToaCounterTOA_FOUND_V6),
		Absent:    sum(toaToaCounterTOA_ABSENT),
		Malformed: sum(toaToaCounterTOA_MALFORMED),
	}, nil
}
