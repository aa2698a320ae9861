// Package panic has a model function that panics while it builds the
// graph.
package panic

import (
	"fmt"

	"github.com/cnnc/cnnc/ir"
)

// Net reads one channel count past the end of its list.
func Net() *ir.Graph {
	b := ir.NewBuilder("net", 8)
	h := b.Input("x", 1, 28, 28)
	y := b.Labels("y", 10)
	channels := []int{1, 6, 16}
	for i := range channels {
		h = b.ReLU(b.Conv2D(fmt.Sprintf("conv%d", i+1), h, channels[i], channels[i+1], 5))
	}
	logits := b.Linear("fc", b.Flatten(h), 16*16*16, 10)
	b.Output("logits", logits)
	b.Loss(b.SoftmaxCrossEntropy(logits, y))
	return b.Graph()
}
