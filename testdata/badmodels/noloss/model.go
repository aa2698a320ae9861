// Package noloss has a model with outputs but no loss, which can be
// evaluated but not trained.
package noloss

import "github.com/cnnc/cnnc/ir"

// Net computes logits and forgets the loss.
func Net() *ir.Graph {
	b := ir.NewBuilder("net", 8)
	x := b.Input("x", 1, 28, 28)
	logits := b.Linear("fc", b.Flatten(x), 784, 10)
	b.Output("logits", logits)
	return b.Graph()
}
