package data

import "github.com/cnnc/cnnc/runtime"

// Evaluate returns the fraction of ds that predict classifies correctly.
// It walks ds in order, in batches of batch samples; predict gets a buffer of
// batch images of which the first n are valid (the rest hold stale data) and
// returns at least n*ds.Classes logits, row by row. Evaluate returns 0 for an
// empty data set and panics if batch < 1.
func Evaluate(predict func(x []float32, n int) []float32, ds *Dataset, batch int) (acc float64) {
	if ds.N == 0 {
		return 0
	}
	b := NewBatcher(ds, batch, nil)
	x := make([]float32, batch*ds.ImageSize())
	y := make([]int32, batch)
	correct := 0
	for {
		n, ok := b.Next(x, y)
		if !ok {
			break
		}
		correct += runtime.Accuracy(predict(x, n), y[:n], ds.Classes)
	}
	return float64(correct) / float64(ds.N)
}
