package eval

import (
	"fmt"
	"math"

	"github.com/cnnc/cnnc/ir"
)

// A Tensor is a dense float64 array in row-major order. Labels hold class
// indices as float64; a scalar has the empty shape and one element.
type Tensor struct {
	Shape ir.Shape
	Data  []float64
}

// NewTensor returns a zero tensor of the given shape.
func NewTensor(shape ir.Shape) *Tensor {
	return &Tensor{Shape: shape.Clone(), Data: make([]float64, shape.Size())}
}

// FromFloat32 returns a tensor of the given shape holding data, converted
// to float64. It panics if data does not have shape's number of elements.
func FromFloat32(shape ir.Shape, data []float32) *Tensor {
	if len(data) != shape.Size() {
		panic(fmt.Sprintf("eval.FromFloat32: %d values for shape %v (%d elements)", len(data), shape, shape.Size()))
	}
	t := NewTensor(shape)
	for i, v := range data {
		t.Data[i] = float64(v)
	}
	return t
}

// FromFloat64 returns a tensor of the given shape holding a copy of data.
// It panics if data does not have shape's number of elements.
func FromFloat64(shape ir.Shape, data []float64) *Tensor {
	if len(data) != shape.Size() {
		panic(fmt.Sprintf("eval.FromFloat64: %d values for shape %v (%d elements)", len(data), shape, shape.Size()))
	}
	t := NewTensor(shape)
	copy(t.Data, data)
	return t
}

// Float32 returns the tensor's elements rounded to float32.
func (t *Tensor) Float32() []float32 {
	out := make([]float32, len(t.Data))
	for i, v := range t.Data {
		out[i] = float32(v)
	}
	return out
}

// Clone returns a copy of t that shares no memory with it.
func (t *Tensor) Clone() *Tensor {
	return &Tensor{Shape: t.Shape.Clone(), Data: append([]float64(nil), t.Data...)}
}

// String describes the tensor briefly: its shape and first few elements.
func (t *Tensor) String() string {
	const most = 8
	if len(t.Data) <= most {
		return fmt.Sprintf("%v%v", t.Shape, t.Data)
	}
	return fmt.Sprintf("%v%v...", t.Shape, t.Data[:most])
}

// checkShape reports whether t has the given shape and a matching number of
// elements.
func (t *Tensor) checkShape(shape ir.Shape) error {
	if t == nil {
		return fmt.Errorf("is nil, want shape %v", shape)
	}
	if !t.Shape.Equal(shape) {
		return fmt.Errorf("has shape %v, want %v", t.Shape, shape)
	}
	if len(t.Data) != shape.Size() {
		return fmt.Errorf("has %d elements, its shape %v needs %d", len(t.Data), shape, shape.Size())
	}
	return nil
}

// Compare returns the largest error between got and want, element by
// element, and the index where it occurs. The error of one element is
// |g-w| / max(|w|, floor): relative for large values, absolute (scaled by
// floor) for values near zero. An element where one side is NaN or
// infinite and the other is not the same counts as +Inf. Compare fails if
// the shapes differ.
func Compare(got, want *Tensor, floor float64) (maxErr float64, index int, err error) {
	if got == nil || want == nil {
		return 0, 0, fmt.Errorf("compare: a tensor is nil")
	}
	if err := got.checkShape(want.Shape); err != nil {
		return 0, 0, fmt.Errorf("compare: got %v", err)
	}
	for i := range want.Data {
		e := elemErr(got.Data[i], want.Data[i], floor)
		if e > maxErr {
			maxErr, index = e, i
		}
	}
	return maxErr, index, nil
}

// elemErr is one element's error for Compare.
func elemErr(g, w, floor float64) float64 {
	if g == w || (math.IsNaN(g) && math.IsNaN(w)) {
		return 0
	}
	if math.IsNaN(g) || math.IsNaN(w) || math.IsInf(g, 0) || math.IsInf(w, 0) {
		return math.Inf(1)
	}
	return math.Abs(g-w) / math.Max(math.Abs(w), floor)
}

// Close reports whether got and want agree element by element within
// |g-w| <= atol + rtol*|w| (NaN agrees only with NaN, and an infinity only
// with itself). The error names the first element that does not, with
// both values, and the largest error over the tensor.
func Close(got, want *Tensor, rtol, atol float64) error {
	if got == nil || want == nil {
		return fmt.Errorf("close: a tensor is nil")
	}
	if err := got.checkShape(want.Shape); err != nil {
		return fmt.Errorf("close: got %v", err)
	}
	first, bad := -1, 0
	maxAbs, maxAbsAt := 0.0, 0
	for i := range want.Data {
		g, w := got.Data[i], want.Data[i]
		if !within(g, w, rtol, atol) {
			bad++
			if first < 0 {
				first = i
			}
		}
		d := math.Abs(g - w)
		if g == w || (math.IsNaN(g) && math.IsNaN(w)) {
			d = 0
		} else if math.IsNaN(d) {
			d = math.Inf(1)
		}
		if d > maxAbs {
			maxAbs, maxAbsAt = d, i
		}
	}
	if first < 0 {
		return nil
	}
	return fmt.Errorf("%d of %d elements differ beyond rtol %g, atol %g: first at %d %v: got %v, want %v; largest difference %.3g at %d %v (got %v, want %v)",
		bad, len(want.Data), rtol, atol,
		first, multiIndex(want.Shape, first), got.Data[first], want.Data[first],
		maxAbs, maxAbsAt, multiIndex(want.Shape, maxAbsAt), got.Data[maxAbsAt], want.Data[maxAbsAt])
}

func within(g, w, rtol, atol float64) bool {
	if g == w || (math.IsNaN(g) && math.IsNaN(w)) {
		return true
	}
	return math.Abs(g-w) <= atol+rtol*math.Abs(w) // false for NaN and a mismatched Inf
}

// multiIndex returns the row-major index i as one index per dimension.
func multiIndex(shape ir.Shape, i int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}
