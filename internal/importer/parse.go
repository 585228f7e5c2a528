package importer

import "fmt"

// MaxNesting bounds how deeply blocks nest; keepalived's own grammar
// needs four (virtual_server, real_server, HTTP_GET, url).
const MaxNesting = 32

// Node is one statement of a keepalived file: a keyword, the values after
// it on its line, and the statements of its block if it opens one.
type Node struct {
	Pos  Pos
	Key  string
	Args []string
	// Block is set when the statement opens a block ({ on its line or
	// alone on the next), even an empty one.
	Block    bool
	Children []*Node
}

// Parse builds the tree of statements from a stream of tokens. A
// statement is the words of one line; a { after them (on the same line or
// the next) opens its block, which runs to the matching }. A brace that
// does not match is an error naming its line.
func Parse(toks []Token) ([]*Node, error) {
	p := &parser{toks: toks}
	return p.block(nil, 0)
}

type parser struct {
	toks []Token
	i    int
}

// block reads statements up to the } that closes open, or to the end of
// the tokens if open is nil.
func (p *parser) block(open *Token, depth int) ([]*Node, error) {
	var nodes []*Node
	for p.i < len(p.toks) {
		t := p.toks[p.i]
		switch t.Kind {
		case Close:
			if open == nil {
				return nil, fmt.Errorf("%s: } closes no block", t.Pos)
			}
			p.i++
			return nodes, nil
		case Open:
			return nil, fmt.Errorf("%s: { follows no keyword", t.Pos)
		}
		n := &Node{Pos: t.Pos, Key: t.Text}
		for p.i++; p.i < len(p.toks) && p.toks[p.i].Kind == Word && sameLine(p.toks[p.i], t); p.i++ {
			n.Args = append(n.Args, p.toks[p.i].Text)
		}
		if p.i < len(p.toks) && p.toks[p.i].Kind == Open {
			if depth >= MaxNesting {
				return nil, fmt.Errorf("%s: blocks nest more than %d deep", p.toks[p.i].Pos, MaxNesting)
			}
			brace := p.toks[p.i]
			p.i++
			children, err := p.block(&brace, depth+1)
			if err != nil {
				return nil, err
			}
			n.Block, n.Children = true, children
		}
		nodes = append(nodes, n)
	}
	if open != nil {
		return nil, fmt.Errorf("%s: the { here is never closed (the configuration ends first)", open.Pos)
	}
	return nodes, nil
}
