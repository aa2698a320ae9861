// Package codegen holds cnnc's code generators, one sub-package per
// target. Each target turns the graphs the passes produce (a training graph
// from passes.Autodiff and an inference graph from passes.LowerInference)
// into the files of a self-contained package that imports only the runtime.
// No target decides what an op means: package ir does, and every target's
// output is checked against the reference evaluator.
//
// Targets:
//
//   - gocode: pure Go. It writes the generated package's API (model_gen.go),
//     one specialised kernel function per node (kernels_gen.go) and the thin
//     trainer program (cmd/train/main.go). It runs everywhere and is the
//     fallback for the others.
//   - asm (coming): AVX2/FMA micro-kernels for convolution and linear
//     layers, emitted with avo, called from Go kernels.
//   - cuda (coming): one .cu file per model, a kernel per fused op.
//
// # The kernel seam
//
// gocode does not hard-wire how a node is computed. For every node it looks
// up a gocode.Emitter by op in a table (gocode.DefaultEmitters); the
// emitter returns a gocode.Kernel: the phases of Go code that compute the
// node, how each phase is split over the worker pool (over the samples of
// the batch, over a fixed count such as output channels, or serially), and
// the scratch memory it needs. Everything else (buffers, aliasing of
// reshapes, gradients written straight into runtime.Param.Grad, the
// straight-line TrainStep and Predict, the worker closures, the API) is the
// generator's and never changes with the emitter. A target that has a
// faster way to compute conv2d or linear, or that adds a fused op such as
// ConvBNReLU, passes its own emitters for those ops in gocode.Config.Emitters
// and writes its extra files (assembly, declarations) beside the ones
// gocode returns; the kernel body it emits simply calls its entry points.
package codegen
