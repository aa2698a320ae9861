// Package linear declares linear classifiers for 1x28x28 images: the
// softmax classifier and the multiclass SVM of the linear-classification
// lesson, each with a small weight penalty.
package linear

import "github.com/cnnc/cnnc/ir"

// Softmax is a linear softmax classifier with an L2 penalty on its weight.
func Softmax() *ir.Graph {
	b := ir.NewBuilder("softmax", 64)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)
	scores := b.Linear("fc", b.Flatten(x), 784, 10)
	b.Output("logits", scores)
	b.Loss(b.Add(b.SoftmaxCrossEntropy(scores, y), b.L2(1e-4, "fc.weight")))
	return b.Graph()
}

// SVM is a linear multiclass SVM (hinge loss, margin 1) with an L2
// penalty on its weight.
func SVM() *ir.Graph {
	b := ir.NewBuilder("svm", 64)
	x := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)
	scores := b.Linear("fc", b.Flatten(x), 784, 10)
	b.Output("logits", scores)
	b.Loss(b.Add(b.SVMLoss(scores, y), b.L2(1e-4, "fc.weight")))
	return b.Graph()
}
