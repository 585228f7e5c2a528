package e2e

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
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/demo"
	"github.com/xdplb/xdplb/internal/testbed"
	"github.com/xdplb/xdplb/internal/toa"
)

// peerServerEnv makes the test binary a peer server (servePeers): a
// process of its own, so that it runs in a cgroup of its own.
const peerServerEnv = "XDPLB_E2E_PEER_SERVER"

const (
	toaVIP     = "172.19.0.10:9100"
	toaService = `  - name: toa
    vip: 172.19.0.10
    port: 9100
    protocol: tcp
    scheduler: rr
    client_address: toa
    backends:
      - address: 172.19.0.2
      - address: 172.19.0.3
`
)

// TestTOA: a service with client_address toa over two backends whose
// servers report the peer address they see, from accept() and from
// getpeername(). Without a reader both see the balancer's local address;
// once `xdplb toa install` put the reader on rs1's cgroup, rs1 sees each
// client's own address and port, while rs2, without a reader, keeps
// working and seeing the local address. A 64 MiB upload to rs1 with the
// option on arrives intact.
func TestTOA(t *testing.T) {
	e := newEnv(t, "native")
	e.start(t, func(d string) string {
		return demo.Setup{Mode: e.mode, Dir: d, Services: toaService}.YAML()
	})
	mount, err := toa.Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	withReader := testbed.TempCgroup(t, mount)
	without := testbed.TempCgroup(t, mount)
	startPeerServer(t, e.ref.RS1, withReader, "rs1")
	startPeerServer(t, e.ref.RS2, without, "rs2")
	local := netip.MustParseAddr("172.19.0.5")

	t.Run("without a reader every backend sees the local address", func(t *testing.T) {
		for range 2 {
			r := askPeer(t, e)
			if r.accepted.Addr() != local || r.peer.Addr() != local {
				t.Errorf("%s saw %s (accept) and %s (getpeername), want the local address %s", r.backend, r.accepted, r.peer, local)
			}
		}
	})

	xdplb(t, "toa", "install", "--cgroup", withReader)
	t.Cleanup(func() { xdplb(t, "toa", "remove", "--cgroup", withReader) })
	if out := xdplb(t, "toa", "status"); !strings.Contains(out, withReader) {
		t.Errorf("toa status does not list %s:\n%s", withReader, out)
	}

	t.Run("the reader's backend sees the client, the other still works", func(t *testing.T) {
		seen := map[string]int{}
		for range 6 {
			r := askPeer(t, e)
			seen[r.backend]++
			want := r.client
			if r.backend == "rs2" {
				if r.accepted.Addr() != local || r.peer.Addr() != local {
					t.Errorf("rs2 (no reader) saw %s and %s, want the local address %s", r.accepted, r.peer, local)
				}
				continue
			}
			if r.accepted != want || r.peer != want {
				t.Errorf("rs1 saw %s (accept) and %s (getpeername), want the client %s", r.accepted, r.peer, want)
			}
		}
		if seen["rs1"] == 0 || seen["rs2"] == 0 {
			t.Errorf("connections per backend %v: want both", seen)
		}
	})

	t.Run("a 64 MiB client-first upload, every segment with the option, arrives intact", func(t *testing.T) {
		before := toaCounts(t, e)
		for {
			c, err := e.ref.Client.DialContext(t.Context(), "tcp", toaVIP)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(90 * time.Second))
			// rs1 says nothing until the upload ends, so every segment
			// of it still acknowledges only the SYN-ACK and carries the
			// option: the lowered MSS must leave room for it.
			if _, err := io.WriteString(c, "upload\n"); err != nil {
				t.Fatal(err)
			}
			r := bufio.NewReader(c)
			if err := uploadAndCheck(c, r); err != nil {
				t.Fatal(err)
			}
			report := readReport(t, r, c)
			if report.backend != "rs1" {
				continue // rs2 has no reader: upload again, to rs1
			}
			if report.accepted != report.client {
				t.Errorf("rs1 saw %s, want the client %s", report.accepted, report.client)
			}
			break
		}
		after := toaCounts(t, e)
		if n := after["inserted"] - before["inserted"]; n < bulkSize/1500 {
			t.Errorf("%d packets carried the option, want every segment of the upload (%d at least)", n, bulkSize/1500)
		}
		if n := after["too_big"] - before["too_big"]; n != 0 {
			t.Errorf("%d packets too big for the option: the lowered MSS left no room", n)
		}
	})
}

// peerReport is what a peer server says about a connection.
type peerReport struct {
	backend        string
	accepted, peer netip.AddrPort // from accept() and from getpeername()
	client         netip.AddrPort // the client's own end of the connection
}

// askPeer opens a connection to the TOA service and returns the report.
func askPeer(t *testing.T, e *env) peerReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, err := e.ref.Client.DialContext(ctx, "tcp", toaVIP)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "report\n"); err != nil {
		t.Fatal(err)
	}
	return readReport(t, bufio.NewReader(c), c)
}

// readReport reads a peer server's report line from r, c's reader.
func readReport(t *testing.T, r *bufio.Reader, c net.Conn) peerReport {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read the backend's report: %v", err)
	}
	var rep peerReport
	var accepted, peer string
	if _, err := fmt.Sscan(line, &rep.backend, &accepted, &peer); err != nil {
		t.Fatalf("report %q: %v", line, err)
	}
	// The server listens on [::] (dual stack): its IPv4 peers are
	// v4-mapped, and the reader must rewrite them so too.
	rep.accepted = unmap(netip.MustParseAddrPort(accepted))
	rep.peer = unmap(netip.MustParseAddrPort(peer))
	rep.client = netip.MustParseAddrPort(c.LocalAddr().String())
	return rep
}

// toaCounts reads the balancer's TOA counters.
func toaCounts(t *testing.T, e *env) map[string]uint64 {
	t.Helper()
	st, err := e.bal.API.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.TOA
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

// startPeerServer runs a peer server named name on host port 9100 in
// cgroup, and stops it when the test ends (before the cgroup goes).
func startPeerServer(t *testing.T, host *testbed.Host, cgroup, name string) {
	t.Helper()
	dir, err := os.Open(cgroup)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	ready, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	cmd := host.Command(context.Background(), os.Args[0], name, ":9100")
	cmd.Env = append(os.Environ(), peerServerEnv+"=1")
	cmd.Stdout, cmd.Stderr = w, os.Stderr
	cmd.SysProcAttr.UseCgroupFD = true
	cmd.SysProcAttr.CgroupFD = int(dir.Fd())
	p, err := host.StartCmd(cmd)
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Wait()
	})
	ready.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := bufio.NewReader(ready).ReadString('\n'); err != nil || line != "listening\n" {
		t.Fatalf("peer server %s: %q, %v", name, line, err)
	}
}

// servePeers is the peer server process: it listens on address, says
// "listening" on stdout, and answers each client's first line: "report"
// with "NAME ACCEPTED PEER\n" (the peer address accept() returned and
// getpeername()'s), "upload" by taking an upload as hashUpload does, then
// the same report.
func servePeers(name, address string) error {
	ln, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	fmt.Println("listening")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			if err := answerPeer(c, name); err != nil {
				fmt.Fprintln(os.Stderr, err)
			}
		}()
	}
}

func answerPeer(c net.Conn, name string) error {
	r := bufio.NewReader(c)
	what, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if what == "upload\n" {
		if err := hashUpload(r, c); err != nil {
			return err
		}
	}
	peer, err := testbed.Getpeername(c.(*net.TCPConn))
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(c, "%s %s %s\n", name, c.RemoteAddr(), peer)
	return err
}

// xdplb runs the xdplb binary with args and returns its output.
func xdplb(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(xdplbBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("xdplb %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}
