package health

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	var s Spec
	s.Defaults()
	if s.Kind != KindTCP || s.Interval != time.Second || s.Timeout != time.Second ||
		s.Rise != 2 || s.Fall != 2 || s.Initial != InitialUp {
		t.Errorf("defaulted zero Spec = %+v", s)
	}
	if s.Path != "" || s.ExpectStatus != nil || s.InsecureSkipVerify != nil {
		t.Errorf("tcp Spec got http defaults: %+v", s)
	}
	if err := s.Validate(); err != nil {
		t.Errorf("defaulted Spec does not validate: %v", err)
	}
	// The documented worst-case detection time.
	if d := time.Duration(s.Fall)*s.Interval + s.Timeout; d > 3*time.Second {
		t.Errorf("worst-case detection %v, want <= 3s", d)
	}

	h := Spec{Kind: KindHTTPS}
	h.Defaults()
	if h.Path != "/" || len(h.ExpectStatus) != 1 || h.ExpectStatus[0] != (StatusRange{200, 399}) ||
		h.InsecureSkipVerify == nil || !*h.InsecureSkipVerify {
		t.Errorf("defaulted https Spec = %+v", h)
	}
	if err := h.Validate(); err != nil {
		t.Errorf("defaulted https Spec does not validate: %v", err)
	}
	// Defaults must not share the package's slice.
	h.ExpectStatus[0].Min = 100
	if DefaultExpectStatus[0].Min != 200 {
		t.Error("Defaults aliased DefaultExpectStatus")
	}

	set := Spec{Kind: KindHTTP, Interval: 5 * time.Second, Rise: 3, Path: "/healthz"}
	set.Defaults()
	if set.Interval != 5*time.Second || set.Rise != 3 || set.Path != "/healthz" {
		t.Errorf("Defaults overwrote set fields: %+v", set)
	}
}

func TestValidate(t *testing.T) {
	no := false
	for _, tc := range []struct {
		name string
		spec Spec
		want []string // each a whole error line
	}{
		{"zero", Spec{}, nil},
		{"http full", Spec{Kind: "http", Path: "/health?x=1", Host: "example.com:8080", Expect: "OK",
			ExpectStatus: []StatusRange{{200, 200}, {301, 302}}}, nil},
		{"https", Spec{Kind: "https", SNI: "example.com", InsecureSkipVerify: &no}, nil},
		{"udp", Spec{Kind: "udp", Payload: "ping", Expect: "pong"}, nil},
		{"exec", Spec{Kind: "exec", Command: []string{"/bin/true"}}, nil},
		{"unknown kind", Spec{Kind: "icmp", Path: "/"},
			[]string{`health.kind: "icmp" is not a check kind (tcp, http, https, udp, exec)`}},
		{"timing", Spec{Interval: -time.Second, Timeout: time.Microsecond, Rise: -1, Fall: -2, Initial: "maybe"},
			[]string{
				"health.interval: -1s is negative",
				"health.timeout: 1µs is too short (at least 1ms)",
				"health.rise: -1 is not a count of checks (at least 1)",
				"health.fall: -2 is not a count of checks (at least 1)",
				`health.initial: "maybe" is not a state (up, down)`,
			}},
		{"short interval", Spec{Interval: time.Millisecond},
			[]string{"health.interval: 1ms is too short (at least 10ms)"}},
		{"fields of other kinds", Spec{Kind: "tcp", Path: "/", Host: "h", Expect: "x", SNI: "s", InsecureSkipVerify: &no,
			Payload: "p", Command: []string{"x"}, ExpectStatus: []StatusRange{{200, 200}}},
			[]string{
				"health.path: only for http and https checks, not tcp",
				"health.host: only for http and https checks, not tcp",
				"health.expect_status: only for http and https checks, not tcp",
				"health.expect: only for http, https and udp checks, not tcp",
				"health.insecure_skip_verify: only for https checks, not tcp",
				"health.sni: only for https checks, not tcp",
				"health.payload: only for udp checks, not tcp",
				"health.command: only for exec checks, not tcp",
			}},
		{"sni on http", Spec{Kind: "http", SNI: "x"}, []string{"health.sni: only for https checks, not http"}},
		{"bad path", Spec{Kind: "http", Path: "health"}, []string{`health.path: "health" does not start with /`}},
		{"path with space", Spec{Kind: "http", Path: "/a b"}, []string{`health.path: "/a b" is not a request path`}},
		{"bad host", Spec{Kind: "https", Host: "a/b"}, []string{`health.host: "a/b" is not a host name (with optional :port)`}},
		// What a check's messages show must fit on one line of a log.
		{"control characters", Spec{Kind: "https", Path: "/a\x01b", Host: "a\x7fb", SNI: "a\x1bb"},
			[]string{
				`health.path: "/a\x01b" is not a request path`,
				`health.host: "a\x7fb" is not a host name (with optional :port)`,
				`health.sni: "a\x1bb" is not a server name`,
			}},
		{"bad status", Spec{Kind: "http", ExpectStatus: []StatusRange{{200, 299}, {99, 200}, {400, 300}}},
			[]string{
				"health.expect_status[1]: 99-200 is not a status code or range within 100-599",
				"health.expect_status[2]: 400-300 is an empty range (400 > 300)",
			}},
		{"big payload", Spec{Kind: "udp", Payload: strings.Repeat("x", 70000)},
			[]string{"health.payload: 70000 bytes is too long for a datagram (at most 65507)"}},
		{"exec without command", Spec{Kind: "exec"}, []string{"health.command: required for exec checks (program and arguments)"}},
		{"exec empty program", Spec{Kind: "exec", Command: []string{""}}, []string{"health.command[0]: the program name is empty"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			if tc.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tc.want)
			}
			if got := strings.Split(err.Error(), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Validate() =\n%s\nwant\n%s", err, strings.Join(tc.want, "\n"))
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" {
				t.Errorf("error %v holds no *FieldError", err)
			}
			if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != len(tc.want) {
				t.Errorf("%d joined errors, want %d", n, len(tc.want))
			}
		})
	}
}

func TestParseStatusRange(t *testing.T) {
	for in, want := range map[string]StatusRange{
		"200":        {200, 200},
		"200-399":    {200, 399},
		" 301 - 302": {301, 302},
	} {
		got, err := ParseStatusRange(in)
		if err != nil || got != want {
			t.Errorf("ParseStatusRange(%q) = %v, %v; want %v", in, got, err, want)
		}
		if again, _ := ParseStatusRange(got.String()); again != got {
			t.Errorf("String() of %v does not parse back", got)
		}
	}
	for _, in := range []string{"", "2xx", "200-", "-200", "600", "399-200", "200-399-500"} {
		if r, err := ParseStatusRange(in); err == nil {
			t.Errorf("ParseStatusRange(%q) = %v, want an error", in, r)
		}
	}
}
