package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// aliasBomb is a small document that aliases make huge: one list of n
// backends, referenced by n services.
func aliasBomb(n int) []byte {
	var b strings.Builder
	b.WriteString(minimal + "backends: &b\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {address: 10.%d.%d.1}\n", i/256, i%256)
	}
	b.WriteString("services:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - {vip: 172.%d.%d.10, port: 80, backends: *b}\n", 16+i/256, i%256)
	}
	return []byte(b.String())
}

// TestAliasBomb checks that a document whose aliases expand it a
// thousandfold is refused before it is decoded (which took 20 to 50 s and
// 1.4 GB), and that aliases used as people use them still work.
func TestAliasBomb(t *testing.T) {
	bomb := aliasBomb(4096)
	if len(bomb) > 512<<10 {
		t.Fatalf("the bomb is %d bytes; it should be small", len(bomb))
	}
	_, err := Parse(bomb)
	want := fmt.Sprintf("the document expands to more than %d nodes through aliases (YAML alias amplification); write it out without aliases", maxAliasNodes)
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Path != "" || ps[0].Msg != want {
		t.Errorf("Parse(alias bomb) = %v\nwant %s", err, want)
	}

	// A cycle expands forever.
	_, err = Parse([]byte(minimal + "services: &s [{vip: 172.19.0.10, port: 80, backends: *s}]\n"))
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Msg != "line 3: alias *s refers to a node that contains it" {
		t.Errorf("Parse(cycle) = %v", err)
	}

	// A health check shared by every backend of the largest
	// configuration stays within the bound.
	var b strings.Builder
	b.WriteString(`checks: [&hc {kind: http, path: /healthz, interval: 2s, timeout: 1s, rise: 3, fall: 3, expect_status: ["200"]}]` + "\nbackends:\n")
	for range MaxBackends {
		b.WriteString("  - {address: 10.0.0.1, health_check: *hc}\n")
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(b.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if err := checkAliases(&doc); err != nil {
		t.Errorf("a health check shared by %d backends: %v", MaxBackends, err)
	}
}

func TestFileSize(t *testing.T) {
	big := []byte(minimal + "# " + strings.Repeat("x", MaxFileSize) + "\n")
	want := "configuration is larger than 16 MiB"
	if ps := problemsOf(t, mustFail(Parse(big))); len(ps) != 1 || ps[0].Msg != want {
		t.Errorf("Parse(%d bytes) = %v, want %s", len(big), ps, want)
	}
	path := filepath.Join(t.TempDir(), "xdplb.yaml")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || err.Error() != "config "+path+": "+want {
		t.Errorf("Load(%d bytes) = %v", len(big), err)
	}
	// Exactly the limit is read whole and parsed.
	fits := []byte(minimal + "#" + strings.Repeat("x", MaxFileSize-len(minimal)-2) + "\n")
	if _, err := Parse(fits); err != nil {
		t.Errorf("Parse(%d bytes) = %v", len(fits), err)
	}
}

func mustFail(_ *Config, err error) error { return err }

func TestInvalidUTF8(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"in a value", minimal + "services: [{name: caf\xe9, vip: 172.19.0.10, port: 80}]\n", "line 3: invalid UTF-8 (byte 0xe9 at column 22); save the file as UTF-8"},
		{"after other characters", "# grüße\n# \xff\n" + minimal, "line 2: invalid UTF-8 (byte 0xff at column 3); save the file as UTF-8"},
		{"first byte", "\x80" + minimal, "line 1: invalid UTF-8 (byte 0x80 at column 1); save the file as UTF-8"},
		{"truncated sequence", minimal + "# \xe2\x82\n", "line 3: invalid UTF-8 (byte 0xe2 at column 3); save the file as UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ps := problemsOf(t, mustFail(Parse([]byte(tc.yaml))))
			if len(ps) != 1 || ps[0].String() != tc.want {
				t.Errorf("Parse = %v, want %s", ps, tc.want)
			}
		})
	}
	if _, err := Parse([]byte("# grüße, 日本\n" + minimal)); err != nil {
		t.Errorf("valid UTF-8: %v", err)
	}
}
