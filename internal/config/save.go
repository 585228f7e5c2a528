package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/health"
)

// Clone returns a deep copy, so a change can be tried on it without
// touching the original.
func (c *Config) Clone() *Config {
	out := *c
	out.Interfaces = slices.Clone(c.Interfaces)
	out.Local.Addresses = slices.Clone(c.Local.Addresses)
	out.Services = make([]Service, len(c.Services))
	for i, s := range c.Services {
		s.Backends = slices.Clone(s.Backends)
		out.Services[i] = s
	}
	return &out
}

// SaveServices replaces the services section of the YAML file at path with
// services and leaves the rest of the file (comments included) as it was.
// The file is replaced atomically.
func SaveServices(path string, services []Service) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("save services: %w", err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("save services: parse %s: %w", path, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("save services: %s is not a YAML mapping", path)
	}
	root := doc.Content[0]
	list := servicesNode(services)
	replaced := false
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "services" {
			root.Content[i+1] = list
			replaced = true
		}
	}
	if !replaced {
		root.Content = append(root.Content, scalar("services"), list)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("save services: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".xdplb-config-*")
	if err != nil {
		return fmt.Errorf("save services: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("save services: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save services: %w", err)
	}
	if fi, err := os.Stat(path); err == nil {
		os.Chmod(tmp.Name(), fi.Mode().Perm())
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save services: %w", err)
	}
	return nil
}

// servicesNode renders services in the file's own schema (the one Parse
// reads), defaults included, so what is saved is what runs.
func servicesNode(services []Service) *yaml.Node {
	list := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range services {
		m := mapping(
			scalar("name"), scalar(s.Name),
			scalar("vip"), scalar(s.VIP.String()),
			scalar("port"), scalar(strconv.Itoa(int(s.Port))),
			scalar("protocol"), scalar(string(s.Protocol)),
			scalar("scheduler"), scalar(s.Scheduler),
		)
		if s.Persistence > 0 {
			m.Content = append(m.Content, scalar("persistence"), scalar(s.Persistence.String()))
		}
		if s.HealthCheck != nil {
			m.Content = append(m.Content, scalar("health_check"), healthNode(s.HealthCheck))
		}
		if s.OnBackendDown != "" {
			m.Content = append(m.Content, scalar("on_backend_down"), scalar(s.OnBackendDown))
		}
		if s.Fallback != nil {
			m.Content = append(m.Content, scalar("fallback"), backendNode(*s.Fallback))
		}
		backends := &yaml.Node{Kind: yaml.SequenceNode}
		for _, b := range s.Backends {
			backends.Content = append(backends.Content, backendNode(b))
		}
		m.Content = append(m.Content, scalar("backends"), backends)
		list.Content = append(list.Content, m)
	}
	return list
}

func backendNode(b Backend) *yaml.Node {
	n := mapping(
		scalar("address"), scalar(b.Address.String()),
		scalar("port"), scalar(strconv.Itoa(int(b.Port))),
		scalar("weight"), scalar(strconv.FormatUint(uint64(b.Weight), 10)),
	)
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

// mapping builds a mapping node from alternating key and value nodes.
func mapping(keysAndValues ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: keysAndValues}
}
