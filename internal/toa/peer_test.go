package toa

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/xdplb/xdplb/internal/testbed"
)

// helperEnv makes the test binary a helper process: a server or a client
// that the test starts in a cgroup of its own.
const helperEnv = "XDPLB_TOA_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(runHelper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// TestReaderRewritesPeerAddress runs a server in a cgroup with the reader
// and a client in a cgroup whose sockops program writes an option on the
// client's packets after the SYN, as the balancer does, all on loopback.
// The server reports, for the connection it accepts, the address accept()
// gave (RemoteAddr) and getpeername()'s.
func TestReaderRewritesPeerAddress(t *testing.T) {
	server := tempCgroup(t)
	client := tempCgroup(t)
	install(t, server)

	client4 := netip.MustParseAddr("192.0.2.7")
	client6 := netip.MustParseAddr("2001:db8::7")
	mapped := netip.AddrFrom16(client4.As16())
	loop4 := netip.MustParseAddr("127.0.0.1")
	const port = 4321
	toa4 := append([]byte{254, 8, port >> 8, port & 0xff}, client4.AsSlice()...)
	toa6 := append([]byte{254, 20, port >> 8, port & 0xff}, client6.AsSlice()...)
	notTOA := []byte{254, 6, 0xeb, 0x9f, 1, 2}

	for _, tc := range []struct {
		name            string
		network, listen string
		dial            string // host the client dials
		option          []byte // nil: the client runs outside the writer's cgroup
		remote, peer    netip.Addr
		rewritten       bool // the port is the option's too
	}{
		{"IPv4 TOA, IPv4 listener", "tcp4", "127.0.0.1:0", "127.0.0.1", toa4, client4, client4, true},
		{"IPv4 TOA, dual-stack listener", "tcp", ":0", "127.0.0.1", toa4, client4, mapped, true},
		{"IPv6 TOA, IPv6 listener", "tcp6", "[::1]:0", "::1", toa6, client6, client6, true},
		{"IPv6 TOA, dual-stack listener, IPv4 client", "tcp", ":0", "127.0.0.1", toa6, client6, client6, true},
		{"IPv6 TOA, IPv4 listener: left alone", "tcp4", "127.0.0.1:0", "127.0.0.1", toa6, loop4, loop4, false},
		{"kind 254 of another length: left alone", "tcp4", "127.0.0.1:0", "127.0.0.1", notTOA, loop4, loop4, false},
		{"no option, IPv4 listener", "tcp4", "127.0.0.1:0", "127.0.0.1", nil, loop4, loop4, false},
		{"no option, dual-stack listener", "tcp", ":0", "127.0.0.1", nil, loop4, netip.AddrFrom16(loop4.As16()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startHelper(t, server, "server", tc.network, tc.listen)
			_, listenPort, err := net.SplitHostPort(srv.line(t, "listening"))
			if err != nil {
				t.Fatal(err)
			}
			target := net.JoinHostPort(tc.dial, listenPort)
			if tc.option == nil {
				dialHere(t, target)
			} else {
				attachWriter(t, client, tc.option)
				cl := startHelper(t, client, "client", target)
				cl.line(t, "done")
			}
			fields := strings.Fields(srv.line(t, "peer"))
			if len(fields) != 2 {
				t.Fatalf("server reported %q", fields)
			}
			for i, want := range []netip.Addr{tc.remote, tc.peer} {
				what := []string{"accept", "getpeername"}[i]
				got, err := netip.ParseAddrPort(fields[i])
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if got.Addr() != want || (got.Port() == port) != tc.rewritten {
					wantPort := "the client's own port"
					if tc.rewritten {
						wantPort = fmt.Sprint("port ", port)
					}
					t.Errorf("%s gave %s; want %s with %s", what, got, want, wantPort)
				}
			}
		})
	}

	in, ok := installation(t, server.ID)
	if !ok {
		t.Fatal("status lists no reader")
	}
	want := Counters{Sockets: 8, FoundV4: 2, FoundV6: 3, Absent: 3}
	if in.Counters != want {
		t.Errorf("counters %+v; want %+v", in.Counters, want)
	}
}

// attachWriter attaches the test's option writer, writing option, to cg
// until the test ends.
func attachWriter(t *testing.T, cg Cgroup, option []byte) {
	t.Helper()
	spec, err := loadToaWriter()
	if err != nil {
		t.Fatal(err)
	}
	var buf [20]byte
	copy(buf[:], option)
	if err := spec.Variables["option"].Set(buf); err != nil {
		t.Fatal(err)
	}
	if err := spec.Variables["option_len"].Set(uint32(len(option))); err != nil {
		t.Fatal(err)
	}
	var objs toaWriterObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { objs.Close() })
	l, err := link.AttachCgroup(link.CgroupOptions{Path: cg.Path, Attach: ebpf.AttachCGroupSockOps, Program: objs.ToaWriter})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
}

// dialHere connects to target from the test's own cgroup, where no option
// is written.
func dialHere(t *testing.T, target string) {
	t.Helper()
	if err := dial(target); err != nil {
		t.Fatal(err)
	}
}

// dial connects to target and waits for the server to close.
func dial(target string) error {
	c, err := net.DialTimeout("tcp", target, 5*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = io.Copy(io.Discard, c)
	return err
}

// helper is a helper process and the lines it prints.
type helper struct {
	lines <-chan string
}

// startHelper starts the test binary as a helper process in cg, which
// the test kills and waits for when it ends.
func startHelper(t *testing.T, cg Cgroup, args ...string) *helper {
	t.Helper()
	dir, err := os.Open(cg.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(dir.Fd()), Pdeathsig: syscall.SIGKILL}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s in %s: %v", args[0], cg.Path, err)
	}
	lines := make(chan string, 8)
	go func() {
		defer close(lines)
		s := bufio.NewScanner(out)
		for s.Scan() {
			lines <- s.Text()
		}
	}()
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
	})
	return &helper{lines: lines}
}

// line returns the rest of the next line the helper prints, which must
// start with word.
func (h *helper) line(t *testing.T, word string) string {
	t.Helper()
	select {
	case l, ok := <-h.lines:
		rest, found := strings.CutPrefix(l, word+" ")
		if !ok || (!found && l != word) {
			t.Fatalf("helper printed %q; want %s", l, word)
		}
		return rest
	case <-time.After(10 * time.Second):
		t.Fatalf("helper printed no %s line in 10s", word)
	}
	return ""
}

// runHelper is the helper process: "server NETWORK ADDRESS" listens and
// prints "listening ADDRESS", then for each connection "peer ACCEPT
// GETPEERNAME" until the test kills it; "client ADDRESS" connects, waits
// for the server to close and prints "done".
func runHelper(args []string) int {
	var err error
	switch {
	case len(args) == 3 && args[0] == "server":
		err = serve(args[1], args[2])
	case len(args) == 2 && args[0] == "client":
		if err = dial(args[1]); err == nil {
			fmt.Println("done")
		}
	default:
		err = fmt.Errorf("helper: unknown arguments %q", args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func serve(network, address string) error {
	ln, err := net.Listen(network, address)
	if err != nil {
		return err
	}
	fmt.Printf("listening %s\n", ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		peer, err := testbed.Getpeername(c.(*net.TCPConn))
		if err != nil {
			return err
		}
		fmt.Printf("peer %s %s\n", c.RemoteAddr(), peer)
		c.Close()
	}
}
