// Package shape has a model whose second convolution expects the wrong
// number of input channels.
package shape

import "github.com/cnnc/cnnc/ir"

// Net declares conv2 with 16 input channels where conv1 gives it 6.
func Net() *ir.Graph {
	b := ir.NewBuilder("net", 8)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)
	h := b.ReLU(b.Conv2D("conv1", x, 1, 6, 5))
	h = b.MaxPool(h, 2)
	h = b.ReLU(b.Conv2D("conv2", h, 16, 16, 5))
	h = b.MaxPool(h, 2)
	logits := b.Linear("fc", b.Flatten(h), 256, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
