package ir

import "fmt"

// ConvOut returns the output length of a convolution or pooling window
// along one axis: (in + 2*pad - dil*(k-1) - 1)/stride + 1.
func ConvOut(in, k, stride, pad, dil int) int {
	if stride <= 0 {
		return 0
	}
	span := in + 2*pad - dil*(k-1) - 1
	if span < 0 {
		return 0
	}
	return span/stride + 1
}

// shapeCheck accumulates what is wrong with a node's arguments.
type shapeCheck struct {
	n    *Node
	msgs []string
}

func (c *shapeCheck) fail(format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf(format, args...))
}

// rank checks the rank of argument i and reports whether it is as wanted.
func (c *shapeCheck) rank(i int, what string, ranks ...int) bool {
	r := len(c.n.Args[i].Shape)
	for _, want := range ranks {
		if r == want {
			return true
		}
	}
	if len(ranks) == 1 {
		c.fail("%s has shape %v (rank %d), want rank %d", what, c.n.Args[i].Shape, r, ranks[0])
	} else {
		c.fail("%s has shape %v (rank %d), want rank %d or %d", what, c.n.Args[i].Shape, r, ranks[0], ranks[1])
	}
	return false
}

// same checks that arguments i and j have the same shape.
func (c *shapeCheck) same(i, j int, what string) bool {
	a, b := c.n.Args[i].Shape, c.n.Args[j].Shape
	if !a.Equal(b) {
		c.fail("%s: shapes %v and %v differ", what, a, b)
		return false
	}
	return true
}

// vector checks that argument i is a vector of length want.
func (c *shapeCheck) vector(i int, what string, want int) {
	s := c.n.Args[i].Shape
	if len(s) != 1 || s[0] != want {
		c.fail("%s has shape %v, want [%d]", what, s, want)
	}
}

// inferShape returns the shape node n must have given its arguments and
// attributes, and what is wrong with them. For ops whose result shape is
// not determined by their arguments (reshape, the backward ops that
// rebuild an input's shape) it returns the node's own shape after checking
// that it is consistent. Leaves return their own shape.
func inferShape(n *Node, batch int) (Shape, []string) {
	c := &shapeCheck{n: n}
	info := opTable[n.Op]
	if len(n.Args) < info.minArgs || len(n.Args) > info.maxArgs {
		if info.minArgs == info.maxArgs {
			c.fail("has %d arguments, want %d", len(n.Args), info.minArgs)
		} else {
			c.fail("has %d arguments, want %d to %d", len(n.Args), info.minArgs, info.maxArgs)
		}
		return nil, c.msgs
	}
	if info.scalar {
		return Shape{}, c.scalarChecks()
	}
	a := n.Attrs
	switch n.Op {
	case OpInput, OpParam, OpBuffer, OpConst, OpLabels:
		return n.Shape, nil

	case OpConv2D, OpConv2DReLU, OpConv2DTanh:
		out, _ := c.convForward(len(n.Args) == 3)
		return out, c.msgs

	case OpConv2DBNReLU:
		out, ok := c.convForward(false)
		if !ok {
			return nil, c.msgs
		}
		for i, what := range []string{"gamma", "beta", "running mean", "running variance"} {
			c.vector(2+i, what, out[1])
		}
		c.eps()
		c.momentum()
		if out[0]*out[2]*out[3] < 2 {
			c.fail("needs at least 2 values per channel to estimate a variance, got output shape %v", out)
		}
		return out, c.msgs

	case OpConv2DBNReLUBackward:
		out, ok := c.convForward(false)
		if !ok {
			return nil, c.msgs
		}
		c.vector(2, "gamma", out[1])
		for _, arg := range []struct {
			i    int
			what string
		}{{3, "output"}, {4, "saved convolution"}, {6, "output gradient"}} {
			if s := n.Args[arg.i].Shape; !s.Equal(out) {
				c.fail("%s has shape %v, want %v", arg.what, s, out)
			}
		}
		if s := n.Args[5].Shape; !s.Equal(Shape{2, out[1]}) {
			c.fail("saved statistics have shape %v, want [2,%d]", s, out[1])
		}
		return Shape{out[1]}, c.msgs

	case OpResult:
		p := n.Args[0]
		if p.Op.Results() < 2 {
			c.fail("takes a result of %s, which has one", p.Op)
			return nil, c.msgs
		}
		if a.Index < 1 || a.Index >= p.Op.Results() {
			c.fail("index %d is outside [1, %d) for %s", a.Index, p.Op.Results(), p.Op)
			return nil, c.msgs
		}
		return ResultShapes(p)[a.Index], c.msgs

	case OpConv2DBackwardData:
		if !c.rank(0, "output gradient", 4) || !c.rank(1, "weight", 4) || !c.convAttrs() || len(n.Shape) != 4 {
			if len(n.Shape) != 4 {
				c.fail("result has shape %v, want rank 4", n.Shape)
			}
			return nil, c.msgs
		}
		dy, w := n.Args[0].Shape, n.Args[1].Shape
		if w[0]%a.Groups != 0 {
			c.fail("%d output channels do not split into %d groups", w[0], a.Groups)
			return nil, c.msgs
		}
		want := Shape{n.Shape[0], w[0], ConvOut(n.Shape[2], w[2], a.Stride[0], a.Pad[0], a.Dilation[0]), ConvOut(n.Shape[3], w[3], a.Stride[1], a.Pad[1], a.Dilation[1])}
		if !want.Equal(dy) || n.Shape[1] != w[1]*a.Groups {
			c.fail("input shape %v does not match output gradient %v and weight %v", n.Shape, dy, w)
		}
		return n.Shape, c.msgs

	case OpConv2DBackwardFilter:
		if !c.rank(0, "input", 4) || !c.rank(1, "output gradient", 4) || !c.convAttrs() || len(n.Shape) != 4 {
			if len(n.Shape) != 4 {
				c.fail("result has shape %v, want rank 4", n.Shape)
			}
			return nil, c.msgs
		}
		x, dy := n.Args[0].Shape, n.Args[1].Shape
		w := n.Shape
		if w[0]%a.Groups != 0 {
			c.fail("%d output channels do not split into %d groups", w[0], a.Groups)
			return nil, c.msgs
		}
		want := Shape{x[0], w[0], ConvOut(x[2], w[2], a.Stride[0], a.Pad[0], a.Dilation[0]), ConvOut(x[3], w[3], a.Stride[1], a.Pad[1], a.Dilation[1])}
		if !want.Equal(dy) || x[1] != w[1]*a.Groups {
			c.fail("weight shape %v does not match input %v and output gradient %v", w, x, dy)
		}
		return n.Shape, c.msgs

	case OpMaxPool, OpAvgPool:
		if !c.rank(0, "input", 4) || !c.poolAttrs() {
			return nil, c.msgs
		}
		x := n.Args[0].Shape
		out := Shape{x[0], x[1], ConvOut(x[2], a.Kernel[0], a.Stride[0], a.Pad[0], 1), ConvOut(x[3], a.Kernel[1], a.Stride[1], a.Pad[1], 1)}
		c.positive(out, x)
		return out, c.msgs

	case OpMaxPoolBackward, OpMaxPoolReLUBackward:
		if !c.rank(0, "input", 4) || !c.rank(1, "output gradient", 4) || !c.poolAttrs() {
			return nil, c.msgs
		}
		x, dy := n.Args[0].Shape, n.Args[1].Shape
		want := Shape{x[0], x[1], ConvOut(x[2], a.Kernel[0], a.Stride[0], a.Pad[0], 1), ConvOut(x[3], a.Kernel[1], a.Stride[1], a.Pad[1], 1)}
		if !want.Equal(dy) {
			c.fail("output gradient has shape %v, want %v", dy, want)
		}
		return x, c.msgs

	case OpAvgPoolBackward:
		if !c.rank(0, "output gradient", 4) || !c.poolAttrs() {
			return nil, c.msgs
		}
		if len(n.Shape) != 4 {
			c.fail("result has shape %v, want rank 4", n.Shape)
			return nil, c.msgs
		}
		x, dy := n.Shape, n.Args[0].Shape
		want := Shape{x[0], x[1], ConvOut(x[2], a.Kernel[0], a.Stride[0], a.Pad[0], 1), ConvOut(x[3], a.Kernel[1], a.Stride[1], a.Pad[1], 1)}
		if !want.Equal(dy) {
			c.fail("output gradient has shape %v, want %v for input %v", dy, want, x)
		}
		return x, c.msgs

	case OpLinear, OpLinearReLU, OpLinearTanh:
		if x := n.Args[0].Shape; len(x) == 4 {
			c.fail("input has shape %v, want [batch, features]; flatten it first with Flatten", x)
			return nil, c.msgs
		}
		if !c.rank(0, "input", 2) || !c.rank(1, "weight", 2) {
			return nil, c.msgs
		}
		x, w := n.Args[0].Shape, n.Args[1].Shape
		if x[1] != w[1] {
			c.fail("input has %d features, the layer expects %d", x[1], w[1])
		}
		if len(n.Args) == 3 {
			c.vector(2, "bias", w[0])
		}
		return Shape{x[0], w[0]}, c.msgs

	case OpLinearBackwardData:
		if !c.rank(0, "output gradient", 2) || !c.rank(1, "weight", 2) {
			return nil, c.msgs
		}
		dy, w := n.Args[0].Shape, n.Args[1].Shape
		if dy[1] != w[0] {
			c.fail("output gradient has %d features, the weight %v expects %d", dy[1], w, w[0])
		}
		return Shape{dy[0], w[1]}, c.msgs

	case OpLinearBackwardWeight:
		if !c.rank(0, "input", 2) || !c.rank(1, "output gradient", 2) {
			return nil, c.msgs
		}
		x, dy := n.Args[0].Shape, n.Args[1].Shape
		if x[0] != dy[0] {
			c.fail("input %v and output gradient %v have different batch sizes", x, dy)
		}
		return Shape{dy[1], x[1]}, c.msgs

	case OpReshape:
		if n.Shape.Size() != n.Args[0].Shape.Size() {
			c.fail("cannot view %v (%d elements) as %v (%d elements)", n.Args[0].Shape, n.Args[0].Shape.Size(), n.Shape, n.Shape.Size())
		}
		return n.Shape, c.msgs

	case OpReLU, OpTanh, OpSigmoid, OpScale:
		return n.Args[0].Shape, nil

	case OpLeakyReLU:
		if a.Alpha < 0 {
			c.fail("negative slope is %g, want at least 0 (such as 0.01)", a.Alpha)
		}
		return n.Args[0].Shape, c.msgs

	case OpDropout, OpDropoutBackward:
		if !(a.Keep > 0 && a.Keep <= 1) {
			c.fail("keep probability %g is outside (0, 1]", a.Keep)
		}
		return n.Args[0].Shape, c.msgs

	case OpAdd:
		c.same(0, 1, "operands")
		return n.Args[0].Shape, c.msgs

	case OpReLUBackward, OpTanhBackward, OpSigmoidBackward, OpSoftmaxBackward, OpLeakyReLUBackward:
		c.same(0, 1, "output and its gradient")
		return n.Args[0].Shape, c.msgs

	case OpSoftmax:
		c.rank(0, "input", 2)
		return n.Args[0].Shape, c.msgs

	case OpBatchNorm, OpBatchNormInfer, OpBatchNormReLU:
		if !c.rank(0, "input", 2, 4) {
			return nil, c.msgs
		}
		ch := n.Args[0].Shape[1]
		for i, what := range []string{"", "gamma", "beta", "running mean", "running variance"} {
			if i > 0 {
				c.vector(i, what, ch)
			}
		}
		c.eps()
		return n.Args[0].Shape, c.msgs

	case OpRunningMean, OpRunningVar:
		if !c.rank(0, "input", 2, 4) {
			return nil, c.msgs
		}
		c.vector(1, "running statistic", n.Args[0].Shape[1])
		c.momentum()
		if x := n.Args[0].Shape; n.Op == OpRunningVar && x[1] > 0 && x.Size()/x[1] < 2 {
			c.fail("needs at least 2 values per channel to estimate a variance, got shape %v", n.Args[0].Shape)
		}
		return Shape{n.Args[0].Shape[1]}, c.msgs

	case OpBatchNormBackward:
		if !c.rank(0, "input", 2, 4) {
			return nil, c.msgs
		}
		c.vector(1, "gamma", n.Args[0].Shape[1])
		c.same(0, 2, "input and output gradient")
		c.eps()
		return n.Args[0].Shape, c.msgs

	case OpBatchNormBackwardGamma:
		if !c.rank(0, "input", 2, 4) {
			return nil, c.msgs
		}
		c.same(0, 1, "input and output gradient")
		c.eps()
		return Shape{n.Args[0].Shape[1]}, c.msgs

	case OpFoldBNWeight:
		w := n.Args[0].Shape
		if len(w) != 2 && len(w) != 4 {
			c.fail("weight has shape %v, want rank 2 or 4", w)
			return nil, c.msgs
		}
		c.vector(1, "gamma", w[0])
		c.vector(2, "running variance", w[0])
		c.eps()
		return w, c.msgs

	case OpFoldBNBias:
		if !c.rank(0, "gamma", 1) {
			return nil, c.msgs
		}
		ch := n.Args[0].Shape[0]
		for i := 1; i < len(n.Args); i++ {
			c.vector(i, "batch-norm vector", ch)
		}
		c.eps()
		return Shape{ch}, c.msgs

	case OpBatchNormReLUBackward:
		if !c.rank(0, "input", 2, 4) {
			return nil, c.msgs
		}
		c.vector(1, "gamma", n.Args[0].Shape[1])
		c.same(0, 2, "input and output")
		c.same(0, 3, "input and output gradient")
		c.eps()
		return n.Args[0].Shape, c.msgs

	case OpBatchNormReLUBackwardGamma:
		if !c.rank(0, "input", 2, 4) {
			return nil, c.msgs
		}
		c.same(0, 1, "input and output")
		c.same(0, 2, "input and output gradient")
		c.eps()
		return Shape{n.Args[0].Shape[1]}, c.msgs

	case OpReLUBiasGrad:
		if !c.rank(0, "output", 2, 4) {
			return nil, c.msgs
		}
		c.same(0, 1, "output and its gradient")
		return Shape{n.Args[0].Shape[1]}, c.msgs

	case OpBiasGrad:
		if !c.rank(0, "gradient", 2, 4) {
			return nil, c.msgs
		}
		return Shape{n.Args[0].Shape[1]}, c.msgs

	case OpSoftmaxCrossEntropyBackward, OpSVMLossBackward:
		c.lossArgs()
		if len(n.Args[2].Shape) != 0 {
			c.fail("loss gradient has shape %v, want a scalar", n.Args[2].Shape)
		}
		return n.Args[0].Shape, c.msgs

	case OpL2Backward, OpL1Backward, OpElasticNetBackward:
		if len(n.Args[1].Shape) != 0 {
			c.fail("loss gradient has shape %v, want a scalar", n.Args[1].Shape)
		}
		return n.Args[0].Shape, c.msgs
	}
	c.fail("has no shape rule (a bug in cnnc)")
	return nil, c.msgs
}

// convForward checks the input, weight (and with bias, arg 2) of a
// convolution and returns its output shape, reporting whether the
// arguments made one.
func (c *shapeCheck) convForward(bias bool) (Shape, bool) {
	n, a := c.n, c.n.Attrs
	if !c.rank(0, "input", 4) || !c.rank(1, "weight", 4) || !c.convAttrs() {
		return nil, false
	}
	x, w := n.Args[0].Shape, n.Args[1].Shape
	if x[1]%a.Groups != 0 || w[0]%a.Groups != 0 {
		c.fail("%d input and %d output channels do not split into %d groups", x[1], w[0], a.Groups)
		return nil, false
	}
	if x[1]/a.Groups != w[1] {
		c.fail("input has %d channels, the layer expects %d", x[1], w[1]*a.Groups)
	}
	if bias {
		c.vector(2, "bias", w[0])
	}
	out := Shape{x[0], w[0], ConvOut(x[2], w[2], a.Stride[0], a.Pad[0], a.Dilation[0]), ConvOut(x[3], w[3], a.Stride[1], a.Pad[1], a.Dilation[1])}
	c.positive(out, x)
	return out, out[2] >= 1 && out[3] >= 1
}

// momentum checks a running statistic's momentum.
func (c *shapeCheck) momentum() {
	if m := c.n.Attrs.Momentum; !(m >= 0 && m <= 1) {
		c.fail("momentum %g is outside [0, 1]", m)
	}
}

// scalarChecks checks the arguments of the ops whose result is a scalar.
func (c *shapeCheck) scalarChecks() []string {
	switch c.n.Op {
	case OpSoftmaxCrossEntropy, OpSVMLoss:
		c.lossArgs()
	}
	return c.msgs
}

func (c *shapeCheck) lossArgs() {
	if !c.rank(0, "scores", 2) {
		return
	}
	s, l := c.n.Args[0].Shape, c.n.Args[1]
	if l.DType != Int32 || len(l.Shape) != 1 {
		c.fail("second argument must be labels [N], got %v %v", l.DType, l.Shape)
		return
	}
	if l.Shape[0] != s[0] {
		c.fail("%d labels for a batch of %d", l.Shape[0], s[0])
	}
	if l.Op == OpLabels && l.Attrs.Classes != s[1] {
		c.fail("scores have %d classes but the labels have %d", s[1], l.Attrs.Classes)
	}
}

func (c *shapeCheck) convAttrs() bool {
	a := c.n.Attrs
	ok := true
	for i := range 2 {
		if a.Stride[i] < 1 || a.Dilation[i] < 1 || a.Pad[i] < 0 {
			c.fail("stride %v, padding %v and dilation %v: stride and dilation must be at least 1, padding at least 0", a.Stride, a.Pad, a.Dilation)
			ok = false
			break
		}
	}
	if a.Groups < 1 {
		c.fail("groups is %d, want at least 1", a.Groups)
		ok = false
	}
	return ok
}

func (c *shapeCheck) poolAttrs() bool {
	a := c.n.Attrs
	for i := range 2 {
		if a.Kernel[i] < 1 || a.Stride[i] < 1 || a.Pad[i] < 0 {
			c.fail("kernel %v, stride %v and padding %v: kernel and stride must be at least 1, padding at least 0", a.Kernel, a.Stride, a.Pad)
			return false
		}
		if 2*a.Pad[i] > a.Kernel[i] {
			c.fail("padding %v is more than half the kernel %v", a.Pad, a.Kernel)
			return false
		}
	}
	return true
}

func (c *shapeCheck) eps() {
	if !(c.n.Attrs.Eps > 0) {
		c.fail("eps is %g, want a small positive number such as 1e-5", c.n.Attrs.Eps)
	}
}

// positive reports an output that shrank below one element.
func (c *shapeCheck) positive(out, in Shape) {
	if out[2] < 1 || out[3] < 1 {
		c.fail("output would be %dx%d for a %dx%d input: the input is too small for this kernel, stride and padding", out[2], out[3], in[2], in[3])
	}
}
