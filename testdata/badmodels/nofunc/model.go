// Package nofunc has a model, but not the one asked for.
package nofunc

import "github.com/cnnc/cnnc/ir"

// Net is a linear classifier.
func Net() *ir.Graph {
	b := ir.NewBuilder("net", 8)
	x := b.Input("x", 4)
	y := b.Labels("y", 3)
	logits := b.Linear("fc", x, 4, 3)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
