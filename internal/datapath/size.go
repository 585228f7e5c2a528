package datapath

import "unsafe"

// htabElemOverhead approximates the kernel's per-element bookkeeping in a
// preallocated hash map (struct htab_elem without the key and value).
const htabElemOverhead = 48

// ConntrackEntryBytes is the kernel memory one tracked connection takes:
// both halves, keys, values and per-element overhead.
const ConntrackEntryBytes = 2*unsafe.Sizeof(xdplbCtKey{}) + unsafe.Sizeof(xdplbCtFwd{}) +
	unsafe.Sizeof(xdplbCtRev{}) + 2*htabElemOverhead
