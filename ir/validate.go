package ir

import "fmt"

// Validate reports every mistake in the graph: those the builder met and
// those in its structure (arguments, shapes, names, order). It returns an
// [ErrorList] sorted by position, or nil.
func (g *Graph) Validate() error {
	errs := append(ErrorList(nil), g.errs...)
	if len(errs) == 0 {
		// Structural checks only make sense once the builder is happy:
		// otherwise they repeat its complaints about placeholder nodes.
		errs = append(errs, g.check()...)
	}
	errs.sortByPos()
	return errs.Err()
}

// ValidateTraining is Validate for a graph that is to be trained: it must
// also have a scalar loss that depends on at least one parameter.
func (g *Graph) ValidateTraining() error {
	if err := g.Validate(); err != nil {
		return err
	}
	loss := g.Loss()
	if loss == nil {
		return ErrorList{{Msg: fmt.Sprintf("model %q has no loss to train; declare one with b.Loss(b.SoftmaxCrossEntropy(logits, labels))", g.Name)}}
	}
	if !dependsOnParam(loss) {
		return ErrorList{{Pos: loss.Pos, Msg: "the loss does not depend on any parameter, so training cannot change it"}}
	}
	return nil
}

func dependsOnParam(n *Node) bool {
	seen := map[*Node]bool{}
	var walk func(n *Node) bool
	walk = func(n *Node) bool {
		if seen[n] {
			return false
		}
		seen[n] = true
		if n.Op == OpParam {
			return true
		}
		for _, a := range n.Args {
			if walk(a) {
				return true
			}
		}
		return false
	}
	return walk(n)
}

// check verifies the graph's structure: what every pass must preserve.
func (g *Graph) check() ErrorList {
	var errs ErrorList
	bad := func(n *Node, format string, args ...any) {
		errs = append(errs, errorAt(n, format, args...))
	}
	if g.Batch < 1 {
		errs = append(errs, &Error{Msg: fmt.Sprintf("batch size is %d, want at least 1", g.Batch)})
	}
	index := make(map[*Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		if n == nil {
			errs = append(errs, &Error{Msg: fmt.Sprintf("node %d is nil (a bug in cnnc)", i)})
			return errs
		}
		index[n] = i
	}
	names := map[string]*Node{}
	for i, n := range g.Nodes {
		if n.ID != i {
			bad(n, "has ID %d at index %d (a bug in cnnc: call Renumber)", n.ID, i)
		}
		if n.Op == OpInvalid || n.Op >= numOps {
			bad(n, "has an unknown op %d", n.Op)
			continue
		}
		for j, a := range n.Args {
			ai, ok := index[a]
			switch {
			case a == nil || !ok:
				bad(n, "argument %d of v%d is not in the graph", j, n.ID)
			case ai >= i:
				bad(n, "v%d uses v%d, which does not come before it (the graph has a cycle or is out of order)", n.ID, a.ID)
			}
		}
		if len(errs) > 0 {
			continue
		}
		if n.Op == OpResult && len(n.Args) == 1 {
			prev, p := g.Nodes[i-1], n.Args[0]
			if prev != p && (prev.Op != OpResult || prev.Args[0] != p || prev.Attrs.Index >= n.Attrs.Index) {
				bad(n, "result %d of v%d must come right after v%d and its lower results (a bug in cnnc: call Renumber)", n.Attrs.Index, p.ID, p.ID)
			}
		}
		switch n.Op {
		case OpInput, OpLabels, OpParam, OpBuffer:
			if prev, ok := names[n.Attrs.Name]; ok {
				bad(n, "name %q is used twice (also by v%d)", n.Attrs.Name, prev.ID)
			}
			names[n.Attrs.Name] = n
			if n.Attrs.Name == "" {
				bad(n, "has no name")
			}
		}
		for _, d := range n.Shape {
			if d < 1 {
				bad(n, "has shape %v with a dimension below 1", n.Shape)
				break
			}
		}
		if (n.Op == OpLabels) != (n.DType == Int32) {
			bad(n, "has element type %v", n.DType)
		}
		want, msgs := inferShape(n, g.Batch)
		for _, m := range msgs {
			bad(n, "%s", m)
		}
		if len(msgs) == 0 && !want.Equal(n.Shape) {
			bad(n, "has shape %v, want %v", n.Shape, want)
		}
		if n.Op == OpInput || n.Op == OpLabels {
			if len(n.Shape) == 0 || n.Shape[0] != g.Batch {
				bad(n, "has shape %v; its first dimension must be the batch size %d", n.Shape, g.Batch)
			}
		}
	}
	seen := map[string]bool{}
	for _, o := range g.Outputs {
		key := o.Kind.String() + ":" + o.Name
		if seen[key] {
			errs = append(errs, &Error{Msg: fmt.Sprintf("%s output %q is declared twice", o.Kind, o.Name)})
		}
		seen[key] = true
		if _, ok := index[o.Node]; !ok || o.Node == nil {
			errs = append(errs, &Error{Msg: fmt.Sprintf("%s output %q is not a node of the graph", o.Kind, o.Name)})
			continue
		}
		switch o.Kind {
		case OutLoss:
			if len(o.Node.Shape) != 0 {
				errs = append(errs, errorAt(o.Node, "is the loss but has shape %v; the loss must be a scalar", o.Node.Shape))
			}
		case OutGrad:
			p := names[o.Name]
			if p == nil || p.Op != OpParam {
				errs = append(errs, &Error{Msg: fmt.Sprintf("gradient output %q names no parameter", o.Name)})
			} else if !p.Shape.Equal(o.Node.Shape) {
				errs = append(errs, errorAt(o.Node, "is the gradient of %q but has shape %v, want %v", o.Name, o.Node.Shape, p.Shape))
			}
		case OutUpdate:
			p := names[o.Name]
			if p == nil || p.Op != OpBuffer {
				errs = append(errs, &Error{Msg: fmt.Sprintf("update output %q names no buffer", o.Name)})
			} else if !p.Shape.Equal(o.Node.Shape) {
				errs = append(errs, errorAt(o.Node, "updates %q but has shape %v, want %v", o.Name, o.Node.Shape, p.Shape))
			}
		}
	}
	return errs
}
