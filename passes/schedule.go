package passes

import "github.com/cnnc/cnnc/ir"

// Schedule reorders the nodes to lower the peak memory of the arena (see
// PlanMemory) without changing what the graph computes. It moves a node
// that reduces (its value is smaller than the arguments it is the last to
// read, such as a weight's or beta's gradient) up to just after its last
// argument, so that those arguments die there instead of living on to
// where the node happened to be listed. Rewrites that append new nodes,
// like the fusions, leave such nodes at the end of the graph, which keeps
// every activation they read alive through the whole backward pass.
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
	g.Nodes = ir.PlaceResults(order)
	for i, n := range g.Nodes {
		n.ID = i
	}
	return nil
}
