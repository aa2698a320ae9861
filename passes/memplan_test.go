package passes_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/passes"
)

func TestMemoryPlan(t *testing.T) {
	for _, g := range testModels(t) {
		for _, p := range passes.Pipelines {
			out, err := p.Run(g, passes.Options{})
			require.NoError(t, err)
			plan := passes.PlanMemory(out)
			require.NoError(t, plan.Check(out), "%s %s", g.Name, p.Name)
			require.LessOrEqual(t, plan.Size, plan.Unplanned)
			for _, n := range out.Nodes {
				if n.Op.IsLeaf() {
					require.Equal(t, -1, plan.Offset[n.ID], "%s: leaf %s is in the arena", g.Name, n)
				}
			}
			if g.Name == "lenet5bn" {
				t.Logf("%s %s: arena %d floats, %d without planning (%.0f%%)", g.Name, p.Name, plan.Size, plan.Unplanned, 100*float64(plan.Size)/float64(plan.Unplanned))
			}
		}
	}
}

// TestMemoryPlanCheckCatchesOverlap makes sure Check can fail.
func TestMemoryPlanCheckCatchesOverlap(t *testing.T) {
	b := ir.NewBuilder("overlap", 2)
	x := b.Input("x", 4)
	h := b.Linear("fc1", x, 4, 4)
	k := b.Linear("fc2", h, 4, 4)
	b.Output("logits", b.Add(h, k))
	g := b.Graph()
	plan := passes.PlanMemory(g)
	require.NoError(t, plan.Check(g))
	// h is alive while k is computed: putting them together must fail.
	plan.Offset[k.ID] = plan.Offset[h.ID]
	require.ErrorContains(t, plan.Check(g), "memory plan overlaps")
}

// TestMemoryPlanInPlace checks that an activation overwrites the value
// it consumes when that value dies there, and not when it lives on.
func TestMemoryPlanInPlace(t *testing.T) {
	b := ir.NewBuilder("inplace", 2)
	x := b.Input("x", 4)
	h := b.Linear("fc1", x, 4, 4)
	r := b.ReLU(h)
	s := b.Tanh(h) // h is still needed here, so r cannot take it over
	b.Output("logits", b.Add(r, s))
	g := b.Graph()
	plan := passes.PlanMemory(g)
	require.NoError(t, plan.Check(g))
	require.False(t, plan.InPlace(r, 0), "relu overwrote a value that tanh still reads")
	require.True(t, plan.InPlace(s, 0), "tanh should overwrite the dying linear output")
}
