package config

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/xdplb/xdplb/internal/trust"
)

// MaxFileSize bounds a configuration file. The largest configuration
// the limits allow (MaxBackends backends of three lines each, and a
// health check for some) takes about 10 MiB.
const MaxFileSize = 16 << 20

// maxAliasNodes bounds how many nodes YAML aliases may add to a document
// when expanded: aliases let a small file stand for a huge tree (an alias
// "bomb": a list of 4,096 backends referenced 4,096 times is 127 KB that
// expands to 50 million nodes), which would take minutes and gigabytes
// to decode only to be refused by the limits. The bound leaves room for
// an alias per backend of the largest configuration to repeat a health
// check or a backend list.
const maxAliasNodes = MaxBackends * 16

// Load reads and parses the configuration file at path. Errors name the
// file; parse and validation problems are still reachable as *Error with
// errors.As.
func Load(path string) (*Config, error) {
	c, _, err := LoadDigest(path)
	return c, err
}

// LoadDigest is Load that also returns the digest of the content it read,
// so a caller can later tell whether the file changed since.
func LoadDigest(path string) (*Config, [sha256.Size]byte, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, [sha256.Size]byte{}, err
	}
	c, err := parseFile(path, data)
	return c, sha256.Sum256(data), err
}

// Digest returns the digest of the file's content, read as Load reads it.
func Digest(path string) ([sha256.Size]byte, error) {
	data, err := readFile(path)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	return sha256.Sum256(data), nil
}

// parseFile is Parse with errors that name the file.
func parseFile(path string, data []byte) (*Config, error) {
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

// readFile reads at most one byte more than MaxFileSize, so that Parse
// refuses a larger file without it being read whole. Only a regular file
// is read: a FIFO or a device at the path would block or never end, and
// the daemon reads the file on every change. Opening without blocking
// keeps a FIFO from holding the open itself.
func readFile(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		// *fs.PathError already names the file.
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read config: %s is not a regular file (%s)", path, fi.Mode().Type())
	} else if err := trusted(path, fi); err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return data, nil
}

// trusted refuses a configuration someone other than root (or the daemon's
// user) could have written: it names the programs health checks run as
// root, and the addresses the daemon takes.
func trusted(path string, fi os.FileInfo) error {
	const why = "the configuration names programs the daemon runs as root"
	if uid, ok := trust.FileOwner(fi); ok && !trust.Owner(uid) {
		return fmt.Errorf("%s is owned by uid %d, not root; %s", path, uid, why)
	}
	if fi.Mode()&0o022 != 0 {
		return fmt.Errorf("%s is writable by %s (mode %s); %s", path, trust.Writers(fi.Mode()), trust.Octal(fi.Mode()), why)
	}
	paths := []string{path}
	if real, err := filepath.EvalSymlinks(path); err == nil && real != path {
		paths = append(paths, real)
	}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			return err
		}
		if err := trust.Dirs(path, abs, why); err != nil {
			return err
		}
	}
	return nil
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
	if len(data) > MaxFileSize {
		return nil, fail("configuration is larger than %d MiB", MaxFileSize>>20)
	}
	if line, col, b, bad := invalidUTF8(data); bad {
		return nil, fail("line %d: invalid UTF-8 (byte 0x%02x at column %d); save the file as UTF-8", line, b, col)
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
	if err := checkAliases(&doc); err != nil {
		return nil, fail("%v", err)
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

// invalidUTF8 finds the first byte of data that is not UTF-8, and its
// line and column (in characters, from 1). A file that starts with a
// UTF-16 byte order mark is left to the YAML parser, which reads UTF-16.
func invalidUTF8(data []byte) (line, col int, b byte, bad bool) {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) || utf8.Valid(data) {
		return 0, 0, 0, false
	}
	line, start := 1, 0
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return line, utf8.RuneCount(data[start:i]) + 1, data[i], true
		}
		if r == '\n' {
			line, start = line+1, i+1
		}
		i += size
	}
	return 0, 0, 0, false
}

// checkAliases refuses a document whose aliases, expanded, add more than
// maxAliasNodes nodes, or that holds an alias to a node containing it
// (which would expand forever). It walks the tree as the decoder will,
// following aliases, and stops as soon as the bound is crossed, so it
// takes at most maxAliasNodes steps beyond the document's own nodes.
func checkAliases(doc *yaml.Node) error {
	budget := maxAliasNodes
	open := map[*yaml.Node]bool{} // the nodes being walked, to find cycles
	var walk func(n *yaml.Node, aliased bool) error
	walk = func(n *yaml.Node, aliased bool) error {
		for n != nil && n.Kind == yaml.AliasNode {
			if open[n.Alias] {
				return fmt.Errorf("line %d: alias *%s refers to a node that contains it", n.Line, n.Value)
			}
			n, aliased = n.Alias, true
		}
		if n == nil {
			return nil
		}
		if aliased {
			if budget--; budget < 0 {
				return fmt.Errorf("the document expands to more than %d nodes through aliases (YAML alias amplification); "+
					"write it out without aliases", maxAliasNodes)
			}
		}
		if len(n.Content) == 0 {
			return nil
		}
		open[n] = true
		defer delete(open, n)
		for _, c := range n.Content {
			if err := walk(c, aliased); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(doc, false)
}
