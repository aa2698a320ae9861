package gocode

import "github.com/cnnc/cnnc/ir"

// A linear layer's weight may lie in memory as runtime/gemm's kernels read
// it fastest on the CPU the model runs on: as column panels where
// gemm.WeightPanels says so (see runtime/gemm's panels.go), a choice made
// at run time, when the model makes the parameter (runtime.Param.Panels).
// Every kernel that touches such a weight must then take it in either
// layout: the linear layers' products, through gemm's Linear functions,
// which ask gemm.WeightPanels again; the folds of an inference graph that
// scale it (OpScale, element by element, and OpFoldBNWeight, row by row
// through gemm.WeightIndex); and the optimiser, which works element by
// element. So a parameter may lie as panels only where the graphs use it
// in those ways alone, and one weight-gradient product computes its
// gradient; others keep the row-major layout, with the row-major
// products.

// linearForward reports whether op is a linear layer's forward product.
func linearForward(op ir.Op) bool {
	return op == ir.OpLinear || op == ir.OpLinearReLU || op == ir.OpLinearTanh
}

// panelWeights returns the names of the matrix parameters that may lie as
// column panels (see above), and for the training graph the
// weight-gradient products that compute their gradients.
func panelWeights(train, infer *ir.Graph) (map[string]bool, map[*ir.Node]bool) {
	ok := map[string]bool{}
	for _, p := range train.Params() {
		if len(p.Shape) == 2 {
			ok[p.Attrs.Name] = true
		}
	}
	for _, g := range []*ir.Graph{train, infer} {
		uses := g.Uses()
		// asWeight reports whether every use of n is as a linear layer's
		// weight, in the forward or the backward-data product.
		asWeight := func(n *ir.Node) bool {
			for _, u := range uses[n.ID] {
				if !(linearForward(u.Op) || u.Op == ir.OpLinearBackwardData) || u.Args[1] != n || u.Args[0] == n {
					return false
				}
			}
			return true
		}
		for _, p := range g.Params() {
			for _, u := range uses[p.ID] {
				fold := (u.Op == ir.OpScale || u.Op == ir.OpFoldBNWeight) && u.Args[0] == p && asWeight(u)
				if !fold && !asWeight(p) {
					ok[p.Attrs.Name] = false
				}
			}
		}
	}
	for _, o := range train.Outputs {
		if o.Kind == ir.OutGrad && o.Node.Op != ir.OpLinearBackwardWeight {
			ok[o.Name] = false
		}
	}
	names, grads := map[string]bool{}, map[*ir.Node]bool{}
	for name, yes := range ok {
		if yes {
			names[name] = true
		}
	}
	for _, o := range train.Outputs {
		if o.Kind == ir.OutGrad && names[o.Name] {
			grads[o.Node] = true
		}
	}
	return names, grads
}

// panelWeight reports whether w, a linear layer's weight argument, may lie
// as column panels: a parameter panelWeights names, or its fold.
func (c *Context) panelWeight(w *ir.Node) bool {
	if w.Op == ir.OpScale || w.Op == ir.OpFoldBNWeight {
		w = w.Args[0]
	}
	return w.Op == ir.OpParam && c.panels[w.Attrs.Name]
}

// panelGrad reports whether n, a weight-gradient product, computes the
// gradient of a weight that may lie as column panels.
func (c *Context) panelGrad(n *ir.Node) bool { return c.grads[n] }
