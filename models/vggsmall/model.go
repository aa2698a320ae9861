// Package vggsmall declares the small VGG-style network of the anchors for
// 3x32x32 images (CIFAR-10): two blocks of two 3x3 convolutions with
// batch-norm and ReLU, each followed by max pooling, then a classifier
// with dropout.
package vggsmall

import "github.com/cnnc/cnnc/ir"

// VGGSmall is [conv3x3 32, BN, ReLU] x2, maxpool, [conv3x3 64, BN, ReLU] x2,
// maxpool, fc 4096-256 with ReLU and dropout (keep 0.5), fc 256-10.
func VGGSmall() *ir.Graph {
	b := ir.NewBuilder("vggsmall", 64)
	x := b.Input("x", 3, 32, 32)
	y := b.Labels("y", 10)

	cbr := func(name string, h *ir.Node, in, out int) *ir.Node {
		h = b.Conv2D("conv"+name, h, in, out, 3, ir.Pad(1), ir.NoBias())
		return b.ReLU(b.BatchNorm("bn"+name, h, out))
	}
	h := cbr("1", x, 3, 32)
	h = cbr("2", h, 32, 32)
	h = b.MaxPool(h, 2)
	h = cbr("3", h, 32, 64)
	h = cbr("4", h, 64, 64)
	h = b.MaxPool(h, 2)

	h = b.ReLU(b.Linear("fc1", b.Flatten(h), 4096, 256))
	h = b.Dropout("drop1", h, 0.5)
	logits := b.Linear("fc2", h, 256, 10)

	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
