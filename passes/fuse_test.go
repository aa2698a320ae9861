package passes_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/passes"
)

func TestInferenceFusion(t *testing.T) {
	tests := []struct {
		name   string
		model  func() *ir.Graph
		absent []ir.Op
		want   map[ir.Op]int
	}{
		{"lenet5", lenet5.LeNet5, []ir.Op{ir.OpReLU, ir.OpConv2D}, map[ir.Op]int{ir.OpConv2DReLU: 2, ir.OpLinearReLU: 2, ir.OpLinear: 1}},
		{"lenet5bn", lenet5.LeNet5BN, []ir.Op{ir.OpBatchNormInfer, ir.OpReLU, ir.OpDropout, ir.OpConv2D},
			map[ir.Op]int{ir.OpConv2DReLU: 2, ir.OpFoldBNWeight: 2, ir.OpFoldBNBias: 2, ir.OpLinearReLU: 2, ir.OpLinear: 1}},
		{"classic dropout before a layer", func() *ir.Graph {
			b := ir.NewBuilder("classic", 2)
			x := b.Input("x", 6)
			h := b.Dropout("drop", b.Tanh(x), 0.3, ir.Classic())
			b.Output("logits", b.Linear("fc", h, 6, 2))
			return b.Graph()
		}, []ir.Op{ir.OpDropout}, map[ir.Op]int{ir.OpScale: 1, ir.OpLinear: 1}},
		{"linear batch-norm without bias", func() *ir.Graph {
			b := ir.NewBuilder("bn1d", 3)
			x := b.Input("x", 5)
			h := b.BatchNorm("bn", b.Linear("fc1", x, 5, 4, ir.NoBias()), 4)
			b.Output("logits", b.Linear("fc2", b.ReLU(h), 4, 2))
			return b.Graph()
		}, []ir.Op{ir.OpBatchNormInfer}, map[ir.Op]int{ir.OpLinearReLU: 1, ir.OpFoldBNBias: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := tt.model()
			infer, err := passes.Infer.Run(g, passes.Options{})
			require.NoError(t, err)
			counts := map[ir.Op]int{}
			for _, n := range infer.Nodes {
				counts[n.Op]++
			}
			for _, op := range tt.absent {
				require.Zero(t, counts[op], "%s left in the inference graph:\n%s", op, infer)
			}
			for op, n := range tt.want {
				require.Equal(t, n, counts[op], "%s nodes:\n%s", op, infer)
			}
			// The fused graph computes what the plain lowering computes.
			plain, err := passes.LowerInference(g)
			require.NoError(t, err)
			feeds := eval.RandomFeeds(g, 9)
			want, err := eval.Outputs(plain, feeds, eval.Options{})
			require.NoError(t, err)
			got, err := eval.Outputs(infer, feeds, eval.Options{})
			require.NoError(t, err)
			require.NoError(t, eval.Close(got["value:logits"], want["value:logits"], 1e-9, 1e-12))
		})
	}
}

// TestFoldBatchNormOnce checks that folding twice changes nothing more.
func TestFoldBatchNormOnce(t *testing.T) {
	infer, err := passes.Infer.Run(lenet5.LeNet5BN(), passes.Options{})
	require.NoError(t, err)
	before := infer.String()
	again, err := passes.Pipeline{Name: "again", Passes: []passes.Pass{{Name: "fold-batchnorm", Fn: passes.FoldBatchNorm}}}.Run(infer, passes.Options{})
	require.NoError(t, err)
	require.Equal(t, before, again.String())
}

// TestFuseBatchNormReLU checks that the training pipeline fuses each
// batch-norm and its ReLU, forward and backward, leaving none of the
// separate nodes.
func TestFuseBatchNormReLU(t *testing.T) {
	train, err := passes.Train.Run(lenet5.LeNet5BN(), passes.Options{})
	require.NoError(t, err)
	counts := map[ir.Op]int{}
	for _, n := range train.Nodes {
		counts[n.Op]++
	}
	for _, op := range []ir.Op{ir.OpBatchNorm, ir.OpBatchNormBackward, ir.OpBatchNormBackwardGamma} {
		require.Zero(t, counts[op], "%s left in the training graph", op)
	}
	require.Equal(t, 2, counts[ir.OpBatchNormReLU])
	require.Equal(t, 2, counts[ir.OpBatchNormReLUBackward])
	require.Equal(t, 2, counts[ir.OpBatchNormReLUBackwardGamma])
	require.Equal(t, 2, counts[ir.OpReLUBiasGrad])
	require.Equal(t, 2, counts[ir.OpReLUBackward], "only the two fully connected ReLUs keep a separate backward")
}
