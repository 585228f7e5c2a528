package importer

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/xdplb/xdplb/internal/health"
)

// checkKinds maps the keepalived checkers xdplb has an equivalent of.
var checkKinds = map[string]string{
	"TCP_CHECK":  health.KindTCP,
	"HTTP_GET":   health.KindHTTP,
	"SSL_GET":    health.KindHTTPS,
	"MISC_CHECK": health.KindExec,
	"UDP_CHECK":  health.KindUDP,
}

// otherChecks explains the checkers xdplb has no equivalent of.
var otherChecks = map[string]string{
	"SMTP_CHECK": "xdplb has no SMTP check (a tcp check, or an exec check running a probe, comes closest); the backend is not checked",
	"DNS_CHECK":  "xdplb has no DNS check (a udp check with a query as payload, or an exec check, comes closest); the backend is not checked",
	"PING_CHECK": "xdplb has no ping check; the backend is not checked",
	"BFD_CHECK":  "xdplb does not run BFD; the backend is not checked",
	"FILE_CHECK": "xdplb does not take backend states from files; the backend is not checked",
}

// checkWhy explains checker keywords xdplb has no equivalent of.
var checkWhy = map[string]string{
	"bindto":           "xdplb's checks leave from the host's own stack: the kernel picks the source address",
	"bind_if":          "xdplb's checks leave from the host's own stack: the kernel picks the interface",
	"bind_port":        "xdplb's checks leave from the host's own stack: the kernel picks the source port",
	"fwmark":           "xdplb does not mark its check packets",
	"digest":           "xdplb cannot compare an MD5 digest of the body: the check tests the status code only (expect can require a string in the body)",
	"regex":            "xdplb's expect is a plain string the body must contain, not a regular expression",
	"regex_no_match":   "xdplb's expect is a plain string the body must contain",
	"regex_options":    "xdplb's expect is a plain string the body must contain",
	"regex_stack":      "xdplb's expect is a plain string the body must contain",
	"regex_min_offset": "xdplb searches the first 1 MiB of the body",
	"regex_max_offset": "xdplb searches the first 1 MiB of the body",
	"misc_dynamic": "xdplb does not take weights from a check's exit status: 0 passes, anything else fails " +
		"(keepalived also passes 2-255)",
	"user":             "xdplb runs exec checks as root, with a minimal environment",
	"min_reply_length": "xdplb does not check the reply's length",
	"max_reply_length": "xdplb does not check the reply's length",
	"helo_name":        "xdplb has no SMTP check",
}

// checkNote explains checker keywords that are carried over with a
// difference, or need nothing.
var checkNote = map[string]string{
	"http_protocol":    "xdplb sends HTTP/1.1 requests",
	"log_all_failures": "xdplb logs a backend's changes of state, not every failed probe",
	"tls_compliant":    "xdplb's TLS client ends connections its own way",
}

// check maps one checker of a backend at addr:backendPort, with the options d
// the real server gives it. It returns nil if nothing usable is left.
func (m *kaMapper) check(n *Node, d settings, addr netip.Addr, backendPort uint16) *health.Spec {
	spec := &health.Spec{Kind: checkKinds[n.Key]}
	isHTTP := spec.Kind == health.KindHTTP || spec.Kind == health.KindHTTPS
	var urls []*Node
	var miscTimeout *Node
	hasReply := false
	ok := true
	for _, c := range n.Children {
		if m.setting(c, &d) {
			continue
		}
		switch k := c.Key; {
		case k == "connect_ip":
			if a, err := netip.ParseAddr(strings.Join(c.Args, " ")); err != nil || a.Unmap() != addr {
				m.unmapped(c.Pos, k, "xdplb checks the backend's own address (%s); the check was kept on it", addr)
			}
		case k == "connect_port":
			if p, err := port(strings.Join(c.Args, " ")); err != nil || p != backendPort {
				m.unmapped(c.Pos, k, "xdplb checks the backend's port (%d); the check was kept on it", backendPort)
			}
		case isHTTP && k == "url":
			urls = append(urls, c)
		case k == "enable_sni" && spec.Kind == health.KindHTTPS:
			// xdplb sends the host as SNI whenever there is one.
		case k == "sni_name" && spec.Kind == health.KindHTTPS:
			if m.nargs(c, 1, 1) {
				spec.SNI = c.Args[0]
			}
		case k == "fast_recovery" && isHTTP:
			// One URL, rise 1: the backend is up after one pass anyway.
		case k == "misc_path" && spec.Kind == health.KindExec:
			ok = m.command(c, spec) && ok
		case k == "misc_timeout" && spec.Kind == health.KindExec:
			miscTimeout = c
		case k == "payload" && spec.Kind == health.KindUDP:
			if text, err := hexText(c.Args, false); err != nil {
				m.unmapped(c.Pos, k, "%v; the check sends an empty datagram", err)
			} else {
				spec.Payload = text
			}
		case k == "require_reply" && spec.Kind == health.KindUDP:
			hasReply = true
			if len(c.Args) == 0 {
				continue
			}
			if text, err := hexText(c.Args, true); err != nil {
				m.unmapped(c.Pos, k, "%v; any reply passes", err)
			} else {
				spec.Expect = text
				m.note(c.Pos, k, "xdplb passes a reply that contains these bytes anywhere; keepalived compares the reply's start")
			}
		case checkWhy[k] != "":
			m.unmapped(c.Pos, k, "%s", checkWhy[k])
		case checkNote[k] != "":
			m.note(c.Pos, k, "%s", checkNote[k])
		default:
			m.unknown(c, "in "+n.Key)
		}
	}
	if spec.Kind == health.KindExec && spec.Command == nil {
		if ok {
			m.unmapped(n.Pos, n.Key, "has no misc_path; the backend is not checked")
		}
		return nil
	}
	if spec.Kind == health.KindUDP && !hasReply {
		m.unmapped(n.Pos, n.Key, "without require_reply keepalived passes unless an ICMP error comes back, "+
			"but xdplb's udp check needs a reply from the backend; the check was kept: make sure the backend answers")
	}
	if isHTTP {
		m.url(n, urls, spec, d.host)
	}
	spec.Interval, spec.Timeout = kaDelayLoop, kaConnectTimeout
	if d.interval > 0 {
		spec.Interval = d.interval
	}
	if d.timeout > 0 {
		spec.Timeout = d.timeout
	}
	retry := d.retry
	if spec.Kind == health.KindExec {
		// misc_timeout, or keepalived's default: the interval.
		spec.Timeout = spec.Interval
		if miscTimeout != nil && m.nargs(miscTimeout, 1, 1) {
			if t, err := timer(miscTimeout.Args[0]); err != nil || t < health.MinTimeout {
				m.unmapped(miscTimeout.Pos, miscTimeout.Key, "%q is not a timeout in seconds; the interval is used", miscTimeout.Args[0])
			} else {
				spec.Timeout = t
			}
		}
		if retry < 0 {
			retry = 0
		}
		m.note(n.Pos, n.Key, "xdplb runs the program as root, without a shell, and only if it and its directories "+
			"are root's and writable by no one else")
	}
	if retry < 0 {
		retry = 1
	}
	if retry > 99 {
		m.unmapped(n.Pos, n.Key, "retry %d is more than xdplb allows (fall at most 100); fall 100 is used", retry)
		retry = 99
	}
	// keepalived marks a backend up after one success and down after
	// the first failure and retry more.
	spec.Rise, spec.Fall = 1, retry+1
	if d.alpha {
		spec.Initial = health.InitialDown
	}
	return spec
}

// url maps the url blocks of an HTTP_GET or SSL_GET check: xdplb checks
// one path; keepalived's default status is 200-299.
func (m *kaMapper) url(n *Node, urls []*Node, spec *health.Spec, host string) {
	spec.Host = host
	spec.ExpectStatus = []health.StatusRange{{Min: 200, Max: 299}}
	if len(urls) == 0 {
		m.note(n.Pos, n.Key, "has no url block; xdplb checks the path /")
		return
	}
	for _, extra := range urls[1:] {
		m.unmapped(extra.Pos, extra.Key, "xdplb checks one URL per backend; the url at %s is kept", urls[0].Pos)
	}
	var codes []health.StatusRange
	for _, c := range urls[0].Children {
		switch c.Key {
		case "path":
			if !m.nargs(c, 1, 1) {
				continue
			}
			if !strings.HasPrefix(c.Args[0], "/") {
				m.unmapped(c.Pos, c.Key, "%q does not start with /; xdplb checks the path /", c.Args[0])
				continue
			}
			spec.Path = c.Args[0]
		case "status_code":
			if !m.nargs(c, 1, 100) {
				continue
			}
			for _, a := range c.Args {
				r, err := health.ParseStatusRange(a)
				if err != nil {
					m.unmapped(c.Pos, c.Key, "%v; not imported", err)
					continue
				}
				codes = append(codes, r)
			}
		case "virtualhost":
			if m.nargs(c, 1, 1) {
				spec.Host = c.Args[0]
			}
		default:
			switch {
			case checkWhy[c.Key] != "":
				m.unmapped(c.Pos, c.Key, "%s", checkWhy[c.Key])
			case checkNote[c.Key] != "":
				m.note(c.Pos, c.Key, "%s", checkNote[c.Key])
			default:
				m.unknown(c, "in url")
			}
		}
	}
	if len(codes) > 0 {
		spec.ExpectStatus = codes
	}
}

// command maps misc_path to an exec check's command: split as a shell
// would split plain words and quotes, kept only if it needs no shell and
// names its program by absolute path.
func (m *kaMapper) command(n *Node, spec *health.Spec) bool {
	if len(n.Args) == 0 {
		m.unmapped(n.Pos, n.Key, "names no program; the backend is not checked")
		return false
	}
	args, err := splitCommand(strings.Join(n.Args, " "))
	switch {
	case err != nil:
		m.unmapped(n.Pos, n.Key, "%v; the backend is not checked", err)
		return false
	case len(args) == 0:
		m.unmapped(n.Pos, n.Key, "names no program; the backend is not checked")
		return false
	case !filepath.IsAbs(args[0]):
		m.unmapped(n.Pos, n.Key, "%q is not an absolute path: xdplb runs checks without a shell or PATH lookup; "+
			"the backend is not checked", args[0])
		return false
	}
	spec.Command = args
	return true
}

// splitCommand splits a command line into words: whitespace separates,
// '...' and "..." group, a backslash outside single quotes escapes the
// next character. A character only a shell gives meaning to (a pipe, a
// redirection, a variable, a glob) outside quotes is an error: xdplb runs
// no shell.
func splitCommand(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case c == '\'' || c == '"':
			end := strings.IndexByte(s[i+1:], c)
			if end < 0 {
				return nil, fmt.Errorf("the %c quote in %q is not closed", c, s)
			}
			part := s[i+1 : i+1+end]
			if c == '"' && strings.ContainsAny(part, "$`\\") {
				return nil, fmt.Errorf("%q needs a shell to expand it; run it with command: [/bin/sh, -c, ...] if that is safe", s)
			}
			w.WriteString(part)
			inWord = true
			i += end + 1
		case c == '\\' && i+1 < len(s):
			w.WriteByte(s[i+1])
			inWord = true
			i++
		case strings.IndexByte("|&;<>()$`*?[]~{}\n", c) >= 0:
			return nil, fmt.Errorf("%q needs a shell (%q); run it with command: [/bin/sh, -c, ...] if that is safe", s, c)
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, nil
}

// hexText decodes a keepalived <HEX_STR>: groups of hex digits separated
// by spaces, read two digits to a byte, an odd last digit a byte of its
// own (Ab12f 3 is AB 12 0F 03). The bytes must be UTF-8 text: xdplb's
// payload and expect are strings. An X digit (any value, in
// require_reply) cannot be carried over.
func hexText(groups []string, reply bool) (string, error) {
	var out []byte
	for _, g := range groups {
		if reply && strings.ContainsAny(g, "xX") {
			return "", fmt.Errorf("x digits (any value) cannot be carried over: xdplb compares text")
		}
		if len(g)%2 == 1 {
			g = g[:len(g)-1] + "0" + g[len(g)-1:]
		}
		b, err := hex.DecodeString(g)
		if err != nil {
			return "", fmt.Errorf("%q is not hexadecimal", strings.Join(groups, " "))
		}
		out = append(out, b...)
	}
	if !utf8.Valid(out) {
		return "", fmt.Errorf("the bytes %x are not text: xdplb's udp payload and expect are strings", out)
	}
	return string(out), nil
}
