// Package typeerror has a model that does not compile.
package typeerror

import "github.com/cnnc/cnnc/ir"

// Net misspells a builder method and passes a string for a channel count.
func Net() *ir.Graph {
	b := ir.NewBuilder("net", 8)
	x := b.Input("x", 1, 28, 28)
	h := b.Conv2d("conv1", x, 1, 6, 5)
	h = b.Conv2D("conv2", h, "6", 16, 5)
	b.Output("logits", h)
	return b.Graph()
}
