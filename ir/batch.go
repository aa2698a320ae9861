package ir

import "fmt"

// WithBatch returns a copy of g whose calls take up to n samples. The
// inputs and labels get n as their first dimension, and so does every
// value whose first dimension is the batch: the op table's shape rules
// (inferShape) carry it from the inputs through the graph, and the ops
// that keep a shape of their own (reshape, and the backward ops that
// rebuild an input's shape) get n as their first dimension when the
// argument they follow is batched. Weight gradients, batch statistics,
// parameters, buffers, constants and scalars keep their shapes. g itself
// is not changed.
//
// WithBatch reports an error if n is below 1, if g is not valid, if a
// reshape mixes the batch axis with others (so the batch cannot be
// changed), or if the graph is not valid with n samples (such as a
// batch-norm over [N, C] with one sample).
func (g *Graph) WithBatch(n int) (*Graph, error) {
	if n < 1 {
		return nil, fmt.Errorf("batch size is %d, want at least 1", n)
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	c := g.Clone()
	c.Batch = n
	if n == g.Batch {
		return c, nil
	}
	// batched[i] says whether axis 0 of node i is the batch. With n !=
	// g.Batch, it is exactly when the rules change that axis.
	batched := make([]bool, len(c.Nodes))
	var errs ErrorList
	for i, node := range c.Nodes {
		old := g.Nodes[i]
		switch {
		case node.Op == OpInput || node.Op == OpLabels:
			node.Shape[0] = n // Validate checked it is g.Batch
			batched[i] = true
			continue
		case node.Op.IsLeaf():
			continue
		}
		if arg, ok := keptShapeBatchArg(node.Op); ok {
			if arg < 0 || !batched[node.Args[arg].ID] {
				continue
			}
			if len(old.Shape) == 0 || old.Shape[0] != g.Batch {
				errs = append(errs, errorAt(node, "%v -> %v mixes the batch axis with others, so the batch size cannot be changed to %d", old.Args[arg].Shape, old.Shape, n))
				continue
			}
			node.Shape[0] = n
			batched[i] = true
			continue
		}
		want, msgs := inferShape(node, n)
		if len(msgs) > 0 {
			for _, m := range msgs {
				errs = append(errs, errorAt(node, "with a batch of %d: %s", n, m))
			}
			continue
		}
		if len(want) > 0 && len(node.Shape) > 0 && &want[0] == &node.Shape[0] {
			// inferShape kept the node's own shape: the op belongs in
			// keptShapeBatchArg.
			errs = append(errs, errorAt(node, "v%d keeps its own shape %v, and WithBatch does not know where its batch axis is (a bug in cnnc)", node.ID, node.Shape))
			continue
		}
		node.Shape = want.Clone()
		batched[i] = len(want) > 0 && len(old.Shape) > 0 && want[0] != old.Shape[0]
	}
	if len(errs) > 0 {
		errs.sortByPos()
		return nil, errs
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("graph %q with a batch of %d: %w", g.Name, n, err)
	}
	return c, nil
}

// keptShapeBatchArg describes the ops whose result shape inferShape does
// not work out but takes from the node itself. For each it returns the
// argument whose batch axis becomes the result's axis 0, or -1 if the
// result never has a batch axis, and true; for every other op it returns
// false.
func keptShapeBatchArg(op Op) (arg int, ok bool) {
	switch op {
	case OpReshape: // a view of arg 0
		return 0, true
	case OpConv2DBackwardData, OpAvgPoolBackward: // the input's gradient, from dy
		return 0, true
	case OpConv2DBackwardFilter: // the weight's gradient
		return -1, true
	}
	return 0, false
}
