package passes

import (
	"fmt"
	"sort"

	"github.com/cnnc/cnnc/ir"
)

// A MemoryPlan places every computed value of a graph in one arena of
// float32s, so that a generated model allocates once and reuses memory
// between values whose lifetimes do not overlap.
//
// Leaves (inputs, labels, parameters, buffers) are not in the arena: the
// model owns them. Constants are not either: code generators materialise
// them. Nor are the gradients that GradTargets names: they are computed
// straight into the parameters' Grad. A reshape shares its argument's
// storage (a reshape of a value outside the arena is a view outside it),
// and an element-wise op may write over an argument that dies at that op
// (in place). Outputs of the graph live to its end, so nothing overwrites
// the loss, the buffer updates or the logits before the caller reads them.
type MemoryPlan struct {
	// Offset[id] is where node id's value starts in the arena, or -1 for
	// nodes outside it.
	Offset []int
	// Size is the arena's length in float32s: the peak activation memory.
	Size int
	// Unplanned is what the arena would need if no two values shared
	// memory.
	Unplanned int
	// Root[id] is the node whose storage node id uses: itself, or the
	// value it reshapes or overwrites in place.
	Root []int

	end []int // per node: the last use of any value sharing its storage
}

// InPlace reports whether node n writes its result over argument i.
func (p *MemoryPlan) InPlace(n *ir.Node, i int) bool {
	return n.Op != ir.OpReshape && p.Root[n.ID] == p.Root[n.Args[i].ID] && p.Offset[n.ID] >= 0
}

// inPlaceArgs lists, for element-wise ops, the arguments whose storage the
// result may take over: same shape, read only at the same index. A kernel
// of such an op must be correct when its output is exactly its argument:
// it reads element i of every argument before it writes element i.
// Every other op's output never overlaps an argument.
func inPlaceArgs(op ir.Op) []int {
	switch op {
	case ir.OpReLU, ir.OpLeakyReLU, ir.OpTanh, ir.OpSigmoid, ir.OpScale, ir.OpDropout, ir.OpDropoutBackward:
		return []int{0}
	case ir.OpAdd:
		return []int{0, 1}
	case ir.OpReLUBackward, ir.OpLeakyReLUBackward, ir.OpTanhBackward, ir.OpSigmoidBackward:
		return []int{1, 0}
	// Batch-norm's backward is not element-wise, but its kernels handle
	// each channel whole, summing over dy and x first and then reading
	// element i of each just before writing element i of dx: dx may take
	// over dy or x.
	case ir.OpBatchNormBackward:
		return []int{2, 0}
	case ir.OpBatchNormReLUBackward:
		return []int{3, 0}
	}
	return nil
}

// GradTargets returns, for every node ID, the name of the parameter whose
// gradient (runtime.Param.Grad in generated code) the node's value is
// computed straight into, or "". A grad output claims its node when the
// node is computed by a kernel (not a leaf or a reshape) and no earlier
// grad output claimed it; other grad outputs are copied into the
// parameter's gradient after the graph has run. Claimed values live
// outside the memory plan's arena.
func GradTargets(g *ir.Graph) []string {
	targets := make([]string, len(g.Nodes))
	for _, o := range g.Outputs {
		n := o.Node
		if o.Kind == ir.OutGrad && (EmitsKernel(n) || n.Op == ir.OpResult) && targets[n.ID] == "" {
			targets[n.ID] = o.Name
		}
	}
	return targets
}

// EmitsKernel reports whether code generators compute n with a kernel: n
// is not a leaf (input, labels, parameter, buffer, constant), nor a
// reshape, which views its argument, nor a result, which its op's kernel
// writes.
func EmitsKernel(n *ir.Node) bool {
	return !n.Op.IsLeaf() && n.Op != ir.OpReshape && n.Op != ir.OpResult
}

// defined returns, for every node, the index of the node whose kernel
// writes its value: its own, or its op's for a result.
func defined(nodes []*ir.Node) []int {
	def := make([]int, len(nodes))
	for i, n := range nodes {
		def[i] = i
		if n.Op == ir.OpResult {
			def[i] = def[n.Args[0].ID]
		}
	}
	return def
}

// lastUses returns, for every node, the index of the last node that reads
// it, counting the graph's outputs as read after the last node.
func lastUses(g *ir.Graph) []int {
	last := make([]int, len(g.Nodes))
	for i, n := range g.Nodes {
		last[i] = i
		for _, a := range n.Args {
			last[a.ID] = i
		}
	}
	for _, o := range g.Outputs {
		last[o.Node.ID] = len(g.Nodes)
	}
	return last
}

// arenaNodes reports, for every node ID, whether the node's value is
// placed in the arena: it is computed, not a gradient stored outside (see
// GradTargets), and not a view of a value outside the arena.
func arenaNodes(g *ir.Graph) []bool {
	grads := GradTargets(g)
	in := make([]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		switch {
		case n.Op == ir.OpReshape:
			in[i] = in[n.Args[0].ID]
		default:
			in[i] = !n.Op.IsLeaf() && grads[i] == ""
		}
	}
	return in
}

// PlanMemory computes a memory plan for g, whose nodes run in the order
// they are listed. Values that are outputs of the graph live to the end.
func PlanMemory(g *ir.Graph) *MemoryPlan {
	nodes := g.Nodes
	p := &MemoryPlan{Offset: make([]int, len(nodes)), Root: make([]int, len(nodes))}
	arena := arenaNodes(g)
	inArena := func(n *ir.Node) bool { return arena[n.ID] }

	last, def := lastUses(g), defined(nodes)

	// Storage groups: a root value and the values that share it. A group
	// lives from its root's definition to the last use of any member.
	end := make([]int, len(nodes))
	for i, n := range nodes {
		p.Root[i] = i
		if n.Op == ir.OpReshape {
			p.Root[i] = p.Root[n.Args[0].ID]
		}
		if !inArena(n) {
			continue
		}
		if n.Op != ir.OpReshape {
			p.Unplanned += n.Shape.Size()
			for _, ai := range inPlaceArgs(n.Op) {
				a := n.Args[ai]
				// Take over the argument's storage if every value that
				// shares it is last used here.
				if inArena(a) && a.Shape.Size() == n.Shape.Size() && end[p.Root[a.ID]] == i {
					p.Root[i] = p.Root[a.ID]
					break
				}
			}
		}
		r := p.Root[i]
		end[r] = max(end[r], last[i])
	}

	// Place groups by size, largest first, each at the lowest offset that
	// does not overlap a placed group alive at the same time (greedy by
	// size, as TFLite's arena planner).
	type group struct{ root, size, start, end int }
	var groups []group
	for i, n := range nodes {
		if inArena(n) && p.Root[i] == i {
			size := n.Shape.Size()
			groups = append(groups, group{root: i, size: size, start: def[i], end: end[i]})
		}
	}
	sort.SliceStable(groups, func(a, b int) bool { return groups[a].size > groups[b].size })
	type placed struct{ off, size, start, end int }
	var done []placed
	offset := make(map[int]int, len(groups))
	for _, gr := range groups {
		var live []placed
		for _, d := range done {
			if d.start <= gr.end && gr.start <= d.end {
				live = append(live, d)
			}
		}
		sort.Slice(live, func(a, b int) bool { return live[a].off < live[b].off })
		off := 0
		for _, d := range live {
			if off+gr.size <= d.off {
				break
			}
			off = max(off, d.off+d.size)
		}
		offset[gr.root] = off
		done = append(done, placed{off, gr.size, gr.start, gr.end})
		p.Size = max(p.Size, off+gr.size)
	}
	for i, n := range nodes {
		p.Offset[i] = -1
		if inArena(n) {
			p.Offset[i] = offset[p.Root[i]]
		}
	}
	p.end = make([]int, len(nodes))
	for i := range nodes {
		p.end[i] = end[p.Root[i]]
	}
	return p
}

// Dies reports whether the storage of n's argument i is in the arena and
// read by nothing after n, so that n's kernel may use it as scratch once
// it has read it.
func (p *MemoryPlan) Dies(n *ir.Node, i int) bool {
	a := n.Args[i]
	return p.Offset[a.ID] >= 0 && p.end[a.ID] == n.ID
}

// Check verifies that no two values alive at the same time overlap in
// the arena unless they share storage by design. Tests and the -verify
// mode of the code generators call it.
func (p *MemoryPlan) Check(g *ir.Graph) error {
	last, def := lastUses(g), defined(g.Nodes)
	for i, a := range g.Nodes {
		if p.Offset[i] < 0 {
			continue
		}
		for j := i + 1; j < len(g.Nodes); j++ {
			b := g.Nodes[j]
			if p.Offset[j] < 0 || p.Root[i] == p.Root[j] || last[i] < def[j] {
				continue
			}
			if p.Offset[i] < p.Offset[j]+b.Shape.Size() && p.Offset[j] < p.Offset[i]+a.Shape.Size() {
				return fmt.Errorf("memory plan overlaps %s [%d,%d) and %s [%d,%d), both alive at v%d",
					a, p.Offset[i], p.Offset[i]+a.Shape.Size(), b, p.Offset[j], p.Offset[j]+b.Shape.Size(), j)
			}
		}
	}
	return nil
}
