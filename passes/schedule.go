package passes

import "github.com/cnnc/cnnc/ir"

// Schedule reorders the nodes to lower the peak memory of the arena (see
// PlanMemory) without changing what the graph computes. It moves a node
// that reduces (its value is smaller than the arguments it is the last to
// read, such as a weight's or beta's gradient) up to just after its last
// argument, so that those arguments die there instead of living on to
// where the node happened to be listed. Rewrites that append new nodes,
// like the fusions, leave such nodes at the end of the graph, which keeps
// every activation they read alive through the whole backward pass. A
// linear layer's backward-data then goes before its weight gradient (see
// dataBeforeWeight).
func Schedule(g *ir.Graph) error {
	last := lastUses(g)
	arena := arenaNodes(g)
	// pos[id] is the node's index in order, which grows as nodes move.
	order := make([]*ir.Node, 0, len(g.Nodes))
	pos := make([]int, len(g.Nodes))
	for i, n := range g.Nodes {
		at := len(order)
		if EmitsKernel(n) && len(n.Args) > 0 {
			freed := 0
			after := -1
			for _, a := range n.Args {
				if arena[a.ID] && last[a.ID] == i {
					freed += a.Shape.Size()
				}
				after = max(after, pos[a.ID])
			}
			if n.Shape.Size() < freed {
				at = after + 1
			}
		}
		order = append(order, nil)
		copy(order[at+1:], order[at:])
		order[at] = n
		for j := at; j < len(order); j++ {
			pos[order[j].ID] = j
		}
	}
	order = dataBeforeWeight(order)
	g.Nodes = ir.PlaceResults(order)
	for i, n := range g.Nodes {
		n.ID = i
	}
	return nil
}

// dataBeforeWeight moves each linear layer's backward-data product that
// comes after the layer's weight gradient to just before it. Both read
// only the output gradient and, for the data, the weight, so the move
// changes nothing they compute; but then the weight gradient is the
// weight's last use in the step, and an optimiser can update the weight by
// rows as the gradient's product computes them (codegen/gocode's
// Kernel.RowCols). The weight gradient, which reduces, was moved up to
// its arguments' last use; the backward-data's value now lives from there
// on, which it did anyway.
func dataBeforeWeight(order []*ir.Node) []*ir.Node {
	at := map[*ir.Node]int{} // a weight gradient's output gradient -> its index
	for i, n := range order {
		switch {
		case n.Op == ir.OpLinearBackwardWeight:
			at[n.Args[1]] = i
		case n.Op == ir.OpLinearBackwardData:
			w, ok := at[n.Args[0]]
			if !ok {
				continue
			}
			copy(order[w+1:i+1], order[w:i])
			order[w] = n
			for dy, j := range at {
				if j >= w {
					at[dy] = j + 1
				}
			}
		}
	}
	return order
}
