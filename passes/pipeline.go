package passes

import "github.com/cnnc/cnnc/ir"

// Train is the pipeline that makes a training graph from a model.
var Train = Pipeline{Name: "train", Passes: []Pass{
	{Name: "verify", Fn: verifyTraining},
	{Name: "autodiff", Fn: autodiff},
	{Name: "fuse-conv-bn-relu", Fn: FuseConvBNReLU},
	{Name: "fuse-batchnorm-relu", Fn: FuseBatchNormReLU},
	{Name: "fuse-activation", Fn: FuseActivation},
	{Name: "fuse-maxpool-relu-backward", Fn: FuseMaxPoolReLUBackward},
	{Name: "fold", Fn: FoldConstants},
	{Name: "cse", Fn: CSE},
	{Name: "dce", Fn: DCE},
	{Name: "schedule", Fn: Schedule},
}}

// Infer is the pipeline that makes an inference graph from a model.
var Infer = Pipeline{Name: "infer", Passes: []Pass{
	{Name: "verify", Fn: verify},
	{Name: "lower-inference", Fn: lowerInference},
	{Name: "fold-batchnorm", Fn: FoldBatchNorm},
	{Name: "fold-scale", Fn: FoldScaleIntoLayer},
	{Name: "fuse-activation", Fn: FuseActivation},
	{Name: "fold", Fn: FoldConstants},
	{Name: "cse", Fn: CSE},
	{Name: "dce", Fn: DCE},
}}

// Pipelines lists every pipeline by name.
var Pipelines = []Pipeline{Train, Infer}

// passOrder lists pairs of passes where the first must run before the
// second in any pipeline that has both.
var passOrder = []struct{ before, after, why string }{
	{"verify", "autodiff", "autodiff assumes a valid graph with a loss"},
	{"verify", "lower-inference", "lowering assumes a valid graph"},
	{"autodiff", "fold", "autodiff's seed and zero gradients are constants to fold"},
	{"lower-inference", "fold", "lowering turns dropout into scales that fold can merge"},
	{"fold", "cse", "folding makes constants and scales that CSE can merge"},
	{"autodiff", "fuse-batchnorm-relu", "the fusion rewrites the backward nodes of batch-norm and ReLU together with the forward ones"},
	{"autodiff", "fuse-conv-bn-relu", "the fusion rewrites the backward nodes of the convolution, batch-norm and ReLU together with the forward ones"},
	{"fuse-conv-bn-relu", "fuse-batchnorm-relu", "a batch-norm and ReLU fused alone no longer match the convolution, batch-norm and ReLU pattern"},
	{"lower-inference", "fold-batchnorm", "only inference batch-norm (running statistics) folds into weights"},
	{"lower-inference", "fold-scale", "lowering turns classic dropout into the scale that is folded"},
	{"fold-batchnorm", "fuse-activation", "conv, batch-norm, ReLU: the ReLU fuses once the batch-norm is folded away"},
	{"fold-scale", "fuse-activation", "folding a scale looks for plain conv and linear layers"},
	{"autodiff", "fuse-activation", "autodiff differentiates the plain ReLU and tanh; their backward reads the activation's output, which the fused layer writes"},
	{"autodiff", "cse", "backward nodes can repeat forward values"},
	{"autodiff", "fuse-maxpool-relu-backward", "the fusion rewrites the backward nodes that autodiff makes"},
	{"fuse-conv-bn-relu", "fuse-maxpool-relu-backward", "a ReLU's backward that the batch-norm fusions fold in must not be fused into a pool's first"},
	{"fuse-batchnorm-relu", "fuse-maxpool-relu-backward", "a ReLU's backward that the batch-norm fusions fold in must not be fused into a pool's first"},
	{"cse", "dce", "CSE leaves the merged nodes unused"},
	{"fold", "dce", "folding leaves the folded nodes unused"},
	{"dce", "schedule", "DCE renumbers the nodes in their old order, undoing the schedule"},
}

func verify(g *ir.Graph) error         { return g.Validate() }
func verifyTraining(g *ir.Graph) error { return g.ValidateTraining() }

// DCE removes the nodes that no output needs. Inputs, parameters and
// buffers stay: they are the model's interface.
func DCE(g *ir.Graph) error {
	g.Renumber()
	return nil
}

// An Order says that pass Before must run before pass After, and why.
type Order struct{ Before, After, Why string }

// PassOrder returns the ordering constraints between passes.
func PassOrder() []Order {
	out := make([]Order, len(passOrder))
	for i, o := range passOrder {
		out[i] = Order{o.before, o.after, o.why}
	}
	return out
}
