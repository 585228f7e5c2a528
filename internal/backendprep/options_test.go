package backendprep

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func TestFlags(t *testing.T) {
	vip := netip.MustParseAddr("10.0.0.100")
	vip2 := netip.MustParseAddr("10.0.0.101")
	for _, tc := range []struct {
		name string
		f    Flags
		want Options
		errs []string // every line of the error, in order
	}{
		{name: "l2", f: Flags{VIPs: []string{"10.0.0.100", " 10.0.0.101", "10.0.0.100"}, Mode: "dsr-l2"},
			want: Options{VIPs: []netip.Addr{vip, vip2}, Mode: DSRL2, GUEPort: DefaultGUEPort}},
		{name: "gue kernel", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr-gue", KernelDecap: true, GUEPort: 7777, GUEPortSet: true},
			want: Options{VIPs: []netip.Addr{vip}, Mode: DSRGUE, KernelDecap: true, GUEPort: 7777}},
		{name: "gue default port", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr-gue", GUEPort: 6080},
			want: Options{VIPs: []netip.Addr{vip}, Mode: DSRGUE, GUEPort: 6080}},
		{name: "nothing", f: Flags{}, errs: []string{
			"--vip: missing: give the VIPs of the services this host is a backend of, e.g. --vip 10.0.0.100,10.0.0.101",
			"--mode: missing: one of dsr-l2, dsr-ipip, dsr-gue, the forwarding of the services",
		}},
		{name: "bad vips", f: Flags{VIPs: []string{"10.0.0.300", "2001:db8::1", "", "127.0.0.1", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::ffff:10.0.0.1", "web"}, Mode: "dsr-l2"}, errs: []string{
			`--vip: "10.0.0.300" is not an IPv4 address`,
			"--vip: 2001:db8::1 is an IPv6 address; IPv6 is not supported yet",
			`--vip: "" is not an IPv4 address`,
			"--vip: 127.0.0.1 is a loopback address",
			"--vip: 0.0.0.0 is the unspecified address",
			"--vip: 224.0.0.1 is a multicast address",
			"--vip: 255.255.255.255 is the broadcast address",
			"--vip: ::ffff:10.0.0.1 is an IPv6 address; IPv6 is not supported yet",
			`--vip: "web" is not an IPv4 address`,
		}},
		{name: "unknown mode", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr"}, errs: []string{
			`--mode: "dsr" is not a DSR mode (accepted: dsr-l2, dsr-ipip, dsr-gue)`,
		}},
		{name: "fullnat", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "fullnat"}, errs: []string{
			"--mode: fullnat backends need no preparation (the balancer sends them packets addressed to their own address); " +
				"prepare for one of dsr-l2, dsr-ipip, dsr-gue",
		}},
		{name: "port range", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr-gue", KernelDecap: true, GUEPort: 70000, GUEPortSet: true}, errs: []string{
			"--gue-port: 70000 is not a port (1-65535)",
		}},
		{name: "port zero", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr-gue", KernelDecap: true, GUEPort: 0, GUEPortSet: true}, errs: []string{
			"--gue-port: 0 is not a port (1-65535)",
		}},
		{name: "port for ipip", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr-ipip", KernelDecap: true, GUEPort: 6080, GUEPortSet: true}, errs: []string{
			"--gue-port: only dsr-gue has a GUE port; leave it out for dsr-ipip",
		}},
		{name: "port without kernel", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr-gue", GUEPort: 6080, GUEPortSet: true}, errs: []string{
			"--gue-port: it is the port of the kernel's GUE receiver, made with --kernel-decap only (xdplb decap has its own)",
		}},
		{name: "kernel decap l2", f: Flags{VIPs: []string{"10.0.0.100"}, Mode: "dsr-l2", KernelDecap: true}, errs: []string{
			"--kernel-decap: dsr-l2 sends the client's packet as it is, with nothing to decapsulate; leave it out",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := tc.f.Options()
			if len(tc.errs) > 0 {
				if err == nil {
					t.Fatalf("Options() = %+v, want an error", o)
				}
				if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, tc.errs) {
					t.Errorf("error:\n%s\nwant:\n%s", err, strings.Join(tc.errs, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(o, tc.want) {
				t.Errorf("Options() = %+v, want %+v", o, tc.want)
			}
		})
	}
}
