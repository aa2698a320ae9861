package passes

import "github.com/cnnc/cnnc/ir"

// FuseConvBNReLU rewrites each convolution (without bias) followed by a
// training batch-norm and a ReLU, with their running statistics and their
// whole backward, into one conv2d_bn_relu node and one
// conv2d_bn_relu_backward node (see the op table). The forward computes
// the batch statistics once, while the convolution's output is fresh,
// and saves them with that output for the backward, which reads the
// ReLU's mask from the forward's output: no pass recomputes the
// statistics, and the normalised value and masked gradient are never
// written to memory. It runs after autodiff and before
// FuseBatchNormReLU, which takes the batch-norms this leaves.
func FuseConvBNReLU(g *ir.Graph) error {
	uses := g.Uses()
	changed := false
	for _, r := range append([]*ir.Node(nil), g.Nodes...) {
		m, ok := matchConvBNReLU(g, uses, r)
		if !ok {
			continue
		}
		m.rewrite(g)
		changed = true
	}
	if changed {
		g.Renumber()
	}
	return nil
}

// convBNReLU is one match of FuseConvBNReLU: the forward nodes and the
// backward nodes they rewrite.
type convBNReLU struct {
	conv, bn, relu, runMean, runVar *ir.Node
	// Backward: the ReLU's, the batch-norm's gradients of x, gamma and
	// beta, and the convolution's of the weight and (nil for a first
	// layer) of x.
	reluGrad, bnGrad, gammaGrad, betaGrad, filterGrad, dataGrad *ir.Node
}

// matchConvBNReLU reports whether r is the ReLU of a fusable
// convolution, batch-norm and ReLU, and returns the match. Every node it
// rewrites must be used only by the others, so that nothing outside still
// needs a value the fused ops no longer write.
func matchConvBNReLU(g *ir.Graph, uses [][]*ir.Node, r *ir.Node) (*convBNReLU, bool) {
	if r.Op != ir.OpReLU {
		return nil, false
	}
	m := &convBNReLU{relu: r, bn: r.Args[0]}
	if m.bn.Op != ir.OpBatchNorm || soleUse(g, uses, m.bn) != r {
		return nil, false
	}
	m.conv = m.bn.Args[0]
	if m.conv.Op != ir.OpConv2D || len(m.conv.Args) != 2 || isOutput(g, m.conv) {
		return nil, false
	}
	gamma := m.bn.Args[1]
	for _, u := range uses[r.ID] {
		if u.Op == ir.OpReLUBackward && u.Args[0] == r {
			if m.reluGrad != nil {
				return nil, false
			}
			m.reluGrad = u
		}
	}
	if m.reluGrad == nil || isOutput(g, m.reluGrad) {
		return nil, false
	}
	for _, u := range uses[m.reluGrad.ID] {
		switch {
		case u.Op == ir.OpBatchNormBackward && m.bnGrad == nil && u.Args[0] == m.conv && u.Args[1] == gamma && u.Args[2] == m.reluGrad:
			m.bnGrad = u
		case u.Op == ir.OpBatchNormBackwardGamma && m.gammaGrad == nil && u.Args[0] == m.conv && u.Args[1] == m.reluGrad && u.Attrs.Eps == m.bn.Attrs.Eps:
			m.gammaGrad = u
		case u.Op == ir.OpBiasGrad && m.betaGrad == nil:
			m.betaGrad = u
		default:
			return nil, false
		}
	}
	if m.bnGrad == nil || m.gammaGrad == nil || m.betaGrad == nil || m.bnGrad.Attrs.Eps != m.bn.Attrs.Eps || isOutput(g, m.bnGrad) {
		return nil, false
	}
	for _, u := range uses[m.bnGrad.ID] {
		switch {
		case u.Op == ir.OpConv2DBackwardFilter && m.filterGrad == nil && u.Args[0] == m.conv.Args[0] && u.Args[1] == m.bnGrad && u.Attrs == m.conv.Attrs:
			m.filterGrad = u
		case u.Op == ir.OpConv2DBackwardData && m.dataGrad == nil && u.Args[0] == m.bnGrad && u.Args[1] == m.conv.Args[1] && u.Attrs == m.conv.Attrs:
			m.dataGrad = u
		default:
			return nil, false
		}
	}
	if m.filterGrad == nil {
		return nil, false
	}
	for _, u := range uses[m.conv.ID] {
		switch {
		case u == m.bn || u == m.bnGrad || u == m.gammaGrad:
		case u.Op == ir.OpRunningMean && m.runMean == nil && u.Args[1] == m.bn.Args[3]:
			m.runMean = u
		case u.Op == ir.OpRunningVar && m.runVar == nil && u.Args[1] == m.bn.Args[4]:
			m.runVar = u
		default:
			return nil, false
		}
	}
	if m.runMean == nil || m.runVar == nil || m.runMean.Attrs.Momentum != m.runVar.Attrs.Momentum {
		return nil, false
	}
	return m, true
}

// isOutput reports whether n is an output of g.
func isOutput(g *ir.Graph, n *ir.Node) bool {
	for _, o := range g.Outputs {
		if o.Node == n {
			return true
		}
	}
	return false
}

// rewrite replaces the match's nodes by the fused forward and backward
// nodes and their results.
func (m *convBNReLU) rewrite(g *ir.Graph) {
	x, w := m.conv.Args[0], m.conv.Args[1]
	gamma, beta, runMean, runVar := m.bn.Args[1], m.bn.Args[2], m.bn.Args[3], m.bn.Args[4]
	attrs := m.conv.Attrs
	attrs.Eps, attrs.Momentum = m.bn.Attrs.Eps, m.runMean.Attrs.Momentum

	fwd := like(g, m.conv, ir.OpConv2DBNReLU, m.relu.Shape, attrs, x, w, gamma, beta, runMean, runVar)
	shapes := ir.ResultShapes(fwd)
	result := func(of *ir.Node, i int, at *ir.Node) *ir.Node {
		return like(g, at, ir.OpResult, shapes[i], ir.Attrs{Index: i}, of)
	}
	z, stats := result(fwd, 1, m.conv), result(fwd, 2, m.bn)
	g.ReplaceUses(m.relu, fwd)
	g.ReplaceUses(m.runMean, result(fwd, 3, m.runMean))
	g.ReplaceUses(m.runVar, result(fwd, 4, m.runVar))

	bwd := like(g, m.conv, ir.OpConv2DBNReLUBackward, m.gammaGrad.Shape, m.conv.Attrs, x, w, gamma, fwd, z, stats, m.reluGrad.Args[1])
	shapes = ir.ResultShapes(bwd)
	g.ReplaceUses(m.gammaGrad, bwd)
	g.ReplaceUses(m.betaGrad, result(bwd, 1, m.betaGrad))
	g.ReplaceUses(m.filterGrad, result(bwd, 2, m.filterGrad))
	if m.dataGrad != nil {
		g.ReplaceUses(m.dataGrad, result(bwd, 3, m.dataGrad))
	}
}
