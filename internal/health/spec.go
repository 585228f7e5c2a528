package health

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Check kinds, the values of Spec.Kind.
const (
	KindTCP   = "tcp"   // TCP connect
	KindHTTP  = "http"  // HTTP GET
	KindHTTPS = "https" // HTTPS GET
	KindUDP   = "udp"   // send a datagram, expect a reply
	KindExec  = "exec"  // run a command, exit code 0 = up
)

// Kinds lists every check kind, in the order error messages name them.
var Kinds = []string{KindTCP, KindHTTP, KindHTTPS, KindUDP, KindExec}

// Initial states, the values of Spec.Initial.
const (
	InitialUp   = "up"
	InitialDown = "down"
)

// Defaults. A dead backend is out of rotation within
//
//	fall*Interval + Timeout = 2*1s + 1s = 3s
//
// in the worst case: it dies just after a probe passed, the next probe
// starts one interval later and hangs for the whole timeout, and the
// probe after it (scheduled one interval after the previous one started,
// so as the previous one times out) fails the same way. A backend that
// refuses connections outright (the usual case when the process died but
// the host is up) is detected in about fall*Interval = 2s. Fall 2 rather
// than 1 keeps a single lost SYN or slow answer from pulling a healthy
// backend; rise 2 keeps a flapping one out until it has answered twice in
// a row.
const (
	DefaultInterval = time.Second
	DefaultTimeout  = time.Second
	DefaultRise     = 2
	DefaultFall     = 2
	DefaultInitial  = InitialUp
	DefaultPath     = "/"
)

// DefaultExpectStatus is what an HTTP(S) check accepts when
// Spec.ExpectStatus is empty: any success or redirect (redirects are
// not followed).
var DefaultExpectStatus = []StatusRange{{Min: 200, Max: 399}}

// Limits checked by Validate.
const (
	// MinInterval keeps a typo (1 meaning 1ns) from turning the checker
	// into a flood.
	MinInterval = 10 * time.Millisecond
	MinTimeout  = time.Millisecond
	// MaxPayload is the largest UDP payload that fits in one IPv4
	// datagram.
	MaxPayload = 65507
)

// Spec describes one health check. The zero value of every field means
// "use the default" (see Defaults), so a Spec can be validated before or
// after defaults are applied. Fields that only make sense for some kinds
// must be left empty for the others; Validate says so by name.
//
// Spec knows nothing of YAML; the yaml tags only fix the names that the
// config package and error messages use.
type Spec struct {
	// Kind is one of Kinds. Default: tcp.
	Kind string `yaml:"kind"`
	// Interval is the time between the starts of two probes of a target.
	// Default 1s.
	Interval time.Duration `yaml:"interval"`
	// Timeout bounds one probe: connect, TLS, request and answer, or the
	// whole run of a command. Default 1s.
	Timeout time.Duration `yaml:"timeout"`
	// Rise is the number of consecutive passed probes that bring a down
	// target up. Default 2.
	Rise int `yaml:"rise"`
	// Fall is the number of consecutive failed probes that take an up
	// target down. Default 2.
	Fall int `yaml:"fall"`
	// Initial is the state of a target before its first probes: "up" or
	// "down". Default "up", so that restarting the daemon or reloading
	// the config does not empty every pool until the checks have run
	// rise times; a backend that is really dead is taken out within the
	// usual detection time.
	Initial string `yaml:"initial"`

	// Path is the request path (and query) of an HTTP(S) check; it
	// starts with "/". Default "/".
	Path string `yaml:"path"`
	// Host, if set, is sent as the Host header of an HTTP(S) check (and
	// is the default SNI of an HTTPS check). The connection still goes
	// to the target's address.
	Host string `yaml:"host"`
	// ExpectStatus lists the status codes an HTTP(S) check accepts.
	// Default 200-399.
	ExpectStatus []StatusRange `yaml:"expect_status"`
	// Expect, if set, must occur in the response body (HTTP(S), first
	// MaxBody bytes) or in the reply datagram (UDP).
	Expect string `yaml:"expect"`
	// InsecureSkipVerify skips verification of the backend's
	// certificate in an HTTPS check. Default true: backends are
	// addressed by IP and usually carry certificates for names, or
	// self-signed ones. Set it to false (and usually SNI) to verify
	// against the system roots.
	InsecureSkipVerify *bool `yaml:"insecure_skip_verify"`
	// SNI is the TLS server name of an HTTPS check. Default: the host
	// part of Host if set, else none (the target is an IP address).
	SNI string `yaml:"sni"`

	// Payload is the datagram a UDP check sends (may be empty: an empty
	// datagram). Any reply from the target within the timeout passes,
	// subject to Expect.
	Payload string `yaml:"payload"`

	// Command is the program and arguments of an exec check, run
	// without a shell (use "/bin/sh", "-c", "..." for one). Exit code 0
	// passes. The program is an absolute path to an executable file
	// that only root (or the daemon's user) can change: Validate and
	// every run check it (see checkProgram). The environment is only
	// PATH=/usr/sbin:/usr/bin:/sbin:/bin, XDPLB_SERVICE,
	// XDPLB_BACKEND_ADDR and XDPLB_BACKEND_PORT, never the daemon's. At
	// the timeout the command's whole process group is killed.
	Command []string `yaml:"command"`
}

// MaxBody is how much of an HTTP(S) response body is searched for
// Spec.Expect.
const MaxBody = 1 << 20

// Defaults fills every unset field with its default. Kind-specific
// defaults (Path, ExpectStatus, InsecureSkipVerify) are only set for the
// kinds that use them, so a defaulted Spec still passes Validate.
func (s *Spec) Defaults() {
	if s.Kind == "" {
		s.Kind = KindTCP
	}
	if s.Interval == 0 {
		s.Interval = DefaultInterval
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	if s.Rise == 0 {
		s.Rise = DefaultRise
	}
	if s.Fall == 0 {
		s.Fall = DefaultFall
	}
	if s.Initial == "" {
		s.Initial = DefaultInitial
	}
	if s.Kind == KindHTTP || s.Kind == KindHTTPS {
		if s.Path == "" {
			s.Path = DefaultPath
		}
		if len(s.ExpectStatus) == 0 {
			s.ExpectStatus = append([]StatusRange(nil), DefaultExpectStatus...)
		}
	}
	if s.Kind == KindHTTPS && s.InsecureSkipVerify == nil {
		t := true
		s.InsecureSkipVerify = &t
	}
}

// clone returns a deep copy, so that a Monitor never shares slices or
// pointers with its caller.
func (s Spec) clone() Spec {
	c := s
	c.ExpectStatus = append([]StatusRange(nil), s.ExpectStatus...)
	c.Command = append([]string(nil), s.Command...)
	if s.InsecureSkipVerify != nil {
		v := *s.InsecureSkipVerify
		c.InsecureSkipVerify = &v
	}
	return c
}

// FieldError is one problem with one field of a Spec. Field is the
// field's yaml name, with an index for list elements
// ("expect_status[1]"), so the config package can prefix its own path.
type FieldError struct {
	Field string
	Msg   string
}

// Error reads like `health.kind: "icmp" is not a check kind (tcp, http,
// https, udp, exec)`.
func (e *FieldError) Error() string {
	return "health." + e.Field + ": " + e.Msg
}

// Validate checks s and returns nil or every problem found, joined with
// errors.Join; each joined error is a *FieldError (use errors.As, or
// Unwrap() []error to get them all). Zero values are accepted as
// "default". The program of an exec check is looked at on disk (it
// must exist, and only root may be able to change it).
func (s Spec) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	kinds := strings.Join(Kinds, ", ")

	kind := s.Kind
	if kind == "" {
		kind = KindTCP
	}
	known := false
	for _, k := range Kinds {
		known = known || k == kind
	}
	if !known {
		add("kind", "%q is not a check kind (%s)", s.Kind, kinds)
	}

	switch {
	case s.Interval < 0:
		add("interval", "%v is negative", s.Interval)
	case s.Interval > 0 && s.Interval < MinInterval:
		add("interval", "%v is too short (at least %v)", s.Interval, MinInterval)
	}
	switch {
	case s.Timeout < 0:
		add("timeout", "%v is negative", s.Timeout)
	case s.Timeout > 0 && s.Timeout < MinTimeout:
		add("timeout", "%v is too short (at least %v)", s.Timeout, MinTimeout)
	}
	if s.Rise < 0 {
		add("rise", "%d is not a count of checks (at least 1)", s.Rise)
	}
	if s.Fall < 0 {
		add("fall", "%d is not a count of checks (at least 1)", s.Fall)
	}
	switch s.Initial {
	case "", InitialUp, InitialDown:
	default:
		add("initial", "%q is not a state (up, down)", s.Initial)
	}

	if !known {
		// The kind-specific rules below would only add noise.
		return errors.Join(errs...)
	}
	isHTTP := kind == KindHTTP || kind == KindHTTPS
	only := func(field string, set bool, ok bool, which string) {
		if set && !ok {
			add(field, "only for %s checks, not %s", which, kind)
		}
	}
	only("path", s.Path != "", isHTTP, "http and https")
	only("host", s.Host != "", isHTTP, "http and https")
	only("expect_status", len(s.ExpectStatus) > 0, isHTTP, "http and https")
	only("expect", s.Expect != "", isHTTP || kind == KindUDP, "http, https and udp")
	only("insecure_skip_verify", s.InsecureSkipVerify != nil, kind == KindHTTPS, "https")
	only("sni", s.SNI != "", kind == KindHTTPS, "https")
	only("payload", s.Payload != "", kind == KindUDP, "udp")
	only("command", len(s.Command) > 0, kind == KindExec, "exec")

	if isHTTP && s.Path != "" {
		if !strings.HasPrefix(s.Path, "/") {
			add("path", "%q does not start with /", s.Path)
		} else if _, err := url.ParseRequestURI(s.Path); err != nil || strings.ContainsAny(s.Path, " \t\r\n#") {
			add("path", "%q is not a request path", s.Path)
		}
	}
	if isHTTP && s.Host != "" && (strings.ContainsAny(s.Host, " \t\r\n/?#@") || hasControl(s.Host)) {
		add("host", "%q is not a host name (with optional :port)", s.Host)
	}
	if isHTTP {
		for i, r := range s.ExpectStatus {
			if err := r.check(); err != nil {
				add(fmt.Sprintf("expect_status[%d]", i), "%v", err)
			}
		}
	}
	if kind == KindHTTPS && s.SNI != "" && (strings.ContainsAny(s.SNI, " \t\r\n/:?#@") || hasControl(s.SNI)) {
		add("sni", "%q is not a server name", s.SNI)
	}
	if kind == KindUDP && len(s.Payload) > MaxPayload {
		add("payload", "%d bytes is too long for a datagram (at most %d)", len(s.Payload), MaxPayload)
	}
	if kind == KindExec {
		switch {
		case len(s.Command) == 0:
			add("command", "required for exec checks (program and arguments)")
		case s.Command[0] == "":
			add("command[0]", "the program name is empty")
		default:
			if err := checkProgram(s.Command[0]); err != nil {
				add("command[0]", "%v", err)
			}
		}
	}
	return errors.Join(errs...)
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// StatusRange is an inclusive range of HTTP status codes; Min == Max for
// a single code.
type StatusRange struct {
	Min int `yaml:"min"`
	Max int `yaml:"max"`
}

// ParseStatusRange parses "200" or "200-399".
func ParseStatusRange(s string) (StatusRange, error) {
	bad := fmt.Errorf("%q is not a status code or range (like 200 or 200-399)", s)
	first, last, isRange := strings.Cut(strings.TrimSpace(s), "-")
	lo, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil {
		return StatusRange{}, bad
	}
	hi := lo
	if isRange {
		if hi, err = strconv.Atoi(strings.TrimSpace(last)); err != nil {
			return StatusRange{}, bad
		}
	}
	r := StatusRange{Min: lo, Max: hi}
	if err := r.check(); err != nil {
		return StatusRange{}, err
	}
	return r, nil
}

func (r StatusRange) check() error {
	switch {
	case r.Min < 100 || r.Min > 599 || r.Max < 100 || r.Max > 599:
		return fmt.Errorf("%s is not a status code or range within 100-599", r)
	case r.Min > r.Max:
		return fmt.Errorf("%s is an empty range (%d > %d)", r, r.Min, r.Max)
	}
	return nil
}

// Contains reports whether code is in the range.
func (r StatusRange) Contains(code int) bool { return code >= r.Min && code <= r.Max }

// String returns "200" or "200-399".
func (r StatusRange) String() string {
	if r.Min == r.Max {
		return strconv.Itoa(r.Min)
	}
	return strconv.Itoa(r.Min) + "-" + strconv.Itoa(r.Max)
}
