package importer

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Pos is where something was read: a file and a line (from 1). Line 0
// stands for the whole file.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// TokenKind tells words from braces.
type TokenKind int

// Token kinds.
const (
	Word  TokenKind = iota // a keyword or a value
	Open                   // {
	Close                  // }
)

// Token is one word or brace of a keepalived file.
type Token struct {
	Kind TokenKind
	// Text is the word with its quotes removed and escapes decoded;
	// "{" or "}" for a brace.
	Text string
	// Quoted is set if any part of the word was quoted: a quoted word is
	// never a keyword such as include.
	Quoted bool
	Pos    Pos
	// line numbers the lines of the whole stream a loader puts together,
	// so a file included twice in a row does not run its two copies'
	// lines together; Tokenize sets it to Pos.Line.
	line int
}

// sameLine says whether a and b were read from the same line.
func sameLine(a, b Token) bool { return a.line == b.line && a.Pos == b.Pos }

// Tokenize splits one keepalived file into tokens, the way keepalived
// reads it: words end at whitespace or a brace; a comment starts at '#'
// or '!' anywhere outside quotes and runs to the end of the line; a
// quoted part ("..." or '...') may hold whitespace, braces and comment
// characters, and is joined to the unquoted text around it
// (abc"d e"f is one word, "abcd ef"); inside quotes a backslash escapes
// as in the shell (\n, \t, \x41, \101, \" ...). A quote must close on its
// line. file names the positions of the tokens.
func Tokenize(file string, data []byte) ([]Token, error) {
	if !utf8.Valid(data) {
		line := 1 + strings.Count(string(data[:invalidAt(data)]), "\n")
		return nil, fmt.Errorf("%s: invalid UTF-8; save the file as UTF-8", Pos{file, line})
	}
	var (
		toks   []Token
		word   strings.Builder
		inWord bool
		quoted bool
		line   = 1
	)
	flush := func() {
		if inWord {
			toks = append(toks, Token{Kind: Word, Text: word.String(), Quoted: quoted, Pos: Pos{file, line}, line: line})
		}
		word.Reset()
		inWord, quoted = false, false
	}
	s := string(data)
	for i := 0; i < len(s); {
		c := s[i]
		switch c {
		case '\n':
			flush()
			line++
			i++
		case ' ', '\t', '\r', '\v', '\f':
			flush()
			i++
		case '#', '!':
			flush()
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case '{', '}':
			flush()
			kind := Open
			if c == '}' {
				kind = Close
			}
			toks = append(toks, Token{Kind: kind, Text: string(c), Pos: Pos{file, line}, line: line})
			i++
		case '"', '\'':
			text, n, err := quotedString(s[i:])
			if err != nil {
				return nil, fmt.Errorf("%s: %v", Pos{file, line}, err)
			}
			word.WriteString(text)
			inWord, quoted = true, true
			i += n
		default:
			word.WriteByte(c)
			inWord = true
			i++
		}
	}
	flush()
	return toks, nil
}

// invalidAt is the offset of the first byte of data that is not UTF-8.
func invalidAt(data []byte) int {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size == 1 {
			return i
		}
		i += size
	}
	return len(data)
}

// quotedString reads the quoted string s starts with (s[0] is the quote)
// and returns its text and the number of bytes read, closing quote
// included.
func quotedString(s string) (string, int, error) {
	quote := s[0]
	var b strings.Builder
	for i := 1; i < len(s); {
		switch c := s[i]; {
		case c == quote:
			return b.String(), i + 1, nil
		case c == '\n':
			return "", 0, fmt.Errorf("the quoted string (%c...) does not end on its line", quote)
		case c == '\\' && i+1 < len(s) && s[i+1] != '\n':
			r, n := escape(s[i+1:])
			b.WriteString(r)
			i += 1 + n
		default:
			b.WriteByte(c)
			i++
		}
	}
	return "", 0, fmt.Errorf("the quoted string (%c...) does not end on its line", quote)
}

// escape decodes the escape sequence after a backslash, as keepalived
// does: \a \b \E \f \n \r \t \v, \nnn (up to three octal digits), \xXX
// (up to two hex digits), \cC (control-C); any other character stands for
// itself. It returns the text and the number of bytes read.
func escape(s string) (string, int) {
	simple := map[byte]string{'a': "\a", 'b': "\b", 'E': "\x1b", 'f': "\f", 'n': "\n", 'r': "\r", 't': "\t", 'v': "\v"}
	c := s[0]
	if r, ok := simple[c]; ok {
		return r, 1
	}
	switch {
	case c >= '0' && c <= '7':
		v, n := 0, 0
		for n < 3 && n < len(s) && s[n] >= '0' && s[n] <= '7' {
			v = v*8 + int(s[n]-'0')
			n++
		}
		return byteText(v), n
	case c == 'x' && len(s) > 1 && isHex(s[1]):
		v, n := 0, 1
		for n < 3 && n < len(s) && isHex(s[n]) {
			v = v*16 + hexValue(s[n])
			n++
		}
		return byteText(v), n
	case c == 'c' && len(s) > 1 && s[1] < utf8.RuneSelf:
		return byteText(int(s[1]) & 0x1f), 2
	}
	_, size := utf8.DecodeRuneInString(s)
	return s[:size], size
}

// byteText is the text of one byte value. keepalived writes the byte
// itself; values of 0x80 and above become the character of that code
// point here, so that every word stays UTF-8 (and can go into YAML).
func byteText(v int) string { return string(rune(v & 0xff)) }

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexValue(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return 0
}
