package eval

import (
	"fmt"
	"math"

	"github.com/cnnc/cnnc/ir"
)

// Options are the per-call settings that some ops read.
type Options struct {
	Step    uint64 // the training step, for dropout masks
	RunSeed uint64 // mixed into every dropout layer's seed
}

// Run evaluates every node of g in order and returns one tensor per node
// ID. feeds maps names to tensors for every input, labels, param and buffer
// node (by Attrs.Name); feeds the graph does not use are ignored, and no
// feed is modified or kept. Run fails, naming the feed, if a feed is
// missing or has the wrong shape, or if a label is not a whole number in
// [0, Classes); it fails on a graph that does not validate.
func Run(g *ir.Graph, feeds map[string]*Tensor, opts Options) ([]*Tensor, error) {
	if err := g.Validate(); err != nil {
		return nil, fmt.Errorf("eval: graph %q is not valid: %w", g.Name, err)
	}
	vals := make([]*Tensor, len(g.Nodes))
	results := map[*ir.Node][]*Tensor{} // of the ops with several
	for _, n := range g.Nodes {
		args := make([]*Tensor, len(n.Args))
		for i, a := range n.Args {
			args[i] = vals[a.ID]
		}
		var (
			t   *Tensor
			err error
		)
		switch {
		case n.Op.IsLeaf() && n.Op != ir.OpConst:
			t, err = feed(n, feeds)
		case n.Op == ir.OpResult:
			t = results[n.Args[0]][n.Attrs.Index]
		case n.Op.Results() > 1:
			var ts []*Tensor
			if ts, err = evalResults(n, args); err == nil {
				results[n], t = ts, ts[0]
			}
		default:
			t, err = evalNode(n, args, opts)
		}
		if err != nil {
			return nil, fmt.Errorf("eval: %v: %w", n, err)
		}
		vals[n.ID] = t
	}
	return vals, nil
}

// Outputs runs g and returns its outputs, keyed "<kind>:<name>":
// "value:logits", "loss:loss", "grad:conv1.weight",
// "update:bn1.running_mean".
func Outputs(g *ir.Graph, feeds map[string]*Tensor, opts Options) (map[string]*Tensor, error) {
	vals, err := Run(g, feeds, opts)
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Tensor, len(g.Outputs))
	for _, o := range g.Outputs {
		out[OutputKey(o)] = vals[o.Node.ID]
	}
	return out, nil
}

// OutputKey returns the key under which [Outputs] reports o.
func OutputKey(o ir.Output) string { return o.Kind.String() + ":" + o.Name }

// feed returns a copy of the feed for leaf n, after checking it.
func feed(n *ir.Node, feeds map[string]*Tensor) (*Tensor, error) {
	name := n.Attrs.Name
	t, ok := feeds[name]
	if !ok || t == nil {
		return nil, fmt.Errorf("missing feed %q (%s %v)", name, n.Op, n.Shape)
	}
	if err := t.checkShape(n.Shape); err != nil {
		return nil, fmt.Errorf("feed %q %v", name, err)
	}
	if n.Op == ir.OpLabels {
		for i, v := range t.Data {
			if v != math.Trunc(v) || v < 0 || (n.Attrs.Classes > 0 && v >= float64(n.Attrs.Classes)) {
				return nil, fmt.Errorf("feed %q: label %v at index %d is not a class in [0, %d)", name, v, i, n.Attrs.Classes)
			}
		}
	}
	return t.Clone(), nil
}

// evalResults computes every result of node n, an op with several.
func evalResults(n *ir.Node, args []*Tensor) ([]*Tensor, error) {
	if err := checkGroups(args[1].Shape[0], n.Attrs.Groups); err != nil {
		return nil, err
	}
	switch n.Op {
	case ir.OpConv2DBNReLU:
		return convBNReLU(args, n.Attrs, n.Shape), nil
	case ir.OpConv2DBNReLUBackward:
		return convBNReLUBackward(args, n.Attrs), nil
	}
	return nil, fmt.Errorf("op %s is not implemented", n.Op)
}

// evalNode computes node n from its arguments' values.
func evalNode(n *ir.Node, args []*Tensor, opts Options) (*Tensor, error) {
	a := n.Attrs
	shape := n.Shape
	arg := func(i int) *Tensor {
		if i < len(args) {
			return args[i]
		}
		return nil
	}
	switch n.Op {
	case ir.OpConst:
		return constant(shape, a.Value), nil

	// Forward ops.
	case ir.OpConv2D:
		if err := checkGroups(args[1].Shape[0], a.Groups); err != nil {
			return nil, err
		}
		return conv2D(args[0], args[1], arg(2), a, shape), nil
	case ir.OpConv2DReLU:
		if err := checkGroups(args[1].Shape[0], a.Groups); err != nil {
			return nil, err
		}
		return relu(conv2D(args[0], args[1], arg(2), a, shape)), nil
	case ir.OpConv2DTanh:
		if err := checkGroups(args[1].Shape[0], a.Groups); err != nil {
			return nil, err
		}
		return mapElems(conv2D(args[0], args[1], arg(2), a, shape), math.Tanh), nil
	case ir.OpLinearReLU:
		return relu(linear(args[0], args[1], arg(2), shape)), nil
	case ir.OpLinearTanh:
		return mapElems(linear(args[0], args[1], arg(2), shape), math.Tanh), nil
	case ir.OpFoldBNWeight:
		return foldBNWeight(args[0], args[1], args[2], a.Eps), nil
	case ir.OpFoldBNBias:
		return foldBNBias(args[0], args[1], args[2], args[3], arg(4), a.Eps), nil
	case ir.OpMaxPool:
		return maxPool(args[0], a, shape), nil
	case ir.OpAvgPool:
		return avgPool(args[0], a, shape), nil
	case ir.OpLinear:
		return linear(args[0], args[1], arg(2), shape), nil
	case ir.OpReshape:
		return &Tensor{Shape: shape.Clone(), Data: append([]float64(nil), args[0].Data...)}, nil
	case ir.OpReLU:
		return relu(args[0]), nil
	case ir.OpLeakyReLU:
		return mapElems(args[0], func(x float64) float64 {
			if x > 0 {
				return x
			}
			return a.Alpha * x
		}), nil
	case ir.OpTanh:
		return mapElems(args[0], math.Tanh), nil
	case ir.OpSigmoid:
		return mapElems(args[0], func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }), nil
	case ir.OpBatchNorm:
		return batchNorm(args[0], args[1], args[2], a.Eps), nil
	case ir.OpBatchNormInfer:
		return batchNormInfer(args[0], args[1], args[2], args[3], args[4], a.Eps), nil
	case ir.OpRunningMean:
		return runningMean(args[0], args[1], a.Momentum), nil
	case ir.OpRunningVar:
		return runningVar(args[0], args[1], a.Momentum), nil
	case ir.OpDropout, ir.OpDropoutBackward:
		// Backward is the same map applied to dy: the mask, recomputed,
		// and 1/Keep if inverted.
		return dropout(args[0], a, opts), nil
	case ir.OpAdd:
		return zipElems(args[0], args[1], func(x, y float64) float64 { return x + y }), nil
	case ir.OpScale:
		return mapElems(args[0], func(x float64) float64 { return a.Alpha * x }), nil
	case ir.OpSoftmax:
		return softmax(args[0]), nil
	case ir.OpSoftmaxCrossEntropy:
		return softmaxCrossEntropy(args[0], args[1])
	case ir.OpSVMLoss:
		return svmLoss(args[0], args[1], a.Margin)
	case ir.OpL2:
		return scalar(a.Lambda * total(args[0], func(w float64) float64 { return w * w })), nil
	case ir.OpL1:
		return scalar(a.Lambda * total(args[0], math.Abs)), nil
	case ir.OpElasticNet:
		return scalar(a.Lambda * total(args[0], func(w float64) float64 { return a.Beta*w*w + math.Abs(w) })), nil

	// Backward ops.
	case ir.OpConv2DBackwardData:
		if err := checkGroups(args[1].Shape[0], a.Groups); err != nil {
			return nil, err
		}
		return conv2DBackwardData(args[0], args[1], a, shape), nil
	case ir.OpConv2DBackwardFilter:
		if err := checkGroups(shape[0], a.Groups); err != nil {
			return nil, err
		}
		return conv2DBackwardFilter(args[0], args[1], a, shape), nil
	case ir.OpBiasGrad:
		return biasGrad(args[0]), nil
	case ir.OpMaxPoolBackward:
		return maxPoolBackward(args[0], args[1], a), nil
	case ir.OpMaxPoolReLUBackward:
		return reluMask(args[0], maxPoolBackward(args[0], args[1], a)), nil
	case ir.OpAvgPoolBackward:
		return avgPoolBackward(args[0], a, shape), nil
	case ir.OpLinearBackwardData:
		return linearBackwardData(args[0], args[1], shape), nil
	case ir.OpLinearBackwardWeight:
		return linearBackwardWeight(args[0], args[1], shape), nil
	case ir.OpReLUBackward:
		return reluMask(args[0], args[1]), nil
	case ir.OpLeakyReLUBackward:
		return zipElems(args[0], args[1], func(y, dy float64) float64 {
			if y > 0 {
				return dy
			}
			return a.Alpha * dy
		}), nil
	case ir.OpTanhBackward:
		return zipElems(args[0], args[1], func(y, dy float64) float64 { return dy * (1 - y*y) }), nil
	case ir.OpSigmoidBackward:
		return zipElems(args[0], args[1], func(y, dy float64) float64 { return dy * y * (1 - y) }), nil
	case ir.OpBatchNormReLU:
		return relu(batchNorm(args[0], args[1], args[2], a.Eps)), nil
	case ir.OpBatchNormReLUBackward:
		return batchNormBackward(args[0], args[1], reluMask(args[2], args[3]), a.Eps), nil
	case ir.OpBatchNormReLUBackwardGamma:
		return batchNormBackwardGamma(args[0], reluMask(args[1], args[2]), a.Eps), nil
	case ir.OpReLUBiasGrad:
		return biasGrad(reluMask(args[0], args[1])), nil
	case ir.OpBatchNormBackward:
		return batchNormBackward(args[0], args[1], args[2], a.Eps), nil
	case ir.OpBatchNormBackwardGamma:
		return batchNormBackwardGamma(args[0], args[1], a.Eps), nil
	case ir.OpSoftmaxBackward:
		return softmaxBackward(args[0], args[1]), nil
	case ir.OpSoftmaxCrossEntropyBackward:
		return softmaxCrossEntropyBackward(args[0], args[1], args[2].Data[0])
	case ir.OpSVMLossBackward:
		return svmLossBackward(args[0], args[1], args[2].Data[0], a.Margin)
	case ir.OpL2Backward:
		d := args[1].Data[0]
		return mapElems(args[0], func(w float64) float64 { return d * 2 * a.Lambda * w }), nil
	case ir.OpL1Backward:
		d := args[1].Data[0]
		return mapElems(args[0], func(w float64) float64 { return d * a.Lambda * sign(w) }), nil
	case ir.OpElasticNetBackward:
		d := args[1].Data[0]
		return mapElems(args[0], func(w float64) float64 { return d * a.Lambda * (2*a.Beta*w + sign(w)) }), nil
	}
	return nil, fmt.Errorf("the reference evaluator has no rule for op %s (a bug in cnnc)", n.Op)
}

// checkGroups reports output channels that do not split into groups, which
// Validate does not catch for the backward convolutions.
func checkGroups(outChannels, groups int) error {
	if groups < 1 || outChannels%groups != 0 {
		return fmt.Errorf("%d output channels do not split into %d groups", outChannels, groups)
	}
	return nil
}

// sign returns -1, 0 or 1 (0 for 0 and NaN).
func sign(x float64) float64 {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func constant(shape ir.Shape, v float64) *Tensor {
	t := NewTensor(shape)
	for i := range t.Data {
		t.Data[i] = v
	}
	return t
}

// mapElems returns f applied to every element of x.
func mapElems(x *Tensor, f func(float64) float64) *Tensor {
	y := NewTensor(x.Shape)
	for i, v := range x.Data {
		y.Data[i] = f(v)
	}
	return y
}

// zipElems returns f applied to the elements of x and y pairwise; x and y
// have the same shape.
func zipElems(x, y *Tensor, f func(float64, float64) float64) *Tensor {
	z := NewTensor(x.Shape)
	for i := range x.Data {
		z.Data[i] = f(x.Data[i], y.Data[i])
	}
	return z
}

// total returns the sum of f over the elements of x, in index order.
func total(x *Tensor, f func(float64) float64) float64 {
	s := 0.0
	for _, v := range x.Data {
		s += f(v)
	}
	return s
}

func scalar(v float64) *Tensor { return &Tensor{Shape: ir.Shape{}, Data: []float64{v}} }
