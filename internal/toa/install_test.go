package toa

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// TestInstallUpdateRemove: install attaches the three programs to the
// cgroup and pins them; installing again replaces the programs in the same
// links; remove leaves no pin and no attachment, and a second remove is a
// no-op that says so.
func TestInstallUpdateRemove(t *testing.T) {
	cg := tempCgroup(t)
	done := install(t, cg)
	if done.Updated || done.PinDir != filepath.Join(PinRoot, strconv.FormatUint(cg.ID, 10)) {
		t.Errorf("first install: %+v", done)
	}
	in, ok := installation(t, cg.ID)
	if !ok || in.CgroupPath != cg.Path {
		t.Fatalf("status does not list %s (id %d): %+v", cg.Path, cg.ID, in)
	}
	first := attachments(t, cg)
	for _, h := range in.Hooks {
		a, ok := first[h.Hook]
		if !h.Attached || !ok || ebpf.ProgramID(h.Program) != a.prog {
			t.Errorf("status says %+v; the cgroup has %+v", h, a)
		}
	}

	again, err := Install(cg.Path)
	if err != nil || !again.Updated {
		t.Fatalf("second install: %+v, %v; want updated", again, err)
	}
	second := attachments(t, cg)
	for name, a := range second {
		if a.link != first[name].link || a.prog == first[name].prog {
			t.Errorf("%s: link %d program %d, then link %d program %d; want the same link with a new program",
				name, first[name].link, first[name].prog, a.link, a.prog)
		}
	}

	r, err := Remove(cg.Path)
	if err != nil || !r.Found {
		t.Fatalf("remove: %+v, %v", r, err)
	}
	if got := attachments(t, cg); len(got) != 0 {
		t.Errorf("after remove the cgroup still has %+v", got)
	}
	if _, err := os.Lstat(done.PinDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after remove %s: %v", done.PinDir, err)
	}
	if _, ok := installation(t, cg.ID); ok {
		t.Error("status still lists the cgroup")
	}
	r, err = Remove(cg.Path)
	if err != nil || r.Found {
		t.Errorf("second remove: %+v, %v; want nothing found, no error", r, err)
	}
}

// TestRefusedInstallLeavesNothing: a cgroup whose getpeername4 hook is
// held by a program attached without BPF_F_ALLOW_MULTI refuses the reader
// there; install says why and takes back the hook it had attached.
func TestRefusedInstallLeavesNothing(t *testing.T) {
	cg := tempCgroup(t)
	t.Cleanup(func() { RemoveID(cg.ID) })
	var objs toaObjects
	if err := loadToaObjects(&objs, nil); err != nil {
		t.Fatal(err)
	}
	defer objs.Close()
	dir, err := os.Open(cg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	exclusive := link.RawAttachProgramOptions{Target: int(dir.Fd()), Program: objs.ToaGetpeername4, Attach: ebpf.AttachCgroupInet4GetPeername}
	if err := link.RawAttachProgram(exclusive); err != nil {
		t.Fatal(err)
	}
	defer link.RawDetachProgram(link.RawDetachProgramOptions(exclusive))

	_, err = Install(cg.Path)
	if err == nil || !strings.Contains(err.Error(), "attach the getpeername4 program to cgroup "+cg.Path) ||
		!strings.Contains(err.Error(), "without BPF_F_ALLOW_MULTI") {
		t.Errorf("install: %v", err)
	}
	got := attachments(t, cg)
	if _, ok := got["sockops"]; ok || len(got) != 1 {
		t.Errorf("after the refused install the cgroup has %+v; want the exclusive program alone", got)
	}
	if _, err := os.Lstat(pinDir(cg.ID)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after the refused install %s: %v", pinDir(cg.ID), err)
	}
}

// TestConcurrentInstalls: installs at once on one cgroup take turns: one
// installs, the others update, and each hook has one program.
func TestConcurrentInstalls(t *testing.T) {
	cg := tempCgroup(t)
	t.Cleanup(func() { RemoveID(cg.ID) })
	type result struct {
		done Installed
		err  error
	}
	results := make(chan result)
	for range 4 {
		go func() {
			done, err := Install(cg.Path)
			results <- result{done, err}
		}()
	}
	fresh := 0
	for range 4 {
		r := <-results
		if r.err != nil {
			t.Error(r.err)
		} else if !r.done.Updated {
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d of 4 installs found nothing installed; want 1", fresh)
	}
	if got := attachments(t, cg); len(got) != len(hooks) {
		t.Errorf("the cgroup has %+v; want every hook once", got)
	}
}

// TestRemoveLeavesOthersAlone: a pin xdplb toa did not make, in its
// directory, survives remove, which says so.
func TestRemoveLeavesOthersAlone(t *testing.T) {
	cg := tempCgroup(t)
	done := install(t, cg)
	other, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	pin := filepath.Join(done.PinDir, "someone-elses")
	if err := other.Pin(pin); err != nil {
		t.Fatal(err)
	}
	defer func() {
		other.Unpin()
		os.Remove(done.PinDir)
	}()
	_, err = Remove(cg.Path)
	if err == nil || !strings.Contains(err.Error(), "still holds files xdplb toa did not make") {
		t.Errorf("remove: %v", err)
	}
	if _, err := os.Lstat(pin); err != nil {
		t.Errorf("remove took %s: %v", pin, err)
	}
	if got := attachments(t, cg); len(got) != 0 {
		t.Errorf("after remove the cgroup still has %+v", got)
	}
}

// TestCgroupGone: when the cgroup goes, status says so and remove by id
// clears what is left.
func TestCgroupGone(t *testing.T) {
	cg := tempCgroup(t)
	done := install(t, cg)
	if err := os.Remove(cg.Path); err != nil {
		t.Fatal(err)
	}
	// The kernel detaches the links once the cgroup is released, a
	// moment after it is removed.
	deadline := time.Now().Add(10 * time.Second)
	for {
		in, ok := installation(t, cg.ID)
		if !ok || in.CgroupPath != "" {
			t.Fatalf("status after the cgroup went: %+v, %v", in, ok)
		}
		if !slices.ContainsFunc(in.Hooks, func(h HookState) bool { return h.Attached }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still attached 10s after the cgroup went: %+v", in.Hooks)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := Remove(cg.Path); err == nil || !strings.Contains(err.Error(), "xdplb toa remove --cgroup-id ID") {
		t.Errorf("remove by path: %v", err)
	}
	if r, err := RemoveID(cg.ID); err != nil || !r.Found {
		t.Errorf("remove by id: %+v, %v", r, err)
	}
	if _, err := os.Lstat(done.PinDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after remove %s: %v", done.PinDir, err)
	}
}

type attachment struct {
	link link.ID
	prog ebpf.ProgramID
}

// attachments returns what is attached to cg at each of the reader's
// hooks, as the kernel reports it, by hook name.
func attachments(t *testing.T, cg Cgroup) map[string]attachment {
	t.Helper()
	dir, err := os.Open(cg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	out := map[string]attachment{}
	for _, h := range hooks {
		q, err := link.QueryPrograms(link.QueryOptions{Target: int(dir.Fd()), Attach: h.attach})
		if err != nil {
			t.Fatalf("query %s of %s: %v", h.name, cg.Path, err)
		}
		switch len(q.Programs) {
		case 0:
			continue
		case 1:
		default:
			t.Fatalf("%s of %s has %d programs; want the reader's alone", h.name, cg.Path, len(q.Programs))
		}
		p := q.Programs[0]
		id, _ := p.LinkID()
		out[h.name] = attachment{link: id, prog: p.ID}
		info, err := ebpf.NewProgramFromID(p.ID)
		if err != nil {
			t.Fatal(err)
		}
		pi, err := info.Info()
		info.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"toa_sockops", "toa_getpeername4", "toa_getpeername6"}; !slices.Contains(want, pi.Name) {
			t.Errorf("%s of %s is program %q, not the reader's", h.name, cg.Path, pi.Name)
		}
	}
	return out
}
