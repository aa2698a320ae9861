// Package twofuncs declares two models, and the command line names neither.
package twofuncs

import "github.com/cnnc/cnnc/ir"

// Small is a linear classifier.
func Small() *ir.Graph { return mlp("small", 0) }

// Big has a hidden layer.
func Big() *ir.Graph { return mlp("big", 32) }

func mlp(name string, hidden int) *ir.Graph {
	b := ir.NewBuilder(name, 8)
	x := b.Input("x", 16)
	y := b.Labels("y", 4)
	in := 16
	if hidden > 0 {
		x = b.ReLU(b.Linear("fc1", x, 16, hidden))
		in = hidden
	}
	logits := b.Linear("fc2", x, in, 4)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
