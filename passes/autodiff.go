package passes

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

// Autodiff returns the training graph of a forward graph with a loss: a
// copy of g with backward nodes added and one "grad" output per
// parameter. The forward graph is left as it was.
func Autodiff(g *ir.Graph) (*ir.Graph, error) {
	t := g.Clone()
	if err := autodiff(t); err != nil {
		return nil, err
	}
	return t, nil
}

// AutodiffInputs is Autodiff that also outputs the gradient of the loss
// with respect to every input, as a value output named "grad.<input>".
// Tests compare it with PyTorch's x.grad.
func AutodiffInputs(g *ir.Graph) (*ir.Graph, error) {
	t := g.Clone()
	if err := differentiate(t, true); err != nil {
		return nil, err
	}
	return t, nil
}

func autodiff(g *ir.Graph) error { return differentiate(g, false) }

// differentiate adds reverse-mode gradient nodes to g. It walks the nodes
// in reverse topological order, applying each op's rule to the gradient
// of its result; gradients that reach a node along several paths are
// summed with add nodes, in the order the paths are met.
func differentiate(g *ir.Graph, inputs bool) error {
	loss := g.Loss()
	if loss == nil {
		return fmt.Errorf("model %q has no loss to differentiate", g.Name)
	}
	for _, o := range g.Outputs {
		if o.Kind == ir.OutGrad {
			return fmt.Errorf("model %q is already differentiated", g.Name)
		}
	}
	forward := append([]*ir.Node(nil), g.Nodes...)

	// needs[id] says whether the loss's gradient must flow into node id:
	// it is a parameter (or an input, when asked) or depends on one.
	needs := make([]bool, len(forward))
	for _, n := range forward {
		switch n.Op {
		case ir.OpParam:
			needs[n.ID] = true
		case ir.OpInput:
			needs[n.ID] = inputs
		default:
			for _, a := range n.Args {
				needs[n.ID] = needs[n.ID] || needs[a.ID]
			}
		}
	}

	d := &differ{g: g, grads: make([]*ir.Node, len(forward)), needs: needs}
	seed := g.Add(ir.OpConst, ir.Shape{}, ir.Attrs{Value: 1})
	seed.Pos, seed.Layer = loss.Pos, loss.Layer
	d.grads[loss.ID] = seed

	for i := len(forward) - 1; i >= 0; i-- {
		n := forward[i]
		dy := d.grads[n.ID]
		if dy == nil || n.Op.IsLeaf() {
			continue
		}
		d.at = n
		if err := d.rule(n, dy); err != nil {
			return err
		}
	}

	for _, p := range g.Params() {
		grad := d.grads[p.ID]
		if grad == nil {
			// The loss does not depend on this parameter: its gradient is 0.
			grad = g.Add(ir.OpConst, p.Shape.Clone(), ir.Attrs{Value: 0})
			grad.Pos, grad.Layer = p.Pos, p.Layer
		}
		g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutGrad, Name: p.Attrs.Name, Node: grad})
	}
	if inputs {
		for _, x := range g.Inputs() {
			if grad := d.grads[x.ID]; grad != nil {
				g.Outputs = append(g.Outputs, ir.Output{Kind: ir.OutValue, Name: "grad." + x.Attrs.Name, Node: grad})
			}
		}
	}
	g.Renumber()
	return nil
}

// differ holds the state of one differentiation.
type differ struct {
	g     *ir.Graph
	grads []*ir.Node // gradient of the loss with respect to each forward node
	needs []bool
	at    *ir.Node // the forward node whose rule is running
}

// node adds a backward node for the forward node d.at.
func (d *differ) node(op ir.Op, shape ir.Shape, attrs ir.Attrs, args ...*ir.Node) *ir.Node {
	n := d.g.Add(op, shape.Clone(), attrs, args...)
	n.Pos, n.Layer = d.at.Pos, d.at.Layer
	return n
}

// flow adds grad to the gradient of x, if x needs one.
func (d *differ) flow(x, grad *ir.Node) {
	if !d.needs[x.ID] {
		return
	}
	if prev := d.grads[x.ID]; prev != nil {
		grad = d.node(ir.OpAdd, x.Shape, ir.Attrs{}, prev, grad)
	}
	d.grads[x.ID] = grad
}

// wants reports whether argument i of n needs a gradient.
func (d *differ) wants(n *ir.Node, i int) bool {
	return i < len(n.Args) && d.needs[n.Args[i].ID]
}

// rule adds the backward nodes of forward node n, whose result has
// gradient dy.
func (d *differ) rule(n *ir.Node, dy *ir.Node) error {
	a := n.Attrs
	args := n.Args
	switch n.Op {
	case ir.OpConv2D:
		x, w := args[0], args[1]
		if d.wants(n, 0) {
			d.flow(x, d.node(ir.OpConv2DBackwardData, x.Shape, a, dy, w))
		}
		if d.wants(n, 1) {
			d.flow(w, d.node(ir.OpConv2DBackwardFilter, w.Shape, a, x, dy))
		}
		if d.wants(n, 2) {
			d.flow(args[2], d.node(ir.OpBiasGrad, args[2].Shape, ir.Attrs{}, dy))
		}

	case ir.OpLinear:
		x, w := args[0], args[1]
		if d.wants(n, 0) {
			d.flow(x, d.node(ir.OpLinearBackwardData, x.Shape, ir.Attrs{}, dy, w))
		}
		if d.wants(n, 1) {
			d.flow(w, d.node(ir.OpLinearBackwardWeight, w.Shape, ir.Attrs{}, x, dy))
		}
		if d.wants(n, 2) {
			d.flow(args[2], d.node(ir.OpBiasGrad, args[2].Shape, ir.Attrs{}, dy))
		}

	case ir.OpMaxPool:
		d.flow(args[0], d.node(ir.OpMaxPoolBackward, args[0].Shape, a, args[0], dy))
	case ir.OpAvgPool:
		d.flow(args[0], d.node(ir.OpAvgPoolBackward, args[0].Shape, a, dy))
	case ir.OpReshape:
		d.flow(args[0], d.node(ir.OpReshape, args[0].Shape, ir.Attrs{}, dy))

	// Element-wise activations differentiate through their output, so
	// their input need not be kept and they can run in place.
	case ir.OpReLU:
		d.flow(args[0], d.node(ir.OpReLUBackward, n.Shape, ir.Attrs{}, n, dy))
	case ir.OpLeakyReLU:
		d.flow(args[0], d.node(ir.OpLeakyReLUBackward, n.Shape, a, n, dy))
	case ir.OpTanh:
		d.flow(args[0], d.node(ir.OpTanhBackward, n.Shape, ir.Attrs{}, n, dy))
	case ir.OpSigmoid:
		d.flow(args[0], d.node(ir.OpSigmoidBackward, n.Shape, ir.Attrs{}, n, dy))
	case ir.OpSoftmax:
		d.flow(args[0], d.node(ir.OpSoftmaxBackward, n.Shape, ir.Attrs{}, n, dy))

	case ir.OpBatchNorm:
		x, gamma, beta := args[0], args[1], args[2]
		if d.wants(n, 0) {
			d.flow(x, d.node(ir.OpBatchNormBackward, x.Shape, a, x, gamma, dy))
		}
		if d.wants(n, 1) {
			d.flow(gamma, d.node(ir.OpBatchNormBackwardGamma, gamma.Shape, a, x, dy))
		}
		if d.wants(n, 2) {
			d.flow(beta, d.node(ir.OpBiasGrad, beta.Shape, ir.Attrs{}, dy))
		}

	case ir.OpDropout:
		d.flow(args[0], d.node(ir.OpDropoutBackward, n.Shape, a, dy))

	case ir.OpAdd:
		d.flow(args[0], dy)
		d.flow(args[1], dy)
	case ir.OpScale:
		d.flow(args[0], d.node(ir.OpScale, n.Shape, a, dy))

	case ir.OpSoftmaxCrossEntropy:
		d.flow(args[0], d.node(ir.OpSoftmaxCrossEntropyBackward, args[0].Shape, ir.Attrs{}, args[0], args[1], dy))
	case ir.OpSVMLoss:
		d.flow(args[0], d.node(ir.OpSVMLossBackward, args[0].Shape, a, args[0], args[1], dy))
	case ir.OpL2:
		d.flow(args[0], d.node(ir.OpL2Backward, args[0].Shape, a, args[0], dy))
	case ir.OpL1:
		d.flow(args[0], d.node(ir.OpL1Backward, args[0].Shape, a, args[0], dy))
	case ir.OpElasticNet:
		d.flow(args[0], d.node(ir.OpElasticNetBackward, args[0].Shape, a, args[0], dy))

	default:
		return fmt.Errorf("%s: cannot differentiate %s; training graphs are made from forward ops only", n, n.Op)
	}
	return nil
}
