package importer

import (
	"strings"
	"testing"
	"time"

	"github.com/xdplb/xdplb/internal/config"
	"github.com/xdplb/xdplb/internal/ident"
)

func TestIpvsadm(t *testing.T) {
	runImportCases(t, importRules, []importCase{
		{name: "TCP with persistence", in: "-A -t 10.0.0.1:80 -s wrr -p 600\n-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 5\n",
			notes: "2 -m, 0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				s := one(t, c)
				want(t, "key", s.Key().String(), "10.0.0.1:80/tcp")
				want(t, "scheduler", s.Scheduler, "wrr")
				want(t, "persistence", s.Persistence, 10*time.Minute)
				want(t, "backends", s.Backends, []config.Backend{{Address: addr("10.0.1.1"), Port: 8080, Weight: 5}})
			}},
		{name: "UDP", in: "-A -u 10.0.0.1:53 -s rr\n-a -u 10.0.0.1:53 -r 10.0.1.1:53 -m -w 1\n", notes: "2 -m, 0 ipvsadm",
			check: func(t *testing.T, c *config.Config) { want(t, "protocol", one(t, c).Protocol, ident.UDP) }},
		{name: "persistent without a value is 300 s", in: "-A -t 10.0.0.1:80 -s rr -p\n", notes: "0 ipvsadm",
			check: func(t *testing.T, c *config.Config) { want(t, "persistence", one(t, c).Persistence, 300*time.Second) }},
		{name: "long options, ipvsadm prefix, comments, blank lines",
			in: "# rules\n\nipvsadm --add-service --tcp-service 10.0.0.1:80 --scheduler sh --persistent 60\n" +
				"/sbin/ipvsadm --add-server --tcp-service 10.0.0.1:80 --real-server 10.0.1.1 --masquerading --weight 2 # one\n",
			notes: "4 -m, 0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				s := one(t, c)
				want(t, "scheduler", s.Scheduler, "sh")
				want(t, "persistence", s.Persistence, time.Minute)
				want(t, "backends", s.Backends, []config.Backend{{Address: addr("10.0.1.1"), Port: 80, Weight: 2}})
			}},
		{name: "no scheduler is rr", in: "-A -t 10.0.0.1:80\n", notes: "0 ipvsadm",
			check: func(t *testing.T, c *config.Config) { want(t, "scheduler", one(t, c).Scheduler, "rr") }},
		{name: "schedulers", in: "-A -t 10.0.0.1:1 -s mh\n-A -t 10.0.0.1:2 -s mh -b mh-port\n-A -t 10.0.0.1:3 -s sed\n" +
			"-A -t 10.0.0.1:4 -s sh -b sh-port,sh-fallback,flag-3\n-A -t 10.0.0.1:5 -s wlc\n-A -t 10.0.0.1:6 -s lc\n",
			unmapped: "3 -s, 4 -b, 4 -b", notes: "1 -s, 4 -b, 5 -s, 0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				var got []string
				for _, s := range c.Services {
					got = append(got, s.Scheduler)
				}
				want(t, "schedulers", got, []string{"maglev", "maglev", "rr", "sh", "wlc", "lc"})
			}},
		{name: "direct routing", in: "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g\n-a -t 10.0.0.1:80 -r 10.0.1.2 --gatewaying\n",
			notes: "0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				forwarding(config.ForwardingDSRL2, 0)(t, c)
				want(t, "backends", one(t, c).Backends, []config.Backend{
					{Address: addr("10.0.1.1"), Port: 80, Weight: 1}, {Address: addr("10.0.1.2"), Port: 80, Weight: 1}})
			}},
		{name: "ipvsadm's default is direct routing", in: "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80\n",
			notes: "2 -a, 0 ipvsadm", check: forwarding(config.ForwardingDSRL2, 0)},
		{name: "direct routing to another port", in: "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -g\n",
			notes: "2 -r, 0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				want(t, "backends", one(t, c).Backends, []config.Backend{{Address: addr("10.0.1.1"), Port: 80, Weight: 1}})
			}},
		{name: "IPIP tunnelling", in: "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 --ipip --tun-type ipip\n",
			notes: "0 ipvsadm", check: forwarding(config.ForwardingDSRIPIP, 0)},
		{name: "GUE tunnelling", in: "-A -u 10.0.0.1:53\n-a -u 10.0.0.1:53 -r 10.0.1.1:53 -i --tun-type gue --tun-port 6081 --tun-nocsum -w 1\n",
			notes: "0 ipvsadm", check: forwarding(config.ForwardingDSRGUE, 6081)},
		{name: "GUE with checksums", in: "-A -u 10.0.0.1:53\n-a -u 10.0.0.1:53 -r 10.0.1.1:53 -i --tun-type gue --tun-port 6080 --tun-csum\n",
			notes: "2 -i, 0 ipvsadm", check: forwarding(config.ForwardingDSRGUE, 6080)},
		{name: "GUE without a port, and a port that is none",
			in:       "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gue\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -i --tun-type gue --tun-port x\n",
			unmapped: "2 -i, 3 --tun-port", notes: "0 ipvsadm", check: forwarding(config.ForwardingDSRGUE, 6080)},
		{name: "GUE services on two ports",
			in:       "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gue --tun-port 6080\n-A -t 10.0.0.1:81\n-a -t 10.0.0.1:81 -r 10.0.1.1:81 -i --tun-type gue --tun-port 7000\n",
			unmapped: "4 -i", notes: "0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				want(t, "gue_port", c.DSR.GUEPort, uint16(6080))
				want(t, "forwarding", c.Services[1].Forwarding, config.ForwardingDSRGUE)
			}},
		{name: "GRE tunnelling", in: "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -i --tun-type gre --tun-csum\n",
			unmapped: "2 -i", notes: "0 ipvsadm", check: forwarding(config.ForwardingFullNAT, 0)},
		{name: "real servers forwarded in different ways",
			in: "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -i --tun-type gue --tun-port 6080\n" +
				"-a -t 10.0.0.1:80 -r 10.0.1.3:80\n",
			unmapped: "3 -i", notes: "4 -a, 0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				forwarding(config.ForwardingDSRL2, 0)(t, c)
				want(t, "backends", len(one(t, c).Backends), 3)
			}},
		{name: "a masqueraded real server on another port in a direct-routing service",
			in:       "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -g\n-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m\n",
			unmapped: "3 -m, 1 services[0].backends[1].port", notes: "3 -m, 0 ipvsadm", refused: true},
		{name: "weights", in: "-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 0\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 99999\n" +
			"-a -t 10.0.0.1:80 -r 10.0.1.3:80 -m -w x\n",
			unmapped: "3 -w, 4 -w", notes: "2 -m, 0 ipvsadm", check: func(t *testing.T, c *config.Config) {
				var ws []uint32
				for _, b := range one(t, c).Backends {
					ws = append(ws, b.Weight)
				}
				want(t, "weights", ws, []uint32{0, 65535, 1})
			}},
		{name: "services that cannot be imported, and their backends",
			in: "-A -f 7 -s rr\n-A --sctp-service 10.0.0.1:9 -s rr\n-A -t [2001:db8::1]:80 -s rr\n-A -t 10.0.0.1:0 -s rr -p 300\n" +
				"-A -t 10.0.0.1 -s rr\n-a -t [2001:db8::1]:80 -r [2001:db8::2]:80 -m -w 1\n-a -f 7 -r 10.0.1.1:80 -m\n",
			unmapped: "1 -f, 2 --sctp-service, 3 -t, 4 -t, 5 -t, 6 -a, 7 -a", check: noServices},
		{name: "a backend before its service, twice, IPv6, unreadable",
			in: "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n" +
				"-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n-a -t 10.0.0.1:80 -r [2001:db8::2]:80 -m\n-a -t 10.0.0.1:80 -r nowhere -m\n" +
				"-a -t 10.0.0.1:80 -m\n",
			unmapped: "1 -a, 4 -r, 5 -r, 6 -r, 7 -a", notes: "3 -m, 0 ipvsadm",
			check: func(t *testing.T, c *config.Config) { want(t, "backends", len(one(t, c).Backends), 1) }},
		{name: "a service twice", in: "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s wrr\n", unmapped: "2 -A", notes: "0 ipvsadm",
			check: func(t *testing.T, c *config.Config) { want(t, "scheduler", one(t, c).Scheduler, "rr") }},
		{name: "options without an equivalent", in: "-A -t 10.0.0.1:80 -s rr -p 300 -M 255.255.255.0 --pe sip -o\n" +
			"-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -x 100 -y 10\n",
			unmapped: "1 --pe, 1 -o, 2 -x, 2 -y", notes: "2 -m, 0 ipvsadm",
			check: func(t *testing.T, c *config.Config) {
				want(t, "persistence netmask", one(t, c).PersistenceNetmask, uint8(24))
			}},
		{name: "a netmask that is not one", in: "-A -t 10.0.0.1:80 -p 300 -M 255.0.255.0\n", unmapped: "1 -M", notes: "0 ipvsadm"},
		{name: "other commands and options", in: "-C\n-D -t 10.0.0.1:80\n-A -t 10.0.0.1:80 --frobnicate\n-Z\n10.0.0.1\n-A -t\n",
			unmapped: "2 -D, 3 --frobnicate, 4 -Z, 5 10.0.0.1, 6 -t", notes: "0 ipvsadm"},
		{name: "timeouts", in: "--set 7200 0 60\n",
			check: func(t *testing.T, c *config.Config) {
				want(t, "timeouts", c.Conntrack.Timeouts, config.Timeouts{SynSent: 5 * time.Second, Established: 2 * time.Hour,
					FinWait: 120 * time.Second, Close: 10 * time.Second, UDP: time.Minute})
			}},
		{name: "timeouts mistakes", in: "--set 1 2\n--set a 2 3\n", unmapped: "1 --set, 2 --set"},
		{name: "what xdplb refuses is reported at the service", in: "-A -t 0.0.0.0:80\n", unmapped: "1 services[0].vip",
			notes: "0 ipvsadm", refused: true},
	})
}

// importRules imports ipvsadm rules given as text.
func importRules(t *testing.T, in string) *Result {
	t.Helper()
	res, err := Ipvsadm("rules", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestIpvsadmTooLarge(t *testing.T) {
	_, err := Ipvsadm("big", strings.NewReader(strings.Repeat("#", MaxBytes+1)))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("error %v", err)
	}
}
