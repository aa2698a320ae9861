package cuda

import "github.com/cnnc/cnnc/ir"

// The fused training op of a convolution, batch-norm and ReLU and its
// backward (ir.OpConv2DBNReLU) run as the kernels of their parts, emitted
// for stand-in nodes whose values are the fused node's results: the
// convolution writes z, the saved batch statistics are computed once, and
// the backward reuses them rather than computing them again from z.

// part returns a stand-in node for one part of fused node n, placed at
// buf: it has n's ID, so its kernels are named after n.
func part(gp *graphPlan, n *ir.Node, op ir.Op, shape ir.Shape, attrs ir.Attrs, buf int, batched bool, args ...*ir.Node) *ir.Node {
	p := &ir.Node{ID: n.ID, Op: op, Args: args, Shape: shape, Attrs: attrs, Layer: n.Layer, Pos: n.Pos}
	gp.buf[p], gp.batched[p] = buf, batched
	return p
}

// result returns the node of result i of n, or a stand-in with a buffer
// of its own when the graph does not use it.
func (g *generator) result(gp *graphPlan, n *ir.Node, i int) *ir.Node {
	if r := gp.g.Results(n)[i]; r != nil {
		if _, ok := gp.buf[r]; !ok {
			gp.buf[r] = g.alloc(r.Shape.Size())
		}
		return r
	}
	shape := ir.ResultShapes(n)[i]
	return part(gp, n, ir.OpResult, shape, ir.Attrs{Index: i}, g.alloc(shape.Size()), !ir.ResultReducesBatch(n.Op, i) && gp.batched[n.Args[0]])
}

func emitConvBNReLU(g *generator, gp *graphPlan, n *ir.Node) error {
	x, w, gamma, beta := n.Args[0], n.Args[1], n.Args[2], n.Args[3]
	a := n.Attrs
	z := g.result(gp, n, 1)
	conv := part(gp, n, ir.OpConv2D, n.Shape, ir.Attrs{Stride: a.Stride, Pad: a.Pad, Dilation: a.Dilation, Groups: a.Groups}, gp.buf[z], true, x, w)
	if err := emitConv2D(g, gp, conv); err != nil {
		return err
	}
	mean, variance := g.batchStats(gp, z)
	bn := part(gp, n, ir.OpBatchNormReLU, n.Shape, ir.Attrs{Eps: a.Eps}, gp.buf[n], true, z, gamma, beta, n.Args[4], n.Args[5])
	if err := emitBatchNorm(g, gp, bn); err != nil {
		return err
	}
	stats := g.result(gp, n, 2)
	C := n.Shape[1]
	g.elementwise(gp, stats, "_stats", "the saved batch statistics: mean and 1/sqrt(var + eps) per channel",
		[]kparam{in("mean", mean), in("var_", variance)},
		expand("out[i] = i < {C} ? mean[i] : 1.0f / sqrtf(var_[i - {C}] + {EPS});", "C", C, "EPS", f32(a.Eps)))
	for i, op := range []ir.Op{ir.OpRunningMean, ir.OpRunningVar} {
		r := g.result(gp, n, 3+i)
		old := n.Args[4+i] // the running mean, then the variance
		if err := emitRunningStat(g, gp, part(gp, n, op, r.Shape, ir.Attrs{Momentum: a.Momentum}, gp.buf[r], false, z, old)); err != nil {
			return err
		}
	}
	return nil
}

func emitConvBNReLUBackward(g *generator, gp *graphPlan, n *ir.Node) error {
	x, w, gamma, y, z, dy := n.Args[0], n.Args[1], n.Args[2], n.Args[3], n.Args[4], n.Args[6]
	a := n.Attrs
	conv := ir.Attrs{Stride: a.Stride, Pad: a.Pad, Dilation: a.Dilation, Groups: a.Groups}
	// The forward computed z's statistics; the backward reads them.
	fwd := gp.g.Results(y)
	if s, ok := gp.stats[fwd[1]]; ok && fwd[1] == z {
		gp.stats[z] = s
	}
	bn := ir.Attrs{Eps: y.Attrs.Eps}
	dz := part(gp, n, ir.OpBatchNormReLUBackward, z.Shape, bn, g.alloc(z.Shape.Size()), true, z, gamma, y, dy)
	if err := emitBatchNormBackward(g, gp, dz); err != nil {
		return err
	}
	if err := emitBatchNormBackwardGamma(g, gp, part(gp, n, ir.OpBatchNormReLUBackwardGamma, n.Shape, bn, gp.buf[n], false, z, y, dy)); err != nil {
		return err
	}
	dbeta := g.result(gp, n, 1)
	if err := emitBiasGrad(g, gp, part(gp, n, ir.OpReLUBiasGrad, dbeta.Shape, ir.Attrs{}, gp.buf[dbeta], false, y, dy)); err != nil {
		return err
	}
	dw := g.result(gp, n, 2)
	if err := emitConv2DBackwardFilter(g, gp, part(gp, n, ir.OpConv2DBackwardFilter, dw.Shape, conv, gp.buf[dw], false, x, dz)); err != nil {
		return err
	}
	if dx := gp.g.Results(n)[3]; dx != nil {
		r := g.result(gp, n, 3)
		return emitConv2DBackwardData(g, gp, part(gp, n, ir.OpConv2DBackwardData, r.Shape, conv, gp.buf[r], true, dz, w))
	}
	return nil
}
