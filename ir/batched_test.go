package ir_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
)

func TestBatched(t *testing.T) {
	b := ir.NewBuilder("batched", 4)
	x := b.Input("x", 2, 5, 5)
	y := b.Labels("y", 3)
	h := b.Conv2D("conv", x, 2, 3, 3)
	f := b.Flatten(h)
	logits := b.Linear("fc", f, 27, 3)
	loss := b.SoftmaxCrossEntropy(logits, y)
	b.Loss(loss)
	g := b.Graph()
	require.NoError(t, g.Validate())
	got, err := g.Batched()
	require.NoError(t, err)
	for _, n := range []*ir.Node{x, y, h, f, logits} {
		require.True(t, got[n], "%s should be batched", n)
	}
	for _, n := range append(g.Params(), loss) {
		require.False(t, got[n], "%s should not be batched", n)
	}

	// A reshape that folds the batch into another axis is refused.
	bad := ir.NewGraph("bad", 4)
	in := bad.Add(ir.OpInput, ir.Shape{4, 6}, ir.Attrs{Name: "x"})
	bad.Add(ir.OpReshape, ir.Shape{2, 12}, ir.Attrs{}, in)
	_, err = bad.Batched()
	require.ErrorContains(t, err, "does not have the batch 4 as axis 0")
}
