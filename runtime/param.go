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
// (NCHW, OIHW) order, or, for a weight stored as column panels (Panels),
// in the panels' order.
type Param struct {
	Name  string
	Shape []int
	Data  []float32
	Grad  []float32 // nil for buffers
	// Panels says that Data, Grad and any buffer laid out as Data (SGD's
	// momentum) hold the parameter, a matrix of Shape[0] rows of Shape[1]
	// columns, as column panels (see PanelIndex): a linear layer's weight
	// in the layout that runtime/gemm's kernels read fastest on some CPUs
	// (gemm.WeightPanels). Code that works element by element, the
	// optimisers and the penalties, need not care; code that reads or
	// writes elements by their indices, checkpoints and initialisation,
	// goes through Logical and SetLogical, so that files keep PyTorch's
	// row-major order.
	Panels bool
}

// PanelWidth is the columns of a column panel: see PanelIndex.
const PanelWidth = 16

// PanelIndex returns where element (r, c) of a rows x cols matrix stored
// as column panels lies: panel p holds columns [16p, 16p+w), w =
// min(16, cols-16p), row after row, so element (r, c) of it is at
// 16p*rows + r*w + c-16p. The panels take rows*cols floats, as the
// row-major matrix does.
func PanelIndex(rows, cols, r, c int) int {
	p := c / PanelWidth
	w := min(PanelWidth, cols-p*PanelWidth)
	return p*PanelWidth*rows + r*w + c - p*PanelWidth
}

// ToPanels stores the row-major rows x cols matrix src into dst as column
// panels. dst and src must not overlap.
func ToPanels(dst, src []float32, rows, cols int) {
	for c0 := 0; c0 < cols; c0 += PanelWidth {
		w := min(PanelWidth, cols-c0)
		panel := dst[c0*rows : c0*rows+w*rows]
		for r := range rows {
			copy(panel[r*w:(r+1)*w], src[r*cols+c0:])
		}
	}
}

// FromPanels is ToPanels' inverse: it stores the rows x cols matrix src,
// held as column panels, into dst in row-major order.
func FromPanels(dst, src []float32, rows, cols int) {
	for c0 := 0; c0 < cols; c0 += PanelWidth {
		w := min(PanelWidth, cols-c0)
		panel := src[c0*rows : c0*rows+w*rows]
		for r := range rows {
			copy(dst[r*cols+c0:r*cols+c0+w], panel[r*w:])
		}
	}
}

// Logical returns x, a slice laid out as p.Data (Data, Grad or a momentum
// buffer), in row-major order: x itself, or a copy where p.Panels.
func (p *Param) Logical(x []float32) []float32 {
	if !p.Panels {
		return x
	}
	out := make([]float32, len(x))
	FromPanels(out, x, p.Shape[0], p.Shape[1])
	return out
}

// SetLogical stores src, p's elements in row-major order, into dst, a
// slice laid out as p.Data.
func (p *Param) SetLogical(dst, src []float32) {
	if !p.Panels {
		copy(dst, src)
		return
	}
	ToPanels(dst, src, p.Shape[0], p.Shape[1])
}

// UsePanels stores p, a matrix whose Data and Grad hold it in row-major
// order, as column panels from now on (see Panels). It panics if p is not
// a matrix, a bug in the model.
func (p *Param) UsePanels() {
	if len(p.Shape) != 2 {
		panic(fmt.Sprintf("runtime: UsePanels on %s of shape %v, want a matrix", p.Name, p.Shape))
	}
	if p.Panels {
		return
	}
	rows, cols := p.Shape[0], p.Shape[1]
	ToPanels(p.Data, slices.Clone(p.Data), rows, cols)
	if p.Grad != nil {
		ToPanels(p.Grad, slices.Clone(p.Grad), rows, cols)
	}
	p.Panels = true
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
