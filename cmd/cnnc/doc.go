// Cnnc compiles convolutional networks declared in Go into Go packages.
//
// Usage:
//
//	cnnc <command> [flags] [arguments]
//
// The commands are:
//
//	compile   compile a model into a Go package and its trainer
//	train     compile a model and run its trainer
//	dump      print a model's graph after any pass
//	version   print cnnc's version
//
// A model is an exported func Name() *ir.Graph in an ordinary Go file (see
// package ir). Run 'cnnc <command> -h' for the flags of a command.
//
// Exit status: 0 on success, 1 when cnnc fails (it prints "cnnc: " and the
// error on stderr), 2 for a mistake on the command line; cnnc train exits
// with the trainer's status when the trainer fails.
package main
