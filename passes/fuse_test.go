package passes_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/cnnc/cnnc/ir"
	"github.com/cnnc/cnnc/ir/eval"
	"github.com/cnnc/cnnc/models/lenet5"
	"github.com/cnnc/cnnc/models/mlp10"
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
		{"mlp10", mlp10.MLP10, []ir.Op{ir.OpTanh}, map[ir.Op]int{ir.OpLinearTanh: 10, ir.OpLinear: 1}},
		{"tanh after a convolution and linear layers", func() *ir.Graph {
			b := ir.NewBuilder("tanhs", 2)
			x := b.Input("x", 1, 6, 6)
			h := b.Tanh(b.Conv2D("conv", x, 1, 2, 3))
			z := b.Linear("fc1", b.Flatten(h), 32, 8)
			// z feeds the tanh and the sum: the tanh stays.
			h2 := b.Add(b.Tanh(z), z)
			b.Output("logits", b.Linear("fc2", b.Tanh(b.Linear("fc3", h2, 8, 8)), 8, 2))
			return b.Graph()
		}, []ir.Op{ir.OpConv2D}, map[ir.Op]int{ir.OpTanh: 1, ir.OpConv2DTanh: 1, ir.OpLinear: 2, ir.OpLinearTanh: 1}},
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

// TestTrainingFusion checks that the training pipeline fuses each
// convolution, batch-norm and ReLU, forward and backward, into one node
// each, and each linear layer and its ReLU, and that without the first
// fusion each batch-norm and ReLU still fuse, leaving none of the
// separate nodes either way.
func TestTrainingFusion(t *testing.T) {
	tests := []struct {
		name     string
		pipeline passes.Pipeline
		want     map[ir.Op]int
	}{
		{"train", passes.Train, map[ir.Op]int{
			ir.OpConv2DBNReLU: 2, ir.OpConv2DBNReLUBackward: 2,
			// z, statistics, running mean and variance; beta's and the
			// weight's gradients, and conv2's input gradient.
			ir.OpResult: 2*4 + 2*2 + 1,
			ir.OpConv2D: 0, ir.OpBatchNormReLU: 0, ir.OpRunningMean: 0, ir.OpConv2DBackwardFilter: 0, ir.OpConv2DBackwardData: 0,
			ir.OpLinearReLU: 2, ir.OpReLU: 0,
		}},
		{"without fuse-conv-bn-relu", passes.Train.Without("fuse-conv-bn-relu"), map[ir.Op]int{
			ir.OpConv2DBNReLU: 0, ir.OpBatchNormReLU: 2, ir.OpBatchNormReLUBackward: 2,
			ir.OpBatchNormReLUBackwardGamma: 2, ir.OpReLUBiasGrad: 2,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			train, err := tt.pipeline.Run(lenet5.LeNet5BN(), passes.Options{})
			require.NoError(t, err)
			counts := map[ir.Op]int{}
			for _, n := range train.Nodes {
				counts[n.Op]++
			}
			for _, op := range []ir.Op{ir.OpBatchNorm, ir.OpBatchNormBackward, ir.OpBatchNormBackwardGamma} {
				require.Zero(t, counts[op], "%s left in the training graph", op)
			}
			for op, n := range tt.want {
				require.Equal(t, n, counts[op], "%s nodes:\n%s", op, train)
			}
			require.Equal(t, 2, counts[ir.OpReLUBackward], "only the two fully connected ReLUs keep a separate backward")
		})
	}
}

// TestFuseConvBNReLUSkips checks the patterns the fusion must leave alone:
// a convolution with a bias, and a convolution whose output something
// else reads too; the same block without either is fused.
func TestFuseConvBNReLUSkips(t *testing.T) {
	tests := []struct {
		name  string
		model func(b *ir.Builder, x *ir.Node) *ir.Node
		fused bool
	}{
		{"no bias, not shared", func(b *ir.Builder, x *ir.Node) *ir.Node {
			return b.ReLU(b.BatchNorm("bn", b.Conv2D("conv", x, 2, 3, 3, ir.NoBias()), 3))
		}, true},
		{"bias", func(b *ir.Builder, x *ir.Node) *ir.Node {
			return b.ReLU(b.BatchNorm("bn", b.Conv2D("conv", x, 2, 3, 3), 3))
		}, false},
		{"shared convolution", func(b *ir.Builder, x *ir.Node) *ir.Node {
			c := b.Conv2D("conv", x, 2, 3, 3, ir.NoBias())
			return b.Add(b.ReLU(b.BatchNorm("bn", c, 3)), c)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ir.NewBuilder("skip", 4)
			x := b.Input("x", 2, 6, 6)
			h := b.Flatten(tt.model(b, x))
			logits := b.Linear("fc", h, 3*4*4, 2)
			b.Output("logits", logits)
			b.Loss(b.SoftmaxCrossEntropy(logits, b.Labels("y", 2)))
			train, err := passes.Train.Run(b.Graph(), passes.Options{})
			require.NoError(t, err)
			fused := false
			for _, n := range train.Nodes {
				fused = fused || n.Op == ir.OpConv2DBNReLU
			}
			require.Equal(t, tt.fused, fused, "graph:\n%s", train)
		})
	}
}

// TestFuseMaxPoolReLUBackward checks that LeNet-5's two max-pool backward
// nodes take in the backward of the ReLU before them, leaving the fully
// connected layers' ReLU backward nodes, and that every output of the
// training graph, the gradients included, is what it is without the
// fusion.
func TestFuseMaxPoolReLUBackward(t *testing.T) {
	fused, err := passes.Train.Run(lenet5.LeNet5(), passes.Options{})
	require.NoError(t, err)
	plain, err := passes.Train.Without("fuse-maxpool-relu-backward").Run(lenet5.LeNet5(), passes.Options{})
	require.NoError(t, err)
	for _, tt := range []struct {
		g    *ir.Graph
		want map[ir.Op]int
	}{
		{fused, map[ir.Op]int{ir.OpMaxPoolReLUBackward: 2, ir.OpMaxPoolBackward: 0, ir.OpReLUBackward: 2}},
		{plain, map[ir.Op]int{ir.OpMaxPoolReLUBackward: 0, ir.OpMaxPoolBackward: 2, ir.OpReLUBackward: 4}},
	} {
		counts := map[ir.Op]int{}
		for _, n := range tt.g.Nodes {
			counts[n.Op]++
		}
		for op, n := range tt.want {
			require.Equal(t, n, counts[op], "%s nodes:\n%s", op, tt.g)
		}
	}
	feeds := eval.RandomFeeds(lenet5.LeNet5(), 5)
	want, err := eval.Outputs(plain, feeds, eval.Options{})
	require.NoError(t, err)
	got, err := eval.Outputs(fused, feeds, eval.Options{})
	require.NoError(t, err)
	require.Equal(t, len(want), len(got))
	for name, w := range want {
		require.NoError(t, eval.Close(got[name], w, 0, 0), name)
	}
}
