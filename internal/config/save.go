package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
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
		backends := &yaml.Node{Kind: yaml.SequenceNode}
		for _, b := range s.Backends {
			backends.Content = append(backends.Content, mapping(
				scalar("address"), scalar(b.Address.String()),
				scalar("port"), scalar(strconv.Itoa(int(b.Port))),
				scalar("weight"), scalar(strconv.FormatUint(uint64(b.Weight), 10)),
			))
		}
		m.Content = append(m.Content, scalar("backends"), backends)
		list.Content = append(list.Content, m)
	}
	return list
}

func scalar(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Value: v} }

// mapping builds a mapping node from alternating key and value nodes.
func mapping(keysAndValues ...*yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Content: keysAndValues}
}
