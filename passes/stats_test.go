package passes_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/passes"
)

func TestStats(t *testing.T) {
	b := ir.NewBuilder("mlp", 2)
	x := b.Input("x", 3)
	h := b.ReLU(b.Linear("fc1", x, 3, 4))
	b.Output("logits", b.Linear("fc2", b.Flatten(h), 4, 5))
	g := b.Graph()
	// x, fc1.weight, fc1.bias, linear, relu, reshape, fc2.weight,
	// fc2.bias, linear: the two layers and the ReLU are kernels. The ReLU
	// runs in place over fc1's output [2,4], which lives beside the logits
	// [2,5] until fc2 has read it.
	require.Equal(t, passes.GraphStats{Nodes: 9, Kernels: 3, Arena: 8 + 10, Unplanned: 8 + 8 + 10}, passes.Stats(g))
	require.Equal(t, 4*18, passes.Stats(g).ArenaBytes())
}

func TestProfile(t *testing.T) {
	g := lenet5.LeNet5BN()
	out, stats, err := passes.Infer.Profile(g, passes.Options{})
	require.NoError(t, err)
	require.Equal(t, passes.Infer.Names(), passNames(stats))
	require.Equal(t, passes.Stats(out), stats[len(stats)-1].GraphStats)
	at := func(pass string) passes.GraphStats {
		for _, s := range stats {
			if s.Pass == pass {
				return s.GraphStats
			}
		}
		t.Fatalf("no stats after %s", pass)
		return passes.GraphStats{}
	}
	// Folding a batch-norm trades its kernel for two that fold the
	// weight and the bias (per prediction: the weights must never go
	// stale), and fusing the ReLU removes one kernel per layer.
	lowered, folded, fused := at("lower-inference"), at("fold-batchnorm"), at("fuse-activation")
	require.Equal(t, lowered.Kernels+2*1, folded.Kernels, "two batch-norms fold into two weights and two biases")
	require.Equal(t, folded.Kernels-4, fused.Kernels, "four ReLUs fuse")
	require.Less(t, fused.Arena, lowered.Arena)

	unfused := passes.Infer.Without(passes.Fusions...)
	require.Len(t, unfused.Passes, len(passes.Infer.Passes)-len(passes.Fusions))
	u, err := unfused.Run(g, passes.Options{})
	require.NoError(t, err)
	for _, n := range u.Nodes {
		require.NotContains(t, []ir.Op{ir.OpConv2DReLU, ir.OpLinearReLU, ir.OpFoldBNWeight, ir.OpFoldBNBias}, n.Op)
	}
	require.Equal(t, lowered.Kernels, passes.Stats(u).Kernels)
	require.Panics(t, func() { passes.Infer.Without("autodiff") })
}

// TestGradsOutsideArena checks that the gradients generated code writes
// straight into the parameters' Grad take no room in the arena, and that
// the other outputs live to the end of the graph.
func TestGradsOutsideArena(t *testing.T) {
	for _, g := range testModels(t) {
		train, err := passes.Train.Run(g, passes.Options{})
		require.NoError(t, err)
		plan := passes.PlanMemory(train)
		require.NoError(t, plan.Check(train))
		targets := passes.GradTargets(train)
		claimed := 0
		for _, o := range train.Outputs {
			n := o.Node
			switch {
			case targets[n.ID] != "":
				claimed++
				require.Equal(t, -1, plan.Offset[n.ID], "%s: %s is in Param.Grad and in the arena", g.Name, n)
				require.Equal(t, ir.OutGrad, o.Kind)
			case plan.Offset[n.ID] >= 0:
				// Nothing placed after n may overlap it.
				for _, m := range train.Nodes[n.ID+1:] {
					if plan.Offset[m.ID] < 0 || plan.Root[m.ID] == plan.Root[n.ID] {
						continue
					}
					lo, hi := plan.Offset[n.ID], plan.Offset[n.ID]+n.Shape.Size()
					require.False(t, plan.Offset[m.ID] < hi && lo < plan.Offset[m.ID]+m.Shape.Size(),
						"%s: output %s:%s is overwritten by %s", g.Name, o.Kind, o.Name, m)
				}
			}
		}
		require.Positive(t, claimed, g.Name)
	}
}

func passNames(stats []passes.PassStats) []string {
	var names []string
	for _, s := range stats {
		names = append(names, s.Pass)
	}
	return names
}

// TestSchedule checks that scheduling moves the gradients of batch-norm's
// gamma and beta, which the batch-norm and ReLU fusion leaves at the end
// of the graph, to where the activations they read can die, and that it
// never raises the peak memory of the zoo's models, with or without the
// convolution, batch-norm and ReLU fusion.
func TestSchedule(t *testing.T) {
	for _, p := range []passes.Pipeline{passes.Train, passes.Train.Without("fuse-conv-bn-relu")} {
		for _, g := range testModels(t) {
			unscheduled, err := p.Without("schedule").Run(g, passes.Options{})
			require.NoError(t, err)
			scheduled, err := p.Run(g, passes.Options{})
			require.NoError(t, err)
			before, after := passes.Stats(unscheduled), passes.Stats(scheduled)
			require.Equal(t, before.Nodes, after.Nodes)
			if g.Name == "lenet5bn" && len(p.Passes) < len(passes.Train.Passes) {
				require.Less(t, after.Arena, before.Arena, "lenet5bn")
			}
			if !strings.HasPrefix(g.Name, "random") {
				require.LessOrEqual(t, after.Arena, before.Arena, g.Name)
			}
		}
	}
}
