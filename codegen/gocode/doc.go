// Package gocode implements cnnc's Go target: it turns a training graph
// and an inference graph into a Go package whose kernels are specialised to
// the model's exact shapes.
//
// It exists because it is the path that always works: on every
// architecture, on CPUs without AVX2, and as the reference the faster
// targets are checked against. Every dimension, stride, kernel size and
// loop bound is a Go constant of the model; only the number of samples in
// a call is a run-time value. TrainStep and Predict are straight-line
// sequences of kernel calls over buffers allocated once by New; kernels
// split their work over the runtime's worker pool by sample, or by output
// channel for reductions over the batch, so that every sum runs in a fixed
// order and a run is reproducible bit for bit for any number of threads.
//
// Generate returns three files: model_gen.go (the Model type and its API),
// kernels_gen.go (one function per computing node, shared between the
// training and inference graphs where identical) and cmd/train/main.go
// (which hands the model to runtime/trainer). How a node is computed is
// chosen per op through the [Emitter] table; see package codegen for the
// seam this gives other targets.
package gocode
