package ir

import "sort"

// Some ops compute several values: the fused training op of a
// convolution, batch-norm and ReLU computes its output, the values its
// backward needs and the new running statistics in one kernel. The node
// itself is the op's first value (result 0); each other value that the
// graph uses is an OpResult node right after it, whose Index says which.
// Nodes keep one shape each, and every pass that walks arguments sees the
// results as ordinary values.

// ResultShapes returns the shapes of every value of node n, result 0
// first, for an op with several results; nil otherwise.
func ResultShapes(n *Node) []Shape {
	switch n.Op {
	case OpConv2DBNReLU:
		o := Shape{n.Shape[1]}
		return []Shape{n.Shape, n.Shape, {2, n.Shape[1]}, o, o}
	case OpConv2DBNReLUBackward:
		return []Shape{n.Shape, n.Shape, n.Args[1].Shape, n.Args[0].Shape}
	}
	return nil
}

// ResultReducesBatch reports whether result i of op has no batch axis
// although the op's arguments may.
func ResultReducesBatch(op Op, i int) bool {
	r := opTable[op].results
	return i < len(r) && r[i].reduced
}

// ResultWhat says what result i of op is, for messages.
func ResultWhat(op Op, i int) string {
	if r := opTable[op].results; i < len(r) {
		return r[i].what
	}
	return "result?"
}

// Results returns the OpResult nodes of n that follow it, indexed by
// result: Results(n)[i] is the node for result i, or nil if the graph does
// not use it (and Results(n)[0] is n).
func (g *Graph) Results(n *Node) []*Node {
	rs := make([]*Node, n.Op.Results())
	rs[0] = n
	for _, m := range g.Nodes[n.ID+1:] {
		if m.Op != OpResult || m.Args[0] != n {
			break
		}
		if i := m.Attrs.Index; i > 0 && i < len(rs) {
			rs[i] = m
		}
	}
	return rs
}

// PlaceResults returns order with every OpResult node moved to right after
// its op, by index, where the op's kernel writes it. A result's only
// argument is its op, so moving it up keeps a topological order
// topological. Passes that reorder nodes call it.
func PlaceResults(order []*Node) []*Node {
	results := map[*Node][]*Node{}
	for _, n := range order {
		if n.Op == OpResult {
			results[n.Args[0]] = append(results[n.Args[0]], n)
		}
	}
	out := make([]*Node, 0, len(order))
	for _, n := range order {
		if n.Op == OpResult {
			continue
		}
		out = append(out, n)
		rs := results[n]
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Attrs.Index < rs[j].Attrs.Index })
		out = append(out, rs...)
	}
	return out
}
