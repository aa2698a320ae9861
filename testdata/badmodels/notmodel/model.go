// Package notmodel names a function that is not a model function.
package notmodel

import "github.com/cnnc/cnnc/ir"

// Net takes the batch size, so cnnc cannot call it.
func Net(batch int) *ir.Graph {
	b := ir.NewBuilder("net", batch)
	x := b.Input("x", 4)
	y := b.Labels("y", 3)
	logits := b.Linear("fc", x, 4, 3)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
