package passes

import (
	"fmt"
	"strings"

	"github.com/cnnc/cnnc/ir"
)

// CSE merges nodes that compute the same thing: the same op with the same
// attributes, shape and arguments. Inputs, labels, parameters and buffers
// are never merged: each is a distinct value even when they look alike.
// It runs after autodiff, which can rebuild values the forward graph
// already has.
func CSE(g *ir.Graph) error {
	seen := make(map[string]*ir.Node, len(g.Nodes))
	replaced := false
	for _, n := range g.Nodes {
		// Arguments were already replaced by their representatives,
		// because nodes come in topological order and replacement
		// rewrites every later use.
		if n.Op.IsLeaf() && n.Op != ir.OpConst {
			continue
		}
		key := cseKey(n)
		if prev, ok := seen[key]; ok {
			g.ReplaceUses(n, prev)
			replaced = true
			continue
		}
		seen[key] = n
	}
	if replaced {
		g.Renumber()
	}
	return nil
}

// cseKey identifies what a node computes.
func cseKey(n *ir.Node) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%v|%s|%+v", n.Op, n.DType, n.Shape, n.Attrs)
	for _, a := range n.Args {
		fmt.Fprintf(&b, "|%p", a)
	}
	return b.String()
}
