package data

import (
	"fmt"

	"github.com/cnnc/cnnc/runtime"
)

// Evaluate returns the fraction of ds that predict classifies correctly.
// It walks ds in order, in batches of batch samples; predict gets a buffer of
// batch images of which the first n are valid (the rest hold stale data) and
// returns at least n*ds.Classes logits, row by row. Evaluate returns 0 for an
// empty data set and panics if batch < 1.
func Evaluate(predict func(x []float32, n int) []float32, ds *Dataset, batch int) (acc float64) {
	if ds.N == 0 {
		return 0
	}
	correct := 0
	inOrder(ds, batch, func(x []float32, y []int32, n int) {
		correct += runtime.Accuracy(predict(x, n), y[:n], ds.Classes)
	})
	return float64(correct) / float64(ds.N)
}

// AddScores adds to sum, ds.N rows of ds.Classes values, the scores that
// predict gives each sample of ds, walking ds as Evaluate does. An
// ensemble adds its members' probabilities and classifies by the sum
// (runtime.Accuracy). It panics if sum is short.
func AddScores(predict func(x []float32, n int) []float32, ds *Dataset, batch int, sum []float64) {
	if len(sum) < ds.N*ds.Classes {
		panic(fmt.Sprintf("data: AddScores: sum holds %d values, want %d", len(sum), ds.N*ds.Classes))
	}
	at := 0
	inOrder(ds, batch, func(x []float32, _ []int32, n int) {
		for i, v := range predict(x, n)[:n*ds.Classes] {
			sum[at+i] += float64(v)
		}
		at += n * ds.Classes
	})
}

// inOrder calls f with every batch of ds in order: n images in x and
// their labels in y.
func inOrder(ds *Dataset, batch int, f func(x []float32, y []int32, n int)) {
	b := NewBatcher(ds, batch, nil)
	x := make([]float32, batch*ds.ImageSize())
	y := make([]int32, batch)
	for {
		n, ok := b.Next(x, y)
		if !ok {
			return
		}
		f(x, y, n)
	}
}
