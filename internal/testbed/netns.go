package testbed

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// netnsDir is where named namespaces are bind-mounted; it is the directory
// iproute2 uses, so `ip netns` sees (and can clean up) our namespaces.
const netnsDir = "/run/netns"

// errGoexit marks a function that called runtime.Goexit (t.FailNow does) on
// the namespace thread, so the caller can re-raise it on its own goroutine.
var errGoexit = errors.New("testbed: runtime.Goexit called inside namespace")

// panicValue carries a panic from the namespace thread to the caller.
type panicValue struct{ v any }

// runLocked runs enter and then fn on a brand-new goroutine that is locked to
// its OS thread and never unlocked. When the goroutine returns, the Go
// runtime terminates the thread instead of returning it to the pool, so a
// thread whose namespace was changed by enter can never run other
// goroutines. That is the whole reason for this dance: switching a pooled
// thread and switching it back is fragile (if the switch back fails, the
// thread silently carries the wrong namespace into unrelated code).
//
// A panic in fn is re-raised on the caller's goroutine, and runtime.Goexit
// (e.g. t.FailNow) is propagated, so test helpers behave as if fn ran inline.
func runLocked(enter func() error, fn func() error) error {
	type result struct {
		err   error
		panic *panicValue
	}
	done := make(chan result, 1)
	var work func()
	work = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// The main thread is the one thread the runtime cannot
			// terminate: a goroutine exiting locked to it wedges it for
			// good, still inside the namespace. Hop to another thread;
			// while this goroutine holds the main thread, the new one
			// cannot be scheduled here. Nothing was switched yet, so
			// unlocking afterwards is safe.
			hop := make(chan struct{})
			go func() {
				defer close(hop)
				work()
			}()
			<-hop
			runtime.UnlockOSThread()
			return
		}
		// Deliberately no UnlockOSThread from here on: see above.
		finished := false
		defer func() {
			if finished {
				return
			}
			if r := recover(); r != nil {
				done <- result{panic: &panicValue{r}}
				return
			}
			done <- result{err: errGoexit}
		}()
		var err error
		if enter != nil {
			err = enter()
		}
		if err == nil {
			err = fn()
		}
		finished = true
		done <- result{err: err}
	}
	go work()
	r := <-done
	if r.panic != nil {
		panic(r.panic.v)
	}
	if r.err == errGoexit {
		runtime.Goexit()
	}
	return r.err
}

// runInNetns runs fn on a throw-away thread inside the namespace ns.
func runInNetns(ns netns.NsHandle, fn func() error) error {
	return runLocked(func() error { return netns.Set(ns) }, fn)
}

// createNamedNetns creates a new network namespace, pins it at
// /run/netns/<name> and returns an open handle to it. The unshare happens on
// a throw-away thread, so the caller's thread stays where it was.
func createNamedNetns(name string) (netns.NsHandle, error) {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return netns.None(), fmt.Errorf("create %s: %w", netnsDir, err)
	}
	path := filepath.Join(netnsDir, name)
	handle := netns.None()
	err := runLocked(nil, func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare netns %s: %w", name, err)
		}
		// O_EXCL: never adopt a namespace file we did not create.
		f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
		if err != nil {
			return fmt.Errorf("create netns file %s: %w", path, err)
		}
		f.Close()
		if err := unix.Mount("/proc/thread-self/ns/net", path, "", unix.MS_BIND, ""); err != nil {
			os.Remove(path)
			return fmt.Errorf("bind-mount netns %s: %w", name, err)
		}
		h, err := netns.Get()
		if err != nil {
			deleteNamedNetns(name)
			return fmt.Errorf("open netns %s: %w", name, err)
		}
		handle = h
		return nil
	})
	return handle, err
}

// deleteNamedNetns unpins a namespace created by createNamedNetns. The
// namespace itself (and every interface in it) disappears once the last
// reference (open fd, socket, process) is gone.
func deleteNamedNetns(name string) error {
	path := filepath.Join(netnsDir, name)
	var errs []error
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		errs = append(errs, fmt.Errorf("unmount netns %s: %w", name, err))
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, fmt.Errorf("remove netns %s: %w", name, err))
	}
	return errors.Join(errs...)
}

// writeSysctl writes value to /proc/sys/<key> in the calling thread's
// namespace (net.* sysctls are resolved per thread). A missing key is not an
// error when optional is set, e.g. IPv6 knobs on a kernel without IPv6.
func writeSysctl(key, value string, optional bool) error {
	path := filepath.Join("/proc/sys", key)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		if optional && errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
