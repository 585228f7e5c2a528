package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Load reads and parses the configuration file at path. Errors name the
// file; parse and validation problems are still reachable as *Error with
// errors.As.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		// *fs.PathError already names the file.
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		// Put a multi-problem list on lines of its own rather than
		// gluing its first line to the file name.
		if e, ok := errors.AsType[*Error](err); ok && len(e.Problems) > 1 {
			return nil, fmt.Errorf("config %s: %d problems:\n%w", path, len(e.Problems), err)
		}
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a YAML configuration strictly (unknown fields are
// errors), applies defaults and validates the result. Every error it
// returns is an *Error.
func Parse(data []byte) (*Config, error) {
	root, err := parseDocument(data)
	if err != nil {
		return nil, err
	}
	c := defaultConfig()
	d := &decoder{}
	d.config(root, &c)
	// Validating a half-decoded config would only add follow-on noise
	// (e.g. "port missing" after "port 70000 is not a port").
	if err := d.err(); err != nil {
		return nil, err
	}
	c.applyDerivedDefaults()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// parseDocument parses data as exactly one non-empty YAML document and
// returns its top-level mapping.
func parseDocument(data []byte) (*yaml.Node, error) {
	fail := func(format string, args ...any) error {
		return &Error{Problems: []Problem{{Msg: fmt.Sprintf(format, args...)}}}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		return nil, fail("configuration is empty")
	case err != nil:
		return nil, fail("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// A second document is almost certainly a concatenation mistake;
	// silently ignoring it would hide half the config.
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, fail("line %d: more than one YAML document; expected exactly one", extra.Line)
	case !errors.Is(err, io.EOF):
		return nil, fail("invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var root *yaml.Node
	if len(doc.Content) > 0 {
		root = resolve(doc.Content[0])
	}
	if isNull(root) {
		return nil, fail("configuration is empty")
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail("expected a mapping at the top level, got %s", describe(root))
	}
	return root, nil
}
