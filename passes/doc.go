// Package passes transforms cnnc graphs: the pass manager, which runs an
// ordered table of named passes and verifies the graph after each, and the
// passes themselves.
//
// Autodiff turns a forward graph with a scalar loss into a training graph
// whose outputs include one gradient per parameter, built from the
// explicit backward ops of the op table, so that later passes and the code
// generators see backward computation as ordinary nodes. LowerInference
// turns a forward graph into the graph that serves predictions: batch-norm
// reads its running statistics and dropout disappears.
//
// A pass is a func(*ir.Graph) error that rewrites the graph in place. The
// pipelines are declared as tables in pipeline.go, so the whole compiler
// reads as two lists.
package passes
