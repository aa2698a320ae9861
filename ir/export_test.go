package ir

import (
	"fmt"
	"math"
	"reflect"
)

// DiffGraphs describes the first structural difference between a and b:
// name, batch, nodes (IDs, ops, arguments, shapes, element types, the
// attributes each op uses, layers, positions), outputs and the builder's
// errors. It returns "" if there is none.
func DiffGraphs(a, b *Graph) string {
	if a.Name != b.Name || a.Batch != b.Batch {
		return fmt.Sprintf("graph %q batch %d vs %q batch %d", a.Name, a.Batch, b.Name, b.Batch)
	}
	if len(a.Nodes) != len(b.Nodes) {
		return fmt.Sprintf("%d nodes vs %d", len(a.Nodes), len(b.Nodes))
	}
	for i := range a.Nodes {
		if d := diffNodes(a.Nodes[i], b.Nodes[i]); d != "" {
			return fmt.Sprintf("node %d: %s", i, d)
		}
	}
	if len(a.Outputs) != len(b.Outputs) {
		return fmt.Sprintf("%d outputs vs %d", len(a.Outputs), len(b.Outputs))
	}
	for i, o := range a.Outputs {
		p := b.Outputs[i]
		if o.Kind != p.Kind || o.Name != p.Name || o.Node.ID != p.Node.ID {
			return fmt.Sprintf("output %d: %s %q = v%d vs %s %q = v%d", i, o.Kind, o.Name, o.Node.ID, p.Kind, p.Name, p.Node.ID)
		}
	}
	if len(a.errs) != len(b.errs) {
		return fmt.Sprintf("%d errors vs %d", len(a.errs), len(b.errs))
	}
	for i, e := range a.errs {
		if *e != *b.errs[i] {
			return fmt.Sprintf("error %d: %+v vs %+v", i, *e, *b.errs[i])
		}
	}
	return ""
}

func diffNodes(a, b *Node) string {
	switch {
	case a.ID != b.ID:
		return fmt.Sprintf("ID %d vs %d", a.ID, b.ID)
	case a.Op != b.Op:
		return fmt.Sprintf("op %v vs %v", a.Op, b.Op)
	case len(a.Args) != len(b.Args):
		return fmt.Sprintf("%d args vs %d", len(a.Args), len(b.Args))
	case !a.Shape.Equal(b.Shape):
		return fmt.Sprintf("shape %v vs %v", a.Shape, b.Shape)
	case a.DType != b.DType:
		return fmt.Sprintf("dtype %v vs %v", a.DType, b.DType)
	case a.Layer != b.Layer:
		return fmt.Sprintf("layer %q vs %q", a.Layer, b.Layer)
	case a.Pos != b.Pos:
		return fmt.Sprintf("pos %+v vs %+v", a.Pos, b.Pos)
	}
	for i := range a.Args {
		if a.Args[i].ID != b.Args[i].ID {
			return fmt.Sprintf("arg %d: v%d vs v%d", i, a.Args[i].ID, b.Args[i].ID)
		}
	}
	for _, at := range opAttrs(a.Op) {
		fa, fb := attrTable[at].field(&a.Attrs), attrTable[at].field(&b.Attrs)
		if !sameValue(fa, fb) {
			return fmt.Sprintf("%s %v vs %v", at, reflect.ValueOf(fa).Elem(), reflect.ValueOf(fb).Elem())
		}
	}
	return ""
}

// sameValue compares two attribute fields, floats by their bits.
func sameValue(a, b any) bool {
	switch x := a.(type) {
	case *float64:
		return math.Float64bits(*x) == math.Float64bits(*b.(*float64))
	case *InitSpec:
		y := b.(*InitSpec)
		return x.Scheme == y.Scheme && x.FanIn == y.FanIn && x.FanOut == y.FanOut && x.Mode == y.Mode &&
			math.Float64bits(x.Value) == math.Float64bits(y.Value)
	}
	return reflect.DeepEqual(a, b)
}

// AttrNames returns the text names of every attribute, in table order.
func AttrNames() []string {
	var names []string
	for _, a := range attrTable {
		names = append(names, a.name)
	}
	return names
}

// OpAttrNames returns the text names of the attributes op uses.
func OpAttrNames(op Op) []string {
	var names []string
	for _, at := range opAttrs(op) {
		names = append(names, at.String())
	}
	return names
}

// ArgRange returns the fewest and most arguments op takes.
func ArgRange(op Op) (int, int) { return opTable[op].minArgs, opTable[op].maxArgs }
