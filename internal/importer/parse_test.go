package importer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tree renders nodes as "LINE:key[args]{children}".
func tree(nodes []*Node) string {
	var out []string
	for _, n := range nodes {
		s := fmt.Sprintf("%d:%s", n.Pos.Line, n.Key)
		if len(n.Args) > 0 {
			s += "[" + strings.Join(n.Args, ",") + "]"
		}
		if n.Block {
			s += "{" + tree(n.Children) + "}"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func parseText(t *testing.T, text string) ([]*Node, error) {
	t.Helper()
	toks, err := Tokenize("k.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return Parse(toks)
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"statements", "a 1 2\nb\n", "1:a[1,2] 2:b"},
		{"block", "vs 1 {\n  w 3\n}\n", "1:vs[1]{2:w[3]}"},
		{"brace on the next line", "vs 1\n{\n  w 3\n}\n", "1:vs[1]{3:w[3]}"},
		{"empty block", "vs 1 { }", "1:vs[1]{}"},
		{"one-line block", "virtual_ipaddress { 10.0.0.1 }", "1:virtual_ipaddress{1:10.0.0.1}"},
		{"nested blocks", "vs {\n rs {\n  HTTP_GET {\n   url {\n    path /\n   }\n  }\n }\n}",
			"1:vs{2:rs{3:HTTP_GET{4:url{5:path[/]}}}}"},
		{"statement after a closing brace", "a {\n} b 1\n", "1:a{} 2:b[1]"},
		{"comments inside blocks", "a { # x\n ! y\n b 1 # z\n}", "1:a{3:b[1]}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, err := parseText(t, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := tree(nodes); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	deep := strings.Repeat("a {\n", MaxNesting+1) + strings.Repeat("}\n", MaxNesting+1)
	for _, tc := range []struct {
		name, in, want string
	}{
		{"stray closing brace", "a {\n}\n}\n", "k.conf:3: } closes no block"},
		{"unclosed block", "a 1 {\n b {\n }\n", "k.conf:1: the { here is never closed (the configuration ends first)"},
		{"unclosed inner block", "a {\n b {\n}\n", "k.conf:1: the { here is never closed (the configuration ends first)"},
		{"brace without keyword", "{\n}", "k.conf:1: { follows no keyword"},
		{"two opening braces", "a { {\n} }", "k.conf:1: { follows no keyword"},
		{"too deep", deep, fmt.Sprintf("k.conf:%d: blocks nest more than %d deep", MaxNesting+1, MaxNesting)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseText(t, tc.in)
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// writeFiles creates files (name -> content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestInclude(t *testing.T) {
	for _, tc := range []struct {
		name     string
		files    map[string]string
		want     string // the tree, with files named relative to the directory
		findings []string
	}{
		{
			name: "glob relative to the including file, in order",
			files: map[string]string{
				"main.conf":          "a 1\ninclude conf.d/*.conf\nz 26\n",
				"conf.d/b.conf":      "b 2\n",
				"conf.d/c.conf":      "c 3 # from c\ninclude ../shared/d.conf\n",
				"conf.d/ignored.txt": "x\n",
				"shared/d.conf":      "d 4\n",
			},
			want: "main.conf:1:a[1] conf.d/b.conf:1:b[2] conf.d/c.conf:1:c[3] shared/d.conf:1:d[4] main.conf:3:z[26]",
		},
		{
			name: "include inside a block, several patterns, variants",
			files: map[string]string{
				"main.conf": "vs 1 {\n  include rs1.conf rs2.conf\n  includer rs3.conf\n}\n",
				"rs1.conf":  "rs 1\n", "rs2.conf": "rs 2\n", "rs3.conf": "rs 3\n",
			},
			want: "main.conf:1:vs[1]{rs1.conf:1:rs[1] rs2.conf:1:rs[2] rs3.conf:1:rs[3]}",
		},
		{
			name: "an included file may close what the includer opened",
			files: map[string]string{
				"main.conf": "vs 1 {\ninclude tail.conf\n",
				"tail.conf": "w 2\n}\n",
			},
			want: "main.conf:1:vs[1]{tail.conf:1:w[2]}",
		},
		{
			name: "the same file twice is no cycle",
			files: map[string]string{
				"main.conf": "include x.conf\ninclude x.conf\n",
				"x.conf":    "x 1\n",
			},
			want: "x.conf:1:x[1] x.conf:1:x[1]",
		},
		{
			name: "a pattern matching nothing, a directory, braces",
			files: map[string]string{
				"main.conf":    "include none/*.conf\ninclude sub\ninclude {a,b}.conf\na 1\n",
				"sub/x.conf":   "x\n",
				"a.conf":       "b\n",
				"unused.conf ": "",
			},
			want: "main.conf:4:a[1]",
			findings: []string{
				"main.conf:1: include: none/*.conf matches no file; nothing was included",
				"main.conf:2: include: sub is a directory; it was not included",
				"main.conf:3: include: csh-style brace expressions are not supported; list the files one by one (nothing on this line was included)",
			},
		},
		{
			name: "include only as the first word, unquoted",
			files: map[string]string{
				"main.conf": "notify include x.conf\n\"include\" x.conf\n",
				"x.conf":    "x\n",
			},
			want: "main.conf:1:notify[include,x.conf] main.conf:2:include[x.conf]",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			toks, findings, err := LoadKeepalived(filepath.Join(dir, "main.conf"))
			if err != nil {
				t.Fatal(err)
			}
			nodes, err := Parse(toks)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.ReplaceAll(fileTree(nodes), dir+"/", ""); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			var got []string
			for _, f := range findings {
				s := strings.ReplaceAll(f.String(), dir+"/", "")
				got = append(got, strings.ReplaceAll(s, dir, "DIR"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.findings, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.findings, "\n"))
			}
		})
	}
}

// fileTree is tree with each statement's file.
func fileTree(nodes []*Node) string {
	var out []string
	for _, n := range nodes {
		s := fmt.Sprintf("%s:%s", n.Pos, n.Key)
		if len(n.Args) > 0 {
			s += "[" + strings.Join(n.Args, ",") + "]"
		}
		if n.Block {
			s += "{" + fileTree(n.Children) + "}"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

func TestIncludeErrors(t *testing.T) {
	chain := map[string]string{"main.conf": "include f1.conf\n"}
	for i := 1; i <= MaxIncludeDepth+1; i++ {
		chain[fmt.Sprintf("f%d.conf", i)] = fmt.Sprintf("include f%d.conf\n", i+1)
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"cycle", map[string]string{"main.conf": "a\ninclude b.conf\n", "b.conf": "\n\ninclude main.conf\n"},
			"b.conf:3: include main.conf: cycle: main.conf -> b.conf -> main.conf"},
		{"a file including itself", map[string]string{"main.conf": "include *.conf\n"},
			"main.conf:1: include main.conf: cycle: main.conf -> main.conf"},
		{"too deep", chain, fmt.Sprintf("f%d.conf:1: include f%d.conf: includes nest more than %d deep (main.conf -> f1.conf -> ",
			MaxIncludeDepth, MaxIncludeDepth+1, MaxIncludeDepth)},
		{"syntax error in an included file names it",
			map[string]string{"main.conf": "include x.conf\n", "x.conf": "a\nb \"open\n"},
			`x.conf:2: the quoted string ("...) does not end on its line`},
		{"unbalanced brace in an included file names it",
			map[string]string{"main.conf": "a {\n}\ninclude x.conf\n", "x.conf": "\n}\n"},
			"x.conf:2: } closes no block"},
		{"bad pattern", map[string]string{"main.conf": "\ninclude [\n"}, "main.conf:2: include [: syntax error in pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, tc.files)
			toks, _, err := LoadKeepalived(filepath.Join(dir, "main.conf"))
			if err == nil {
				_, err = Parse(toks)
			}
			if err == nil {
				t.Fatal("no error")
			}
			got := strings.ReplaceAll(strings.ReplaceAll(err.Error(), dir+"/", ""), dir, "DIR")
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("error %s\nwant  %s", got, tc.want)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, _, err := LoadKeepalived(filepath.Join(t.TempDir(), "nope.conf"))
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("error %v", err)
	}
}
