package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/atomicfile"
	"github.com/xdplb/xdplb/internal/health"
	"github.com/xdplb/xdplb/internal/ident"
)

// Clone returns a deep copy, so a change can be tried on it without
// touching the original.
func (c *Config) Clone() *Config {
	out := *c
	out.Interfaces = slices.Clone(c.Interfaces)
	out.Local.Addresses = slices.Clone(c.Local.Addresses)
	out.Sync.Peers = slices.Clone(c.Sync.Peers)
	out.DSR.DecapSources = slices.Clone(c.DSR.DecapSources)
	out.Services = make([]Service, len(c.Services))
	for i, s := range c.Services {
		s.Backends = slices.Clone(s.Backends)
		out.Services[i] = s
	}
	return &out
}

// SaveServices replaces the services section of the YAML file at path with
// services and leaves the rest of the file (comments included) as it was.
// A service that did not change keeps its text as the operator wrote it;
// a changed or new one is written with only the fields that differ from
// their defaults, so the file does not fill up with them. The file is
// replaced atomically; SaveServices returns the digest of what it wrote.
// expect is the digest of the file as the caller last read or wrote it:
// if the file is anything else when it is read, or when it is about to be
// replaced, nothing is written and the error is ErrFileChanged.
func SaveServices(path string, services []Service, expect [sha256.Size]byte) ([sha256.Size]byte, error) {
	var digest [sha256.Size]byte
	data, err := readFile(path)
	if err != nil {
		return digest, fmt.Errorf("save services: %w", err)
	}
	unchanged := func() error {
		if now, err := Digest(path); err != nil {
			return err
		} else if now != expect {
			return ErrFileChanged
		}
		return nil
	}
	if sha256.Sum256(data) != expect {
		return digest, ErrFileChanged
	}
	out, err := rewriteServices(data, services, false)
	if err != nil {
		// Anchors and aliases in the services section may not survive a
		// partial rewrite (an anchor on a value that changed): try again
		// with the aliases there written out.
		var again error
		if out, again = rewriteServices(data, services, true); again != nil {
			return digest, fmt.Errorf("save services: %s cannot take this change without breaking (%v); "+
				"nothing was written: edit the file by hand and reload", path, err)
		}
	}
	if err := atomicfile.WriteIf(path, out, 0o600, unchanged); err != nil {
		if errors.Is(err, ErrFileChanged) {
			return digest, ErrFileChanged
		}
		return digest, fmt.Errorf("save services: %w", err)
	}
	return sha256.Sum256(out), nil
}

// ErrFileChanged is returned by SaveServices when the file is no longer
// what the caller last read or wrote: saving would overwrite an edit.
var ErrFileChanged = errors.New("the configuration file was edited since it was last loaded, " +
	"and saving this change would overwrite that edit; run `xdplb reload` first, then repeat the change")

// rewriteServices returns the document data with its services section
// made services, optionally with the aliases in that section expanded
// first. The result is parsed again and must read back as services
// exactly: a write-back never leaves a file that does not load, or loads
// as something else.
func rewriteServices(data []byte, services []Service, expand bool) ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a YAML mapping")
	}
	root := doc.Content[0]
	replaced := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "services" {
			if expand {
				expandAliases(root.Content[i+1])
			}
			root.Content[i+1] = servicesNode(services, unchangedNodes(root.Content[i+1]))
			replaced = true
		}
	}
	if !replaced {
		root.Content = append(root.Content, scalar("services"), servicesNode(services, nil))
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, err
	}
	back, err := Parse(buf.Bytes())
	if err != nil {
		return nil, err
	}
	if !sameServices(back.Services, services) {
		return nil, fmt.Errorf("the rewritten file reads back as other services")
	}
	return buf.Bytes(), nil
}

// sameServices compares services by their rendering, which is the same
// for equal services whether a list is empty or absent.
func sameServices(a, b []Service) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !sameYAML(serviceNode(a[i]), serviceNode(b[i])) {
			return false
		}
	}
	return true
}

// expandAliases replaces every alias under n by a copy of what it stands
// for, so no value there depends on an anchor elsewhere.
func expandAliases(n *yaml.Node) {
	for i, c := range n.Content {
		if c.Kind == yaml.AliasNode && c.Alias != nil {
			cp := deepCopy(c.Alias)
			cp.Anchor = ""
			n.Content[i] = cp
		}
		expandAliases(n.Content[i])
	}
}

func deepCopy(n *yaml.Node) *yaml.Node {
	cp := *n
	cp.Content = make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		cp.Content[i] = deepCopy(c)
	}
	return &cp
}

// keptNode is a service as the file has it: its node and what it decodes
// to.
type keptNode struct {
	svc  Service
	node *yaml.Node
}

// unchangedNodes decodes the services the file has, by key, so a service
// that did not change can keep its node.
func unchangedNodes(list *yaml.Node) map[ident.Service]keptNode {
	out := map[ident.Service]keptNode{}
	if list.Kind != yaml.SequenceNode {
		return out
	}
	for _, n := range list.Content {
		d := &decoder{}
		c := Config{Services: []Service{defaultService()}}
		d.service(n, "", &c.Services[0])
		if d.err() != nil {
			continue
		}
		c.applyDerivedDefaults()
		out[c.Services[0].Key()] = keptNode{c.Services[0], n}
	}
	return out
}

// servicesNode renders services in the file's own schema (the one Parse
// reads): the node a service had if it is unchanged, else its fields that
// are not defaults.
func servicesNode(services []Service, kept map[ident.Service]keptNode) *yaml.Node {
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range services {
		k, ok := kept[s.Key()]
		switch {
		case ok && reflect.DeepEqual(k.svc, s):
			list.Content = append(list.Content, k.node)
		case ok:
			backends := func(orig *yaml.Node) *yaml.Node { return mergeBackends(orig, k.svc, s) }
			list.Content = append(list.Content, merge(k.node, serviceNode(k.svc), serviceNode(s), backends))
		default:
			list.Content = append(list.Content, serviceNode(s))
		}
	}
	return list
}

// mergeBackends returns the operator's backends list orig, edited from
// old's backends to now's: a backend that did not change keeps its text,
// a changed one is merged field by field, a new one is rendered.
func mergeBackends(orig *yaml.Node, old, now Service) *yaml.Node {
	if orig.Kind != yaml.SequenceNode || len(orig.Content) != len(old.Backends) {
		return serviceBackendsNode(now)
	}
	at := make(map[netip.AddrPort]int, len(old.Backends))
	for i, b := range old.Backends {
		at[b.AddrPort()] = i
	}
	out := *orig // its comments and style
	out.Content = nil
	for _, b := range now.Backends {
		i, ok := at[b.AddrPort()]
		switch {
		case ok && reflect.DeepEqual(old.Backends[i], b):
			out.Content = append(out.Content, orig.Content[i])
		case ok && orig.Content[i].Kind == yaml.MappingNode:
			out.Content = append(out.Content, merge(orig.Content[i], backendNode(old.Backends[i], old.Port), backendNode(b, now.Port), nil))
		default:
			out.Content = append(out.Content, backendNode(b, now.Port))
		}
	}
	return &out
}

// merge returns the operator's mapping orig, edited from what was
// rendered as was to what is rendered as now: a field whose rendering did
// not change keeps its text and comments, a changed one gets its new
// value under the old key, one that went back to its default goes, and
// new ones are appended. A field the operator spelled out with its default
// value stays as written.
func merge(orig, was, now *yaml.Node, backends func(orig *yaml.Node) *yaml.Node) *yaml.Node {
	out := *orig // its comments and style
	out.Content = nil
	added := map[string]bool{}
	for i := 0; i+1 < len(orig.Content); i += 2 {
		key, origV := orig.Content[i], orig.Content[i+1]
		nowV, inNow := valueOf(now, key.Value)
		wasV, inWas := valueOf(was, key.Value)
		switch {
		case inNow && inWas && sameYAML(nowV, wasV):
			out.Content = append(out.Content, key, origV)
		case inNow && inWas && key.Value == "backends" && backends != nil:
			out.Content = append(out.Content, key, backends(origV))
		case inNow && inWas && origV.Kind == yaml.MappingNode && nowV.Kind == yaml.MappingNode:
			out.Content = append(out.Content, key, merge(origV, wasV, nowV, nil))
		case inNow:
			out.Content = append(out.Content, key, nowV)
		case !inWas:
			out.Content = append(out.Content, key, origV)
		}
		added[key.Value] = true
	}
	for i := 0; i+1 < len(now.Content); i += 2 {
		if !added[now.Content[i].Value] {
			out.Content = append(out.Content, now.Content[i], now.Content[i+1])
		}
	}
	return &out
}

// valueOf returns the value of key in mapping m.
func valueOf(m *yaml.Node, key string) (*yaml.Node, bool) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1], true
		}
	}
	return nil, false
}

// sameYAML compares two rendered values: rendering is deterministic, so
// equal values have equal trees.
func sameYAML(a, b *yaml.Node) bool {
	if a.Kind != b.Kind || a.Tag != b.Tag || a.Value != b.Value || len(a.Content) != len(b.Content) {
		return false
	}
	for i := range a.Content {
		if !sameYAML(a.Content[i], b.Content[i]) {
			return false
		}
	}
	return true
}

// serviceNode renders s with the fields that are not defaults.
func serviceNode(s Service) *yaml.Node {
	def := defaultService()
	m := mapping()
	if s.Name != s.Key().String() {
		m.Content = append(m.Content, scalar("name"), scalar(s.Name))
	}
	m.Content = append(m.Content,
		scalar("vip"), scalar(s.VIP.String()),
		scalar("port"), scalar(strconv.Itoa(int(s.Port))))
	if s.Protocol != def.Protocol {
		m.Content = append(m.Content, scalar("protocol"), scalar(s.Protocol.String()))
	}
	if s.Scheduler != def.Scheduler {
		m.Content = append(m.Content, scalar("scheduler"), scalar(s.Scheduler))
	}
	if s.Forwarding != "" && s.Forwarding != def.Forwarding {
		m.Content = append(m.Content, scalar("forwarding"), scalar(s.Forwarding))
	}
	if s.Persistence > 0 {
		m.Content = append(m.Content, scalar("persistence"), scalar(s.Persistence.String()))
	}
	if s.PersistenceNetmask != 0 {
		m.Content = append(m.Content, scalar("persistence_netmask"), scalar(strconv.Itoa(int(s.PersistenceNetmask))))
	}
	if s.HealthCheck != nil {
		m.Content = append(m.Content, scalar("health_check"), healthNode(s.HealthCheck))
	}
	if s.OnBackendDown != def.OnBackendDown {
		m.Content = append(m.Content, scalar("on_backend_down"), scalar(s.OnBackendDown))
	}
	if s.ClientAddress != "" && s.ClientAddress != def.ClientAddress {
		m.Content = append(m.Content, scalar("client_address"), scalar(s.ClientAddress))
	}
	if s.Fallback != nil {
		m.Content = append(m.Content, scalar("fallback"), backendNode(*s.Fallback, s.Port))
	}
	m.Content = append(m.Content, scalar("backends"), serviceBackendsNode(s))
	return m
}

// serviceBackendsNode renders the backends of s.
func serviceBackendsNode(s Service) *yaml.Node {
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, b := range s.Backends {
		list.Content = append(list.Content, backendNode(b, s.Port))
	}
	return list
}

// backendNode renders a backend of a service on servicePort, with the
// fields that are not defaults.
func backendNode(b Backend, servicePort uint16) *yaml.Node {
	n := mapping(scalar("address"), scalar(b.Address.String()))
	if b.Port != servicePort {
		n.Content = append(n.Content, scalar("port"), scalar(strconv.Itoa(int(b.Port))))
	}
	if b.Weight != defaultBackend().Weight {
		n.Content = append(n.Content, scalar("weight"), scalar(strconv.FormatUint(uint64(b.Weight), 10)))
	}
	if b.HealthCheck != nil {
		n.Content = append(n.Content, scalar("health_check"), healthNode(b.HealthCheck))
	}
	return n
}

// healthNode renders a check with every field that is set.
func healthNode(h *health.Spec) *yaml.Node {
	n := mapping()
	add := func(key, value string) {
		if value != "" {
			n.Content = append(n.Content, scalar(key), scalar(value))
		}
	}
	add("kind", h.Kind)
	if h.Interval > 0 {
		add("interval", h.Interval.String())
	}
	if h.Timeout > 0 {
		add("timeout", h.Timeout.String())
	}
	if h.Rise > 0 {
		add("rise", strconv.Itoa(h.Rise))
	}
	if h.Fall > 0 {
		add("fall", strconv.Itoa(h.Fall))
	}
	add("initial", h.Initial)
	add("path", h.Path)
	add("host", h.Host)
	add("expect", h.Expect)
	add("sni", h.SNI)
	add("payload", h.Payload)
	if h.InsecureSkipVerify != nil {
		add("insecure_skip_verify", strconv.FormatBool(*h.InsecureSkipVerify))
	}
	if len(h.ExpectStatus) > 0 {
		list := &yaml.Node{Kind: yaml.SequenceNode}
		for _, r := range h.ExpectStatus {
			list.Content = append(list.Content, scalar(fmt.Sprintf("%d-%d", r.Min, r.Max)))
		}
		n.Content = append(n.Content, scalar("expect_status"), list)
	}
	if len(h.Command) > 0 {
		list := &yaml.Node{Kind: yaml.SequenceNode}
		for _, c := range h.Command {
			list.Content = append(list.Content, scalar(c))
		}
		n.Content = append(n.Content, scalar("command"), list)
	}
	return n
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

// flow renders items as a one-line list: [a, b].
func flow(items []string) *yaml.Node {
	list := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
	for _, v := range items {
		list.Content = append(list.Content, scalar(v))
	}
	return list
}

// set appends key: value to the mapping m.
func set(m *yaml.Node, key string, value *yaml.Node) {
	m.Content = append(m.Content, scalar(key), value)
}

// setIf appends key: value to m if the value differs from its default.
func setIf(m *yaml.Node, key string, differs bool, value string) {
	if differs {
		set(m, key, scalar(value))
	}
}

// mapping builds a mapping node from alternating key and value nodes.
func mapping(keysAndValues ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: keysAndValues}
}

// Render returns c as a whole configuration file in the schema Parse
// reads: interfaces and local.addresses always (as flow lists, even
// empty ones, so an operator sees where to fill them in), services as
// SaveServices writes new ones, and every other field only where it
// differs from its default. A string YAML would read as null (an empty
// one, "~", "null") is quoted.
func Render(c *Config) ([]byte, error) {
	def := defaultConfig()
	root := mapping()
	set(root, "interfaces", flow(c.Interfaces))
	setIf(root, "xdp_mode", c.XDPMode != def.XDPMode, string(c.XDPMode))
	addrs := make([]string, len(c.Local.Addresses))
	for i, a := range c.Local.Addresses {
		addrs[i] = a.String()
	}
	local := mapping(scalar("addresses"), flow(addrs))
	setIf(local, "ports", c.Local.Ports != def.Local.Ports, c.Local.Ports.String())
	set(root, "local", local)
	if len(c.Services) > 0 {
		set(root, "services", servicesNode(c.Services, nil))
	}
	ct, dct := c.Conntrack, def.Conntrack
	conntrack, timeouts := mapping(), mapping()
	setIf(conntrack, "capacity", ct.Capacity != dct.Capacity, strconv.Itoa(ct.Capacity))
	setIf(timeouts, "syn_sent", ct.Timeouts.SynSent != dct.Timeouts.SynSent, ct.Timeouts.SynSent.String())
	setIf(timeouts, "established", ct.Timeouts.Established != dct.Timeouts.Established, ct.Timeouts.Established.String())
	setIf(timeouts, "fin_wait", ct.Timeouts.FinWait != dct.Timeouts.FinWait, ct.Timeouts.FinWait.String())
	setIf(timeouts, "close", ct.Timeouts.Close != dct.Timeouts.Close, ct.Timeouts.Close.String())
	setIf(timeouts, "udp", ct.Timeouts.UDP != dct.Timeouts.UDP, ct.Timeouts.UDP.String())
	if len(timeouts.Content) > 0 {
		set(conntrack, "timeouts", timeouts)
	}
	setIf(conntrack, "gc_interval", ct.GCInterval != dct.GCInterval, ct.GCInterval.String())
	if len(conntrack.Content) > 0 {
		set(root, "conntrack", conntrack)
	}
	if syn := synProtectionSection(c); len(syn.Content) > 0 {
		set(root, "syn_protection", syn)
	}
	if dsr := dsrSection(c); len(dsr.Content) > 0 {
		set(root, "dsr", dsr)
	}
	for _, section := range []struct {
		name   string
		fields [][3]string // key, value, default
	}{
		{"log", [][3]string{{"level", c.Log.Level, def.Log.Level}, {"format", c.Log.Format, def.Log.Format}}},
		{"api", [][3]string{{"socket", c.API.Socket, def.API.Socket}}},
		{"state", [][3]string{{"pin_path", c.State.PinPath, def.State.PinPath}}},
		{"metrics", [][3]string{{"listen", c.Metrics.Listen, def.Metrics.Listen}}},
	} {
		m := mapping()
		for _, f := range section.fields {
			setIf(m, f[0], f[1] != f[2], f[1])
		}
		if len(m.Content) > 0 {
			set(root, section.name, m)
		}
	}
	haNode, syncNode := haSections(c)
	if len(haNode.Content) > 0 {
		set(root, "ha", haNode)
	}
	if len(syncNode.Content) > 0 {
		set(root, "sync", syncNode)
	}
	if b := bgpSection(c); len(b.Content) > 0 {
		set(root, "bgp", b)
	}
	var quoteNulls func(n *yaml.Node)
	quoteNulls = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode && n.Tag == "" {
			switch n.Value {
			case "", "~", "null", "Null", "NULL":
				n.Style = yaml.DoubleQuotedStyle
			}
		}
		for _, child := range n.Content {
			quoteNulls(child)
		}
	}
	quoteNulls(root)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, fmt.Errorf("render configuration: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("render configuration: %w", err)
	}
	return buf.Bytes(), nil
}
