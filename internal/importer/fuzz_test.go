package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzTokenize: the tokenizer never panics, whatever the bytes; what it
// accepts has lines within the input, never an empty unquoted word, and
// goes through Parse and the mapping (and renders as YAML) without a
// panic either.
func FuzzTokenize(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.conf")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", "{", "}", "a {\n", "\"", "'abc", "x \"\\", "x \"\\x\"", "x \"\\777\\c\"", "# only\n",
		"a!b#c", "virtual_server 10.0.0.1 80 { real_server 10.0.0.2 80 { weight 70000 } }", "\xff",
		"virtual_server_group g {\n10.0.0.1 80\n}\nvirtual_server group g {\n}\n", "include x\n", "@x a\n$A=1\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		toks, err := Tokenize("f.conf", data)
		if err != nil {
			return
		}
		lines := strings.Count(string(data), "\n") + 1
		for _, tok := range toks {
			if tok.Pos.Line < 1 || tok.Pos.Line > lines {
				t.Fatalf("token %q at line %d of %d", tok.Text, tok.Pos.Line, lines)
			}
			if tok.Kind == Word && tok.Text == "" && !tok.Quoted {
				t.Fatalf("an empty unquoted word at line %d", tok.Pos.Line)
			}
		}
		nodes, err := Parse(toks)
		if err != nil {
			return
		}
		res, err := mapKeepalived("f.conf", nodes, nil)
		if err != nil {
			t.Fatalf("mapping: %v", err)
		}
		if _, err := res.YAML(); err != nil {
			t.Fatalf("YAML: %v", err)
		}
	})
}

// FuzzIpvsadm: reading ipvsadm rules never panics and always renders.
func FuzzIpvsadm(f *testing.F) {
	if data, err := os.ReadFile("testdata/ipvsadm.rules"); err == nil {
		f.Add(data)
	}
	for _, s := range []string{"", "-A", "-a -t", "-A -t 10.0.0.1:80 -p", "--set 1", "-A -u [::1]:53 -b ,", "-a -t 1.2.3.4:5 -r 1.2.3.4 -w",
		"-A -t 1.2.3.4:5\n-a -t 1.2.3.4:5 -r 1.2.3.5:6 -i --tun-type gue --tun-port 6080 --tun-csum\n-a -t 1.2.3.4:5 -r 1.2.3.6 -m"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := Ipvsadm("rules", strings.NewReader(string(data)))
		if err != nil {
			t.Fatalf("%v", err)
		}
		if _, err := res.YAML(); err != nil {
			t.Fatalf("YAML: %v", err)
		}
	})
}
