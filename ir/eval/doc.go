// Package eval is cnnc's reference evaluator: it defines what every op of
// package ir means, forward and backward.
//
// The op table in ir/op.go states each op's meaning in a comment beside its
// entry; this package is that table turned into code, and where the two
// disagree the comment is the spec and this package has a bug. Every op is
// written as plain loops over row-major float64 tensors, accumulating in
// float64, with no attempt at speed: the code should read like the formula.
//
// Everything else in cnnc is checked against it. Every pass must leave the
// result of [Run] unchanged on [RandomFeeds] (within rounding), and every
// kernel that codegen emits, for the CPU or the GPU, must agree with it on
// random inputs. Its own backward ops are checked against central finite
// differences of its forward ops, so the whole chain rests on a few
// hundred lines that are easy to read.
//
// Dropout masks come from the counter-based generator [Uniform01], keyed by
// the layer's seed, the run's seed, the training step and the element
// index, so that a backward op, another kernel or another device can
// recompute the same mask instead of storing it.
package eval
