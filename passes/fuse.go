package passes

import "github.com/cnnc/cnnc/ir"

// The inference fusions. Each rewrites a producer and its single consumer
// into one node, so the generated code makes one pass over memory instead
// of two. Folded weights are nodes computed from the parameters and
// running statistics at every prediction, never values frozen at compile
// time: after a training step or a Load, the next prediction folds the
// current weights (PyTorch served stale folded weights, pytorch#108863).

// soleUse returns the only node that uses n, or nil if n has several
// uses or is an output of the graph.
func soleUse(g *ir.Graph, uses [][]*ir.Node, n *ir.Node) *ir.Node {
	if len(uses[n.ID]) != 1 || isOutput(g, n) {
		return nil
	}
	return uses[n.ID][0]
}

// like adds a node placed and named as the node it stands for.
func like(g *ir.Graph, at *ir.Node, op ir.Op, shape ir.Shape, attrs ir.Attrs, args ...*ir.Node) *ir.Node {
	n := g.Add(op, shape.Clone(), attrs, args...)
	n.Pos, n.Layer = at.Pos, at.Layer
	return n
}

// FoldBatchNorm folds an inference batch-norm into the convolution or
// linear layer before it: the layer's weight is scaled per output channel
// by gamma/sqrt(var+eps) and its bias becomes (b-mean)*gamma/sqrt(var+eps)
// + beta, also when the layer had no bias.
func FoldBatchNorm(g *ir.Graph) error {
	uses := g.Uses()
	changed := false
	for _, bn := range append([]*ir.Node(nil), g.Nodes...) {
		if bn.Op != ir.OpBatchNormInfer {
			continue
		}
		layer := bn.Args[0]
		if (layer.Op != ir.OpConv2D && layer.Op != ir.OpLinear) || soleUse(g, uses, layer) != bn {
			continue
		}
		gamma, beta, mean, variance := bn.Args[1], bn.Args[2], bn.Args[3], bn.Args[4]
		eps := ir.Attrs{Eps: bn.Attrs.Eps}
		w := layer.Args[1]
		fw := like(g, bn, ir.OpFoldBNWeight, w.Shape, eps, w, gamma, variance)
		biasArgs := []*ir.Node{gamma, beta, mean, variance}
		if len(layer.Args) == 3 {
			biasArgs = append(biasArgs, layer.Args[2])
		}
		fb := like(g, bn, ir.OpFoldBNBias, gamma.Shape, eps, biasArgs...)
		fused := like(g, layer, layer.Op, layer.Shape, layer.Attrs, layer.Args[0], fw, fb)
		g.ReplaceUses(bn, fused)
		changed = true
	}
	if changed {
		g.Renumber()
	}
	return nil
}

// FoldScaleIntoLayer moves a scale of a convolution's or linear layer's
// input into the layer's weight: layer(alpha*x, w, b) = layer(x, alpha*w, b),
// since zero padding stays zero. Classic dropout at inference is such a
// scale by its keep probability.
func FoldScaleIntoLayer(g *ir.Graph) error {
	uses := g.Uses()
	changed := false
	for _, layer := range append([]*ir.Node(nil), g.Nodes...) {
		if layer.Op != ir.OpConv2D && layer.Op != ir.OpLinear {
			continue
		}
		s := layer.Args[0]
		if s.Op != ir.OpScale || soleUse(g, uses, s) != layer {
			continue
		}
		w := layer.Args[1]
		sw := like(g, s, ir.OpScale, w.Shape, s.Attrs, w)
		layer.Args[0], layer.Args[1] = s.Args[0], sw
		changed = true
	}
	if changed {
		g.Renumber()
	}
	return nil
}

// FuseActivation applies an activation in the epilogue of the layer that
// feeds it, to each GEMM tile while it is in registers or in L1: a ReLU
// or a tanh after a convolution or linear layer. Training graphs lose
// nothing: the backward of either reads the activation's output, which
// the fused layer writes, and nothing reads the layer's own output. The
// tanh costs what it did; its pass over memory and the wait for the
// workers after it are saved. With its tanh fused, the 10-layer tanh MLP
// trained 2.9% more images a second on a Xeon with AVX-512 (the median
// of 6 paired cnncbench runs); with AVX2 alone the difference was within
// the noise (paired median +0.5%).
func FuseActivation(g *ir.Graph) error {
	uses := g.Uses()
	changed := false
	for _, r := range append([]*ir.Node(nil), g.Nodes...) {
		if r.Op != ir.OpReLU && r.Op != ir.OpTanh {
			continue
		}
		layer := r.Args[0]
		if soleUse(g, uses, layer) != r {
			continue
		}
		var op ir.Op
		switch {
		case r.Op == ir.OpReLU && layer.Op == ir.OpConv2D:
			op = ir.OpConv2DReLU
		case r.Op == ir.OpReLU && layer.Op == ir.OpLinear:
			op = ir.OpLinearReLU
		case r.Op == ir.OpTanh && layer.Op == ir.OpConv2D:
			op = ir.OpConv2DTanh
		case r.Op == ir.OpTanh && layer.Op == ir.OpLinear:
			op = ir.OpLinearTanh
		default:
			continue
		}
		fused := like(g, layer, op, r.Shape, layer.Attrs, layer.Args...)
		g.ReplaceUses(r, fused)
		changed = true
	}
	if changed {
		g.Renumber()
	}
	return nil
}

// FuseBatchNormReLU fuses a training batch-norm and the ReLU after it into
// one batchnorm_relu node, and their backward nodes likewise: the ReLU's
// backward is folded into the batch-norm's backward and beta's gradient,
// which read the ReLU's mask from the fused output, so neither the
// batch-norm's output nor the masked gradient is ever written to memory.
// It runs after autodiff.
func FuseBatchNormReLU(g *ir.Graph) error {
	uses := g.Uses()
	changed := false
	for _, r := range append([]*ir.Node(nil), g.Nodes...) {
		if r.Op != ir.OpReLU {
			continue
		}
		bn := r.Args[0]
		if bn.Op != ir.OpBatchNorm || soleUse(g, uses, bn) != r {
			continue
		}
		// The ReLU's backward must feed only the batch-norm's backward
		// nodes, which the fused ones replace.
		var rb *ir.Node
		ok := true
		for _, u := range uses[r.ID] {
			if u.Op == ir.OpReLUBackward && u.Args[0] == r {
				if rb != nil {
					ok = false
				}
				rb = u
			}
		}
		if rb != nil {
			for _, u := range uses[rb.ID] {
				switch {
				case u.Op == ir.OpBatchNormBackward && u.Args[2] == rb && u.Args[0] == bn.Args[0]:
				case u.Op == ir.OpBatchNormBackwardGamma && u.Args[1] == rb && u.Args[0] == bn.Args[0]:
				case u.Op == ir.OpBiasGrad:
				default:
					ok = false
				}
			}
		}
		if !ok {
			continue
		}
		fused := like(g, bn, ir.OpBatchNormReLU, r.Shape, bn.Attrs, bn.Args...)
		if rb != nil {
			x, dy := bn.Args[0], rb.Args[1]
			for _, u := range uses[rb.ID] {
				var n *ir.Node
				switch u.Op {
				case ir.OpBatchNormBackward:
					n = like(g, u, ir.OpBatchNormReLUBackward, u.Shape, u.Attrs, x, u.Args[1], fused, dy)
				case ir.OpBatchNormBackwardGamma:
					n = like(g, u, ir.OpBatchNormReLUBackwardGamma, u.Shape, u.Attrs, x, fused, dy)
				case ir.OpBiasGrad:
					n = like(g, u, ir.OpReLUBiasGrad, u.Shape, ir.Attrs{}, fused, dy)
				}
				g.ReplaceUses(u, n)
			}
		}
		g.ReplaceUses(r, fused)
		changed = true
	}
	if changed {
		g.Renumber()
	}
	return nil
}

// FuseMaxPoolReLUBackward rewrites a ReLU's backward whose gradient is
// the backward of a max-pool over the ReLU's output, relu_backward(r,
// maxpool_backward(r, dy)), into one maxpool_relu_backward(r, dy): the
// pool's backward masks each window's gradient as it writes it, so the
// pool's input gradient is not written and read back, and a training
// step has one pass and one wait for the workers fewer (LeNet-5 has two).
// It runs after autodiff and after the fusions that fold a ReLU's
// backward into a batch-norm's.
func FuseMaxPoolReLUBackward(g *ir.Graph) error {
	uses := g.Uses()
	changed := false
	for _, rb := range append([]*ir.Node(nil), g.Nodes...) {
		if rb.Op != ir.OpReLUBackward {
			continue
		}
		r, p := rb.Args[0], rb.Args[1]
		if p.Op != ir.OpMaxPoolBackward || p.Args[0] != r || soleUse(g, uses, p) != rb {
			continue
		}
		fused := like(g, p, ir.OpMaxPoolReLUBackward, rb.Shape, p.Attrs, r, p.Args[1])
		g.ReplaceUses(rb, fused)
		changed = true
	}
	if changed {
		g.Renumber()
	}
	return nil
}
