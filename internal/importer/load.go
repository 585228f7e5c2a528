package importer

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Bounds on what a keepalived configuration may pull in, so that a
// mistaken include (a glob over /) or a cycle ends with a message rather
// than exhausting memory.
const (
	// MaxIncludeDepth is how deeply includes may nest below the main file.
	MaxIncludeDepth = 8
	// MaxFiles bounds the files read, the main one included.
	MaxFiles = 1024
	// MaxBytes bounds the bytes read from all of them together.
	MaxBytes = 16 << 20
)

// includeKeywords are the include directive and its variants (includer,
// includem, ...), which only add checks keepalived makes on the files;
// all are read the same way here.
var includeKeywords = map[string]bool{
	"include": true, "includer": true, "includem": true, "includew": true, "includeb": true, "includea": true,
}

// loader reads a file and the files it includes, in the order keepalived
// would, into one stream of tokens.
type loader struct {
	stack    []string // the files being read, as absolute paths, outermost first
	names    []string // the same files as positions name them
	files    int
	bytes    int
	lines    int       // of all files read so far
	findings []Finding // include lines that pulled nothing in
}

// LoadKeepalived reads the keepalived configuration at path, with every
// file its include lines name, into one stream of tokens. An include
// whose pattern matches no file is not an error (keepalived ignores it
// too) but comes back as a Finding.
func LoadKeepalived(path string) ([]Token, []Finding, error) {
	l := &loader{}
	toks, err := l.load(path, nil)
	return toks, l.findings, err
}

// load reads the file at path; from is the include line naming it, or nil
// for the main file.
func (l *loader) load(path string, from *Token) ([]Token, error) {
	at := func(err error) error {
		if from != nil {
			return fmt.Errorf("%s: include %s: %w", from.Pos, path, err)
		}
		return err
	}
	abs, err := filepath.Abs(path)
	if err == nil {
		if real, err := filepath.EvalSymlinks(abs); err == nil {
			abs = real
		}
	}
	for i, open := range l.stack {
		if open == abs {
			chain := append(append([]string(nil), l.names[i:]...), path)
			return nil, at(fmt.Errorf("cycle: %s", strings.Join(chain, " -> ")))
		}
	}
	if len(l.stack) > MaxIncludeDepth {
		return nil, at(fmt.Errorf("includes nest more than %d deep (%s)", MaxIncludeDepth, strings.Join(append(l.names, path), " -> ")))
	}
	if l.files++; l.files > MaxFiles {
		return nil, at(fmt.Errorf("more than %d files are included", MaxFiles))
	}
	data, err := l.read(path)
	if err != nil {
		return nil, at(err)
	}
	toks, err := Tokenize(path, data)
	if err != nil {
		return nil, err
	}
	for i := range toks {
		toks[i].line += l.lines
	}
	l.lines += strings.Count(string(data), "\n") + 1
	l.stack, l.names = append(l.stack, abs), append(l.names, path)
	defer func() { l.stack, l.names = l.stack[:len(l.stack)-1], l.names[:len(l.names)-1] }()

	var out []Token
	for i := 0; i < len(toks); {
		t := toks[i]
		if !isInclude(toks, i) {
			out = append(out, t)
			i++
			continue
		}
		// The rest of the line: the patterns.
		j := i + 1
		for j < len(toks) && sameLine(toks[j], t) {
			j++
		}
		line := toks[i+1 : j]
		i = j
		included, err := l.include(path, t, line)
		if err != nil {
			return nil, err
		}
		out = append(out, included...)
	}
	return out, nil
}

// isInclude says whether toks[i] starts an include line.
func isInclude(toks []Token, i int) bool {
	t := toks[i]
	if t.Kind != Word || t.Quoted || !includeKeywords[t.Text] {
		return false
	}
	return i == 0 || !sameLine(toks[i-1], t)
}

// include reads the files that the include line at t (its patterns in
// args) names, relative to the directory of including.
func (l *loader) include(including string, t Token, args []Token) ([]Token, error) {
	note := func(format string, a ...any) {
		l.findings = append(l.findings, Finding{Pos: t.Pos, Keyword: t.Text, Why: fmt.Sprintf(format, a...)})
	}
	if len(args) == 0 {
		note("names no file; nothing was included")
		return nil, nil
	}
	var out []Token
	for _, a := range args {
		if a.Kind != Word {
			note("csh-style brace expressions are not supported; list the files one by one (nothing on this line was included)")
			return nil, nil
		}
	}
	for _, a := range args {
		pattern := a.Text
		if !filepath.IsAbs(pattern) {
			pattern = filepath.Join(filepath.Dir(including), pattern)
		}
		matches, err := filepath.Glob(pattern)
		if err != nil {
			return nil, fmt.Errorf("%s: include %s: %v", t.Pos, a.Text, err)
		}
		if len(matches) == 0 {
			note("%s matches no file; nothing was included", a.Text)
			continue
		}
		for _, m := range matches {
			if fi, err := os.Stat(m); err == nil && fi.IsDir() {
				note("%s is a directory; it was not included", m)
				continue
			}
			toks, err := l.load(m, &t)
			if err != nil {
				return nil, err
			}
			out = append(out, toks...)
		}
	}
	return out, nil
}

// read reads one regular file, within what is left of MaxBytes.
func (l *loader) read(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	left := MaxBytes - l.bytes
	data, err := io.ReadAll(io.LimitReader(f, int64(left)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > left {
		return nil, fmt.Errorf("the configuration and its includes are larger than %d MiB", MaxBytes>>20)
	}
	l.bytes += len(data)
	return data, nil
}
