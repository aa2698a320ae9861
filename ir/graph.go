package ir

import (
	"fmt"
	"strconv"
	"strings"
)

// A Shape lists a tensor's dimensions, outermost first. A scalar has the
// empty shape.
type Shape []int

// Size returns the number of elements.
func (s Shape) Size() int {
	n := 1
	for _, d := range s {
		n *= d
	}
	return n
}

// Equal reports whether s and t have the same dimensions.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// String formats the shape as [2,3,4].
func (s Shape) String() string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// Clone returns a copy of s that shares no memory with it.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// A DType is the element type of a value.
type DType uint8

const (
	Float32 DType = iota // every tensor but labels
	Int32                // class labels
)

// String returns "f32" or "i32".
func (d DType) String() string {
	if d == Int32 {
		return "i32"
	}
	return "f32"
}

// A Pos is a position in a model file.
type Pos struct {
	File string
	Line int
}

// IsValid reports whether the position is known.
func (p Pos) IsValid() bool { return p.Line > 0 }

// String formats the position as file:line, or "" if unknown.
func (p Pos) String() string {
	if !p.IsValid() {
		return ""
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// InitSpec says how a parameter or buffer starts. The generated code hands
// it to the runtime's initialisers, which define the schemes:
// "zeros", "ones", "const" (Value), "normal" (std Value), "uniform"
// (bound Value), "xavier_normal" and "xavier_uniform" (gain Value, 1 if 0),
// "kaiming_normal" and "kaiming_uniform" (Mode "fan_in" or "fan_out"), and
// "torch_default" (uniform with bound 1/sqrt(FanIn), PyTorch's default for
// convolution and linear weights and biases).
type InitSpec struct {
	Scheme string
	Value  float64
	FanIn  int
	FanOut int
	Mode   string
}

// InitSchemes lists the schemes an InitSpec may name.
var InitSchemes = []string{
	"zeros", "ones", "const", "normal", "uniform",
	"xavier_normal", "xavier_uniform", "kaiming_normal", "kaiming_uniform",
	"torch_default",
}

// Attrs holds an op's attributes. Each op uses the fields its op table
// entry lists; the others stay zero.
type Attrs struct {
	Name     string   // Input, Labels, Param, Buffer: the feed or state_dict name
	Classes  int      // Labels: number of classes
	Init     InitSpec // Param, Buffer: how it starts
	Value    float64  // Const: every element's value
	Stride   [2]int   // convolution and pooling: step (height, width)
	Pad      [2]int   // convolution and pooling: padding on each side
	Dilation [2]int   // convolution: spacing of kernel taps
	Groups   int      // convolution: channel groups
	Kernel   [2]int   // pooling: window (height, width)
	Eps      float64  // batch-norm: added to the variance
	Momentum float64  // running statistics: weight of the new batch
	Alpha    float64  // leaky ReLU: negative slope; scale: the factor
	Keep     float64  // dropout: keep probability
	Classic  bool     // dropout: classic (no 1/Keep in training) rather than inverted
	Seed     uint64   // dropout: mask stream
	Lambda   float64  // regularisers: weight
	Beta     float64  // elastic net: weight of the squared term
	Margin   float64  // SVM loss: margin (delta)
	Index    int      // result: which value of its op (1 or more)
}

// A Node is one value of the graph and the op that computes it.
type Node struct {
	ID    int // dense: index in Graph.Nodes
	Op    Op  // what it computes
	Args  []*Node
	Shape Shape // static shape of the result
	DType DType
	Attrs Attrs
	Layer string // name of the user's layer that made it ("conv2"), if any
	Pos   Pos    // where in the model file it was made, if known
}

// String names the node for messages: v12 (conv2d "conv2").
func (n *Node) String() string {
	if n.Layer != "" {
		return fmt.Sprintf("v%d (%s %q)", n.ID, n.Op, n.Layer)
	}
	return fmt.Sprintf("v%d (%s)", n.ID, n.Op)
}

// An OutputKind says what a graph output is for.
type OutputKind uint8

const (
	OutValue  OutputKind = iota // a named result, such as "logits"
	OutLoss                     // the scalar training loss
	OutGrad                     // the gradient of the loss for the parameter Name
	OutUpdate                   // the new value of the buffer Name after the step
)

var outputKindNames = [...]string{"value", "loss", "grad", "update"}

// String returns the kind's name in the text form.
func (k OutputKind) String() string {
	if int(k) < len(outputKindNames) {
		return outputKindNames[k]
	}
	return "output?"
}

// An Output is a value the graph hands back to its caller.
type Output struct {
	Kind OutputKind
	Name string
	Node *Node
}

// A Graph is a static computation over tensors. Nodes are in topological
// order and Nodes[i].ID == i.
type Graph struct {
	Name    string
	Batch   int // the largest batch a call may pass
	Nodes   []*Node
	Outputs []Output

	// errs holds the mistakes the builder met; Validate reports them.
	errs ErrorList
}

// NewGraph returns an empty graph. Most users want [NewBuilder] instead.
func NewGraph(name string, batch int) *Graph {
	return &Graph{Name: name, Batch: batch}
}

// Add appends a node computing op over args with the given shape and
// returns it. It does not check the node; Validate does.
func (g *Graph) Add(op Op, shape Shape, attrs Attrs, args ...*Node) *Node {
	n := &Node{ID: len(g.Nodes), Op: op, Args: args, Shape: shape, Attrs: attrs}
	if op == OpLabels {
		n.DType = Int32
	}
	g.Nodes = append(g.Nodes, n)
	return n
}

// Output returns the output with the given kind and name, or nil.
func (g *Graph) Output(kind OutputKind, name string) *Node {
	for _, o := range g.Outputs {
		if o.Kind == kind && o.Name == name {
			return o.Node
		}
	}
	return nil
}

// Loss returns the loss output, or nil if the graph has none.
func (g *Graph) Loss() *Node {
	for _, o := range g.Outputs {
		if o.Kind == OutLoss {
			return o.Node
		}
	}
	return nil
}

// Params returns the graph's parameter nodes in order.
func (g *Graph) Params() []*Node { return g.nodesOf(OpParam) }

// Buffers returns the graph's buffer nodes in order.
func (g *Graph) Buffers() []*Node { return g.nodesOf(OpBuffer) }

// Inputs returns the graph's input nodes in order.
func (g *Graph) Inputs() []*Node { return g.nodesOf(OpInput) }

// LabelsNode returns the graph's labels node, or nil.
func (g *Graph) LabelsNode() *Node {
	if ls := g.nodesOf(OpLabels); len(ls) > 0 {
		return ls[0]
	}
	return nil
}

func (g *Graph) nodesOf(op Op) []*Node {
	var ns []*Node
	for _, n := range g.Nodes {
		if n.Op == op {
			ns = append(ns, n)
		}
	}
	return ns
}

// Uses returns, for every node ID, the nodes that take it as an argument.
func (g *Graph) Uses() [][]*Node {
	uses := make([][]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, a := range n.Args {
			uses[a.ID] = append(uses[a.ID], n)
		}
	}
	return uses
}

// Renumber sorts the nodes reachable from the outputs, and every input,
// parameter and buffer (the model's interface, used or not), into a topological order that keeps the existing relative order where it
// can, drops the rest, and gives them dense IDs again. Passes that add or
// remove nodes call it when they are done.
func (g *Graph) Renumber() {
	keep := make(map[*Node]bool, len(g.Nodes))
	var visit func(n *Node)
	visit = func(n *Node) {
		if keep[n] {
			return
		}
		keep[n] = true
		for _, a := range n.Args {
			visit(a)
		}
	}
	for _, o := range g.Outputs {
		visit(o.Node)
	}
	for _, n := range g.Nodes {
		if n.Op == OpParam || n.Op == OpBuffer || n.Op == OpInput {
			keep[n] = true
		}
	}
	// Emit in the existing order, but never before an argument; then put
	// the results of an op with several right after it.
	order := make([]*Node, 0, len(keep))
	done := make(map[*Node]bool, len(keep))
	var emit func(n *Node)
	emit = func(n *Node) {
		if done[n] {
			return
		}
		done[n] = true
		for _, a := range n.Args {
			emit(a)
		}
		order = append(order, n)
	}
	for _, n := range g.Nodes {
		if keep[n] {
			emit(n)
		}
	}
	order = PlaceResults(order)
	for i, n := range order {
		n.ID = i
	}
	g.Nodes = order
}

// Clone returns a deep copy of g: new nodes with the same IDs, ops,
// shapes, attributes and edges.
func (g *Graph) Clone() *Graph {
	c := &Graph{Name: g.Name, Batch: g.Batch, errs: append(ErrorList(nil), g.errs...)}
	m := make(map[*Node]*Node, len(g.Nodes))
	for _, n := range g.Nodes {
		cn := *n
		cn.Shape = n.Shape.Clone()
		cn.Args = make([]*Node, len(n.Args))
		for i, a := range n.Args {
			cn.Args[i] = m[a]
		}
		m[n] = &cn
		c.Nodes = append(c.Nodes, &cn)
	}
	for _, o := range g.Outputs {
		c.Outputs = append(c.Outputs, Output{Kind: o.Kind, Name: o.Name, Node: m[o.Node]})
	}
	return c
}

// ReplaceUses makes every node and output that uses old use new instead.
func (g *Graph) ReplaceUses(old, new *Node) {
	for _, n := range g.Nodes {
		for i, a := range n.Args {
			if a == old {
				n.Args[i] = new
			}
		}
	}
	for i := range g.Outputs {
		if g.Outputs[i].Node == old {
			g.Outputs[i].Node = new
		}
	}
}
