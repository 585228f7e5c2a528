package importer

import (
	"net/netip"
	"strconv"
	"strings"
	"testing"

	"github.com/xdplb/xdplb/internal/config"
)

// importText imports a keepalived configuration given as the text of one
// file, k.conf.
func importText(t *testing.T, text string) *Result {
	t.Helper()
	toks, err := Tokenize("k.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := Parse(toks)
	if err != nil {
		t.Fatal(err)
	}
	res, err := mapKeepalived("k.conf", nodes, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// lineKeys renders findings as "LINE keyword" (the file left out).
func lineKeys(fs []Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, strconv.Itoa(f.Pos.Line)+" "+f.Keyword)
	}
	return strings.Join(out, ", ")
}

// placeholderLocal and placeholderEncap stand for the local address and
// the encapsulation source an operator fills in.
const (
	placeholderLocal = "192.0.2.200"
	placeholderEncap = "192.0.2.201"
)

// parseImported renders res, fills in a local address (and, if the header
// asks for one, an encapsulation source) as the operator would, and reads
// the file as xdplb does.
func parseImported(t *testing.T, res *Result) *config.Config {
	t.Helper()
	y, err := res.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "addresses: []") {
		t.Fatalf("the YAML has no empty local.addresses to fill in:\n%s", y)
	}
	filled := strings.Replace(string(y), "addresses: []", "addresses: ["+placeholderLocal+"]", 1)
	if strings.Contains(filled, "#   dsr.encap_source") {
		if strings.Contains(filled, "\ndsr:\n") {
			filled = strings.Replace(filled, "\ndsr:\n", "\ndsr:\n  encap_source: "+placeholderEncap+"\n", 1)
		} else {
			filled += "dsr: {encap_source: " + placeholderEncap + "}\n"
		}
	}
	c, err := config.Parse([]byte(filled))
	if err != nil {
		t.Fatalf("the imported YAML does not load once filled in: %v\n%s", err, filled)
	}
	return c
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// importCase is one input in an import format, what it must import as,
// and what must be reported (as "LINE keyword, ...").
type importCase struct {
	name     string
	in       string
	unmapped string
	notes    string
	// refused: xdplb refuses the result (the safety net reported it),
	// so it is not parsed.
	refused bool
	check   func(t *testing.T, c *config.Config)
}

// runImportCases imports each case's input with imp and checks what was
// reported and what was made.
func runImportCases(t *testing.T, imp func(*testing.T, string) *Result, cases []importCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := imp(t, tc.in)
			if got := lineKeys(res.Unmapped); got != tc.unmapped {
				t.Errorf("unmapped: %s\n      want: %s\n%s", got, tc.unmapped, findingLines(res.Unmapped))
			}
			if got := lineKeys(res.Notes); got != tc.notes {
				t.Errorf("notes: %s\n   want: %s\n%s", got, tc.notes, findingLines(res.Notes))
			}
			if tc.refused {
				return
			}
			c := parseImported(t, res)
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func findingLines(fs []Finding) string {
	var out []string
	for _, f := range fs {
		out = append(out, "  "+f.String())
	}
	return strings.Join(out, "\n")
}
