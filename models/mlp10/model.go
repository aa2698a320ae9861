// Package mlp10 declares the deep tanh network of the weight
// initialisation lesson: ten hidden layers of 500 units on flattened
// 28x28 images. With small Gaussian weights its activations collapse
// towards zero layer by layer; with Xavier initialisation they keep their
// spread.
package mlp10

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

// MLP10 is fc 784-500, then nine fc 500-500, each followed by tanh, and a
// last fc 500-10, initialised as PyTorch initialises nn.Linear (as the
// anchor model is).
func MLP10() *ir.Graph {
	b := ir.NewBuilder("mlp10", 64)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)

	h, in := b.Flatten(x), 784
	for i := 1; i <= 10; i++ {
		h = b.Tanh(b.Linear(fmt.Sprintf("fc%d", i), h, in, 500))
		in = 500
	}
	logits := b.Linear("fc11", h, 500, 10)

	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
