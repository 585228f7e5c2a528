package bench

import (
	"encoding/binary"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"

	"github.com/xdplb/xdplb/internal/datapath"
)

// XDP verdicts as the kernel numbers them.
const (
	xdpAborted = 0
	xdpDrop    = 1
	xdpPass    = 2
	xdpTX      = 3
)

// The reference programs are assembled in Go, so the harness needs no
// clang and no object files.

// loadEmpty loads "return XDP_PASS": the cost of running any XDP program
// at all. Not-for-service traffic is compared with it.
func loadEmpty() (*ebpf.Program, error) {
	return load("xlb_empty", asm.Instructions{
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Return(),
	})
}

// loadFloor loads the least a program that bounces TCP packets must do:
// check the frame is long enough and is untagged IPv4 without options
// carrying TCP, swap the Ethernet addresses, the IP addresses and the TCP
// ports (a swap leaves every checksum valid), and return XDP_TX. Anything
// else passes. A load balancer's forwarding paths are compared with it.
func loadFloor() (*ebpf.Program, error) { return loadFloorWith("xlb_floor", nil) }

// Registers of the floor program: the context and the packet start live
// in callee-saved registers, so extra code may call helpers.
const (
	regCtx  = asm.R6
	regData = asm.R7
	regEnd  = asm.R8
)

// loadFloorWith loads the floor program with extra inserted after the
// checks and before the swaps. extra may use R1-R5, R9 and the stack, and
// jumps to "drop" to make the run return XDP_DROP (a failed helper), so a
// test run sees that it did not do what it was meant to.
func loadFloorWith(name string, extra asm.Instructions) (*ebpf.Program, error) {
	const a, b = asm.R2, asm.R3
	swap := func(off1, off2 int16, size asm.Size) asm.Instructions {
		return asm.Instructions{
			asm.LoadMem(a, regData, off1, size),
			asm.LoadMem(b, regData, off2, size),
			asm.StoreMem(regData, off1, b, size),
			asm.StoreMem(regData, off2, a, size),
		}
	}
	insns := asm.Instructions{
		asm.Mov.Reg(regCtx, asm.R1),
		asm.LoadMem(regData, regCtx, 0, asm.Word), // ctx->data
		asm.LoadMem(regEnd, regCtx, 4, asm.Word),  // ctx->data_end
		asm.Mov.Imm(asm.R0, xdpPass),
		asm.Mov.Reg(asm.R4, regData),
		asm.Add.Imm(asm.R4, 14+20+20),
		asm.JGT.Reg(asm.R4, regEnd, "out"),
		asm.LoadMem(a, regData, 12, asm.Half), // EtherType, big endian in memory
		asm.JNE.Imm(a, 0x0008, "out"),         // 0x0800 read little endian
		asm.LoadMem(a, regData, 14, asm.Byte), // version and header length
		asm.JNE.Imm(a, 0x45, "out"),
		asm.LoadMem(a, regData, 23, asm.Byte), // protocol
		asm.JNE.Imm(a, 6, "out"),
	}
	insns = append(insns, extra...)
	insns = append(insns, swap(0, 6, asm.Word)...) // MACs, in two parts
	insns = append(insns, swap(4, 10, asm.Half)...)
	insns = append(insns, swap(26, 30, asm.Word)...) // IP addresses
	insns = append(insns, swap(34, 36, asm.Half)...) // TCP ports
	insns = append(insns, asm.Mov.Imm(asm.R0, xdpTX))
	if extra != nil {
		insns = append(insns,
			asm.Ja.Label("out"),
			asm.Mov.Imm(asm.R0, xdpDrop).WithSymbol("drop"),
		)
	}
	insns = append(insns, asm.Return().WithSymbol("out"))
	return load(name, insns)
}

// Component programs: the floor plus one operation xdplb does per packet,
// to see what each costs on this machine.

// tupleKey builds a conntrack-shaped key (saddr, daddr, sport, dport,
// proto, 3 bytes of padding: 16 bytes) from the packet at R10-16.
func tupleKey() asm.Instructions {
	return asm.Instructions{
		asm.LoadMem(asm.R2, regData, 26, asm.Word),
		asm.StoreMem(asm.RFP, -16, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, regData, 30, asm.Word),
		asm.StoreMem(asm.RFP, -12, asm.R2, asm.Word),
		asm.LoadMem(asm.R2, regData, 34, asm.Half),
		asm.StoreMem(asm.RFP, -8, asm.R2, asm.Half),
		asm.LoadMem(asm.R2, regData, 36, asm.Half),
		asm.StoreMem(asm.RFP, -6, asm.R2, asm.Half),
		asm.StoreImm(asm.RFP, -4, protoTCP, asm.Word),
	}
}

// tupleKeyOf is tupleKey's key for a frame.
func tupleKeyOf(frame []byte) [16]byte {
	var k [16]byte
	copy(k[0:12], frame[26:38])
	k[12] = protoTCP
	return k
}

// tupleKeySize is the size of the key tupleKey builds.
const tupleKeySize = 16

// ctValueSize is the size of xdplb's forward conntrack value, which the
// insert program writes (zeroed) below the key on the stack.
const ctValueSize = datapath.ConntrackForwardValueSize

// newTupleMap makes a hash map shaped like xdplb's forward conntrack half.
func newTupleMap(capacity uint32) (*ebpf.Map, error) {
	if datapath.ConntrackKeySize != tupleKeySize {
		return nil, fmt.Errorf("xdplb's conntrack key is %d bytes, the component programs build %d: update tupleKey",
			datapath.ConntrackKeySize, tupleKeySize)
	}
	return ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: tupleKeySize, ValueSize: ctValueSize, MaxEntries: capacity})
}

// loadFloorLookup: the floor plus one lookup of the packet's 5-tuple in m,
// a preallocated hash map shaped like xdplb's conntrack; a miss drops.
func loadFloorLookup(m *ebpf.Map) (*ebpf.Program, error) {
	extra := append(tupleKey(),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -tupleKeySize),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "drop"),
	)
	return loadFloorWith("xlb_floor_get", extra)
}

// loadFloorInsert: the floor plus one insert (BPF_NOEXIST) of the packet's
// 5-tuple into m; an existing key or a full map drops.
func loadFloorInsert(m *ebpf.Map) (*ebpf.Program, error) {
	// The value, zeroed, right below the key (ctValueSize is a multiple
	// of 8: it holds a __u64).
	const valueOff = -tupleKeySize - int16(ctValueSize)
	extra := append(tupleKey(), asm.Mov.Imm(asm.R9, 0))
	for off := valueOff; off < -tupleKeySize; off += 8 {
		extra = append(extra, asm.StoreMem(asm.RFP, off, asm.R9, asm.DWord))
	}
	extra = append(extra,
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -tupleKeySize),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, int32(valueOff)),
		asm.Mov.Imm(asm.R4, 1), // BPF_NOEXIST
		asm.FnMapUpdateElem.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
	)
	return loadFloorWith("xlb_floor_put", extra)
}

// loadFloorFIB: the floor plus one bpf_fib_lookup from src to dst out of
// the ingress interface, as xdplb does towards a backend; anything but
// success drops.
func loadFloorFIB(src, dst [4]byte) (*ebpf.Program, error) {
	extra := asm.Instructions{asm.Mov.Imm(asm.R9, 0)}
	for off := int16(-64); off < 0; off += 8 {
		extra = append(extra, asm.StoreMem(asm.RFP, off, asm.R9, asm.DWord))
	}
	extra = append(extra,
		asm.StoreImm(asm.RFP, -64, 2, asm.Byte),        // family AF_INET
		asm.StoreImm(asm.RFP, -63, protoTCP, asm.Byte), // l4_protocol
		asm.LoadMem(asm.R2, regData, 34, asm.Half),
		asm.StoreMem(asm.RFP, -62, asm.R2, asm.Half), // sport
		asm.LoadMem(asm.R2, regData, 36, asm.Half),
		asm.StoreMem(asm.RFP, -60, asm.R2, asm.Half), // dport
		asm.LoadMem(asm.R2, regCtx, 12, asm.Word),    // ctx->ingress_ifindex
		asm.StoreMem(asm.RFP, -56, asm.R2, asm.Word),
		asm.StoreImm(asm.RFP, -48, int64(binary.LittleEndian.Uint32(src[:])), asm.Word), // ipv4_src
		asm.StoreImm(asm.RFP, -32, int64(binary.LittleEndian.Uint32(dst[:])), asm.Word), // ipv4_dst
		asm.Mov.Reg(asm.R1, regCtx),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -64),
		asm.Mov.Imm(asm.R3, 64),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnFibLookup.Call(),
		asm.JNE.Imm(asm.R0, 0, "drop"),
	)
	return loadFloorWith("xlb_floor_fib", extra)
}

func load(name string, insns asm.Instructions) (*ebpf.Program, error) {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: name, Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL", Instructions: insns,
	})
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", name, err)
	}
	return prog, nil
}

// restorer is a program that writes the first restoreBytes of a frame
// back to what they were and then tail-calls the program under test.
//
// It exists because live-frames test runs do not start every packet from
// the original frame: the kernel copies the frame into each page of its
// page pool once, and when a transmitted page comes back it only resets
// the data pointers, so the next run sees what the previous one left.
// A rewritten Full-NAT frame (local -> backend) is not for a service any
// more, and xdplb would pass it. Rewriting the headers back costs a few
// stores, and the floor program is measured behind the same restorer.
type restorer struct {
	prog  *ebpf.Program
	progs *ebpf.Map
}

// restoreBytes covers Ethernet, IPv4 and TCP headers (54 bytes), rounded
// up to whole 8-byte stores.
const restoreBytes = 56

func newRestorer(frame []byte, target *ebpf.Program) (_ *restorer, err error) {
	if len(frame) < restoreBytes {
		return nil, fmt.Errorf("restorer: frame of %d bytes, want at least %d", len(frame), restoreBytes)
	}
	r := &restorer{}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	r.progs, err = ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ProgramArray, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		return nil, fmt.Errorf("restorer: program array: %w", err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R1, 0, asm.Word),
		asm.LoadMem(asm.R3, asm.R1, 4, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, restoreBytes),
		asm.JGT.Reg(asm.R4, asm.R3, "out"),
	}
	for off := 0; off < restoreBytes; off += 8 {
		insns = append(insns,
			asm.LoadImm(asm.R5, int64(binary.LittleEndian.Uint64(frame[off:])), asm.DWord),
			asm.StoreMem(asm.R2, int16(off), asm.R5, asm.DWord),
		)
	}
	insns = append(insns,
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, r.progs.FD()),
		asm.Mov.Imm(asm.R3, 0),
		asm.FnTailCall.Call(),
		asm.Mov.Imm(asm.R0, xdpAborted).WithSymbol("out"),
		asm.Return(),
	)
	// A program array only takes programs like its first user, attach
	// type included: xdplb is loaded from SEC("xdp"), which is BPF_XDP.
	r.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: "xlb_restore", Type: ebpf.XDP, AttachType: ebpf.AttachXDP, License: "GPL", Instructions: insns,
	})
	if err != nil {
		return nil, fmt.Errorf("load restorer: %w", err)
	}
	if err := r.progs.Put(uint32(0), target); err != nil {
		return nil, fmt.Errorf("restorer: tail call target: %w", err)
	}
	return r, nil
}

func (r *restorer) close() {
	if r.prog != nil {
		r.prog.Close()
	}
	if r.progs != nil {
		r.progs.Close()
	}
}
