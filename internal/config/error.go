package config

import (
	"fmt"
	"strings"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the value in the YAML document, e.g.
	// "services[1].backends[0].port". It is empty for problems with the
	// document as a whole (empty input, YAML syntax errors).
	Path string
	// Msg says what the value is and why it is wrong, e.g.
	// "70000 is not a port (1-65535)".
	Msg string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// Error is every problem found in a configuration. Parse, Load and
// Validate return it (possibly wrapped by Load) so that callers can
// report or inspect each problem separately.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems accumulates Problems; the decoder and the validator share it.
type problems []Problem

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// err returns the accumulated problems as an *Error, or a nil error (not
// a nil *Error in an interface) when there are none.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &Error{Problems: ps}
}

// Path helpers, so every path is spelled the same way.

func field(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func index(parent string, i int) string {
	return fmt.Sprintf("%s[%d]", parent, i)
}
