package importer

import (
	"strconv"
	"strings"
	"testing"
)

// words renders tokens as "LINE:text" (braces as themselves), quoted ones
// marked with a trailing *.
func words(toks []Token) string {
	var out []string
	for _, t := range toks {
		s := t.Text
		if t.Quoted {
			s += "*"
		}
		out = append(out, strconv.Itoa(t.Pos.Line)+":"+s)
	}
	return strings.Join(out, " ")
}

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"words and braces", "virtual_server 10.0.0.1 80 {\n}\n", "1:virtual_server 1:10.0.0.1 1:80 1:{ 2:}"},
		{"braces glued to words", "real_server 10.0.0.2 80{TCP_CHECK{}}", "1:real_server 1:10.0.0.2 1:80 1:{ 1:TCP_CHECK 1:{ 1:} 1:}"},
		{"tabs and CRLF", "weight\t3\r\nprotocol  TCP\r\n", "1:weight 1:3 2:protocol 2:TCP"},
		{"# comment line", "# a comment\nweight 1", "2:weight 2:1"},
		{"! comment line", "! a comment\nweight 1", "2:weight 2:1"},
		{"# after a value", "weight 1 # heavier later\nalpha", "1:weight 1:1 2:alpha"},
		{"! after a value", "weight 1 ! heavier later\nalpha", "1:weight 1:1 2:alpha"},
		{"comment glued to a value", "weight 1#x\ndelay_loop 2!y", "1:weight 1:1 2:delay_loop 2:2"},
		{"comment after a brace", "url { # the check\npath /\n} ! done", "1:url 1:{ 2:path 2:/ 3:}"},
		{"comment hides a brace", "url { # }\n}", "1:url 1:{ 2:}"},
		{"indented comment inside a block", "real_server 10.0.0.2 80 {\n    ! weight 2\n    # weight 3\n    weight 4\n}",
			"1:real_server 1:10.0.0.2 1:80 1:{ 4:weight 4:4 5:}"},
		{"double quotes", `misc_path "/usr/bin/check --host a b"`, "1:misc_path 1:/usr/bin/check --host a b*"},
		{"single quotes", `misc_path '/usr/bin/check "x"'`, `1:misc_path 1:/usr/bin/check "x"*`},
		{"comment characters in quotes", `path "/a#b!c"`, "1:path 1:/a#b!c*"},
		{"braces in quotes", `path "/{x}"`, "1:path 1:/{x}*"},
		{"quotes join text", `abc"d e"f 'g'h`, "1:abcd ef* 1:gh*"},
		{"empty quoted word", `virtualhost ""`, "1:virtualhost 1:*"},
		{"escapes in quotes", `x "a\tb\x41\101\"\\\q"`, "1:x 1:a\tbAA\"\\q*"},
		{"control escape", `x "\cA\E"`, "1:x 1:\x01\x1b*"},
		{"high escapes stay UTF-8", `x "\xe9"`, "1:x 1:é*"},
		{"backslash outside quotes is literal", `x a\b`, `1:x 1:a\b`},
		{"empty", "", ""},
		{"only comments", "# a\n! b\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			toks, err := Tokenize("k.conf", []byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := words(toks); got != tc.want {
				t.Errorf("Tokenize(%q)\n got %q\nwant %q", tc.in, got, tc.want)
			}
			for _, tok := range toks {
				if tok.Pos.File != "k.conf" {
					t.Errorf("token %q is from %q", tok.Text, tok.Pos.File)
				}
			}
		})
	}
}

func TestTokenizeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unterminated double quote", "a\nmisc_path \"/bin/x\nb", `k.conf:2: the quoted string ("...) does not end on its line`},
		{"unterminated single quote at the end", "a\n\nx 'abc", `k.conf:3: the quoted string ('...) does not end on its line`},
		{"invalid UTF-8", "a\nb\nc \xff\n", "k.conf:3: invalid UTF-8; save the file as UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Tokenize("k.conf", []byte(tc.in))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
