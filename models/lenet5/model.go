// Package lenet5 declares LeNet-5 for 1x28x28 images (MNIST, Fashion-MNIST)
// and its batch-normalised variant, as in the PyTorch anchors.
package lenet5

import "github.com/cnnc/cnnc/ir"

// LeNet5 is LeNet-5 with ReLU and max pooling: conv(1->6, 5x5, pad 2),
// pool, conv(6->16, 5x5), pool, fc 400-120-84-10, trained with softmax
// cross-entropy.
func LeNet5() *ir.Graph {
	b := ir.NewBuilder("lenet5", 64)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)

	h := b.ReLU(b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2)))
	h = b.MaxPool(h, 2)
	h = b.ReLU(b.Conv2D("conv2", h, 6, 16, 5))
	h = b.MaxPool(h, 2)

	h = b.Flatten(h)
	h = b.ReLU(b.Linear("fc1", h, 400, 120))
	h = b.ReLU(b.Linear("fc2", h, 120, 84))
	logits := b.Linear("fc3", h, 84, 10)

	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}

// LeNet5BN is LeNet-5 with batch normalisation after each convolution and
// dropout (keep 0.5) before the last layer.
func LeNet5BN() *ir.Graph {
	b := ir.NewBuilder("lenet5bn", 64)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)

	h := b.Conv2D("conv1", x, 1, 6, 5, ir.Pad(2), ir.NoBias())
	h = b.ReLU(b.BatchNorm("bn1", h, 6))
	h = b.MaxPool(h, 2)
	h = b.Conv2D("conv2", h, 6, 16, 5, ir.NoBias())
	h = b.ReLU(b.BatchNorm("bn2", h, 16))
	h = b.MaxPool(h, 2)

	h = b.Flatten(h)
	h = b.ReLU(b.Linear("fc1", h, 400, 120))
	h = b.ReLU(b.Linear("fc2", h, 120, 84))
	h = b.Dropout("drop1", h, 0.5)
	logits := b.Linear("fc3", h, 84, 10)

	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
