package passes

import (
	"math"

	"github.com/cnnc/cnnc/ir"
)

// FoldConstants evaluates what can be known before the model runs and
// removes operations that do nothing:
//
//   - an element-wise op, reshape or scale whose arguments are all
//     uniform constants becomes a constant;
//   - scale by 1 and add of a zero constant become their other argument;
//   - scale of a scale becomes one scale.
//
// Autodiff's seed (the constant 1 that starts backpropagation) and the
// zero gradients of unused parameters are what it usually finds.
func FoldConstants(g *ir.Graph) error {
	changed := false
	for _, n := range g.Nodes {
		if r := fold(g, n); r != nil && r != n {
			g.ReplaceUses(n, r)
			changed = true
		}
	}
	if changed {
		g.Renumber()
	}
	return nil
}

// fold returns the node that can stand for n, or nil.
func fold(g *ir.Graph, n *ir.Node) *ir.Node {
	constant := func(v float64) *ir.Node {
		c := g.Add(ir.OpConst, n.Shape.Clone(), ir.Attrs{Value: v})
		c.Pos, c.Layer = n.Pos, n.Layer
		return c
	}
	isConst := func(a *ir.Node, v float64) bool { return a.Op == ir.OpConst && a.Attrs.Value == v }
	args := n.Args
	switch n.Op {
	case ir.OpScale:
		x := args[0]
		switch {
		case x.Op == ir.OpConst:
			return constant(n.Attrs.Alpha * x.Attrs.Value)
		case n.Attrs.Alpha == 1:
			return x
		case x.Op == ir.OpScale:
			alpha := n.Attrs.Alpha * x.Attrs.Alpha
			if alpha == 1 {
				return x.Args[0]
			}
			s := g.Add(ir.OpScale, n.Shape.Clone(), ir.Attrs{Alpha: alpha}, x.Args[0])
			s.Pos, s.Layer = n.Pos, n.Layer
			return s
		}
	case ir.OpAdd:
		a, b := args[0], args[1]
		switch {
		case a.Op == ir.OpConst && b.Op == ir.OpConst:
			return constant(a.Attrs.Value + b.Attrs.Value)
		case isConst(a, 0):
			return b
		case isConst(b, 0):
			return a
		}
	case ir.OpReshape:
		if args[0].Op == ir.OpConst {
			return constant(args[0].Attrs.Value)
		}
	case ir.OpReLU, ir.OpLeakyReLU, ir.OpTanh, ir.OpSigmoid:
		if args[0].Op == ir.OpConst {
			x := &ir.Node{Op: n.Op, Attrs: n.Attrs}
			return constant(elementwise(x, args[0].Attrs.Value))
		}
	}
	return nil
}

// elementwise applies a unary element-wise forward op to one value, as
// the op table defines it.
func elementwise(n *ir.Node, v float64) float64 {
	switch n.Op {
	case ir.OpReLU:
		return max(v, 0)
	case ir.OpLeakyReLU:
		if v > 0 {
			return v
		}
		return n.Attrs.Alpha * v
	case ir.OpTanh:
		return math.Tanh(v)
	case ir.OpSigmoid:
		return 1 / (1 + math.Exp(-v))
	}
	return v
}
