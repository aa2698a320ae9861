package ir

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// The text form prints a graph one line per node, like an SSA dump:
//
//	graph lenet5 batch=64
//	v0 = input [64,1,28,28] name=x @models/lenet5/model.go:12
//	v1 = labels i32 [64] name=y classes=10 @models/lenet5/model.go:13
//	v2 = param [6,1,5,5] name=conv1.weight init=torch_default(fan_in=25,fan_out=150) layer=conv1 @models/lenet5/model.go:15
//	v4 = conv2d v0 v2 v3 [64,6,28,28] stride=1,1 pad=2,2 dilation=1,1 groups=1 layer=conv1 @models/lenet5/model.go:15
//	...
//	value logits = v21
//	loss loss = v22
//	update bn1.running_mean = v12
//
// A node line is "vID = OP ARGS [DTYPE] SHAPE ATTRS [layer=L] [@FILE:LINE]".
// The element type is printed only when it is not f32. ATTRS are exactly
// the attributes the op's table entry lists, in that order, as key=value:
// integers and floats as Go prints them (floats with the fewest digits that
// read back exactly, NaN and ±Inf included), pairs as "h,w", an InitSpec
// as "scheme(value=V,fan_in=N,fan_out=M,mode=S)" with its zero fields
// left out. A string is printed bare when it consists only of letters,
// digits and "_./+-", and quoted as Go quotes it otherwise. Output lines
// are "KIND NAME = vID". A "#" outside a string starts a comment.
//
// The errors the builder recorded are not part of the text form; JSON
// carries them.

// String returns the graph in the text form.
func (g *Graph) String() string {
	var b strings.Builder
	Print(&b, g) // a strings.Builder never fails
	return b.String()
}

// Print writes the graph to w in the text form. It prints any graph,
// however broken, so that a dump can show what went wrong; [Parse] reads
// back what Print writes for any graph whose nodes' IDs are their indices
// and whose arguments come before their uses.
func Print(w io.Writer, g *Graph) error {
	var b []byte
	b = append(b, "graph "...)
	b = appendString(b, g.Name)
	b = append(b, " batch="...)
	b = strconv.AppendInt(b, int64(g.Batch), 10)
	b = append(b, '\n')
	for i, n := range g.Nodes {
		if n == nil {
			b = fmt.Appendf(b, "# node %d is nil\n", i)
			continue
		}
		b = appendNode(b, n)
		b = append(b, '\n')
	}
	for _, o := range g.Outputs {
		b = append(b, o.Kind.String()...)
		b = append(b, ' ')
		b = appendString(b, o.Name)
		b = append(b, " = "...)
		b = appendRef(b, o.Node)
		b = append(b, '\n')
	}
	_, err := w.Write(b)
	return err
}

func appendNode(b []byte, n *Node) []byte {
	b = appendRef(b, n)
	b = append(b, " = "...)
	b = append(b, n.Op.String()...)
	for _, a := range n.Args {
		b = append(b, ' ')
		b = appendRef(b, a)
	}
	if n.DType != Float32 {
		b = append(b, ' ')
		b = append(b, n.DType.String()...)
	}
	b = append(b, ' ')
	b = append(b, n.Shape.String()...)
	for _, at := range opAttrs(n.Op) {
		b = append(b, ' ')
		b = append(b, attrTable[at].name...)
		b = append(b, '=')
		b = appendValue(b, attrTable[at].field(&n.Attrs))
	}
	if n.Layer != "" {
		b = append(b, " layer="...)
		b = appendString(b, n.Layer)
	}
	if n.Pos != (Pos{}) {
		b = append(b, " @"...)
		b = appendString(b, n.Pos.File)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(n.Pos.Line), 10)
	}
	return b
}

func appendRef(b []byte, n *Node) []byte {
	if n == nil {
		return append(b, "v?"...)
	}
	b = append(b, 'v')
	return strconv.AppendInt(b, int64(n.ID), 10)
}

// appendValue appends the attribute field that p points to.
func appendValue(b []byte, p any) []byte {
	switch v := p.(type) {
	case *string:
		return appendString(b, *v)
	case *int:
		return strconv.AppendInt(b, int64(*v), 10)
	case *[2]int:
		b = strconv.AppendInt(b, int64(v[0]), 10)
		b = append(b, ',')
		return strconv.AppendInt(b, int64(v[1]), 10)
	case *float64:
		return appendFloat(b, *v)
	case *bool:
		return strconv.AppendBool(b, *v)
	case *uint64:
		return strconv.AppendUint(b, *v, 10)
	case *InitSpec:
		b = appendString(b, v.Scheme)
		sep := byte('(')
		field := func(key string) {
			b = append(b, sep)
			b = append(b, key...)
			b = append(b, '=')
			sep = ','
		}
		if v.Value != 0 || math.Signbit(v.Value) {
			field("value")
			b = appendFloat(b, v.Value)
		}
		if v.FanIn != 0 {
			field("fan_in")
			b = strconv.AppendInt(b, int64(v.FanIn), 10)
		}
		if v.FanOut != 0 {
			field("fan_out")
			b = strconv.AppendInt(b, int64(v.FanOut), 10)
		}
		if v.Mode != "" {
			field("mode")
			b = appendString(b, v.Mode)
		}
		if sep == ',' {
			b = append(b, ')')
		}
		return b
	}
	panic(fmt.Sprintf("ir: attribute field of type %T has no printer", p))
}

func appendFloat(b []byte, v float64) []byte { return strconv.AppendFloat(b, v, 'g', -1, 64) }

// appendString appends s bare if it is made only of letters, digits and
// "_./+-", and quoted otherwise.
func appendString(b []byte, s string) []byte {
	if s == "" {
		return append(b, `""`...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("_./+-", c) >= 0) {
			return strconv.AppendQuote(b, s)
		}
	}
	return append(b, s...)
}

// Parse reads a graph in the text form that [Print] writes. It checks the
// syntax and the references between lines (every value is defined once,
// before its uses); it does not check that the graph makes sense: call
// [Graph.Validate] for that. Errors name the line: `line 7: unknown op
// "conv3d"`.
func Parse(src string) (*Graph, error) {
	lines := strings.Split(src, "\n")
	toks := make([][]token, len(lines))
	defined := map[int]int{} // value ID -> line defining it
	for i, line := range lines {
		ts, err := lex(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		toks[i] = ts
		if len(ts) >= 2 && ts[1].kind == '=' {
			if id, ok := valueID(ts[0]); ok {
				if prev, dup := defined[id]; dup {
					return nil, fmt.Errorf("line %d: v%d is defined twice (first on line %d)", i+1, id, prev)
				}
				defined[id] = i + 1
			}
		}
	}
	p := &parser{defined: defined, values: map[int]*Node{}}
	for i, ts := range toks {
		if len(ts) == 0 {
			continue
		}
		p.toks, p.i, p.line = ts, 0, i+1
		if err := p.parseLine(); err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
	}
	if p.g == nil {
		return nil, fmt.Errorf("no graph: the text must start with a line \"graph NAME batch=N\"")
	}
	return p.g, nil
}

// A token is a word (kind 'w'), a quoted string (kind 's', text unquoted)
// or one of the punctuation characters below (kind is the character).
type token struct {
	kind byte
	text string
}

const punct = "=,()[]@:"

func (t token) String() string {
	switch t.kind {
	case 'w':
		return strconv.Quote(t.text)
	case 's':
		return "string " + strconv.Quote(t.text)
	}
	return strconv.Quote(string(t.kind))
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == '#':
			return toks, nil
		case c == '"':
			q, err := strconv.QuotedPrefix(s[i:])
			if err != nil {
				return nil, fmt.Errorf("malformed string %s", s[i:])
			}
			u, err := strconv.Unquote(q)
			if err != nil {
				return nil, fmt.Errorf("malformed string %s", q)
			}
			toks = append(toks, token{'s', u})
			i += len(q)
		case strings.IndexByte(punct, c) >= 0:
			toks = append(toks, token{c, s[i : i+1]})
			i++
		default:
			j := i
			for j < len(s) && isWordByte(s[j]) {
				j++
			}
			toks = append(toks, token{'w', s[i:j]})
			i = j
		}
	}
	return toks, nil
}

func isWordByte(c byte) bool {
	return c != ' ' && c != '\t' && c != '\r' && c != '#' && c != '"' && strings.IndexByte(punct, c) < 0
}

// valueID returns K for a word "vK".
func valueID(t token) (int, bool) {
	if t.kind != 'w' || len(t.text) < 2 || t.text[0] != 'v' {
		return 0, false
	}
	for i := 1; i < len(t.text); i++ {
		if t.text[i] < '0' || t.text[i] > '9' {
			return 0, false
		}
	}
	id, err := strconv.Atoi(t.text[1:])
	return id, err == nil
}

type parser struct {
	g       *Graph
	defined map[int]int   // value ID -> line defining it
	values  map[int]*Node // values defined so far
	toks    []token       // the current line
	i       int           // next token
	line    int
}

var eol = token{kind: '\n'}

func (p *parser) peek() token {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return eol
}

func (p *parser) next() token {
	t := p.peek()
	if p.i < len(p.toks) {
		p.i++
	}
	return t
}

func describe(t token) string {
	if t.kind == '\n' {
		return "end of line"
	}
	return t.String()
}

func (p *parser) expect(kind byte, what string) error {
	if t := p.next(); t.kind != kind {
		return fmt.Errorf("want %s, got %s", what, describe(t))
	}
	return nil
}

func (p *parser) end() error {
	if t := p.peek(); t.kind != '\n' {
		return fmt.Errorf("unexpected %s at end of line", describe(t))
	}
	return nil
}

func (p *parser) parseLine() error {
	first := p.peek()
	if p.g == nil {
		if first.kind != 'w' || first.text != "graph" {
			return fmt.Errorf("want \"graph NAME batch=N\" first, got %s", describe(first))
		}
		return p.header()
	}
	if _, ok := valueID(first); ok && len(p.toks) > 1 && p.toks[1].kind == '=' {
		return p.node()
	}
	if first.kind == 'w' {
		if first.text == "graph" {
			return fmt.Errorf("the graph is declared twice")
		}
		for k, name := range outputKindNames {
			if first.text == name {
				return p.output(OutputKind(k))
			}
		}
	}
	return fmt.Errorf("want a node \"vN = op ...\" or an output \"value NAME = vN\", got %s", describe(first))
}

// header parses "graph NAME batch=N".
func (p *parser) header() error {
	p.next()
	name, err := p.str("graph name")
	if err != nil {
		return err
	}
	if t := p.next(); t.kind != 'w' || t.text != "batch" {
		return fmt.Errorf("want batch=N, got %s", describe(t))
	}
	if err := p.expect('=', "= after batch"); err != nil {
		return err
	}
	batch, err := p.int("batch size")
	if err != nil {
		return err
	}
	p.g = NewGraph(name, batch)
	return p.end()
}

// output parses "KIND NAME = vID".
func (p *parser) output(kind OutputKind) error {
	p.next()
	name, err := p.str(kind.String() + " output name")
	if err != nil {
		return err
	}
	if err := p.expect('=', "="); err != nil {
		return err
	}
	n, err := p.ref()
	if err != nil {
		return err
	}
	p.g.Outputs = append(p.g.Outputs, Output{Kind: kind, Name: name, Node: n})
	return p.end()
}

// ref parses a use of a value, vID, defined on an earlier line.
func (p *parser) ref() (*Node, error) {
	t := p.next()
	id, ok := valueID(t)
	if !ok {
		return nil, fmt.Errorf("want a value vN, got %s", describe(t))
	}
	if n := p.values[id]; n != nil {
		return n, nil
	}
	if line, ok := p.defined[id]; ok {
		return nil, fmt.Errorf("v%d is used before its definition on line %d", id, line)
	}
	return nil, fmt.Errorf("unknown value v%d", id)
}

// node parses "vID = OP ARGS [DTYPE] SHAPE ATTRS [layer=L] [@FILE:LINE]".
func (p *parser) node() error {
	id, _ := valueID(p.next())
	p.next() // =
	t := p.next()
	if t.kind != 'w' {
		return fmt.Errorf("want an op, got %s", describe(t))
	}
	op, ok := OpByName(t.text)
	if !ok {
		return fmt.Errorf("unknown op %q", t.text)
	}
	var args []*Node
	for {
		if _, ok := valueID(p.peek()); !ok {
			break
		}
		a, err := p.ref()
		if err != nil {
			return err
		}
		args = append(args, a)
	}
	dtype := Float32
	if t := p.peek(); t.kind == 'w' {
		switch t.text {
		case "f32":
		case "i32":
			dtype = Int32
		default:
			return fmt.Errorf("want an argument, element type or shape, got %s", describe(t))
		}
		p.next()
	}
	shape, err := p.shape()
	if err != nil {
		return err
	}
	n := p.g.Add(op, shape, Attrs{}, args...)
	n.ID, n.DType = id, dtype
	p.values[id] = n

	seen := map[string]bool{}
	for {
		t := p.next()
		switch t.kind {
		case '\n':
			return nil
		case '@':
			if n.Pos.File, err = p.str("file name"); err != nil {
				return err
			}
			if err := p.expect(':', ": after the file name"); err != nil {
				return err
			}
			if n.Pos.Line, err = p.int("line number"); err != nil {
				return err
			}
			return p.end()
		case 'w':
		default:
			return fmt.Errorf("want an attribute key=value, got %s", describe(t))
		}
		key := t.text
		if seen[key] {
			return fmt.Errorf("%s is given twice", key)
		}
		seen[key] = true
		if err := p.expect('=', "= after "+key); err != nil {
			return err
		}
		if key == "layer" {
			if n.Layer, err = p.str("layer name"); err != nil {
				return err
			}
			continue
		}
		at, ok := attrByName(key)
		if !ok {
			return fmt.Errorf("unknown attribute %q", key)
		}
		if !hasAttr(op, at) {
			return fmt.Errorf("attribute %s does not apply to %s", key, op)
		}
		if err := p.value(key, attrTable[at].field(&n.Attrs)); err != nil {
			return err
		}
	}
}

// shape parses [d0,d1,...].
func (p *parser) shape() (Shape, error) {
	if err := p.expect('[', "a shape [d0,d1,...]"); err != nil {
		return nil, err
	}
	s := Shape{}
	if p.peek().kind == ']' {
		p.next()
		return s, nil
	}
	for {
		d, err := p.int("dimension")
		if err != nil {
			return nil, err
		}
		s = append(s, d)
		switch t := p.next(); t.kind {
		case ']':
			return s, nil
		case ',':
		default:
			return nil, fmt.Errorf("want , or ] in shape, got %s", describe(t))
		}
	}
}

// value parses an attribute value into the field that f points to.
func (p *parser) value(key string, f any) error {
	var err error
	switch v := f.(type) {
	case *string:
		*v, err = p.str(key)
	case *int:
		*v, err = p.int(key)
	case *[2]int:
		if v[0], err = p.int(key); err != nil {
			return err
		}
		if err := p.expect(',', "a pair h,w for "+key); err != nil {
			return err
		}
		v[1], err = p.int(key)
	case *float64:
		*v, err = p.float(key)
	case *bool:
		t := p.next()
		if t.kind != 'w' || (t.text != "true" && t.text != "false") {
			return fmt.Errorf("want true or false for %s, got %s", key, describe(t))
		}
		*v = t.text == "true"
	case *uint64:
		t := p.next()
		if t.kind != 'w' {
			return fmt.Errorf("want an unsigned integer for %s, got %s", key, describe(t))
		}
		if *v, err = strconv.ParseUint(t.text, 10, 64); err != nil {
			return fmt.Errorf("want an unsigned integer for %s, got %s", key, describe(t))
		}
	case *InitSpec:
		err = p.init(v)
	default:
		return fmt.Errorf("attribute %s has no parser (a bug in cnnc)", key)
	}
	return err
}

// init parses scheme(value=V,fan_in=N,fan_out=M,mode=S).
func (p *parser) init(s *InitSpec) error {
	var err error
	if s.Scheme, err = p.str("initialiser"); err != nil {
		return err
	}
	if p.peek().kind != '(' {
		return nil
	}
	p.next()
	if p.peek().kind == ')' {
		p.next()
		return nil
	}
	seen := map[string]bool{}
	for {
		t := p.next()
		if t.kind != 'w' {
			return fmt.Errorf("want an initialiser field, got %s", describe(t))
		}
		if seen[t.text] {
			return fmt.Errorf("initialiser field %s is given twice", t.text)
		}
		seen[t.text] = true
		if err := p.expect('=', "= after "+t.text); err != nil {
			return err
		}
		switch t.text {
		case "value":
			s.Value, err = p.float(t.text)
		case "fan_in":
			s.FanIn, err = p.int(t.text)
		case "fan_out":
			s.FanOut, err = p.int(t.text)
		case "mode":
			s.Mode, err = p.str(t.text)
		default:
			return fmt.Errorf("unknown initialiser field %q; want value, fan_in, fan_out or mode", t.text)
		}
		if err != nil {
			return err
		}
		switch t := p.next(); t.kind {
		case ')':
			return nil
		case ',':
		default:
			return fmt.Errorf("want , or ) in initialiser, got %s", describe(t))
		}
	}
}

// str parses a bare word or a quoted string.
func (p *parser) str(what string) (string, error) {
	t := p.next()
	if t.kind != 'w' && t.kind != 's' {
		return "", fmt.Errorf("want %s, got %s", what, describe(t))
	}
	return t.text, nil
}

func (p *parser) int(what string) (int, error) {
	t := p.next()
	if t.kind == 'w' {
		if v, err := strconv.Atoi(t.text); err == nil {
			return v, nil
		}
	}
	return 0, fmt.Errorf("want an integer for %s, got %s", what, describe(t))
}

func (p *parser) float(what string) (float64, error) {
	t := p.next()
	if t.kind == 'w' {
		if v, err := strconv.ParseFloat(t.text, 64); err == nil {
			return v, nil
		}
	}
	return 0, fmt.Errorf("want a number for %s, got %s", what, describe(t))
}
