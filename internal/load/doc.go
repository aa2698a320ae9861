// Package load loads a user's model: it type-checks the package that holds
// the model file with golang.org/x/tools/go/packages, finds the model
// function (an exported func Name() *ir.Graph), writes a small temporary
// main program next to the model that calls it and prints the graph as
// JSON, runs it with the go command, and decodes and validates the graph.
//
// Errors point at the user's file, relative to the current directory:
// type errors as model.go:LINE:COL, builder errors and panics as
// model.go:LINE.
package load
