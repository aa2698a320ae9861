// Package ir defines cnnc's intermediate representation: a static graph of
// tensor operations, what every operation means, and the builder API that
// model files call.
//
// A model file is an ordinary Go file that declares one exported function
// per model, returning the graph it builds:
//
//	func LeNet5() *ir.Graph {
//		b := ir.NewBuilder("lenet5", 64)
//		x := b.Input("x", 1, 28, 28)
//		y := b.Labels("y", 10)
//		h := b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2))
//		...
//		logits := b.Linear("fc3", h, 84, 10)
//		b.Output("logits", logits)
//		b.Loss(b.SoftmaxCrossEntropy(logits, y))
//		return b.Graph()
//	}
//
// The builder records the caller's file and line for every node, so that
// [Graph.Validate] reports mistakes where the user made them
// ("model.go:14: conv2d "conv2": input has 6 channels, the layer expects 16").
// Builder methods never panic: errors are collected and reported together.
//
// Every value is a node. Nodes have dense integer IDs and appear in
// [Graph.Nodes] in topological order. Shapes are static, activations are
// NCHW (or NF after flattening), and the first dimension of every activation
// is the graph's batch size, a compile-time maximum.
//
// A graph has a text form, one line per node like an SSA dump, which
// [Print] writes and [Parse] reads back exactly (see text.go), and a JSON
// form with a stable schema for tools (see json.go), which also carries
// the builder's errors.
//
// The op table in op.go is the single place that says what an op is: its
// arguments, attributes and meaning. The reference evaluator (package
// ir/eval) implements those meanings with plain loops; every kernel that
// cnnc generates is checked against it.
package ir
