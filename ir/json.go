package ir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
)

// A graph's JSON form is what tools read and what `cnnc compile` gets from
// the program that builds the user's graph. The schema is stable:
//
//	{
//	  "name": "lenet5",
//	  "batch": 64,
//	  "nodes": [
//	    {"id": 0, "op": "input", "args": [], "shape": [64,1,28,28], "dtype": "f32",
//	     "attrs": {"name": "x"}, "layer": "x", "pos": {"file": "model.go", "line": 12}},
//	    {"id": 4, "op": "conv2d", "args": [0,2,3], "shape": [64,6,28,28], "dtype": "f32",
//	     "attrs": {"stride": [1,1], "pad": [2,2], "dilation": [1,1], "groups": 1},
//	     "layer": "conv1", "pos": {"file": "model.go", "line": 15}},
//	    ...
//	  ],
//	  "outputs": [{"kind": "value", "name": "logits", "node": 21},
//	              {"kind": "loss", "name": "loss", "node": 22}],
//	  "errors": [{"pos": {"file": "model.go", "line": 17}, "op": "conv2d", "layer": "conv2",
//	              "msg": "input has 6 channels, the layer expects 16"}]
//	}
//
// Nodes come in the graph's order; "args" and "node" refer to node IDs,
// and an argument's node comes before its use. "op" is the op's name in
// the text form, "dtype" is "f32" or "i32" (absent means "f32"), "shape"
// is [] for a scalar. "attrs" holds exactly the attributes the op's table
// entry lists, under their text-form names, in table order: strings,
// integers, pairs as [h, w], booleans, the dropout seed as an unsigned
// 64-bit integer, floats as numbers or, when not finite, as the strings
// "NaN", "+Inf" and "-Inf", and an initialiser as {"scheme", "value",
// "fan_in", "fan_out", "mode"} with its zero fields left out. "layer" and
// "pos" are left out when unknown. "kind" is "value", "loss", "grad" or
// "update". "errors" lists the mistakes the builder met, as [Graph.Validate]
// reports them ("op" and "layer" left out when empty), so that a graph
// decoded from JSON validates exactly as the one that was encoded.
// Decoding rejects fields the schema does not name.

type jsonGraph struct {
	Name    string       `json:"name"`
	Batch   int          `json:"batch"`
	Nodes   []jsonNode   `json:"nodes"`
	Outputs []jsonOutput `json:"outputs"`
	Errors  []jsonError  `json:"errors"`
}

type jsonNode struct {
	ID    int             `json:"id"`
	Op    string          `json:"op"`
	Args  []int           `json:"args"`
	Shape []int           `json:"shape"`
	DType string          `json:"dtype,omitempty"`
	Attrs json.RawMessage `json:"attrs,omitempty"`
	Layer string          `json:"layer,omitempty"`
	Pos   *jsonPos        `json:"pos,omitempty"`
}

type jsonPos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

type jsonOutput struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Node int    `json:"node"`
}

type jsonError struct {
	Pos   *jsonPos `json:"pos,omitempty"`
	Op    string   `json:"op,omitempty"`
	Layer string   `json:"layer,omitempty"`
	Msg   string   `json:"msg"`
}

type jsonInit struct {
	Scheme string     `json:"scheme"`
	Value  *jsonFloat `json:"value,omitempty"`
	FanIn  int        `json:"fan_in,omitempty"`
	FanOut int        `json:"fan_out,omitempty"`
	Mode   string     `json:"mode,omitempty"`
}

// A jsonFloat is a float64 that JSON can hold even when it is NaN or
// infinite.
type jsonFloat float64

func (f jsonFloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	switch {
	case math.IsNaN(v):
		return []byte(`"NaN"`), nil
	case math.IsInf(v, 1):
		return []byte(`"+Inf"`), nil
	case math.IsInf(v, -1):
		return []byte(`"-Inf"`), nil
	}
	return json.Marshal(v)
}

func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		switch s {
		case "NaN":
			*f = jsonFloat(math.NaN())
		case "+Inf":
			*f = jsonFloat(math.Inf(1))
		case "-Inf":
			*f = jsonFloat(math.Inf(-1))
		default:
			return fmt.Errorf("want a number, \"NaN\", \"+Inf\" or \"-Inf\", got %q", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jsonFloat(v)
	return nil
}

func toJSONPos(p Pos) *jsonPos {
	if p == (Pos{}) {
		return nil
	}
	return &jsonPos{File: p.File, Line: p.Line}
}

func fromJSONPos(p *jsonPos) Pos {
	if p == nil {
		return Pos{}
	}
	return Pos{File: p.File, Line: p.Line}
}

// MarshalJSON encodes the graph in the JSON form described above. It
// fails only for a graph whose nodes or outputs refer to nodes that are
// not in it.
func (g *Graph) MarshalJSON() ([]byte, error) {
	in := make(map[*Node]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		if n == nil {
			return nil, fmt.Errorf("graph json: node %d is nil", i)
		}
		in[n] = true
	}
	jg := jsonGraph{
		Name:    g.Name,
		Batch:   g.Batch,
		Nodes:   make([]jsonNode, 0, len(g.Nodes)),
		Outputs: make([]jsonOutput, 0, len(g.Outputs)),
		Errors:  make([]jsonError, 0, len(g.errs)),
	}
	for _, n := range g.Nodes {
		jn := jsonNode{
			ID:    n.ID,
			Op:    n.Op.String(),
			Args:  make([]int, len(n.Args)),
			Shape: append([]int{}, n.Shape...),
			DType: n.DType.String(),
			Layer: n.Layer,
			Pos:   toJSONPos(n.Pos),
		}
		for i, a := range n.Args {
			if !in[a] {
				return nil, fmt.Errorf("graph json: %v: argument %d is not in the graph", n, i)
			}
			jn.Args[i] = a.ID
		}
		attrs, err := marshalAttrs(n)
		if err != nil {
			return nil, fmt.Errorf("graph json: %v: %v", n, err)
		}
		jn.Attrs = attrs
		jg.Nodes = append(jg.Nodes, jn)
	}
	for _, o := range g.Outputs {
		if !in[o.Node] {
			return nil, fmt.Errorf("graph json: %s output %q is not a node of the graph", o.Kind, o.Name)
		}
		jg.Outputs = append(jg.Outputs, jsonOutput{Kind: o.Kind.String(), Name: o.Name, Node: o.Node.ID})
	}
	for _, e := range g.errs {
		je := jsonError{Pos: toJSONPos(e.Pos), Layer: e.Layer, Msg: e.Msg}
		if e.Op != OpInvalid {
			je.Op = e.Op.String()
		}
		jg.Errors = append(jg.Errors, je)
	}
	return json.Marshal(jg)
}

// marshalAttrs encodes the attributes n's op uses, in table order.
func marshalAttrs(n *Node) (json.RawMessage, error) {
	ats := opAttrs(n.Op)
	if len(ats) == 0 {
		return nil, nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	for i, at := range ats {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Quote(attrTable[at].name))
		b.WriteByte(':')
		var v any
		switch f := attrTable[at].field(&n.Attrs).(type) {
		case *float64:
			v = jsonFloat(*f)
		case *InitSpec:
			ji := jsonInit{Scheme: f.Scheme, FanIn: f.FanIn, FanOut: f.FanOut, Mode: f.Mode}
			if f.Value != 0 || math.Signbit(f.Value) {
				x := jsonFloat(f.Value)
				ji.Value = &x
			}
			v = ji
		default:
			v = f
		}
		enc, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("attribute %s: %v", attrTable[at].name, err)
		}
		b.Write(enc)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes a graph in the JSON form described above,
// replacing g's contents, including the builder errors that Validate
// reports. It checks the schema and the references between nodes, not
// that the graph makes sense: call [Graph.Validate] for that.
func (g *Graph) UnmarshalJSON(data []byte) error {
	if string(bytes.TrimSpace(data)) == "null" {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var jg jsonGraph
	if err := dec.Decode(&jg); err != nil {
		return fmt.Errorf("graph json: %v", err)
	}
	ng, err := fromJSON(&jg)
	if err != nil {
		return fmt.Errorf("graph json: %v", err)
	}
	*g = *ng
	return nil
}

func fromJSON(jg *jsonGraph) (*Graph, error) {
	g := NewGraph(jg.Name, jg.Batch)
	defined := make(map[int]bool, len(jg.Nodes))
	for i, jn := range jg.Nodes {
		if defined[jn.ID] {
			return nil, fmt.Errorf("nodes[%d]: id %d is used twice", i, jn.ID)
		}
		defined[jn.ID] = true
	}
	byID := make(map[int]*Node, len(jg.Nodes))
	for i, jn := range jg.Nodes {
		where := fmt.Sprintf("nodes[%d] (v%d)", i, jn.ID)
		op, ok := OpByName(jn.Op)
		if !ok {
			return nil, fmt.Errorf("%s: unknown op %q", where, jn.Op)
		}
		args := make([]*Node, len(jn.Args))
		for j, id := range jn.Args {
			a := byID[id]
			switch {
			case a != nil:
			case defined[id]:
				return nil, fmt.Errorf("%s: argument v%d is used before its definition", where, id)
			default:
				return nil, fmt.Errorf("%s: unknown argument v%d", where, id)
			}
			args[j] = a
		}
		n := g.Add(op, Shape(append([]int{}, jn.Shape...)), Attrs{}, args...)
		n.ID, n.Layer, n.Pos = jn.ID, jn.Layer, fromJSONPos(jn.Pos)
		switch jn.DType {
		case "f32", "":
			n.DType = Float32
		case "i32":
			n.DType = Int32
		default:
			return nil, fmt.Errorf("%s: unknown dtype %q; want \"f32\" or \"i32\"", where, jn.DType)
		}
		if err := unmarshalAttrs(n, jn.Attrs); err != nil {
			return nil, fmt.Errorf("%s: %v", where, err)
		}
		byID[jn.ID] = n
	}
	for i, jo := range jg.Outputs {
		kind := -1
		for k, name := range outputKindNames {
			if jo.Kind == name {
				kind = k
			}
		}
		if kind < 0 {
			return nil, fmt.Errorf("outputs[%d]: unknown kind %q; want value, loss, grad or update", i, jo.Kind)
		}
		n := byID[jo.Node]
		if n == nil {
			return nil, fmt.Errorf("outputs[%d]: unknown node v%d", i, jo.Node)
		}
		g.Outputs = append(g.Outputs, Output{Kind: OutputKind(kind), Name: jo.Name, Node: n})
	}
	for i, je := range jg.Errors {
		e := &Error{Pos: fromJSONPos(je.Pos), Layer: je.Layer, Msg: je.Msg}
		if je.Op != "" {
			op, ok := OpByName(je.Op)
			if !ok {
				return nil, fmt.Errorf("errors[%d]: unknown op %q", i, je.Op)
			}
			e.Op = op
		}
		g.errs = append(g.errs, e)
	}
	return g, nil
}

// unmarshalAttrs decodes the attributes of n's op from raw.
func unmarshalAttrs(n *Node, raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("attrs: %v", err)
	}
	keys := make([]string, 0, len(m))
	for key := range m {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		v := m[key]
		at, ok := attrByName(key)
		if !ok {
			return fmt.Errorf("unknown attribute %q", key)
		}
		if !hasAttr(n.Op, at) {
			return fmt.Errorf("attribute %s does not apply to %s", key, n.Op)
		}
		if err := unmarshalValue(v, attrTable[at].field(&n.Attrs)); err != nil {
			return fmt.Errorf("attribute %s: %v", key, err)
		}
	}
	return nil
}

func unmarshalValue(raw json.RawMessage, f any) error {
	switch v := f.(type) {
	case *float64:
		var x jsonFloat
		if err := json.Unmarshal(raw, &x); err != nil {
			return err
		}
		*v = float64(x)
		return nil
	case *[2]int:
		var pair []int
		if err := json.Unmarshal(raw, &pair); err != nil {
			return err
		}
		if len(pair) != 2 {
			return fmt.Errorf("want a pair [h, w], got %d numbers", len(pair))
		}
		*v = [2]int{pair[0], pair[1]}
		return nil
	case *InitSpec:
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		var ji jsonInit
		if err := dec.Decode(&ji); err != nil {
			return err
		}
		*v = InitSpec{Scheme: ji.Scheme, FanIn: ji.FanIn, FanOut: ji.FanOut, Mode: ji.Mode}
		if ji.Value != nil {
			v.Value = float64(*ji.Value)
		}
		return nil
	}
	return json.Unmarshal(raw, f)
}
