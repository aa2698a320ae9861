package data

import (
	"fmt"
	"math"

	"github.com/cnnc/cnnc/runtime"
)

// Split divides d into a training part and a validation part holding about
// frac of each class: a stratified split, so both parts keep d's class
// balance. Class by class, in label order, the indices of the class are
// shuffled with a runtime.RNG seeded with seed and the first
// round(frac*count) of them go to the validation part. Both parts keep d's
// order, shape, classes and class names; the same seed gives the same
// split. The parts are copies: d is left as it is, and the caller may drop
// it to free its memory. Split panics if frac is not in [0, 1] or a label
// is out of range, both bugs in the caller.
func (d *Dataset) Split(frac float64, seed uint64) (train, val *Dataset) {
	if !(frac >= 0 && frac <= 1) {
		panic(fmt.Sprintf("data: Split: validation fraction %v is not in [0, 1]", frac))
	}
	byClass := make([][]int, d.Classes)
	for i, l := range d.Labels[:d.N] {
		if l < 0 || int(l) >= d.Classes {
			panic(fmt.Sprintf("data: Split: %s: label %d of sample %d is not in [0, %d)", d.Name, l, i, d.Classes))
		}
		byClass[l] = append(byClass[l], i)
	}
	rng := runtime.NewRNG(seed)
	inVal := make([]bool, d.N)
	nVal := 0
	for _, idx := range byClass {
		rng.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
		k := int(math.Round(frac * float64(len(idx))))
		for _, i := range idx[:k] {
			inVal[i] = true
		}
		nVal += k
	}
	trainIdx := make([]int, 0, d.N-nVal)
	valIdx := make([]int, 0, nVal)
	for i, v := range inVal {
		if v {
			valIdx = append(valIdx, i)
		} else {
			trainIdx = append(trainIdx, i)
		}
	}
	return d.Subset(trainIdx, d.Name+" (train split)"), d.Subset(valIdx, d.Name+" (validation split)")
}

// Subset returns a new data set named name holding copies of the samples of
// d at the given indices, in that order.
func (d *Dataset) Subset(indices []int, name string) *Dataset {
	s := d.ImageSize()
	sub := &Dataset{
		Name:       name,
		Images:     make([]float32, len(indices)*s),
		Labels:     make([]int32, len(indices)),
		N:          len(indices),
		C:          d.C,
		H:          d.H,
		W:          d.W,
		Classes:    d.Classes,
		ClassNames: d.ClassNames,
	}
	for k, i := range indices {
		copy(sub.Images[k*s:(k+1)*s], d.Image(i))
		sub.Labels[k] = d.Labels[i]
	}
	return sub
}
