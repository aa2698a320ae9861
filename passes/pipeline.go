package passes

import "github.com/cnnc/cnnc/ir"

// Train is the pipeline that makes a training graph from a model.
var Train = Pipeline{Name: "train", Passes: []Pass{
	{Name: "verify", Fn: verifyTraining},
	{Name: "autodiff", Fn: autodiff},
	{Name: "dce", Fn: DCE},
}}

// Infer is the pipeline that makes an inference graph from a model.
var Infer = Pipeline{Name: "infer", Passes: []Pass{
	{Name: "verify", Fn: verify},
	{Name: "lower-inference", Fn: lowerInference},
	{Name: "dce", Fn: DCE},
}}

// Pipelines lists every pipeline by name.
var Pipelines = []Pipeline{Train, Infer}

func verify(g *ir.Graph) error         { return g.Validate() }
func verifyTraining(g *ir.Graph) error { return g.ValidateTraining() }

// DCE removes the nodes that no output needs. Inputs, parameters and
// buffers stay: they are the model's interface.
func DCE(g *ir.Graph) error {
	g.Renumber()
	return nil
}
