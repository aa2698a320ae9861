package passes

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

// GraphStats describes the cost of running a graph once.
type GraphStats struct {
	// Nodes is the number of nodes, leaves included.
	Nodes int
	// Kernels is the number of nodes a code generator computes with a
	// kernel (see EmitsKernel): the kernels one run of the graph launches.
	Kernels int
	// Arena is the peak activation memory in float32s: the size of the
	// memory plan's arena (PlanMemory(g).Size).
	Arena int
	// Unplanned is what the arena would need if no two values shared
	// memory (PlanMemory(g).Unplanned).
	Unplanned int
}

// ArenaBytes returns the arena's size in bytes.
func (s GraphStats) ArenaBytes() int { return 4 * s.Arena }

// UnplannedBytes returns the unplanned size in bytes.
func (s GraphStats) UnplannedBytes() int { return 4 * s.Unplanned }

// Stats counts g's nodes and kernels and plans its memory.
func Stats(g *ir.Graph) GraphStats {
	s := GraphStats{Nodes: len(g.Nodes)}
	for _, n := range g.Nodes {
		if EmitsKernel(n) {
			s.Kernels++
		}
	}
	plan := PlanMemory(g)
	s.Arena, s.Unplanned = plan.Size, plan.Unplanned
	return s
}

// PassStats is the Stats of a graph as one pass of a pipeline left it.
type PassStats struct {
	Pass string
	GraphStats
}

// Profile runs the pipeline on g as Run does and returns, besides the
// result, the graph's Stats after every pass.
func (p Pipeline) Profile(g *ir.Graph, opts Options) (*ir.Graph, []PassStats, error) {
	var stats []PassStats
	after := opts.After
	opts.After = func(pass string, g *ir.Graph) error {
		stats = append(stats, PassStats{Pass: pass, GraphStats: Stats(g)})
		if after != nil {
			return after(pass, g)
		}
		return nil
	}
	out, err := p.Run(g, opts)
	if err != nil {
		return nil, nil, err
	}
	return out, stats, nil
}

// Without returns a copy of the pipeline without the named passes, such
// as the inference pipeline without its fusions. It panics if the
// pipeline has no pass of one of the names.
func (p Pipeline) Without(names ...string) Pipeline {
	q := Pipeline{Name: p.Name}
	for _, name := range names {
		if p.index(name) < 0 {
			panic(fmt.Sprintf("passes: %s pipeline has no pass %q", p.Name, name))
		}
	}
	for _, pass := range p.Passes {
		drop := false
		for _, name := range names {
			drop = drop || pass.Name == name
		}
		if !drop {
			q.Passes = append(q.Passes, pass)
		}
	}
	return q
}

// Fusions lists the passes of the inference pipeline that fuse or fold
// layers: Infer.Without(Fusions...) computes the same graph with a kernel
// for every layer.
var Fusions = []string{"fold-batchnorm", "fold-scale", "fuse-activation"}

// TrainFusions lists the passes of the training pipeline that fuse
// layers: Train.Without(TrainFusions...) computes the same graph with a
// kernel per layer and per backward step.
var TrainFusions = []string{"fuse-conv-bn-relu", "fuse-batchnorm-relu", "fuse-activation"}
