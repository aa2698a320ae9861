package runtime

import (
	"fmt"
	"slices"
)

// A Param is a named tensor of a model: a trainable parameter, with its
// gradient, or a buffer such as batch-norm running statistics, which has no
// gradient. Name is the name PyTorch's state_dict gives the same tensor
// (conv1.weight, bn1.running_mean), so checkpoints move between the two.
// Shape is the static shape; Data and Grad hold Size() values in row-major
// (NCHW, OIHW) order.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
	Grad  []float32 // nil for buffers
}

// NewParam returns a parameter with zeroed Data of the given shape and, if
// trainable, a zeroed Grad of the same size. It copies shape. It panics if a
// dimension is negative, which is a bug in the caller.
func NewParam(name string, shape []int, trainable bool) *Param {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("runtime: NewParam %q: negative dimension in shape %v", name, shape))
		}
		n *= d
	}
	p := &Param{Name: name, Shape: slices.Clone(shape), Data: make([]float32, n)}
	if trainable {
		p.Grad = make([]float32, n)
	}
	return p
}

// Size returns the number of elements of p, the product of its shape.
func (p *Param) Size() int {
	return shapeSize(p.Shape)
}

// ZeroGrad sets every element of p.Grad to zero; it does nothing for
// buffers.
func (p *Param) ZeroGrad() {
	clear(p.Grad)
}

func shapeSize(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}
