// Package model declares the network of this example project. The
// generated package ../net is compiled from it:
//
//	go generate ./...
package model

//go:generate go run github.com/cnnc/cnnc/cmd/cnnc compile -o ../net model.go

import "github.com/cnnc/cnnc/ir"

// Tiny is a small convolutional network for 1x8x8 images in 3 classes.
func Tiny() *ir.Graph {
	b := ir.NewBuilder("tiny", 16)
	x := b.Input("x", 1, 8, 8)
	y := b.Labels("y", 3)
	h := b.ReLU(b.Conv2D("conv1", x, 1, 4, 3, ir.Pad(1)))
	h = b.MaxPool(h, 2)
	logits := b.Linear("fc", b.Flatten(h), 4*4*4, 3)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
