package ir

import "fmt"

// Batched works out which nodes have the batch as axis 0: the inputs and
// labels, and every value computed from them, except the ops that reduce
// the batch away (losses, weight and bias gradients, batch statistics). A
// code generator uses it to loop over only the samples a call passes. It
// reports a graph whose batched values do not all have the batch size as
// axis 0, and reshapes that would mix the batch axis with others.
func (g *Graph) Batched() (map[*Node]bool, error) {
	b := map[*Node]bool{}
	for _, n := range g.Nodes {
		switch n.Op {
		case OpInput, OpLabels:
			b[n] = true
		case OpParam, OpBuffer, OpConst:
		case OpResult:
			p := n.Args[0]
			if !ResultReducesBatch(p.Op, n.Attrs.Index) {
				for _, a := range p.Args {
					b[n] = b[n] || b[a]
				}
			}
		default:
			if len(n.Shape) == 0 || n.Op.ReducesBatch() {
				break
			}
			for _, a := range n.Args {
				if b[a] {
					b[n] = true
				}
			}
		}
		if b[n] {
			if len(n.Shape) == 0 || n.Shape[0] != g.Batch {
				return nil, fmt.Errorf("%v: shape %v does not have the batch %d as axis 0", n, n.Shape, g.Batch)
			}
			if n.Op == OpReshape && !b[n.Args[0]] {
				return nil, fmt.Errorf("%v: reshape of %v into a batch is not supported", n, n.Args[0].Shape)
			}
		} else if n.Op == OpReshape && len(n.Args) == 1 && b[n.Args[0]] {
			return nil, fmt.Errorf("%v: reshape %v -> %v mixes the batch axis with others", n, n.Args[0].Shape, n.Shape)
		}
	}
	return b, nil
}
